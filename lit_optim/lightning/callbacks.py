"""``LRLogger``: the lr (and momentum, weight decay) of every named group, every optimizer step.

Keys follow Lightning's ``LearningRateMonitor`` so existing dashboards keep working:
``lr-<Optimizer>/<group name>``, ``lr-<Optimizer>/<group name>-momentum`` and
``lr-<Optimizer>/<group name>-weight_decay``.

Example:
    >>> import lightning as L
    >>> trainer = L.Trainer(callbacks=[LRLogger(momentum=True)])  # doctest: +SKIP

"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback


class LRLogger(Callback):
    """Log the lr of every param group once per optimizer step.

    Values are read as Python floats from ``optimizer.param_groups`` just before the
    step they apply to, so step ``t`` of the log is the lr used by optimizer step ``t``.
    Nothing touches the device: no tensor is created and nothing synchronises.
    Works with any LightningModule (with or without lit_optim) and any logger.

    Args:
        momentum: Also log ``betas[0]`` / ``momentum`` of each group.
        weight_decay: Also log each group's ``weight_decay``.
        every_n_steps: Log every n-th optimizer step (1 = every step).
        prog_bar: Show the first group's lr in the progress bar as ``lr``.

    """

    def __init__(
        self,
        momentum: bool = False,
        weight_decay: bool = False,
        every_n_steps: int = 1,
        prog_bar: bool = False,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.every_n_steps = every_n_steps
        self.prog_bar = prog_bar
        # Keys are built once per optimizer (and again only if its group count changes).
        self._keys: dict[int, tuple[int, list[tuple[str, str, str]]]] = {}
        self._last_logged: dict[int, int] = {}
        #: Every value logged, ``{key: [(step, value), ...]}`` (handy in tests and notebooks).
        self.history: dict[str, list[tuple[int, float]]] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Forget keys from a previous fit (optimizers are rebuilt per fit)."""
        self._keys.clear()
        self._last_logged.clear()

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        """Log the values this optimizer step will use."""
        step = trainer.global_step
        opt_id = id(optimizer)
        # LBFGS calls the closure (and this hook) several times per step: log once.
        if self._last_logged.get(opt_id) == step or step % self.every_n_steps:
            return
        self._last_logged[opt_id] = step
        stats = self._stats(trainer, optimizer)
        for key, value in stats.items():
            self.history.setdefault(key, []).append((step, value))
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)
        if self.prog_bar and stats:
            # Written into the progress-bar dict directly: self.log() would make a device tensor.
            trainer.progress_bar_metrics["lr"] = next(iter(stats.values()))

    def _stats(self, trainer: pl.Trainer, optimizer: Any) -> dict[str, float]:
        inner = getattr(optimizer, "optimizer", optimizer)  # LightningOptimizer / DeepSpeed wrap
        groups = inner.param_groups
        cached = self._keys.get(id(optimizer))
        if cached is None or cached[0] != len(groups):
            cached = (len(groups), self._names(trainer, inner))
            self._keys[id(optimizer)] = cached
        stats: dict[str, float] = {}
        use_betas = "betas" in inner.defaults
        for group, (lr_key, mom_key, wd_key) in zip(groups, cached[1], strict=True):
            stats[lr_key] = _number(group["lr"])
            if self.momentum:
                value = group["betas"][0] if use_betas else group.get("momentum")
                if value is not None:
                    stats[mom_key] = _number(value)
            if self.weight_decay and "weight_decay" in group:
                stats[wd_key] = _number(group["weight_decay"])
        return stats

    @staticmethod
    def _names(trainer: pl.Trainer, optimizer: torch.optim.Optimizer) -> list[tuple[str, str, str]]:
        prefix = f"lr-{getattr(optimizer, 'lit_optim_name', type(optimizer).__name__)}"
        for config in trainer.lr_scheduler_configs:
            if config.scheduler.optimizer is optimizer and config.name:
                prefix = config.name
        same_type = [o for o in trainer.optimizers if type(o) is type(optimizer)]
        if len(same_type) > 1:
            prefix += f"-{same_type.index(optimizer)}"
        groups = optimizer.param_groups
        names = [g.get("name") or f"pg{i + 1}" for i, g in enumerate(groups)]
        if len(set(names)) != len(names):
            names = [f"{n}-{i}" for i, n in enumerate(names)]
        keys = []
        for group, name in zip(groups, names, strict=True):
            base = f"{prefix}/{name}" if len(groups) > 1 or group.get("name") else prefix
            keys.append((base, f"{base}-momentum", f"{base}-weight_decay"))
        return keys


def _number(value: Any) -> float:
    # A tensor lr (capturable/fused optimizers) is read without a device sync when on CPU.
    if isinstance(value, torch.Tensor):
        return float(value.item())
    return float(value)


class PlateauResumeFix(Callback):
    """Step ``ReduceLROnPlateau`` at the end of an epoch resumed mid-way.

    Lightning steps plateau schedulers in ``FitLoop.on_advance_end`` only when the loop is
    not restarting, to avoid a second step after a resume from an end-of-epoch checkpoint.
    After a *mid-epoch* resume that guard skips a step that is due, so the plateau lr
    would change one epoch late. This callback takes that step, from the same metrics,
    exactly when Lightning skips it. ``lit-optim`` adds it when the schedule is a plateau.
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Take the plateau step Lightning is about to skip."""
        loop = trainer.fit_loop
        if loop.restarting and loop.epoch_loop._num_ready_batches_reached():
            loop.epoch_loop.update_lr_schedulers("epoch", update_plateau_schedulers=True)
