"""A GAN-style model with two optimizers from one ``optim:`` section (manual optimization).

The generator maps noise to 2-D points, the discriminator tells them from samples of a
ring of eight Gaussians. ``optim.optimizers`` (see ``gan.yaml``) gives each its own
optimizer and schedule; ``self.optimizers()`` returns them in the order the section
names them, ``self.lr_schedulers()`` their schedulers in the same order.

    lit-optim fit --config examples/gan.yaml
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_optim import OptimConfig, OptimMixin


class RingGAN(OptimMixin, pl.LightningModule):
    """``generator.*`` and ``discriminator.*`` parameters, trained in turn each batch."""

    def __init__(
        self, noise: int = 8, width: int = 64, seed: int = 0, optim: OptimConfig | None = None
    ) -> None:
        super().__init__()
        self.optim = optim
        self.save_hyperparameters()
        self.automatic_optimization = False  # two optimizers, stepped in training_step
        self.noise = noise
        self.seed = seed
        self.generator = nn.Sequential(
            nn.Linear(noise, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 2),
        )
        self.discriminator = nn.Sequential(
            nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, 1)
        )

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> None:
        """One discriminator step, then one generator step."""
        (real,) = batch
        opt_g, opt_d = self.optimizers()
        schedulers = self.lr_schedulers()
        # Noise as a function of (seed, step), not of the global RNG (which no checkpoint
        # holds), so a run resumed mid-epoch draws the very same noise.
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.global_step)
        z = torch.randn(len(real), self.noise, generator=g).to(real.device)
        fake = self.generator(z)

        d_real, d_fake = self.discriminator(real), self.discriminator(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            d_real, torch.ones_like(d_real)
        ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()

        d_gen = self.discriminator(fake)
        loss_g = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()

        # Lightning does not step schedulers under manual optimization.
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        self.log_dict({"loss_d": loss_d, "loss_g": loss_g}, prog_bar=True)


class RingData(pl.LightningDataModule):
    """Points on a ring of eight Gaussians (radius 2, std 0.05), fixed seed."""

    def __init__(self, n: int = 1024, batch_size: int = 128, seed: int = 0) -> None:
        super().__init__()
        self.n, self.batch_size, self.seed = n, batch_size, seed

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of ring points."""
        g = torch.Generator().manual_seed(self.seed)
        angle = torch.randint(0, 8, (self.n,), generator=g) * (2 * math.pi / 8)
        centers = 2 * torch.stack([angle.cos(), angle.sin()], dim=1)
        points = centers + 0.05 * torch.randn(self.n, 2, generator=g)
        return DataLoader(TensorDataset(points), batch_size=self.batch_size, shuffle=True)
