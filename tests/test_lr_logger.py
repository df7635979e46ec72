"""LRLogger as a drop-in for Lightning's LearningRateMonitor, run side by side on real Trainers.

The differential test runs every scenario twice, once with ``LearningRateMonitor`` and once
with ``LRLogger`` configured to its semantics (``every_n_steps=None``, the same
``logging_interval``), and compares what reaches a recording logger: the keys, the steps and
the values. The monitor's public attributes (``lrs``, ``last_momentum_values``,
``last_weight_decay_values``) are compared too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from conftest import PlainNet, TinyNet, loader, read_metrics, series
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
)
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn, optim

from lit_optim import ConfigError, LRLogger, OptimConfig
from lit_optim.lightning.callbacks import ReadableFloat, metric_keys


class Recorder(Logger):
    """A logger that keeps every ``log_metrics`` call: ``[(step, {key: value})]``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        # Only the lr callbacks' keys: not Lightning's "epoch", not a model's own loss.
        skip = ("epoch", "train_loss", "loss_d", "loss_g")
        self.calls.append((step, {k: v for k, v in metrics.items() if k not in skip}))


def received(recorder: Recorder, *, unique: bool) -> dict[tuple[str, int | None], float]:
    """``{(key, step): value}``; a key logged twice at one step must repeat its value."""
    out: dict[tuple[str, int | None], float] = {}
    for step, metrics in recorder.calls:
        for key, value in metrics.items():
            if (key, step) in out:
                assert not unique, f"LRLogger logged {key} twice at step {step}"
                assert out[key, step] == value, (key, step)
            out[key, step] = float(value)
    return out


class Net(pl.LightningModule):
    """Two linear layers; ``configure`` returns what ``configure_optimizers`` returns.

    With ``manual=True`` every optimizer steps every batch (``alternate``: one per batch, in
    turn) and schedulers are stepped by the model: after the batch for ``step_schedulers``,
    else at the end of the epoch, as in Lightning's own tests.
    """

    def __init__(
        self,
        configure: Callable[[Net], Any],
        manual: bool = False,
        alternate: bool = False,
        step_schedulers: bool = False,
    ) -> None:
        super().__init__()
        self.configure = configure
        self.automatic_optimization = not manual
        self.alternate = alternate
        self.step_schedulers = step_schedulers
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.head(torch.relu(self.body(x))), y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if self.automatic_optimization:
            return self.loss(batch)
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        if self.alternate:
            opts = [opts[batch_idx % len(opts)]]
        for opt in opts:
            opt.zero_grad()
            self.manual_backward(self.loss(batch))
            opt.step()
        if self.step_schedulers:
            for sched in self._schedulers():
                sched.step()
        return None

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization and not self.step_schedulers:
            for sched in self._schedulers():
                sched.step()

    def _schedulers(self) -> list[Any]:
        scheds = self.lr_schedulers()
        if scheds is None:
            return []
        return scheds if isinstance(scheds, list) else [scheds]

    def configure_optimizers(self) -> Any:
        return self.configure(self)


class AddGroups(Callback):
    """Adds a param group at the start of given epochs (``{epoch: (optimizer index, lr)}``)."""

    def __init__(self, plan: dict[int, tuple[int, float]]) -> None:
        self.plan = plan

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch in self.plan:
            index, lr = self.plan[trainer.current_epoch]
            extra = nn.Parameter(torch.zeros(3))
            trainer.optimizers[index].add_param_group({"params": [extra], "lr": lr})


