"""``build_scheduler``: the ``optim:`` section's schedules, resolved into a scheduler.

The plain-Python entry point. Every group gets one factor function per scheduled field
(lr, momentum, weight decay): its rule's schedule or the section's, with the field's
warmup in front, resolved once the run length is known. Groups sharing a spec share one
function, which :class:`~lit_optim.core.scheduler.ScheduleLR` then evaluates once a step.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig, build_optimizer, build_scheduler
    >>> model = torch.nn.Linear(4, 2)
    >>> cfg = OptimConfig(optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}},
    ...                   schedule={"class_path": "Poly", "init_args": {"power": 2.0}})
    >>> opt = build_optimizer(model, cfg)
    >>> sched = build_scheduler(opt, cfg, total_steps=10)
    >>> for _ in range(5):
    ...     opt.step(); sched.step()
    >>> round(opt.param_groups[0]["lr"], 12)  # 0.1 * (1 - 5/10) ** 2
    0.025

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from lit_optim.core.config import GroupRule, OptimConfig
from lit_optim.core.config_checks import LARGEST
from lit_optim.core.errors import ConfigError
from lit_optim.core.group_registry import groups_of
from lit_optim.core.groups.result import ParamGroups
from lit_optim.core.run_length import RunLengthUnknown, check_lengths_known
from lit_optim.core.scheduler.joins import Join, join_step
from lit_optim.core.scheduler.schedule_lr import ScheduleLR
from lit_optim.core.scheduler.torch_schedulers import (
    SchedulerLike,
    build_torch_scheduler,
    is_torch_scheduler,
    refuse_mixing,
)
from lit_optim.core.scheduler.track import FIELDS, LR, MOMENTUM, WEIGHT_DECAY, GroupField
from lit_optim.core.schedules import (
    FactorFn,
    Horizon,
    Schedule,
    build_schedule,
    resolve_factor,
    steps_to_check,
)

__all__ = ["build_scheduler"]


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: OptimConfig,
    total_steps: int | float | None = None,
    steps_per_epoch: int | None = None,
    group_schedules: Sequence[Any] | None = None,
    *,
    groups: ParamGroups | None = None,
) -> SchedulerLike | None:
    """Build the configured schedule for ``optimizer``.

    Args:
        optimizer: Built by :func:`lit_optim.build_optimizer` (or any optimizer).
        config: The ``optim:`` section.
        total_steps: How many times ``scheduler.step()`` will be called over the run
            (in units of ``config.interval``); ``None`` / ``inf`` when unknown.
        steps_per_epoch: Scheduler steps per epoch (1 for ``interval: epoch``).
        group_schedules: Per-group schedule specs parallel to ``optimizer.param_groups``
            (default: ``groups.schedules``).
        groups: The param groups the optimizer was built from: per-group schedules,
            the rules (momentum / weight-decay schedules) and the groups that join later.
            Default: those :func:`lit_optim.build_optimizer` built it from, if it did.

    Returns:
        A :class:`ScheduleLR`, a torch scheduler, or ``None`` when nothing is scheduled.

    Raises:
        ConfigError: Unknown schedule, bad arguments, or a schedule that needs a run
            length that is unknown.

    """
    if groups is None:
        groups = groups_of(optimizer)
    if group_schedules is None:
        group_schedules = groups.schedules if groups is not None else None
    n = len(optimizer.param_groups)
    group_specs = list(group_schedules or [None] * n)
    pending = list(groups.pending) if groups is not None else []
    rule_configs = (groups.rule_configs if groups is not None else None) or [None] * n
    known = total_steps is not None and math.isfinite(total_steps) and total_steps > 0
    if is_torch_scheduler(config.schedule):
        refuse_mixing(config, group_specs, pending, rule_configs)
        return build_torch_scheduler(optimizer, config, int(total_steps) if known else None)
    given = [
        *(getattr(config, key) for f in FIELDS for key in (f.schedule_key, f.warmup_key)),
        *group_specs,
        *(_rule_spec(f, r) for r in rule_configs for f in (MOMENTUM, WEIGHT_DECAY)),
    ]
    if all(s is None for s in given) and not pending:
        return None
    rule_index = _rule_indices(config, rule_configs)
    # (lr spec, rule, rule index) of every group now in the optimizer, then of those joining.
    uses = [
        *zip(group_specs, rule_configs, rule_index, strict=True),
        *((p.schedule, p.rule_config, p.rule_index) for p in pending),
    ]
    factors = _Factors(config, uses)
    horizon = _horizon(config, factors.schedules(), total_steps if known else None, steps_per_epoch)
    factors.horizon = horizon
    joins = [
        Join(
            join_step(p, config, horizon if known else None, steps_per_epoch),
            p.group,
            {f.name: factors.of_group(f, *use) for f in FIELDS},
        )
        for p, use in zip(pending, uses[n:], strict=True)
    ]
    per_field = {f.name: [factors.of_group(f, *use) for use in uses[:n]] for f in FIELDS}
    fingerprint = {
        "groups": [g.get("name", str(i)) for i, g in enumerate(optimizer.param_groups)],
        "total_steps": horizon.total_steps if known else None,
    }
    join = {f.name: factors.of(f, None, None) for f in FIELDS}
    scheduler = ScheduleLR(
        optimizer,
        per_field[LR.name],  # type: ignore[arg-type]  # an lr factor is never None
        fingerprint,
        momentum=per_field[MOMENTUM.name],
        weight_decay=per_field[WEIGHT_DECAY.name],
        joins=joins,
        join_factor=join[LR.name],
        join_momentum=join[MOMENTUM.name],
        join_weight_decay=join[WEIGHT_DECAY.name],
    )
    # An unknown length: the steps a long run starts with.
    _refuse_overflow(scheduler, factors, steps_to_check(horizon.total_steps if known else 1000))
    return scheduler


def _refuse_overflow(scheduler: ScheduleLR, factors: _Factors, steps: Sequence[int]) -> None:
    """Refuse a schedule that drives a group's value past ``LARGEST`` (1e300) within the run.

    Base values are finite (the section's numbers are checked), but their product with a
    factor may not be: ``lr: 1e300`` under ``Exponential(gamma: 1e10)`` is ``inf`` at step 1.
    Every distinct factor function is evaluated at ``steps`` (every step of a run up to
    1,000 steps, else 1,000 spread over it and the first 100).
    """
    for track in scheduler.tracks:
        found = track.first_past(steps, LARGEST)
        if found is None:
            continue
        step, index, base, factor = found
        fn = track.factors[index]
        name = scheduler.optimizer.param_groups[index].get("name", index)
        label = track.field.label
        raise ConfigError(
            factors.key_of.get(id(fn), f"optim.{track.field.schedule_key}"),
            f"the {label} of group {name!r} passes {LARGEST:g} at step {step} ({base:g} "
            f"times factor {factor:g}); lower the {label} or the schedule's growth",
        )


class _Factors:
    """Factor functions resolved once per distinct spec, so groups sharing one share it.

    ScheduleLR evaluates each distinct function once per step: 600 groups under one
    schedule cost one evaluation, not 600.

    Args:
        config: The ``optim:`` section.
        uses: ``(lr spec, rule, rule index)`` of every group scheduled (now or later).

    """

    def __init__(
        self, config: OptimConfig, uses: Sequence[tuple[Any, GroupRule | None, int | None]]
    ) -> None:
        self.config = config
        self.horizon: Horizon | None = None
        self._uses = uses
        self._built: dict[tuple[str, int], Schedule | None] = {}
        self._resolved: dict[tuple[str, int], FactorFn | None] = {}
        #: The key path of the spec each resolved factor function comes from.
        self.key_of: dict[int, str] = {}

    def schedules(self) -> list[Schedule | None]:
        """Every schedule in use (to check which need the run length)."""
        out = []
        for field in FIELDS:
            out.append(self._schedule(field, None, None))
            out += [self._schedule(field, _spec(field, s, r), i) for s, r, i in self._uses]
        return out

    def of_group(
        self, field: GroupField, lr_spec: Any, rule: GroupRule | None, rule_index: int | None
    ) -> FactorFn | None:
        """The ``field`` factor of a group of ``rule`` (lr: whose schedule is ``lr_spec``)."""
        return self.of(field, _spec(field, lr_spec, rule), rule_index)

    def of(self, field: GroupField, spec: Any, rule_index: int | None) -> FactorFn | None:
        """The ``field`` factor of a rule's ``spec`` (``None``: the section's).

        lr always has one (a constant 1 when nothing is given); momentum and weight decay
        ``None`` when neither a schedule nor a warmup drives them.
        """
        schedule = self._schedule(field, spec, rule_index)
        if spec is None:
            rule_index = None
        warmup = getattr(self.config, field.warmup_key)
        if field is not LR and schedule is None and warmup is None:
            return None
        cache = (field.name, id(schedule))
        if cache not in self._resolved:
            assert self.horizon is not None  # set by build_scheduler before resolving
            fn = resolve_factor(
                schedule,
                warmup,
                self.horizon,
                key=_key(field, rule_index),
                warmup_key=f"optim.{field.warmup_key}",
            )
            self._resolved[cache] = fn
            if fn is not None:
                self.key_of[id(fn)] = _key(field, rule_index)
        return self._resolved[cache]

    def _schedule(self, field: GroupField, spec: Any, rule_index: int | None) -> Schedule | None:
        if spec is None:
            spec = getattr(self.config, field.schedule_key)
            rule_index = None
        cache = (field.name, id(spec))
        if cache not in self._built:
            key = _key(field, rule_index)
            if rule_index is not None and is_torch_scheduler(spec):
                raise ConfigError(
                    key,
                    "a per-group schedule must be a lit_optim schedule (Poly, Cosine, "
                    "Lambda, ...); torch schedulers act on all groups at once",
                )
            self._built[cache] = build_schedule(spec, key)
        return self._built[cache]


def _spec(field: GroupField, lr_spec: Any, rule: GroupRule | None) -> Any:
    # The lr spec comes with the group (merged groups, explicit group_schedules); the
    # other fields' from the rule.
    return lr_spec if field is LR else _rule_spec(field, rule)


def _rule_spec(field: GroupField, rule: GroupRule | None) -> Any:
    return getattr(rule, field.schedule_key) if rule is not None else None


def _key(field: GroupField, rule_index: int | None) -> str:
    where = "optim" if rule_index is None else f"optim.groups[{rule_index}]"
    return f"{where}.{field.schedule_key}"


def _rule_indices(
    config: OptimConfig, rule_configs: Sequence[GroupRule | None]
) -> list[int | None]:
    """Index in ``optim.groups`` of each group's rule (for key paths in errors)."""
    index = {id(r): i for i, r in enumerate(config.groups)}
    return [index.get(id(r)) if r is not None else None for r in rule_configs]


def _horizon(
    config: OptimConfig,
    schedules: Sequence[Schedule | None],
    total_steps: int | float | None,
    steps_per_epoch: int | None,
) -> Horizon:
    per_epoch = 1 if config.interval == "epoch" else steps_per_epoch  # an epoch is one step
    try:
        check_lengths_known(
            config, int(total_steps) if total_steps is not None else None, per_epoch
        )
    except ConfigError as err:
        # Reached from plain Python only (a run's RunPlan checks first, in trainer words):
        # name the argument of build_scheduler that gives the length.
        arg = "total_steps" if err.key.endswith(".fraction") else "steps_per_epoch"
        raise RunLengthUnknown(f"{err.key} needs the length of the run", arg=arg) from None
    spe = max(1, int(steps_per_epoch or 1))
    if total_steps is not None:
        return Horizon(total_steps=int(total_steps), steps_per_epoch=spe)
    needs = [s for s in schedules if s is not None and s.needs_total]
    if needs:
        raise RunLengthUnknown(f"{type(needs[0]).__name__} needs the length of the run")
    # Schedules that ignore the run length still get a horizon; make it effectively endless.
    return Horizon(total_steps=2**62, steps_per_epoch=spe)
