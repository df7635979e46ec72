"""Every command and ``yaml`` block of the README and of ``docs/*.md`` runs in the suite.

A command runs here (the tools in this process, a training as a subprocess, each with a
few steps and its outputs redirected into a temporary directory), or names the test that
already runs it exactly (``ELSEWHERE``). A synopsis (``configs/<name>.yaml``, ``[--log]``,
``...``, ``x.yaml``) is a form, not a command. A yaml block is an ``optim:`` section: it
is built by ``lit-optim groups`` on a model whose names it uses.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from lit_optim.tools.main import main

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands another test runs as written: ``command -> "file::test"``.
ELSEWHERE = {
    "lit-optim fit": "tests/test_cli_output.py::test_plain_fit_runs_the_embedded_default",
    "lit-optim fit --config configs/digits_poly.yaml": (
        "tests/test_cli.py::test_digits_poly_reaches_95_percent"
    ),
    "lit-optim fit --config configs/digits_poly.yaml --trainer.accelerator cpu "
    "--trainer.devices 2 --trainer.strategy ddp": (
        "tests/test_cli_output.py::test_ddp_on_two_cpu_processes_logs_the_same_lrs_once"
    ),
    "lit-optim fit --config examples/gan.yaml": (
        "tests/test_examples.py::test_documented_command_runs_from_the_repo_root"
    ),
    "python examples/own_cli.py fit --config examples/own_cli.yaml": (
        "tests/test_examples.py::test_documented_command_runs_from_the_repo_root"
    ),
}
#: Commands that are not run, and why.
NOT_RUN = {
    "python -m pytest -q": "the suite itself",
    "python -m pytest -q -n 0": "the suite itself",
    "python -m pytest": "the suite itself",
    "python benchmarks/table.py": "reruns every benchmark (each runs with --quick in "
    "tests/test_benchmarks.py)",
}
#: A few steps for every training a command starts.
TINY = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
        "--trainer.limit_val_batches", "1"]  # fmt: skip


def documented_commands() -> dict[str, str]:
    """``{command: the doc it is in}``: lines of ``bash`` blocks and inline commands."""
    found: dict[str, str] = {}
    for doc in DOCS:
        text = doc.read_text().replace("\\\n", " ")
        blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        lines = [line.strip() for block in blocks for line in block.splitlines()]
        inline = re.findall(r"`((?:lit-optim|python) [^`]+)`", text)
        for command in [*lines, *inline]:
            if command and not command.startswith("#"):
                found.setdefault(" ".join(command.split()), doc.name)
    return found


def is_synopsis(command: str) -> bool:
    return bool(re.search(r"<\w+>|\[-|\.\.\.|\bx\.yaml|\bbase\.yaml", command))


COMMANDS = documented_commands()
#: docs/cli.md's commands (refusals among them) run with their documented output in
#: tests/test_cli_doc.py::test_documented_command_prints_what_the_doc_says.
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
RUN_HERE = [
    c
    for c in COMMANDS
    if not is_synopsis(c)
    and c not in ELSEWHERE
    and c not in NOT_RUN
    and f"$ {c}" not in CLI_DOC
    and c not in CLI_DOC
    and not c.startswith(("python3 -m venv", "python benchmarks/"))
]


def test_every_documented_command_is_run_somewhere():
    assert len(COMMANDS) >= 30
    for command, test in ELSEWHERE.items():
        assert command in COMMANDS, f"{command!r} is no longer documented; drop it here"
        path, name = test.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), test
    benchmarks = [c for c in COMMANDS if c.startswith("python benchmarks/")]
    tested = (ROOT / "benchmarks" / "table.py").read_text()
    for command in benchmarks:
        script = command.split()[1]
        assert script == "benchmarks/table.py" or f'"{script}"' in tested, command
    (install,) = [c for c in COMMANDS if c.startswith("python3 -m venv")]
    assert install.endswith("lit-optim fit")  # its training is the "lit-optim fit" above
    assert len(RUN_HERE) >= 10


def redirected(words: list[str], tmp_path: Path) -> list[str]:
    """The command's output files (``-o``) written into ``tmp_path`` instead."""
    out = list(words)
    for i, word in enumerate(out[:-1]):
        if word in ("-o", "--output"):
            out[i + 1] = str(tmp_path / Path(out[i + 1]).name)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN_HERE, ids=[f"{COMMANDS[c]}: {c}" for c in RUN_HERE])
