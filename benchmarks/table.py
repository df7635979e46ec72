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
COMMANDS = [
    ["benchmarks/bench_optimizer_step.py"],
    ["benchmarks/bench_demo_run.py"],
]


def main() -> None:
    """Run the benchmarks and write (or print) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args()
    fresh: dict[str, list[str]] = {}
    for command in COMMANDS:
        print("running", " ".join(command), file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, *command], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        fresh[Path(command[0]).name] = [line for line in out.splitlines() if line.startswith("|")]
    text = README.read_text()
    match = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    if match is None:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    rows = [line for line in match[1].splitlines() if line.startswith("|")][2:]
    table: list[str] = []
    placed: set[str] = set()
    for row in rows:  # keep the order: fresh rows go where their script's first row was
        script = next((name for name in fresh if name in row.rsplit("|", 2)[-2]), None)
        if script is None:
            table.append(row)
        elif script not in placed:  # later old rows of a script that was run are dropped
            placed.add(script)
            table.extend(fresh[script])
    for name in placed:
        del fresh[name]
    table.extend(row for rows_ in fresh.values() for row in rows_)  # scripts new to the table
    block = "\n".join([START, HEADER, *table, END])
    if args.dry_run:
        print(block)
    else:
        README.write_text(text[: match.start()] + block + text[match.end() :])
        print(f"wrote {len(table)} rows to {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
