"""Every benchmark runs (``--quick``) and prints rows the README table can take.

A smoke test only: no timing is asserted (figures of a ``--quick`` run mean nothing, and
timings belong in ``benchmarks/``). It checks the row format of ``benchmarks/table.py``:
``| what | figure | baseline | target | command |``, a baseline named, the command cell
naming the script that printed it. The scripts run one after another in one subprocess
(``smoke_runner.py``: each as ``__main__`` with its own ``sys.argv``), which imports torch
and Lightning once instead of once per script.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from smoke_runner import run_all

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def load_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("table", BENCHMARKS / "table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLE = load_table()


def test_every_benchmark_script_is_in_the_table_commands() -> None:
    scripts = sorted(p.relative_to(ROOT).as_posix() for p in BENCHMARKS.glob("bench_*.py"))
    assert sorted(command[0] for command in TABLE.COMMANDS) == scripts


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> dict[str, dict]:
    """``{script: {"returncode", "stdout", "stderr", "traceback"}}`` of every ``--quick`` run."""
    jobs = [
        {"label": script, "argv": [*args, "--quick"], "cwd": str(ROOT), "script": script}
        for script, *args in TABLE.COMMANDS
    ]
    return run_all(jobs, tmp_path_factory.mktemp("quick"), timeout=1200)


@pytest.mark.slow
@pytest.mark.parametrize("command", TABLE.COMMANDS, ids=lambda c: Path(c[0]).stem)
def test_benchmark_quick_run_prints_table_rows(command: list[str], quick_runs) -> None:
    run = quick_runs[command[0]]
    assert run["returncode"] == 0, (run["traceback"], run["stderr"][-3000:])
    stdout = run["stdout"]
    rows = [line for line in stdout.splitlines() if line.startswith("|")]
    assert rows, stdout
    script = Path(command[0]).name
    for row in rows:
        assert row.endswith(" |"), row
        cells = [cell.strip() for cell in row[1:-1].split("|")]
        assert len(cells) == 5, row
        what, figure, baseline, target, command_cell = cells
        assert what and figure and target, row
        assert baseline.strip("—- ()"), row  # names a baseline, not just a dash
        assert command_cell.startswith("`python benchmarks/") and script in command_cell, row
        assert str(ROOT) not in row  # rows go into README.md: no machine paths


def test_table_merge_replaces_a_rerun_scripts_rows_in_place() -> None:
    old = [
        "| a | 1 | b | — | `python benchmarks/bench_x.py --case 1` |",
        "| a2 | 1 | b | — | `python benchmarks/bench_x.py --case 2` |",
        "| c | 2 | d | — | `python benchmarks/bench_y.py` |",
    ]
    fresh = {
        "bench_x.py": ["| a | 3 | b | — | `python benchmarks/bench_x.py` |"],
        "bench_z.py": ["| e | 4 | f | — | `python benchmarks/bench_z.py` |"],
    }
    assert TABLE.merge(old, fresh) == [
        "| a | 3 | b | — | `python benchmarks/bench_x.py` |",
        "| c | 2 | d | — | `python benchmarks/bench_y.py` |",
        "| e | 4 | f | — | `python benchmarks/bench_z.py` |",
    ]
