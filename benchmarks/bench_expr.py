"""How fast the safe expression compiler refuses hostile input (and compiles long good input).

The timings that used to be asserted in ``tests/test_expr*.py`` (``< 10 ms``): wall time
depends on the machine and its load, so it is measured here, not asserted. Every text is
timed interleaved with a baseline from Python itself on the same text, in one process:

- refused texts (the escapes of ``tests/test_expr.py`` and ``tests/test_expr_attacks.py``):
  ``compile_expr`` raising ``ConfigError`` vs ``ast.parse`` of the text (which
  ``compile_expr`` starts with; a text that ``ast.parse`` refuses too counts as parsed);
- long accepted texts: ``compile_expr`` + one call vs Python's unchecked
  ``eval(compile(text))`` with the same variables;
- ``step ** step`` at step 10^6: the checked power raising ``ValueError`` vs Python's float
  ``**`` raising ``OverflowError``.

A figure is the median over rounds of the per-round ratio (of the slowest text, for a set
of texts). Prints markdown rows ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_expr.py            # 20 rounds per text
    python benchmarks/bench_expr.py --quick    # smoke run, figures meaningless
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rows import Timing, interleaved, row
from test_expr import ENV, ESCAPES, KEY, VARS
from test_expr_attacks import MORE_ESCAPES

from lit_optim import ConfigError
from lit_optim.core.expr import compile_expr

COMMAND = "python benchmarks/bench_expr.py"
ACCEPTED = [
    "1**" * 40 + "1",
    " + ".join(f"({i} * step)" for i in range(40)),
    "min(" + ", ".join(["step"] * 30) + ")",
]


def refuse(text: str) -> Callable[[], None]:
    def run() -> None:
        try:
            compile_expr(text, KEY, VARS)
        except ConfigError:
            return
        raise SystemExit(f"{text[:60]!r} was accepted")

    return run


def parse(text: str) -> Callable[[], None]:
    def run() -> None:
        # as far as Python gets with this text
        with contextlib.suppress(SyntaxError, RecursionError, MemoryError, ValueError):
            ast.parse(text, mode="eval")

    return run


def accept(text: str) -> Callable[[], None]:
    def run() -> None:
        compile_expr(text, KEY, VARS)(**ENV)

    return run


def python_eval(text: str) -> Callable[[], None]:
    def run() -> None:
        eval(compile(text, "<expr>", "eval"), {"__builtins__": {"min": min}}, dict(ENV))

    return run


def overflow() -> tuple[Callable[[], None], Callable[[], None]]:
    f = compile_expr("step ** step", KEY, VARS)

    def ours() -> None:
        try:
            f(**{**ENV, "step": 1_000_000})
        except ValueError:
            return
        raise SystemExit("step ** step at 10^6 did not raise")

    def python() -> None:
        step = 1e6
        try:
            step**step
        except OverflowError:
            return
        raise SystemExit("1e6 ** 1e6 did not overflow")

    return ours, python


def slowest(pairs: list[tuple[Callable[[], None], Callable[[], None]]], rounds: int) -> Timing:
    """The text whose compile is slowest, with its ratio to the baseline on the same text."""
    timings = [interleaved({"base": base, "ours": ours}, rounds)["ours"] for ours, base in pairs]
    return max(timings, key=lambda t: t.seconds)


def main() -> None:
    """Print the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds per text")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    escapes = [
        t.replace("{flag}", "/nonexistent/flag").replace("{{", "{").replace("}}", "}")
        for t in ESCAPES + MORE_ESCAPES
    ]
    refused = slowest([(refuse(t), parse(t)) for t in escapes], rounds)
    accepted = slowest([(accept(t), python_eval(t)) for t in ACCEPTED], rounds)
    over = slowest([overflow()], rounds)
    base = f"same text, interleaved, median of {rounds} rounds, same process"
    print(
        row(
            f"`compile_expr` refusing {len(escapes)} hostile texts (the tests' escapes): "
            "the slowest",
            f"{refused.seconds * 1e3:.2f} ms: **{refused.ratio:.1f}x**",
            f"Python's `ast.parse` of the {base}",
            "< 10 ms",
            COMMAND,
        ),
        row(
            f"`compile_expr` + one call, {len(ACCEPTED)} long accepted texts: the slowest",
            f"{accepted.seconds * 1e3:.2f} ms: **{accepted.ratio:.1f}x**",
            f"Python's unchecked `eval(compile(text))` of the {base}",
            "< 10 ms",
            COMMAND,
        ),
        row(
            "`step ** step` at step 10^6 refused (`ValueError` naming the values)",
            f"{over.seconds * 1e6:.1f} us: **{over.ratio:.1f}x**",
            f"Python's float `**` raising `OverflowError`, interleaved, median of {rounds} "
            "rounds, same process",
            "< 10 ms",
            COMMAND,
        ),
        sep="\n",
        flush=True,
    )


if __name__ == "__main__":
    main()
