"""``ScheduleLR``: one ``LRScheduler`` applying ``base_lr[g] * f_g(step)`` in closed form.

Also the pass-through for torch schedulers given by ``class_path`` (their run-length
arguments filled in), and :func:`build_scheduler`, the plain-Python entry point.

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

import importlib
import inspect
import math
import numbers
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lit_optim.core.config import GroupRule, OptimConfig
from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.groups.result import ParamGroups, PendingGroup
from lit_optim.core.optimizers import groups_of
from lit_optim.core.run_length import check_lengths_known
from lit_optim.core.schedules import FactorFn, Horizon, Schedule, build_schedule, resolve_factor

SchedulerLike = LRScheduler | ReduceLROnPlateau

# Arguments of torch schedulers that mean "length of the run", filled when left out.
_TOTAL_ARGS = ("total_steps", "T_max", "total_iters")


@dataclass
class Join:
    """A param group that joins the optimizer at scheduler step ``step``.

    Built from a group rule with ``unfreeze_at``: its parameters stay frozen
    (``requires_grad=False``) and out of the optimizer until then.

    Attributes:
        step: Scheduler step from which the group trains.
        group: The optimizer group dict (``params``, ``name``, ``lr``, ...).
        lr: The group's lr factor function (the same as if it had always been there).
        momentum: Its momentum factor function, or ``None``.
        weight_decay: Its weight-decay factor function, or ``None``.

    """

    step: int
    group: dict[str, Any]
    lr: FactorFn
    momentum: FactorFn | None = None
    weight_decay: FactorFn | None = None

    @property
    def name(self) -> str:
        """The group's name."""
        return str(self.group.get("name"))


