"""Wall time of the README's first command: ``lit-optim fit --config configs/digits_poly.yaml``.

``tests/test_cli.py`` asserts what the run reaches (>= 95 % validation accuracy); how long it
takes depends on the machine and its load, so it is measured here. The run is started
``RUNS`` times as a subprocess, as a user types it; each time and the median are printed
with the best validation accuracy of each run.

    python benchmarks/bench_fit_time.py
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits_poly.yaml"
RUNS = 3


def fit_once(root: Path) -> tuple[float, float]:
    """``(seconds, best val_acc)`` of one ``lit-optim fit`` in ``root``."""
    exe = Path(sys.executable).with_name("lit-optim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lit_optim"]
    start = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "fit", "--config", str(CONFIG)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    (metrics,) = (root / "runs" / "digits_poly").glob("version_*/metrics.csv")
    with metrics.open() as f:
        acc = [float(r["val_acc"]) for r in csv.DictReader(f) if r.get("val_acc")]
    return elapsed, max(acc)


def main() -> None:
    """Print the wall time and accuracy of every run, then the median time."""
    times = []
    for i in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            elapsed, acc = fit_once(Path(tmp))
        times.append(elapsed)
        print(f"run {i + 1}: {elapsed:6.1f} s  best val_acc {acc:.4f}")
    print(f"median {statistics.median(times):.1f} s over {RUNS} runs (cpu count {os.cpu_count()})")


if __name__ == "__main__":
    main()
