"""``OptimizerModes``: train / eval modes of optimizers that have them (schedule-free).

Schedule-free optimizers (``schedulefree.AdamWScheduleFree`` and its siblings) keep two
points: training steps run at one, evaluation belongs at the other, and
``optimizer.train()`` / ``optimizer.eval()`` move the model's weights between them.
This callback puts every such optimizer in train mode for every training batch, in eval
mode for validation, test and predict, and in eval mode while a checkpoint is written
(so the weights a user evaluates are the ones saved), then back.

``lit-optim`` and :class:`~lit_optim.OptimMixin` add it automatically; it does nothing for
optimizers without modes.

Example:
    >>> import lightning as L
    >>> trainer = L.Trainer(callbacks=[OptimizerModes()])  # doctest: +SKIP

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from lit_optim.core.composite import CompositeOptimizer

__all__ = ["OptimizerModes", "add_modes_callback", "has_modes"]


def has_modes(optimizer: Any) -> bool:
    """Whether ``optimizer`` (or one inside a composite) has ``train()`` and ``eval()``."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # LightningOptimizer
    if isinstance(optimizer, CompositeOptimizer):
        return any(has_modes(o) for o in optimizer.optimizers)
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def add_modes_callback(trainer: pl.Trainer) -> None:
    """Append an :class:`OptimizerModes` to ``trainer.callbacks`` unless one is there."""
    if not any(isinstance(c, OptimizerModes) for c in trainer.callbacks):
        trainer.callbacks.append(OptimizerModes())


class OptimizerModes(Callback):
    """Switch optimizers with ``train()`` / ``eval()`` to the mode each phase needs.

    * train mode at the start of every training batch;
    * eval mode for validation, test and predict (also the sanity check);
    * eval mode while ``trainer.save_checkpoint`` runs, then the mode it had before.

    The mode is tracked here (a generic optimizer has no way to ask it), and switching to
    the mode an optimizer is already in is skipped, so each switch runs once.
    """

    def __init__(self) -> None:
        self._modes: dict[int, str] = {}
        self._save: Callable[..., None] | None = None

    # ----------------------------------------------------------------- phases

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Wrap ``trainer.save_checkpoint`` so checkpoints are written in eval mode."""
        self._modes.clear()
        self._wrap_save(trainer)

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        """Every training step runs in train mode."""
        self._set(trainer, "train")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validation evaluates the eval-mode weights."""
        self._set(trainer, "eval")

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Testing evaluates the eval-mode weights."""
        self._set(trainer, "eval")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Predictions come from the eval-mode weights."""
        self._set(trainer, "eval")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The model left behind by ``fit`` holds the eval-mode weights."""
        self._set(trainer, "eval")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Undo the ``save_checkpoint`` wrapper."""
        if self._save is not None and "save_checkpoint" in vars(trainer):
            del trainer.save_checkpoint
        self._save = None

    # ----------------------------------------------------------------- helpers

    def _wrap_save(self, trainer: pl.Trainer) -> None:
        if self._save is not None:
            return
        save = trainer.save_checkpoint
        self._save = save

        def save_in_eval_mode(*args: Any, **kwargs: Any) -> None:
            before = dict(self._modes)
            self._set(trainer, "eval")
            try:
                save(*args, **kwargs)
            finally:
                if any(mode == "train" for mode in before.values()):
                    self._set(trainer, "train")

        # An instance attribute: ModelCheckpoint (and users) call trainer.save_checkpoint.
        trainer.save_checkpoint = save_in_eval_mode  # type: ignore[method-assign]

    def _set(self, trainer: pl.Trainer, mode: str) -> None:
        for optimizer in trainer.optimizers:
            if not has_modes(optimizer) or self._modes.get(id(optimizer)) == mode:
                continue
            getattr(optimizer, mode)()
            self._modes[id(optimizer)] = mode