class ScheduleLR(LRScheduler):
    """Apply ``base[g] * factors[g](step)`` to every param group, in closed form.

    The lr depends on the step count alone, so resuming is restoring the step and
    plotting is evaluating the functions. ``state_dict()`` holds plain data only.
    Momentum (``betas[0]`` for Adam-style optimizers) and weight decay may be scheduled
    the same way, as factors of each group's own base value.

    Each distinct factor function is evaluated once per step, however many groups share
    it (600 layer-decay groups under one schedule cost one evaluation).

    Groups may join during training:

    * a group added with ``optimizer.add_param_group`` (Lightning's ``BaseFinetuning``)
      is adopted at the next step: from then on its lr is
      ``lr_joined * f(step) / f(step_joined)``, with ``f = join_factor``, so it keeps the
      ratio to the other groups it had when it joined;
    * ``joins`` (rules with ``unfreeze_at``) are added by the scheduler itself when
      their step comes, with their own base lr and schedule.

    Both are part of the state: after a resume the same groups are scheduled the same way.

    Args:
        optimizer: The optimizer whose groups are scheduled.
        factors: One lr factor function per param group.
        fingerprint: Plain data describing the run (group names, run length);
            a checkpoint with a different fingerprint is refused on load.
        last_epoch: Index of the last step taken (-1 = start).
        momentum: Per group, a momentum factor function or ``None`` (left alone).
        weight_decay: Per group, a weight-decay factor function or ``None``.
        joins: Groups that join later, in the order of their step.
        join_factor: The lr factor followed by groups added from outside (default:
            the first group's); ``join_momentum`` / ``join_weight_decay`` likewise.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
        >>> half = lambda step: 0.5 ** step
        >>> sched = ScheduleLR(opt, [half])
        >>> opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 0.1})
        >>> opt.step(); sched.step(); opt.step(); sched.step()
        >>> [round(g["lr"], 6) for g in opt.param_groups]  # the ratio 10:1 is kept
        [0.25, 0.025]

    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factors: Sequence[FactorFn],
        fingerprint: Mapping[str, Any] | None = None,
        last_epoch: int = -1,
        *,
        momentum: Sequence[FactorFn | None] | None = None,
        weight_decay: Sequence[FactorFn | None] | None = None,
        joins: Sequence[Join] = (),
        join_factor: FactorFn | None = None,
        join_momentum: FactorFn | None = None,
        join_weight_decay: FactorFn | None = None,
    ) -> None:
        n = len(optimizer.param_groups)
        for what, values in (("factor", factors), ("momentum", momentum), ("wd", weight_decay)):
            if values is not None and len(values) != n:
                raise ValueError(f"Expected {n} {what} functions, got {len(values)}")
        self.fingerprint = dict(fingerprint or {})
        self.join_factor = join_factor or factors[0]
        self.join_momentum = join_momentum
        self.join_weight_decay = join_weight_decay
        self._all_joins = sorted(joins, key=lambda j: j.step)
        self._initial = (
            list(factors),
            list(momentum or [None] * n),
            list(weight_decay or [None] * n),
        )
        self._reset_to_initial(optimizer)
        self._joins_hook = optimizer.register_load_state_dict_pre_hook(
            _add_joined_groups_before_load(self)
        )
        super().__init__(optimizer, last_epoch)

    # ----------------------------------------------------------------- stepping

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        """Advance one step (or jump to ``epoch``) and set every scheduled value.

        Unlike torch's chainable schedulers nothing depends on the previous values, so
        this skips ``get_lr``'s bookkeeping: one evaluation per distinct function, one
        multiply and one store per group.
        """
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(
                "Detected call of `lr_scheduler.step()` before `optimizer.step()`; the first "
                "value of the schedule is skipped (call optimizer.step() first)",
                UserWarning,
                stacklevel=2,
            )
        if epoch is not None and (
            isinstance(epoch, bool)
            or not isinstance(epoch, numbers.Real)
            or not float(epoch).is_integer()
        ):
            # int() would truncate 2.5 to 2 without a word: the schedule has integer steps.
            raise ValueError(
                f"ScheduleLR.step(epoch={epoch!r}): epoch must be a whole scheduler step "
                "(an int); the schedule is a function of integer steps"
            )
        self._step_count += 1
        in_force = self.last_epoch
        self.last_epoch = in_force + 1 if epoch is None else int(epoch)
        groups = self.optimizer.param_groups
        if len(groups) != len(self.factors):
            self._adopt_added_groups(in_force)
        if self._pending and self._pending[0].step <= self.last_epoch:
            self._join_due(self.last_epoch)
        self._apply(self.last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The lr of every group at the current step."""
        return self.lr_at(self.last_epoch)

    _get_closed_form_lr = get_lr

    def lr_at(self, step: int) -> list[float]:
        """The lr of every group now in the optimizer at ``step``, changing no state."""
        values = [f(step) for f in self._distinct]
        return [b * values[s] for b, s in zip(self.base_lrs, self._slots, strict=True)]

    def values_at(self, step: int) -> list[dict[str, float | None]]:
        """lr, momentum and weight decay of every group at ``step``, changing no state.

        Covers the groups in the optimizer and, after them, the groups that join later
        (``None`` before their step), in the order :attr:`group_names` lists them.
        """
        out = []
        lrs = self.lr_at(step)
        for i, group in enumerate(self.optimizer.param_groups):
            mom_f, wd_f = self.momentum_factors[i], self.weight_decay_factors[i]
            mom, wd = _momentum_of(group), group.get("weight_decay")
            out.append(
                {
                    "lr": lrs[i],
                    "momentum": self.base_momenta[i] * mom_f(step) if mom_f else _plain(mom),
                    "weight_decay": (
                        self.base_weight_decays[i] * wd_f(step) if wd_f else _plain(wd)
                    ),
                }
            )
        for join in self._pending:
            joined = step >= join.step
            # as add_param_group will fill it in: unset keys from the optimizer's defaults
            group = {**self.optimizer.defaults, **join.group}
            mom, wd = _momentum_of(group), group.get("weight_decay")
            if join.momentum is not None and mom is not None:
                mom = mom * join.momentum(step)
            if join.weight_decay is not None and wd is not None:
                wd = wd * join.weight_decay(step)
            out.append(
                {
                    "lr": join.group["lr"] * join.lr(step) if joined else None,
                    "momentum": _plain(mom) if joined else None,
                    "weight_decay": _plain(wd) if joined else None,
                }
            )
        return out

    @property
    def group_names(self) -> list[str]:
        """Names of the groups :meth:`values_at` covers (``pg<i>`` for unnamed ones)."""
        names = [
            str(g.get("name") or f"pg{i + 1}") for i, g in enumerate(self.optimizer.param_groups)
        ]
        return names + [j.name for j in self._pending]

    @property
    def join_steps(self) -> dict[str, int]:
        """``{group name: scheduler step it joined (or joins) at}`` for groups added mid-run."""
        done = {str(e["name"]): int(e["step"]) for e in self.joined}
        return {**done, **{j.name: j.step for j in self._pending}}

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the step, base values, joined groups and the run fingerprint."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "base_lrs": list(self.base_lrs),
            "base_momenta": list(self.base_momenta),
            "base_weight_decays": list(self.base_weight_decays),
            "_last_lr": list(self._last_lr),
            "joined": [dict(e) for e in self.joined],
            "fingerprint": dict(self.fingerprint),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the step and the groups that had joined; refuse a run of another shape.

        Raises:
            ConfigError: The checkpoint's groups or run length differ from this run's.

        """
        saved = state_dict.get("fingerprint") or {}
        for field, what in (("groups", "param groups"), ("total_steps", "run length")):
            if (
                field in saved
                and field in self.fingerprint
                and saved[field] != self.fingerprint[field]
            ):
                raise ConfigError(
                    f"optim ({field})",
                    f"the checkpoint was saved with {what} {saved[field]!r} but this run has "
                    f"{self.fingerprint[field]!r}; resuming would silently change the lr "
                    "sequence. Resume with the original config, or start a new run from "
                    "the checkpoint's weights with a fresh optimizer and schedule: "
                    "--weights_from CKPT instead of --ckpt_path CKPT",
                )
        self._reset_to_initial(self.optimizer)
        for entry in state_dict.get("joined", []):
            self._replay_join(entry)
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self.base_lrs = list(state_dict["base_lrs"])
        n = len(self.base_lrs)
        self.base_momenta = list(state_dict.get("base_momenta", self.base_momenta))[:n]
        self.base_weight_decays = list(
            state_dict.get("base_weight_decays", self.base_weight_decays)
        )[:n]
        self._last_lr = list(state_dict.get("_last_lr", self.lr_at(self.last_epoch)))

    # ----------------------------------------------------------------- internals

    def _reset_to_initial(self, optimizer: torch.optim.Optimizer) -> None:
        factors, momentum, weight_decay = self._initial
        groups = optimizer.param_groups[: len(factors)]
        self.factors = list(factors)
        self.momentum_factors = list(momentum)
        self.weight_decay_factors = list(weight_decay)
        self.base_momenta = [
            _base_momentum(g, f, i) for i, (g, f) in enumerate(zip(groups, momentum, strict=True))
        ]
        self.base_weight_decays = [
            float(g.get("weight_decay", 0.0)) if f else None
            for g, f in zip(groups, weight_decay, strict=True)
        ]
        if hasattr(self, "base_lrs"):
            self.base_lrs = self.base_lrs[: len(factors)]
        #: Groups added mid-run so far: ``{"name", "step", "source": "rule" | "added"}``.
        self.joined: list[dict[str, Any]] = []
        self._pending = list(self._all_joins)
        self._index()

    def _index(self) -> None:
        """Which distinct function each group uses, so each is evaluated once per step."""
        slot_of: dict[int, int] = {}
        self._distinct: list[FactorFn] = []
        self._slots: list[int] = []
        for f in self.factors:
            if id(f) not in slot_of:
                slot_of[id(f)] = len(self._distinct)
                self._distinct.append(f)
            self._slots.append(slot_of[id(f)])
        hyper = (("momentum", self.momentum_factors), ("weight_decay", self.weight_decay_factors))
        self._hyper = [(i, key, f) for key, fs in hyper for i, f in enumerate(fs) if f is not None]

    def _apply(self, step: int) -> None:
        values = [f(step) for f in self._distinct]
        groups = self.optimizer.param_groups
        lrs = [b * values[s] for b, s in zip(self.base_lrs, self._slots, strict=True)]
        for group, lr in zip(groups, lrs, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        for i, key, f in self._hyper:
            group = groups[i]
            if key == "weight_decay":
                group["weight_decay"] = self.base_weight_decays[i] * f(step)
            elif "betas" in group:
                group["betas"] = (self.base_momenta[i] * f(step), *group["betas"][1:])
            else:
                group["momentum"] = self.base_momenta[i] * f(step)
        self._last_lr = lrs

    def _adopt_added_groups(self, in_force: int) -> None:
        """Schedule groups added from outside since the last step, keeping their lr ratio."""
        groups = self.optimizer.param_groups
        if len(groups) < len(self.factors):
            raise RuntimeError(
                f"ScheduleLR schedules {len(self.factors)} param groups but the optimizer now "
                f"has {len(groups)}; removing param groups during training is not supported"
            )
        for group in groups[len(self.factors) :]:
            name = group.get("name") or f"pg{len(self.factors) + 1}"
            step = max(in_force, 0)
            self._attach(group, self.join_factor, self.join_momentum, self.join_weight_decay, step)
            self.joined.append({"name": name, "step": step, "source": "added"})

    def _attach(
        self,
        group: dict[str, Any],
        lr: FactorFn,
        momentum: FactorFn | None,
        weight_decay: FactorFn | None,
        step: int,
        relative: bool = True,
    ) -> None:
        """Schedule ``group`` from ``step`` on; ``relative``: its values are those at ``step``."""
        name = group.get("name") or f"pg{len(self.factors) + 1}"

        def base(value: float, f: FactorFn, what: str) -> float:
            if not relative:
                return value
            at = f(step)
            if at == 0:
                raise RuntimeError(
                    f"param group {name!r} was added at step {step}, where the {what} schedule "
                    "is 0, so its ratio to the other groups is undefined; add it at a step "
                    "where the schedule is above 0 (after the first warmup step, or give the "
                    "schedule a min_factor)"
                )
            return value / at

        self.base_lrs.append(base(_plain(group["lr"]), lr, "lr"))
        group.setdefault("initial_lr", self.base_lrs[-1])
        self.factors.append(lr)
        mom = _momentum_of(group)
        use_mom = momentum is not None and mom is not None
        self.momentum_factors.append(momentum if use_mom else None)
        self.base_momenta.append(base(mom, momentum, "momentum") if use_mom else None)
        use_wd = weight_decay is not None and "weight_decay" in group
        self.weight_decay_factors.append(weight_decay if use_wd else None)
        self.base_weight_decays.append(
            base(float(group["weight_decay"]), weight_decay, "weight decay") if use_wd else None
        )
        self._index()

    def _join_due(self, step: int) -> None:
        while self._pending and self._pending[0].step <= step:
            join = self._pending.pop(0)
            group = _add_to_optimizer(self.optimizer, join)
            self._attach(group, join.lr, join.momentum, join.weight_decay, join.step, False)
            self.joined.append({"name": join.name, "step": join.step, "source": "rule"})

    def _replay_join(self, entry: Mapping[str, Any]) -> None:
        groups = self.optimizer.param_groups
        if entry.get("source") == "rule":
            join = next((j for j in self._pending if j.name == entry["name"]), None)
            if join is None:
                raise ConfigError(
                    "optim.groups",
                    f"the checkpoint has group {entry['name']!r} joined by unfreeze_at, which "
                    "this config does not have; resume with the original config",
                )
            self._pending.remove(join)
            group = _add_to_optimizer(self.optimizer, join)
            self._attach(group, join.lr, join.momentum, join.weight_decay, join.step, False)
        else:
            if len(groups) <= len(self.factors):
                raise ConfigError(
                    "optim",
                    f"the checkpoint has param group {entry['name']!r}, added during training, "
                    "but the optimizer does not; add it before loading (BaseFinetuning does "
                    "this in on_fit_start)",
                )
            group = groups[len(self.factors)]
            # BaseFinetuning restores the group on resume but not requires_grad, so the
            # group would silently stop training (Lightning #21901); it was added to train.
            for p in group["params"]:
                p.requires_grad_(True)
            self._attach(
                group, self.join_factor, self.join_momentum, self.join_weight_decay, 0, False
            )
        self.joined.append(dict(entry))


def _add_to_optimizer(optimizer: torch.optim.Optimizer, join: Join) -> dict[str, Any]:
    """Unfreeze ``join``'s parameters and add its group (unless a resume already did)."""
    first = join.group["params"][0]
    for group in optimizer.param_groups:
        if any(p is first for p in group["params"]):
            return group
    for p in join.group["params"]:
        p.requires_grad_(True)
    optimizer.add_param_group(dict(join.group))
    return optimizer.param_groups[-1]


