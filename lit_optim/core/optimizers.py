"""Optimizer from config: resolve the class, check its arguments, build it on param groups.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig
    >>> model = torch.nn.Linear(4, 2)
    >>> opt = build_optimizer(model, OptimConfig(optimizer="SGD"))
    >>> [g["name"] for g in opt.param_groups]
    ['default']

"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.group_registry import register_groups
from lit_optim.core.groups import ParamGroups, build_param_groups
from lit_optim.core.implementation import (
    clip_under_amp,
    has_sparse_gradients,
    keep_speed_flags,
    speed_flags,
)
from lit_optim.core.optimizer_args import (
    check_group_options,
    optimizer_defaults,
    signature,
    signature_of_step,
)

KEY = "optim.optimizer"


@dataclass(frozen=True)
class _Step:
    """What the step implementation depends on beyond the class and its args."""

    sparse: bool  # some module makes sparse gradients
    trainer: Any  # the Lightning trainer (mixed precision, clipping), or None


def build_optimizer(
    model: nn.Module,
    config: OptimConfig,
    only: Collection[torch.Tensor] | None = None,
    *,
    trainer: Any = None,
) -> torch.optim.Optimizer:
    """Build the configured optimizer over the model's named param groups.

    The plain-Python entry point: parameters of ``frozen`` rules (and rules waiting for
    ``unfreeze_at``) get ``requires_grad=False``, as ``fit`` gives them. When ``init_args``
    set neither ``fused`` nor ``foreach``, torch's fastest step for the parameters'
    devices is chosen (:func:`~lit_optim.core.implementation.speed_flags`).

    When group rules carry their own ``optimizer``, one inner optimizer is built per
    distinct optimizer spec and they are returned as one
    :class:`~lit_optim.core.composite.CompositeOptimizer`.

    Args:
        model: The model whose parameters are optimised.
        config: The ``optim:`` section.
        only: Optimise only these parameters (one of several separate optimizers).
        trainer: The Lightning trainer that will run it, if any (under its mixed
            precision, a fused step must let Lightning clip gradients).

    Returns:
        The optimizer; each param group carries a ``name``. :func:`build_scheduler` finds
        the group assignment (:func:`~lit_optim.core.group_registry.groups_of`) without being told.

    Raises:
        ConfigError: Unknown class, misspelled or ill-typed option, bad group rule, or an
            optimizer refusing its parameters (e.g. Muon given a 1-D tensor).

    """
    optimizer, groups = optimizer_and_groups(model, config, only, trainer=trainer)
    groups.apply_freeze()
    return optimizer


def optimizer_and_groups(
    model: nn.Module,
    config: OptimConfig,
    only: Collection[torch.Tensor] | None = None,
    *,
    trainer: Any = None,
    frozen_start: bool = False,
) -> tuple[torch.optim.Optimizer, ParamGroups]:
    """The optimizer and its group assignment; pure: the model is not changed.

    What to freeze is in ``ParamGroups.freeze``; ``frozen_start`` as in
    :func:`~lit_optim.core.groups.build_param_groups`.
    """
    top, own = resolve_specs(config)
    cls, init_args, defaults = top
    check_rules_options(config, top, own)
    groups = build_param_groups(
        model,
        config,
        defaults,
        optimizer_name=cls.__name__,
        rule_optimizers={i: (d, c.__name__) for i, (c, _, d) in own.items()},
        only=only,
        frozen_start=frozen_start,
    )
    step = _Step(sparse=has_sparse_gradients(model), trainer=trainer)
    if not own:
        optimizer = _construct(cls, init_args, groups.groups, config, KEY, groups, [], step)
    else:
        optimizer = _composite(top, own, groups, config, step)
    register_groups(optimizer, groups)
    return optimizer, groups


#: ``(class, init args, effective defaults)`` of one optimizer spec.
ResolvedSpec = tuple[type[torch.optim.Optimizer], dict[str, Any], dict[str, Any]]


def resolve_specs(config: OptimConfig) -> tuple[ResolvedSpec, dict[int, ResolvedSpec]]:
    """``optim.optimizer`` and the rules' own optimizers: class, init args, defaults.

    The build and the static validator (:mod:`lit_optim.core.validate`) both start here.

    Returns:
        ``(top, own)``: the top-level spec, and ``{rule index: spec}`` of the rules with
        an optimizer of their own.

    Raises:
        ConfigError: As :func:`resolve_optimizer` and
            :func:`~lit_optim.core.optimizer_args.optimizer_defaults`, at the spec's key.

    """
    cls, init_args = resolve_optimizer(config.optimizer)
    top = (cls, init_args, optimizer_defaults(cls, init_args))
    own = {}
    for i, rule in enumerate(config.groups):
        if rule.optimizer is not None:
            key = f"optim.groups[{i}].optimizer"
            rule_cls, rule_args = resolve_optimizer(rule.optimizer, key=key)
            own[i] = (rule_cls, rule_args, optimizer_defaults(rule_cls, rule_args, key=key))
    return top, own


def check_rules_options(
    config: OptimConfig, top: ResolvedSpec, own: Mapping[int, ResolvedSpec]
) -> None:
    """Check each rule's ``options`` for its optimizer, and that optimizers can share a step.

    Args:
        config: The section.
        top: ``optim.optimizer`` resolved, with its :func:`optimizer_defaults`.
        own: ``{rule index: the same}`` of rules with an optimizer of their own.

    Raises:
        ConfigError: An option of the wrong name, type or value
            (:func:`~lit_optim.core.optimizer_args.check_group_options`), or an optimizer
            that re-evaluates the loss in its step (LBFGS) beside another optimizer.

    """
    for i, rule in enumerate(config.groups):
        cls, init_args, defaults = own.get(i, top)
        check_group_options(cls, init_args, defaults, rule.options, f"optim.groups[{i}]")
    if not own:
        return
    # Several optimizer specs are joined in a CompositeOptimizer, which evaluates the
    # closure once and steps each inner optimizer without it.
    for i, (cls, _, _) in [(-1, top), *own.items()]:
        if needs_closure(cls):
            key = KEY if i < 0 else f"optim.groups[{i}].optimizer"
            raise ConfigError(
                key,
                f"{cls.__name__} re-evaluates the loss inside its step, so it cannot share a "
                "step with the other optimizer specs of this section; use it alone as "
                "optim.optimizer (no group rule with an optimizer of its own)",
            )


def needs_closure(cls: type[torch.optim.Optimizer]) -> bool:
    """Whether ``cls.step`` takes a closure it cannot do without (LBFGS)."""
    closure = signature_of_step(cls).get("closure")
    return closure is not None and closure.default is closure.empty


def _composite(
    top: ResolvedSpec,
    own: Mapping[int, ResolvedSpec],
    groups: ParamGroups,
    config: OptimConfig,
    step: _Step,
) -> torch.optim.Optimizer:
    """One inner optimizer per distinct optimizer spec, joined in group order."""
    from lit_optim.core.composite import CompositeOptimizer

    specs = {-1: top, **own}
    # Rules with equal specs share one inner optimizer (fewer, larger multi-tensor steps).
    inner_of: dict[int, int] = {}
    distinct: list[tuple[type[torch.optim.Optimizer], dict[str, Any], list[int]]] = []
    for source in dict.fromkeys(groups.optimizers):
        spec_cls, spec_args, _ = specs[source]
        match = next(
            (k for k, (c, a, _) in enumerate(distinct) if c is spec_cls and a == spec_args), None
        )
        if match is None:
            distinct.append((spec_cls, spec_args, []))
            match = len(distinct) - 1
        distinct[match][2].append(source)
        inner_of[source] = match
    inner = []
    for spec_cls, spec_args, sources in distinct:
        members = [g for g, s in zip(groups.groups, groups.optimizers, strict=True) if s in sources]
        key = KEY if sources[0] == -1 else f"optim.groups[{sources[0]}].optimizer"
        inner.append(_construct(spec_cls, spec_args, members, config, key, groups, sources, step))
    default = inner_of.get(-1, 0)
    return CompositeOptimizer(inner, order=groups.groups, default=default)


def _construct(
    cls: type[torch.optim.Optimizer],
    init_args: Mapping[str, Any],
    param_groups: list[dict[str, Any]],
    config: OptimConfig,
    key: str,
    groups: ParamGroups,
    sources: list[int],
    step: _Step,
) -> torch.optim.Optimizer:
    """Build one (inner) optimizer on its groups; a refusal names the parameters."""
    params = [p for g in param_groups for p in g["params"]]
    flags = speed_flags(cls, init_args, params, groups=param_groups, sparse=step.sparse)
    try:
        optimizer = cls(param_groups, **{**init_args, **flags})
    except (ValueError, TypeError, RuntimeError) as err:
        refused = _refused_params(cls, init_args, param_groups, groups)
        if refused is None:
            raise ConfigError(f"{key}.init_args", f"{cls.__name__} refused them: {err}") from None
    else:
        keep_speed_flags(optimizer)
        clip_under_amp(optimizer, step.trainer)
        return optimizer
    shown, fix = refused
    rules = [s for s in sources if s >= 0]
    if rules:
        labels = " and ".join(f"{config.groups[i].name or f'group{i}'!r}" for i in rules)
        raise ConfigError(
            f"optim.groups[{rules[0]}]",
            f"{cls.__name__} refuses parameters of rule {labels}: {shown}; add "
            f"`ndim: {fix}` to the rule so it takes only the tensors {cls.__name__} accepts",
        )
    raise ConfigError(
        key,
        f"{cls.__name__} refuses {shown}; give it a group rule with `ndim: {fix}` and "
        f"`optimizer: {cls.__name__}`, and keep a top-level optimizer (e.g. AdamW) for the rest",
    )


def _refused_params(
    cls: type[torch.optim.Optimizer],
    init_args: Mapping[str, Any],
    param_groups: list[dict[str, Any]],
    groups: ParamGroups,
) -> tuple[str, Any] | None:
    """``(the refused parameters with their shapes, the ndim that fixes it)``, or ``None``.

    Each tensor dimension count is tried on its own (building an optimizer allocates no
    state), so the error can name the parameters instead of repeating torch's message.
    """
    by_ndim: dict[int, list[torch.Tensor]] = {}
    for g in param_groups:
        for p in g["params"]:
            by_ndim.setdefault(p.ndim, []).append(p)
    accepted, refused = [], []
    for ndim, params in sorted(by_ndim.items()):
        try:
            cls([params[0]], **init_args)
        except (ValueError, TypeError, RuntimeError):
            refused.extend(params)
        else:
            accepted.append(ndim)
    if not refused or not accepted:
        return None
    names = {id(i.tensor): i.name for i in groups.params}
    shown = ", ".join(f"{names.get(id(p), '?')} {tuple(p.shape)}" for p in refused[:4])
    more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
    fix = accepted[0] if len(accepted) == 1 else accepted
    return f"{len(refused)} tensors ({shown}{more})", fix


def resolve_optimizer(
    spec: Any, key: str = KEY
) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """Split an optimizer spec into its class and init args.

    Accepts ``"AdamW"`` (a ``torch.optim`` name, any case), an import path
    (``"torch.optim.SGD"``, ``"my_pkg.Lion"``), a class, or
    ``{"class_path": ..., "init_args": {...}}``. ``key`` is where the spec sits.
    """
    if isinstance(spec, Mapping):
        path, init_args = spec.get("class_path"), dict(spec.get("init_args") or {})
        key = f"{key}.class_path"
    else:
        path, init_args = spec, {}
    cls = path if isinstance(path, type) else _import_optimizer(str(path), key)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(key, f"{path!r} is not a torch.optim.Optimizer subclass")
    return cls, init_args


def changed_init_args(spec: Any) -> dict[str, Any]:
    """The init args of an optimizer spec that differ from its class's defaults (for titles).

    Example:
        >>> changed_init_args({"class_path": "SGD", "init_args": {"lr": 0.1, "momentum": 0}})
        {'lr': 0.1}

    """
    cls, init_args = resolve_optimizer(spec)
    params = signature(cls)
    return {
        k: v for k, v in init_args.items() if k not in params or not _same(v, params[k].default)
    }


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        return list(value) == list(default)  # YAML lists vs signature tuples
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return bool(value == default)


def _import_optimizer(path: str, key: str) -> Any:
    torch_names = {
        n.lower(): n
        for n in dir(torch.optim)
        if isinstance(getattr(torch.optim, n), type)
        and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)
        and n != "Optimizer"
    }
    if "." not in path:
        if path.lower() in torch_names:
            return getattr(torch.optim, torch_names[path.lower()])
        raise ConfigError(
            key,
            f"unknown optimizer {path!r}{closest(path, torch_names.values())} "
            f"(torch.optim has: {', '.join(sorted(torch_names.values()))}; "
            "or give an import path such as my_pkg.optim.Lion)",
        )
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(key, f"cannot import {module_name!r} for {path!r}: {err}") from None
    if not hasattr(module, attr):
        options = [n for n in dir(module) if not n.startswith("_")]
        raise ConfigError(key, f"{module_name!r} has no {attr!r}{closest(attr, options)}")
    return getattr(module, attr)
