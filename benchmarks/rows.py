"""What every benchmark shares: interleaved timing of variants and the markdown row.

A row is ``| what | figure | baseline | target | command |``, the format of the README's
performance table (``table.py`` collects them). Scripts import this as a sibling module
(``python benchmarks/<script>.py`` puts ``benchmarks/`` first on ``sys.path``).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    """Medians of one variant over the rounds of an interleaved run.

    Attributes:
        seconds: Median wall seconds per call.
        ratio: Median over rounds of this variant's time over the baseline's in the same
            round (pairing by round cancels the machine's drift; a ratio of medians
            would keep it).
    """

    seconds: float
    ratio: float


def interleaved(
    variants: dict[str, Callable[[], object]],
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Call every variant once per round, alternating the order; the first is the baseline.

    Args:
        variants: Name -> the work to time; the first entry is the baseline.
        rounds: Rounds; odd rounds run the variants in reverse order, so a variant is not
            always the one that runs right after another.
        clock: The clock (``time.process_time`` for CPU time).

    Returns:
        Name -> :class:`Timing`.

    Example:
        >>> t = interleaved({"a": lambda: sum(range(100)), "b": lambda: None}, rounds=3)
        >>> t["a"].ratio
        1.0
    """
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for i in range(rounds):
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = clock()
            result = fn()
            times[name].append(clock() - start)
            del result  # freeing what was built is no part of building it
    base = times[next(iter(variants))]
    median = statistics.median
    return {
        name: Timing(median(t), median(a / b for a, b in zip(t, base, strict=True)))
        for name, t in times.items()
    }


def row(what: str, figure: str, baseline: str, target: str, command: str) -> str:
    """One markdown table row; ``command`` is shown as code.

    Example:
        >>> row("x", "1.00x", "y", "—", "python benchmarks/bench_x.py")
        '| x | 1.00x | y | — | `python benchmarks/bench_x.py` |'
    """
    cells = [what, figure, baseline, target, f"`{command}`"]
    if any(not c or "|" in c for c in cells):
        raise ValueError(f"a cell is empty or holds '|': {cells}")
    return "| " + " | ".join(cells) + " |"


def lit_optim_exe() -> list[str]:
    """The ``lit-optim`` console script next to this Python, else ``python -m lit_optim``."""
    exe = Path(sys.executable).with_name("lit-optim")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "lit_optim"]
