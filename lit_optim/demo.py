"""The embedded default: scikit-learn's bundled 8x8 digits and a small CNN.

No download: the 1,797 images ship with scikit-learn. ``lit-optim fit`` trains this.

Example:
    >>> dm = DigitsDataModule(batch_size=64)
    >>> dm.setup("fit")
    >>> len(dm.train_set), len(dm.val_set)
    (1438, 359)

"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from lit_optim.core.config import OptimConfig
from lit_optim.lightning.mixin import OptimMixin


class DigitsDataModule(pl.LightningDataModule):
    """scikit-learn's 8x8 digits, split 80/20 with a fixed seed, scaled to [0, 1].

    Args:
        batch_size: Training batch size.
        val_fraction: Share of images held out for validation.
        seed: Seed of the split (independent of the training seed).
        num_workers: DataLoader workers (0 keeps it in-process; the data is tiny).

    """

    def __init__(
        self, batch_size: int = 64, val_fraction: float = 0.2, seed: int = 0, num_workers: int = 0
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.num_workers = num_workers

    def setup(self, stage: str | None = None) -> None:
        """Load and split the images (idempotent)."""
        if hasattr(self, "train_set"):
            return
        from sklearn.datasets import load_digits

        images, labels = load_digits(return_X_y=True)
        x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        y = torch.tensor(labels, dtype=torch.long)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        n_val = round(len(x) * self.val_fraction)
        val, train = order[:n_val], order[n_val:]
        self.train_set = TensorDataset(x[train], y[train])
        self.val_set = TensorDataset(x[val], y[val])

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        """The held-out images, in order."""
        return DataLoader(self.val_set, batch_size=256, num_workers=self.num_workers)

    test_dataloader = val_dataloader

    def predict_dataloader(self) -> DataLoader:
        """The held-out images, without labels."""
        return DataLoader(TensorDataset(self.val_set.tensors[0]), batch_size=256)


class DigitsCNN(OptimMixin, pl.LightningModule):
    """A small CNN: ``stem`` -> ``blocks.0``, ``blocks.1`` -> ``head`` (names for group rules).

    Args:
        width: Channels of the first block (the second has twice as many).
        optim: Optional optimizer config of the model itself (the CLI's top-level
            ``optim:`` section takes precedence).

    """

    def __init__(self, width: int = 16, optim: OptimConfig | None = None) -> None:
        super().__init__()
        self.optim = optim
        self.save_hyperparameters()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()
                ),
                nn.Sequential(
                    nn.Conv2d(2 * width, 2 * width, 3, padding=1),
                    nn.BatchNorm2d(2 * width),
                    nn.ReLU(),
                    nn.MaxPool2d(2),
                ),
            ]
        )
        self.head = nn.Linear(2 * width * 16, 10)
        self.train_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of 1x8x8 images."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        """Cross-entropy on one batch."""
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Loss and accuracy on held-out images."""
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        # sync_dist: under DDP each rank sees part of the data; the epoch's loss is their mean
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)

    test_step = validation_step

    def predict_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Predicted class per image."""
        return self(batch[0]).argmax(dim=1)


class DigitsMLP(DigitsCNN):
    """An MLP on the flattened 8x8 images: ``embed`` -> ``blocks.N`` -> ``head``.

    Its hidden blocks hold square weight matrices, the tensors Muon is made for
    (``configs/digits_muon.yaml``); ``embed``, ``head``, norms and biases suit AdamW.

    Args:
        width: Hidden width.
        depth: Number of hidden blocks (Linear, LayerNorm, GELU).
        optim: Optional optimizer config of the model itself.

    """

    def __init__(self, width: int = 128, depth: int = 2, optim: OptimConfig | None = None) -> None:
        pl.LightningModule.__init__(self)
        self.optim = optim
        self.save_hyperparameters()
        self.embed = nn.Linear(64, width)
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU())
                for _ in range(depth)
            ]
        )
        self.head = nn.Linear(width, 10)
        self.train_acc = MulticlassAccuracy(num_classes=10, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=10, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of 1x8x8 images."""
        x = F.gelu(self.embed(x.flatten(1)))
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)
