"""ScheduleLR: one evaluation per distinct schedule, and the values it sets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_optim import ConfigError, OptimConfig, ScheduleLR, build_optimizer, build_scheduler


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


COSINE_CALLS: list[int] = []


def counted_cosine(step: int, total_steps: int) -> float:
    """A user's Lambda fn that records every call."""
    COSINE_CALLS.append(step)
    return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def test_groups_under_one_config_schedule_share_one_function():
    cfg = OptimConfig(
        optimizer="SGD",
        no_decay=[],
        layer_decay={"rate": 0.9},
        schedule={"class_path": "Lambda", "init_args": {"fn": "test_lr_adapter.counted_cosine"}},
        warmup={"steps": 2},
        groups=[{"name": "b0", "params": ["blocks.0.*"], "schedule": "Linear"}],
    )
    opt = build_optimizer(Blocks(40), cfg)
    sched = build_scheduler(opt, cfg, total_steps=10)
    assert len(opt.param_groups) == 40
    COSINE_CALLS.clear()
    for _ in range(5):
        opt.step()
        sched.step()
    # 39 groups follow the Lambda: one call per step after the 2 warmup steps, not 39.
    assert COSINE_CALLS == [0, 1, 2, 3]
    shared = [g for g in opt.param_groups if not g["name"].startswith("b0/")]
    factor = 0.5 * (1 + math.cos(math.pi * 3 / 8))  # step 5 = 3 steps into 8 after warmup
    assert len(shared) == 39
    assert [g["lr"] for g in shared] == pytest.approx([g["initial_lr"] * factor for g in shared])


# --------------------------------------------------------------------------- momentum / wd

ONECYCLE_MOMENTUM = {  # 0.95 -> 0.85 over 30% of the run, back to 0.95 (factors of 0.95)
    "class_path": "Sequence",
    "init_args": {
        "schedules": [
            {"class_path": "Linear", "init_args": {"min_factor": 0.85 / 0.95}},
            {"class_path": "Linear", "init_args": {"start_factor": 0.85 / 0.95, "min_factor": 1}},
        ],
        "boundaries": [6],
    },
}
DINO_WD = {"class_path": "Cosine", "init_args": {"min_factor": 10.0}}  # 0.04 -> 0.4


def onecycle_momentum(step: int, total: int = 20) -> float:
    low = 0.85
    if step < 6:
        return 0.95 + (low - 0.95) * step / 6
    s = min(step - 6, total - 6)
    return low + (0.95 - low) * s / (total - 6)


def dino_wd(step: int, total: int = 20) -> float:
    import math

    return 0.4 + (0.04 - 0.4) * (1 + math.cos(math.pi * min(step, total) / total)) / 2


def run_steps(cfg: OptimConfig, model: nn.Module, steps: int = 20, total: int = 20):
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_steps=total)
    seen = []
    for _ in range(steps):
        seen.append([dict(g) for g in opt.param_groups])
        opt.step()
        sched.step()
    return opt, sched, seen


@pytest.mark.parametrize("optimizer", ["AdamW", "SGD"])
def test_momentum_and_weight_decay_schedules_equal_their_closed_forms(optimizer):
    init = {"lr": 0.1, "weight_decay": 0.04}
    init.update({"betas": [0.95, 0.999]} if optimizer == "AdamW" else {"momentum": 0.95})
    cfg = OptimConfig(
        optimizer={"class_path": optimizer, "init_args": init},
        schedule="Cosine",
        momentum_schedule=ONECYCLE_MOMENTUM,
        weight_decay_schedule=DINO_WD,
        groups=[{"name": "head", "params": ["blocks.1.*"], "weight_decay": 0.1}],
    )
    _, _, seen = run_steps(cfg, Blocks(2))
    for step, groups in enumerate(seen):
        by_name = {g["name"]: g for g in groups}
        for name, base_wd in (("default", 0.04), ("head", 0.1)):
            g = by_name[name]
            mom = g["betas"][0] if optimizer == "AdamW" else g["momentum"]
            assert mom == pytest.approx(onecycle_momentum(step), rel=1e-12), (name, step)
            assert g["weight_decay"] == pytest.approx(base_wd / 0.04 * dino_wd(step), rel=1e-12)
        assert by_name["default/no_decay"]["weight_decay"] == 0.0  # a factor of 0 stays 0
        if optimizer == "AdamW":
            assert by_name["default"]["betas"][1] == 0.999


