"""``ScheduleLR``: one ``LRScheduler`` applying ``base[g] * f_g(step)`` in closed form.

Every scheduled group field (lr, and momentum / weight decay where configured) is one
:class:`~lit_optim.core.scheduler.track.Track`; the step count is the whole state.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from lit_optim.core.errors import ConfigError
from lit_optim.core.scheduler.joins import Join, add_joined_groups_before_load, add_to_optimizer
from lit_optim.core.scheduler.track import FIELDS, LR, MOMENTUM, WEIGHT_DECAY, Track
from lit_optim.core.schedules import FactorFn

__all__ = ["ScheduleLR"]

# state_dict keys of each field's base values (the checkpoint format; never renamed).
_BASE_KEYS = {"lr": "base_lrs", "momentum": "base_momenta", "weight_decay": "base_weight_decays"}


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
        given = {LR: factors, MOMENTUM: momentum, WEIGHT_DECAY: weight_decay}
        for field, values in given.items():
            if values is not None and len(values) != n:
                what = "factor" if field is LR else field.label
                raise ValueError(f"Expected {n} {what} functions, got {len(values)}")
        self.fingerprint = dict(fingerprint or {})
        #: ``{field name: its factor functions}`` of the groups built with the optimizer.
        self._initial = {f.name: list(v if v is not None else [None] * n) for f, v in given.items()}
        #: The factors followed by groups added from outside, per field name.
        self._join_factors = {
            LR.name: join_factor or factors[0],
            MOMENTUM.name: join_momentum,
            WEIGHT_DECAY.name: join_weight_decay,
        }
        self.all_joins = sorted(joins, key=lambda j: j.step)
        self._tracks = [Track(field) for field in FIELDS]
        self._reset_to_initial(optimizer)
        self._joins_hook = optimizer.register_load_state_dict_pre_hook(
            add_joined_groups_before_load(self)
        )
        super().__init__(optimizer, last_epoch)

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The lr, momentum and weight-decay tracks, in that order."""
        return tuple(self._tracks)

    @property
    def base_lrs(self) -> list[Any]:  # type: ignore[override]
        """Per group, the lr its factor multiplies (torch's ``initial_lr``)."""
        return self._tracks[0].bases

    @base_lrs.setter
    def base_lrs(self, values: Sequence[Any]) -> None:
        # LRScheduler.__init__ sets them from every group's initial_lr.
        lr = self._tracks[0]
        lr.reset(lr.factors, list(values))

    # ----------------------------------------------------------------- stepping

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        """Advance one step (or jump to ``epoch``) and set every scheduled value.

        Unlike torch's chainable schedulers nothing depends on the previous values, so
        this skips ``get_lr``'s bookkeeping: one evaluation per distinct function, one
        multiply and one store per scheduled group value.
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
        if len(self.optimizer.param_groups) != len(self._tracks[0]):
            self._adopt_added_groups(in_force)
        if self._pending and self._pending[0].step <= self.last_epoch:
            self._join_due(self.last_epoch)
        self._apply(self.last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The lr of every group at the current step."""
        return self.lr_at(self.last_epoch)

    def lr_at(self, step: int) -> list[float]:
        """The lr of every group now in the optimizer at ``step``, changing no state."""
        return self._tracks[0].values(step)

    def values_at(self, step: int) -> list[dict[str, float | None]]:
        """lr, momentum and weight decay of every group at ``step``, changing no state.

        Covers the groups in the optimizer and, after them, the groups that join later
        (``None`` before their step), in the order :attr:`group_names` lists them.
        """
        groups = self.optimizer.param_groups
        out: list[dict[str, float | None]] = [{} for _ in groups]
        for track in self._tracks:
            field = track.field
            for values, group, factor, value in zip(
                out, groups, track.factors, track.values(step), strict=True
            ):
                values[field.name] = value if factor is not None else field.get(group)
        for join in self._pending:
            joined = step >= join.step
            # as add_param_group will fill it in: unset keys from the optimizer's defaults
            group = {**self.optimizer.defaults, **join.group}
            row: dict[str, float | None] = {}
            for field in FIELDS:
                value, factor = field.get(group), join.factors.get(field.name)
                if factor is not None and value is not None:
                    value = value * factor(step)
                row[field.name] = value if joined else None
            out.append(row)
        return out

    @property
    def group_names(self) -> list[str]:
        """Names of the groups :meth:`values_at` covers (``pg<i>`` for unnamed ones)."""
        names = [
            str(g.get("name") or f"pg{i + 1}") for i, g in enumerate(self.optimizer.param_groups)
        ]
        return names + [j.name for j in self._pending]

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the step, base values, joined groups and the run fingerprint."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            **{_BASE_KEYS[t.field.name]: list(t.bases) for t in self._tracks},
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
        self.base_lrs = state_dict["base_lrs"]
        n = len(self.base_lrs)
        for track in self._tracks[1:]:
            # checkpoints of older versions have no momentum / weight-decay bases
            bases = list(state_dict.get(_BASE_KEYS[track.field.name], track.bases))[:n]
            track.reset(track.factors[:n], bases)
        self._last_lr = list(state_dict.get("_last_lr", self.lr_at(self.last_epoch)))

    # ----------------------------------------------------------------- internals

    def _reset_to_initial(self, optimizer: torch.optim.Optimizer) -> None:
        n = len(self._initial[LR.name])
        groups = optimizer.param_groups[:n]
        for track in self._tracks:
            factors = self._initial[track.field.name]
            if track.field is LR:
                # LRScheduler.__init__ sets the lr bases (initial_lr) once the track exists.
                bases = track.bases[:n] if len(track.bases) >= n else [None] * n
            else:
                pairs = enumerate(zip(groups, factors, strict=True))
                bases = [track.field.base(g, f, i) for i, (g, f) in pairs]
            track.reset(factors, bases)
        #: Groups added mid-run so far: ``{"name", "step", "source": "rule" | "added"}``.
        self.joined: list[dict[str, Any]] = []
        self._pending = list(self.all_joins)
        self._apply_tracks = [t for t in self._tracks if t.scheduled]

    def _apply(self, step: int) -> None:
        groups = self.optimizer.param_groups
        for track in self._apply_tracks:
            values = track.apply(groups, step)
            if track.field is LR:
                self._last_lr = values

    def _adopt_added_groups(self, in_force: int) -> None:
        """Schedule groups added from outside since the last step, keeping their lr ratio."""
        groups = self.optimizer.param_groups
        n = len(self._tracks[0])
        if len(groups) < n:
            raise RuntimeError(
                f"ScheduleLR schedules {n} param groups but the optimizer now "
                f"has {len(groups)}; removing param groups during training is not supported"
            )
        for group in groups[n:]:
            name = group.get("name") or f"pg{len(self._tracks[0]) + 1}"
            step = max(in_force, 0)
            self._attach(group, self._join_factors, step)
            self.joined.append({"name": name, "step": step, "source": "added"})

    def _attach(
        self,
        group: dict[str, Any],
        factors: Mapping[str, FactorFn | None],
        step: int,
        relative: bool = True,
    ) -> None:
        """Schedule ``group`` from ``step`` on; ``relative``: its values are those at ``step``."""
        name = group.get("name") or f"pg{len(self._tracks[0]) + 1}"
        for track in self._tracks:
            factor, value = factors.get(track.field.name), track.field.get(group)
            if factor is None or value is None:
                track.append(None, None)
                continue
            if relative:
                at = factor(step)
                if at == 0:
                    raise RuntimeError(
                        f"param group {name!r} was added at step {step}, where the "
                        f"{track.field.label} schedule is 0, so its ratio to the other groups "
                        "is undefined; add it at a step where the schedule is above 0 (after "
                        "the first warmup step, or give the schedule a min_factor)"
                    )
                value = value / at
            track.append(factor, value)
        group.setdefault("initial_lr", self.base_lrs[-1])
        self._apply_tracks = [t for t in self._tracks if t.scheduled]

    def _join_due(self, step: int) -> None:
        while self._pending and self._pending[0].step <= step:
            join = self._pending.pop(0)
            group = add_to_optimizer(self.optimizer, join)
            self._attach(group, join.factors, join.step, relative=False)
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
            group = add_to_optimizer(self.optimizer, join)
            self._attach(group, join.factors, join.step, relative=False)
        else:
            n = len(self._tracks[0])
            if len(groups) <= n:
                raise ConfigError(
                    "optim",
                    f"the checkpoint has param group {entry['name']!r}, added during training, "
                    "but the optimizer does not; add it before loading (BaseFinetuning does "
                    "this in on_fit_start)",
                )
            group = groups[n]
            # BaseFinetuning restores the group on resume but not requires_grad, so the
            # group would silently stop training (Lightning #21901); it was added to train.
            for p in group["params"]:
                p.requires_grad_(True)
            self._attach(group, self._join_factors, 0, relative=False)
        self.joined.append(dict(entry))
