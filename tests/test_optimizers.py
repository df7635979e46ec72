"""build_optimizer: class resolution and option checks (step choice: test_step_implementation)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_optim import OptimConfig, build_optimizer
from lit_optim.lightning.callbacks import metric_keys


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


@pytest.mark.parametrize("spec", ["AdamW", "adamw", "torch.optim.AdamW", {"class_path": "AdamW"}])
def test_short_names_and_import_paths_resolve(spec):
    assert type(build_optimizer(model(), OptimConfig(optimizer=spec))) is torch.optim.AdamW


def test_lr_logger_prefix_uses_the_torch_name():
    opt = build_optimizer(model(), OptimConfig(optimizer="SGD"))
    assert opt.defaults["fused"] is True

    (entry,) = metric_keys([], [opt])
    assert entry.lr[0].startswith("lr-SGD/")
