"""A callback for ``--weights_from`` tests: save the weights the model starts training with."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


class SaveStartWeights(pl.Callback):
    """Write ``model.state_dict()`` to ``path`` when fit starts (before the first step)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.save({k: v.detach().clone() for k, v in pl_module.state_dict().items()}, self.path)