def test_documented_command_runs(command, tmp_path, monkeypatch, capsys):
    words = redirected(shlex.split(command), tmp_path)
    before = sorted(p.name for p in ROOT.iterdir())
    if words[0] == "lit-optim" and words[1] != "fit":
        tool = words[1]
        extra = {"compare": TINY, "lr-find": ["--steps", "8"]}.get(tool, [])
        if tool == "plot" and "-o" not in words:  # its default lr.png / lr.csv: not here
            extra = ["-o", str(tmp_path / "lr.png")]
        monkeypatch.chdir(ROOT)
        monkeypatch.setattr(sys, "argv", ["lit-optim"])
        main([*words[1:], *extra])
        out = capsys.readouterr().out
        assert out.strip(), command
    else:
        if words[0] == "lit-optim":
            words = [str(Path(sys.executable).with_name("lit-optim")), *words[1:]]
            words += [*TINY, "--trainer.default_root_dir", str(tmp_path)]
        elif words[0] == "python":
            words[0] = sys.executable
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if "sys.modules" in command:  # import lit_optim loads no Lightning, jsonargparse, rich
            assert proc.stdout.strip() == "[]"
        if command == "python tests/test_ports.py":
            assert proc.stdout.strip() in (ROOT / "docs" / "ports.md").read_text()
    assert sorted(p.name for p in ROOT.iterdir()) == before  # nothing written into the repo


def yaml_blocks() -> dict[str, str]:
    found = {}
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            found[f"{doc.name}[{i}]"] = block
    return found


#: Blocks another test builds on the model they are written for: ``block -> "file::test"``.
BLOCKS_ELSEWHERE = {
    "layer_ids.md[0]": (
        "tests/test_structures.py::test_the_docs_layers_example_gives_the_documented_ids"
    ),
}
BLOCKS = {k: v for k, v in yaml_blocks().items() if k not in BLOCKS_ELSEWHERE}


def test_blocks_built_elsewhere_are_built_there():
    for name, test in BLOCKS_ELSEWHERE.items():
        assert name in yaml_blocks(), name
        path, function = test.split("::")
        assert f"def {function}(" in (ROOT / path).read_text(), test


#: The model each block is written for, by a word in it (else the digits CNN).
BASES = {
    "optimizers:": "examples/gan.yaml",
    "torch.optim.Muon": "configs/digits_muon.yaml",
}


@pytest.mark.parametrize("name", BLOCKS)
def test_documented_optim_section_builds(name, tmp_path, monkeypatch, capsys):
    block = BLOCKS[name]
    section = yaml.safe_load(block)
    assert set(section) == {"optim"}, name
    base = next((b for word, b in BASES.items() if word in block), "configs/digits_poly.yaml")
    # the block is a whole section: it replaces the base's (layering would merge them)
    config = {**yaml.safe_load((ROOT / base).read_text()), "optim": section["optim"]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))  # examples.* of the GAN base
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    main(["groups", "--config", str(path)])
    out = capsys.readouterr().out
    assert "param groups" in out, out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_readme_anchor_link_reaches_a_heading():
    text = (ROOT / "README.md").read_text()
    code_free = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = {slug(h) for h in re.findall(r"^#{1,4} (.*)$", code_free, flags=re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert len(links) >= 15  # the table of contents and cross references
    assert sorted(set(links) - anchors) == []
    # "Use your own model" on the first screen, right after the two commands
    assert text.index("## Use your own model") < text.index("## Install")
    assert text.splitlines().index("## Use your own model") < 50
