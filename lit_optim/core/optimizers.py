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
import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.groups import build_param_groups

KEY = "optim.optimizer"


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """Build the configured optimizer over the model's named param groups.

    Args:
        model: The model whose parameters are optimised.
        config: The ``optim:`` section.

    Returns:
        The optimizer; each param group carries a ``name``, and the whole assignment
        (:class:`~lit_optim.core.groups.ParamGroups`) is kept as ``optimizer.lit_optim_groups``.

    Raises:
        ConfigError: Unknown class, misspelled or ill-typed option, bad group rule.

    """
    cls, init_args = resolve_optimizer(config.optimizer)
    defaults = optimizer_defaults(cls, init_args)
    groups = build_param_groups(model, config, defaults, optimizer_name=cls.__name__)
    cls = _multi_tensor_class(cls, config)
    try:
        optimizer = cls(groups.groups, **init_args)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(f"{KEY}.init_args", f"{cls.__name__} refused them: {err}") from None
    # Per-group schedules and the group table are read back from here by build_scheduler.
    optimizer.lit_optim_groups = groups  # type: ignore[attr-defined]
    return optimizer


def resolve_optimizer(spec: Any) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """Split an optimizer spec into its class and init args.

    Accepts ``"AdamW"`` (a ``torch.optim`` name, any case), an import path
    (``"torch.optim.SGD"``, ``"my_pkg.Lion"``), a class, or
    ``{"class_path": ..., "init_args": {...}}``.
    """
    if isinstance(spec, Mapping):
        path, init_args = spec.get("class_path"), dict(spec.get("init_args") or {})
        key = f"{KEY}.class_path"
    else:
        path, init_args, key = spec, {}, KEY
    cls = path if isinstance(path, type) else _import_optimizer(str(path), key)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(key, f"{path!r} is not a torch.optim.Optimizer subclass")
    return cls, init_args


def optimizer_defaults(cls: type[torch.optim.Optimizer], init_args: Mapping[str, Any]) -> dict:
    """The optimizer's effective defaults: its signature defaults overlaid with ``init_args``.

    Raises:
        ConfigError: An argument the class does not take, a missing required one, or a
            string where the default is a number.

    """
    params = _signature(cls)
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    defaults: dict[str, Any] = {}
    for name in names:
        default = params[name].default
        if default is not inspect.Parameter.empty:
            defaults[name] = default
    for name, value in init_args.items():
        if name not in names and not accepts_kwargs:
            raise ConfigError(
                f"{KEY}.init_args.{name}",
                f"not an option of {cls.__name__}{closest(name, names)} "
                f"(valid: {', '.join(names)})",
            )
        _check_type(f"{KEY}.init_args.{name}", value, defaults.get(name))
        defaults[name] = value
    missing = [n for n in names if n not in defaults]
    if missing:
        raise ConfigError(
            f"{KEY}.init_args.{missing[0]}", f"{cls.__name__} needs a value for {missing[0]!r}"
        )
    if not isinstance(defaults.get("lr"), int | float) or isinstance(defaults.get("lr"), bool):
        raise ConfigError(f"{KEY}.init_args.lr", f"{cls.__name__} needs a numeric lr")
    if defaults["lr"] <= 0:
        raise ConfigError(f"{KEY}.init_args.lr", f"must be > 0, got {defaults['lr']!r}")
    return defaults


def changed_init_args(spec: Any) -> dict[str, Any]:
    """The init args of an optimizer spec that differ from its class's defaults (for titles).

    Example:
        >>> changed_init_args({"class_path": "SGD", "init_args": {"lr": 0.1, "momentum": 0}})
        {'lr': 0.1}

    """
    cls, init_args = resolve_optimizer(spec)
    params = _signature(cls)
    return {
        k: v for k, v in init_args.items() if k not in params or not _same(v, params[k].default)
    }


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        return list(value) == list(default)  # YAML lists vs signature tuples
    if isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return bool(value == default)


def _signature(cls: type) -> dict[str, inspect.Parameter]:
    params = dict(inspect.signature(cls.__init__).parameters)
    for name in ("self", "params"):
        params.pop(name, None)
    return params


def _check_type(key: str, value: Any, default: Any) -> None:
    # YAML gives strings for typos such as `lr: 1e-3x`; torch would fail far later.
    numeric = isinstance(default, int | float) and not isinstance(default, bool)
    if numeric and isinstance(value, str | bool):
        raise ConfigError(key, f"expected a number, got {type(value).__name__} {value!r}")
    if isinstance(default, tuple) and (
        not isinstance(value, list | tuple) or len(value) != len(default)
    ):
        raise ConfigError(
            key, f"expected a list of {len(default)} like {list(default)}, got {value!r}"
        )


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


def _multi_tensor_class(
    cls: type[torch.optim.Optimizer], config: OptimConfig
) -> type[torch.optim.Optimizer]:
    if config.multi_tensor is False:
        return cls
    from lit_optim.core.multi_tensor import multi_tensor_variant

    variant = multi_tensor_variant(cls)
    if variant is None and config.multi_tensor is True:
        raise ConfigError(
            "optim.multi_tensor",
            f"no single-pass implementation for {cls.__name__} (available for Adam, AdamW, SGD); "
            "use multi_tensor: auto to fall back to the torch optimizer",
        )
    return variant or cls
