"""Resolve a run as ``fit`` will, without training: run length, optimizer and schedule.

Used by the CLI to validate a config before anything is written to disk, and by the
``plot`` / ``groups`` tools, so the preview and the real run share one code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from lit_optim.core.config import OptimConfig
from lit_optim.core.groups import ParamGroups
from lit_optim.core.lr_adapter import SchedulerLike, build_scheduler
from lit_optim.core.optimizers import build_optimizer

if TYPE_CHECKING:
    import lightning.pytorch as pl


@dataclass
class Preview:
    """Everything ``fit`` would build for the optimizer, built ahead of time.

    Attributes:
        optimizer: Built on the real model parameters (no optimizer state yet).
        groups: The param-group assignment.
        scheduler: The scheduler, or ``None``.
        total: Scheduler steps in the run (``None`` when unknown).
        steps_per_epoch: Scheduler steps per epoch.
        optimizer_steps_per_epoch: Optimizer steps per epoch (for epoch marks on plots).

    """

    optimizer: torch.optim.Optimizer
    groups: ParamGroups
    scheduler: SchedulerLike | None
    total: int | None
    steps_per_epoch: int | None
    optimizer_steps_per_epoch: int | None


def preview(
    model: torch.nn.Module,
    config: OptimConfig,
    trainer: pl.Trainer | None = None,
    datamodule: Any = None,
) -> Preview:
    """Build optimizer and scheduler as ``configure_optimizers`` will in ``fit``.

    Raises:
        ConfigError: Whatever ``fit`` would raise for this config.

    """
    opt_steps = estimate_optimizer_steps(trainer, datamodule) if trainer is not None else None
    total, per_epoch, opt_per_epoch = interval_units(trainer, config, opt_steps)
    optimizer, groups, scheduler = build_all(model, config, total, per_epoch)
    return Preview(optimizer, groups, scheduler, total, per_epoch, opt_per_epoch)


def build_all(
    model: torch.nn.Module,
    config: OptimConfig,
    total: int | None,
    steps_per_epoch: int | None,
) -> tuple[torch.optim.Optimizer, ParamGroups, SchedulerLike | None]:
    """Param groups, optimizer and scheduler for a run of ``total`` scheduler steps."""
    optimizer = build_optimizer(model, config)
    groups: ParamGroups = optimizer.lit_optim_groups  # type: ignore[attr-defined]
    scheduler = build_scheduler(optimizer, config, total, steps_per_epoch, groups.schedules)
    return optimizer, groups, scheduler


def estimate_optimizer_steps(
    trainer: pl.Trainer, datamodule: Any
) -> tuple[float, int | None] | None:
    """``(trainer.estimated_stepping_batches, optimizer steps per epoch)`` before ``fit``.

    Mirrors Lightning's formula: batches per epoch (after the distributed sampler and
    ``limit_train_batches``), divided by gradient accumulation, times ``max_epochs``,
    capped by ``max_steps``. Returns ``None`` when the data cannot be sized here.
    """
    batches = _train_batches(trainer, datamodule)
    per_epoch = (
        math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else None
    )
    if trainer.max_epochs == -1:
        total: float = float("inf") if trainer.max_steps == -1 else trainer.max_steps
    elif per_epoch is None:
        total = trainer.max_steps if trainer.max_steps != -1 else float("inf")
    else:
        total = per_epoch * max(trainer.max_epochs or 1, 1)
        if trainer.max_steps != -1:
            total = min(total, trainer.max_steps)
    return total, per_epoch


def _train_batches(trainer: pl.Trainer, datamodule: Any) -> float:
    if datamodule is None:
        return float("inf")
    if isinstance(datamodule, DataLoader):
        loader = datamodule
    else:
        datamodule.prepare_data()
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
    try:
        batches = len(loader)
    except TypeError:
        return float("inf")
    world = trainer.world_size
    if world > 1 and loader.batch_size and hasattr(loader.dataset, "__len__"):
        sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=0, shuffle=False)
        samples = len(sampler)
        batches = (
            samples // loader.batch_size
            if loader.drop_last
            else math.ceil(samples / loader.batch_size)
        )
    limit = trainer.limit_train_batches
    if isinstance(limit, int) and not isinstance(limit, bool):
        batches = min(batches, limit)
    elif limit is not None:
        batches = int(batches * float(limit))
    return batches


def interval_units(
    trainer: pl.Trainer | None, config: OptimConfig, estimate: tuple[float, int | None] | None
) -> tuple[int | None, int | None, int | None]:
    """Convert ``(optimizer steps, per epoch)`` into scheduler steps for ``config.interval``.

    Returns:
        ``(total scheduler steps or None, scheduler steps per epoch, optimizer steps per epoch)``.

    """
    if trainer is None or estimate is None:
        return None, None, None
    stepping, per_epoch = estimate
    if config.interval == "epoch":
        epochs = trainer.max_epochs if (trainer.max_epochs or -1) > 0 else None
        if epochs is None and trainer.max_steps > 0 and per_epoch:
            epochs = math.ceil(trainer.max_steps / per_epoch)
        return (math.ceil(epochs / config.frequency) if epochs else None), 1, per_epoch
    sched_per_epoch = max(1, per_epoch // config.frequency) if per_epoch else None
    if not math.isfinite(stepping) or stepping <= 0:
        return None, sched_per_epoch, per_epoch
    return math.ceil(stepping / config.frequency), sched_per_epoch, per_epoch
