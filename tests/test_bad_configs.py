"""The bad-config corpus: every file in ``tests/bad_configs`` exits 2 with one readable line.

Each ``tests/bad_configs/<name>.yaml`` is layered on ``_base.yaml`` (a small digits run
with a fixed logger version) and starts with comment lines:

- ``# expect: <fragment>``: must appear in the single ``error:`` line (it starts with
  the config key path);
- ``# when: run``: optional; the error can only be found once training runs (an
  ``optim.monitor`` that is never logged), so the run's own logs exist by then. Every
  other config is refused before Lightning writes anything.

Most configs run in-process through ``lit_optim.tools.main.main`` (fast); a few run as real
subprocesses to prove "exit 2, one line, no traceback, no usage text" end to end.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, record_count, run_cli

from lit_optim.tools.main import main

CORPUS = ROOT / "tests" / "bad_configs"
BASE = CORPUS / "_base.yaml"


@dataclass(frozen=True)
class BadConfig:
    name: str
    path: Path
    expect: str
    late: bool


def load_corpus() -> list[BadConfig]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        header = {}
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].strip().partition(":")
            if sep and key in ("expect", "when"):
                header[key] = value.strip()
        assert "expect" in header, f"{path.name} has no '# expect: <fragment>' line"
        cases.append(BadConfig(path.stem, path, header["expect"], header.get("when") == "run"))
    return cases


CASES = load_corpus()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (directories as empty entries)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)) + ("/" if p.is_dir() else ""): b""
        if p.is_dir()
        else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def existing_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A previous run in the directory the base config logs to: it must survive."""
    version = tmp_path / "runs" / "bad" / "version_0"
    (version / "checkpoints").mkdir(parents=True)
    (version / "metrics.csv").write_text("epoch,step,train_loss\n0,0,2.3\n0,1,2.1\n")
    (version / "hparams.yaml").write_text("width: 16\n")
    (version / "checkpoints" / "last.ckpt").write_bytes(b"not really a checkpoint \x00\x01")
    (tmp_path / "runs" / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])  # LightningCLI warns about stray argv
    return tmp_path / "runs"


def run_in_process(case: BadConfig, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(BASE), "--config", str(case.path)])
    return info.value.code, capsys.readouterr().err


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def test_the_corpus_has_exactly_81_mistakes() -> None:
    # Exact on purpose: a case that silently stops loading (a lost `# expect:`) shows here.
    assert len(CASES) == 81
    record_count("bad configs in the corpus", len(CASES))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_config_exits_2_with_one_line_naming_the_key(
    case: BadConfig, existing_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(existing_run)
    code, stderr = run_in_process(case, capsys)
    line = error_line(stderr)
    assert code == 2, stderr[-3000:]
    assert case.expect in line, line
    key = line.removeprefix("error: ").split(":")[0].split(" ")[0]
    assert key.startswith(("optim", "trainer")), line
    record_count("bad configs refused with exit 2", 1)
    if not case.late:
        assert snapshot(existing_run) == before, "a refused config wrote into runs/"


SUBPROCESS_CASES = [
    "group_matches_nothing",  # our ConfigError, after the model is built
    "optim_unknown_key",  # refused by jsonargparse while parsing
    "frequency_string",  # a type error found by jsonargparse
    "monitor_never_logged",  # Lightning's MisconfigurationException, translated
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_config_as_a_real_process_prints_one_line_without_usage(
    name: str, existing_run: Path
) -> None:
    (case,) = [c for c in CASES if c.name == name]
    before = snapshot(existing_run)
    proc = run_cli(
        "fit", "--config", str(BASE), "--config", str(case.path), cwd=existing_run.parent
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = error_line(proc.stderr)
    assert case.expect in line
    if not case.late:  # refused before Lightning's banner, seed line or tips
        assert proc.stderr.splitlines()[0] == line, proc.stderr[-3000:]
    assert "usage:" not in proc.stderr and "[--" not in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout == "" or "error" not in proc.stdout
    if not case.late:
        assert snapshot(existing_run) == before


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1, 3])
def test_typo_in_any_group_rule_names_its_index_from_the_cli(index: int, tmp_path: Path) -> None:
    rules = [
        {"name": "head", "params": ["head.*"], "lr_scale": 10.0},
        {"name": "stem", "params": ["stem.*"], "lr_scale": 0.5},
        {"name": "first", "params": ["blocks.0.*"], "weight_decay": 0.0},
        {"name": "second", "params": ["blocks.1.*"], "lr_scale": 2.0},
    ]
    rules[index]["lr_sacle"] = rules[index].pop("lr_scale", 1.0)
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump({"optim": {"optimizer": "SGD", "groups": rules}}))
    proc = run_cli("fit", "--config", str(BASE), "--config", str(bad), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    first = proc.stderr.splitlines()[0]
    assert first.startswith(
        f"error: optim.groups[{index}].lr_sacle: unknown key; did you mean 'lr_scale'"
    ), proc.stderr[-3000:]
    assert error_line(proc.stderr) == first
    assert not (tmp_path / "runs").exists()  # refused before anything was written


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "args, expect",
    [
        (["--trainer.max_epochs", "two"], "error: trainer.max_epochs: Expected a <class 'int'>"),
        (["--config", "broken.yaml"], "error: Problems parsing config"),
        (["--trainer.max_epcohs", "2"], "error: unrecognized arguments: --trainer.max_epcohs"),
    ],
    ids=["type", "yaml", "unknown"],
)
def test_errors_outside_optim_fall_back_to_one_line(
    args: list[str], expect: str, existing_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (existing_run.parent / "broken.yaml").write_text("trainer: {max_epochs: [1\n")
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(BASE), *args])
    assert info.value.code == 2
    assert error_line(capsys.readouterr().err).startswith(expect)
