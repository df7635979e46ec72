"""The ``optim:`` section as data: dataclasses that jsonargparse parses and Python builds.

Validation here covers what can be checked without a model or a run length (types,
ranges, mutually exclusive keys). Checks that need the model (rules matching nothing,
module types) live in :mod:`lit_optim.core.groups`; checks that need the run length
(warmup longer than the run) in :mod:`lit_optim.core.schedules`.

Example:
    >>> cfg = OptimConfig(optimizer={"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}},
    ...                   schedule="Poly", warmup={"steps": 10})
    >>> cfg.warmup.steps
    10

"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal

from lit_optim.core.config_checks import (
    check_choice,
    check_finite,
    check_ndim,
    check_number,
    check_optimizer_spec,
    check_strings,
    check_type,
    rekey,
)
from lit_optim.core.config_values import (
    LayerDecay,
    LRScaling,
    Spec,
    Unfreeze,
    Warmup,
)
from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.schedules import Schedule
from lit_optim.core.schedules.vocabulary import unknown_keys_message

#: A schedule given as a short name (``"Poly"``), an import path, or
#: ``{"class_path": ..., "init_args": {...}}``; a Schedule object also works.
ScheduleSpec = Schedule | str | Spec | None
#: An optimizer given as a class path / short name or ``{"class_path": ..., "init_args": {...}}``.
OptimizerSpec = str | Spec

DEFAULT_NO_DECAY = ("bias", "norm", "embedding")
NO_DECAY_KINDS = frozenset(DEFAULT_NO_DECAY)


@dataclass
class GroupRule:
    """One rule of ``optim.groups``: which parameters, and what they get.

    Args:
        name: Group name (used in logs and tables); defaults to ``group{index}``.
        params: fnmatch globs on normalised parameter names, or ``"re:<regex>"``.
        modules: Module types by import path (``torch.nn.LayerNorm``); matches their
            direct parameters.
        lr: Absolute learning rate.
        lr_scale: Multiplier of the optimizer's lr (exclusive with ``lr``).
        weight_decay: Weight decay for the group (overrides ``no_decay`` too).
        frozen: Set ``requires_grad=False`` and leave the parameters out of the optimizer.
        options: Any other per-group optimizer option (``betas``, ``momentum``, ...).
        schedule: A schedule for this group only (else the global one).
        ndim: Only tensors with this many dimensions (an int or a list), e.g. ``2`` for
            the weight matrices Muon takes; alone it selects every parameter of that ndim.
        optimizer: An optimizer for this rule's parameters (same form as the top-level
            one); the groups of all optimizers still form one optimizer object.
        momentum_schedule: A momentum schedule for this group only (else the global one).
        weight_decay_schedule: A weight-decay schedule for this group only.
        unfreeze_at: Keep the parameters frozen until this epoch or step, then add them
            to the optimizer (``{epoch: 1}`` or ``{step: 500}``).

    """

    name: str | None = None
    params: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    lr: float | None = None
    lr_scale: float | None = None
    weight_decay: float | None = None
    frozen: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    schedule: ScheduleSpec = None
    ndim: int | list[int] | None = None
    optimizer: OptimizerSpec | None = None
    momentum_schedule: ScheduleSpec = None
    weight_decay_schedule: ScheduleSpec = None
    unfreeze_at: Unfreeze | None = None

    def validate(self, key: str) -> None:
        """Raise :class:`ConfigError` on a rule that can never be right."""
        check_type(f"{key}.name", self.name, str, "a string", optional=True)
        check_strings(f"{key}.params", self.params, 'e.g. ["head.*"]')
        check_strings(f"{key}.modules", self.modules, "e.g. [torch.nn.LayerNorm]")
        check_type(f"{key}.frozen", self.frozen, bool, "true or false")
        if not self.params and not self.modules and self.ndim is None:
            raise ConfigError(
                key,
                "a group rule needs `params` (globs) or `modules` (types), or an `ndim` selector",
            )
        check_ndim(f"{key}.ndim", self.ndim)
        if self.optimizer is not None:
            check_optimizer_spec(f"{key}.optimizer", self.optimizer)
        if self.lr is not None and self.lr_scale is not None:
            raise ConfigError(key, "give either `lr` or `lr_scale`, not both")
        check_number(f"{key}.lr", self.lr, minimum=0, strict=True, optional=True)
        check_number(f"{key}.lr_scale", self.lr_scale, minimum=0, strict=True, optional=True)
        check_number(f"{key}.weight_decay", self.weight_decay, minimum=0, optional=True)
        if self.unfreeze_at is not None:
            self.unfreeze_at.validate(f"{key}.unfreeze_at")
        elif self.frozen:
            extra = [
                k
                for k in (
                    "lr",
                    "lr_scale",
                    "weight_decay",
                    "schedule",
                    "momentum_schedule",
                    "weight_decay_schedule",
                    "optimizer",
                )
                if getattr(self, k) is not None
            ]
            if self.options:
                extra.append("options")
            if extra:
                raise ConfigError(
                    key,
                    f"a frozen group is left out of the optimizer, so {', '.join(extra)} "
                    "would never apply; remove them or drop `frozen: true`",
                )
        if not isinstance(self.options, Mapping):
            raise ConfigError(f"{key}.options", "must be a mapping of optimizer options")
        for option, value in self.options.items():
            if value is None:
                raise ConfigError(
                    f"{key}.options.{option}",
                    "null; leave the option out to use the optimizer's own value",
                )
            check_finite(f"{key}.options.{option}", value)
        for reserved in ("params", "lr", "weight_decay", "name"):
            if reserved in self.options:
                raise ConfigError(
                    f"{key}.options.{reserved}",
                    f"set `{reserved}` on the rule itself, not under options",
                )


#: Keys of the ``optim:`` section that no longer exist, with what to use instead.
REMOVED_KEYS = {
    "multi_tensor": "removed: the optimizer step is torch's fused implementation by default "
    "(else foreach); to choose, set optim.optimizer.init_args.fused or foreach",
}


@dataclass
class OptimConfig:
    """The whole ``optim:`` section.

    Args:
        optimizer: Optimizer class path or short torch name, with ``init_args``.
        groups: Ordered rules; first match wins.
        no_decay: Which parameters get weight decay 0 (``bias``, ``norm``,
            ``embedding``; 1-D parameters count as ``bias``); ``[]`` turns it off.
        layer_decay: Layer-wise lr decay.
        schedule: A lit_optim schedule or a torch ``LRScheduler`` by class path.
        warmup: A ramp composed in front of the schedule.
        momentum_schedule: A schedule of each group's momentum (``betas[0]`` for
            Adam-style optimizers), as a factor of the group's own value.
        momentum_warmup: A ramp composed in front of ``momentum_schedule``.
        weight_decay_schedule: A schedule of each group's weight decay, as a factor of
            the group's own value (factors above 1 raise it, e.g. DINO's 0.04 -> 0.4).
        weight_decay_warmup: A ramp composed in front of ``weight_decay_schedule``.
        lr_scaling: Scale every lr by the effective batch size (``rule``,
            ``reference_batch``).
        interval: ``step`` (per optimizer step) or ``epoch``.
        frequency: Step the schedule every ``frequency`` intervals.
        monitor: Metric for ``ReduceLROnPlateau``.
        summary: Print the group table when ``fit`` starts.
        optimizers: Several separate optimizers (manual optimization, e.g. a GAN):
            ``{name: {params: [...], modules: [...], <any key of this section>}}``, in
            the order ``self.optimizers()`` returns them. Exclusive with the one-optimizer
            keys (``optimizer``, ``groups``, ``schedule``, ...).

    """

    optimizer: OptimizerSpec = "torch.optim.AdamW"
    groups: list[GroupRule] = field(default_factory=list)
    no_decay: list[str] = field(default_factory=lambda: list(DEFAULT_NO_DECAY))
    layer_decay: LayerDecay | None = None
    schedule: ScheduleSpec = None
    warmup: Warmup | None = None
    momentum_schedule: ScheduleSpec = None
    momentum_warmup: Warmup | None = None
    weight_decay_schedule: ScheduleSpec = None
    weight_decay_warmup: Warmup | None = None
    lr_scaling: LRScaling | None = None
    interval: Literal["step", "epoch"] = "step"
    frequency: int = 1
    monitor: str | None = None
    summary: bool = True
    # Spec keeps each entry opaque to jsonargparse (it would resolve the class paths inside
    # and spell out their arguments); entries become OptimizerEntry in __post_init__.
    optimizers: dict[str, Spec] | None = None

    def __post_init__(self) -> None:
        # Python users and the CLI pass plain dicts; the key path names the rule.
        if not isinstance(self.groups, list | tuple) and self.groups is not None:
            raise ConfigError(
                "optim.groups",
                f"expected a list of rules, got {type(self.groups).__name__} {self.groups!r} "
                '(e.g. [{name: head, params: ["head.*"], lr_scale: 10}])',
            )
        self.groups = [
            _coerce(GroupRule, g, f"optim.groups[{i}]") for i, g in enumerate(self.groups or [])
        ]
        for i, rule in enumerate(self.groups):
            if rule.unfreeze_at is not None:
                key = f"optim.groups[{i}].unfreeze_at"
                rule.unfreeze_at = _coerce(Unfreeze, rule.unfreeze_at, key)
        if self.layer_decay is not None:
            self.layer_decay = _coerce(LayerDecay, self.layer_decay, "optim.layer_decay")
        if self.lr_scaling is not None:
            self.lr_scaling = _coerce(LRScaling, self.lr_scaling, "optim.lr_scaling")
        for name in ("warmup", "momentum_warmup", "weight_decay_warmup"):
            if getattr(self, name) is not None:
                setattr(self, name, _coerce(Warmup, getattr(self, name), f"optim.{name}"))
        if isinstance(self.optimizers, Mapping):
            self.optimizers = {
                str(k): OptimizerEntry.from_spec(str(k), v) for k, v in self.optimizers.items()
            }
        self.validate()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], key: str = "optim") -> OptimConfig:
        """Build from a plain mapping (a parsed YAML ``optim:`` section)."""
        return _coerce(cls, data, key)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on anything invalid that needs no model or run length."""
        check_optimizer_spec("optim.optimizer", self.optimizer)
        if self.optimizers is not None:
            self._check_several()
        for i, rule in enumerate(self.groups):
            rule.validate(f"optim.groups[{i}]")
        names = [r.name for r in self.groups if r.name is not None]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError("optim.groups", f"group name {dupes[0]!r} is used more than once")
        if not isinstance(self.no_decay, list | tuple):
            raise ConfigError("optim.no_decay", "must be a list, e.g. [bias, norm, embedding]")
        for i, kind in enumerate(self.no_decay):
            if kind not in NO_DECAY_KINDS:
                raise ConfigError(
                    f"optim.no_decay[{i}]",
                    f"unknown kind {kind!r}{closest(str(kind), NO_DECAY_KINDS)} "
                    f"(valid: {', '.join(DEFAULT_NO_DECAY)})",
                )
        if self.layer_decay is not None:
            self.layer_decay.validate()
        for name in ("warmup", "momentum_warmup", "weight_decay_warmup"):
            warmup = getattr(self, name)
            if warmup is not None:
                warmup.validate(f"optim.{name}")
        if self.lr_scaling is not None:
            self.lr_scaling.validate()
        check_choice("optim.interval", self.interval, ("step", "epoch"))
        check_number("optim.frequency", self.frequency, minimum=1, integer=True)
        check_type("optim.monitor", self.monitor, str, "a metric name", optional=True)
        check_type("optim.summary", self.summary, bool, "true or false")

    def _check_several(self) -> None:
        if not isinstance(self.optimizers, Mapping) or not self.optimizers:
            raise ConfigError(
                "optim.optimizers",
                "expected a mapping of named optimizers, e.g. {generator: {params: "
                "['generator.*'], optimizer: ...}, discriminator: {...}}",
            )
        for f in dataclasses.fields(OptimConfig):
            if f.name in ("optimizers", "summary"):
                continue
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if getattr(self, f.name) != default:
                raise ConfigError(
                    "optim.optimizers",
                    f"give several optimizers under optim.optimizers or one optimizer "
                    f"(optim.optimizer, groups, schedule, ...), not both; found optim.{f.name} "
                    f"(move it into an entry: optim.optimizers.<name>.{f.name})",
                )
        catch_all = [n for n, e in self.optimizers.items() if not e.params and not e.modules]
        if len(catch_all) > 1:
            raise ConfigError(
                f"optim.optimizers.{catch_all[1]}",
                f"only one optimizer may leave out params/modules (it takes every parameter "
                f"the others do not); {catch_all[0]!r} already does",
            )


