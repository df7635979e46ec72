"""OptimMixin, LRLogger, run length and exact resume through a real Trainer."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import PlainNet, TinyNet, loader, read_metrics, series
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, IterableDataset

from lit_optim import ConfigError, LRLogger, OptimConfig, ScheduleLR
from lit_optim.core.config_values import LayerDecay, LRScaling, Spec, Unfreeze, Warmup
from lit_optim.core.group_registry import groups_of
from lit_optim.lightning.cli import attach_config


def trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    defaults = dict(
        default_root_dir=tmp_path,
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=[LRLogger(momentum=True, weight_decay=True)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        max_epochs=2,
        log_every_n_steps=1,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def lr_logger(t: pl.Trainer) -> LRLogger:
    return next(c for c in t.callbacks if isinstance(c, LRLogger))


def poly_warmup_config(**extra) -> dict:
    return dict(
        optimizer={"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9}},
        schedule={"class_path": "Poly", "init_args": {"power": 2.0}},
        warmup={"steps": 3, "start_factor": 0.1},
        **extra,
    )


def test_csv_lr_equals_closed_form_for_poly_with_warmup(tmp_path):
    t = trainer(tmp_path)
    t.fit(TinyNet(optim=OptimConfig(**poly_warmup_config(no_decay=[]))), loader())
    rows = read_metrics(t.logger.log_dir)
    logged = series(rows, "lr-SGD/default")
    total, warm = 16, 3  # 64 samples / 8 per batch * 2 epochs
    assert sorted(logged) == list(range(total))
    for step, lr in logged.items():
        if step < warm:
            expected = 0.1 * (0.1 + 0.9 * step / warm)
        else:
            expected = 0.1 * (1 - (step - warm) / (total - warm)) ** 2
        assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15), step
    assert set(series(rows, "lr-SGD/default-momentum").values()) == {0.9}


def test_csv_lr_equals_per_group_lambdas(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 0.2}},
        groups=[
            {
                "name": "head",
                "params": ["head.*"],
                "schedule": {"class_path": "Lambda", "init_args": {"expr": "0.5 ** (step // 4)"}},
            }
        ],
        schedule={"class_path": "Lambda", "init_args": {"expr": "0.95 ** epoch"}},
        no_decay=[],
    )
    t = trainer(tmp_path, max_epochs=3)
    t.fit(TinyNet(optim=cfg), loader())
    rows = read_metrics(t.logger.log_dir)
    head, default = series(rows, "lr-SGD/head"), series(rows, "lr-SGD/default")
    assert len(head) == len(default) == 24
    for step in range(24):
        assert head[step] == pytest.approx(0.2 * 0.5 ** (step // 4), rel=1e-12)
        assert default[step] == pytest.approx(0.2 * 0.95 ** (step // 8), rel=1e-12)


def test_csv_lr_equals_layer_decay_scales(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}},
        layer_decay={"rate": 0.5},
    )
    model = TinyNet(optim=cfg, depth=3)
    t = trainer(tmp_path, max_epochs=1)
    t.fit(model, loader())
    groups = groups_of(t.optimizers[0])
    rows = read_metrics(t.logger.log_dir)
    num_layers = groups.num_layers
    assert num_layers == 5  # embed, 3 blocks, norm+head
    layer_of = {}
    for info in groups.params:
        layer_of.setdefault(info.group, set()).add(info.layer_id)
    for group in t.optimizers[0].param_groups:
        (layer,) = layer_of[group["name"]]
        logged = series(rows, f"lr-AdamW/{group['name']}")
        expected = 1e-3 * 0.5 ** (num_layers - 1 - layer)
        assert logged and all(lr == pytest.approx(expected, rel=1e-12) for lr in logged.values())
        wd = set(series(rows, f"lr-AdamW/{group['name']}-weight_decay").values())
        assert wd == ({0.0} if "no_decay" in group["name"] else {0.05})


def test_run_length_follows_accumulation_and_limits(tmp_path):
    cfg = OptimConfig(**poly_warmup_config())
    t = trainer(tmp_path, max_epochs=3, accumulate_grad_batches=2, limit_train_batches=6)
    model = TinyNet(optim=cfg)
    t.fit(model, loader())
    sched = t.lr_scheduler_configs[0].scheduler
    assert isinstance(sched, ScheduleLR)
    assert sched.fingerprint["total_steps"] == t.estimated_stepping_batches == 9
    # logged at every micro-batch's start, as LearningRateMonitor: twice per optimizer step
    history = list(lr_logger(t).history["lr-SGD/default"])
    assert [s for s, _ in history] == [s for s in range(9) for _ in range(2)]
    assert all(history[2 * s] == history[2 * s + 1] for s in range(9))
    assert t.global_step == 9


def test_max_steps_sets_the_run_length(tmp_path):
    t = trainer(tmp_path, max_epochs=-1, max_steps=11)
    t.fit(TinyNet(optim=OptimConfig(**poly_warmup_config())), loader())
    assert t.lr_scheduler_configs[0].scheduler.fingerprint["total_steps"] == 11


def test_epoch_interval_uses_max_epochs(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 1.0}},
        schedule={"class_path": "Step", "init_args": {"step_size": 1, "gamma": 0.5}},
        interval="epoch",
        no_decay=[],
    )
    t = trainer(tmp_path, max_epochs=3)
    t.fit(TinyNet(optim=cfg), loader())
    history = lr_logger(t).history["lr-SGD/default"]
    # an epoch scheduler's lr is logged at each epoch's start (LearningRateMonitor's default)
    assert [(s, lr) for s, lr in history] == [(0, 1.0), (8, 0.5), (16, 0.25)]


class Endless(IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(4, generator=g)
            yield x, (x[0] > 0).long()


@pytest.mark.parametrize(
    "trainer_kwargs, data",
    [
        (dict(max_epochs=-1, max_steps=-1, limit_train_batches=2), loader()),
        (dict(max_epochs=1), DataLoader(Endless(), batch_size=4)),
    ],
    ids=["endless-epochs", "iterable-dataset"],
)
def test_unknown_run_length_is_a_config_error(tmp_path, trainer_kwargs, data):
    t = trainer(tmp_path, **trainer_kwargs)
    with pytest.raises(ConfigError, match=r"trainer.max_steps: Poly needs the length of the run"):
        t.fit(TinyNet(optim=OptimConfig(**poly_warmup_config())), data)


class StopAfter(Callback):
    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer, *args):
        trainer.should_stop = trainer.global_step >= self.steps


def test_schedule_without_total_runs_on_endless_data(tmp_path):
    cfg = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 1.0}},
        schedule={"class_path": "Exponential", "init_args": {"gamma": 0.5}},
    )
    t = trainer(tmp_path, max_epochs=1, callbacks=[LRLogger(), StopAfter(5)])
    t.fit(TinyNet(optim=cfg), DataLoader(Endless(), batch_size=4))
    assert list(lr_logger(t).history["lr-SGD/default"]) == [(s, 0.5**s) for s in range(5)]


@pytest.mark.parametrize(
    "spec, arg, expected",
    [
        ({"class_path": "torch.optim.lr_scheduler.OneCycleLR"}, "total_steps", 16),
        ({"class_path": "CosineAnnealingLR"}, "T_max", 16),
        (
            {"class_path": "torch.optim.lr_scheduler.PolynomialLR", "init_args": {"power": 2.0}},
            "total_iters",
            16,
        ),
    ],
)
def test_torch_scheduler_gets_its_total_filled(tmp_path, spec, arg, expected):
    cfg = OptimConfig(optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}}, schedule=spec)
    t = trainer(tmp_path)
    t.fit(TinyNet(optim=cfg), loader())
    sched = t.lr_scheduler_configs[0].scheduler
    value = sched.total_steps if arg == "total_steps" else getattr(sched, arg)
    assert value == expected
    assert len(lr_logger(t).history["lr-SGD/default"]) == 16


def test_cli_section_configures_a_model_without_the_mixin(tmp_path):
    model = PlainNet()
    with pytest.warns(UserWarning, match="configure_optimizers is replaced by the optim: section"):
        attach_config(model, OptimConfig(**poly_warmup_config(no_decay=[])))
    t = trainer(tmp_path)
    t.fit(model, loader())
    history = dict(lr_logger(t).history["lr-SGD/default"])
    assert history[5] == pytest.approx(0.1 * (1 - 2 / 13) ** 2, rel=1e-12)


def test_cli_section_wins_over_the_models_own_config(tmp_path):
    model = TinyNet(optim=OptimConfig(optimizer="Adam"))
    with pytest.warns(UserWarning, match="replaces TinyNet's own optim"):
        attach_config(model, OptimConfig(optimizer="SGD"))
    t = trainer(tmp_path, max_epochs=1)
    t.fit(model, loader())
    assert type(t.optimizers[0]) is torch.optim.SGD


def test_mixin_config_survives_load_from_checkpoint(tmp_path):
    cfg = OptimConfig(**poly_warmup_config())
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    t.fit(TinyNet(optim=cfg), loader())
    ckpt = next(Path(t.logger.log_dir).rglob("*.ckpt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = TinyNet.load_from_checkpoint(ckpt)
    assert restored.optim == cfg


def test_mixin_without_config_names_what_to_set(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(ConfigError, match="TinyNet uses OptimMixin but has no optim config"):
        t.fit(TinyNet(), loader())


class Crash(RuntimeError):
    pass


class StopAt(Callback):
    """Simulates a crash: raise once ``global_step`` reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Crash(f"simulated crash at step {self.step}")


