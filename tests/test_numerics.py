"""Numerics at the edges: step 0, the last step, past the end, 1-step runs, odd powers, dtypes.

Documented conventions checked here (``lit_optim.core.schedules`` module docstring): factors are
finite and ``>= 0``; schedules with an end reach their final value at their end and stay
there (clamped, never rising again or raising); a warmup of 0 steps is no warmup; no
factor exceeds the schedule's peak (1.0, or ``Constant``'s factor).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import record_count

from lit_optim import (
    ConfigError,
    Constant,
    Cosine,
    CosineRestarts,
    Exponential,
    InverseSqrt,
    Lambda,
    Linear,
    MultiStep,
    OneCycle,
    OptimConfig,
    Poly,
    Step,
    Warmup,
    WarmupStableDecay,
    build_optimizer,
    build_scheduler,
)
from lit_optim.core.schedules import Horizon, resolve_factor

SCHEDULES = {
    "constant": Constant(0.5),
    "step": Step(step_size=3, gamma=0.5),
    "multistep": MultiStep(milestones=[2, 5], gamma=0.1),
    "exponential": Exponential(gamma=0.9),
    "linear": Linear(),
    "cosine": Cosine(min_factor=0.01),
    "cosine_restarts": CosineRestarts(period=3, period_mult=2, decay=0.5),
    "poly_0.5": Poly(power=0.5),
    "poly_1": Poly(power=1.0),
    "poly_3": Poly(power=3.0),
    "poly_min": Poly(power=0.9, min_factor=0.05),
    "onecycle": OneCycle(pct_start=0.3),
    "onecycle_3phase": OneCycle(pct_start=0.25, three_phase=True, anneal="linear"),
    "inverse_sqrt": InverseSqrt(timescale=4),
    "wsd": WarmupStableDecay(warmup=0.1, decay=0.2, decay_shape="sqrt"),
    "lambda": Lambda(expr="max(0.0, 1 - progress) ** 2"),
}
#: Schedules that end: constant from their last step on (clamped).
ENDING = {"linear", "cosine", "poly_0.5", "poly_1", "poly_3", "poly_min", "onecycle", "wsd"}
ENDING |= {"onecycle_3phase"}
WARMUPS = {
    "none": None,
    "zero": Warmup(steps=0),
    "linear3": Warmup(steps=3, start_factor=0.1),
    "exp": Warmup(fraction=0.2, start_factor=0.01, mode="exponential"),
    "const": Warmup(steps=2, start_factor=0.3, mode="constant"),
    "overlap": Warmup(steps=3, start_factor=0.1, overlap=True),
}
TOTALS = [1, 2, 7, 100, 10_007]


def peak(name: str) -> float:
    return SCHEDULES[name].factor if name == "constant" else 1.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("total", TOTALS)
@pytest.mark.parametrize("warmup", WARMUPS, ids=list(WARMUPS))
@pytest.mark.parametrize("name", SCHEDULES, ids=list(SCHEDULES))
def test_factor_is_finite_nonnegative_and_below_the_peak_at_the_edges(
    name: str, warmup: str, total: int
) -> None:
    horizon = Horizon(total_steps=total, steps_per_epoch=3)
    try:
        f = resolve_factor(SCHEDULES[name], WARMUPS[warmup], horizon)
    except ConfigError as err:
        # Too short for this schedule (warmup as long as the run, no rising phase): a
        # config error naming the key, never a bad number.
        assert err.key.startswith("optim."), err
        record_count("schedule edge cases refused as ConfigError", 1)
        return
    steps = {0, 1, total - 1, total, total + 1, 10 * total, 2**31, 2**53}
    values = {s: f(s) for s in sorted(steps)}
    for step, value in values.items():
        assert isinstance(value, float), (step, value)
        assert math.isfinite(value) and value >= 0.0, (step, value)
        assert value <= peak(name) * (1 + 1e-12), (step, value)
    if name in ENDING:
        # clamped past the end: the value at the last step is kept forever
        end = values[total]
        assert all(values[s] == end for s in values if s >= total), values
    record_count("schedule values checked at the edges", len(values))


@pytest.mark.parametrize("power", [0.5, 3.0])
def test_poly_power_matches_the_closed_form_at_every_step(power: float) -> None:
    total = 17
    f = resolve_factor(Poly(power=power), None, Horizon(total))
    for step in range(total + 5):
        expected = (1 - min(step, total) / total) ** power
        assert f(step) == pytest.approx(expected, rel=1e-14, abs=1e-300)
    assert f(0) == 1.0 and f(total) == 0.0 and f(10 * total) == 0.0


def test_zero_warmup_is_the_same_as_no_warmup() -> None:
    for name, schedule in SCHEDULES.items():
        a = resolve_factor(schedule, None, Horizon(50, 5))
        b = resolve_factor(schedule, Warmup(steps=0), Horizon(50, 5))
        assert [a(s) for s in range(60)] == [b(s) for s in range(60)], name


def test_one_step_run_gives_the_peak_on_its_only_step() -> None:
    for name in ("linear", "cosine", "poly_3", "constant", "exponential"):
        f = resolve_factor(SCHEDULES[name], None, Horizon(1))
        assert f(0) == peak(name), name


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=["float64", "bfloat16"])
@pytest.mark.parametrize("optimizer", ["SGD", "AdamW"])
def test_real_optimizer_steps_with_float64_and_bfloat16_parameters(
    dtype: torch.dtype, optimizer: str
) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    model = model.to(dtype)
    cfg = OptimConfig(
        optimizer={"class_path": optimizer, "init_args": {"lr": 0.05}},
        groups=[{"name": "head", "params": ["2.*"], "lr_scale": 10.0}],
        schedule={"class_path": "Poly", "init_args": {"power": 3.0}},
        warmup={"steps": 2, "start_factor": 0.1},
    )
    opt = build_optimizer(model, cfg)
    total = 8
    sched = build_scheduler(opt, cfg, total_steps=total)
    x = torch.randn(16, 4, dtype=dtype)
    y = (x[:, 0] > 0).long()
    lrs = []
    for _ in range(total + 2):  # two steps past the end: clamped at 0, no error
        lrs.append([g["lr"] for g in opt.param_groups])
        loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    for group_lrs in lrs:
        for lr in group_lrs:
            assert isinstance(lr, float) and math.isfinite(lr) and 0.0 <= lr <= 0.5 * (1 + 1e-12)
    names = [g["name"] for g in opt.param_groups]
    first = dict(zip(names, lrs[0], strict=True))
    for name, lr in first.items():  # warmup starts at 0.1 of the peak; the head at 10x
        assert lr == pytest.approx((0.5 if name.startswith("head") else 0.05) * 0.1, rel=1e-12)
    assert lrs[-1] == [0.0] * len(names)
    for p in model.parameters():
        assert p.dtype == dtype and torch.isfinite(p).all()
    record_count("real optimizer steps with float64/bfloat16 params", total + 2)
