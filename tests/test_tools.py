"""``lit-optim plot | groups | compare``: what they draw is what fit does."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, config_steps, read_metrics, run_cli, run_main, series

from lit_optim import OptimConfig
from lit_optim.core.plan import RunPlan, TrainLoop
from lit_optim.tools.plot import read_data

COMPARE = CONFIGS / "compare"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature + IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head[:8]
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


# --------------------------------------------------------------------------- plot


@pytest.mark.parametrize(
    ("batches", "accumulate", "total", "interval", "frequency", "expected"),
    [
        (4, 1, 6, "step", 1, [0, 1, 2, 3, 4, 5]),
        (4, 1, 8, "epoch", 1, [0, 0, 0, 0, 1, 1, 1, 1]),
        (4, 1, 9, "epoch", 2, [0] * 8 + [1]),
        # 5 batches, accumulate 2: optimizer steps after batches 2, 4 and 5 of each epoch
        (5, 2, 6, "step", 1, [0, 1, 2, 3, 4, 5]),
        # frequency counts batches within the epoch: batch_idx + 1 = 2, 4 step; 5 does not
        (5, 1, 10, "step", 2, [0, 0, 1, 1, 2, 2, 2, 3, 3, 4]),
    ],
)
def test_scheduler_steps_follow_lightnings_loop(
    batches, accumulate, total, interval, frequency, expected
):
    config = OptimConfig(interval=interval, frequency=frequency)
    plan = RunPlan.of(config, TrainLoop(batches, accumulate, max_epochs=-1, max_steps=total))
    assert plan.scheduler_steps() == expected


@pytest.mark.parametrize(
    ("name", "extra", "keys"),
    [
        # per step, warmup, head x10; accumulation: 10 batches -> 4 optimizer steps an epoch
        (
            "digits_poly",
            [
                "--trainer.max_epochs",
                "3",
                "--trainer.accumulate_grad_batches",
                "3",
                "--trainer.limit_train_batches",
                "10",
                "--optim.warmup",
                '{"steps": 3, "start_factor": 0.1}',
            ],
            ["head", "default", "default-momentum"],
        ),
        # interval: epoch, one Lambda per group
        (
            "digits_lambda",
            ["--trainer.max_epochs", "5", "--trainer.limit_train_batches", "3"],
            ["head", "default"],
        ),
        # a torch scheduler (stepped copy), momentum cycled too
        (
            "digits_onecycle",
            ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "8"],
            ["default", "default-momentum"],
        ),
        # frequency 2 on an odd number of batches, layer decay, warmup fraction
        (
            "digits_layer_decay_cosine",
            [
                "--trainer.max_epochs",
                "2",
                "--trainer.limit_train_batches",
                "7",
                "--optim.frequency",
                "2",
            ],
            ["layer0", "layer3/no_decay", "layer2-weight_decay"],
        ),
    ],
)
def test_plotted_lrs_equal_the_lrs_of_a_real_fit(tmp_path, name, extra, keys):
    config = str(CONFIGS / f"{name}.yaml")
    run_main(tmp_path, "plot", "--config", config, *extra, "--ascii",
               "--data", "lr.csv")  # fmt: skip
    plotted = read_data(tmp_path / "lr.csv")
    run_main(tmp_path, "fit", "--config", config, *extra,
               "--trainer.limit_val_batches", "1")  # fmt: skip
    (log_dir,) = (tmp_path / "runs" / name).iterdir()
    rows = read_metrics(log_dir)
    optimizer = "AdamW" if "cosine" in name else "SGD"
    assert {f"lr-{optimizer}/{key}" for key in keys} <= set(plotted)
    assert plotted["step"] == list(range(len(plotted["step"])))
    # The CSV's columns are the keys LRLogger logs: the same set, given what it is told to log.
    lr_logger = yaml.safe_load(Path(config).read_text())["trainer"]["callbacks"][0]
    told = lr_logger.get("init_args", {})
    columns = {
        c
        for c in set(plotted) - {"step", "epoch"}
        if told.get("log_momentum", told.get("momentum")) or not c.endswith("-momentum")
        if told.get("log_weight_decay", told.get("weight_decay")) or not c.endswith("-weight_decay")
    }
    assert columns == {k for r in rows for k, v in r.items() if k.startswith("lr-") and v}
    # ... and every one of them, each group's lr, momentum and weight decay, equals the fit's
    # at every optimizer step.
    for column in sorted(columns):
        logged, values = series(rows, column), plotted[column]
        assert sorted(logged) == list(range(len(values))), column
        assert [logged[t] for t in range(len(values))] == pytest.approx(values, rel=1e-12), column


def test_plot_writes_png_and_data_from_schedulelr(tmp_path, capsys):
    # in this process: what is drawn is tested (plot in a process of its own: the ascii
    # fallback below)
    run_main(tmp_path, "plot", "-o", "lr.png", "--momentum", "--weight-decay",
               "--log")  # fmt: skip
    per_epoch, epochs = config_steps(CONFIGS / "digits_poly.yaml")
    total = per_epoch * epochs
    assert f"wrote lr.png ({total} steps, 4 groups)" in capsys.readouterr().out
    width, height = png_size(tmp_path / "lr.png")
    assert (width, height) == (1100, 792)
    data = read_data(tmp_path / "lr.csv")
    # The embedded default: warmup 20 steps from 0.1x, then Poly(0.9) over the rest.
    head = data["lr-SGD/head"]
    assert head[0] == pytest.approx(0.2 * 0.1, rel=1e-12)
    assert head[20] == pytest.approx(0.2, rel=1e-12)
    rest = total - 20
    assert head[-1] == pytest.approx(0.2 * (1 - (rest - 1) / rest) ** 0.9, rel=1e-12)
    assert data["lr-SGD/default"] == pytest.approx([v / 10 for v in head], rel=1e-12)
    assert set(data["lr-SGD/head-momentum"]) == {0.9}
    assert set(data["lr-SGD/head/no_decay-weight_decay"]) == {0.0}
    assert data["epoch"][per_epoch - 1 : per_epoch + 1] == [0, 1]


@pytest.mark.slow
def test_plot_falls_back_to_ascii_without_matplotlib(tmp_path):
    # None in sys.modules makes `import matplotlib.backends.backend_agg` fail, as if absent.
    script = (
        "import sys; sys.modules['matplotlib.backends.backend_agg'] = None; "
        "from lit_optim.tools.main import main; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "plot", "-o", "lr.png", "--trainer.max_epochs", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "matplotlib is not installed" in proc.stderr
    assert not (tmp_path / "lr.png").exists()
    assert "optimizer step (| = epoch)" in proc.stdout
    assert "head, head/no_decay  (0.02 -> " in proc.stdout
    per_epoch, _ = config_steps(CONFIGS / "digits_poly.yaml")
    assert len(read_data(tmp_path / "lr.csv")["lr-SGD/head"]) == 2 * per_epoch


def test_plot_of_reduce_on_plateau_says_why_it_is_flat(tmp_path, capsys):
    config = str(CONFIGS / "digits_plateau.yaml")
    run_main(tmp_path, "plot", "--config", config, "--ascii", "--data", "d.json")
    out = capsys.readouterr()
    assert "ReduceLROnPlateau lowers the lr when the monitored metric" in out.err
    data = json.loads((tmp_path / "d.json").read_text())
    assert set(data["lr"]["default"]) == {3e-3}
    assert len(data["steps"]) == math.prod(config_steps(CONFIGS / "digits_plateau.yaml"))


def test_plot_of_unknown_run_length_is_a_config_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(tmp_path, "plot", "--ascii", "--trainer.max_epochs", "-1",
                   "--optim.schedule", "Constant", "--optim.warmup", "null")  # fmt: skip
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: trainer.max_steps: the run length is unknown")


# --------------------------------------------------------------------------- groups


@pytest.mark.slow
def test_groups_table_is_plain_text_when_piped(tmp_path):
    rules = '[{"name": "stem", "params": ["stem.*"], "frozen": true}, {"name": "head", '
    rules += '"params": ["head.*"], "lr_scale": 10, "options": {"nesterov": true}}]'
    proc = run_cli("groups", "--optim.groups", rules, "--params", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "\x1b[" not in out
    lines: dict[str, list[str]] = {}  # first line starting with each word
    for line in out.splitlines():
        if line.strip():
            lines.setdefault(line.split()[0], line.split())
    assert lines["head"][1:] == ["groups[1]", "(head)", "1", "5,120", "0.2", "0.0005",
                                 "nesterov=True"]  # fmt: skip
    assert lines["default/no_decay"][2:5] == ["6", "192", "0.02"]
    assert lines["total"][1:] == ["10", "19,146"]
    assert "frozen (not in the optimizer): 4 tensors, 192 params" in out
    assert lines["stem.0.weight"][1:] == ["16x1x3x3", "144", "frozen", "by", "groups[0]",
                                          "(stem)"]  # fmt: skip
    # --params: every parameter once more, with its group
    (row,) = [line.split() for line in out.splitlines() if line.strip().startswith("head.bias")]
    assert row == ["head.bias", "head/no_decay", "10", "10", "no", "groups[1]", "(head)"]


def test_fit_prints_the_group_table_once_unless_summary_is_off(tmp_path, capsys):
    args = ["fit", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
            "--trainer.limit_val_batches", "1", "--optim.warmup", "null"]  # fmt: skip
    run_main(tmp_path, *args)
    out = capsys.readouterr().out
    assert out.count("SGD (fused) param groups") == 1
    assert "head/no_decay" in out
    run_main(tmp_path, *args, "--optim.summary", "false")
    assert "param groups" not in capsys.readouterr().out


def test_tool_config_errors_print_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(tmp_path, "groups", "--optim.groups", '[{"params": ["haed.*"]}]')
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: optim.groups[0].params: 'haed.*' matched no parameter")


# --------------------------------------------------------------------------- compare


def test_compare_trains_every_optim_file_from_the_same_start(tmp_path, capsys):
    # in this process: what compare trains and writes is tested (not process behaviour)
    run_main(
        tmp_path,
        "compare",
        "--optim",
        str(COMPARE / "sgd.yaml"),
        "--optim",
        str(COMPARE / "adam.yaml"),
        "-o",
        "out/cmp.png",
        "--trainer.max_epochs",
        "2",
        "--trainer.limit_train_batches",
        "3",
        "--trainer.limit_val_batches",
        "1",
        # each file is layered on the base's optim: (as fit --optim FILE); the demo's
        # 20-step warmup does not fit this 6-step run, so the base drops it
        "--optim.warmup",
        "null",
    )
    stdout = capsys.readouterr().out
    width, height = png_size(tmp_path / "out" / "cmp.png")
    assert (width, height) == (1430, 462)
    table = (tmp_path / "out" / "cmp.md").read_text()
    assert table.splitlines()[0].startswith("| run | optimizer | final train loss | max val_acc")
    assert [line.split("|")[1:3] for line in table.splitlines()[2:]] == [
        [" sgd ", " SGD "],
        [" adam ", " Adam "],
    ]
    assert table.strip() in stdout
    runs = json.loads((tmp_path / "out" / "cmp.json").read_text())["runs"]
    sgd, adam = runs
    # same init, same first batch: the first loss is identical; then the optimizers differ
    assert sgd["loss"][0] == adam["loss"][0]
    assert sgd["loss"][1] != adam["loss"][1]
    assert len(sgd["loss"]) == 6 and [e for e, _ in sgd["metric"]] == [0, 1]
    assert set(sgd["lr"]["default"]) == {0.05}
    assert set(adam["lr"]["default"]) == {1e-3}
    assert not list(tmp_path.glob("*.yaml")) and not (tmp_path / "runs").exists()


def test_compare_refuses_a_file_without_an_optim_section(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optimizer: {class_path: torch.optim.SGD}\n")
    with pytest.raises(SystemExit) as exc:
        run_main(tmp_path, "compare", "--optim", str(bad))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --optim {bad}: expected a top-level `optim:` mapping")
