"""``OptimMixin``: ``configure_optimizers()`` from an ``optim:`` config.

Example:
    >>> import lightning as L
    >>> from lit_optim import OptimConfig, OptimMixin
    >>> class MyModel(OptimMixin, L.LightningModule):
    ...     def __init__(self, optim: OptimConfig | None = None):
    ...         super().__init__()
    ...         self.optim = optim
    ...         self.save_hyperparameters()

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch.serialization

from lit_optim.core.config import GroupRule, LayerDecay, OptimConfig, Spec, Unfreeze, Warmup
from lit_optim.core.errors import ConfigError
from lit_optim.core.plan import build_all, interval_units
from lit_optim.lightning.modes import add_modes_callback, has_modes
from lit_optim.lightning.table import group_table, render


class OptimMixin:
    """Give a LightningModule ``configure_optimizers()`` built from ``self.optim``.

    The config is looked up as ``self.optim`` (an :class:`OptimConfig` or a plain
    mapping), then ``self.hparams["optim"]`` (so ``load_from_checkpoint`` rebuilds it).
    """

    def configure_optimizers(self) -> dict[str, Any]:
        """Build param groups, optimizer and schedule for this module."""
        config = find_config(self)
        if config is None:
            raise ConfigError(
                "optim",
                f"{type(self).__name__} uses OptimMixin but has no optim config; pass "
                "optim=OptimConfig(...) to the model or an optim: section to lit-optim",
            )
        return configure_optimizers(self, config)  # type: ignore[arg-type]


def find_config(module: Any) -> OptimConfig | None:
    """The module's own ``optim`` config (attribute or hparams), as an :class:`OptimConfig`."""
    config = getattr(module, "optim", None)
    if config is None:
        hparams = getattr(module, "hparams", None)
        config = hparams.get("optim") if isinstance(hparams, Mapping) else None
    if config is None or isinstance(config, OptimConfig):
        return config
    if isinstance(config, Mapping):
        return OptimConfig.from_dict(config)
    raise ConfigError("model.optim", f"expected an OptimConfig or a mapping, got {config!r}")


def configure_optimizers(module: pl.LightningModule, config: OptimConfig) -> dict[str, Any]:
    """Lightning's optimizer dict for ``module`` under ``config``.

    The run length comes from the trainer: ``estimated_stepping_batches`` for
    ``interval: step`` (accumulation, devices, ``max_steps`` and
    ``limit_train_batches`` included), ``max_epochs`` for ``interval: epoch``.
    The group table is printed once (rank zero) unless ``config.summary`` is off. An
    optimizer with train / eval modes (schedule-free) gets :class:`OptimizerModes`.
    """
    total, per_epoch = run_length(module.trainer, config) if module._trainer else (None, None)
    optimizer, groups, scheduler = build_all(module, config, total, per_epoch)
    if module._trainer is not None and has_modes(optimizer):
        add_modes_callback(module.trainer)
    if config.summary and module._trainer is not None and module.trainer.is_global_zero:
        # Plain text (no ANSI codes) so it reads the same in a terminal and in log files.
        print(render(group_table(groups, optimizer, compact=True)), flush=True)
    if scheduler is None:
        return {"optimizer": optimizer}
    lr_scheduler: dict[str, Any] = {
        "scheduler": scheduler,
        "interval": config.interval,
        "frequency": config.frequency,
        "name": f"lr-{getattr(optimizer, 'lit_optim_name', type(optimizer).__name__)}",
    }
    if config.monitor:
        lr_scheduler["monitor"] = config.monitor
    return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}


def run_length(trainer: pl.Trainer, config: OptimConfig) -> tuple[int | None, int | None]:
    """Scheduler steps in the run and per epoch, in units of ``config.interval``.

    Returns ``(None, ...)`` when the length cannot be known (endless training or
    data without a length); schedules that need it then raise a ``ConfigError``.
    """
    if config.interval == "epoch" and (trainer.max_epochs or -1) > 0:
        # Known without touching the data: reading estimated_stepping_batches sets the
        # train loader up early, which makes Lightning drop a stateful loader's saved
        # position on resume (Lightning #20550).
        total, sched_per_epoch, _ = interval_units(trainer, config, (float("nan"), None))
        return total, sched_per_epoch
    stepping = trainer.estimated_stepping_batches  # also sets up the train data
    batches = trainer.num_training_batches
    per_epoch = (
        math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else None
    )
    total, sched_per_epoch, _ = interval_units(trainer, config, (stepping, per_epoch))
    return total, sched_per_epoch


# Lightning loads checkpoints with torch.load(weights_only=True); a mixin model keeps its
# OptimConfig in hparams, so these plain dataclasses must be loadable there.
torch.serialization.add_safe_globals([OptimConfig, GroupRule, LayerDecay, Warmup, Spec, Unfreeze])
