"""The whole digits demo run: lit_optim defaults vs a hand-written ``configure_optimizers``.

Baseline: what users write today, a ``configure_optimizers`` with torch's defaults (the
for-loop AdamW on CPU) and Lightning's ``LearningRateMonitor(logging_interval="step")``.
lit_optim: ``OptimMixin`` + ``LRLogger`` from an ``optim:`` config with no speed flags.
Same digits CNN, data, seed, optimizer (AdamW, decay / no-decay groups) and schedule
(linear warmup + cosine) both ways. Runs alternate A/B, B/A in one process (after one
warm-up run each) and the median of the per-pair time ratios is printed as one markdown
row: ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_demo_run.py [--pairs 7] [--epochs 2]
    python benchmarks/bench_demo_run.py --quick    # 1 pair of 1 epoch, no warm-up: a smoke run
"""

from __future__ import annotations

import argparse
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

WARMUP = 10
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


def run(kind: str, root: str, epochs: int) -> tuple[float, int]:
    """Seconds of one ``fit`` and its optimizer steps."""
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
        max_epochs=epochs,
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
    return time.perf_counter() - start, trainer.global_step


def main() -> None:
    """Print the markdown row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 pair of 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.epochs = 1, 1
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    ratios, ours, theirs = [], [], []
    with tempfile.TemporaryDirectory() as root:
        if not args.quick:
            run("lit_optim", root, args.epochs), run("hand", root, args.epochs)  # warm-up
        for i in range(args.pairs):
            # alternate which goes first, so drift in machine load cancels out
            order = ("lit_optim", "hand") if i % 2 == 0 else ("hand", "lit_optim")
            t = {kind: run(kind, root, args.epochs) for kind in order}
            ours.append(t["lit_optim"][0])
            theirs.append(t["hand"][0])
            ratios.append(t["lit_optim"][0] / t["hand"][0])
            steps = t["lit_optim"][1]
    median = statistics.median
    print(
        f"| whole digits demo run ({args.epochs} epoch{'s' if args.epochs > 1 else ''}, "
        f"{steps} steps + validation): "
        f"`OptimMixin` + `LRLogger`, lit_optim defaults (AdamW runs fused) "
        f"| {median(ours):.2f} s: **{median(ratios):.2f}x** (median of {args.pairs} A/B pairs) "
        f"| hand-written `configure_optimizers`, torch defaults (for-loop AdamW) + "
        f"`LearningRateMonitor` ({median(theirs):.2f} s), same process, cpu | ≤ 1.00x "
        f"| `python benchmarks/bench_demo_run.py --pairs {args.pairs}` |",
        flush=True,
    )


if __name__ == "__main__":
    main()
