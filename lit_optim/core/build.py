"""``build``: the one build of what ``fit`` trains with, from a model, a section and a plan.

``configure_optimizers``, the CLI's check before ``fit`` and every tool (``plot``,
``groups``, ``compare``, ``lr-find``) call :func:`build`. It is pure: the model is not
changed. What ``fit`` must freeze comes back in :attr:`Built.freeze`; only
``configure_optimizers`` applies it (:func:`apply_freeze`).

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig
    >>> from lit_optim.core.plan import RunPlan, TrainLoop
    >>> model = torch.nn.ModuleDict({"stem": torch.nn.Linear(2, 2), "head": torch.nn.Linear(2, 1)})
    >>> cfg = OptimConfig(optimizer="SGD", schedule="Cosine",
    ...                   groups=[{"name": "stem", "params": ["stem.*"], "frozen": True}])
    >>> [built] = build(model, cfg, lambda c: RunPlan.of(c, TrainLoop(10, max_epochs=1)))
    >>> [g["name"] for g in built.optimizer.param_groups], len(built.freeze)
    (['default'], 2)
    >>> model["stem"].weight.requires_grad  # nothing changed until fit applies it
    True

"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lit_optim.core.config import OptimConfig, rekey
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups import ParamGroups
from lit_optim.core.lr_scaling import BatchScale, apply_batch_scale
from lit_optim.core.optimizers import optimizer_and_groups
from lit_optim.core.plan import RunPlan
from lit_optim.core.run_length import RunLengthUnknown
from lit_optim.core.scheduler import SchedulerLike, build_scheduler
from lit_optim.core.several import assign

__all__ = ["Built", "apply_freeze", "build"]

#: ``entry section -> its run plan``, or ``None`` while the run length is not known yet
#: (then no scheduler is built; ``fit`` builds it once the trainer knows the length).
PlanOf = Callable[[OptimConfig], "RunPlan | None"]


@dataclass(frozen=True)
class Built:
    """One optimizer as ``fit`` builds it (nothing trained, the model untouched).

    Attributes:
        name: The entry's key under ``optim.optimizers``; ``None`` for the one optimizer.
        config: The one-optimizer section it was built from.
        optimizer: The optimizer over the model's parameters (no state yet).
        groups: The param-group assignment (and what to freeze).
        scheduler: Its scheduler, or ``None`` (nothing scheduled, or no plan yet).
        plan: The run plan the scheduler was built on, or ``None``.
        scale: ``optim.lr_scaling`` as resolved on the trainer, or ``None``.

    """

    name: str | None
    config: OptimConfig
    optimizer: torch.optim.Optimizer
    groups: ParamGroups
    scheduler: SchedulerLike | None
    plan: RunPlan | None
    scale: BatchScale | None = None

    @property
    def freeze(self) -> list[torch.Tensor]:
        """Parameters ``fit`` sets to ``requires_grad=False``."""
        return self.groups.freeze


def build(
    model: nn.Module,
    config: OptimConfig,
    plan_of: PlanOf,
    *,
    scale: BatchScale | None = None,
    trainer: Any = None,
    frozen_start: bool = False,
) -> list[Built]:
    """Build every optimizer of ``config`` on ``model``, in ``self.optimizers()`` order.

    One entry for a one-optimizer section; one per ``optim.optimizers`` entry otherwise.

    Args:
        model: The model as ``fit`` will see it (its ``configure_model`` layers included).
        config: The ``optim:`` section.
        plan_of: The run plan of each (entry) section; see :data:`PlanOf`.
        scale: ``optim.lr_scaling`` resolved on the trainer (multiplies every lr first).
        trainer: The Lightning trainer that will run it, if any (mixed precision).
        frozen_start: A callback unfreezes parameters during the run (BaseFinetuning):
            an all-frozen model then starts with an optimizer over its frozen parameters.

    Raises:
        ConfigError: Whatever ``fit`` would raise for this section on this model and run
            (key paths ``optim.optimizers.<name>...`` for an entry).

    """
    if config.optimizers is None:
        return [_one(model, config, None, None, plan_of, scale, trainer, frozen_start)]
    shares = assign(model, config)
    return [
        _one(model, entry.config, name, params, plan_of, None, trainer, frozen_start)
        for (name, entry), params in zip(config.optimizers.items(), shares, strict=True)
    ]


def apply_freeze(built: Sequence[Built]) -> None:
    """Freeze what the built optimizers leave out (``frozen`` rules, ``unfreeze_at``)."""
    for b in built:
        b.groups.apply_freeze()


def _one(
    model: nn.Module,
    config: OptimConfig,
    name: str | None,
    only: list[torch.Tensor] | None,
    plan_of: PlanOf,
    scale: BatchScale | None,
    trainer: Any,
    frozen_start: bool,
) -> Built:
    try:
        optimizer, groups = optimizer_and_groups(
            model, config, only, trainer=trainer, frozen_start=frozen_start
        )
        if scale is not None:
            apply_batch_scale(optimizer, scale, groups.pending)
        plan = plan_of(config)
        scheduler = None
        if plan is not None:
            try:
                scheduler = build_scheduler(
                    optimizer, config, plan.total, plan.steps_per_epoch, groups=groups
                )
            except RunLengthUnknown as err:  # a run: its length comes from the trainer
                raise err.for_trainer() from None
    except ConfigError as err:
        if name is None:
            raise
        raise rekey(err, "optim", f"optim.optimizers.{name}") from None
    return Built(name, config, optimizer, groups, scheduler, plan, scale)
