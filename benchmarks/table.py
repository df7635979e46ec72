"""Regenerate the README performance table from the benchmarks, one command per row.

Every benchmark listed in ``COMMANDS`` prints markdown rows
``| what | figure | baseline | target | command |``. This runs each (in turn, so they
do not compete for the cores), then rewrites the README table between the
``<!-- perf-table -->`` markers: rows whose command cell names a script that was run
are replaced by the fresh ones, other rows are kept as they are.

    python benchmarks/table.py            # run everything, rewrite README.md
    python benchmarks/table.py --dry-run  # print the table only

Run it on a quiet machine: every figure is a ratio measured side by side in one
process, but a busy machine still widens the spread.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
HEADER = "| what | figure | baseline | target | command |\n|---|---|---|---|---|"
#: Every benchmark, in the order of the table; each accepts ``--quick`` (a smoke run).
COMMANDS = [
    ["benchmarks/bench_groups.py"],
    ["benchmarks/bench_lrlogger.py"],
    ["benchmarks/bench_scheduler.py"],
    ["benchmarks/bench_optimizer_step.py"],
    ["benchmarks/bench_demo_run.py"],
    ["benchmarks/bench_fit_time.py"],
    ["benchmarks/bench_expr.py"],
    ["benchmarks/bench_startup.py"],
]


def main() -> None:
    """Run the benchmarks and write (or print) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args()
    fresh = {Path(command[0]).name: run(command) for command in COMMANDS}
    text = README.read_text()
    match = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    if match is None:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    old = [line for line in match[1].splitlines() if line.startswith("|")][2:]
    table = merge(old, fresh)
    block = "\n".join([START, HEADER, *table, END])
    if args.dry_run:
        print(block)
    else:
        README.write_text(text[: match.start()] + block + text[match.end() :])
        print(f"wrote {len(table)} rows to {README.name}", file=sys.stderr)


def run(command: list[str]) -> list[str]:
    """The markdown rows one benchmark prints (its other output is ignored)."""
    print("running", " ".join(command), file=sys.stderr, flush=True)
    out = subprocess.run(
        [sys.executable, *command], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("|")]
    if not rows:
        raise SystemExit(f"{' '.join(command)} printed no markdown row")
    return rows


def merge(old: list[str], fresh: dict[str, list[str]]) -> list[str]:
    """The table rows: ``fresh[script]`` where that script's first old row was.

    Old rows of a script in ``fresh`` are dropped (a rerun script may print fewer rows),
    rows of other scripts are kept, and scripts new to the table go at the end.

    Example:
        >>> merge(["| a | 1 | b | — | `x.py` |", "| c | 2 | d | — | `y.py` |"],
        ...       {"x.py": ["| a | 3 | b | — | `x.py` |"], "z.py": ["| e | 4 | f | — | `z.py` |"]})
        ['| a | 3 | b | — | `x.py` |', '| c | 2 | d | — | `y.py` |', '| e | 4 | f | — | `z.py` |']
    """
    table: list[str] = []
    placed: set[str] = set()
    for line in old:
        command = line.rsplit("|", 2)[-2]
        script = next((name for name in fresh if name in command), None)
        if script is None:
            table.append(line)
        elif script not in placed:
            placed.add(script)
            table.extend(fresh[script])
    table.extend(line for name, rows in fresh.items() if name not in placed for line in rows)
    return table


if __name__ == "__main__":
    main()
