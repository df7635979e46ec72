"""Wall time of the README's first command vs the same run under plain ``LightningCLI``.

``lit-optim fit --config configs/digits_poly.yaml`` is started as a subprocess, as a user
types it. The baseline is what users run without lit_optim: Lightning's own
``LightningCLI`` (a subprocess of this script with ``--plain-cli``) with the same trainer,
data, seed and model, a hand-written ``configure_optimizers`` (torch defaults: the
for-loop SGD; momentum, head at 10x, decay / no-decay groups, a ``LambdaLR`` warmup +
poly like the config's) and ``LearningRateMonitor(logging_interval="step",
log_momentum=True)`` in place of ``LRLogger``. Runs alternate A/B, B/A (after one warm-up
of each) and the figure is the median of the per-pair ratios; process start-up, imports
and config parsing count, as they do for a user. ``tests/test_cli.py`` asserts what the
run reaches (>= 95 % validation accuracy); the best ``val_acc`` of both is printed so a
faster but worse run shows. Prints one markdown row
``| what | figure | baseline | target | command |``.

    python benchmarks/bench_fit_time.py [--pairs 3]
    python benchmarks/bench_fit_time.py --quick    # 1 pair of 1 epoch: a smoke run
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from rows import lit_optim_exe, row

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits_poly.yaml"
COMMAND = "python benchmarks/bench_fit_time.py"
#: One epoch (23 steps: the config's 20 warmup steps must fit) and one validation batch.
QUICK = ["--trainer.max_epochs=1", "--trainer.limit_val_batches=1"]


def main() -> None:
    """Print the row (or, with ``--plain-cli``, be the baseline's ``LightningCLI``)."""
    if sys.argv[1:2] == ["--plain-cli"]:
        plain_cli(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 pair of 1 epoch")
    args = parser.parse_args()
    pairs, extra = (1, QUICK) if args.quick else (args.pairs, [])
    with tempfile.TemporaryDirectory() as tmp:
        plain_config = Path(tmp) / "plain.yaml"
        plain_config.write_text(yaml.safe_dump(baseline_config()))
        commands = {
            "lit_optim": [*lit_optim_exe(), "fit", "--config", str(CONFIG), *extra],
            "plain": [sys.executable, __file__, "--plain-cli", "fit", "--config",
                      str(plain_config), *extra],
        }  # fmt: skip
        if not args.quick:
            for command in commands.values():  # warm-up: file caches, compiled bytecode
                fit_once(command, Path(tmp))
        times: dict[str, list[float]] = {kind: [] for kind in commands}
        accs: dict[str, list[float]] = {kind: [] for kind in commands}
        for i in range(pairs):
            # alternate which goes first, so drift in machine load cancels out
            for kind in commands if i % 2 == 0 else reversed(commands):
                elapsed, acc = fit_once(commands[kind], Path(tmp))
                times[kind].append(elapsed)
                accs[kind].append(acc)
    median = statistics.median
    ratio = median(a / b for a, b in zip(times["lit_optim"], times["plain"], strict=True))
    epochs = 1 if args.quick else baseline_config()["trainer"]["max_epochs"]
    print(
        row(
            f"the README's first command, `lit-optim fit --config configs/digits_poly.yaml` "
            f"({epochs} epoch{'s' if epochs > 1 else ''}, subprocess; "
            f"best val_acc {median(accs['lit_optim']):.3f})",
            f"{median(times['lit_optim']):.1f} s: **{ratio:.2f}x** (median of {pairs} A/B pairs)",
            "the same run under plain `LightningCLI`, hand-written `configure_optimizers` "
            "(torch defaults: for-loop SGD) + `LearningRateMonitor` "
            f"({median(times['plain']):.1f} s; best val_acc {median(accs['plain']):.3f}), "
            f"subprocess, cpu ({os.cpu_count()} cores)",
            "≤ 1.05x",
            COMMAND,
        ),
        flush=True,
    )


def fit_once(command: list[str], root: Path) -> tuple[float, float]:
    """``(seconds, best val_acc)`` of one run of ``command`` in a fresh directory under root."""
    run_dir = Path(tempfile.mkdtemp(dir=root))
    start = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=run_dir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    (metrics,) = (run_dir / "runs" / "digits_poly").glob("version_*/metrics.csv")
    with metrics.open() as f:
        acc = [float(r["val_acc"]) for r in csv.DictReader(f) if r.get("val_acc")]
    return elapsed, max(acc)


def baseline_config() -> dict[str, Any]:
    """``configs/digits_poly.yaml`` without ``optim:``, with Lightning's monitor."""
    config = yaml.safe_load(CONFIG.read_text())
    trainer = config["trainer"]
    trainer["callbacks"] = [
        {
            "class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
            "init_args": {"logging_interval": "step", "log_momentum": True},
        }
    ]
    return {
        "seed_everything": config["seed_everything"],
        "trainer": trainer,
        "data": config["data"]["init_args"],
    }


def plain_cli(args: list[str]) -> None:
    """The baseline: ``LightningCLI`` with the hand-written module below."""
    import torch
    from lightning.pytorch.cli import LightningCLI

    from lit_optim.demo import DigitsCNN, DigitsDataModule

    class HandWritten(DigitsCNN):
        """configs/digits_poly.yaml's optimizer and schedule, written out by hand."""

        def configure_optimizers(self) -> dict[str, Any]:  # type: ignore[override]
            head = [p for n, p in self.named_parameters() if n.startswith("head.")]
            rest = [(n, p) for n, p in self.named_parameters() if not n.startswith("head.")]
            optimizer = torch.optim.SGD(
                [
                    {"params": head, "lr": 0.2},
                    {"params": [p for _, p in rest if p.ndim > 1]},
                    {"params": [p for _, p in rest if p.ndim <= 1], "weight_decay": 0.0},
                ],
                lr=0.02,
                momentum=0.9,
                weight_decay=5e-4,
            )
            total, warmup = self.trainer.estimated_stepping_batches, 20

            def factor(step: int) -> float:
                if step < warmup:
                    return 0.1 + 0.9 * step / warmup
                return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** 0.9

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
            }

    LightningCLI(HandWritten, DigitsDataModule, args=args)


if __name__ == "__main__":
    main()
