"""How long a typo in ``optim:`` takes to be refused, against ``python -c "import torch"``.

``lit-optim`` checks the ``optim:`` section before Lightning is imported (core + PyYAML
only), so a typo should exit 2 in about the time it takes to import torch. Three
subprocesses, interleaved in rounds (alternating order, so drift in machine load cancels
out), the figure being the median of the per-round ratios to the baseline:

- baseline: ``python -c "import torch"``;
- the typo: ``lit-optim fit --config configs/digits_poly.yaml --optim.warmup.stpes 20``
  (exit 2, one ``error:`` line);
- for reference, the same typo found after importing Lightning first, as ``lit-optim``
  did before the fast path (``import lightning.pytorch`` then ``main([...])``).

Prints one markdown row ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_startup.py [--rounds 7]
    python benchmarks/bench_startup.py --quick    # 1 round, no warm-up: a smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rows import interleaved, lit_optim_exe, row

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python benchmarks/bench_startup.py"
TYPO = ["fit", "--config", "configs/digits_poly.yaml", "--optim.warmup.stpes", "20"]
EXPECTED = "error: optim.warmup.stpes: unknown key; did you mean 'steps'?"  # the line starts so


def main() -> None:
    """Print the row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    lightning_first = (
        f"import lightning.pytorch\nfrom lit_optim.tools.main import main\nmain({TYPO!r})\n"
    )
    variants = {
        "torch": command([sys.executable, "-c", "import torch"], 0),
        "typo": command([*lit_optim_exe(), *TYPO], 2),
        "lightning first": command([sys.executable, "-c", lightning_first], 2),
    }
    if not args.quick:
        for run in variants.values():  # warm-up: file caches, compiled bytecode
            run()
    t = interleaved(variants, rounds)
    print(
        row(
            "a typo in `optim:` refused before Lightning starts: `lit-optim fit --config "
            "configs/digits_poly.yaml --optim.warmup.stpes 20` (exit 2, one line; subprocess)",
            f"{t['typo'].seconds:.2f} s: **{t['typo'].ratio:.2f}x** (median of {rounds} "
            f"rounds; found after importing Lightning first: {t['lightning first'].seconds:.2f}"
            f" s, {t['lightning first'].ratio:.2f}x)",
            f'`python -c "import torch"` in the same rounds ({t["torch"].seconds:.2f} s), '
            f"subprocess, cpu ({os.cpu_count()} cores)",
            "≤ 1.3x",
            COMMAND,
        ),
        flush=True,
    )


def command(args: list[str], code: int) -> Callable[[], None]:
    """Run ``args`` from the repo root; refuse another exit code (or, for 2, another line)."""

    def run() -> None:
        proc = subprocess.run(
            args,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        if proc.returncode != code or (code == 2 and not proc.stderr.startswith(EXPECTED)):
            raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")

    return run


if __name__ == "__main__":
    main()
