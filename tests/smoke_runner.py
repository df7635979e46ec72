"""Run several commands in one Python process, each as it would run as a process of its own.

Used by ``tests/test_smoke.py`` (every shipped config's ``fast_dev_run``) and
``tests/test_benchmarks.py`` (every benchmark's ``--quick`` run): torch and Lightning are
imported once instead of once per command (about 5 s each). Each command runs through
the console script's own entry (:func:`lit_optim.tools.main.main`), or is a script run as
``__main__`` (its directory first on ``sys.path``, its own ``sys.argv``, an absolute
``__file__``), in its own working directory, with file descriptors 1 and 2 redirected to
files, so that what Lightning's log handlers, rich and Python print is all captured, as
a subprocess's output would be. What a command changes globally (``sys.path``, torch's
thread count and random state) is put back before the next.

    python tests/smoke_runner.py JOBS.json RESULTS.json
    results = run_all(jobs, root)  # the same from a test: one subprocess, results by label

``JOBS.json``: ``[{"label", "argv", "cwd", "script"}]`` (``script``: a path run as
``__main__`` with ``sys.argv = [script, *argv]``, or null for ``lit-optim *argv``).
``RESULTS.json``: ``{label: {"returncode", "stdout", "stderr", "traceback"}}``, written
after each command, so a crash of this process still leaves the results of the ones before.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping
from pathlib import Path

import torch


def run_one(job: dict) -> dict:
    """Run one job; its exit code as a process would have it, its output and traceback."""
    from lit_optim.tools.main import main

    saved_cwd, saved_argv, saved_path = os.getcwd(), sys.argv, list(sys.path)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    code, tb = 0, None
    with tempfile.TemporaryFile("w+b") as out, tempfile.TemporaryFile("w+b") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            os.chdir(job["cwd"])
            if job.get("script"):
                script = Path(job["script"]).resolve()
                sys.argv = [job["script"], *job["argv"]]
                sys.path.insert(0, str(script.parent))
                runpy.run_path(str(script), run_name="__main__")
            else:
                sys.argv = ["lit-optim"]
                main(job["argv"])
        except SystemExit as exit_:  # as Python exits: sys.exit("message") prints it, code 1
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            if not isinstance(exit_.code, int | None):
                print(exit_.code, file=sys.stderr)
        except BaseException:
            code, tb = 1, traceback.format_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            os.chdir(saved_cwd)
            sys.argv, sys.path[:] = saved_argv, saved_path
            torch.set_num_threads(threads)
            torch.set_rng_state(rng)
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode(errors="replace") for f in (out, err))
    return {"returncode": code, "stdout": stdout, "stderr": stderr, "traceback": tb}


def run_all(
    jobs: list[dict], root: Path, env: Mapping[str, str] | None = None, timeout: float = 900
) -> dict[str, dict]:
    """Run ``jobs`` through this script in one subprocess (in ``root``); results by label."""
    jobs_file, results_file = root / "jobs.json", root / "results.json"
    jobs_file.write_text(json.dumps(jobs))
    proc = subprocess.run(
        [sys.executable, __file__, str(jobs_file), str(results_file)],
        cwd=root, capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(results_file.read_text())


def main_(jobs_file: str, results_file: str) -> None:
    jobs = json.loads(Path(jobs_file).read_text())
    results: dict[str, dict] = {}
    for job in jobs:
        results[job["label"]] = run_one(job)
        Path(results_file).write_text(json.dumps(results))


if __name__ == "__main__":
    # as for `lit-optim`: tests/ (this script's directory) is not importable
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    main_(*sys.argv[1:])
