"""One hyperparameter track: a field of every param group set to ``base[g] * f_g(step)``.

lr, momentum and weight decay are scheduled by the same mechanism, parameterised by the
group field it writes (timm's ``param_group_field``, MMEngine's ``param_name``).
:class:`GroupField` is the one place that knows how an optimizer stores a field
(momentum is ``betas[0]`` for Adam-style optimizers); :class:`Track` holds each group's
base value and factor function and evaluates each distinct function once per step.

Example:
    >>> import torch
    >>> opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], betas=(0.9, 0.999))
    >>> MOMENTUM.get(opt.param_groups[0])
    0.9
    >>> track = Track(MOMENTUM)
    >>> track.append(lambda step: 1 - step / 10, 0.9)
    >>> track.apply(opt.param_groups, 5)
    [0.45]
    >>> opt.param_groups[0]["betas"]
    (0.45, 0.999)

"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules import FactorFn

__all__ = ["FIELDS", "LR", "MOMENTUM", "WEIGHT_DECAY", "GroupField", "Track"]


@dataclass(frozen=True)
class GroupField:
    """A hyperparameter of a param group, and where the ``optim:`` section schedules it.

    Attributes:
        name: The value's name in a group's values and in LRLogger's keys (``lr``,
            ``momentum``, ``weight_decay``).
        schedule_key: The ``optim:`` key (and group-rule key) of its schedule.
        warmup_key: The ``optim:`` key of its warmup.
        label: Its name in messages.

    """

    name: str
    schedule_key: str
    warmup_key: str
    label: str

    def get(self, group: Mapping[str, Any]) -> float | None:
        """The group's value as a float (``None`` when the optimizer has no such field)."""
        value = group["betas"][0] if self._in_betas(group) else group.get(self.name)
        return None if value is None else float(value)  # a tensor lr: its value

    def write(self, groups: Sequence[MutableMapping[str, Any]], values: Sequence[Any]) -> None:
        """Store ``values[g]`` in ``groups[g]`` as the optimizer reads it (``None``: skip).

        A tensor field is filled in place. Runs every step for every group: one loop here
        rather than a call per group.
        """
        name, inside_betas = self.name, self.name == "momentum"
        for group, value in zip(groups, values, strict=True):
            if value is None:
                continue
            if inside_betas and "betas" in group:  # _in_betas, inlined for the hot loop
                group["betas"] = (value, *group["betas"][1:])
            elif isinstance(group.get(name), torch.Tensor):
                group[name].fill_(value)
            else:
                group[name] = value

    def base(self, group: Mapping[str, Any], factor: FactorFn | None, index: int) -> float | None:
        """The value a factor multiplies for a group built with the optimizer, or ``None``.

        Raises:
            ConfigError: The field is scheduled but the optimizer has no such value.

        """
        if factor is None:
            return None
        value = self.get(group)
        if value is None:
            held, which = (
                ("neither momentum nor betas", " (SGD with momentum, Adam, ...)")
                if self.name == "momentum"
                else (f"no {self.name}", "")
            )
            raise ConfigError(
                f"optim.{self.schedule_key}",
                f"param group {group.get('name', index)!r} has {held}; a {self.label} "
                f"schedule needs an optimizer with one{which}",
            )
        return value

    def _in_betas(self, group: Mapping[str, Any]) -> bool:
        # Adam-style optimizers keep their momentum as betas[0] (as MMEngine's
        # MomentumSchedulerMixin reads it); the only field stored inside another.
        return self.name == "momentum" and "betas" in group


LR = GroupField("lr", "schedule", "warmup", "lr")
MOMENTUM = GroupField("momentum", "momentum_schedule", "momentum_warmup", "momentum")
WEIGHT_DECAY = GroupField(
    "weight_decay", "weight_decay_schedule", "weight_decay_warmup", "weight decay"
)
#: Every field a schedule can drive, lr first.
FIELDS = (LR, MOMENTUM, WEIGHT_DECAY)


class Track:
    """One field of every param group: ``group[field] = bases[g] * factors[g](step)``.

    A group whose factor is ``None`` is left alone. Each distinct factor function is
    evaluated once per step, however many groups share it (600 layer-decay groups under
    one schedule cost one evaluation).

    Args:
        field: The group field this track writes.

    Attributes:
        factors: Per group, its factor function or ``None``.
        bases: Per group, the value its factor multiplies (``None`` where unscheduled).

    """

    def __init__(self, field: GroupField) -> None:
        self.field = field
        self.factors: list[FactorFn | None] = []
        self.bases: list[Any] = []
        self._distinct: list[FactorFn] = []
        self._slot_of: dict[int, int] = {}
        #: (group index, index in _distinct) of every scheduled group.
        self._active: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self.factors)

    def reset(self, factors: Sequence[FactorFn | None], bases: Sequence[Any]) -> None:
        """Schedule exactly these groups (the optimizer's first ``len(factors)``)."""
        self.factors, self.bases = [], []
        self._distinct, self._slot_of, self._active = [], {}, []
        for factor, base in zip(factors, bases, strict=True):
            self.append(factor, base)

    def append(self, factor: FactorFn | None, base: Any) -> None:
        """Schedule one more group (the next one of the optimizer)."""
        index = len(self.factors)
        self.factors.append(factor)
        self.bases.append(base)
        if factor is None:
            return
        slot = self._slot_of.get(id(factor))
        if slot is None:
            slot = self._slot_of[id(factor)] = len(self._distinct)
            self._distinct.append(factor)
        self._active.append((index, slot))

    def values(self, step: int) -> list[Any]:
        """Every group's value at ``step`` (``None`` where unscheduled), changing nothing."""
        computed = [f(step) for f in self._distinct]
        bases = self.bases
        if len(self._active) == len(bases):  # every group scheduled (lr always is)
            return [bases[i] * computed[s] for i, s in self._active]
        out: list[Any] = [None] * len(bases)
        for index, slot in self._active:
            out[index] = bases[index] * computed[slot]
        return out

    def apply(self, groups: Sequence[MutableMapping[str, Any]], step: int) -> list[Any]:
        """Set every scheduled group's value at ``step``; return :meth:`values`."""
        values = self.values(step)
        self.field.write(groups, values)
        return values

    def first_past(
        self, steps: Sequence[int], limit: float
    ) -> tuple[int, int, float, float] | None:
        """The first of ``steps`` at which a group's value passes ``limit`` in magnitude.

        Each distinct factor function is evaluated at every step once, against the
        largest base among its groups.

        Returns:
            ``(step, group index, base, factor)``, or ``None`` if none does.

        """
        found: tuple[int, int, float, float] | None = None
        for slot, fn in enumerate(self._distinct):
            index = max(
                (i for i, s in self._active if s == slot), key=lambda i: abs(float(self.bases[i]))
            )
            base = abs(float(self.bases[index]))
            for step in steps:
                factor = abs(float(fn(step)))
                if base and factor and not base * factor <= limit:
                    if found is None or step < found[0]:
                        found = (step, index, float(self.bases[index]), factor)
                    break
        return found

    @property
    def scheduled(self) -> bool:
        """Whether any group has a factor (an idle track costs nothing per step)."""
        return bool(self._active)
