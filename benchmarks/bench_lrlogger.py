"""LRLogger hook cost vs Lightning's LearningRateMonitor, in paired fits in one process.

Each callback runs with its defaults (``LRLogger()``, ``LearningRateMonitor()``) in its own
fit of the same model, data and logger; the fits alternate (a pair: one fit with each, the
order switching from pair to pair), after a warm-up fit of each. Both log at every batch's
start (``log_every_n_steps=1``, a step-interval schedule), and ``on_train_batch_start`` (the
per-step hook of each: read every group, log to the logger, put a tensor per key into
``trainer.callback_metrics``) is wrapped by a timer. 50 named param groups, AdamW, a
lit_optim schedule (lr changes every step, so every key needs a new tensor), CSVLogger.

Why not both in one fit: the first callback to run after a training step is slowed by the
memory the step left cold, and each frees the tensors the other put into
``callback_metrics``, so the order, not the callback, would decide. The figure per fit is
the median per-step hook time (a preemption inside one hook on a shared machine outweighs
the work); a pair's ratio is LRLogger's over the monitor's; the row shows the median
over pairs. Prints one markdown row ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_lrlogger.py            # 5 pairs of fits of 400 steps
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


def one_run(root: str, steps: int, ours: bool) -> tuple[float, dict[str, list[Any]]]:
    """The median seconds per step in the callback's hook over one fit, and its ``lrs``."""
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
    callback = LRLogger() if ours else LearningRateMonitor()
    times: list[float] = []
    timed(callback, "on_train_batch_start", times)
    trainer = pl.Trainer(
        max_steps=steps,
        # CSVLogger writes its file every n-th step from inside log_metrics: at the end of
        # the fit instead, so the timed hooks do not include a file write now and then.
        logger=CSVLogger(root, flush_logs_every_n_steps=steps + 1),
        callbacks=[callback],
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    data = DataLoader(TensorDataset(torch.randn(steps * 4, 4)), batch_size=4)
    trainer.fit(Wide(config), data)
    tensors = [trainer.callback_metrics[f"lr-AdamW/layer{i}"] for i in range(GROUPS)]
    if not all(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in tensors):
        raise SystemExit(f"{type(callback).__name__} left a callback metric that is not a tensor")
    return statistics.median(times), callback.lrs


def main() -> None:
    """Print the row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 pair of 10 steps")
    args = parser.parse_args()
    pairs, steps = (1, 10) if args.quick else (args.pairs, args.steps)
    # The hooks are Python on the main thread; idle OpenMP workers spinning after each op
    # of the tiny model would compete with it for the cores (2 here), in both hooks alike.
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    ratios, ours_us, theirs_us = [], [], []
    with tempfile.TemporaryDirectory() as root:
        if not args.quick:
            one_run(root, steps, ours=True)  # warm-up
            one_run(root, steps, ours=False)
        for pair in range(pairs):
            order = (True, False) if pair % 2 == 0 else (False, True)
            (first, first_lrs), (second, second_lrs) = (one_run(root, steps, ours=o) for o in order)
            # the same lrs, every step: the same work, or the ratio means nothing
            if first_lrs != second_lrs or len(first_lrs["lr-AdamW/layer0"]) != steps:
                raise SystemExit("the two callbacks did not log the same lrs at every step")
            ours, theirs = (first, second) if order[0] else (second, first)
            ours_us.append(ours * 1e6)
            theirs_us.append(theirs * 1e6)
            ratios.append(ours / theirs)
    median = statistics.median
    print(
        row(
            f"`LRLogger` per-step hook time, {GROUPS} named groups, lr changing every step",
            f"{median(ours_us):.0f} us per step: **{median(ratios):.2f}x** "
            f"(median of {pairs} pairs of fits of {steps} steps)",
            f"`LearningRateMonitor()`, the same fit in the same process, paired "
            f"({median(theirs_us):.0f} us per step), cpu",
            "≤ 0.50x",
            COMMAND,
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