def test_per_group_and_warmup_momentum_schedules():
    cfg = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 0.1, "momentum": 0.9}},
        no_decay=[],
        momentum_schedule="Constant",
        momentum_warmup={"steps": 4, "start_factor": 0.5},
        groups=[{"name": "head", "params": ["blocks.1.*"], "momentum_schedule": "Linear"}],
    )
    _, _, seen = run_steps(cfg, Blocks(2))
    for step, (default, head) in enumerate(seen):
        warm = 0.5 + 0.5 * step / 4 if step < 4 else 1.0
        lin = 1.0 if step < 4 else 1 - (step - 4) / 16
        assert default["momentum"] == pytest.approx(0.9 * warm, rel=1e-12)
        assert head["momentum"] == pytest.approx(0.9 * (warm if step < 4 else lin), rel=1e-12)
        assert default["lr"] == head["lr"] == 0.1  # no lr schedule: lrs untouched


def test_momentum_schedule_state_resumes_exactly():
    cfg = OptimConfig(
        optimizer={"class_path": "AdamW", "init_args": {"betas": [0.95, 0.999]}},
        schedule="Cosine",
        momentum_schedule=ONECYCLE_MOMENTUM,
        weight_decay_schedule=DINO_WD,
    )
    opt, sched, _ = run_steps(cfg, Blocks(2), steps=9)
    state = sched.state_dict()
    assert state["base_momenta"] == [0.95, 0.95]  # the configured values, not the current
    opt2 = build_optimizer(Blocks(2), cfg)
    sched2 = build_scheduler(opt2, cfg, total_steps=20)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    for _ in range(5):
        for a, b in zip(opt.param_groups, opt2.param_groups, strict=True):
            assert (a["lr"], a["betas"], a["weight_decay"]) == (
                b["lr"],
                b["betas"],
                b["weight_decay"],
            )
        opt.step(), sched.step(), opt2.step(), sched2.step()


def test_momentum_schedule_without_momentum_names_the_key():
    from lit_optim import ConfigError

    cfg = OptimConfig(optimizer="Adagrad", momentum_schedule="Cosine")
    with pytest.raises(ConfigError, match=r"optim.momentum_schedule: param group 'default' has"):
        build_scheduler(build_optimizer(Blocks(1), cfg), cfg, total_steps=5)


def test_fractional_step_epoch_is_refused_not_truncated() -> None:
    model = nn.Linear(2, 2)
    config = OptimConfig.from_dict({"optimizer": "SGD", "schedule": "Linear"})
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, total_steps=10)
    optimizer.step()
    with pytest.raises(ValueError, match=r"^ScheduleLR\.step\(epoch=2\.5\): epoch must be a whole"):
        scheduler.step(2.5)
    scheduler.step(2.0)  # a whole number given as a float is that step
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.8, rel=1e-12)


@pytest.mark.parametrize(
    ("schedule", "what"),
    [
        ("Poly", "Poly needs the length of the run"),
        ("torch.optim.lr_scheduler.OneCycleLR", "OneCycleLR needs total_steps"),
    ],
)
def test_plain_python_without_total_steps_names_the_python_argument(schedule, what) -> None:
    config = OptimConfig.from_dict({"optimizer": {"class_path": "SGD", "init_args": {"lr": 0.1}},
                                    "schedule": schedule})  # fmt: skip
    optimizer = build_optimizer(nn.Linear(2, 2), config)
    with pytest.raises(ConfigError) as err:
        build_scheduler(optimizer, config)
    message = str(err.value)
    assert message.startswith(
        f"build_scheduler: {what}, but total_steps is None; pass total_steps="
    )
    assert "trainer" not in message


def test_plain_python_warmup_fraction_without_total_steps_names_the_argument() -> None:
    config = OptimConfig.from_dict({"optimizer": "SGD", "warmup": {"fraction": 0.1}})
    optimizer = build_optimizer(nn.Linear(2, 2), config)
    with pytest.raises(ConfigError) as err:
        build_scheduler(optimizer, config)
    assert str(err.value) == (
        "build_scheduler: optim.warmup.fraction needs the length of the run, but total_steps "
        "is None; pass total_steps=<how many times scheduler.step() is called over the run>"
    )