def _add_joined_groups_before_load(scheduler: ScheduleLR) -> Callable[..., None]:
    """An optimizer load pre-hook adding the groups a checkpoint has joined (by name).

    Lightning restores the optimizer before the scheduler; a checkpoint taken after a
    rule's ``unfreeze_at`` holds that group, which a fresh optimizer does not have yet.
    """
    ref = weakref.ref(scheduler)

    def hook(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
        sched = ref()
        saved = state_dict.get("param_groups", [])
        if sched is None or len(saved) <= len(optimizer.param_groups):
            return
        by_name = {j.name: j for j in sched._all_joins}
        for group in saved[len(optimizer.param_groups) :]:
            join = by_name.get(str(group.get("name")))
            if join is not None:
                _add_to_optimizer(optimizer, join)

    return hook


def _momentum_of(group: Mapping[str, Any]) -> float | None:
    if "betas" in group:
        return _plain(group["betas"][0])
    value = group.get("momentum")
    return None if value is None else _plain(value)


def _base_momentum(group: Mapping[str, Any], factor: FactorFn | None, index: int) -> float | None:
    if factor is None:
        return None
    value = _momentum_of(group)
    if value is None:
        raise ConfigError(
            "optim.momentum_schedule",
            f"param group {group.get('name', index)!r} has neither momentum nor betas; a "
            "momentum schedule needs an optimizer with one (SGD with momentum, Adam, ...)",
        )
    return value


def _plain(value: Any) -> Any:
    return float(value.item()) if isinstance(value, torch.Tensor) else value


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
            (defaults to those of ``groups``).
        groups: The group assignment ``optimizer`` was built on (per-group schedules,
            groups that join later); defaults to what :func:`build_optimizer` built.

    Returns:
        A :class:`ScheduleLR`, a torch scheduler, or ``None`` when nothing is scheduled.

    Raises:
        ConfigError: Unknown schedule, bad arguments, or a schedule that needs a run
            length that is unknown.

    """
    recorded = groups if groups is not None else groups_of(optimizer)
    if group_schedules is None:
        group_schedules = recorded.schedules if recorded is not None else None
    n = len(optimizer.param_groups)
    group_specs = list(group_schedules or [None] * n)
    pending = list(recorded.pending) if recorded is not None else []
    rule_configs = (recorded.rule_configs if recorded is not None else None) or [None] * n
    known = total_steps is not None and math.isfinite(total_steps) and total_steps > 0
    if is_torch_scheduler(config.schedule):
        _refuse_mixing_with_torch(config, group_specs, pending, rule_configs)
        return _build_torch_scheduler(
            optimizer, config, int(total_steps) if known else None, steps_per_epoch
        )
    hyper = [
        config.momentum_schedule,
        config.momentum_warmup,
        config.weight_decay_schedule,
        config.weight_decay_warmup,
        *(
            s
            for r in rule_configs
            if r is not None
            for s in (r.momentum_schedule, r.weight_decay_schedule)
        ),
    ]
    nothing = config.schedule is None and config.warmup is None
    if nothing and all(s is None for s in [*group_specs, *hyper]) and not pending:
        return None
    rule_index = _rule_indices(config, rule_configs)
    factors = _Factors(config, group_specs, rule_configs, rule_index, pending)
    horizon = _horizon(config, factors.schedules(), total_steps if known else None, steps_per_epoch)
    factors.horizon = horizon
    joins = [
        Join(
            _join_step(p, config, horizon if known else None, steps_per_epoch),
            p.group,
            factors.lr(p.schedule, p.rule_index),
            factors.hyper("momentum", p.rule_config, p.rule_index),
            factors.hyper("weight_decay", p.rule_config, p.rule_index),
        )
        for p in pending
    ]
    fingerprint = {
        "groups": [g.get("name", str(i)) for i, g in enumerate(optimizer.param_groups)],
        "total_steps": horizon.total_steps if known else None,
    }
    return ScheduleLR(
        optimizer,
        [factors.lr(spec, rule_index[i]) for i, spec in enumerate(group_specs)],
        fingerprint,
        momentum=[factors.hyper("momentum", r, rule_index[i]) for i, r in enumerate(rule_configs)],
        weight_decay=[
            factors.hyper("weight_decay", r, rule_index[i]) for i, r in enumerate(rule_configs)
        ],
        joins=joins,
        join_factor=factors.lr(None, None),
        join_momentum=factors.hyper("momentum", None, None),
        join_weight_decay=factors.hyper("weight_decay", None, None),
    )


class _Factors:
    """Factor functions resolved once per distinct spec, so groups sharing one share it.

    ScheduleLR evaluates each distinct function once per step: 600 groups under one
    schedule cost one evaluation, not 600.
    """

    def __init__(
        self,
        config: OptimConfig,
        group_specs: Sequence[Any],
        rule_configs: Sequence[GroupRule | None],
        rule_index: Sequence[int | None],
        pending: Sequence[PendingGroup],
    ) -> None:
        self.config = config
        self.horizon: Horizon | None = None
        self._built: dict[tuple[str, int], Schedule | None] = {}
        self._resolved: dict[tuple[str, int], FactorFn | None] = {}
        self._specs = [
            *(("lr", s, i) for s, i in zip(group_specs, rule_index, strict=True)),
            *(("lr", p.schedule, p.rule_index) for p in pending),
        ]
        rules = [
            *zip(rule_configs, rule_index, strict=True),
            *((p.rule_config, p.rule_index) for p in pending),
        ]
        for what in ("momentum", "weight_decay"):
            self._specs.append((what, getattr(config, f"{what}_schedule"), None))
            self._specs.extend(
                (what, getattr(r, f"{what}_schedule"), i) for r, i in rules if r is not None
            )

    def schedules(self) -> list[Schedule | None]:
        """Every schedule in use (to check which need the run length)."""
        out = [self._schedule("lr", None, None)]
        for what, spec, index in self._specs:
            out.append(self._schedule(what, spec, index))
        return out

    def lr(self, spec: Any, rule_index: int | None) -> FactorFn:
        """The lr factor of a group whose rule has ``schedule: spec`` (``None``: global)."""
        f = self._resolve("lr", spec, rule_index)
        assert f is not None  # lr always has a factor (Constant when nothing is given)
        return f

    def hyper(self, what: str, rule: GroupRule | None, rule_index: int | None) -> FactorFn | None:
        """The momentum / weight-decay factor of a group of ``rule``, or ``None``."""
        spec = getattr(rule, f"{what}_schedule") if rule is not None else None
        return self._resolve(what, spec, rule_index)

    def _schedule(self, what: str, spec: Any, rule_index: int | None) -> Schedule | None:
        if spec is None:
            name = "schedule" if what == "lr" else f"{what}_schedule"
            spec = getattr(self.config, name)
            rule_index = None
        cache = (what, id(spec))
        if cache not in self._built:
            key = _key(what, rule_index)
            if rule_index is not None and is_torch_scheduler(spec):
                raise ConfigError(
                    key,
                    "a per-group schedule must be a lit_optim schedule (Poly, Cosine, "
                    "Lambda, ...); torch schedulers act on all groups at once",
                )
            self._built[cache] = build_schedule(spec, key)
        return self._built[cache]

    def _resolve(self, what: str, spec: Any, rule_index: int | None) -> FactorFn | None:
        schedule = self._schedule(what, spec, rule_index)
        if spec is None:
            rule_index = None
        warmup_name = "warmup" if what == "lr" else f"{what}_warmup"
        warmup = getattr(self.config, warmup_name)
        if what != "lr" and schedule is None and warmup is None:
            return None
        cache = (what, id(schedule))
        if cache not in self._resolved:
            assert self.horizon is not None  # set by build_scheduler before resolving
            self._resolved[cache] = resolve_factor(
                schedule,
                warmup,
                self.horizon,
                key=_key(what, rule_index),
                warmup_key=f"optim.{warmup_name}",
            )
        return self._resolved[cache]


def _key(what: str, rule_index: int | None) -> str:
    name = "schedule" if what == "lr" else f"{what}_schedule"
    return f"optim.{name}" if rule_index is None else f"optim.groups[{rule_index}].{name}"


def _rule_indices(
    config: OptimConfig, rule_configs: Sequence[GroupRule | None]
) -> list[int | None]:
    """Index in ``optim.groups`` of each group's rule (for key paths in errors)."""
    index = {id(r): i for i, r in enumerate(config.groups)}
    return [index.get(id(r)) if r is not None else None for r in rule_configs]


def _join_step(
    pending: PendingGroup,
    config: OptimConfig,
    horizon: Horizon | None,
    steps_per_epoch: int | None,
) -> int:
    """The scheduler step at which a rule with ``unfreeze_at`` joins."""
    key = f"optim.groups[{pending.rule_index}].unfreeze_at"
    at = pending.unfreeze_at
    freq = config.frequency
    if config.interval == "epoch":
        if at.step is not None:
            raise ConfigError(
                f"{key}.step",
                "with interval: epoch the schedule moves once per epoch; give "
                "unfreeze_at.epoch instead",
            )
        step = -(-int(at.epoch) // freq)
    elif at.step is not None:
        step = -(-int(at.step) // freq)
    else:
        if not steps_per_epoch:
            raise ConfigError(
                f"{key}.epoch",
                "the steps per epoch are unknown before fit (training data without a "
                "length); give unfreeze_at.step instead",
            )
        step = int(at.epoch) * int(steps_per_epoch)
    if horizon is not None and step >= horizon.total_steps:
        given = f"epoch {at.epoch}" if at.epoch is not None else f"step {at.step}"
        raise ConfigError(
            key,
            f"{given} is past the end of the run ({horizon.total_steps} scheduler steps), "
            "so the group would never train; unfreeze earlier or train longer",
        )
    return step


def is_torch_scheduler(spec: Any) -> bool:
    """Whether a schedule spec names a torch scheduler class (``LRScheduler`` or plateau)."""
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    if isinstance(path, type):
        return issubclass(path, LRScheduler | ReduceLROnPlateau)
    if not isinstance(path, str) or "." not in path:
        return path in _torch_scheduler_names() if isinstance(path, str) else False
    module_name, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr, None)
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, LRScheduler | ReduceLROnPlateau)


def _torch_scheduler_names() -> dict[str, type]:
    module = torch.optim.lr_scheduler
    return {
        n: getattr(module, n)
        for n in dir(module)
        if isinstance(getattr(module, n), type)
        and issubclass(getattr(module, n), LRScheduler | ReduceLROnPlateau)
        and n not in ("LRScheduler", "_LRScheduler")
    }


def _schedule_key(spec: Any, index: int, config: OptimConfig) -> str:
    """Config key of a per-group spec: the rule it came from, else its group_schedules slot."""
    if spec is None:
        return "optim.schedule"
    for i, rule in enumerate(config.groups):
        if rule.schedule is spec:
            return f"optim.groups[{i}].schedule"
    return f"group_schedules[{index}]"


class RunLengthUnknown(ConfigError):
    """A schedule needs the run length and ``build_scheduler`` got no ``total_steps``.

    Worded for a plain-Python caller; :meth:`for_trainer` words it for a Lightning run,
    whose length comes from the trainer and the data.

    Attributes:
        what: What needs the length (``Poly needs the length of the run``).
        setting: A config key that would give the length instead, or ``""``.

    """

    def __init__(self, what: str, setting: str = "", arg: str = "total_steps") -> None:
        self.what, self.setting, self.arg = what, setting, arg
        also = f", or set {setting}" if setting else ""
        meaning = {
            "total_steps": "how many times scheduler.step() is called over the run",
            "steps_per_epoch": "scheduler steps per epoch",
        }[arg]
        super().__init__(
            "build_scheduler", f"{what}, but {arg} is None; pass {arg}=<{meaning}>{also}"
        )

    def __reduce__(self) -> tuple[type[RunLengthUnknown], tuple[str, str, str]]:  # type: ignore[override]
        return (type(self), (self.what, self.setting, self.arg))

    def for_trainer(self) -> ConfigError:
        """The same error for a Lightning run: what to set on the trainer."""
        also = f"{self.setting}, " if self.setting else ""
        return ConfigError(
            "trainer.max_steps",
            f"{self.what}, which is unknown (max_epochs is -1 or the training data has no "
            f"length); set {also}trainer.max_steps, or trainer.max_epochs with a sized dataset",
        )


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


def _refuse_mixing_with_torch(
    config: OptimConfig,
    group_specs: Sequence[Any],
    pending: Sequence[PendingGroup] = (),
    rule_configs: Sequence[GroupRule | None] = (),
) -> None:
    if config.warmup is not None:
        raise ConfigError(
            "optim.warmup",
            "warmup composes with lit_optim schedules only; a torch scheduler given by "
            "class_path runs as it is (use OneCycleLR's pct_start, or a lit_optim schedule)",
        )
    for i, spec in enumerate(group_specs):
        if spec is not None:
            raise ConfigError(
                _schedule_key(spec, i, config),
                "per-group schedules need a lit_optim schedule as optim.schedule, not a torch "
                "scheduler",
            )
    for name in ("momentum_schedule", "weight_decay_schedule"):
        if getattr(config, name) is not None or any(
            getattr(r, name) is not None for r in rule_configs if r is not None
        ):
            raise ConfigError(
                f"optim.{name}",
                f"{name} needs a lit_optim schedule as optim.schedule, not a torch scheduler",
            )
    if pending:
        raise ConfigError(
            f"optim.groups[{pending[0].rule_index}].unfreeze_at",
            "groups that join mid-run need a lit_optim schedule as optim.schedule, not a "
            "torch scheduler (the torch scheduler does not know the group)",
        )


def _build_torch_scheduler(
    optimizer: torch.optim.Optimizer,
    config: OptimConfig,
    total_steps: int | None,
    steps_per_epoch: int | None,
) -> SchedulerLike:
    spec = config.schedule
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    init_args = dict((spec.get("init_args") or {}) if isinstance(spec, Mapping) else {})
    key = "optim.schedule"
    cls = path if isinstance(path, type) else _torch_scheduler_class(str(path), key)
    params = inspect.signature(cls.__init__).parameters
    names = [n for n in params if n not in ("self", "optimizer")]
    for name in init_args:
        if name not in names:
            raise ConfigError(
                f"{key}.init_args.{name}",
                f"not an argument of {cls.__name__}{closest(name, names)} "
                f"(valid: {', '.join(names)})",
            )
    if cls is torch.optim.lr_scheduler.OneCycleLR:
        init_args.setdefault("max_lr", [g["lr"] for g in optimizer.param_groups])
        if "total_steps" not in init_args and "epochs" not in init_args:
            init_args["total_steps"] = _need_total(total_steps, cls, "total_steps")
    else:
        for name in _TOTAL_ARGS:
            if name in params and name not in init_args:
                init_args[name] = _need_total(total_steps, cls, name)
    if issubclass(cls, ReduceLROnPlateau) and not config.monitor:
        raise ConfigError(
            "optim.monitor",
            "ReduceLROnPlateau needs a metric to watch; set optim.monitor (e.g. val_loss)",
        )
    missing = [
        n
        for n, p in params.items()
        if n not in ("self", "optimizer")
        and p.default is p.empty
        and n not in init_args
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if missing:
        raise ConfigError(f"{key}.init_args.{missing[0]}", f"{cls.__name__} needs a value for it")
    try:
        return cls(optimizer, **init_args)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}.init_args", f"{cls.__name__} refused them: {err}") from None
    except KeyError as err:
        # Groups of several optimizers (AdamW's betas beside Muon's momentum) differ in keys.
        raise ConfigError(
            f"{key}.init_args",
            f"{cls.__name__} needs {err} in every param group, but not every group of "
            f"{getattr(optimizer, 'lit_optim_name', type(optimizer).__name__)} has it "
            "(for momentum cycling, set cycle_momentum: false)",
        ) from None


def _torch_scheduler_class(path: str, key: str) -> type:
    names = _torch_scheduler_names()
    if "." not in path:
        return names[path]
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _need_total(total_steps: int | None, cls: type, name: str) -> int:
    if total_steps is None:
        raise RunLengthUnknown(f"{cls.__name__} needs {name}", f"optim.schedule.init_args.{name}")
    return total_steps