def sgd_step_lr(m: Net) -> Any:
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def sgd_epoch_lr(m: Net) -> Any:
    opt = optim.SGD(m.parameters(), lr=0.1)
    return [opt], [optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


def two_adams(m: Net) -> Any:
    o1, o2 = optim.Adam(m.parameters(), lr=1e-2), optim.Adam(m.parameters(), lr=2e-2)
    s1 = optim.lr_scheduler.StepLR(o1, 1, gamma=0.1)
    s2 = optim.lr_scheduler.StepLR(o2, 1, gamma=0.5)
    return [o1, o2], [s1, s2]


def only_second_has_scheduler(m: Net) -> Any:
    # LearningRateMonitor names scheduled optimizers first: o2 is "lr-Adam", o1 "lr-Adam-1".
    o1, o2 = optim.Adam(m.parameters(), lr=1e-2), optim.Adam(m.parameters(), lr=2e-2)
    return [o1, o2], [optim.lr_scheduler.StepLR(o2, 1, gamma=0.5)]


def gan(m: Net) -> Any:
    gen = optim.Adam(m.head.parameters(), lr=2e-4, betas=(0.5, 0.999))
    disc = optim.Adam(m.body.parameters(), lr=1e-4, betas=(0.5, 0.999))
    return [gen, disc], [
        {"scheduler": optim.lr_scheduler.StepLR(gen, 1, gamma=0.5), "name": "gen_lr"},
        {"scheduler": optim.lr_scheduler.StepLR(disc, 1, gamma=0.9), "name": "disc_lr"},
    ]


def named_after_two_unnamed(m: Net) -> Any:
    opts = [optim.Adam(m.parameters(), lr=lr) for lr in (1e-2, 2e-2, 3e-2)]
    scheds = [optim.lr_scheduler.StepLR(o, 1, gamma=0.5) for o in opts]
    return opts, [scheds[0], scheds[1], {"scheduler": scheds[2], "name": "third"}]


def three_kinds(m: Net) -> Any:
    sgd, adam = optim.SGD(m.parameters(), lr=0.1), optim.Adam(m.parameters(), lr=0.1)
    adamw = optim.AdamW(m.parameters(), lr=0.1)
    scheds = [optim.lr_scheduler.StepLR(o, 1, gamma=0.5) for o in (sgd, adam)]
    return [sgd, adam, adamw], scheds


def two_unnamed_groups(m: Net) -> Any:
    groups = [
        {"params": m.body.parameters(), "weight_decay": 0.1},
        {"params": m.head.parameters(), "weight_decay": 0.2},
    ]
    return optim.Adam(groups, lr=1e-2, betas=(0.7, 0.999))


def one_cycle(m: Net) -> Any:
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=16)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def sgd(m: Net) -> Any:
    return optim.SGD(m.parameters(), lr=0.1)


def lit_optim_groups() -> TinyNet:
    return TinyNet(
        optim=OptimConfig(
            optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}},
            groups=[{"name": "head", "params": ["head.*"], "lr_scale": 10}],
            schedule="Cosine",
            warmup={"steps": 2},
            summary=False,
        )
    )


def lit_optim_composite() -> TinyNet:
    # Muon on the blocks' matrices, AdamW elsewhere: one optimizer object, several classes.
    muon = {"class_path": "torch.optim.Muon", "init_args": {"lr": 0.02, "weight_decay": 0.01}}
    rule = {"name": "matrices", "params": ["blocks.*"], "ndim": 2, "optimizer": muon}
    return TinyNet(
        optim=OptimConfig(
            optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}},
            groups=[rule],
            schedule="Cosine",
            summary=False,
        )
    )


def lit_optim_hyper_schedules() -> TinyNet:
    # Momentum (betas[0]) and weight decay follow their own schedules.
    momentum = {"class_path": "Linear", "init_args": {"min_factor": 0.85 / 0.95}}
    return TinyNet(
        optim=OptimConfig(
            optimizer={
                "class_path": "AdamW",
                "init_args": {"lr": 1e-3, "betas": [0.95, 0.999], "weight_decay": 0.04},
            },
            schedule="Cosine",
            momentum_schedule=momentum,
            weight_decay_schedule={"class_path": "Cosine", "init_args": {"min_factor": 10.0}},
            summary=False,
        )
    )


def gan_example() -> pl.LightningModule:
    # examples/gan.py from its own config: two Adams, manual optimization, two schedules.
    import yaml

    from examples.gan import RingGAN

    section = yaml.safe_load((Path(__file__).parents[1] / "examples" / "gan.yaml").read_text())
    torch.manual_seed(0)
    return RingGAN(optim=OptimConfig.from_dict({**section["optim"], "summary": False}))


def gan_data() -> pl.LightningDataModule:
    from examples.gan import RingData

    return RingData(n=512)


