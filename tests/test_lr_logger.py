"""LRLogger's own features, beyond what it shares with LearningRateMonitor.

``tests/test_lr_logger_vs_monitor.py`` checks, scenario by scenario, that LRLogger logs what
``LearningRateMonitor`` logs; this file checks what only LRLogger has (aliases, a bounded
history, no logger needed, ``every_n_steps``, the progress bar) and its key naming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import PlainNet, TinyNet, loader, read_metrics, series
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from test_lr_logger_vs_monitor import (
    ItemEverything,
    Net,
    Recorder,
    lit_optim_groups,
    record,
    sgd_epoch_lr,
    sgd_step_lr,
    two_adams,
)
from torch import optim

from lit_optim import ConfigError, LRLogger, OptimConfig
from lit_optim.lightning.callbacks import ReadableFloat, metric_keys


def trainer(tmp_path: Path, callbacks: list[Any], **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = dict(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=callbacks,
        max_epochs=3,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    return pl.Trainer(**{**options, **kwargs})


def steps_of(calls: list[tuple[Any, ...]], key: str) -> list[int]:
    return [step for step, call in calls if any(k == key for k, *_ in call)]


def test_is_a_learning_rate_monitor_with_its_defaults():
    cb = LRLogger()
    assert isinstance(cb, LearningRateMonitor)
    assert (cb.logging_interval, cb.log_momentum, cb.log_weight_decay) == (None, False, False)
    assert cb.log_key_prefix == "" and cb.every_n_steps is None and cb.history_size == 1000


def test_project_names_are_aliases_of_lightnings():
    cb = LRLogger(momentum=True, weight_decay=True)
    assert cb.log_momentum is True and cb.log_weight_decay is True
    assert LRLogger(log_momentum=True, momentum=True).log_momentum is True
    with pytest.raises(ConfigError, match=r"^LRLogger.momentum: is the old name of log_momentum"):
        LRLogger(log_momentum=True, momentum=False)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every_n_steps": 0}, r"^LRLogger.every_n_steps: must be an int >= 1, or null"),
        ({"logging_interval": "batch"}, r"^LRLogger.logging_interval: unknown interval 'batch'"),
        ({"history_size": -2}, r"^LRLogger.history_size: must be an int >= 0, or -1"),
    ],
)
def test_bad_arguments_are_config_errors_and_misconfigurations(kwargs, match):
    # A ConfigError for lit-optim's CLI, a MisconfigurationException as Lightning's monitor.
    with pytest.raises(ConfigError, match=match):
        LRLogger(**kwargs)
    with pytest.raises(MisconfigurationException, match=match):
        LRLogger(**kwargs)


def test_works_without_a_logger(tmp_path):
    # LearningRateMonitor refuses a Trainer without a logger; LRLogger still fills
    # callback_metrics, lrs and history, and a callback can .item() every metric.
    lr_logger, items = LRLogger(log_momentum=True), ItemEverything()
    t = trainer(tmp_path, [lr_logger, items], log_every_n_steps=1)
    t.fit(Net(sgd_step_lr), loader(n=16, batch_size=4))
    lrs = [0.1 * 0.5 ** (s // 2) for s in range(12)]
    assert lr_logger.lrs == {"lr-SGD": lrs}
    assert [s for s, _ in lr_logger.history["lr-SGD"]] == list(range(12))
    assert [seen["lr-SGD"] for seen in items.seen] == [
        ("torch.float32", "cpu", pytest.approx(lr, rel=1e-6)) for lr in lrs
    ]
    metric = t.callback_metrics["lr-SGD-momentum"]
    assert metric.dtype == torch.float32 and metric.item() == pytest.approx(0.9)


def test_callback_metrics_keep_a_tensor_while_its_value_holds(tmp_path):
    # EarlyStopping / ModelCheckpoint keep references: a tensor is never changed in place,
    # and a value that holds keeps its tensor (no allocation per step).
    seen: list[torch.Tensor] = []

    class Watch(pl.Callback):
        def on_train_batch_end(self, trainer, *args: Any) -> None:
            seen.append(trainer.callback_metrics["lr-SGD"])

    t = trainer(tmp_path, [LRLogger(), Watch()], max_epochs=1, log_every_n_steps=1)
    t.fit(Net(sgd_step_lr), loader(n=16, batch_size=4))
    assert [m.item() for m in seen] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert seen[0] is seen[1] and seen[2] is seen[3] and seen[1] is not seen[2]
    assert seen[0].item() == pytest.approx(0.1)  # not overwritten by the later 0.05


def test_early_stopping_monitors_the_lr(tmp_path):
    # Lightning's own test_lr_monitor_update_callback_metrics, with LRLogger.
    lr_logger = LRLogger()
    stop = EarlyStopping(
        monitor="lr-SGD", mode="min", stopping_threshold=0.02, check_on_train_epoch_end=True
    )
    t = trainer(tmp_path, [lr_logger, stop], max_epochs=5)
    t.fit(Net(sgd_epoch_lr), loader(n=8, batch_size=4))
    assert stop.stopped_epoch == 3
    assert lr_logger.lrs["lr-SGD"] == [0.1, 0.05, 0.025, 0.0125]
    metric = t.callback_metrics["lr-SGD"]
    assert metric.device.type == "cpu" and metric.item() == pytest.approx(0.0125)


def test_model_checkpoint_monitors_the_lr(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="lr-SGD", mode="max", filename="{lr-SGD:.4f}")
    t = trainer(tmp_path, [LRLogger(), ckpt], enable_checkpointing=True)
    t.fit(Net(sgd_epoch_lr), loader(n=8, batch_size=4))
    assert Path(ckpt.best_model_path).name == "lr-SGD=0.1000.ckpt"
    assert ckpt.best_model_score.item() == pytest.approx(0.1)


def test_every_n_steps_overrides_the_trainers_log_every_n_steps(tmp_path):
    # Lightning's rule ((step + 1) % n == 0) with n=3, whatever log_every_n_steps says.
    calls: list[tuple[Any, ...]] = []
    t = trainer(tmp_path, [LRLogger(every_n_steps=3)], logger=record(Recorder(), calls))
    t.fit(Net(sgd_step_lr), loader(n=16, batch_size=4))
    assert steps_of(calls, "lr-SGD") == [2, 5, 8, 11]

    monitor_calls: list[tuple[Any, ...]] = []
    t = trainer(
        tmp_path,
        [LearningRateMonitor()],
        logger=record(Recorder(), monitor_calls),
        log_every_n_steps=3,
    )
    t.fit(Net(sgd_step_lr), loader(n=16, batch_size=4))
    assert monitor_calls == calls


def test_manual_optimization_logs_at_the_batch_step_not_the_global_step(tmp_path):
    # Two optimizers step every batch: global_step advances by 2, the logger's step by 1.
    calls: list[tuple[Any, ...]] = []
    lr_logger = LRLogger(logging_interval="step")
    t = trainer(tmp_path, [lr_logger], logger=record(Recorder(), calls), log_every_n_steps=1)
    t.fit(Net(two_adams, manual=True), loader(n=16, batch_size=4))
    assert t.global_step == 24
    assert steps_of(calls, "lr-Adam") == steps_of(calls, "lr-Adam-1") == list(range(12))
    # StepLR stepped at each epoch end: gamma 0.1 and 0.5.
    values = {(k, s): v for s, call in calls for k, _, _, v in call}
    assert values["lr-Adam", 4] == pytest.approx(1e-3, rel=1e-6)
    assert values["lr-Adam-1", 8] == pytest.approx(2e-2 * 0.25, rel=1e-6)


def test_history_is_bounded(tmp_path):
    loggers = [LRLogger(history_size=3), LRLogger(history_size=0), LRLogger(history_size=-1)]
    t = trainer(tmp_path, loggers, log_every_n_steps=1)
    t.fit(Net(sgd_step_lr), loader(n=16, batch_size=4))
    bounded, off, unbounded = loggers
    lrs = [0.1 * 0.5 ** (s // 2) for s in range(12)]
    assert list(bounded.history["lr-SGD"]) == [(s, lrs[s]) for s in (9, 10, 11)]
    assert bounded.lrs == {"lr-SGD": lrs[9:]}
    assert off.history == {} and off.lrs == {"lr-SGD": []}
    assert unbounded.lrs == {"lr-SGD": lrs}


def test_momentum_on_an_optimizer_without_momentum_warns_and_logs_zero(tmp_path):
    lr_logger = LRLogger(log_momentum=True)
    t = trainer(tmp_path, [lr_logger], max_epochs=1, log_every_n_steps=1)
    model = Net(lambda m: optim.ASGD(m.parameters(), lr=1e-2))
    with pytest.warns(RuntimeWarning, match=r"some optimizers do not have momentum\. This will"):
        t.fit(model, loader(n=8, batch_size=4))
    assert lr_logger.last_momentum_values == {"lr-ASGD-momentum": 0}
    assert t.callback_metrics["lr-ASGD-momentum"].dtype == torch.int64  # as the monitor's


def test_keys_for_two_optimizers_of_one_class_and_named_schedulers():
    a, b = (optim.Adam([torch.zeros(1)], lr=0.1) for _ in range(2))
    assert [e.lr for e in metric_keys([], [a, b])] == [["lr-Adam"], ["lr-Adam-1"]]

    @dataclass
    class Config:
        scheduler: Any
        name: str | None
        interval: str = "step"

    configs = [Config(optim.lr_scheduler.StepLR(a, 1), "gen_lr")]
    entries = metric_keys(configs, [a, b])
    assert [(e.optimizer, e.lr) for e in entries] == [(a, ["gen_lr"]), (b, ["lr-Adam"])]
    assert [e.lr for e in metric_keys([], [a], prefix="optim/")] == [["optim/lr-Adam"]]


def test_duplicate_group_names_are_refused_like_learning_rate_monitor():
    groups = [{"params": [torch.zeros(1)], "name": "x"}, {"params": [torch.zeros(1)], "name": "x"}]
    with pytest.raises(MisconfigurationException, match=r"identical `name` values.*give each"):
        metric_keys([], [optim.SGD(groups, lr=0.1)])


def test_two_optimizers_under_one_key_warn(tmp_path):
    # LearningRateMonitor silently writes both lrs into one curve; LRLogger does too, and says so.
    def same_name(m: Net) -> Any:
        o1, o2 = optim.Adam(m.parameters(), lr=1e-2), optim.Adam(m.parameters(), lr=2e-2)
        scheds = [optim.lr_scheduler.StepLR(o, 1) for o in (o1, o2)]
        return [o1, o2], [{"scheduler": s, "name": "lr-Adam"} for s in scheds]

    t = trainer(tmp_path, [LRLogger()], max_epochs=1)
    with pytest.warns(RuntimeWarning, match=r"Two optimizers \(Adam and Adam\) log their lr as"):
        t.fit(Net(same_name, manual=True), loader(n=8, batch_size=4))


def test_prog_bar_shows_a_readable_lr(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 3e-4}},
        schedule={"class_path": "Exponential", "init_args": {"gamma": 0.5}},
        summary=False,
    )
    t = trainer(tmp_path, [LRLogger(prog_bar=True)], max_epochs=1, log_every_n_steps=1)
    t.fit(TinyNet(optim=cfg), loader())
    lr = t.progress_bar_metrics["lr"]
    assert isinstance(lr, float) and lr == 3e-4 * 0.5**7
    # RichProgressBar formats with ".3f", the tqdm bar with ".3g".
    assert f"{lr:.3f}" == "2.34e-06" and Tqdm.format_num(lr) == "2.34e-6"
    assert f"{ReadableFloat(0.1):.3f}" == "0.1" and f"{ReadableFloat(3e-4):.3f}" == "0.0003"
    assert math.isclose(float(f"{ReadableFloat(0.0123456):.4e}"), 0.0123456, rel_tol=1e-4)


def test_works_on_a_model_without_lit_optim(tmp_path):
    t = trainer(
        tmp_path,
        [LRLogger(log_momentum=True, log_weight_decay=True)],
        logger=CSVLogger(tmp_path, name="run"),
        max_epochs=1,
        log_every_n_steps=1,
    )
    t.fit(PlainNet(), loader())
    rows = read_metrics(t.logger.log_dir)
    assert series(rows, "lr-SGD") == {s: 0.5 for s in range(8)}
    assert series(rows, "lr-SGD-momentum") == {s: 0.0 for s in range(8)}
    assert series(rows, "lr-SGD-weight_decay") == {s: 0.0 for s in range(8)}


def test_logs_once_per_batch_with_lbfgs(tmp_path):
    # LBFGS evaluates its closure several times per step; the lr is logged once per batch.
    cfg = OptimConfig(
        optimizer={"class_path": "LBFGS", "init_args": {"lr": 0.5, "max_iter": 4}},
        schedule={"class_path": "Exponential", "init_args": {"gamma": 0.9}},
        summary=False,
    )
    lr_logger = LRLogger()
    t = trainer(tmp_path, [lr_logger], max_epochs=1, log_every_n_steps=1)
    t.fit(TinyNet(optim=cfg), loader())
    history = lr_logger.history["lr-LBFGS/default"]
    assert [s for s, _ in history] == list(range(8))
    assert [lr for _, lr in history] == pytest.approx([0.5 * 0.9**s for s in range(8)], rel=1e-12)


def test_lit_optim_groups_are_logged_under_the_scheduler_name(tmp_path):
    # OptimMixin names its scheduler lr-<optimizer>: both callbacks log lr-AdamW/<group>.
    lr_logger = LRLogger(log_weight_decay=True)
    t = trainer(tmp_path, [lr_logger], max_epochs=1, log_every_n_steps=1)
    t.fit(lit_optim_groups(), loader())
    keys = ["default", "default/no_decay", "head", "head/no_decay"]
    assert sorted(lr_logger.lrs) == [f"lr-AdamW/{k}" for k in keys]
    decay = {k: lr_logger.last_weight_decay_values[f"lr-AdamW/{k}-weight_decay"] for k in keys}
    assert decay == {"default": 0.05, "default/no_decay": 0.0, "head": 0.05, "head/no_decay": 0.0}


def test_momentum_of_a_composite_is_read_per_group(tmp_path):
    # Muon's groups have "momentum", AdamW's "betas": each group's own is logged, where
    # LearningRateMonitor reads betas[0] of every group (a KeyError on Muon's).
    muon = {"class_path": "torch.optim.Muon", "init_args": {"lr": 0.02, "weight_decay": 0.01}}
    rule = {"name": "matrices", "params": ["blocks.*"], "ndim": 2, "optimizer": muon}
    model = TinyNet(
        optim=OptimConfig(
            optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}},
            groups=[rule],
            schedule="Cosine",
            summary=False,
        )
    )
    lr_logger = LRLogger(log_momentum=True)
    t = trainer(tmp_path, [lr_logger], max_epochs=1, log_every_n_steps=1)
    t.fit(model, loader())
    momentum = {k.split("/", 1)[1]: v for k, v in lr_logger.last_momentum_values.items()}
    assert momentum["matrices-momentum"] == 0.95
    assert {v for k, v in momentum.items() if k != "matrices-momentum"} == {0.9}
