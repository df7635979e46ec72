"""Test-only models that follow Lightning's lifecycle patterns (importable by class_path).

- :class:`LateNet`: layers made in ``configure_model`` (optionally ``torch.compile``d there).
- :class:`ShardedNet`: FSDP2, ``fully_shard`` per block in ``configure_model`` (needs the
  strategy's device mesh, so only ``fit`` can build it).
- :class:`MixinNet`: an ``OptimMixin`` model with an ``optim`` init argument.
- :class:`Regression`: a small sized data module.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_optim import OptimConfig, OptimMixin


class _Regressor(pl.LightningModule):
    embed: nn.Module
    blocks: nn.Module
    head: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in getattr(self.blocks, "_orig_mod", self.blocks):
            x = torch.relu(block(x))
        return self.head(x).sum(-1)  # sum, not squeeze: FSDP2 warns on a view output

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def _make(self, hidden: int, depth: int) -> None:
        self.embed = nn.Linear(8, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(depth)])
        self.head = nn.Linear(hidden, 1)


class LateNet(_Regressor):
    """Every layer is made in ``configure_model``."""

    def __init__(self, hidden: int = 16, depth: int = 3, compile: bool = False) -> None:
        super().__init__()
        self.hidden, self.depth, self.compile_blocks = hidden, depth, compile
        self.made = False

    def configure_model(self) -> None:
        if self.made:
            return
        self._make(self.hidden, self.depth)
        if self.compile_blocks:
            self.blocks = torch.compile(self.blocks)
        self.made = True


class ShardedNet(_Regressor):
    """FSDP2: ``fully_shard`` every block, then the root, on the strategy's mesh."""

    def __init__(self, hidden: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.hidden, self.depth = hidden, depth
        self.made = False

    def configure_model(self) -> None:
        if self.made:
            return
        from torch.distributed.fsdp import fully_shard

        self._make(self.hidden, self.depth)
        mesh = self.device_mesh["data_parallel"]  # None before the strategy's setup
        for block in self.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(self, mesh=mesh)
        self.made = True


class MixinNet(OptimMixin, _Regressor):
    """An existing model that took ``OptimMixin`` and an ``optim`` argument."""

    def __init__(self, hidden: int = 16, depth: int = 3, optim: OptimConfig | None = None) -> None:
        super().__init__()
        self.optim = optim
        self.save_hyperparameters()
        self._make(hidden, depth)


class Regression(pl.LightningDataModule):
    """128 fixed samples of ``y = sum(x)``; batches of 8, in order (resumable as is)."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(128, 8, generator=g)
        self.y = self.x.sum(1)
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x[:32], self.y[:32]), batch_size=16)