@dataclass
class Scenario:
    name: str
    model: Callable[[], pl.LightningModule]
    monitor: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    callbacks: Callable[[], list[Callback]] = list
    data: Callable[[], Any] = lambda: loader(n=16, batch_size=4)


SCENARIOS = [
    Scenario("one-optimizer-step-scheduler", lambda: Net(sgd_step_lr)),
    Scenario("no-scheduler", lambda: Net(sgd)),
    Scenario("no-scheduler-interval-step", lambda: Net(sgd), {"logging_interval": "step"}),
    Scenario(
        "two-optimizers-manual-interval-step",
        lambda: Net(two_adams, manual=True),
        {"logging_interval": "step"},
        {"log_every_n_steps": 2},
    ),
    Scenario(
        "two-optimizers-manual-interval-epoch",
        lambda: Net(two_adams, manual=True),
        {"logging_interval": "epoch"},
    ),
    Scenario(
        "only-the-second-optimizer-has-a-scheduler",
        lambda: Net(only_second_has_scheduler, manual=True, step_schedulers=True),
    ),
    Scenario("named-schedulers-gan", lambda: Net(gan, manual=True), {"log_momentum": True}),
    Scenario(
        "named-scheduler-after-two-unnamed", lambda: Net(named_after_two_unnamed, manual=True)
    ),
    Scenario(
        "lit-optim-named-groups",
        lit_optim_groups,
        {"logging_interval": "step", "log_momentum": True, "log_weight_decay": True},
    ),
    # Not log_momentum: LearningRateMonitor reads betas[0] of every group when the optimizer's
    # defaults have betas, a KeyError on Muon's groups (LRLogger reads each group's own).
    Scenario("lit-optim-composite-muon-adamw", lit_optim_composite, {"log_weight_decay": True}),
    Scenario(
        "lit-optim-momentum-and-weight-decay-schedules",
        lit_optim_hyper_schedules,
        {"logging_interval": "step", "log_momentum": True, "log_weight_decay": True},
    ),
    Scenario(
        "unnamed-groups-momentum-weight-decay",
        lambda: Net(two_unnamed_groups),
        {"log_momentum": True, "log_weight_decay": True},
    ),
    Scenario(
        "onecycle-momentum-weight-decay",
        lambda: Net(one_cycle),
        {"log_momentum": True, "log_weight_decay": True},
    ),
    Scenario(
        "gan-example-two-optimizers-manual",
        gan_example,
        {"logging_interval": "step", "log_momentum": True, "log_weight_decay": True},
        data=gan_data,
    ),
    Scenario("epoch-scheduler", lambda: Net(sgd_epoch_lr)),
    Scenario("logging-interval-epoch", lambda: Net(sgd_step_lr), {"logging_interval": "epoch"}),
    Scenario(
        "groups-added-mid-run",
        lambda: Net(three_kinds, manual=True),
        callbacks=lambda: [AddGroups({1: (0, 0.1), 2: (1, 0.1), 3: (1, 0.2)})],
        trainer={"max_epochs": 4},
    ),
    Scenario(
        "trainer-log-every-n-steps", lambda: Net(sgd_step_lr), trainer={"log_every_n_steps": 3}
    ),
    Scenario(
        "gradient-accumulation", lambda: Net(sgd_step_lr), trainer={"accumulate_grad_batches": 2}
    ),
]


