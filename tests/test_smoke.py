"""Lightning's smoke tests run every shipped config: ``fast_dev_run`` and short runs.

A run shorter than its warmup ends inside the warmup (and one that ends before a
``Sequence`` boundary ends inside that piece): its lrs are the first steps of the full
run's schedule, and a smoke test never refuses a config that the full run accepts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import CONFIGS, ROOT, read_metrics, run_cli, series
from smoke_runner import run_all

pytestmark = pytest.mark.slow

#: Configs of a script of their own (``LitOptimCLI(MyModel, MyData)``), run by it.
OWN_SCRIPT = {"own_cli.yaml": ROOT / "examples" / "own_cli.py"}
#: ``(label, the fit arguments that select it)``: every shipped config. The compare files
#: are optim sections, layered on the embedded demo as ``compare`` layers them.
SHIPPED = [
    *((f"configs/{p.name}", ["--config", str(p)]) for p in sorted(CONFIGS.glob("*.yaml"))),
    *(
        (f"configs/compare/{p.name}", ["--optim", str(p)])
        for p in sorted((CONFIGS / "compare").glob("*.yaml"))
    ),
    *(
        (f"examples/{p.name}", ["--config", str(p)])
        for p in sorted((ROOT / "examples").glob("*.yaml"))
    ),
]


def test_the_smoke_list_holds_every_shipped_config():
    assert len(SHIPPED) == 8 + 4 + 3
    assert {label for label, _ in SHIPPED} >= {"configs/digits_poly.yaml", "examples/gan.yaml"}


@pytest.fixture(scope="module")
def fast_dev_runs(tmp_path_factory) -> dict[str, dict]:
    """``{label: {"returncode", "output", "traceback", "written"}}`` of every shipped config.

    ``output``: what the run printed, stdout then stderr.

    One subprocess (``smoke_runner.py``) runs them all, each through ``lit-optim``'s own
    entry (or its own script) in an empty directory of its own: the import of torch and
    Lightning is paid once, not 15 times. ``tests/test_cli_output.py``, ``test_cli.py``
    and this file's last test run configs as real ``lit-optim`` processes.
    """
    root = tmp_path_factory.mktemp("smoke")
    jobs = []
    for i, (label, args) in enumerate(SHIPPED):
        cwd = root / f"run{i}"
        cwd.mkdir()
        script = OWN_SCRIPT.get(Path(args[-1]).name)
        argv = ["fit", *args, "--trainer.fast_dev_run", "true"]
        jobs.append({"label": label, "argv": argv, "cwd": str(cwd),
                     "script": None if script is None else str(script)})  # fmt: skip
    # examples.* is importable from the repo root, as the examples' own commands run
    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    results = run_all(jobs, root, env)
    for job in jobs:
        result = results[job["label"]]
        result["output"] = result.pop("stdout") + result.pop("stderr")
        result["written"] = [p.name for p in Path(job["cwd"]).rglob("*")]
    return results


@pytest.mark.parametrize("label", [label for label, _ in SHIPPED])
def test_fast_dev_run_runs_every_shipped_config(label, fast_dev_runs):
    result = fast_dev_runs[label]
    assert result["returncode"] == 0, (result["traceback"], result["output"][-3000:])
    assert result["traceback"] is None
    assert "Traceback" not in result["output"]
    assert "fast_dev_run" in result["output"]  # Lightning's own notice
    # fast_dev_run writes no log and no checkpoint
    assert result["written"] == []


def test_max_steps_shorter_than_the_warmup_logs_the_warmups_first_lrs(tmp_path):
    # digits_poly: SGD lr 0.02 (head x10), 20 warmup steps from 0.1; a 5-step run ends in it
    proc = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "digits_poly.yaml"),
        "--trainer.max_steps",
        "5",
        "--trainer.limit_val_batches",
        "1",
        "--trainer.log_every_n_steps",
        "1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (metrics,) = (tmp_path / "runs").rglob("metrics.csv")
    rows = read_metrics(metrics.parent)
    ramp = [0.1 + 0.9 * t / 20 for t in range(5)]
    default, head = series(rows, "lr-SGD/default"), series(rows, "lr-SGD/head")
    assert [default[t] for t in range(5)] == pytest.approx([0.02 * r for r in ramp], rel=1e-12)
    assert [head[t] for t in range(5)] == pytest.approx([0.2 * r for r in ramp], rel=1e-12)
