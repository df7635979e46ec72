"""A LightningModule that knows nothing about lit_optim (see plain_model_cli.md)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn


class PlainMLP(pl.LightningModule):
    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean(), sync_dist=True)

    def configure_optimizers(self):  # replaced by lit-optim's optim: section
        return torch.optim.Adam(self.parameters(), lr=1e-3)
