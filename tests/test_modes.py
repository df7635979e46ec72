"""Schedule-free optimizers: train mode for training steps, eval mode to evaluate and save."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from conftest import CONFIGS, TinyNet, loader, run_cli
from lightning.pytorch.callbacks import ModelCheckpoint

from lit_optim import OptimConfig, OptimizerModes
from lit_optim.lightning.modes import has_modes

schedulefree = pytest.importorskip("schedulefree")

SF = {"class_path": "schedulefree.AdamWScheduleFree", "init_args": {"lr": 1e-2}}


class Probe(TinyNet):
    """Records the optimizer's mode in every step and at every checkpoint save."""

    def __init__(self, optim=None) -> None:
        super().__init__(optim=optim)
        self.seen: list[tuple[str, int, bool]] = []

    def _mode(self) -> bool:
        opt = self.trainer.optimizers[0]
        inner = opt.optimizers if hasattr(opt, "optimizers") else [opt]
        modes = {g["train_mode"] for o in inner if has_modes(o) for g in o.param_groups}
        assert len(modes) == 1
        return modes.pop()

    def training_step(self, batch, batch_idx):
        self.seen.append(("train", self.trainer.global_step, self._mode()))
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.seen.append(("val", self.trainer.global_step, self._mode()))
        return super().validation_step(batch, batch_idx)

    def on_save_checkpoint(self, checkpoint):
        self.seen.append(("save", self.trainer.global_step, self._mode()))


def fit_probe(tmp_path: Path, optim: dict) -> tuple[Probe, pl.Trainer, ModelCheckpoint]:
    model = Probe(optim=OptimConfig(summary=False, **optim))
    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1, save_last=True)
    trainer = pl.Trainer(
        max_epochs=2,
        limit_val_batches=2,
        val_check_interval=4,
        logger=False,
        callbacks=[ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader(), loader(32))
    return model, trainer, ckpt


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_probe_sees_train_mode_in_every_step_and_eval_in_validation_and_saves(tmp_path) -> None:
    model, trainer, _ = fit_probe(tmp_path, {"optimizer": SF})
    assert any(isinstance(c, OptimizerModes) for c in trainer.callbacks)  # added by the mixin
    kinds = {k: [m for kind, _, m in model.seen if kind == k] for k in ("train", "val", "save")}
    assert len(kinds["train"]) == 16 and all(kinds["train"])
    assert len(kinds["val"]) >= 8 and not any(kinds["val"])  # sanity check + 4 validations
    assert len(kinds["save"]) >= 5 and not any(kinds["save"])
    # training resumed in train mode after each validation and save (no step ran in eval)
    opt = trainer.optimizers[0]
    assert opt.param_groups[0]["train_mode"] is False  # fit leaves the eval-mode weights
    # the checkpoint holds those eval-mode weights and an optimizer state saved in eval mode
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    # (equal up to float rounding: the save at the last step moved the weights to the eval
    # point and back, and fit's end moved them there once more)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(last["state_dict"][name], value, rtol=0, atol=1e-6)
    assert last["optimizer_states"][0]["param_groups"][0]["train_mode"] is False


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_schedule_free_inside_a_composite_switches_modes_too(tmp_path) -> None:
    rule = {"name": "head", "params": ["head.*"], "optimizer": SF}
    model, trainer, _ = fit_probe(tmp_path, {"optimizer": "SGD", "groups": [rule]})
    assert type(trainer.optimizers[0]).__name__ == "CompositeOptimizer"
    assert all(m for kind, _, m in model.seen if kind == "train")
    assert not any(m for kind, _, m in model.seen if kind != "train")


@pytest.mark.slow
def test_cli_trains_the_schedulefree_config(tmp_path) -> None:
    cfg = yaml.safe_load((CONFIGS / "digits_schedulefree.yaml").read_text())
    cfg["trainer"].update(max_epochs=2, limit_train_batches=6, limit_val_batches=2)
    cfg["trainer"]["logger"]["init_args"].update(save_dir=str(tmp_path), version=0)
    path = tmp_path / "sf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_cli("fit", "--config", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = next((tmp_path / "digits_schedulefree" / "version_0" / "checkpoints").glob("*.ckpt"))
    state = torch.load(ckpt, weights_only=False)
    assert state["global_step"] == 12
    assert state["optimizer_states"][0]["param_groups"][0]["train_mode"] is False


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_compare_runs_a_schedulefree_section(tmp_path, monkeypatch) -> None:
    from lit_optim.tools.compare import compare_command

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sf.yaml").write_text(yaml.safe_dump({"optim": {"optimizer": SF}}))
    base = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=4"]
    base += ["--trainer.limit_val_batches=1", "--trainer.accelerator=cpu"]
    base += ["--optim.warmup=null"]  # the demo's 20-step warmup outlasts this 4-step run
    (result,) = compare_command(base, optim_files=[tmp_path / "sf.yaml"], out=tmp_path / "c.png")
    assert result.optimizer == "AdamWScheduleFree" and result.steps == 4
    assert len(result.loss) == 4 and result.metric
