"""Run benchmark scripts with ``--quick`` one after another in this one process.

``python tests/quick_benchmarks.py benchmarks/bench_a.py benchmarks/bench_b.py`` prints
one JSON object: ``{script: {"code": exit code, "stdout": its output, "error": traceback}}``.
Each script runs as ``python <script> --quick`` would run it (``runpy`` as ``__main__``,
its directory first on ``sys.path``, its own ``sys.argv``); what one script sets globally
(torch's thread count, the random seed) is put back before the next. One interpreter for
all of them: torch and Lightning are imported once, not once per script.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
import traceback
from pathlib import Path

import torch


def run(script: Path) -> dict[str, object]:
    """``python <script> --quick`` in this process: exit code, stdout, traceback if any."""
    out = io.StringIO()
    saved_argv, saved_path = sys.argv, list(sys.path)
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    sys.argv = [str(script), "--quick"]  # as typed; __file__ is absolute, as Python sets it
    sys.path.insert(0, str(script.resolve().parent))
    code, error = 0, ""
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(script.resolve()), run_name="__main__")
    except SystemExit as exit_:  # sys.exit(n), or sys.exit("message"): exit code 1
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        error = "" if isinstance(exit_.code, int | None) else str(exit_.code)
    except BaseException:  # reported to the test, which fails on it
        code, error = 1, traceback.format_exc()
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)
    return {"code": code, "stdout": out.getvalue(), "error": error}


if __name__ == "__main__":
    results = {name: run(Path(name)) for name in sys.argv[1:]}
    print(json.dumps(results))
