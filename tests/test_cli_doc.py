"""``docs/cli.md`` says what the CLI does: each command runs and prints the text under it.

A ``bash`` block followed by a ``text`` block is a command and its output, run from the
repository root as a subprocess. A refused command (exit 2) must print exactly the text;
a command that succeeds must print the text's lines in a row (the docs show the start).
"""

from __future__ import annotations

import itertools
import re
import shlex

import pytest
from conftest import ROOT, run_cli

DOC = ROOT / "docs" / "cli.md"


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of every bash block followed by a text block."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(), flags=re.S)
    pairs = []
    for (kind, body), (next_kind, output) in itertools.pairwise(blocks):
        if kind == "bash" and next_kind == "text":
            (command,) = body.strip().splitlines()
            pairs.append((command, output.strip("\n").splitlines()))
    return pairs


COMMANDS = documented_commands()


def test_the_doc_documents_the_new_commands() -> None:
    commands = [c for c, _ in COMMANDS]
    assert len(commands) == 7
    assert "lit-optim schedules" in commands and "lit-optim fit --help" in commands
    assert any("--print_config" in c for c in commands)


@pytest.mark.slow
@pytest.mark.parametrize(("command", "expected"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_documented_command_prints_what_the_doc_says(command: str, expected: list[str]) -> None:
    words = shlex.split(command)
    assert words[0] == "lit-optim"
    proc = run_cli(*words[1:], cwd=ROOT)
    if proc.returncode != 0:
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert proc.stderr.splitlines() == expected
        return
    lines = proc.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line == expected[0]]
    assert any(lines[i : i + len(expected)] == expected for i in starts), proc.stdout[-3000:]


def test_help_lists_every_key_of_the_optim_section_with_its_nested_keys() -> None:
    import dataclasses

    from lit_optim.core.config import OptimConfig
    from lit_optim.lightning.optim_help import optim_keys_help

    text = optim_keys_help()
    starts = [line.split()[0] for line in text.splitlines() if line and not line[0].isspace()]
    fields = [f.name for f in dataclasses.fields(OptimConfig)]
    assert starts[: len(fields)] == fields
    assert "warmup                  A ramp composed in front of the schedule. Keys: steps," in text
    assert "unfreeze_at." in text  # the last key of a group rule
