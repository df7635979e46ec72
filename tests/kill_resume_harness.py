"""Kill-and-resume harness: SIGKILL a real ``lit-optim fit`` mid-epoch, resume, compare.

Imported by the test (``tests/`` is on ``sys.path``) and by the killed subprocess
(``PYTHONPATH`` points at ``tests/``), so the config can name ``kill_resume_harness.*``.

- :class:`KillAtStep`: when ``LIT_OPTIM_KILL_AT_STEP=N`` is set, the process sends itself
  SIGKILL at the start of the first batch with ``global_step == N`` (after the step-N
  checkpoint, if any, is on disk). Without the variable it does nothing, so the reference
  and the resumed runs use the very same config.
- :class:`ResumableDigits`: the demo digits data with a shuffle that is a function of
  ``(seed, epoch)`` and a train loader that Lightning can resume mid-epoch (it implements
  ``state_dict`` / ``load_state_dict``). The demo's own ``DataLoader(shuffle=True)``
  draws its order from the global torch RNG, which no checkpoint restores, and Lightning
  restarts a plain loader from its first batch on a mid-epoch resume; with it, the lrs of
  a resumed run are identical but the weights are not (the batches differ). Its saved
  position reaches it through lit_optim itself (Lightning #20550 is handled in
  ``lit_optim.lightning.loop``); the harness adds no callback for it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from torch.utils.data import DataLoader, Dataset, Sampler

from lit_optim.demo import DigitsDataModule

KILL_ENV = "LIT_OPTIM_KILL_AT_STEP"


class KillAtStep(pl.Callback):
    """SIGKILL this process at optimizer step ``$LIT_OPTIM_KILL_AT_STEP`` (every rank)."""

    def __init__(self) -> None:
        value = os.environ.get(KILL_ENV)
        self.step = int(value) if value else None

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        """Die like a preempted job: no exception, no cleanup, no flush."""
        if self.step is not None and trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class UnfreezeBlocks(BaseFinetuning):
    """Lightning's documented pattern: freeze ``blocks``, add them as a group at epoch 1."""

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.freeze(pl_module.blocks)

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: torch.optim.Optimizer
    ) -> None:
        if epoch == 1:  # lr = first group's lr / 10 (initial_denom_lr)
            self.unfreeze_and_add_param_group(pl_module.blocks, optimizer)


class EpochSampler(Sampler[int]):
    """A permutation that depends on ``(seed, epoch)`` only, starting at ``start``."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        return iter(order[self.start :])

    def __len__(self) -> int:
        return self.size - self.start


class ResumableLoader(DataLoader):
    """A shuffled loader that Lightning saves in checkpoints and resumes mid-epoch."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int) -> None:
        self.epoch_sampler = EpochSampler(len(dataset), seed)  # type: ignore[arg-type]
        super().__init__(dataset, batch_size=batch_size, sampler=self.epoch_sampler)
        self._yielded = 0
        self._resume: tuple[int, int] | None = None  # (epoch, batches already trained)

    def __iter__(self) -> Iterator[Any]:
        sampler = self.epoch_sampler
        skip = 0
        if self._resume is not None and self._resume[0] == sampler.epoch:
            skip = self._resume[1]
        self._resume = None
        sampler.start = skip * self.batch_size  # type: ignore[operator]
        self._yielded = skip
        try:
            for batch in super().__iter__():
                self._yielded += 1
                yield batch
        finally:
            sampler.start = 0

    def __len__(self) -> int:
        n = len(self.dataset)  # type: ignore[arg-type]
        return -(-n // self.batch_size)  # type: ignore[operator]

    def state_dict(self) -> dict[str, int]:
        """The epoch and the batches handed out in it (= trained, when Lightning saves)."""
        return {"epoch": self.epoch_sampler.epoch, "batches": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Skip the batches the checkpointed run already trained on."""
        self._resume = (int(state["epoch"]), int(state["batches"]))


class ResumableDigits(DigitsDataModule):
    """The demo digits with :class:`ResumableLoader` for training."""

    def train_dataloader(self) -> DataLoader:
        """Shuffled per ``(seed, epoch)``, resumable mid-epoch."""
        return ResumableLoader(self.train_set, self.batch_size, seed=self.seed)
