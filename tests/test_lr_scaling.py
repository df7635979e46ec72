"""``optim.lr_scaling``: every lr times effective batch / reference, on 1 and 2 processes."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import CONFIGS, TinyNet, loader, run_cli, run_main
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from lit_optim import ConfigError, LRLogger, OptimConfig
from lit_optim.core.lr_scaling import BatchScale
from lit_optim.tools.main import main


@given(
    rule=st.sampled_from(["linear", "sqrt"]),
    reference=st.integers(1, 4096),
    batch=st.integers(1, 512),
    accumulate=st.integers(1, 16),
    world=st.integers(1, 64),
)
def test_factor_is_effective_over_reference(rule, reference, batch, accumulate, world):
    s = BatchScale(rule, reference, batch, accumulate, world)
    ratio = batch * accumulate * world / reference
    assert s.effective_batch == batch * accumulate * world
    assert s.factor == pytest.approx(ratio if rule == "linear" else math.sqrt(ratio), rel=1e-12)


def config(**scaling) -> OptimConfig:
    return OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}},
        no_decay=[],
        groups=[{"name": "head", "params": ["head.*"], "lr_scale": 10.0}],
        lr_scaling={"rule": "linear", "reference_batch": 32, **scaling},
    )


def fit(tmp_path, cfg, data, **kwargs) -> dict[str, dict[int, float]]:
    t = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[LRLogger()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        max_epochs=1,
        **kwargs,
    )
    t.fit(TinyNet(optim=cfg), data)
    logger = next(c for c in t.callbacks if isinstance(c, LRLogger))
    return {k: dict(v) for k, v in logger.history.items()}


def assert_all(values: dict[int, float], expected: float) -> None:
    assert values
    for step, value in values.items():
        assert value == pytest.approx(expected, rel=1e-12), step


@pytest.mark.parametrize(("rule", "factor"), [("linear", 0.5), ("sqrt", math.sqrt(0.5))])
def test_one_process_with_accumulation_scales_every_group(tmp_path, capsys, rule, factor):
    lrs = fit(tmp_path, config(rule=rule), loader(batch_size=8), accumulate_grad_batches=2)
    # effective batch 8 x 2 = 16 against 32
    assert_all(lrs["lr-SGD/default"], 0.1 * factor)
    assert_all(lrs["lr-SGD/head"], 1.0 * factor)
    out = capsys.readouterr().out
    assert f"lr scaling ({rule}): effective batch 16 = 8 x 2 accumulated x 1 process" in out
    assert f"reference 32 -> lr x {factor:g}" in out


def test_a_batch_size_nobody_tells_is_a_config_error_saying_where_to_set_it(tmp_path):
    x, y = torch.randn(16, 4), torch.zeros(16, dtype=torch.long)
    data = list(zip(x, y, strict=True))
    batches = BatchSampler(SequentialSampler(data), batch_size=4, drop_last=False)
    custom = DataLoader(data, batch_sampler=_NoSize(batches))
    with pytest.raises(ConfigError, match=r"^optim.lr_scaling.batch_size: lr_scaling needs"):
        fit(tmp_path, config(), custom)
    lrs = fit(tmp_path, config(batch_size=64), custom)  # told in the config: 64 / 32
    assert_all(lrs["lr-SGD/default"], 0.2)


class _NoSize:
    """A batch sampler without ``batch_size`` (bucketing samplers look like this)."""

    def __init__(self, inner: BatchSampler) -> None:
        self.inner = inner

    def __iter__(self):
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)


def test_groups_tool_shows_the_factor_and_the_scaled_lrs(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    scaling = json.dumps({"rule": "linear", "reference_batch": 256})
    main(["groups", "--config", str(CONFIGS / "digits_poly.yaml"),
          "--optim.lr_scaling", scaling, "--trainer.accumulate_grad_batches", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert "effective batch 128 = 64 x 2 accumulated x 1 process, reference 256 -> lr x 0.5" in out
    head = next(line for line in out.splitlines() if line.strip().startswith("head"))
    assert " 0.1 " in f"{head} "  # 0.02 x 10 (head) x 0.5


# rank_dump.RankDump from tests/, lit_optim from wherever this test imports it
PYTHONPATH = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])


def _scaled_fit(devices: int) -> list[str]:
    """``lit-optim fit`` of the demo, 4 steps, linear lr scaling, on ``devices`` processes."""
    return [
        "fit",
        "--config",
        str(CONFIGS / "digits_poly.yaml"),
        "--trainer.accelerator=cpu",
        f"--trainer.devices={devices}",
        *(["--trainer.strategy=ddp"] if devices == 2 else []),
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=8",
        "--trainer.limit_val_batches=1",
        "--trainer.accumulate_grad_batches=2",
        "--optim.warmup=null",
        '--optim.lr_scaling={"rule": "linear", "reference_batch": 256}',
        "--trainer.callbacks+=rank_dump.RankDump",
    ]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_ddp_on_two_cpu_processes_doubles_the_lrs_of_one(tmp_path, monkeypatch, capsys):
    # The DDP run is the console script (2 processes); the 1-process run is the same CLI
    # entry point in this process (no second interpreter start-up).
    one, two = tmp_path / "d1", tmp_path / "d2"
    one.mkdir()
    two.mkdir()
    monkeypatch.setenv("LIT_OPTIM_RANK_DUMP", str(one))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    run_main(one, *_scaled_fit(1))
    assert "effective batch 128 = 64 x 2 accumulated x 1 process" in capsys.readouterr().out
    proc = run_cli(
        *_scaled_fit(2),
        cwd=two,
        timeout=600,
        env={"LIT_OPTIM_RANK_DUMP": str(two), "PYTHONPATH": PYTHONPATH},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "effective batch 256 = 64 x 2 accumulated x 2 process" in proc.stdout
    lrs = {d: json.loads((root / "rank0.json").read_text()) for d, root in ((1, one), (2, two))}
    assert json.loads((two / "rank1.json").read_text()) == lrs[2]
    assert len(lrs[1]) == len(lrs[2]) == 4
    for one_lrs, two_lrs in zip(lrs[1], lrs[2], strict=True):
        assert two_lrs == pytest.approx([2 * v for v in one_lrs], rel=1e-12)
    assert lrs[1][0][0] == pytest.approx(0.02 * 0.5, rel=1e-12)  # default 0.02 x 128 / 256
