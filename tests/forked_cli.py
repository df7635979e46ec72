"""``lit-optim`` as real child processes forked from one that has imported it already.

A run that a test kills with SIGKILL is about the kill and the checkpoint it leaves, not
about start-up. A fresh interpreter spends about 4.5 s importing torch, Lightning (and
through it torchmetrics and scipy) before the first step; a child forked from a
``multiprocessing`` fork server that imported them once starts at once. The child is a
separate process all the same: its own pid and session, working directory, environment
and output file; it runs the console script's entry point, ``lit_optim.tools.main.main``,
and dies by a real SIGKILL. Start-up itself (the console script, warnings printed at
import) is covered by the tests that start ``lit-optim`` the way a user does.

    proc = start_forked(["fit", "--config", "a.yaml"], cwd=tmp, env={"X": "1"})
    code, output = proc.finish(timeout=300)  # code -9 after a SIGKILL
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from multiprocessing.context import ForkServerContext
from pathlib import Path

#: Imported once by the fork server; every child starts with them loaded.
PRELOAD = [
    "lit_optim.tools.main",
    "lit_optim.lightning.cli",
    "lightning.pytorch",
    "kill_resume_harness",
]


def _context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # read when the server starts (first child)
    return ctx


def _child(args: list[str], cwd: str, env: dict[str, str], output: str) -> None:
    """In the child: its own session, directory, environment and output, then the CLI."""
    os.setsid()  # like start_new_session: what it leaves behind is killed by group
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    from lit_optim.tools.main import main

    sys.argv = ["lit-optim", *args]
    main(args)


class Forked:
    """A started child: ``finish`` waits for it and returns ``(exit code, its output)``."""

    def __init__(self, process: multiprocessing.process.BaseProcess, output: Path) -> None:
        self.process = process
        self.output = output

    def finish(self, timeout: float = 300) -> tuple[int | None, str]:
        """Wait up to ``timeout`` s; kill what is left; exit code (-9: SIGKILL) and output."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.kill()
            self.process.join(5)
        self.kill()  # anything the child left in its session
        return self.process.exitcode, self.output.read_text()

    def kill(self) -> None:
        """SIGKILL the child's session (quietly, if it is gone)."""
        if self.process.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


def start_forked(args: list[str], cwd: Path, env: dict[str, str], output: Path) -> Forked:
    """Start ``lit-optim <args>`` in ``cwd`` with exactly ``env``; stdout + stderr to ``output``."""
    process = _context().Process(target=_child, args=(args, str(cwd), env, str(output)))
    process.start()
    return Forked(process, output)
