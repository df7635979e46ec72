"""An existing LightningModule gains configurable optimizers by adding one base class.

Before: ``configure_optimizers`` hard-coded AdamW + a hand-written warmup/cosine LambdaLR.
After: ``OptimMixin`` first in the bases, an ``optim`` init argument, nothing else.

    python examples/mixin_existing_model.py
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_optim import LRLogger, OptimConfig, OptimMixin


class Regressor(OptimMixin, pl.LightningModule):  # was: class Regressor(pl.LightningModule)
    def __init__(self, hidden: int = 32, optim: OptimConfig | None = None) -> None:
        super().__init__()
        self.optim = optim  # the only new lines: keep the config ...
        self.save_hyperparameters()  # ... and save it, so load_from_checkpoint rebuilds it
        self.encoder = nn.Sequential(nn.Linear(8, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    # configure_optimizers is gone: OptimMixin builds it from `optim`.


def main() -> None:
    pl.seed_everything(0)
    x = torch.randn(512, 8)
    y = x @ torch.linspace(-1, 1, 8) + 0.1 * torch.randn(512)
    data = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    optim = OptimConfig(
        optimizer={"class_path": "AdamW", "init_args": {"lr": 3e-3, "weight_decay": 0.05}},
        groups=[{"name": "head", "params": ["head.*"], "lr_scale": 3.0}],
        schedule={"class_path": "Cosine", "init_args": {"min_factor": 0.05}},
        warmup={"fraction": 0.1},
    )
    trainer = pl.Trainer(
        max_epochs=5,
        callbacks=[LRLogger(prog_bar=True)],
        logger=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    model = Regressor(optim=optim)
    trainer.fit(model, data)
    for name in ("head", "default", "default/no_decay"):
        history = trainer.callbacks[0].history.get(f"lr-AdamW/{name}")
        if history:
            print(f"{name:>18}: first lr {history[0][1]:.2e}, last lr {history[-1][1]:.2e}")


if __name__ == "__main__":
    main()