def test_resume_mid_epoch_continues_the_exact_lr_sequence(tmp_path):
    cfg = poly_warmup_config()

    def run(root, ckpt_path=None, stop=None):
        ckpt = ModelCheckpoint(dirpath=root / "ckpt", every_n_train_steps=5, save_top_k=-1)
        callbacks = [LRLogger(), ckpt] + ([StopAt(stop)] if stop else [])
        t = trainer(root, max_epochs=3, enable_checkpointing=True, callbacks=callbacks)
        pl.seed_everything(0)
        t.fit(TinyNet(optim=OptimConfig(**cfg)), loader(), ckpt_path=ckpt_path)
        return dict(lr_logger(t).history["lr-SGD/default"]), t

    full, _ = run(tmp_path / "a")
    with pytest.raises(Crash):
        run(tmp_path / "b", stop=13)  # crashes in epoch 1, after the step-10 checkpoint
    ckpt = tmp_path / "b" / "ckpt" / "epoch=1-step=10.ckpt"
    resumed, t = run(tmp_path / "b2", ckpt_path=ckpt)
    assert sorted(resumed) == list(range(10, 24))
    for step, lr in resumed.items():
        assert lr == full[step], step  # bit-identical, not approximately
    assert t.global_step == 24


def test_resume_with_another_run_length_is_refused(tmp_path):
    cfg = OptimConfig(**poly_warmup_config())
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[ckpt])
    t.fit(TinyNet(optim=cfg), loader())
    ckpt2 = ModelCheckpoint(dirpath=tmp_path / "ckpt2", every_n_train_steps=4, save_top_k=-1)
    t2 = trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[ckpt2])
    with pytest.raises(ConfigError, match=r"run length 8 but this run has 24"):
        t2.fit(TinyNet(optim=cfg), loader(), ckpt_path=tmp_path / "ckpt" / "epoch=0-step=4.ckpt")


