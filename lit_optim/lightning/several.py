"""``configure_optimizers`` for ``optim.optimizers``: several optimizers, manual optimization.

Lightning gets a list of optimizer dicts in the order of ``optim.optimizers``; the model
steps them itself (``self.optimizers()``) and steps their schedulers
(``self.lr_schedulers()``, one per optimizer that has a schedule, in the same order),
because Lightning steps neither under manual optimization.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.lightning.lifecycle import configure
from lit_optim.lightning.modes import add_modes_callback, has_modes
from lit_optim.lightning.table import group_table, render

__all__ = ["check_manual_optimization", "configure_several"]


def configure_several(module: pl.LightningModule, config: OptimConfig) -> list[dict[str, Any]]:
    """Lightning's list of optimizer dicts for ``config.optimizers``.

    Raises:
        ConfigError: The module uses automatic optimization, or an entry is bad.

    """
    check_manual_optimization(module)
    trainer = module._trainer
    built = configure(module, config)
    out: list[dict[str, Any]] = []
    for b in built:
        if trainer is not None and has_modes(b.optimizer):
            add_modes_callback(trainer)
        if config.summary and trainer is not None and trainer.is_global_zero:
            print(f"optimizer {b.name!r}:", flush=True)
            print(render(group_table(b.groups, b.optimizer, compact=True)), flush=True)
        entry: dict[str, Any] = {"optimizer": b.optimizer}
        if b.scheduler is not None:
            # Unnamed, so LRLogger / LearningRateMonitor keys follow Lightning's rule
            # (lr-Adam, lr-Adam-1, ...).
            entry["lr_scheduler"] = {
                "scheduler": b.scheduler,
                "interval": b.config.interval,
                "frequency": b.config.frequency,
            }
        out.append(entry)
    return out


def check_manual_optimization(module: pl.LightningModule) -> None:
    """Refuse several optimizers for a module Lightning optimizes itself.

    Raises:
        ConfigError: ``module.automatic_optimization`` is on (Lightning would refuse
            several optimizers later, with a less precise message).

    """
    if module.automatic_optimization:
        raise ConfigError(
            "optim.optimizers",
            f"several optimizers need manual optimization: set "
            f"self.automatic_optimization = False in {type(module).__name__}.__init__ and step "
            "each optimizer (and its scheduler) in training_step",
        )
