"""Errors before Lightning: ``lit-optim`` checks the ``optim:`` section with core + PyYAML only.

How long a refused typo takes is measured in ``benchmarks/bench_startup.py``, not asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, ROOT, run_cli
from jsonargparse import get_loader

from lit_optim.core.errors import ConfigError
from lit_optim.lightning.yaml_values import load_yaml
from lit_optim.tools.main import main
from lit_optim.tools.precheck import precheck

BASE = ROOT / "tests" / "bad_configs" / "_base.yaml"
TYPO = ROOT / "tests" / "bad_configs" / "optim_unknown_key.yaml"
SHIPPED = sorted(CONFIGS.glob("*.yaml")) + sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize(
    "text",
    ["{lr: 1e-3, when: 2024-01-01, n: 1_000}", "1e-5", ".inf", "-.inf", "x: 1:30", "abc:",
     "{a, b}", "[1, 2.0, 3e4]", "+1e5", "0x10", "yes", "~", "2001-12-14t21:59:43.10-05:00",
     "{betas: [0.9, 0.999], eps: 1.0e-8}"],
)  # fmt: skip
def test_optim_values_read_as_jsonargparse_reads_them(text: str) -> None:
    assert load_yaml(text) == get_loader("yaml")(text)


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_passes_the_fast_path_unchanged(config: Path) -> None:
    args = ["fit", "--config", str(config)]
    assert precheck(args) is None
    assert args == ["fit", "--config", str(config)]


def test_fast_path_refuses_a_typo_without_importing_lightning() -> None:
    code = (
        "import sys\nfrom lit_optim.tools.main import main\n"
        f"try:\n    main(['fit', '--config', {str(BASE)!r}, '--config', {str(TYPO)!r}])\n"
        "except SystemExit as e:\n"
        "    print(e.code, 'lightning' in sys.modules, 'jsonargparse' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.stdout.splitlines() == ["2 False False"], proc.stderr[-3000:]
    assert proc.stderr.startswith("error: optim.scheduler: unknown key; did you mean 'schedule'")


def first_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.mark.slow
def test_lightning_cli_optimizer_flags_point_at_the_optim_section(tmp_path: Path) -> None:
    line = first_error(run_cli("fit", "--optimizer", "AdamW", cwd=tmp_path))
    assert line == (
        "error: --optimizer: LightningCLI's flag, not read here; use --optim.optimizer (e.g. AdamW)"
    )
    proc = run_cli("fit", "--lr_scheduler.class_path=CosineAnnealingLR", cwd=tmp_path)
    assert first_error(proc) == (
        "error: --lr_scheduler.class_path: LightningCLI's flag, not read here; use "
        "--optim.schedule.class_path (e.g. Cosine)"
    )


@pytest.mark.slow
def test_top_level_typo_of_optim_gets_did_you_mean(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text(yaml.safe_dump({"optm": {"optimizer": "SGD"}}))
    proc = run_cli("fit", "--config", str(config), cwd=tmp_path)
    assert first_error(proc) == (
        f"error: optm: unknown top-level key in {config}; did you mean 'optim'?"
    )
    proc = run_cli("fit", "--optm.warmup.steps", "10", cwd=tmp_path)
    assert first_error(proc) == (
        "error: --optm.warmup.steps: unknown option; did you mean --optim.warmup.steps? "
        "(the section is optim)"
    )


@pytest.mark.slow
def test_lightning_cli_optimizer_section_in_a_config_points_at_optim(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text(yaml.safe_dump({"optimizer": {"class_path": "torch.optim.AdamW"}}))
    proc = run_cli("fit", "--config", str(config), cwd=tmp_path)
    assert first_error(proc) == (
        f"error: optimizer: LightningCLI's optimizer: section (in {config}); lit-optim reads "
        "the optim: section: move it to optim.optimizer"
    )


@pytest.mark.slow
def test_print_config_refuses_what_fit_refuses(tmp_path: Path) -> None:
    args = ("--config", str(BASE), "--config", str(TYPO))
    fit = first_error(run_cli("fit", *args, cwd=tmp_path))
    printed = run_cli("fit", *args, "--print_config", cwd=tmp_path)
    assert first_error(printed) == fit
    assert fit.startswith("error: optim.scheduler: unknown key")
    assert printed.stdout == ""


def test_lit_optim_cli_print_config_refuses_the_section_too(monkeypatch, tmp_path) -> None:
    # A user's own LightningCLI script (no lit-optim fast path) gets the same check.
    from lit_optim.lightning.cli import LitOptimCLI

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["my_script.py"])
    bad = "{optimizer: SGD, schedule: {class_path: Cosine, init_args: {T_max: 5}}}"
    with pytest.raises(ConfigError) as info:
        LitOptimCLI(args=["fit", "--config", str(BASE), "--optim", bad, "--print_config"])
    assert str(info.value).startswith(
        "optim.schedule.init_args.T_max: unknown argument of Cosine: T_max -> total: 5"
    )


def test_print_config_of_a_valid_section_still_prints(tmp_path: Path, monkeypatch, capsys) -> None:
    # through lit-optim's entry (precheck first) in this process; tests/test_cli.py runs
    # --print_config as a real lit-optim process
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(CONFIGS / "digits_poly.yaml"), "--print_config"])
    out = capsys.readouterr().out
    assert exit_.value.code in (0, None), out
    printed = yaml.safe_load(out)
    assert printed["optim"]["schedule"] == {"class_path": "Poly", "init_args": {"power": 0.9}}
    assert printed["optim"]["warmup"] == {"steps": 20, "start_factor": 0.1}
