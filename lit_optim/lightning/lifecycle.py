"""Where lit_optim meets Lightning's lifecycle: the model as ``fit`` will see it, the build.

Lightning builds a model in stages: ``__init__``, then ``configure_model`` (layers made
late, ``torch.compile``, ``fully_shard``), then callbacks' ``setup`` (``BaseFinetuning``
freezes), then ``configure_optimizers``. The real build runs in ``configure_optimizers``
(:func:`configure`). Anything that looks ahead (the CLI's check before ``fit``, the tools)
builds on :func:`model_as_fit_sees_it`: the model itself, or, when its layers come from
``configure_model``, a copy with ``configure_model`` run on the meta device. The model is
never changed to look ahead.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BaseFinetuning

from lit_optim.core.build import Built, apply_freeze, build
from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.lr_scaling import find_batch_scale
from lit_optim.core.plan import RunPlan, TrainLoop

__all__ = ["builds_late", "configure", "model_as_fit_sees_it", "unfreezes_later"]


def builds_late(model: Any) -> bool:
    """Whether ``model`` makes (some of) its layers in ``configure_model``."""
    if not isinstance(model, pl.LightningModule):
        return False
    cls = type(model)
    return (
        cls.configure_model is not pl.LightningModule.configure_model
        or cls.configure_sharded_model is not pl.LightningModule.configure_sharded_model
    )


def model_as_fit_sees_it(model: pl.LightningModule) -> tuple[torch.nn.Module | None, str]:
    """The model with the layers ``configure_model`` makes, for a look ahead of ``fit``.

    Returns:
        ``(model, "")`` when nothing is made late; ``(copy, "")`` with ``configure_model``
        run on a copy on the meta device (no memory, no init cost); ``(None, why)`` when
        ``configure_model`` needs what only the strategy's setup provides (a device mesh
        for ``fully_shard``): the checks that need parameters then run in
        ``configure_optimizers``, on every rank.

    """
    if not builds_late(model):
        return model, ""
    try:
        view = copy.deepcopy(model)
        with torch.device("meta"):
            view.configure_model()
    except Exception as err:
        return None, f"{type(model).__name__}.configure_model needs the trainer's setup ({err})"
    return view, ""


def unfreezes_later(trainer: Any) -> bool:
    """Whether a callback of ``trainer`` unfreezes parameters during the run."""
    callbacks = getattr(trainer, "callbacks", None) or []
    return any(isinstance(cb, BaseFinetuning) for cb in callbacks)


def configure(module: pl.LightningModule, config: OptimConfig) -> list[Built]:
    """The build inside ``configure_optimizers``: on the live model, then freeze.

    The run plan comes from the trainer (Lightning's own batch count, accumulation,
    devices, ``max_steps`` and ``limit_train_batches``); without a trainer the run length
    is unknown. This is the only place (with ``unfreeze_at``) that sets ``requires_grad``.
    """
    from lit_optim.lightning.loop import run_plan

    trainer = module._trainer
    scale = None
    if config.lr_scaling is not None:
        if trainer is None:
            raise ConfigError(
                "optim.lr_scaling",
                "needs the trainer (batch size, accumulation, devices); build inside fit, "
                "or scale the lrs yourself when calling configure_optimizers directly",
            )
        scale = find_batch_scale(config.lr_scaling, trainer, trainer.datamodule)

    def plan_of(section: OptimConfig) -> RunPlan:
        if trainer is None:
            return RunPlan.of(section, TrainLoop())
        return run_plan(trainer, section)

    built = build(
        module,
        config,
        plan_of,
        scale=scale,
        trainer=trainer,
        frozen_start=unfreezes_later(trainer),
    )
    apply_freeze(built)
    return built