def fit(tmp_path: Path, scenario: Scenario, callback: Callback) -> tuple[pl.Trainer, Recorder]:
    recorder = Recorder()
    kwargs = dict(
        default_root_dir=tmp_path,
        logger=recorder,
        callbacks=[*scenario.callbacks(), callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        max_epochs=3,
        log_every_n_steps=1,
    )
    kwargs.update(scenario.trainer)
    trainer = pl.Trainer(**kwargs)
    pl.seed_everything(0, verbose=False)
    trainer.fit(scenario.model(), scenario.data())
    return trainer, recorder


def as_lr_logger(monitor: dict[str, Any]) -> LRLogger:
    """LRLogger with LearningRateMonitor's semantics (where their defaults differ)."""
    return LRLogger(
        logging_interval=monitor.get("logging_interval"),
        every_n_steps=None,
        momentum=monitor.get("log_momentum", False),
        weight_decay=monitor.get("log_weight_decay", False),
        history_size=-1,
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_same_keys_steps_and_values_as_learning_rate_monitor(tmp_path, scenario):
    monitor = LearningRateMonitor(**scenario.monitor)
    _, theirs_rec = fit(tmp_path / "theirs", scenario, monitor)
    ours = as_lr_logger(scenario.monitor)
    _, ours_rec = fit(tmp_path / "ours", scenario, ours)

    theirs = received(theirs_rec, unique=False)
    assert theirs, "the scenario logs nothing"
    assert received(ours_rec, unique=True) == theirs
    assert list(ours.lrs) == list(monitor.lrs)
    assert ours.last_momentum_values == monitor.last_momentum_values
    assert ours.last_weight_decay_values == monitor.last_weight_decay_values
    # LearningRateMonitor logs an optimizer without a scheduler twice at an epoch's first
    # step (at epoch start and batch start); LRLogger once. Apart from that, lrs are equal.
    logged_twice = sum(len(m) for _, m in theirs_rec.calls) != len(theirs)
    if not logged_twice:
        assert ours.lrs == monitor.lrs


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


def test_manual_optimization_logs_at_the_batch_step_not_the_global_step(tmp_path):
    # Two optimizers step every batch: global_step advances by 2, the logger's step by 1.
    scenario = Scenario("manual", lambda: Net(two_adams, manual=True))
    trainer, rec = fit(tmp_path, scenario, LRLogger())
    assert trainer.global_step == 24
    logged = received(rec, unique=True)
    assert sorted(s for k, s in logged if k == "lr-Adam") == list(range(12))
    assert sorted(s for k, s in logged if k == "lr-Adam-1") == list(range(12))
    # StepLR stepped at each epoch end: gamma 0.1 and 0.5.
    assert logged["lr-Adam", 4] == pytest.approx(1e-3, rel=1e-12)
    assert logged["lr-Adam-1", 8] == pytest.approx(2e-2 * 0.25, rel=1e-12)


def test_every_n_steps_counts_each_optimizers_own_steps(tmp_path):
    # Optimizers step in turn (batch 0: first, batch 1: second, ...); every 2nd step of each.
    scenario = Scenario("alternate", lambda: Net(two_adams, manual=True, alternate=True))
    _, rec = fit(tmp_path, scenario, LRLogger(every_n_steps=2))
    logged = received(rec, unique=True)
    assert sorted(s for k, s in logged if k == "lr-Adam") == [0, 4, 8]
    assert sorted(s for k, s in logged if k == "lr-Adam-1") == [1, 5, 9]


def test_alternating_optimizers_are_logged_only_when_they_step(tmp_path):
    # The monitor logs every optimizer at every batch; LRLogger the one that steps, which is
    # a subset of the monitor's rows with the same values.
    scenario = Scenario("alternate", lambda: Net(two_adams, manual=True, alternate=True))
    _, theirs = fit(tmp_path / "theirs", scenario, LearningRateMonitor(logging_interval="step"))
    _, ours = fit(tmp_path / "ours", scenario, LRLogger(every_n_steps=None))
    theirs_got, ours_got = received(theirs, unique=False), received(ours, unique=True)
    assert len(ours_got) == len(theirs_got) // 2 == 12
    assert all(theirs_got[key] == value for key, value in ours_got.items())


def test_every_n_steps_keeps_its_phase_across_a_resume(tmp_path):
    def run(root: Path, max_steps: int, ckpt_path: Path | None = None) -> dict:
        rec = Recorder()
        ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=5, save_top_k=-1)
        trainer = pl.Trainer(
            default_root_dir=root,
            logger=rec,
            callbacks=[LRLogger(every_n_steps=3), ckpt],
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
            max_steps=max_steps,
        )
        trainer.fit(Net(sgd_step_lr), loader(n=16, batch_size=4), ckpt_path=ckpt_path)
        return received(rec, unique=True)

    first = run(tmp_path / "a", 5)
    assert sorted(s for k, s in first if k == "lr-SGD") == [0, 3]
    resumed = run(tmp_path / "b", 10, ckpt_path=tmp_path / "ckpt" / "epoch=1-step=5.ckpt")
    assert sorted(s for k, s in resumed if k == "lr-SGD") == [6, 9]


def test_early_stopping_monitors_the_lr(tmp_path):
    # Lightning's own test of LearningRateMonitor + EarlyStopping, with LRLogger's defaults.
    lr_logger = LRLogger()
    stop = EarlyStopping(
        monitor="lr-SGD", mode="min", stopping_threshold=0.02, check_on_train_epoch_end=True
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=Recorder(),
        callbacks=[lr_logger, stop],
        max_epochs=5,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Net(sgd_epoch_lr), loader(n=8, batch_size=4))
    assert stop.stopped_epoch == 3
    assert [v for _, v in lr_logger.history["lr-SGD"]] == [0.1] * 2 + [0.05] * 2 + [0.025] * 2 + [
        0.0125
    ] * 2
    metric = trainer.callback_metrics["lr-SGD"]
    assert metric.device.type == "cpu" and metric.item() == pytest.approx(0.0125)


def test_model_checkpoint_monitors_the_lr(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="lr-SGD", mode="max", filename="{lr-SGD:.4f}")
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=Recorder(),
        callbacks=[LRLogger(), ckpt],
        max_epochs=3,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Net(sgd_epoch_lr), loader(n=8, batch_size=4))
    assert Path(ckpt.best_model_path).name == "lr-SGD=0.1000.ckpt"
    assert ckpt.best_model_score.item() == pytest.approx(0.1)


