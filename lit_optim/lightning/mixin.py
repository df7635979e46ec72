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

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch.serialization

# A model made by LightningCLI is re-made by load_from_checkpoint through a fresh
# jsonargparse parser of its __init__ (Lightning's `instantiate_module`): it must know how
# a Spec (`optim.optimizer: {class_path, init_args}`) is read, or it takes it for a class.
import lit_optim.lightning.types  # noqa: F401
from lit_optim.core.config import GroupRule, OptimConfig, OptimizerEntry
from lit_optim.core.config_values import LayerDecay, LRScaling, Spec, Unfreeze, Warmup
from lit_optim.core.errors import ConfigError
from lit_optim.lightning.callbacks import optimizer_key
from lit_optim.lightning.finetuning import check_lr_callbacks
from lit_optim.lightning.lifecycle import configure
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


def configure_optimizers(module: pl.LightningModule, config: OptimConfig) -> Any:
    """Lightning's optimizer dict (a list of them for ``optim.optimizers``) under ``config``.

    Built once, on the live model (:func:`~lit_optim.lightning.lifecycle.configure`). The
    group table is printed once (rank zero) unless ``config.summary`` is off. An
    optimizer with train / eval modes (schedule-free) gets :class:`OptimizerModes`.
    """
    if config.optimizers is not None:
        from lit_optim.lightning.several import configure_several

        return configure_several(module, config)
    [built] = configure(module, config)
    optimizer, scheduler = built.optimizer, built.scheduler
    trainer = module._trainer
    if trainer is not None:
        check_lr_callbacks(trainer.callbacks, config)
        if has_modes(optimizer):
            add_modes_callback(trainer)
        if config.summary and trainer.is_global_zero:
            # Plain text (no ANSI codes) so it reads the same in a terminal and in log files.
            print(render(group_table(built.groups, optimizer, compact=True)), flush=True)
            if built.scale is not None:
                print(built.scale.describe(), flush=True)
    if scheduler is None:
        return {"optimizer": optimizer}
    lr_scheduler: dict[str, Any] = {
        "scheduler": scheduler,
        "interval": config.interval,
        "frequency": config.frequency,
        "name": optimizer_key(optimizer),
    }
    if config.monitor:
        lr_scheduler["monitor"] = config.monitor
    return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}


# Lightning loads checkpoints with torch.load(weights_only=True); a mixin model keeps its
# OptimConfig in hparams, so these plain dataclasses must be loadable there: under their
# module, and under lit_optim.core.config, where checkpoints of earlier versions name them.
_MOVED = [LayerDecay, Warmup, Spec, Unfreeze, LRScaling]
torch.serialization.add_safe_globals(
    [OptimConfig, OptimizerEntry, GroupRule, *_MOVED]
    + [(cls, f"lit_optim.core.config.{cls.__qualname__}") for cls in _MOVED]
)
