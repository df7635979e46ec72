"""Your own LightningCLI script, with the ``optim:`` section: ``LitOptimCLI(MyModel, MyData)``.

``LitOptimCLI`` is a ``LightningCLI``: the same subcommands, ``--config`` files and
``--model.*`` / ``--data.*`` / ``--trainer.*`` flags, plus the top-level ``optim:``.
The model below has no ``configure_optimizers`` and knows nothing of lit_optim.

    python examples/own_cli.py fit --config examples/own_cli.yaml
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn

from lit_optim import LitOptimCLI
from lit_optim.demo import DigitsDataModule


class MyModel(pl.LightningModule):
    """A small MLP on the 8x8 digits; ``hidden`` is set with ``--model.hidden``."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)


if __name__ == "__main__":
    # save_config_callback=None: this short example writes nothing (no logger, no config.yaml)
    cli = LitOptimCLI(MyModel, DigitsDataModule, save_config_callback=None)
    for group in cli.trainer.optimizers[0].param_groups:  # the lrs after the last step
        print(f"{group['name']}: lr {group['lr']:.6g}")
