"""The examples work as their docs say: every command they give, run from the repo root.

The commands are read from the examples themselves (the ``bash`` blocks of
``examples/*.md``, the command lines in the docstrings of ``examples/*.py`` and in the
comments of ``examples/*.yaml``) and run as subprocesses, as a user types them. ``lit-optim
fit`` gets tiny trainer limits and a logger directory outside the repository appended on
the command line; the Python scripts run as they are. ``examples`` is importable only
because the command runs in the repo root: the subprocess's ``PYTHONPATH`` holds nothing
but ``lit_optim`` itself.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, read_metrics, series

EXAMPLES = ROOT / "examples"

#: Appended to every ``lit-optim fit`` command: a few steps, and logs outside the repo.
TINY = ("--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3",
        "--trainer.limit_val_batches", "1")  # fmt: skip


def documented_commands() -> dict[str, str]:
    """``{command: where it is written}`` for every command the examples document."""
    found: dict[str, str] = {}
    for md in sorted(EXAMPLES.glob("*.md")):
        for block in re.findall(r"```bash\n(.*?)```", md.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                if line.strip():
                    found.setdefault(line.strip(), md.name)
    for script in sorted(EXAMPLES.glob("*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text())) or ""
        for line in doc.splitlines():
            if line.strip().startswith(("lit-optim ", "python ")):
                found.setdefault(line.strip(), script.name)
    for config in sorted(EXAMPLES.glob("*.yaml")):
        for line in config.read_text().splitlines():
            text = line.lstrip("# ").strip()
            if line.startswith("#") and text.startswith("lit-optim "):
                found.setdefault(text, config.name)
    return found


COMMANDS = documented_commands()


def test_every_example_is_run_by_a_documented_command():
    assert len(COMMANDS) >= 4
    pairs = [pair for c in COMMANDS for pair in itertools.pairwise(c.split())]
    configs = [ROOT / b for a, b in pairs if a == "--config"]
    text = " ".join(COMMANDS) + " ".join(p.read_text() for p in configs)
    for script in EXAMPLES.glob("*.py"):
        if script.name != "__init__.py":
            assert f"examples/{script.name}" in text or f"examples.{script.stem}." in text, script


def lit_optim_only_path(tmp_path: Path) -> str:
    """A ``PYTHONPATH`` entry with this checkout's ``lit_optim`` and nothing else."""
    path = tmp_path / "pythonpath"
    path.mkdir()
    (path / "lit_optim").symlink_to(ROOT / "lit_optim", target_is_directory=True)
    return str(path)


def run(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(command)
    bin_dir = Path(sys.executable).parent
    if words[0] == "python":
        words[0] = sys.executable
    elif words[0] == "lit-optim":
        words[0] = str(bin_dir / "lit-optim")
    if words[1:2] == ["fit"]:
        words += [*TINY, "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
    env = {**os.environ, "PYTHONPATH": lit_optim_only_path(tmp_path)}
    return subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def logged(tmp_path: Path) -> list[dict[str, str]]:
    (metrics,) = (tmp_path / "runs").rglob("metrics.csv")
    return read_metrics(metrics.parent)


def lr_keys(rows: list[dict[str, str]]) -> set[str]:
    return {k for r in rows for k, v in r.items() if k.startswith("lr-") and v}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS), ids=[f"{v}: {k}" for k, v in COMMANDS.items()])
def test_documented_command_runs_from_the_repo_root(command, tmp_path):
    proc = run(command, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if command == "lit-optim fit --config examples/plain_model.yaml":
        # plain_model_cli.md: the one-line notice, the group table, both groups every step.
        notice = "lit-optim: PlainMLP.configure_optimizers is replaced by the optim: section."
        assert (proc.stdout + proc.stderr).count(notice) == 1
        assert "SGD (fused) param groups" in proc.stdout
        rows = logged(tmp_path)
        assert lr_keys(rows) == {"lr-SGD/head", "lr-SGD/default"}
        default, head = series(rows, "lr-SGD/default"), series(rows, "lr-SGD/head")
        # Poly (power 1) over the 6 steps of the tiny run, the head at 10x
        assert default == pytest.approx({t: 0.05 * (1 - t / 6) for t in range(6)}, rel=1e-12)
        assert head == pytest.approx({t: 10 * v for t, v in default.items()}, rel=1e-12)
    elif command == "lit-optim fit --config examples/gan.yaml":
        rows = logged(tmp_path)
        # two Adams, each logged under its entry's name: generator (warmup 4 steps from
        # 0.1x, then cosine), discriminator
        assert lr_keys(rows) == {"lr-generator/default", "lr-discriminator/default"}
        generator = series(rows, "lr-generator/default")
        assert sorted(generator) == list(range(6))
        assert generator[0] == pytest.approx(2e-3 * 0.1, rel=1e-12)
        assert series(rows, "lr-discriminator/default")[0] == pytest.approx(1e-3, rel=1e-12)
    elif command == "python examples/python_api.py":
        lines = proc.stdout.splitlines()
        assert [line.split(":")[0] for line in lines] == [f"epoch {i}" for i in range(5)]
        lrs = dict(kv.split("=") for kv in lines[-1].split("lr ")[1].split(", "))
        assert float(lrs["last"]) == pytest.approx(0.5 * float(lrs["default"]), rel=1e-3)
    elif command == "python examples/mixin_existing_model.py":
        first = {
            line.split(":")[0].strip(): float(line.split("first lr ")[1].split(",")[0])
            for line in proc.stdout.splitlines()
            if "first lr" in line
        }
        assert set(first) == {"head", "default", "default/no_decay"}
        assert first["head"] == pytest.approx(3 * first["default"], rel=1e-2)  # lr_scale 3
    elif command == "python examples/own_cli.py fit --config examples/own_cli.yaml":
        # LitOptimCLI(MyModel, DigitsDataModule): the optim: section built the optimizer,
        # the cosine ended at min_factor 0.1 of each group's lr (head x10)
        assert "SGD (fused) param groups" in proc.stdout
        lrs = dict(line.split(": lr ") for line in proc.stdout.splitlines() if ": lr " in line)
        assert {k: float(v) for k, v in lrs.items()} == pytest.approx(
            {"default": 0.1 * 0.1, "head": 1.0 * 0.1}, rel=1e-9
        )
    else:
        pytest.fail(f"no check of the output of {command!r} ({COMMANDS[command]}); add one")
