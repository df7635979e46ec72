"""Run several ``fit`` commands in one Python process, each as ``lit-optim`` would run it.

Used by ``tests/test_smoke.py``: every shipped config's ``fast_dev_run`` pays Python,
torch and Lightning's import once instead of once per config (about 5 s each). Each
command runs through the console script's own entry (:func:`lit_optim.tools.main.main`,
or a config's own script run as ``__main__``) in its own empty working directory, with
file descriptors 1 and 2 redirected to a file, so that what Lightning's log handlers,
rich and Python print is all captured, as a subprocess's output would be.

    python tests/smoke_runner.py JOBS.json RESULTS.json

``JOBS.json``: ``[{"label", "argv", "cwd", "script"}]`` (``script``: a path run as
``__main__`` with ``sys.argv = [script, *argv]``, or null for ``lit-optim *argv``).
``RESULTS.json``: ``{label: {"returncode", "output", "traceback"}}``, written after
each command, so a crash of this process still leaves the results of the ones before.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import traceback
from pathlib import Path


def run_one(job: dict) -> dict:
    """Run one job; its exit code as a process would have it, its output and traceback."""
    from lit_optim.tools.main import main

    saved_cwd, saved_argv = os.getcwd(), sys.argv
    code, tb = 0, None
    with tempfile.TemporaryFile(mode="w+b") as out:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            os.chdir(job["cwd"])
            if job.get("script"):
                sys.argv = [job["script"], *job["argv"]]
                runpy.run_path(job["script"], run_name="__main__")
            else:
                sys.argv = ["lit-optim"]
                main(job["argv"])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
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
            sys.argv = saved_argv
        out.seek(0)
        output = out.read().decode(errors="replace")
    return {"returncode": code, "output": output, "traceback": tb}


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
