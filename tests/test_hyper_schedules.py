"""Momentum and weight-decay schedules through a real Trainer: logged, resumed, plotted."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
from conftest import CONFIGS, TinyNet, loader, read_metrics, series
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from test_lr_adapter import DINO_WD, ONECYCLE_MOMENTUM

from lit_optim import LRLogger, OptimConfig
from lit_optim.tools.main import main
from lit_optim.tools.plot import read_data

TOTAL = 24  # 64 samples / 8 per batch * 3 epochs


def config() -> OptimConfig:
    return OptimConfig(
        optimizer={
            "class_path": "AdamW",
            "init_args": {"lr": 1e-3, "betas": [0.95, 0.999], "weight_decay": 0.04},
        },
        schedule="Cosine",
        momentum_schedule={
            **ONECYCLE_MOMENTUM,
            "init_args": {**ONECYCLE_MOMENTUM["init_args"], "boundaries": [7]},
        },
        weight_decay_schedule=DINO_WD,
        groups=[{"name": "head", "params": ["head.*"], "weight_decay": 0.1}],
    )


def momentum(step: int) -> float:
    if step < 7:
        return 0.95 - 0.1 * step / 7
    return 0.85 + 0.1 * (step - 7) / (TOTAL - 7)


def wd_factor(step: int) -> float:
    return 10 + (1 - 10) * (1 + math.cos(math.pi * step / TOTAL)) / 2


class Crash(RuntimeError):
    pass


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Crash


def fit(root: Path, callbacks=(), ckpt_path=None) -> dict[str, dict[int, float]]:
    t = pl.Trainer(
        default_root_dir=root,
        logger=CSVLogger(root, name="run"),
        callbacks=[LRLogger(logging_interval="step", momentum=True, weight_decay=True), *callbacks],
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        max_epochs=3,
        log_every_n_steps=1,
    )
    pl.seed_everything(0)
    t.fit(TinyNet(optim=config()), loader(), ckpt_path=ckpt_path)
    rows = read_metrics(t.logger.log_dir)
    keys = {k for r in rows for k in r if k.startswith("lr-")}
    return {k: series(rows, k) for k in keys}


def test_logged_momentum_and_weight_decay_equal_the_schedules_also_after_resume(tmp_path):
    full = fit(tmp_path / "a")
    for group, base_wd in (("default", 0.04), ("head", 0.1), ("default/no_decay", 0.0)):
        mom, wd = full[f"lr-AdamW/{group}-momentum"], full[f"lr-AdamW/{group}-weight_decay"]
        assert sorted(mom) == sorted(wd) == list(range(TOTAL))
        for step in range(TOTAL):
            assert mom[step] == pytest.approx(momentum(step), rel=1e-12), (group, step)
            assert wd[step] == pytest.approx(base_wd * wd_factor(step), rel=1e-12, abs=0)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=5, save_top_k=-1)
    with pytest.raises(Crash):
        fit(tmp_path / "b", [ckpt, CrashAt(13)])
    again = ModelCheckpoint(dirpath=tmp_path / "ckpt2", every_n_train_steps=5, save_top_k=-1)
    resumed = fit(tmp_path / "c", [again], ckpt_path=tmp_path / "ckpt" / "epoch=1-step=10.ckpt")
    assert set(resumed) == set(full)
    for key, values in resumed.items():
        assert sorted(values) == list(range(10, TOTAL)), key
        assert all(values[s] == full[key][s] for s in values), key  # bit-identical


def test_plotted_momentum_and_weight_decay_equal_a_real_fit(monkeypatch, tmp_path):
    config_file = str(CONFIGS / "digits_layer_decay_cosine.yaml")
    extra = [
        "--trainer.max_epochs",
        "2",
        "--trainer.limit_train_batches",
        "6",
        "--optim.weight_decay_schedule",
        json.dumps(DINO_WD),
        "--optim.momentum_schedule",
        json.dumps({"class_path": "Linear", "init_args": {"min_factor": 0.85 / 0.9}}),
    ]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    main(["plot", "--config", config_file, *extra, "--ascii", "--momentum", "--weight-decay",
          "--data", "lr.csv"])  # fmt: skip
    plotted = read_data(tmp_path / "lr.csv")
    main(["fit", "--config", config_file, *extra, "--trainer.limit_val_batches", "1"])
    (log_dir,) = (tmp_path / "runs" / "digits_layer_decay_cosine").iterdir()
    rows = read_metrics(log_dir)
    checked = 0
    for column, values in plotted.items():
        if not column.endswith(("-momentum", "-weight_decay")):
            continue
        logged = series(rows, column)  # the CSV's columns are the logged keys
        assert [logged[t] for t in range(len(values))] == pytest.approx(values, rel=1e-12)
        checked += 1
    assert checked >= 8
    # 12 steps: 0.05 -> 0.5 on a cosine (step 11 is the last one taken)
    last = 10 - 9 * (1 + math.cos(math.pi * 11 / 12)) / 2
    assert plotted["lr-AdamW/layer3-weight_decay"][-1] == pytest.approx(0.05 * last, rel=1e-12)
    assert plotted["lr-AdamW/layer3-momentum"][0] == pytest.approx(0.9, rel=1e-12)
