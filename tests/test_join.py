"""Groups that join mid-run: Lightning's BaseFinetuning, and rules with ``unfreeze_at``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import CONFIGS, loader, read_metrics, run_cli, series
from lightning.pytorch.callbacks import (
    BackboneFinetuning,
    BaseFinetuning,
    Callback,
    ModelCheckpoint,
)
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from lit_optim import (
    ConfigError,
    LRLogger,
    OptimConfig,
    OptimMixin,
    ScheduleLR,
    build_optimizer,
    build_scheduler,
)
from lit_optim.tools.main import main
from lit_optim.tools.plot import read_data

STEPS_PER_EPOCH, EPOCHS = 8, 3  # 64 samples, batches of 8
TOTAL = STEPS_PER_EPOCH * EPOCHS


class Backboned(OptimMixin, pl.LightningModule):
    """``backbone`` + ``head``, the shape Lightning's fine-tuning callbacks expect."""

    def __init__(self, optim: OptimConfig | dict | None = None) -> None:
        super().__init__()
        self.optim = optim
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)


class UnfreezeBackbone(BaseFinetuning):
    """Lightning's documented pattern: freeze the backbone, add it at ``epoch``."""

    def __init__(self, epoch: int = 1) -> None:
        super().__init__()
        self.epoch = epoch

    def freeze_before_training(self, pl_module):
        self.freeze(pl_module.backbone)

    def finetune_function(self, pl_module, epoch, optimizer):
        if epoch == self.epoch:  # lr = first group's lr / 10 (initial_denom_lr)
            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer)


def cosine_config(**extra) -> dict:
    return dict(
        optimizer={"class_path": "SGD", "init_args": {"lr": 0.1, "momentum": 0.9}},
        schedule="Cosine",
        no_decay=[],
        **extra,
    )


UNFREEZE_RULE = {
    "name": "backbone",
    "params": ["backbone.*"],
    "unfreeze_at": {"epoch": 1},
    "lr_scale": 0.1,
}


def fit(root: Path, cfg: dict, callbacks=(), ckpt_path=None, **kwargs) -> pl.Trainer:
    t = pl.Trainer(
        default_root_dir=root,
        logger=CSVLogger(root, name="run"),
        callbacks=[LRLogger(logging_interval="step", momentum=True), *callbacks],
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        max_epochs=EPOCHS,
        log_every_n_steps=1,
        **kwargs,
    )
    pl.seed_everything(0)
    t.fit(Backboned(optim=OptimConfig(**cfg)), loader(), ckpt_path=ckpt_path)
    return t


def history(t: pl.Trainer) -> dict[str, dict[int, float]]:
    logger = next(c for c in t.callbacks if isinstance(c, LRLogger))
    return {k: dict(v) for k, v in logger.history.items()}


def cosine(step: int, total: int = TOTAL) -> float:
    return (1 + math.cos(math.pi * step / total)) / 2


def test_base_finetuning_group_keeps_its_lr_ratio_under_cosine(tmp_path):
    t = fit(tmp_path, cosine_config(), [UnfreezeBackbone(epoch=1)])
    assert t.global_step == TOTAL  # completed (it used to crash at the first step after)
    lrs = history(t)
    head, backbone = lrs["lr-SGD/default"], lrs["lr-SGD/pg2"]
    assert sorted(head) == list(range(TOTAL))
    assert sorted(backbone) == list(range(STEPS_PER_EPOCH, TOTAL))  # from its first step
    for step in head:
        assert head[step] == pytest.approx(0.1 * cosine(step), rel=1e-12, abs=1e-15)
    for step, lr in backbone.items():
        assert lr / head[step] == pytest.approx(0.1, rel=1e-12), step
    # the same from the CSV the trainer's logger wrote
    rows = read_metrics(t.logger.log_dir)
    assert series(rows, "lr-SGD/pg2") == pytest.approx(backbone, rel=1e-12)


