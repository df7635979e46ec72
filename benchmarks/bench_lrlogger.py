"""LRLogger hook cost vs Lightning's LearningRateMonitor, side by side in one Trainer.

Both callbacks run in the same fit (same steps, same logger), with their defaults
(``LRLogger()``, ``LearningRateMonitor()``), so both log at every batch's start
(``log_every_n_steps=1``, a step-interval schedule). Each one's ``on_train_batch_start`` (its
per-step hook; both do the same work there: read every group, log to the logger, put a
tensor per key into ``trainer.callback_metrics``) is wrapped by a timer; the run is
repeated and the figure is the median of the per-run ratios. 50 named param groups, AdamW,
a lit_optim schedule (lr changes every step, so every key needs a new tensor), CSVLogger.
Prints one markdown row ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_lrlogger.py            # 5 runs of 400 steps after a warm-up
    python benchmarks/bench_lrlogger.py --quick    # smoke run, figures meaningless
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from rows import row
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_optim import LRLogger, OptimConfig, OptimMixin

GROUPS = 50
COMMAND = "python benchmarks/bench_lrlogger.py"


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


def one_run(root: str, steps: int) -> tuple[float, float]:
    """Seconds per step in the hooks of LRLogger and of LearningRateMonitor, one fit."""
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
    ours, theirs = LRLogger(), LearningRateMonitor()
    ours_t: list[float] = []
    theirs_t: list[float] = []
    timed(ours, "on_train_batch_start", ours_t)
    timed(theirs, "on_train_batch_start", theirs_t)
    trainer = pl.Trainer(
        max_steps=steps,
        logger=CSVLogger(root),
        callbacks=[ours, theirs],
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    data = DataLoader(TensorDataset(torch.randn(steps * 4, 4)), batch_size=4)
    trainer.fit(Wide(config), data)
    # both log every step (log_every_n_steps=1): the same work, or the ratio means nothing
    logged = len(ours.lrs["lr-AdamW/layer0"]), len(theirs.lrs["lr-AdamW/layer0"])
    if logged != (steps, steps) or ours.lrs != theirs.lrs:
        raise SystemExit(f"expected the same {steps} lrs logged by each callback, got {logged}")
    tensors = [trainer.callback_metrics[f"lr-AdamW/layer{i}"] for i in range(GROUPS)]
    if not all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors):
        raise SystemExit("LRLogger left a callback metric that is not a CPU tensor")
    return sum(ours_t) / steps, sum(theirs_t) / steps


def main() -> None:
    """Print the row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run of 10 steps")
    args = parser.parse_args()
    runs, steps = (1, 10) if args.quick else (args.runs, args.steps)
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    ratios, ours_us, theirs_us = [], [], []
    with tempfile.TemporaryDirectory() as root:
        if not args.quick:
            one_run(root, steps)  # warm-up
        for _ in range(runs):
            ours, theirs = one_run(root, steps)
            ours_us.append(ours * 1e6)
            theirs_us.append(theirs * 1e6)
            ratios.append(ours / theirs)
    median = statistics.median
    print(
        row(
            f"`LRLogger` per-step hook time, {GROUPS} named groups, lr changing every step",
            f"{median(ours_us):.0f} us per step: **{median(ratios):.2f}x** "
            f"(median of {runs} fits of {steps} steps)",
            f"`LearningRateMonitor()` in the same fit "
            f"({median(theirs_us):.0f} us per step), cpu",
            "≤ 0.50x",
            COMMAND,
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
