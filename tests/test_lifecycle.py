"""lit_optim inside Lightning's lifecycle: one pure build, run where Lightning runs it.

Layers made in ``configure_model`` (with ``torch.compile``), FSDP2 through the CLI,
freeze-all fine-tuning, ``load_from_checkpoint`` of a mixin model, and run lengths that
cannot be known.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from conftest import ROOT, TinyNet, loader, read_metrics, run_main
from lifecycle_models import MixinNet, Regression
from lightning.pytorch.callbacks import BackboneFinetuning, BaseFinetuning, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from lit_optim import ConfigError, LRLogger, OptimConfig, Warmup
from lit_optim.core.build import build
from lit_optim.core.plan import RunPlan, TrainLoop
from lit_optim.lightning import lifecycle
from lit_optim.tools.main import main

TESTS = ROOT / "tests"
OPTIM = {
    "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9}},
    "groups": [{"name": "head", "params": ["head.*"], "lr_scale": 10}],
    "layer_decay": {"rate": 0.5},
    "schedule": "Cosine",
    "warmup": {"steps": 3},
}


def env() -> dict[str, str]:
    path = os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": path}


def cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lit-optim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lit_optim"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env()
    )


def write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_config(model: dict, root: Path, **trainer: object) -> dict:
    return {
        "seed_everything": 0,
        "model": model,
        "data": {"class_path": "lifecycle_models.Regression"},
        "optim": OPTIM,
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(root / "runs"), "name": "run"},
            },
            "callbacks": [{"class_path": "lit_optim.LRLogger"}],
            **trainer,
        },
    }


def quiet_trainer(tmp_path: Path, **kwargs: object) -> pl.Trainer:
    """A Trainer that writes nothing (no logger, no checkpoints, no progress output)."""
    defaults = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
    }
    return pl.Trainer(**{**defaults, **kwargs})


def lr_rows(log_dir: Path) -> dict[str, dict[int, float]]:
    rows = read_metrics(log_dir)
    keys = [k for k in rows[0] if k.startswith("lr-")]
    return {k: {int(r["step"]): float(r[k]) for r in rows if r[k] != ""} for k in keys}


def expected_lr(step: int, scale: float, total: int = 32) -> float:
    """SGD lr 0.1 x scale: 3 linear warmup steps from 0, then cosine to 0 over the rest."""
    if step < 3:
        return 0.1 * scale * step / 3
    return 0.1 * scale * 0.5 * (1 + math.cos(math.pi * (step - 3) / (total - 3)))


# --------------------------------------------------------------------------- pure build


def test_build_is_pure_two_builds_with_different_frozen_parts() -> None:
    model = TinyNet()
    plan = RunPlan.of(OptimConfig(), TrainLoop(batches_per_epoch=4, max_epochs=1))
    a = OptimConfig(groups=[{"name": "f", "params": ["embed.*", "blocks.*"], "frozen": True}])
    b = OptimConfig(groups=[{"name": "f", "params": ["head.*"], "frozen": True}])
    [built_a] = build(model, a, lambda _: plan)
    [built_b] = build(model, b, lambda _: plan)
    assert all(p.requires_grad for p in model.parameters())  # neither changed the model
    head = {id(model.head.weight), id(model.head.bias)}
    assert {id(p) for p in built_b.freeze} == head
    assert len(built_a.freeze) == 2 + 2 * 3
    trained_b = {id(p) for g in built_b.optimizer.param_groups for p in g["params"]}
    assert trained_b.isdisjoint(head) and len(trained_b) == len(list(model.parameters())) - 2


def test_fit_builds_once_and_only_fit_freezes(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    calls = []
    real = lifecycle.build

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "build", counting)
    cfg = OptimConfig(groups=[{"name": "f", "params": ["embed.*"], "frozen": True}])
    model = TinyNet(optim=cfg)
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(model, loader())
    assert calls == [model]
    assert not model.embed.weight.requires_grad and model.head.weight.requires_grad


# --------------------------------------------------------------------------- configure_model


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "torch.compile"])
def test_configure_model_model_trains_through_cli_and_tools_see_it(tmp_path, compiled) -> None:
    model = {"class_path": "lifecycle_models.LateNet", "init_args": {"compile": compiled}}
    config = write(tmp_path / "late.yaml", run_config(model, tmp_path))
    done = cli("fit", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lrs = lr_rows(tmp_path / "runs" / "run" / "version_0")
    # ids: embed 0, blocks 1..3, head 4 (5 layers): scale 0.5 ** (4 - id); head x10
    scales = {"layer0": 0.5**4, "layer1": 0.5**3, "layer2": 0.5**2, "layer3": 0.5}
    scales["head/layer4"] = 10.0
    assert len(lrs) == len(scales), sorted(lrs)
    for name, scale in scales.items():
        values = next(v for k, v in lrs.items() if k.endswith(f"/{name}"))
        assert sorted(values) == list(range(32)), name
        for step, lr in values.items():
            assert lr == pytest.approx(expected_lr(step, scale), rel=1e-12, abs=1e-15), name
    if compiled:
        return
    # The tools build on a meta-device copy made by configure_model: the same groups.
    with contextlib.chdir(tmp_path):
        main(["groups", "--config", str(config)])
        main(["plot", "--config", str(config), "-o", "lr.png"])
        main(["lr-find", "--config", str(config), "--steps", "12", "-o", "find.png"])
        a = write(
            tmp_path / "a.yaml",
            {
                "optim": {
                    "groups": [{"name": "f", "params": ["embed.*", "blocks.*"], "frozen": True}]
                }
            },
        )
        b = write(
            tmp_path / "b.yaml",
            {"optim": {"groups": [{"name": "f", "params": ["head.*"], "frozen": True}]}},
        )
        main(
            [
                "compare",
                "--config",
                str(config),
                "--optim",
                str(a),
                "--optim",
                str(b),
                "--metric",
                "val_loss",
                "--trainer.max_epochs",
                "1",
                "-o",
                "cmp.png",
            ]
        )
    with open(tmp_path / "lr.csv") as f:
        plotted = list(csv.DictReader(f))
    assert len(plotted) == 32
    assert (tmp_path / "find.png").is_file() and (tmp_path / "cmp.md").is_file()


# --------------------------------------------------------------------------- FSDP2


def _fsdp_config(root: Path, **optim: object) -> Path:
    cfg = run_config({"class_path": "lifecycle_models.ShardedNet"}, root, devices=2)
    cfg["optim"] = {**OPTIM, **optim}
    cfg["trainer"]["strategy"] = {
        "class_path": "lightning.pytorch.strategies.ModelParallelStrategy",
        "init_args": {"data_parallel_size": 2, "tensor_parallel_size": 1},
    }
    cfg["trainer"]["callbacks"] += [
        {"class_path": "rank_dump.RankDump"},
        {"class_path": "kill_resume_harness.KillAtStep"},
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"every_n_train_steps": 4, "save_last": True, "save_top_k": -1},
        },
    ]
    cfg["trainer"]["limit_val_batches"] = 0
    return write(root / "fsdp.yaml", cfg)


def _start(args: list[str], cwd: Path, **extra: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("lit-optim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lit_optim"]
    return subprocess.Popen(
        [*cmd, *args],
        cwd=cwd,
        env={**env(), **extra},
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a rank left behind by the kill
    return proc.returncode, err


@pytest.mark.slow
def test_fsdp2_through_cli_trains_resumes_after_kill_and_refuses_a_bad_glob(tmp_path) -> None:
    ref_dir, kill_dir, bad_dir = (tmp_path / n for n in ("ref", "killed", "bad"))
    for d in (ref_dir, kill_dir, bad_dir):
        d.mkdir()
        (d / "dump").mkdir()
    ref = _start(
        ["fit", "--config", str(_fsdp_config(ref_dir))],
        ref_dir,
        LIT_OPTIM_RANK_DUMP=str(ref_dir / "dump"),
    )
    killed = _start(
        ["fit", "--config", str(_fsdp_config(kill_dir))],
        kill_dir,
        LIT_OPTIM_RANK_DUMP=str(kill_dir / "dump"),
        LIT_OPTIM_KILL_AT_STEP="10",
    )
    bad_groups = [{"name": "head", "params": ["haed.*"], "lr_scale": 10}]
    bad = _start(
        ["fit", "--config", str(_fsdp_config(bad_dir, groups=bad_groups))],
        bad_dir,
        LIT_OPTIM_RANK_DUMP=str(bad_dir / "dump"),
    )

    code, err = _finish(bad)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err[-3000:]
    assert len(lines) == 1, err[-3000:]  # rank 0 says it; rank 1 exits with it, silently
    assert lines[0].startswith("error: optim.groups[0].params: 'haed.*' matched no parameter")
    assert "Traceback" not in err
    assert not list(bad_dir.rglob("*.ckpt")), "a refused run wrote a checkpoint"

    code, err = _finish(ref)
    assert code == 0, err[-3000:]
    code, err = _finish(killed)
    assert code == -signal.SIGKILL, err[-3000:]

    # Rank 0 and rank 1 used the same lrs at every step; only rank 0 logged them.
    r0, r1 = ((ref_dir / "dump" / f"rank{r}.json").read_text() for r in (0, 1))
    assert r0 == r1
    ref_lr = lr_rows(ref_dir / "runs" / "run" / "version_0")
    assert {k.split("/", 1)[-1] for k in ref_lr} == {
        "layer0",
        "layer1",
        "layer2",
        "layer3",
        "head/layer4",
    }
    for values in ref_lr.values():
        assert sorted(values) == list(range(16))  # 64 samples per rank / 8 = 8 steps x 2
    head = next(v for k, v in ref_lr.items() if k.endswith("/head/layer4"))
    for step, lr in head.items():
        assert lr == pytest.approx(expected_lr(step, 10.0, total=16), rel=1e-12, abs=1e-15)

    # `--ckpt_path last`: the distributed checkpoint directory of the killed run.
    last = kill_dir / "runs" / "run" / "version_0" / "checkpoints" / "last.ckpt"
    assert last.is_dir(), sorted(kill_dir.rglob("*"))
    resumed = _start(
        ["fit", "--config", str(_fsdp_config(kill_dir)), "--ckpt_path", "last"],
        kill_dir,
        LIT_OPTIM_RANK_DUMP=str(kill_dir / "dump"),
    )
    code, err = _finish(resumed)
    assert code == 0, err[-3000:]
    after = lr_rows(kill_dir / "runs" / "run" / "version_0")
    for key, values in ref_lr.items():
        assert {s for s in after[key] if s >= 8} == set(range(8, 16)), key
        assert all(after[key][s] == values[s] for s in range(8, 16)), key


# --------------------------------------------------------------------------- freeze-all


class FreezeAllThenUnfreeze(BaseFinetuning):
    """Freeze the whole model before training; the head trains from epoch 0, all from 1."""

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.freeze(pl_module)

    def finetune_function(self, pl_module: pl.LightningModule, epoch: int, optimizer) -> None:
        self.make_trainable(pl_module.head if epoch == 0 else pl_module)


class Snapshots(pl.Callback):
    def __init__(self) -> None:
        self.weights: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.weights.append(
            tuple(m.weight.detach().clone() for m in (pl_module.embed, pl_module.head))
        )


def test_freeze_all_then_unfreeze_with_base_finetuning_trains(tmp_path) -> None:
    model = TinyNet(optim=OptimConfig(optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}}))
    embed, head = model.embed.weight.detach().clone(), model.head.weight.detach().clone()
    snaps = Snapshots()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[FreezeAllThenUnfreeze(), snaps])
    trainer.fit(model, loader())
    params = [p for g in trainer.optimizers[0].param_groups for p in g["params"]]
    assert len(params) == len(list(model.parameters()))  # the optimizer started over them all
    (embed0, head0), (embed1, _) = snaps.weights
    assert torch.equal(embed0, embed) and not torch.equal(head0, head)  # epoch 0: head only
    assert not torch.equal(embed1, embed)  # epoch 1: everything


class UnfreezeAtStart(BackboneFinetuning):
    """Lightning's TestBackboneFinetuningWarningCallback: the backbone joins at epoch 0."""

    def finetune_function(self, pl_module: pl.LightningModule, epoch: int, optimizer) -> None:
        if epoch == 0:
            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, 0.1)


