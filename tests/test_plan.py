"""The run plan: worked out once, equal to what Lightning does in a real fit, read by every tool."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from conftest import CONFIGS, ROOT, TinyNet, loader

from lit_optim import OptimConfig, Warmup
from lit_optim.core.plan import RunPlan, TrainLoop
from lit_optim.lightning import loop as lightning_loop
from lit_optim.lightning.loop import loop_before_fit, run_plan
from lit_optim.lightning.mixin import find_config
from lit_optim.tools.main import main

QUIET = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
    "accelerator": "cpu",
}


class PlanRecorder(pl.Callback):
    """The plan ``configure_optimizers`` built, and the scheduler step at every optimizer step."""

    def __init__(self) -> None:
        self.plan: RunPlan | None = None
        self.ks: list[int] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.plan = run_plan(trainer, find_config(pl_module))
        self.estimated = trainer.estimated_stepping_batches

    def on_before_optimizer_step(self, trainer: pl.Trainer, *args: Any) -> None:
        self.ks.append(trainer.lr_scheduler_configs[0].scheduler.last_epoch)


@pytest.mark.parametrize(
    ("trainer_kwargs", "optim"),
    [
        ({"max_epochs": 2, "accumulate_grad_batches": 3}, {}),
        ({"max_epochs": 2, "limit_train_batches": 5}, {"frequency": 2}),
        ({"max_epochs": 3, "max_steps": 11}, {"warmup": Warmup(epochs=1)}),
        ({"max_epochs": 2, "limit_train_batches": 0.5, "accumulate_grad_batches": 3}, {}),
        ({"max_epochs": 5, "limit_train_batches": 3}, {"interval": "epoch", "frequency": 2}),
        ({"max_epochs": -1, "max_steps": 13}, {"warmup": Warmup(fraction=0.25)}),
    ],
)
def test_plan_in_fit_is_lightnings_run_and_the_tools_plan(trainer_kwargs, optim, tmp_path):
    config = OptimConfig(schedule="Poly", summary=False, **optim)
    recorder = PlanRecorder()
    trainer = pl.Trainer(**QUIET, **trainer_kwargs, callbacks=[recorder], default_root_dir=tmp_path)
    trainer.fit(TinyNet(config), train_dataloaders=loader(n=80, batch_size=8))
    plan = recorder.plan
    assert plan is not None
    # Lightning's own numbers: its estimate, the steps it took, the scheduler steps it made.
    assert plan.optimizer_steps == recorder.estimated == trainer.global_step
    per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    assert plan.optimizer_steps_per_epoch == per_epoch
    assert plan.scheduler_steps() == recorder.ks
    assert plan.epoch_of_steps()[-1] == trainer.current_epoch - 1
    # The plan the tools work out before fit is the very same plan.
    before = pl.Trainer(**QUIET, **trainer_kwargs, default_root_dir=tmp_path)
    assert RunPlan.of(config, loop_before_fit(before, loader(n=80, batch_size=8))) == plan


def test_warmup_and_boundaries_are_in_scheduler_steps() -> None:
    config = OptimConfig(
        schedule={
            "class_path": "Sequence",
            "init_args": {"schedules": ["Constant", "Cosine"], "boundaries": [6]},
        },
        warmup=Warmup(epochs=0.5),
        frequency=2,
    )
    plan = RunPlan.of(config, TrainLoop(batches_per_epoch=20, accumulate=1, max_epochs=3))
    assert (plan.optimizer_steps, plan.total, plan.steps_per_epoch) == (60, 30, 10)
    assert plan.warmup_steps == 5  # half an epoch of 10 scheduler steps
    assert plan.boundaries == (11,)  # the Sequence's 6 counts from the end of the warmup
    overlapping = dataclasses.replace(config, warmup=Warmup(epochs=0.5, overlap=True))
    plan = RunPlan.of(overlapping, TrainLoop(batches_per_epoch=20, accumulate=1, max_epochs=3))
    assert (plan.warmup_steps, plan.boundaries) == (5, (6,))  # timm's warmup_prefix=False


def test_endless_run_has_no_length_and_no_step_list() -> None:
    plan = RunPlan.of(OptimConfig(), TrainLoop(batches_per_epoch=None, max_epochs=-1))
    assert (plan.optimizer_steps, plan.total, plan.epochs) == (None, None, None)
    with pytest.raises(ValueError, match="run length is unknown"):
        plan.scheduler_steps()


# --------------------------------------------------------------------------- tools


@pytest.fixture
def counting_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """digits_poly with the counting data module, 2 epochs of 4 batches."""
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    cfg = yaml.safe_load((CONFIGS / "digits_poly.yaml").read_text())
    cfg["data"]["class_path"] = "counting_data.CountingDigits"
    cfg["trainer"].update(max_epochs=2, limit_train_batches=4, limit_val_batches=1)
    cfg["trainer"]["logger"] = False
    cfg["trainer"]["callbacks"] = []
    cfg["trainer"]["enable_progress_bar"] = False
    cfg["optim"].update(summary=False, warmup={"steps": 2, "start_factor": 0.1})
    path = tmp_path / "counting.yaml"
    path.write_text(yaml.safe_dump(cfg))
    from counting_data import CALLS

    CALLS.clear()
    return path


@pytest.mark.parametrize(
    "tool", [["plot", "--ascii", "--data", "lr.csv"], ["groups"]], ids=["plot", "groups"]
)
def test_a_tool_sets_the_data_module_up_once(tool, counting_config):
    from counting_data import CALLS

    main([*tool, "--config", str(counting_config)])
    assert dict(CALLS) == {"prepare_data": 1, "setup": 1, "train_dataloader": 1}


@pytest.mark.filterwarnings("ignore")
def test_compare_sizes_the_data_once_then_each_run_fits(counting_config, tmp_path):
    from counting_data import CALLS

    files = []
    for name, lr in (("a", 0.05), ("b", 0.1)):
        section = {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": lr}}}
        files += ["--optim", str(tmp_path / f"{name}.yaml")]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"optim": section}))
    main(["compare", "--config", str(counting_config), *files, "-o", "cmp.png"])
    # Once for every section's plan, then once per run by Lightning's own fit.
    assert CALLS["setup"] == 1 + 2
    assert CALLS["train_dataloader"] == 1 + 2


# --------------------------------------------------------------------------- resume


class Positions:
    """A stateful training iterable (no DataLoader): batch ``i`` is a tensor filled with ``i``."""

    def __init__(self, length: int = 10) -> None:
        self.length = length
        self.handed_out = 0
        self.start = 0

    def __iter__(self):
        start, self.start = self.start, 0
        for i in range(start, self.length):
            self.handed_out = i + 1
            yield torch.full((2, 4), float(i))

    def __len__(self) -> int:
        return self.length

    def state_dict(self) -> dict[str, int]:
        return {"handed_out": self.handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.start = state["handed_out"]


class SeenNet(TinyNet):
    """Records which batches it trained on."""

    def __init__(self, optim: OptimConfig | None = None) -> None:
        super().__init__(optim)
        self.seen: list[int] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(int(batch[0, 0]))
        return self(batch).sum()


def fit_then_resume_mid_epoch(tmp_path: Path) -> list[int]:
    """Fit an epoch with checkpoints every 3 steps, resume from step 3; what the resumed run saw."""
    config = OptimConfig(schedule="Poly", summary=False)  # Poly reads the run length
    ckpt = pl.callbacks.ModelCheckpoint(tmp_path, every_n_train_steps=3, save_top_k=-1)
    first = pl.Trainer(**{**QUIET, "enable_checkpointing": True}, max_epochs=1, callbacks=[ckpt])
    first.fit(SeenNet(config), train_dataloaders=Positions())
    (path,) = tmp_path.glob("*step=3.ckpt")
    resumed_model = SeenNet(config)
    again = pl.Trainer(**QUIET, max_epochs=1)
    again.fit(resumed_model, train_dataloaders=Positions(), ckpt_path=path)
    return resumed_model.seen


@pytest.mark.filterwarnings("ignore")
def test_stateful_loader_resumes_mid_epoch_where_the_checkpoint_left_it(tmp_path):
    assert fit_then_resume_mid_epoch(tmp_path) == [3, 4, 5, 6, 7, 8, 9]


@pytest.mark.filterwarnings("ignore")
def test_without_handing_the_data_back_lightning_drops_the_position(tmp_path, monkeypatch):
    # Lightning #20550 as it is: the loader starts over, so the resumed run trains on
    # batches 0-6 again and never on 7-9. The test above would catch a regression.
    monkeypatch.setattr(lightning_loop, "_may_resume", lambda trainer: False)
    assert fit_then_resume_mid_epoch(tmp_path) == list(range(7))