def test_unfreeze_at_rule_gives_the_same_lrs_as_the_callback(tmp_path):
    by_callback = history(fit(tmp_path / "cb", cosine_config(), [UnfreezeBackbone(epoch=1)]))
    t = fit(tmp_path / "rule", cosine_config(groups=[UNFREEZE_RULE]))
    by_rule = history(t)
    assert sorted(by_rule["lr-SGD/backbone"]) == list(range(STEPS_PER_EPOCH, TOTAL))
    for ours, theirs in (("default", "default"), ("backbone", "pg2")):
        mine, ref = by_rule[f"lr-SGD/{ours}"], by_callback[f"lr-SGD/{theirs}"]
        assert sorted(mine) == sorted(ref)
        for step in mine:
            assert mine[step] == pytest.approx(ref[step], rel=1e-12, abs=1e-15), (ours, step)
    assert set(by_rule["lr-SGD/backbone-momentum"].values()) == {0.9}
    assert all(p.requires_grad for p in t.lightning_module.backbone.parameters())


class RecordBackbone(Callback):
    """The backbone's first weight before every optimizer step."""

    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.weights[trainer.global_step] = pl_module.backbone[0].weight.detach().clone()


def test_unfreeze_at_step_keeps_the_backbone_untouched_until_then(tmp_path):
    record = RecordBackbone()
    rule = {**UNFREEZE_RULE, "unfreeze_at": {"step": 5}}
    t = fit(tmp_path, cosine_config(groups=[rule]), [record])
    lrs = history(t)
    assert sorted(lrs["lr-SGD/backbone"]) == list(range(5, TOTAL))
    for step, lr in lrs["lr-SGD/backbone"].items():
        assert lr == pytest.approx(0.01 * cosine(step), rel=1e-12, abs=1e-15)
    w = record.weights
    assert all(torch.equal(w[s], w[0]) for s in range(6))  # step 5 is the first update
    assert not torch.equal(w[6], w[5])


def test_unfreeze_at_epoch_with_interval_epoch(tmp_path):
    cfg = cosine_config(groups=[{**UNFREEZE_RULE, "unfreeze_at": {"epoch": 2}}], interval="epoch")
    lrs = history(fit(tmp_path, cfg))
    backbone = lrs["lr-SGD/backbone"]
    assert sorted(backbone) == list(range(2 * STEPS_PER_EPOCH, TOTAL))
    for lr in backbone.values():  # stepped per epoch: one value through epoch 2
        assert lr == pytest.approx(0.01 * cosine(2, EPOCHS), rel=1e-12)


class Crash(RuntimeError):
    pass


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Crash(f"simulated crash at step {self.step}")


@pytest.mark.parametrize("form", ["callback", "rule"])
def test_resume_after_the_join_gives_identical_lrs(tmp_path, form):
    cfg = cosine_config(groups=[UNFREEZE_RULE] if form == "rule" else [])
    key = "lr-SGD/backbone" if form == "rule" else "lr-SGD/pg2"

    def run(root: Path, stop: int | None = None, ckpt_path: Path | None = None) -> pl.Trainer:
        ckpt = ModelCheckpoint(dirpath=root / "ckpt", every_n_train_steps=5, save_top_k=-1)
        callbacks = [ckpt, *([UnfreezeBackbone(epoch=1)] if form == "callback" else [])]
        return fit(root, cfg, [*callbacks, *([CrashAt(stop)] if stop else [])], ckpt_path)

    full = run(tmp_path / "a")
    with pytest.raises(Crash):
        run(tmp_path / "b", stop=13)  # after the join at step 8 and the step-10 checkpoint
    ckpt = tmp_path / "b" / "ckpt" / "epoch=1-step=10.ckpt"
    assert len(torch.load(ckpt, weights_only=False)["optimizer_states"][0]["param_groups"]) == 2
    resumed = run(tmp_path / "c", ckpt_path=ckpt)
    assert resumed.global_step == TOTAL
    before, after = history(full), history(resumed)
    for name in ("lr-SGD/default", key):
        assert sorted(after[name]) == list(range(10, TOTAL))
        for step, lr in after[name].items():
            assert lr == before[name][step], (name, step)  # bit-identical
    # (weights differ: a plain DataLoader restarts its epoch; tests/test_kill_resume.py has
    # the resumable data for bit-identical weights)
    # trains after the resume too (BaseFinetuning alone re-freezes it: Lightning #21901)
    assert all(p.requires_grad for p in resumed.lightning_module.backbone.parameters())
    assert len(resumed.optimizers[0].param_groups) == 2
    # the joined group keeps this run's implementation (fused), like the built one
    flags = [{k: g.get(k) for k in ("fused", "foreach")} for g in full.optimizers[0].param_groups]
    assert [
        {k: g.get(k) for k in ("fused", "foreach")} for g in resumed.optimizers[0].param_groups
    ] == flags


