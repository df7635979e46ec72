"""Groups joining mid-run: rules with ``unfreeze_at``, and when their step comes.

A rule with ``unfreeze_at`` keeps its parameters frozen and out of the optimizer until
its scheduler step; :class:`~lit_optim.core.scheduler.ScheduleLR` then adds the group
(:func:`add_to_optimizer`) and schedules it as if it had always been there. On resume the
optimizer is loaded before the scheduler, so a load pre-hook
(:func:`add_joined_groups_before_load`) adds the groups the checkpoint has.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.result import PendingGroup
from lit_optim.core.schedules import FactorFn, Horizon

__all__ = ["Join", "add_joined_groups_before_load", "add_to_optimizer", "join_step"]


@dataclass
class Join:
    """A param group that joins the optimizer at scheduler step ``step``.

    Built from a group rule with ``unfreeze_at``: its parameters stay frozen
    (``requires_grad=False``) and out of the optimizer until then.

    Attributes:
        step: Scheduler step from which the group trains.
        group: The optimizer group dict (``params``, ``name``, ``lr``, ...).
        factors: ``{field name: factor function or None}`` of the group (``lr`` always
            has one: the same as if the group had always been there).

    """

    step: int
    group: dict[str, Any]
    factors: Mapping[str, FactorFn | None]

    @property
    def name(self) -> str:
        """The group's name."""
        return str(self.group.get("name"))


def join_step(
    pending: PendingGroup,
    config: OptimConfig,
    horizon: Horizon | None,
    steps_per_epoch: int | None,
) -> int:
    """The scheduler step at which a rule with ``unfreeze_at`` joins.

    Args:
        pending: The rule's group.
        config: The ``optim:`` section (``interval``, ``frequency``).
        horizon: The run's length when known (a step past its end is refused).
        steps_per_epoch: Scheduler steps per epoch, when known.

    Raises:
        ConfigError: The step is past the end of the run, or cannot be known.

    """
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


def add_to_optimizer(optimizer: torch.optim.Optimizer, join: Join) -> dict[str, Any]:
    """Unfreeze ``join``'s parameters and add its group (unless a resume already did)."""
    first = join.group["params"][0]
    for group in optimizer.param_groups:
        if any(p is first for p in group["params"]):
            return group
    for p in join.group["params"]:
        p.requires_grad_(True)
    optimizer.add_param_group(dict(join.group))
    return optimizer.param_groups[-1]


class _HasJoins(Protocol):
    @property
    def all_joins(self) -> Sequence[Join]: ...


def add_joined_groups_before_load(scheduler: _HasJoins) -> Callable[..., None]:
    """An optimizer load pre-hook adding the groups a checkpoint has joined (by name).

    Lightning restores the optimizer before the scheduler; a checkpoint taken after a
    rule's ``unfreeze_at`` holds that group, which a fresh optimizer does not have yet.
    The hook holds the scheduler weakly (the optimizer must not keep it alive).
    """
    ref = weakref.ref(scheduler)

    def hook(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
        sched = ref()
        saved = state_dict.get("param_groups", [])
        if sched is None or len(saved) <= len(optimizer.param_groups):
            return
        by_name = {j.name: j for j in sched.all_joins}
        for group in saved[len(optimizer.param_groups) :]:
            join = by_name.get(str(group.get("name")))
            if join is not None:
                add_to_optimizer(optimizer, join)

    return hook
