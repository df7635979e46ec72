"""Whole-run overhead: OptimMixin + LRLogger vs a hand-written configure_optimizers.

The baseline pairs the hand-written method with LearningRateMonitor.

The same digits CNN, data, optimizer (AdamW, no-decay groups) and schedule (linear warmup
+ cosine) both ways; runs alternate A/B/A/B in one process and the median of the
per-pair ratios is printed.

    python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger

from lit_optim import LRLogger, OptimConfig
from lit_optim.demo import DigitsCNN, DigitsDataModule

PAIRS, EPOCHS, WARMUP = 7, 2, 10
LR, WD = 3e-3, 0.05


class HandWritten(DigitsCNN):
    """What users write today: decay/no-decay groups and a LambdaLR warmup + cosine."""

    def configure_optimizers(self):  # type: ignore[override]
        decay = [p for n, p in self.named_parameters() if p.ndim > 1 and "bn" not in n]
        no_decay = [p for p in self.parameters() if p.ndim <= 1]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": WD, "name": "default"},
                {"params": no_decay, "weight_decay": 0.0, "name": "default/no_decay"},
            ],
            lr=LR,
        )
        total = self.trainer.estimated_stepping_batches

        def factor(step: int) -> float:
            if step < WARMUP:
                return step / WARMUP
            return 0.5 * (1 + math.cos(math.pi * (step - WARMUP) / (total - WARMUP)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def run(kind: str, root: str) -> float:
    pl.seed_everything(0, verbose=False)
    if kind == "lit_optim":
        model = DigitsCNN(
            optim=OptimConfig(
                optimizer={"class_path": "AdamW", "init_args": {"lr": LR, "weight_decay": WD}},
                schedule="Cosine",
                warmup={"steps": WARMUP},
                summary=False,
            )
        )
        callback: pl.Callback = LRLogger()
    else:
        model = HandWritten()
        callback = LearningRateMonitor(logging_interval="step")
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        logger=CSVLogger(root),
        callbacks=[callback],
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    start = time.perf_counter()
    trainer.fit(model, DigitsDataModule())
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    ratios, ours, theirs = [], [], []
    with tempfile.TemporaryDirectory() as root:
        run("lit_optim", root), run("hand", root)  # warm-up both paths
        for i in range(PAIRS):
            # alternate which goes first, so drift in machine load cancels out
            order = ("lit_optim", "hand") if i % 2 == 0 else ("hand", "lit_optim")
            t = {kind: run(kind, root) for kind in order}
            ours.append(t["lit_optim"])
            theirs.append(t["hand"])
            ratios.append(t["lit_optim"] / t["hand"])
    print(f"whole run, digits CNN, {EPOCHS} epochs (46 steps + validation), {PAIRS} A/B pairs")
    print(f"  OptimMixin + LRLogger                       {statistics.median(ours):6.3f} s")
    print(f"  hand-written + LearningRateMonitor          {statistics.median(theirs):6.3f} s")
    print(f"  ratio (median of per-pair ratios)           {statistics.median(ratios):6.3f}")


if __name__ == "__main__":
    main()
