"""How fast the safe expression compiler refuses hostile input (and compiles long good input).

The timings that used to be asserted in ``tests/test_expr*.py`` (``< 10 ms``): wall time
depends on the machine and its load, so it is measured here and printed, not asserted.
Each text is compiled ``REPEAT`` times; the fastest and the median are printed (ms).

    python benchmarks/bench_expr.py
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_expr import ENV, ESCAPES, KEY, VARS
from test_expr_attacks import MORE_ESCAPES

from lit_optim import ConfigError
from lit_optim.core.expr import compile_expr

REPEAT = 20
ACCEPTED = [
    "1**" * 40 + "1",
    " + ".join(f"({i} * step)" for i in range(40)),
    "min(" + ", ".join(["step"] * 30) + ")",
]


def timings(text: str, *, refused: bool) -> list[float]:
    """Seconds per compile of ``text``, ``REPEAT`` times."""
    out = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        try:
            f = compile_expr(text, KEY, VARS)
        except ConfigError:
            if not refused:
                raise
        else:
            if refused:
                raise AssertionError(f"{text[:60]!r} was accepted")
            f(**ENV)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    """Print the fastest and median compile time of every escape and long accepted text."""
    escapes = [
        t.replace("{flag}", "/nonexistent/flag").replace("{{", "{").replace("}}", "}")
        for t in ESCAPES + MORE_ESCAPES
    ]
    rows = [("refused", t, timings(t, refused=True)) for t in escapes]
    rows += [("accepted", t, timings(t, refused=False)) for t in ACCEPTED]
    rows.append(("overflow", "step ** step", _overflow()))
    print(f"{'kind':<9} {'min ms':>8} {'median ms':>10}  text")
    for kind, text, ts in rows:
        print(f"{kind:<9} {min(ts) * 1e3:8.3f} {statistics.median(ts) * 1e3:10.3f}  {text[:50]!r}")
    worst = max(min(ts) for _, _, ts in rows)
    print(f"slowest (fastest of {REPEAT}): {worst * 1e3:.3f} ms over {len(rows)} texts")


def _overflow() -> list[float]:
    f = compile_expr("step ** step", KEY, VARS)
    out = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        with contextlib.suppress(ValueError):
            f(**{**ENV, "step": 1_000_000})
        out.append(time.perf_counter() - start)
    return out


if __name__ == "__main__":
    main()
