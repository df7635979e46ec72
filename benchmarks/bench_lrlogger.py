"""LRLogger hook cost vs Lightning's LearningRateMonitor, side by side in one Trainer.

Both callbacks run in the same fit (same steps, same logger), each hook wrapped by a timer;
the run is repeated and the median ratio printed. 50 named param groups, AdamW,
a lit_optim schedule (lr changes every step), CSVLogger.

    python benchmarks/bench_lrlogger.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_optim import LRLogger, OptimConfig, OptimMixin

GROUPS, STEPS, REPEATS = 50, 400, 5


class Wide(OptimMixin, pl.LightningModule):
    def __init__(self, optim: OptimConfig) -> None:
        super().__init__()
        self.optim = optim
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(GROUPS)])

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x,) = batch
        return sum(layer(x).square().mean() for layer in self.layers)


def timed(obj: Any, hook: str, bucket: list[float]) -> None:
    original: Callable[..., Any] = getattr(obj, hook)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - start)

    setattr(obj, hook, wrapper)


def one_run(root: str) -> tuple[float, float]:
    config = OptimConfig(
        optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-3}},
        groups=[
            {"name": f"layer{i}", "params": [f"layers.{i}.*"], "lr_scale": 1 + i / 100}
            for i in range(GROUPS)
        ],
        no_decay=[],
        schedule="Cosine",
        summary=False,
    )
    ours, theirs = LRLogger(), LearningRateMonitor(logging_interval="step")
    ours_t: list[float] = []
    theirs_t: list[float] = []
    timed(ours, "on_before_optimizer_step", ours_t)
    timed(theirs, "on_train_batch_start", theirs_t)
    trainer = pl.Trainer(
        max_steps=STEPS,
        logger=CSVLogger(root),
        callbacks=[ours, theirs],
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    data = DataLoader(TensorDataset(torch.randn(STEPS * 4, 4)), batch_size=4)
    trainer.fit(Wide(config), data)
    # LRLogger logs every step; LearningRateMonitor too (log_every_n_steps=1).
    assert len(ours.history["lr-AdamW/layer0"]) == STEPS == len(theirs.lrs["lr-AdamW/layer0"])
    return sum(ours_t) / STEPS, sum(theirs_t) / STEPS


def main() -> None:
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    ratios, ours_us, theirs_us = [], [], []
    with tempfile.TemporaryDirectory() as root:
        one_run(root)  # warm-up
        for _ in range(REPEATS):
            ours, theirs = one_run(root)
            ours_us.append(ours * 1e6)
            theirs_us.append(theirs * 1e6)
            ratios.append(ours / theirs)
    print(
        f"LRLogger vs LearningRateMonitor, {GROUPS} named groups, {STEPS} steps, "
        f"median of {REPEATS} runs",
        file=sys.stderr,
    )
    print(f"  LRLogger hooks            {statistics.median(ours_us):8.1f} us/step")
    print(f"  LearningRateMonitor hooks {statistics.median(theirs_us):8.1f} us/step")
    print(f"  ratio (ours / theirs)     {statistics.median(ratios):8.3f}")


if __name__ == "__main__":
    main()
