"""ScheduleLR: one evaluation per distinct schedule, and the values it sets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_optim import OptimConfig, ScheduleLR, build_optimizer, build_scheduler


class Blocks(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(n))


def test_each_distinct_schedule_is_evaluated_once_per_step():
    calls: list[int] = []

    def shared(step: int) -> float:
        calls.append(step)
        return 0.5**step

    opt = torch.optim.SGD([{"params": [torch.zeros(1)], "lr": 0.1 * (i + 1)} for i in range(600)])
    sched = ScheduleLR(opt, [shared] * 600)
    calls.clear()
    for _ in range(5):
        opt.step()
        sched.step()
    assert calls == [1, 2, 3, 4, 5]
    assert [g["lr"] for g in opt.param_groups[:3]] == pytest.approx([0.1 / 32, 0.2 / 32, 0.3 / 32])


def test_groups_under_one_config_schedule_share_one_function():
    cfg = OptimConfig(
        optimizer="SGD",
        no_decay=[],
        layer_decay={"rate": 0.9},
        schedule="Cosine",
        warmup={"steps": 2},
        groups=[{"name": "b0", "params": ["blocks.0.*"], "schedule": "Linear"}],
    )
    opt = build_optimizer(Blocks(40), cfg)
    sched = build_scheduler(opt, cfg, total_steps=10)
    assert len(opt.param_groups) == 40
    assert len(sched._distinct) == 2  # Cosine for 39 groups, Linear for b0