def test_backbone_finetuning_with_a_per_step_schedule_is_refused(tmp_path):
    # BackboneFinetuning writes the backbone's lr each epoch; a per-step schedule would
    # overwrite it at the next step, silently. Refused before the first step.
    callback = BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    with pytest.raises(ConfigError, match=r"^trainer.callbacks: BackboneFinetuning sets") as err:
        fit(tmp_path, cosine_config(), [callback])
    assert "optim.interval: epoch" in str(err.value) and "unfreeze_at" in str(err.value)


def test_backbone_finetuning_with_a_per_epoch_schedule_keeps_the_callbacks_lr(tmp_path):
    # Lightning's own formula, per epoch: the initial lr is the head's times
    # backbone_initial_ratio_lr, then lambda_func(epoch + 1) times the previous lr,
    # capped at the head's lr (should_align).
    callback = BackboneFinetuning(unfreeze_backbone_at_epoch=1, lambda_func=lambda e: 1.5)
    lrs = history(fit(tmp_path, cosine_config(interval="epoch"), [callback]))
    head, backbone = lrs["lr-SGD/default"], lrs["lr-SGD/pg2"]
    assert sorted(backbone) == list(range(STEPS_PER_EPOCH, TOTAL))
    expected = 0.1 * head[STEPS_PER_EPOCH]
    for epoch in range(1, EPOCHS):
        first = epoch * STEPS_PER_EPOCH
        if epoch > 1:
            expected = min(1.5 * expected, head[first])
        for step in range(first, first + STEPS_PER_EPOCH):
            assert backbone[step] == pytest.approx(expected, rel=1e-12), step
    assert backbone[2 * STEPS_PER_EPOCH] == pytest.approx(0.1 * 0.1 * cosine(1, EPOCHS) * 1.5)


BACKBONE_MODULE = """
import lightning.pytorch as pl, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from lit_optim import OptimMixin

class Backboned(OptimMixin, pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.head(torch.relu(self.backbone(x))), y)

    def train_dataloader(self):
        x = torch.randn(64, 4)
        return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
"""


def test_cli_refuses_backbone_finetuning_with_a_per_step_schedule_first(tmp_path):
    (tmp_path / "backboned.py").write_text(BACKBONE_MODULE)
    (tmp_path / "run.yaml").write_text(
        "trainer:\n  max_epochs: 3\n  default_root_dir: out\n  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.BackboneFinetuning\n"
        "      init_args: {unfreeze_backbone_at_epoch: 1}\n"
        "model: {class_path: backboned.Backboned}\n"
        "optim: {optimizer: torch.optim.SGD, schedule: Cosine}\n"
    )
    out = run_cli("fit", "--config", "run.yaml", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[0].startswith(
        "error: trainer.callbacks: BackboneFinetuning sets the backbone group's lr"
    ), out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()  # refused before Lightning wrote anything
    ok = run_cli("fit", "--config", "run.yaml", "--optim.interval", "epoch", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


def test_schedulelr_adopts_a_group_added_from_outside():
    model = nn.Linear(2, 1)
    opt = build_optimizer(model, OptimConfig(**cosine_config()))
    sched = build_scheduler(opt, OptimConfig(**cosine_config()), total_steps=10)
    for _ in range(3):
        opt.step()
        sched.step()
    extra = torch.zeros(3, requires_grad=True)
    opt.add_param_group({"params": [extra], "lr": opt.param_groups[0]["lr"] * 0.5})
    for step in range(3, 10):
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs[0] == pytest.approx(0.1 * cosine(step, 10), rel=1e-12)
        assert lrs[1] == pytest.approx(0.5 * lrs[0], rel=1e-12), step
        opt.step()
        sched.step()
    assert sched.state_dict()["joined"] == [{"name": "pg2", "step": 3, "source": "added"}]


def test_a_group_added_where_the_schedule_is_zero_is_refused():
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
    sched = ScheduleLR(opt, [lambda step: float(step)])  # 0 at step 0
    opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 0.0})
    opt.step()
    with pytest.raises(RuntimeError, match=r"added at step 0, where the lr schedule is 0"):
        sched.step()