def test_callback_metrics_get_a_tensor_only_for_a_monitored_key_and_only_on_change(tmp_path):
    seen: list[tuple[Any, Any]] = []

    class Watch(Callback):
        def on_train_batch_end(self, trainer, *args: Any) -> None:
            metrics = trainer.callback_metrics
            seen.append((metrics["lr-SGD"], metrics["lr-SGD-momentum"]))

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[LRLogger(momentum=True), Watch(), EarlyStopping(monitor="lr-SGD", patience=9)],
        max_epochs=2,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Net(sgd_epoch_lr), loader(n=8, batch_size=4))
    lrs = [lr for lr, _ in seen]
    assert [t.item() for t in lrs] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert all(t.device.type == "cpu" for t in lrs)
    assert lrs[0] is lrs[1] and lrs[2] is lrs[3] and lrs[1] is not lrs[2]
    # Not monitored: the float itself, no tensor.
    assert [m for _, m in seen] == [0.0] * 4 and all(type(m) is float for _, m in seen)


def test_history_is_bounded(tmp_path):
    loggers = [LRLogger(history_size=3), LRLogger(history_size=0), LRLogger(history_size=-1)]
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=loggers,
        max_epochs=3,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Net(sgd_step_lr), loader(n=16, batch_size=4))
    bounded, off, unbounded = loggers
    lrs = [0.1 * 0.5 ** (s // 2) for s in range(12)]
    assert list(bounded.history["lr-SGD"]) == [(s, lrs[s]) for s in (9, 10, 11)]
    assert bounded.lrs == {"lr-SGD": lrs[9:]}
    assert off.history == {} and off.lrs == {"lr-SGD": []}
    assert unbounded.lrs == {"lr-SGD": lrs}
    assert LRLogger().history_size == 1000


def test_momentum_on_an_optimizer_without_momentum_warns_and_logs_zero(tmp_path):
    lr_logger = LRLogger(momentum=True)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[lr_logger],
        max_epochs=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    model = Net(lambda m: optim.ASGD(m.parameters(), lr=1e-2))
    with pytest.warns(RuntimeWarning, match=r"optimizers do not have momentum or betas \(ASGD\)"):
        trainer.fit(model, loader(n=8, batch_size=4))
    assert lr_logger.last_momentum_values == {"lr-ASGD-momentum": 0.0}


def test_duplicate_group_names_are_refused_like_learning_rate_monitor():
    groups = [{"params": [torch.zeros(1)], "name": "x"}, {"params": [torch.zeros(1)], "name": "x"}]
    with pytest.raises(MisconfigurationException, match=r"identical `name` values.*give each"):
        metric_keys([], [optim.SGD(groups, lr=0.1)])


def test_two_optimizers_under_one_key_are_refused():
    @dataclass
    class Config:
        scheduler: Any
        name: str | None
        interval: str = "step"

    a, b = (optim.Adam([torch.zeros(1)], lr=0.1) for _ in range(2))
    configs = [Config(optim.lr_scheduler.StepLR(o, 1), "lr-Adam") for o in (a, b)]
    with pytest.raises(MisconfigurationException, match=r"Two optimizers \(Adam and Adam\) would"):
        metric_keys(configs, [a, b])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"every_n_steps": 0}, r"^LRLogger.every_n_steps: must be an int >= 1, or null"),
        ({"logging_interval": "batch"}, r"^LRLogger.logging_interval: unknown interval 'batch'"),
        ({"history_size": -2}, r"^LRLogger.history_size: must be an int >= 0, or -1"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LRLogger(**kwargs)


def test_log_key_prefix(tmp_path):
    scenario = Scenario("prefix", lambda: Net(sgd_step_lr))
    _, rec = fit(tmp_path, scenario, LRLogger(momentum=True, log_key_prefix="optim/"))
    assert {k for k, _ in received(rec, unique=True)} == {"optim/lr-SGD", "optim/lr-SGD-momentum"}


def test_prog_bar_shows_a_readable_lr(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 3e-4}},
        schedule={"class_path": "Exponential", "init_args": {"gamma": 0.5}},
        summary=False,
    )
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[LRLogger(prog_bar=True)],
        max_epochs=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(TinyNet(optim=cfg), loader())
    lr = trainer.progress_bar_metrics["lr"]
    assert isinstance(lr, float) and lr == 3e-4 * 0.5**7
    # RichProgressBar formats with ".3f", the tqdm bar with ".3g".
    assert f"{lr:.3f}" == "2.34e-06" and Tqdm.format_num(lr) == "2.34e-6"
    assert f"{ReadableFloat(0.1):.3f}" == "0.1" and f"{ReadableFloat(3e-4):.3f}" == "0.0003"
    assert math.isclose(float(f"{ReadableFloat(0.0123456):.4e}"), 0.0123456, rel_tol=1e-4)


