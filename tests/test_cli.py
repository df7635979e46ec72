"""``lit-optim`` run as a subprocess, the way a user types it."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONFIGS, config_steps, read_metrics, run_cli, series

pytestmark = pytest.mark.slow

PYTHONPATH = [p for p in [os.environ.get("PYTHONPATH")] if p]


def only_version(root: Path) -> Path:
    (version,) = [p for p in root.rglob("version_*") if p.is_dir()]
    return version


#: The README's second command (the whole demo, 6 epochs): one run the tests below share.
DEMO = ["fit", "--config", str(CONFIGS / "digits_poly.yaml")]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """A directory where ``lit-optim`` :data:`DEMO` ran (its ``runs/``), trained once.

    The 95 % test reads it; the checkpoint tests copy it (:func:`demo_copy`) and go on
    from their own copy.
    """
    root = tmp_path_factory.mktemp("demo")
    proc = run_cli(*DEMO, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def demo_copy(demo: Path, tmp_path: Path) -> None:
    """The shared demo run's ``runs/`` copied into ``tmp_path`` (run there as cwd)."""
    shutil.copytree(demo / "runs", tmp_path / "runs")


def test_digits_poly_reaches_95_percent(demo_run):
    # How long it takes is measured in benchmarks/bench_fit_time.py, not asserted here.
    rows = read_metrics(only_version(demo_run / "runs" / "digits_poly"))
    val_acc = series(rows, "val_acc")
    assert max(val_acc.values()) >= 0.95, val_acc
    # group table printed once at the start of fit, lr of both groups logged every step
    per_epoch, epochs = config_steps(CONFIGS / "digits_poly.yaml")
    steps = series(rows, "lr-SGD/head")
    assert sorted(steps) == list(range(per_epoch * epochs))
    base = series(rows, "lr-SGD/default")
    assert steps[100] == pytest.approx(10 * base[100], rel=1e-12)
    assert base[0] == pytest.approx(0.02 * 0.1, rel=1e-12)


def test_switching_optimizer_does_not_leak_init_args(tmp_path):
    proc = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "digits_layer_decay_cosine.yaml"),
        "--optim.optimizer",
        '{"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}}',
        "--print_config",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = yaml.safe_load(proc.stdout)["optim"]["optimizer"]
    # what will really run: SGD's own defaults, nothing of the config's AdamW (weight_decay 0.05)
    assert printed["class_path"] == "torch.optim.SGD"
    init_args = printed["init_args"]
    assert init_args["lr"] == 0.1
    assert init_args["weight_decay"] == 0
    assert init_args["momentum"] == 0
    assert "betas" not in init_args


def test_fit_then_resume_from_last_checkpoint(tmp_path, demo_run):
    demo_copy(demo_run, tmp_path)
    # the epoch-end checkpoint (the newest), next to the newest 10-step one
    (ckpt,) = (tmp_path / "runs").rglob("epoch=*.ckpt")
    (step_ckpt,) = (tmp_path / "runs").rglob("latest-step=*.ckpt")
    per_epoch, epochs = config_steps(CONFIGS / "digits_poly.yaml")
    assert step_ckpt.name == f"latest-step={epochs * per_epoch // 10 * 10}.ckpt"
    again = run_cli(*DEMO, "--ckpt_path", "last", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"ckpt_path 'last' resumes from {ckpt.relative_to(tmp_path)}" in again.stderr
    assert "no last checkpoint available" not in again.stderr
    more = str(epochs + 1)
    longer = run_cli(*DEMO, "--trainer.max_epochs", more, "--ckpt_path", str(ckpt), cwd=tmp_path)
    assert longer.returncode == 2
    run, asked = epochs * per_epoch, (epochs + 1) * per_epoch
    assert f"run length {run} but this run has {asked}" in longer.stderr
    assert "--weights_from CKPT instead of --ckpt_path CKPT" in longer.stderr
    assert "Traceback" not in longer.stderr


def test_weights_from_starts_a_new_run_from_the_checkpoint_weights(tmp_path, demo_run):
    # the shared demo run, then a new run of another length (8 steps) from its weights
    demo_copy(demo_run, tmp_path)
    (ckpt,) = (tmp_path / "runs").rglob("epoch=*.ckpt")
    short = ["--trainer.limit_train_batches", "4", "--trainer.limit_val_batches", "1"]
    args = ["fit", "--config", str(CONFIGS / "digits_poly.yaml"), *short]
    probe = tmp_path / "start.pt"
    longer = run_cli(
        *args,
        "--trainer.max_epochs",
        "2",
        "--weights_from",
        str(ckpt),
        "--trainer.callbacks+=warm_start_probe.SaveStartWeights",
        f"--trainer.callbacks.path={probe}",
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *PYTHONPATH])},
    )
    assert longer.returncode == 0, longer.stderr[-3000:]
    saved = torch.load(ckpt, weights_only=True)["state_dict"]
    start = torch.load(probe, weights_only=True)
    assert start.keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(start[key], value), key
    # a fresh schedule on the new run's 8 steps: warmup from 0.1 at step 0 (of 20 steps)
    rows = read_metrics(tmp_path / "runs" / "digits_poly" / "version_1")
    lrs = series(rows, "lr-SGD/default")
    assert sorted(lrs) == list(range(8))
    assert [lrs[t] for t in range(8)] == pytest.approx(
        [0.02 * (0.1 + 0.9 * t / 20) for t in range(8)], rel=1e-12
    )
    assert "Traceback" not in longer.stderr


def test_validate_test_and_predict_run_from_a_fit_checkpoint(tmp_path, demo_run):
    config = str(CONFIGS / "digits_poly.yaml")
    demo_copy(demo_run, tmp_path)  # lit-optim fit --config configs/digits_poly.yaml
    (ckpt,) = (tmp_path / "runs").rglob("epoch=*.ckpt")  # the epoch-end one (not latest-step)
    for command in ("validate", "test", "predict"):
        proc = run_cli(command, "--config", config, "--ckpt_path", str(ckpt), cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr[-3000:])
        if command != "predict":
            acc = float(re.search(r"val_acc\s*│\s*([0-9.]+)", proc.stdout)[1])
            assert acc >= 0.9, (command, acc)