def test_backbone_finetuning_on_an_all_backbone_model_starts_like_torch(tmp_path) -> None:
    """Lightning's own test_finetuning_callback_warning, with OptimMixin and lit_optim."""

    class Backbone(TinyNet):
        def __init__(self) -> None:
            super().__init__(optim=OptimConfig(optimizer="SGD"))
            self.backbone = nn.Sequential(self.embed, *self.blocks, self.norm, self.head)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.backbone(x)

    trainer = quiet_trainer(
        tmp_path,
        max_epochs=2,
        limit_train_batches=1,
        callbacks=[UnfreezeAtStart(unfreeze_backbone_at_epoch=3)],
    )
    with pytest.warns(UserWarning, match="Did you init your optimizer in"):
        trainer.fit(Backbone(), loader())
    assert trainer.global_step == 2


def test_everything_frozen_and_nothing_unfreezes_names_the_cause(tmp_path) -> None:
    model = TinyNet(optim=OptimConfig())
    model.requires_grad_(False)
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(ConfigError, match=r"^model: all 12 parameters have requires_grad=False"):
        trainer.fit(model, loader())


# --------------------------------------------------------------------------- run lengths


@pytest.mark.parametrize(
    ("optim", "loop", "key"),
    [
        ({"warmup": Warmup(epochs=2)}, TrainLoop(None, max_steps=10), "optim.warmup.epochs"),
        ({"warmup": Warmup(fraction=0.1)}, TrainLoop(None), "optim.warmup.fraction"),
        (
            {"momentum_warmup": Warmup(fraction=0.1, start_factor=0.5)},
            TrainLoop(None),
            "optim.momentum_warmup.fraction",
        ),
        (
            {"weight_decay_warmup": Warmup(epochs=1, start_factor=0.5)},
            TrainLoop(None, max_steps=100),
            "optim.weight_decay_warmup.epochs",
        ),
    ],
)
def test_a_length_that_cannot_be_known_is_one_error(optim, loop, key) -> None:
    cfg = OptimConfig(optimizer={"class_path": "SGD", "init_args": {"momentum": 0.9}}, **optim)
    with pytest.raises(ConfigError) as err:
        RunPlan.of(cfg, loop)
    assert err.value.key == key