def _config_with_every_value_type() -> OptimConfig:
    return OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}},
        warmup={"steps": 3},
        layer_decay={"rate": 0.9},
        lr_scaling={"reference_batch": 64},
        groups=[{"params": ["head.*"], "unfreeze_at": {"step": 1}}],
    )


def test_checkpoints_naming_the_config_values_at_their_former_module_still_load(monkeypatch):
    # Warmup, Spec, ... moved from core/config.py to core/config_values.py; checkpoints of
    # earlier versions name them lit_optim.core.config.<Name>, and Lightning loads them
    # with weights_only=True.
    import lit_optim.lightning.mixin  # noqa: F401  (it registers the safe globals)

    cfg = _config_with_every_value_type()
    for cls in (LayerDecay, LRScaling, Spec, Unfreeze, Warmup):
        monkeypatch.setattr(cls, "__module__", "lit_optim.core.config")
    saved = io.BytesIO()
    torch.save({"optim": cfg}, saved)
    monkeypatch.undo()
    assert b"lit_optim.core.config\nWarmup" in saved.getvalue()
    saved.seek(0)
    assert torch.load(saved, weights_only=True)["optim"] == cfg


def test_checkpoints_name_the_config_values_where_they_live():
    import lit_optim.lightning.mixin  # noqa: F401

    cfg = _config_with_every_value_type()
    saved = io.BytesIO()
    torch.save({"optim": cfg}, saved)
    assert b"lit_optim.core.config_values\nWarmup" in saved.getvalue()
    saved.seek(0)
    assert torch.load(saved, weights_only=True)["optim"] == cfg
