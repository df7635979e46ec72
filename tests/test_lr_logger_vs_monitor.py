"""LRLogger against Lightning's LearningRateMonitor: the differential test.

Every scenario runs two real fits from the same seed, one with ``LearningRateMonitor(**args)``
and one with ``LRLogger(**args)``, and requires them to be indistinguishable downstream:

- every ``log_metrics`` call each logger receives: its order, step, keys, value types
  (``float``, ``int``, ``numpy.float64``, ``Tensor`` and its dtype) and values;
- what ``CSVLogger`` and ``TensorBoardLogger`` wrote to disk;
- ``trainer.callback_metrics`` after every batch and at the end of the fit: keys, type,
  dtype, device and value of every entry;
- ``lrs``, ``last_momentum_values`` and ``last_weight_decay_values``.

Both fits carry a callback that calls ``.item()`` on every ``callback_metrics`` value after
every batch (Ray Train's report callback does that), so a non-tensor entry fails the fit.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml
from conftest import TinyNet, loader
from lightning.pytorch.callbacks import (
    BaseFinetuning,
    Callback,
    LearningRateMonitor,
    StochasticWeightAveraging,
)
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from torch import nn, optim

from lit_optim import LRLogger, OptimConfig

ROOT = Path(__file__).resolve().parents[1]


class Recorder(Logger):
    """A logger that keeps nothing but what :func:`record` records."""

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass


def describe(value: Any) -> tuple[str, str, float]:
    """``(type, dtype, value)`` of a logged value, as a downstream consumer sees it."""
    if isinstance(value, torch.Tensor):
        return ("Tensor", f"{value.dtype}/{value.device}/{tuple(value.shape)}", value.item())
    return (type(value).__name__, "", float(value))


def record(logger: Logger, calls: list[tuple[Any, ...]]) -> Logger:
    """Record every ``log_metrics`` call ``logger`` receives, then let it log."""
    original = logger.log_metrics

    def log_metrics(metrics: dict[str, Any], step: int | None = None) -> None:
        calls.append((step, [(key, *describe(value)) for key, value in metrics.items()]))
        original(metrics, step=step)

    logger.log_metrics = log_metrics  # type: ignore[method-assign]
    return logger


class ItemEverything(Callback):
    """Reads every ``callback_metrics`` value with ``.item()`` after each batch; keeps them."""

    def __init__(self) -> None:
        self.seen: list[dict[str, tuple[str, str, float]]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        metrics = trainer.callback_metrics
        self.seen.append({k: (str(v.dtype), str(v.device), v.item()) for k, v in metrics.items()})


class Net(pl.LightningModule):
    """Two linear layers; ``configure(self)`` is what ``configure_optimizers`` returns.

    Args:
        configure: Builds the optimizers (``self.phase`` says which, for a re-setup).
        manual: Manual optimization: optimizer ``i`` steps at the batches where
            ``batch_idx % every[i] == 0`` (default: every batch), and the model steps the
            schedulers, after each batch (``step_schedulers``) or at each epoch end.
        skip_at: ``on_train_batch_start`` returns -1 at this batch index (the rest of
            the epoch is skipped).
        validate: Has a validation step.

    """

    def __init__(
        self,
        configure: Callable[[Net], Any],
        manual: bool = False,
        every: tuple[int, ...] = (),
        step_schedulers: bool = False,
        skip_at: int | None = None,
        validate: bool = False,
    ) -> None:
        super().__init__()
        self.configure = configure
        self.automatic_optimization = not manual
        self.every = every
        self.step_schedulers = step_schedulers
        self.skip_at = skip_at
        self.validate = validate
        self.phase = 0
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def loss(self, batch: Any) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.head(torch.relu(self.body(x))), y)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        return -1 if batch_idx == self.skip_at else None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if self.automatic_optimization:
            return self.loss(batch)
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        for i, opt in enumerate(opts):
            if batch_idx % (self.every[i] if self.every else 1) == 0:
                opt.zero_grad()
                self.manual_backward(self.loss(batch))
                opt.step()
        if self.step_schedulers:
            for sched in self._schedulers():
                sched.step()
        return None

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self.loss(batch))

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


# --------------------------------------------------------------------- optimizers


def sgd_step_lr(m: Net) -> Any:
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def sgd_epoch_lr(m: Net) -> Any:
    opt = optim.SGD(m.parameters(), lr=0.1)
    return [opt], [optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


def sgd(m: Net) -> Any:
    return optim.SGD(m.parameters(), lr=0.1)


def two_adams(m: Net) -> Any:
    o1, o2 = optim.Adam(m.parameters(), lr=1e-2), optim.Adam(m.parameters(), lr=2e-2)
    s1 = optim.lr_scheduler.StepLR(o1, 1, gamma=0.1)
    s2 = optim.lr_scheduler.StepLR(o2, 1, gamma=0.5)
    return [o1, o2], [s1, s2]


def two_adams_no_scheduler(m: Net) -> Any:
    return [optim.Adam(m.parameters(), lr=1e-2), optim.Adam(m.parameters(), lr=2e-2)]


def gan_named(m: Net) -> Any:
    gen = optim.Adam(m.head.parameters(), lr=2e-4, betas=(0.5, 0.999))
    disc = optim.Adam(m.body.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=0.01)
    return [gen, disc], [
        {"scheduler": optim.lr_scheduler.StepLR(gen, 2, gamma=0.5), "name": "gen_lr"},
        {"scheduler": optim.lr_scheduler.StepLR(disc, 1, gamma=0.9), "name": "disc_lr"},
    ]


def named_after_two_unnamed(m: Net) -> Any:
    opts = [optim.Adam(m.parameters(), lr=lr) for lr in (1e-2, 2e-2, 3e-2)]
    scheds = [optim.lr_scheduler.StepLR(o, 1, gamma=0.5) for o in opts]
    return opts, [scheds[0], scheds[1], {"scheduler": scheds[2], "name": "third"}]


def only_second_scheduled(m: Net) -> Any:
    # The scheduled optimizer is named first: o2 is "lr-Adam", o1 "lr-Adam-1".
    o1, o2 = optim.Adam(m.parameters(), lr=1e-2), optim.Adam(m.parameters(), lr=2e-2)
    return [o1, o2], [optim.lr_scheduler.StepLR(o2, 1, gamma=0.5)]


def one_cycle_groups(m: Net) -> Any:
    groups = [
        {"params": m.body.parameters(), "weight_decay": 0.1, "name": "body"},
        {"params": m.head.parameters(), "weight_decay": 0.0},
    ]
    opt = optim.SGD(groups, lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=40)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def adam_betas_groups(m: Net) -> Any:
    groups = [{"params": m.body.parameters()}, {"params": m.head.parameters(), "lr": 0.5}]
    return optim.Adam(groups, lr=1e-2, betas=(0.7, 0.999), weight_decay=0.1)


def asgd(m: Net) -> Any:
    # No momentum, no betas: both callbacks log int 0 (an int64 tensor in callback_metrics).
    opt = optim.ASGD(m.parameters(), lr=1e-2)
    return [opt], [optim.lr_scheduler.StepLR(opt, step_size=1)]


def numpy_float64(m: Net) -> Any:
    # Lightning main's test_lr_monitor_with_float64_lr: a float64 tensor in callback_metrics.
    opt = optim.SGD(m.parameters(), lr=np.float64(0.01))
    return [opt], [optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


def tensor_float64(m: Net) -> Any:
    lr = torch.tensor(0.01, dtype=torch.float64)
    opt = optim.Adam(m.parameters(), lr=lr, foreach=False)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def adam_then_sgd(m: Net) -> Any:
    # The optimizers of phase 0 and, after SetupOptimizers, of phase 1.
    if m.phase == 0:
        opt = optim.Adam(m.parameters(), lr=1e-3)
        return [opt], [optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]
    return optim.SGD([{"params": m.body.parameters()}, {"params": m.head.parameters()}], lr=0.3)


# ------------------------------------------------------------------ other callbacks


class SetupOptimizers(Callback):
    """At the start of epoch ``at``, switch the model to phase 1 and rebuild its optimizers."""

    def __init__(self, at: int = 1) -> None:
        self.at = at

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.at:
            pl_module.phase = 1
            trainer.strategy.setup_optimizers(trainer)


class UnfreezeBody(BaseFinetuning):
    """Freezes ``body``; adds it as a new group of the first optimizer at epoch 1."""

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.freeze(pl_module.body)

    def finetune_function(self, pl_module: pl.LightningModule, epoch: int, optimizer: Any) -> None:
        if epoch == 1:
            self.unfreeze_and_add_param_group(pl_module.body, optimizer, lr=0.05)


def frozen_body_sgd(m: Net) -> Any:
    opt = optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    return [opt], [optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


# ------------------------------------------------------------------ lit_optim models


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


def gan_example() -> pl.LightningModule:
    # examples/gan.py from its own config: optim.optimizers {generator, discriminator}.
    from examples.gan import RingGAN

    section = yaml.safe_load((ROOT / "examples" / "gan.yaml").read_text())
    return RingGAN(optim=OptimConfig.from_dict({**section["optim"], "summary": False}))


def gan_data() -> pl.LightningDataModule:
    from examples.gan import RingData

    return RingData(n=512)


# ----------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    model: Callable[[], pl.LightningModule]
    args: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    callbacks: Callable[[], list[Callback]] = list
    data: Callable[[], Any] = lambda: loader(n=16, batch_size=4)
    loggers: tuple[str, ...] = ("recorder",)
    warns: str | None = None  # a RuntimeWarning both callbacks give
    ignore: tuple[str, ...] = ()  # warnings Lightning or torch give, not the callbacks
    prefix: str = ""  # LRLogger's log_key_prefix; the installed monitor's keys get it here
    # The monitor's ``lrs`` holds the optimizer's own lr tensor, which the scheduler changes
    # in place: every entry reads the last lr. LRLogger's holds a copy per step.
    aliased_lrs: bool = False


def val_data() -> tuple[Any, Any]:
    return loader(n=16, batch_size=4), loader(n=8, batch_size=4, seed=1)


SCENARIOS = [
    Scenario("one-optimizer-step-scheduler", lambda: Net(sgd_step_lr)),
    Scenario(
        "one-optimizer-logging-interval-step",
        lambda: Net(sgd_epoch_lr),
        {"logging_interval": "step"},
    ),
    Scenario(
        "two-optimizers-of-one-class",
        lambda: Net(two_adams, manual=True),
        trainer={"log_every_n_steps": 2},
    ),
    Scenario(
        "two-optimizers-interval-epoch",
        lambda: Net(two_adams, manual=True),
        {"logging_interval": "epoch"},
    ),
    Scenario("two-optimizers-no-scheduler", lambda: Net(two_adams_no_scheduler, manual=True)),
    Scenario(
        "only-the-second-optimizer-scheduled",
        lambda: Net(only_second_scheduled, manual=True, step_schedulers=True),
    ),
    Scenario(
        "named-schedulers",
        lambda: Net(gan_named, manual=True),
        {"log_momentum": True, "log_weight_decay": True},
    ),
    Scenario(
        "named-scheduler-after-two-unnamed", lambda: Net(named_after_two_unnamed, manual=True)
    ),
    # A generator stepping every 2nd batch, its scheduler stepped by the model each batch.
    Scenario(
        "manual-optimizer-skipping-batches",
        lambda: Net(gan_named, manual=True, every=(2, 1), step_schedulers=True),
    ),
    Scenario(
        "batch-skipped-by-on-train-batch-start",
        lambda: Net(sgd_step_lr, skip_at=2),
        trainer={"max_epochs": 2},
    ),
    Scenario(
        "gradient-accumulation", lambda: Net(sgd_step_lr), trainer={"accumulate_grad_batches": 2}
    ),
    Scenario(
        "val-check-interval",
        lambda: Net(sgd_step_lr, validate=True),
        trainer={"val_check_interval": 0.5},
        data=val_data,
    ),
    Scenario(
        "setup-optimizers-mid-fit",
        lambda: Net(adam_then_sgd),
        callbacks=lambda: [SetupOptimizers()],
    ),
    Scenario(
        "setup-optimizers-mid-fit-interval-epoch",
        lambda: Net(adam_then_sgd),
        {"logging_interval": "epoch"},
        callbacks=lambda: [SetupOptimizers()],
    ),
    # The step scheduler gives way to SWA's per-epoch SWALR at epoch 2.
    Scenario(
        "stochastic-weight-averaging",
        lambda: Net(sgd_step_lr),
        trainer={"max_epochs": 4},
        callbacks=lambda: [
            StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2, annealing_epochs=1)
        ],
        ignore=("SWA is currently only supported every epoch",),
    ),
    Scenario(
        "base-finetuning-adds-a-group",
        lambda: Net(frozen_body_sgd),
        callbacks=lambda: [UnfreezeBody()],
    ),
    Scenario(
        "momentum-and-weight-decay-onecycle-groups",
        lambda: Net(one_cycle_groups),
        {"log_momentum": True, "log_weight_decay": True},
    ),
    Scenario(
        "momentum-and-weight-decay-no-scheduler",
        lambda: Net(adam_betas_groups),
        {"log_momentum": True, "log_weight_decay": True},
    ),
    Scenario(
        "momentum-of-an-optimizer-without-momentum",
        lambda: Net(asgd),
        {"log_momentum": True},
        warns="optimizers do not have momentum",
    ),
    Scenario("epoch-interval-scheduler", lambda: Net(sgd_epoch_lr)),
    Scenario("no-scheduler", lambda: Net(sgd)),
    Scenario(
        "trainer-log-every-n-steps-3", lambda: Net(sgd_step_lr), trainer={"log_every_n_steps": 3}
    ),
    Scenario("float64-numpy-lr", lambda: Net(numpy_float64)),
    Scenario(
        "float64-tensor-lr",
        lambda: Net(tensor_float64),
        ignore=("To copy construct from a tensor",),
        aliased_lrs=True,
    ),
    # Lightning 2.6.6 has no log_key_prefix (main has): its keys are prefixed here.
    Scenario(
        "log-key-prefix",
        lambda: Net(gan_named, manual=True),
        {"log_momentum": True},
        prefix="optim/",
    ),
    Scenario(
        "lit-optim-named-groups", lit_optim_groups, {"log_momentum": True, "log_weight_decay": True}
    ),
    Scenario(
        "lit-optim-optimizers-generator-discriminator",
        gan_example,
        {"log_momentum": True},
        data=gan_data,
        trainer={"max_epochs": 2},
    ),
    Scenario("csv-logger", lambda: Net(sgd_step_lr), {"log_momentum": True}, loggers=("csv",)),
    Scenario(
        "tensorboard-logger",
        lambda: Net(sgd_step_lr),
        {"log_momentum": True},
        loggers=("tensorboard",),
    ),
    Scenario(
        "several-loggers",
        lambda: Net(gan_named, manual=True),
        loggers=("recorder", "csv", "tensorboard"),
    ),
]


@dataclass
class Run:
    trainer: pl.Trainer
    callback: LearningRateMonitor
    calls: dict[str, list[tuple[Any, ...]]]
    seen: list[dict[str, tuple[str, str, float]]]
    root: Path


def fit(root: Path, scenario: Scenario, callback: LearningRateMonitor) -> Run:
    calls: dict[str, list[tuple[Any, ...]]] = {}
    loggers: list[Logger] = []
    for kind in scenario.loggers:
        logger: Logger
        if kind == "recorder":
            logger = Recorder()
        elif kind == "csv":
            logger = CSVLogger(root, name="csv", version=0)
        else:
            logger = TensorBoardLogger(root, name="tb", version=0, default_hp_metric=False)
        loggers.append(record(logger, calls.setdefault(kind, [])))
    items = ItemEverything()
    kwargs: dict[str, Any] = dict(
        default_root_dir=root,
        logger=loggers,
        callbacks=[*scenario.callbacks(), callback, items],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        max_epochs=3,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    kwargs.update(scenario.trainer)
    trainer = pl.Trainer(**kwargs)
    pl.seed_everything(0, verbose=False)
    model = scenario.model()
    data = scenario.data()
    if isinstance(data, tuple):
        trainer.fit(model, *data)
    else:
        trainer.fit(model, data)
    return Run(trainer, callback, calls, items.seen, root)


def callback_metrics(trainer: pl.Trainer) -> dict[str, tuple[str, str, str, tuple[int, ...], Any]]:
    return {
        k: (type(v).__name__, str(v.dtype), str(v.device), tuple(v.shape), v.item())
        for k, v in trainer.callback_metrics.items()
    }


def tensorboard_scalars(root: Path) -> list[tuple[str, int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (root / "tb" / "version_0").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    return [(tag, e.step, e.value) for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_lr_logger_is_indistinguishable_from_learning_rate_monitor(tmp_path, scenario):
    with warnings.catch_warnings():
        for message in scenario.ignore:
            warnings.filterwarnings("ignore", message=message)
        with expect(scenario.warns):
            theirs = fit(tmp_path / "theirs", scenario, LearningRateMonitor(**scenario.args))
        with expect(scenario.warns):
            ours = fit(
                tmp_path / "ours",
                scenario,
                LRLogger(**scenario.args, log_key_prefix=scenario.prefix),
            )
    if scenario.prefix:
        add_prefix(theirs, scenario.prefix)

    lr_keys = set(theirs.callback.lrs)
    for last in (theirs.callback.last_momentum_values, theirs.callback.last_weight_decay_values):
        lr_keys |= {key for key, value in last.items() if value is not None}
    logged = [key for _, call in theirs.calls[scenario.loggers[0]] for key, *_ in call]
    assert lr_keys & set(logged), "the scenario logs no lr"
    for kind in scenario.loggers:
        assert ours.calls[kind] == theirs.calls[kind], kind
    if "csv" in scenario.loggers:
        csv = Path("csv", "version_0", "metrics.csv")
        assert (ours.root / csv).read_text() == (theirs.root / csv).read_text()
    if "tensorboard" in scenario.loggers:
        assert tensorboard_scalars(ours.root) == tensorboard_scalars(theirs.root)
    assert ours.seen == theirs.seen  # callback_metrics after every batch, .item() on each
    assert callback_metrics(ours.trainer) == callback_metrics(theirs.trainer)
    assert lr_keys <= set(ours.trainer.callback_metrics)
    assert list(ours.callback.lrs) == list(theirs.callback.lrs)
    if scenario.aliased_lrs:
        (key,) = theirs.callback.lrs
        logged_lrs = [next(v for k, *v in call if k == key) for _, call in theirs.calls["recorder"]]
        assert describe_all(ours.callback.lrs) == {key: [tuple(v) for v in logged_lrs]}
        assert len({v[2] for v in logged_lrs}) > 1
        assert len({describe(v) for v in theirs.callback.lrs[key]}) == 1
    else:
        assert describe_all(ours.callback.lrs) == describe_all(theirs.callback.lrs)
    assert ours.callback.last_momentum_values == theirs.callback.last_momentum_values
    assert ours.callback.last_weight_decay_values == theirs.callback.last_weight_decay_values


def describe_all(lrs: dict[str, list[Any]]) -> dict[str, list[tuple[str, str, float]]]:
    return {key: [describe(v) for v in values] for key, values in lrs.items()}


def test_optimizers_of_the_gan_example_are_logged_under_their_names(tmp_path):
    # optim.optimizers.generator / .discriminator (issue 20, item 7), for both callbacks.
    scenario = next(s for s in SCENARIOS if s.name.startswith("lit-optim-optimizers"))
    for callback in (LearningRateMonitor(), LRLogger()):
        run = fit(tmp_path / type(callback).__name__, scenario, callback)
        assert list(callback.lrs) == ["lr-generator/default", "lr-discriminator/default"]
        steps = [
            s
            for s, call in run.calls["recorder"]
            if any(k[0] == "lr-generator/default" for k in call)
        ]
        assert steps == list(range(run.trainer.fit_loop.epoch_loop._batches_that_stepped))


@contextlib.contextmanager
def expect(warning: str | None) -> Iterator[None]:
    """``pytest.warns(RuntimeWarning, match=warning)``, or nothing for None."""
    if warning is None:
        yield
    else:
        with pytest.warns(RuntimeWarning, match=warning):
            yield


def add_prefix(run: Run, prefix: str) -> None:
    """Prefix the lr keys of a monitor's run, as Lightning main's ``log_key_prefix`` does."""
    monitor = run.callback
    keys = (
        set(monitor.lrs) | set(monitor.last_momentum_values) | set(monitor.last_weight_decay_values)
    )

    def rename(key: str) -> str:
        return prefix + key if key in keys else key

    for calls in run.calls.values():
        calls[:] = [(step, [(rename(k), *rest) for k, *rest in call]) for step, call in calls]
    run.seen[:] = [{rename(k): v for k, v in seen.items()} for seen in run.seen]
    metrics = run.trainer.callback_metrics
    for key in keys & set(metrics):
        metrics[prefix + key] = metrics.pop(key)
    monitor.lrs = {rename(k): v for k, v in monitor.lrs.items()}
    for name in ("last_momentum_values", "last_weight_decay_values"):
        setattr(monitor, name, {rename(k): v for k, v in getattr(monitor, name).items()})
