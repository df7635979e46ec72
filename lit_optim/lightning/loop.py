"""Read a Lightning trainer (and its data) into a :class:`~lit_optim.core.plan.TrainLoop`.

Two moments, one result:

* :func:`loop_in_fit`, inside ``configure_optimizers``: Lightning's own numbers (the train
  data set up by Lightning, ``num_training_batches``), without losing a stateful loader's
  checkpointed position on resume (Lightning #20550);
* :func:`loop_before_fit`, for the tools (``plot``, ``groups``, ``compare``) and the CLI's
  preflight: the data module set up once, sized per process as Lightning will size it.

:func:`run_plan` turns either into the :class:`~lit_optim.core.plan.RunPlan`.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Timer
from torch.utils.data import DataLoader, DistributedSampler

from lit_optim.core.config import OptimConfig
from lit_optim.core.plan import RunPlan, TrainLoop

__all__ = ["loop_before_fit", "loop_in_fit", "run_plan"]


def run_plan(trainer: pl.Trainer, config: OptimConfig) -> RunPlan:
    """The plan of the run ``trainer`` is fitting (call from ``configure_optimizers``)."""
    return RunPlan.of(config, loop_in_fit(trainer))


def loop_in_fit(trainer: pl.Trainer) -> TrainLoop:
    """The training loop of a running ``fit``, from Lightning's own data setup.

    Sizing the train data inside ``configure_optimizers`` (what
    ``trainer.estimated_stepping_batches`` does) sets it up before Lightning restores
    the checkpoint; Lightning then never hands a stateful loader its saved position
    (https://github.com/Lightning-AI/pytorch-lightning/issues/20550). When a checkpoint
    may follow, the early setup is handed back, so that Lightning sets the data up again
    at the start of the fit loop, after the restore, and loads the saved loader state in
    its normal order (the fix proposed upstream in PR #21765 does the same inside Lightning).
    """
    fit_loop = trainer.fit_loop
    if trainer.train_dataloader is None:
        fit_loop.setup_data()  # what estimated_stepping_batches does first
        if fit_loop._combined_loader is not None and _may_resume(trainer):
            _hand_back_train_data(fit_loop)
    batches = trainer.num_training_batches
    return TrainLoop(
        batches_per_epoch=int(batches) if math.isfinite(batches) else None,
        accumulate=trainer.accumulate_grad_batches,
        max_epochs=_max_epochs(trainer),
        max_steps=trainer.max_steps,
    )


def loop_before_fit(trainer: pl.Trainer, datamodule: Any) -> TrainLoop:
    """The training loop ``trainer.fit(model, datamodule)`` will run, before it runs.

    Sets the data module up once (``prepare_data``, ``setup("fit")``,
    ``train_dataloader()``) and sizes the loader per process as Lightning does: the
    ``DistributedSampler`` it adds on several devices, then ``limit_train_batches``.
    ``datamodule`` may also be a ``DataLoader`` or ``None`` (unknown length).
    """
    return TrainLoop(
        batches_per_epoch=_train_batches(trainer, datamodule),
        accumulate=trainer.accumulate_grad_batches,
        max_epochs=_max_epochs(trainer),
        max_steps=trainer.max_steps,
    )


def _may_resume(trainer: pl.Trainer) -> bool:
    # Strategies that restore after setup (FSDP, DeepSpeed) set ckpt_path only later.
    return trainer.ckpt_path is not None or trainer.strategy.restore_checkpoint_after_setup


def _hand_back_train_data(fit_loop: Any) -> None:
    """Undo ``setup_data`` so that the fit loop sets the train data up again (#20550)."""
    if fit_loop._data_fetcher is not None:
        fit_loop._data_fetcher.teardown()  # ends its iterator (and any worker processes)
        fit_loop._data_fetcher = None
    fit_loop._combined_loader = None


def _max_epochs(trainer: pl.Trainer) -> int:
    """``max_epochs`` as Lightning resolves it when fit starts (``None``: 1000 or endless)."""
    if trainer.max_epochs is not None:
        return trainer.max_epochs
    # Lightning's _parse_loop_limits: 1000 unless a step limit or a Timer ends the run.
    timed = any(isinstance(cb, Timer) for cb in trainer.callbacks)
    return -1 if trainer.max_steps != -1 or timed else 1000


def _train_batches(trainer: pl.Trainer, datamodule: Any) -> int | None:
    if datamodule is None:
        return None
    if isinstance(datamodule, DataLoader):
        loader = datamodule
    else:
        datamodule.prepare_data()
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
    try:
        batches = len(loader)
    except TypeError:
        return None
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