class Endless(IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        while True:
            yield torch.randn(4, generator=g), torch.randint(0, 2, (), generator=g)


def test_epoch_warmup_on_data_of_unknown_length_is_refused_in_fit(tmp_path) -> None:
    model = TinyNet(optim=OptimConfig(warmup=Warmup(epochs=2)))
    trainer = quiet_trainer(tmp_path, max_steps=10)
    with pytest.raises(ConfigError, match=r"^optim\.warmup\.epochs: epochs need the length"):
        trainer.fit(model, DataLoader(Endless(), batch_size=4))


# --------------------------------------------------------------------------- reload


RELOAD = textwrap.dedent(
    """
    import sys
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger
    from lifecycle_models import MixinNet, Regression
    from lit_optim import LRLogger

    ckpt, out = sys.argv[1], sys.argv[2]
    assert "lit_optim.lightning.cli" not in sys.modules
    model = MixinNet.load_from_checkpoint(ckpt)
    optim = model.optim
    print(type(optim).__name__, optim.optimizer["class_path"], optim.warmup.steps)
    trainer = pl.Trainer(max_epochs=2, logger=CSVLogger(out, name="resumed"),
                         callbacks=[LRLogger()], enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0,
                         log_every_n_steps=1, enable_checkpointing=False)
    trainer.fit(model, Regression(), ckpt_path=ckpt)
    """
)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_cli_trained_mixin_model_reloads_in_a_fresh_process_and_resumes_exactly(tmp_path) -> None:
    # Trained through the CLI's entry point in this process; reloaded in a fresh one, which
    # has imported nothing of the run (jsonargparse re-parses the hparams Lightning saved).
    cfg = run_config({"class_path": "lifecycle_models.MixinNet"}, tmp_path)
    cfg["model"]["init_args"] = {"optim": cfg.pop("optim")}
    cfg["trainer"]["callbacks"].append(
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"save_top_k": -1, "every_n_epochs": 1},
        }
    )
    config = write(tmp_path / "mixin.yaml", cfg)
    run_main(tmp_path, "fit", "--config", str(config))
    run = tmp_path / "runs" / "run" / "version_0"
    ckpt = next((run / "checkpoints").glob("epoch=0-*.ckpt"))
    script = tmp_path / "reload.py"
    script.write_text(RELOAD)
    done = subprocess.run(
        [sys.executable, str(script), str(ckpt), str(tmp_path / "re")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[:3] == ["OptimConfig", "torch.optim.SGD", "3"]
    ref, resumed = lr_rows(run), lr_rows(tmp_path / "re" / "resumed" / "version_0")
    assert resumed.keys() == ref.keys()
    for key, values in resumed.items():
        assert sorted(values) == list(range(16, 32)), key
        assert all(values[s] == ref[key][s] for s in values), key


def test_python_mixin_model_reloads_with_its_optim_and_resumes_exactly(tmp_path) -> None:
    cfg = OptimConfig.from_dict(OPTIM)

    def fit(model: MixinNet, name: str, ckpt: str | None = None) -> pl.Trainer:
        trainer = pl.Trainer(
            max_epochs=2,
            logger=CSVLogger(tmp_path, name=name),
            callbacks=[LRLogger(), ModelCheckpoint(save_top_k=-1)],
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
        )
        trainer.fit(model, Regression(), ckpt_path=ckpt)
        return trainer

    pl.seed_everything(0)
    ref = fit(MixinNet(optim=cfg), "ref")
    ckpt = next(Path(ref.log_dir, "checkpoints").glob("epoch=0-*.ckpt"))
    model = MixinNet.load_from_checkpoint(ckpt)
    assert model.optim == cfg
    again = fit(model, "resumed", str(ckpt))
    a, b = lr_rows(Path(ref.log_dir)), lr_rows(Path(again.log_dir))
    assert b.keys() == a.keys()
    for key, values in b.items():
        assert sorted(values) == list(range(16, 32)) and all(values[s] == a[key][s] for s in values)