def test_works_on_a_model_without_lit_optim(tmp_path):
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=[LRLogger(momentum=True, weight_decay=True)],
        max_epochs=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        log_every_n_steps=1,
    )
    trainer.fit(PlainNet(), loader())
    rows = read_metrics(trainer.logger.log_dir)
    assert series(rows, "lr-SGD") == {s: 0.5 for s in range(8)}
    assert series(rows, "lr-SGD-momentum") == {s: 0.0 for s in range(8)}


def test_logs_once_per_step_with_lbfgs(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "LBFGS", "init_args": {"lr": 0.5, "max_iter": 4}},
        schedule={"class_path": "Exponential", "init_args": {"gamma": 0.9}},
        summary=False,
    )
    lr_logger = LRLogger()
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[lr_logger],
        max_epochs=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(TinyNet(optim=cfg), loader())
    history = lr_logger.history["lr-LBFGS/default"]
    assert [s for s, _ in history] == list(range(8))
    assert [lr for _, lr in history] == pytest.approx([0.5 * 0.9**s for s in range(8)], rel=1e-12)


def test_momentum_of_a_composite_is_read_per_group(tmp_path):
    # Muon's groups have "momentum", AdamW's "betas": each group's own is logged.
    scenario = Scenario("composite", lit_optim_composite)
    _, rec = fit(tmp_path, scenario, LRLogger(momentum=True))
    last = {k: v for (k, _), v in sorted(received(rec, unique=True).items(), key=lambda i: i[0][1])}
    momentum = {k.split("/", 1)[1]: v for k, v in last.items() if k.endswith("-momentum")}
    assert momentum == {"matrices-momentum": 0.95, "default-momentum": 0.9, **momentum}
    assert set(momentum.values()) == {0.95, 0.9}
