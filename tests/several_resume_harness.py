"""Resumable data for the GAN example's kill/resume case (``test_kill_resume_several.py``)."""

from __future__ import annotations

from kill_resume_harness import ResumableLoader
from torch.utils.data import DataLoader, TensorDataset

from examples.gan import RingData


class ResumableRing(RingData):
    """The ring points with a loader shuffled per ``(seed, epoch)``, resumable mid-epoch."""

    def train_dataloader(self) -> DataLoader:
        """The same points as :class:`RingData`, in a resumable order."""
        points = super().train_dataloader().dataset
        assert isinstance(points, TensorDataset)
        return ResumableLoader(points, self.batch_size, seed=self.seed)
