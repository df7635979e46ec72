"""Kill and resume the two-optimizer GAN example: identical lrs, bit-identical final state.

The single-optimizer matrix lives in ``test_kill_resume.py`` (its harness is reused). Under
manual optimization with two optimizers ``global_step`` counts both optimizers' steps (2
per batch) while Lightning and LRLogger log at the batch step, so this case has its own
bookkeeping: checkpoints every batch, a kill at a random batch mid-epoch.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, record_count, run_main
from test_kill_resume import assert_same, lr_log, start_killed

pytestmark = pytest.mark.slow

BATCHES, EPOCHS = 6, 2  # batches per epoch (limit_train_batches), epochs


def write_gan_config(root: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "examples" / "gan.yaml").read_text())
    cfg["trainer"].update(
        max_epochs=EPOCHS,
        limit_train_batches=BATCHES,
        deterministic=True,
        enable_progress_bar=False,
        log_every_n_steps=1,
    )
    cfg["trainer"]["logger"]["init_args"].update(save_dir=str(root / "runs"), name="gan")
    cfg["trainer"]["callbacks"] = [
        {"class_path": "lit_optim.LRLogger", "init_args": {"momentum": True}},
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            # global_step moves by 2 per batch (two optimizer steps): a checkpoint per batch
            "init_args": {
                "every_n_train_steps": 2,
                "save_top_k": -1,
                "save_last": True,
                "filename": "{step}",
            },
        },
        {"class_path": "kill_resume_harness.KillAtStep"},
    ]
    cfg["data"] = {"class_path": "several_resume_harness.ResumableRing", "init_args": {"n": 768}}
    cfg["optim"]["summary"] = False
    path = root / "gan.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def args(config: Path, version: str, ckpt: Path | None = None) -> list[str]:
    out = ["fit", "--config", str(config), "--trainer.logger.init_args.version", version]
    return [*out, "--ckpt_path", str(ckpt)] if ckpt else out


@pytest.mark.filterwarnings("ignore")
def test_two_optimizer_gan_sigkill_mid_epoch_then_resume(tmp_path, monkeypatch) -> None:
    batch = random.Random("gan").choice([b for b in range(2, BATCHES * EPOCHS) if b % BATCHES])
    kill_at = 2 * batch  # global_step at the start of that batch
    config = write_gan_config(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    monkeypatch.syspath_prepend(str(ROOT))
    proc = start_killed(args(config, "killed"), tmp_path, kill_at, tmp_path / "killed.log")
    run_main(tmp_path, *args(config, "ref"))
    code, output = proc.finish()
    assert code == -signal.SIGKILL, output[-3000:]
    runs = tmp_path / "runs" / "gan"
    last = runs / "killed" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == kill_at
    run_main(tmp_path, *args(config, "resumed", last))
    ref, resumed = lr_log(runs / "ref"), lr_log(runs / "resumed")
    assert set(ref) == set(resumed)
    assert {"lr-generator/default", "lr-discriminator/default"} <= set(ref)
    for key, values in ref.items():
        assert sorted(values) == list(range(BATCHES * EPOCHS)), key
        assert sorted(resumed[key]) == list(range(batch, BATCHES * EPOCHS)), key
        assert all(resumed[key][s] == values[s] for s in resumed[key]), key
    total = 2 * BATCHES * EPOCHS
    a, b = (
        torch.load(next((runs / v / "checkpoints").glob(f"step={total}*.ckpt")), weights_only=False)
        for v in ("ref", "resumed")
    )
    for part in ("state_dict", "optimizer_states", "lr_schedulers", "global_step"):
        assert_same(a[part], b[part], f"gan {part} (killed at batch {batch})")
    record_count("kill/resume: cases with identical lrs and final state", 1)
