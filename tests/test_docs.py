"""What the README, the configs' comments and the docstrings say is what the code does."""

from __future__ import annotations

import itertools
import json
import re
import sys

import pytest
from conftest import CONFIGS, ROOT

from lit_optim.tools.main import main

README = (ROOT / "README.md").read_text()


def groups_output(monkeypatch, tmp_path, capsys, *args: str) -> str:
    """The stdout of ``lit-optim groups <args>``, run in this process from ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    capsys.readouterr()
    main(["groups", *args])
    return capsys.readouterr().out


def table_rows(text: str) -> dict[str, list[str]]:
    """The first row starting with each word of a plain-text table, split on spaces."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip():
            rows.setdefault(line.split()[0], line.split())
    return rows


def test_layer_decay_comment_states_the_lr_multipliers_groups_reports(
    monkeypatch, tmp_path, capsys
):
    config = CONFIGS / "digits_layer_decay_cosine.yaml"
    (comment,) = [line for line in config.read_text().splitlines() if "layer_decay:" in line]
    claimed = {prefix: float(x) for prefix, x in re.findall(r"([\w.]+) ([\d.]+)x", comment)}
    assert set(claimed) == {"stem", "blocks.0", "blocks.1", "head"}
    out = groups_output(monkeypatch, tmp_path, capsys, "--config", str(config), "--params")
    rows = table_rows(out)
    base = 3.0e-3  # the config's optimizer lr
    params = [r for name, r in rows.items() if "." in name and name.split(".")[0] in (
        "stem", "blocks", "head")]  # fmt: skip
    assert len(params) == 14  # every trainable tensor of DigitsCNN
    for row in params:
        (prefix,) = [p for p in claimed if row[0].startswith(p + ".")]
        group_lr = float(rows[row[1]][4])  # the group table's lr column
        assert group_lr == pytest.approx(base * claimed[prefix], rel=1e-3), row[0]


def test_onecycle_group_table_fits_in_100_columns(monkeypatch, tmp_path, capsys):
    config = str(CONFIGS / "digits_onecycle.yaml")
    out = groups_output(monkeypatch, tmp_path, capsys, "--config", config)
    widths = [len(line) for line in out.splitlines()]
    assert max(widths) <= 100, out
    rows = table_rows(out)
    # OneCycleLR's bookkeeping keys are not options of SGD; its cycled momentum is.
    assert rows["default"][-1] == "momentum=0.95"
    assert "max_lr" not in out and "base_momentum" not in out


def test_no_source_benchmark_or_doc_carries_a_machine_path():
    checked = [
        p
        for folder in ("lit_optim", "benchmarks", "examples", "docs")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".md", ".yaml", ".sh", ".txt")
    ] + [ROOT / "README.md", ROOT / "pyproject.toml"]
    assert len(checked) > 40
    offenders = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in checked
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if re.search(r"(?<![\w.])/(work|tmp|root|home)/", line)
    ]
    assert offenders == []


def test_readme_says_how_to_get_the_cpu_build_of_torch():
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in README


def readme_commands() -> list[str]:
    """Every ``lit-optim`` command of the README: code-block lines and inline code."""
    text = README.replace("\\\n", " ")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    inline = re.findall(r"`(lit-optim [^`]+)`", text)
    return [c for c in lines + inline if c.startswith("lit-optim ")]


def test_readme_commands_write_nothing_into_docs():
    commands = readme_commands()
    tools = {c.split()[1] for c in commands}
    assert {"fit", "plot", "compare", "lr-find"} <= tools
    for command in commands:
        words = command.split()
        flags = ("-o", "--output", "--data", ">")
        targets = [b for a, b in itertools.pairwise(words) if a in flags]
        assert not any(t.startswith("docs/") for t in targets), command


def test_every_picture_of_the_readme_is_drawn_by_make_pictures():
    script = (ROOT / "docs" / "make_pictures.sh").read_text()
    pictures = set(re.findall(r"\]\((docs/[\w.]+\.png)\)", README))
    assert len(pictures) >= 5
    drawn = set(re.findall(r"-o (docs/[\w.]+\.png)", script))
    assert pictures <= drawn
    assert "> docs/groups.txt" in script


def test_readme_compare_table_is_the_output_of_its_command():
    # the README's command, as docs/make_pictures.sh runs it (to docs/ instead of here)
    (command,) = [c for c in readme_commands() if c.startswith("lit-optim compare --optim")]
    script = (ROOT / "docs" / "make_pictures.sh").read_text().replace("\\\n", " ")
    (drawn,) = [" ".join(line.split()) for line in script.splitlines() if "compare --optim" in line]
    assert drawn == " ".join(command.split()).replace("-o ", "-o docs/")
    assert "--no-timing" in command  # no wall times: the table is the same on every run
    table = (ROOT / "docs" / "compare_optimizers.md").read_text()
    assert f"\n{table}\n" in README
    # and the table is what the saved series say (final loss: mean of the last epoch)
    from lit_optim.tools.compare import RunResult, markdown_table

    data = json.loads((ROOT / "docs" / "compare_optimizers.json").read_text())
    runs = [RunResult(**{**r, "metric": [tuple(m) for m in r["metric"]]}) for r in data["runs"]]
    assert [r.name for r in runs] == ["sgd", "momentum", "rmsprop", "adam"]
    assert markdown_table(runs, data["metric"], timing=False) + "\n" == table


@pytest.mark.parametrize(
    "name, args",
    [
        ("lr_digits_poly", ["--config", "configs/digits_poly.yaml", "--momentum"]),
        ("lr_layer_decay_cosine", ["--config", "configs/digits_layer_decay_cosine.yaml", "--log"]),
        (
            "join_momentum_wd",
            ["--config", "configs/digits_poly.yaml", "--config", "docs/join_momentum_wd.yaml",
             "--momentum", "--weight-decay"],
        ),
    ],
)  # fmt: skip
def test_docs_pictures_plot_what_the_code_computes_today(name, args, monkeypatch, tmp_path):
    # make_pictures.sh keeps each picture's plotted values; drawing them again gives the
    # same values, byte for byte (a stale picture, e.g. after a fix, fails here)
    script = (ROOT / "docs" / "make_pictures.sh").read_text().replace("\\\n", " ")
    assert f"-o docs/{name}.png" in script and f'--data "docs/{name}.csv"' in script
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    out = tmp_path / f"{name}.csv"
    main(["plot", *args, "-o", str(tmp_path / f"{name}.png"), "--data", str(out)])
    assert out.read_bytes() == (ROOT / "docs" / f"{name}.csv").read_bytes()