@pytest.mark.parametrize(
    ("rule", "extra", "message"),
    [
        (
            {"unfreeze_at": {"epoch": 3}},
            {},
            r"optim.groups\[0\].unfreeze_at: epoch 3 is past the end of the run \(24 scheduler",
        ),
        (
            {"unfreeze_at": {"step": 2}},
            {"interval": "epoch"},
            r"optim.groups\[0\].unfreeze_at.step: with interval: epoch .* give unfreeze_at.epoch",
        ),
        (
            {"unfreeze_at": {"epoch": 1, "step": 2}},
            {},
            r"optim.groups\[0\].unfreeze_at: give exactly one of epoch or step \(got \['epoch', 's",
        ),
        (
            {"unfreeze_at": {"epoch": 1.5}},
            {},
            r"optim.groups\[0\].unfreeze_at.epoch: expected an integer, got 1.5",
        ),
        (
            {"unfreeze_at": {"epoc": 1}},
            {},
            r"optim.groups\[0\].unfreeze_at.epoc: unknown key; did you mean 'epoch'",
        ),
        (
            {"frozen": True, "lr_scale": 0.1},
            {},
            r"optim.groups\[0\]: a frozen group .* remove them or drop `frozen: true`",
        ),
    ],
)
def test_bad_unfreeze_at_names_the_key(tmp_path, rule, extra, message):
    full = {"name": "backbone", "params": ["backbone.*"], **rule}
    if "lr_scale" not in rule:
        full["lr_scale"] = 0.1
    with pytest.raises(ConfigError, match=message):
        fit(tmp_path, cosine_config(groups=[full], **extra))


def test_every_group_waiting_to_join_is_refused():
    rule = {"name": "all", "params": ["*"], "unfreeze_at": {"epoch": 1}}
    with pytest.raises(ConfigError, match=r"optim.groups: every trainable parameter waits"):
        build_optimizer(nn.Linear(2, 1), OptimConfig(**cosine_config(groups=[rule])))


def test_plot_shows_the_group_from_its_join_step_as_fit_logs_it(monkeypatch, tmp_path):
    config = tmp_path / "join.yaml"
    rule = "    - {name: stem, params: ['stem.*'], unfreeze_at: {epoch: 1}, lr_scale: 0.5}\n"
    text = (CONFIGS / "digits_poly.yaml").read_text().replace("  groups:\n", "  groups:\n" + rule)
    config.write_text(text)
    extra = ["--trainer.max_epochs", "3", "--trainer.limit_train_batches", "10"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    main(["plot", "--config", str(config), *extra, "--ascii", "--data", "lr.csv"])
    plotted = read_data(tmp_path / "lr.csv")
    stem = plotted["lr-SGD/stem"]
    assert all(math.isnan(v) for v in stem[:10])
    assert not any(math.isnan(v) for v in stem[10:])
    main(["fit", "--config", str(config), *extra, "--trainer.limit_val_batches", "1"])
    (log_dir,) = (tmp_path / "runs" / "digits_poly").iterdir()
    logged = series(read_metrics(log_dir), "lr-SGD/stem")
    assert sorted(logged) == list(range(10, 30))
    assert [logged[t] for t in range(10, 30)] == pytest.approx(stem[10:], rel=1e-12)
    rows = read_metrics(log_dir)
    head = series(rows, "lr-SGD/head")
    assert [logged[t] / head[t] for t in range(10, 30)] == pytest.approx([0.05] * 20)
    # every logged column, each from the first step it was logged at, equals the plot's
    columns = {k for r in rows for k, v in r.items() if k.startswith("lr-") and v}
    # (the demo's LRLogger logs momentum, not weight decay)
    assert columns == {c for c in plotted if c.startswith("lr-") and "-weight_decay" not in c}
    for column in sorted(columns):
        values, steps = plotted[column], sorted(series(rows, column))
        assert steps == [t for t, v in enumerate(values) if not math.isnan(v)], column
        assert [series(rows, column)[t] for t in steps] == pytest.approx(
            [values[t] for t in steps], rel=1e-12
        ), column