@dataclass
class OptimizerEntry:
    """One of ``optim.optimizers``: which parameters, and their own ``optim:`` section.

    Attributes:
        name: The entry's key (``generator``).
        params: fnmatch globs / ``"re:"`` regexes on parameter names, as in group rules.
        modules: Module types whose direct parameters it takes.
        config: Everything else of the entry, as a one-optimizer :class:`OptimConfig`.

    """

    name: str
    params: list[str]
    modules: list[str]
    config: OptimConfig

    @classmethod
    def from_spec(cls, name: str, spec: Any) -> OptimizerEntry:
        """Build from ``{params, modules, <keys of optim:>}``; errors name the entry's keys."""
        if isinstance(spec, OptimizerEntry):
            return spec
        if isinstance(spec, Spec):
            spec = dict(spec)
        key = f"optim.optimizers.{name}"
        spec = _plain_data(spec)
        if not isinstance(spec, Mapping):
            raise ConfigError(key, f"expected a mapping, got {type(spec).__name__} {spec!r}")
        rest = dict(spec)
        params, modules = rest.pop("params", []) or [], rest.pop("modules", []) or []
        for what, value in (("params", params), ("modules", modules)):
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{key}.{what}", f"expected a list, got {value!r}")
        if "optimizers" in rest:
            raise ConfigError(f"{key}.optimizers", "optimizers do not nest")
        if "optimizer" not in rest:
            raise ConfigError(
                f"{key}.optimizer",
                "missing; give an optimizer such as {class_path: torch.optim.Adam, "
                "init_args: {lr: 2.0e-4}}",
            )
        rest.setdefault("summary", False)
        try:
            config = OptimConfig.from_dict(rest)
        except ConfigError as err:
            raise rekey(err, "optim", key) from None
        return cls(name, list(params), list(modules), config)


def _plain_data(value: Any) -> Any:
    # jsonargparse hands values of an untyped mapping over as Namespaces (class_path dicts).
    if hasattr(value, "as_dict") and not isinstance(value, Mapping):
        value = value.as_dict()
    if isinstance(value, Mapping) and not isinstance(value, Spec):
        return {k: _plain_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_data(v) for v in value]
    return value


def _coerce(cls: type[Any], value: Any, key: str) -> Any:
    """Turn a mapping into dataclass ``cls`` with key-path errors for unknown keys."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected a mapping, got {type(value).__name__} {value!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    for k in value:
        if cls is OptimConfig and k in REMOVED_KEYS:
            raise ConfigError(f"{key}.{k}", REMOVED_KEYS[k])
    # Every unknown key in one message, other libraries' names with their lit_optim form.
    unknown = unknown_keys_message(cls.__name__, value, names)
    if unknown is not None:
        wrong = [k for k in value if k not in names]
        raise ConfigError(f"{key}.{wrong[0]}" if len(wrong) == 1 else key, unknown)
    return cls(**value)
