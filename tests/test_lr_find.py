"""``lit-optim lr-find``: a range test that keeps every group's ratio and touches nothing."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import CONFIGS

from lit_optim.tools.lr_find import lr_find
from lit_optim.tools.main import main
from lit_optim.tools.resolve import resolve_run

CONFIG = str(CONFIGS / "digits_layer_decay_cosine.yaml")


def test_every_group_keeps_its_configured_ratio_at_every_sweep_step():
    run = resolve_run(["--config", CONFIG])
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    result = lr_find(run, start=1e-2, end=10.0, steps=12)
    base = result.base_lr
    assert base == 3e-3
    groups = run.preview.optimizer.param_groups  # initial_lr: before the warmup factor
    configured = {g["name"]: g["initial_lr"] / base for g in groups}
    assert len(configured) == len(result.group_lrs) == 8  # layer decay x no-decay groups
    assert len(result.factors) == 12
    for k, factor in enumerate(result.factors):
        assert factor == pytest.approx(1e-2 * 1000 ** (k / 11), rel=1e-12)
        for name, lrs in result.group_lrs.items():
            assert lrs[k] / (base * factor) == pytest.approx(configured[name], rel=1e-12), name
    assert len({round(r, 9) for r in configured.values()}) > 2  # real ratios, not all 1
    after = run.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the run's model untouched


def test_lr_find_on_the_demo_suggests_near_the_configured_lr_and_writes_only_the_png(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    main(["lr-find", "--config", CONFIG, "-o", "lr_find.png"])
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr_find.png"]  # no logs, no ckpts
    assert "wrote lr_find.png (100 steps, 8 groups)" in out
    line = next(x for x in out.splitlines() if x.startswith("optim.optimizer.init_args.lr: "))
    suggested = float(line.split(": ")[1])
    assert 3e-3 / 10 <= suggested <= 3e-3 * 10
    assert "steepest descent" in out
