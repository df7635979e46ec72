"""Schedules as pure functions: torch parity, warmup, Sequence, Lambda, config errors."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, getcontext

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler

from lit_optim import ConfigError, Warmup
from lit_optim.core.schedules import (
    Constant,
    Cosine,
    CosineRestarts,
    Exponential,
    FactorFn,
    Horizon,
    InverseSqrt,
    Lambda,
    Linear,
    MultiStep,
    OneCycle,
    Poly,
    Schedule,
    Sequence,
    Step,
    WarmupStableDecay,
    build_schedule,
    resolve_factor,
)

# pytest puts tests/ on sys.path (the suite imports `conftest` the same way), so helpers
# below are importable as `test_schedules.<name>`, like a user's own module.
HERE = __name__

PARITY = settings(max_examples=15, deadline=None, database=None)
bases = st.floats(1e-4, 10.0)


# --- helpers referenced by import path --------------------------------------------------


def halve_every_10(step):
    return 0.5 ** (step // 10)


def cosine_of_progress(step: int, total_steps: int) -> float:
    return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def per_epoch(epoch, total_epochs=0):
    return 1.0 - epoch / (total_epochs + 1)


def goes_negative(step):
    return 1.0 - step / 5


def not_a_number(step):
    return float("nan")


def two_unknowns(a, b):
    return 1.0


@dataclass(frozen=True)
class Halving(Schedule):
    """A user's own schedule: halve every ``every`` steps."""

    every: int = 10

    def resolve(self, horizon: Horizon, key: str = "optim.schedule") -> FactorFn:
        every = self.every
        return lambda step: 0.5 ** (step // every)


# --- torch parity -----------------------------------------------------------------------


def torch_lrs(make: Callable[[torch.optim.Optimizer], object], base: float, steps: int) -> list:
    """The lr torch's scheduler gives at scheduler steps 0..steps-1 on a real optimizer."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()  # type: ignore[attr-defined]
    return lrs


def assert_matches(factor: FactorFn, expected: list, base: float, rel: float = 1e-9) -> None:
    for step, want in enumerate(expected):
        got = base * factor(step)
        assert abs(got - want) <= rel * abs(want) + 1e-12 * base, (step, got, want)


@PARITY
@given(base=bases, total=st.integers(1, 2500), power=st.floats(0.1, 5.0))
def test_poly_matches_torch_polynomial_lr(base: float, total: int, power: float) -> None:
    steps = max(2000, total + 50)  # also past the end, where both stay at 0
    expected = torch_lrs(lambda o: lr_scheduler.PolynomialLR(o, total, power), base, steps)
    assert_matches(Poly(power=power).resolve(Horizon(total)), expected, base)


@PARITY
@given(base=bases, total=st.integers(2000, 3000), low=st.floats(0.0, 0.5))
def test_cosine_matches_torch_cosine_annealing_lr(base: float, total: int, low: float) -> None:
    expected = torch_lrs(
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=low * base),
        base,
        total + 1,
    )
    f = Cosine(min_factor=low).resolve(Horizon(total))
    assert_matches(f, expected, base)
    # torch goes back up after T_max; ours stays at the floor.
    assert f(total + 1) == f(3 * total) == pytest.approx(low, abs=1e-15)


@PARITY
@given(base=bases, size=st.integers(1, 500), gamma=st.floats(0.05, 1.0))
def test_step_matches_torch_step_lr(base: float, size: int, gamma: float) -> None:
    expected = torch_lrs(lambda o: lr_scheduler.StepLR(o, size, gamma), base, 2000)
    assert_matches(Step(step_size=size, gamma=gamma).resolve(Horizon(2000)), expected, base)


@PARITY
@given(
    base=bases,
    milestones=st.lists(st.integers(1, 2000), min_size=1, max_size=8, unique=True).map(sorted),
    gamma=st.floats(0.05, 1.0),
)
def test_multistep_matches_torch_multistep_lr(
    base: float, milestones: list[int], gamma: float
) -> None:
    expected = torch_lrs(lambda o: lr_scheduler.MultiStepLR(o, milestones, gamma), base, 2000)
    f = MultiStep(milestones=milestones, gamma=gamma).resolve(Horizon(2000))
    assert_matches(f, expected, base)


@PARITY
@given(base=bases, gamma=st.floats(0.5, 1.002))
def test_exponential_matches_torch_exponential_lr(base: float, gamma: float) -> None:
    expected = torch_lrs(lambda o: lr_scheduler.ExponentialLR(o, gamma), base, 2000)
    assert_matches(Exponential(gamma=gamma).resolve(Horizon(2000)), expected, base)


@PARITY
@given(
    base=bases,
    start=st.floats(0.01, 1.0),
    end=st.floats(0.0, 1.0),
    total=st.integers(1, 2500),
)
def test_linear_matches_torch_linear_lr(base: float, start: float, end: float, total: int) -> None:
    expected = torch_lrs(
        lambda o: lr_scheduler.LinearLR(o, start_factor=start, end_factor=end, total_iters=total),
        base,
        2000,
    )
    f = Linear(start_factor=start, min_factor=end, total=total).resolve(Horizon(2000))
    assert_matches(f, expected, base)


@PARITY
@given(
    base=bases,
    period=st.integers(1, 400),
    mult=st.integers(1, 3),
    low=st.floats(0.0, 0.5),
)
def test_cosine_restarts_matches_torch_warm_restarts(
    base: float, period: int, mult: int, low: float
) -> None:
    expected = torch_lrs(
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, period, mult, eta_min=low * base),
        base,
        2000,
    )
    f = CosineRestarts(period=period, period_mult=mult, min_factor=low).resolve(Horizon(2000))
    assert_matches(f, expected, base)


@PARITY
@given(
    base=bases,
    total=st.integers(2000, 3000),
    pct=st.floats(0.01, 0.95),
    div=st.floats(1.0, 100.0),
    final_div=st.floats(1.0, 1e5),
    anneal=st.sampled_from(["cosine", "linear"]),
    three_phase=st.booleans(),
)
def test_onecycle_matches_torch_onecycle_lr(
    base: float,
    total: int,
    pct: float,
    div: float,
    final_div: float,
    anneal: str,
    three_phase: bool,
) -> None:
    if three_phase:
        pct = pct / 2
    expected = torch_lrs(
        lambda o: lr_scheduler.OneCycleLR(
            o,
            max_lr=base,
            total_steps=total,
            pct_start=pct,
            anneal_strategy={"cosine": "cos", "linear": "linear"}[anneal],
            div_factor=div,
            final_div_factor=final_div,
            three_phase=three_phase,
            cycle_momentum=False,
        ),
        base,
        total,
    )
    schedule = OneCycle(
        pct_start=pct,
        div_factor=div,
        final_div_factor=final_div,
        anneal=anneal,  # type: ignore[arg-type]
        three_phase=three_phase,
    )
    f = schedule.resolve(Horizon(total))
    assert_matches(f, expected, base)
    assert f(total + 500) == f(total - 1) == pytest.approx(1 / div / final_div, rel=1e-12)


def test_onecycle_phase_boundaries_follow_torch() -> None:
    # Torch ends the rise at step pct * T - 1 = 2.0 and the anneal at T - 1 = 9.
    f = OneCycle(pct_start=0.3, div_factor=10, final_div_factor=100, anneal="linear").resolve(
        Horizon(10)
    )
    assert f(0) == pytest.approx(0.1)
    assert f(1) == pytest.approx(0.55)
    assert f(2) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.001)
    assert f(5) == pytest.approx(1.0 + (0.001 - 1.0) * 3 / 7)


def test_poly_after_a_million_steps_equals_the_closed_form() -> None:
    getcontext().prec = 50
    total, power = 2_000_000, 0.9
    f = Poly(power=power).resolve(Horizon(total))
    for step in (0, 1, 123_457, 999_999, 1_000_000, 1_999_999):
        exact = (Decimal(total - step) / Decimal(total)) ** Decimal(power)
        assert abs(f(step) - float(exact)) <= 1e-12 * float(exact), step
    assert f(total) == 0.0
    assert f(5 * total) == 0.0


def test_poly_with_a_floor_and_its_own_length() -> None:
    f = Poly(power=2.0, min_factor=0.1, total=10).resolve(Horizon(1000))
    assert f(0) == 1.0
    assert f(5) == pytest.approx(0.1 + 0.9 * 0.25)
    assert f(10) == f(500) == pytest.approx(0.1)


# --- other schedules -------------------------------------------------------------------


def test_constant_and_inverse_sqrt_values() -> None:
    assert Constant(0.3).resolve(Horizon(5))(10**9) == 0.3
    f = InverseSqrt(timescale=100).resolve(Horizon(10))
    assert [f(0), f(99), f(100), f(400), f(10_000)] == [1.0, 1.0, 1.0, 0.5, 0.1]


def test_inverse_sqrt_after_warmup_matches_fairseq() -> None:
    # fairseq inverse_sqrt, warmup_updates=W: lr = base * sqrt(W / t) for t >= W.
    w = 40
    f = resolve_factor(InverseSqrt(timescale=w, shift=w), Warmup(steps=w), Horizon(10_000))
    for t in (40, 41, 160, 4000, 9999):
        assert f(t) == pytest.approx(math.sqrt(w / t), rel=1e-14)
    assert f(20) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("shape", "mid"),
    [("linear", 0.55), ("cosine", 0.55), ("sqrt", 0.1 + 0.9 * (1 - math.sqrt(0.5)))],
)
def test_warmup_stable_decay_shapes(shape: str, mid: float) -> None:
    spec = {"warmup": 0.1, "decay": 0.2, "min_factor": 0.1, "decay_shape": shape}
    f = WarmupStableDecay(**spec).resolve(Horizon(100))
    # the warmup starts at min_factor, like Hugging Face's min_lr_ratio
    assert [f(0), f(5), f(10), f(50), f(80)] == pytest.approx([0.1, 0.55, 1.0, 1.0, 1.0])
    assert f(90) == pytest.approx(mid)
    assert f(100) == f(10_000) == pytest.approx(0.1)
    assert WarmupStableDecay(decay=0.0).resolve(Horizon(10))(50) == 1.0


def test_cosine_restarts_decay_lowers_each_peak() -> None:
    f = CosineRestarts(period=10, period_mult=2, decay=0.5, min_factor=0.1).resolve(Horizon(5))
    # cycles start at 0, 10, 30, 70 (lengths 10, 20, 40)
    assert [f(0), f(10), f(30), f(70)] == pytest.approx([1.0, 0.5, 0.25, 0.125])
    assert f(20) == pytest.approx(0.1 + (0.5 - 0.1) / 2)
    assert f(150) == pytest.approx(0.1)  # 0.5 ** 4 < min_factor: stays at the floor


@pytest.mark.parametrize(
    ("schedule", "final"),
    [
        (Linear(), 0.0),
        (Linear(start_factor=0.0, min_factor=2.0, total=10), 2.0),
        (Cosine(min_factor=0.05), 0.05),
        (Poly(power=0.5, min_factor=0.2), 0.2),
        (OneCycle(), 1 / 25 / 1e4),
        (WarmupStableDecay(min_factor=0.01), 0.01),
    ],
)
def test_schedules_with_an_end_stay_at_their_final_value(schedule: Schedule, final: float) -> None:
    f = schedule.resolve(Horizon(100))
    for step in (100, 101, 1000, 10**7):
        assert f(step) == pytest.approx(final, rel=1e-12, abs=1e-15)


def test_open_ended_schedules_go_on_past_the_run() -> None:
    assert Step(step_size=10, gamma=0.5).resolve(Horizon(20))(30) == 0.125
    assert Exponential(gamma=0.5).resolve(Horizon(2))(4) == 0.0625
    assert CosineRestarts(period=4).resolve(Horizon(4))(8) == 1.0


def test_growing_exponential_that_overflows_within_the_run_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"init_args\.gamma: gamma=2 grows the lr past 1e300"):
        Exponential(gamma=2.0).resolve(Horizon(5000))
    f = Exponential(gamma=2.0).resolve(Horizon(10))
    with pytest.raises(ValueError, match="overflows at step 5000"):
        f(5000)


def test_needs_total_reflects_the_run_length_dependence() -> None:
    assert Poly().needs_total and Cosine().needs_total and Linear().needs_total
    assert not Poly(total=10).needs_total and not Cosine(total=5).needs_total
    assert OneCycle().needs_total and WarmupStableDecay().needs_total
    assert not any(
        s.needs_total
        for s in (Constant(), Step(step_size=3), MultiStep([2]), Exponential(0.9), InverseSqrt())
    )
    assert not CosineRestarts(period=3).needs_total
    assert Lambda(expr="1 - progress").needs_total
    assert not Lambda(expr="0.9 ** epoch").needs_total
    assert Lambda(fn=f"{HERE}.cosine_of_progress").needs_total
    assert not Lambda(fn=f"{HERE}.halve_every_10").needs_total
    assert Sequence(["Constant", "Poly"], [5]).needs_total
    assert not Sequence(["Poly", "Constant"], [5]).needs_total


# --- warmup ----------------------------------------------------------------------------


def test_linear_warmup_ramps_to_the_schedule_start() -> None:
    f = resolve_factor(Constant(0.5), Warmup(steps=4, start_factor=0.2), Horizon(10))
    assert [f(t) for t in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5])


def test_exponential_warmup_is_geometric() -> None:
    f = resolve_factor(None, Warmup(steps=4, start_factor=0.01, mode="exponential"), Horizon(10))
    assert [f(t) for t in range(6)] == pytest.approx([0.01, 0.01**0.75, 0.1, 0.01**0.25, 1, 1])


def test_constant_warmup_holds_the_start_factor() -> None:
    f = resolve_factor(None, Warmup(steps=3, start_factor=0.1, mode="constant"), Horizon(10))
    assert [f(t) for t in range(5)] == [0.1, 0.1, 0.1, 1.0, 1.0]


def test_schedule_after_warmup_runs_on_the_remaining_steps() -> None:
    f = resolve_factor(Poly(power=2.0), Warmup(steps=10), Horizon(110))
    assert f(5) == pytest.approx(0.5)
    assert f(10) == 1.0
    assert f(60) == pytest.approx(0.25)  # (1 - 50 / 100) ** 2
    assert f(110) == f(500) == 0.0


@pytest.mark.parametrize(
    ("warmup", "horizon", "steps"),
    [
        (Warmup(epochs=1.5), Horizon(100, steps_per_epoch=10), 15),
        (Warmup(epochs=0.25), Horizon(100, steps_per_epoch=10), 3),  # 2.5 rounds half up
        (Warmup(epochs=2), Horizon(20, steps_per_epoch=1), 2),  # interval: epoch
        (Warmup(fraction=0.05), Horizon(1000), 50),
        (Warmup(fraction=0.125), Horizon(20), 3),  # 2.5 rounds half up
        (Warmup(steps=7), Horizon(100, steps_per_epoch=10), 7),
    ],
)
def test_warmup_epochs_and_fraction_convert_to_steps(
    warmup: Warmup, horizon: Horizon, steps: int
) -> None:
    f = resolve_factor(None, warmup, horizon)
    assert f(steps - 1) < 1.0
    assert f(steps) == 1.0
    assert f(0) == 0.0


def test_zero_warmup_is_no_warmup() -> None:
    f = resolve_factor(Linear(), Warmup(steps=0), Horizon(10))
    assert [f(t) for t in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert resolve_factor(None, Warmup(fraction=0.01), Horizon(10))(0) == 1.0  # rounds to 0


@pytest.mark.parametrize("total", [1, 3, 10])
def test_run_not_longer_than_its_warmup_ends_inside_it(total: int) -> None:
    # fast_dev_run (1 step) or a short max_steps: the first steps of the long run's warmup
    short = resolve_factor(Poly(), Warmup(steps=10, start_factor=0.1), Horizon(total))
    long = resolve_factor(Poly(), Warmup(steps=10, start_factor=0.1), Horizon(100))
    assert [short(t) for t in range(total + 1)] == [long(t) for t in range(total + 1)]
    assert [short(t) for t in range(total + 1)] == pytest.approx(
        [0.1 + 0.9 * t / 10 for t in range(total + 1)], abs=1e-15
    )
    epochs = resolve_factor(None, Warmup(epochs=3), Horizon(total, 10))
    assert [epochs(t) for t in range(total)] == pytest.approx([t / 30 for t in range(total)])


def test_invalid_warmup_is_refused_with_its_key() -> None:
    with pytest.raises(ConfigError, match=r"^optim\.warmup\.start_factor: exponential warmup"):
        resolve_factor(None, Warmup(steps=3, mode="exponential"), Horizon(10))


# --- Sequence --------------------------------------------------------------------------


def test_sequence_joins_children_at_boundaries() -> None:
    spec = {
        "class_path": "Sequence",
        "init_args": {
            "schedules": [
                {"class_path": "Linear", "init_args": {"start_factor": 0.0, "min_factor": 1.0}},
                "Cosine",
            ],
            "boundaries": [10],
        },
    }
    f = build_schedule(spec).resolve(Horizon(110))  # type: ignore[union-attr]
    assert [f(0), f(5), f(10), f(60), f(110), f(200)] == pytest.approx(
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], abs=1e-15
    )


def test_sequence_steps_children_from_their_segment_start() -> None:
    s = Sequence(
        schedules=[Constant(1.0), Constant(0.5), Lambda(expr="step + total_steps")],
        boundaries=[3, 7],
    )
    f = s.resolve(Horizon(20))
    assert [f(t) for t in (0, 2, 3, 6)] == [1.0, 1.0, 0.5, 0.5]
    assert f(7) == 13.0  # step 0 of a 13-step segment
    assert f(9) == 15.0


@pytest.mark.parametrize("total", [1, 4, 5, 7])
def test_run_ending_before_a_boundary_ends_inside_that_piece(total: int) -> None:
    # pieces keep their lengths in steps: a short run's factors are a long run's first
    s = Sequence(schedules=[Linear(min_factor=0.5), Linear(), Poly()], boundaries=[5, 7])
    short, long = s.resolve(Horizon(total)), s.resolve(Horizon(27))
    assert [short(t) for t in range(total + 1)] == [long(t) for t in range(total + 1)]
    assert short(0) == 1.0
    assert short(5 if total >= 5 else total) == pytest.approx(
        1.0 if total >= 5 else 1 - 0.1 * total
    )


@pytest.mark.parametrize(
    ("init_args", "horizon", "match"),
    [
        (
            {"schedules": ["Constant", "Poly"], "boundaries": []},
            20,
            r"init_args\.boundaries: expected 1 boundaries for 2 schedules",
        ),
        (
            {"schedules": ["Constant", "Poly", "Poly"], "boundaries": [5, 5]},
            20,
            r"init_args\.boundaries\[1\]: boundaries must be strictly increasing and > 0",
        ),
        (
            {"schedules": ["Constant", "Poly"], "boundaries": [0]},
            20,
            r"init_args\.boundaries\[0\]: boundaries must be strictly increasing and > 0",
        ),
        (
            {
                "schedules": ["Constant", {"class_path": "Poly", "init_args": {"pwr": 2}}],
                "boundaries": [3],
            },
            20,
            r"init_args\.schedules\[1\]\.init_args\.pwr: unknown argument of Poly",
        ),
        (
            {"schedules": ["Constant", "Nope"], "boundaries": [3]},
            20,
            r"init_args\.schedules\[1\]: unknown schedule 'Nope'",
        ),
        (
            {"schedules": ["Constant", "OneCycle"], "boundaries": [19]},
            20,
            r"init_args\.schedules\[1\]\.init_args\.pct_start: pct_start \* run length = 0\.3",
        ),
        (
            {"schedules": [], "boundaries": []},
            20,
            r"init_args\.schedules: needs at least one schedule",
        ),
    ],
)
def test_sequence_errors_name_the_entry(init_args: dict, horizon: int, match: str) -> None:
    with pytest.raises(ConfigError, match=r"^optim\.schedule\." + match):
        build_schedule({"class_path": "Sequence", "init_args": init_args}).resolve(  # type: ignore[union-attr]
            Horizon(horizon)
        )


# --- Lambda ----------------------------------------------------------------------------


def test_lambda_expression_sees_epoch_and_progress() -> None:
    f = Lambda(expr="0.95 ** epoch").resolve(Horizon(100, steps_per_epoch=10))
    assert [f(0), f(9), f(10), f(25)] == pytest.approx([1.0, 1.0, 0.95, 0.95**2])
    g = Lambda(expr="1 - progress").resolve(Horizon(8))
    assert [g(0), g(2), g(8)] == [1.0, 0.75, 0.0]
    h = Lambda(expr="epoch / total_epochs").resolve(Horizon(25, steps_per_epoch=10))
    assert h(24) == pytest.approx(2 / 3)


def test_lambda_function_by_import_path() -> None:
    f = Lambda(fn=f"{HERE}.halve_every_10").resolve(Horizon(100))
    assert [f(0), f(10), f(35)] == [1.0, 0.5, 0.125]
    g = Lambda(fn=f"{HERE}.cosine_of_progress").resolve(Horizon(10))
    assert [g(0), g(5), g(10)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-15)
    h = Lambda(fn=f"{HERE}.per_epoch").resolve(Horizon(30, steps_per_epoch=10))
    assert [h(0), h(15), h(29)] == pytest.approx([1.0, 0.75, 0.5])
    # A one-argument builtin is called with the step.
    assert Lambda(fn="math.sqrt").resolve(Horizon(10))(16) == 4.0


def test_lambda_from_config_and_pickles() -> None:
    schedule = build_schedule({"class_path": "lambda", "init_args": {"expr": "0.5 ** step"}})
    assert isinstance(schedule, Lambda)
    clone = pickle.loads(pickle.dumps(schedule))
    assert clone == schedule == copy.deepcopy(schedule)
    assert clone.resolve(Horizon(10))(3) == 0.125


def test_lambda_bad_values_fail_when_resolved_or_past_the_run() -> None:
    with pytest.raises(ConfigError, match=r"init_args\.fn: fails at step 0: .* returned nan"):
        Lambda(fn=f"{HERE}.not_a_number").resolve(Horizon(10))
    with pytest.raises(ConfigError, match=r"init_args\.expr: fails at step 0: .*division by zero"):
        Lambda(expr="1 / step").resolve(Horizon(10))
    # every step of the run is checked when resolved, not when training reaches it
    with pytest.raises(ConfigError, match=r"init_args\.fn: fails at step 6: .* returned -0\.19+"):
        Lambda(fn=f"{HERE}.goes_negative").resolve(Horizon(10))
    f = Lambda(fn=f"{HERE}.goes_negative").resolve(Horizon(5))
    assert f(5) == 0.0
    with pytest.raises(
        ValueError, match=r"returned -0\.19+\d* at step 6; a factor must be a finite"
    ):
        f(6)  # past the end of the run it is evaluated as is


@pytest.mark.parametrize(
    ("init_args", "match"),
    [
        ({}, r"init_args: give exactly one of expr .* or fn"),
        ({"expr": "1", "fn": "math.cos"}, r"init_args: give exactly one of expr"),
        ({"fn": "no_such_pkg.mod.fn"}, r"init_args\.fn: cannot import 'no_such_pkg\.mod\.fn'"),
        ({"fn": "math.nope"}, r"init_args\.fn: cannot import .*has no attribute 'nope'"),
        ({"fn": "math.pi"}, r"init_args\.fn: 'math\.pi' is not callable"),
        ({"fn": f"{HERE}.two_unknowns"}, r"init_args\.fn: cannot call two_unknowns\(a, b\)"),
        ({"expr": "stepp * 2"}, r"init_args\.expr: unknown name 'stepp'.*did you mean 'step'"),
        ({"expr": "__import__('os')"}, r"init_args\.expr: call of '__import__' is not allowed"),
    ],
)
def test_lambda_config_errors(init_args: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=r"^optim\.schedule\." + match):
        build_schedule({"class_path": "Lambda", "init_args": init_args})


# --- build_schedule --------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "Poly",
        "poly",
        "POLY",
        "lit_optim.core.schedules.Poly",
        "lit_optim.Poly",
        {"class_path": "Poly"},
        {"class_path": "lit_optim.core.schedules.Poly", "init_args": None},
        Poly,
    ],
)
def test_build_schedule_accepts_names_paths_and_mappings(spec: object) -> None:
    assert build_schedule(spec) == Poly()  # type: ignore[arg-type]


def test_build_schedule_passes_instances_and_none_through() -> None:
    s = Cosine(min_factor=0.1)
    assert build_schedule(s) is s
    assert build_schedule(None) is None
    assert build_schedule("warmup_stable_decay") == WarmupStableDecay()
    assert build_schedule(
        {"class_path": "Cosine_Restarts", "init_args": {"period": 5.0}}
    ) == CosineRestarts(period=5)


def test_build_schedule_finds_a_users_own_subclass() -> None:
    s = build_schedule({"class_path": f"{HERE}.Halving", "init_args": {"every": 2}})
    assert s == Halving(every=2)
    assert s.resolve(Horizon(10))(5) == 0.25  # type: ignore[union-attr]


def test_unknown_argument_suggests_the_closest_and_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        build_schedule({"class_path": "Poly", "init_args": {"pwer": 0.9}})
    assert str(info.value) == (
        "optim.schedule.init_args.pwer: unknown argument of Poly; did you mean 'power'? "
        "(valid: power, min_factor, total, k_decay)"
    )


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("Polly", r"^optim\.schedule: unknown schedule 'Polly'; did you mean 'Poly'\? \(valid: "),
        ("cosin", r"unknown schedule 'cosin'; did you mean 'Cosine'"),
        ({"class_path": "Consant"}, r"^optim\.schedule\.class_path: .*did you mean 'Constant'"),
        ("my_pkg.MySchedule", r"cannot import 'my_pkg\.MySchedule' \(no module named 'my_pkg'\)"),
        ("torch.optim.SGD", r"'torch\.optim\.SGD' is not a lit_optim Schedule subclass"),
        ({"class_path": "Poly", "init_arg": {}}, r"^optim\.schedule\.init_arg: unknown key; did"),
        ({"init_args": {}}, r"^optim\.schedule\.class_path: missing or not a string"),
        ({"class_path": "Poly", "init_args": [1]}, r"^optim\.schedule\.init_args: expected a"),
        (3, r"^optim\.schedule: expected a schedule name or \{class_path, init_args\}, got int"),
        ({"class_path": "Step"}, r"init_args\.step_size: missing required argument of Step"),
    ],
)
def test_unknown_or_malformed_specs_are_refused(spec: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_schedule(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("class_path", "init_args", "match"),
    [
        ("Poly", {"power": 0}, r"power: must be > 0, got 0"),
        ("Poly", {"power": "2"}, r"power: expected a number, got str '2'"),
        ("Poly", {"power": True}, r"power: expected a number, got bool True"),
        ("Poly", {"min_factor": 1.5}, r"min_factor: must be in \[0, 1\], got 1\.5"),
        ("Poly", {"total": 1.5}, r"total: expected an integer, got 1\.5"),
        ("Step", {"step_size": 0}, r"step_size: must be > 0, got 0"),
        ("Step", {"step_size": 5, "gamma": 0}, r"gamma: must be > 0, got 0"),
        ("Exponential", {"gamma": -0.5}, r"gamma: must be > 0, got -0\.5"),
        ("Exponential", {"gamma": float("nan")}, r"gamma: must be finite, got nan"),
        ("MultiStep", {"milestones": [30, 10]}, r"milestones: milestones must be strictly incr"),
        ("MultiStep", {"milestones": [-1, 10]}, r"milestones\[0\]: milestones must be >= 0"),
        ("Linear", {"start_factor": 1.5}, r"start_factor: must be in \[0, 1\], got 1\.5"),
        ("MultiStep", {"milestones": "30"}, r"milestones: expected a list of steps"),
        ("MultiStep", {"milestones": [1.5]}, r"milestones\[0\]: expected an integer step"),
        ("Linear", {"total": 0}, r"total: must be >= 1, got 0"),
        ("Cosine", {"min_factor": -0.1}, r"min_factor: must be >= 0, got -0\.1"),
        ("CosineRestarts", {"period": 5, "period_mult": 0}, r"period_mult: must be >= 1"),
        ("CosineRestarts", {"period": 5, "decay": 0}, r"decay: must be in \(0, 1\], got 0"),
        ("OneCycle", {"pct_start": 1.0}, r"pct_start: must be in \(0, 1\), got 1\.0"),
        ("OneCycle", {"anneal": "cos"}, r"anneal: 'cos' is not one of cosine, linear"),
        ("OneCycle", {"three_phase": "yes"}, r"three_phase: expected true or false"),
        ("InverseSqrt", {"timescale": 0}, r"timescale: must be >= 1, got 0"),
        ("WarmupStableDecay", {"warmup": 0.5, "decay": 0.6}, r"decay: warmup \+ decay = 1\.1"),
        ("WarmupStableDecay", {"decay_shape": "cos"}, r"decay_shape: 'cos' is not one of line"),
        ("Constant", {"factor": -1}, r"factor: must be >= 0, got -1"),
        ("Step", {"step_size": "2"}, r"step_size: expected a number, got str '2'"),
        ("Cosine", {"waves": 0}, r"waves: must be > 0, got 0"),
        ("Cosine", {"k_decay": -1}, r"k_decay: must be > 0, got -1"),
        ("CosineRestarts", {"period": 0}, r"period: must be > 0, got 0"),
        ("CosineRestarts", {"period": None}, r"period: period: null splits the run into `cy"),
        ("CosineRestarts", {"period": 5, "cycles": 0}, r"cycles: must be >= 1, got 0"),
        ("CosineRestarts", {"period": 5, "cycles": 1.5}, r"cycles: expected an integer, got"),
        ("Poly", {"k_decay": 0}, r"k_decay: must be > 0, got 0"),
        ("WarmupStableDecay", {"warmup_shape": "1-sqrt"}, r"warmup_shape: '1-sqrt' is not one"),
        (
            "Sequence",
            {"schedules": ["Constant"], "boundaries": [], "shift": "no"},
            r"shift: expected true or false, got 'no'",
        ),
    ],
)
def test_invalid_values_name_the_argument(class_path: str, init_args: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=r"^optim\.groups\[1\]\.schedule\.init_args\." + match):
        build_schedule(
            {"class_path": class_path, "init_args": init_args}, key="optim.groups[1].schedule"
        )


def test_multistep_milestone_0_decays_from_the_first_step_like_torch() -> None:
    f = MultiStep(milestones=[0, 3], gamma=0.5).resolve(Horizon(6))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    torch_sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[0, 3], gamma=0.5)
    got = []
    for _ in range(6):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        torch_sched.step()
    assert [f(t) for t in range(6)] == got == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_python_construction_validates_too() -> None:
    with pytest.raises(ConfigError, match=r"^optim\.schedule\.init_args\.power: must be > 0"):
        Poly(power=-1.0)


def test_onecycle_too_short_for_its_rise_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"pct_start \* run length = 0\.9 steps"):
        OneCycle().resolve(Horizon(3))
    with pytest.raises(ConfigError, match="three_phase needs"):
        OneCycle(pct_start=0.6, three_phase=True).resolve(Horizon(100))


def test_horizon_total_epochs_rounds_up_and_rejects_nonsense() -> None:
    assert Horizon(1000, 300).total_epochs == 4
    assert Horizon(900, 300).total_epochs == 3
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1"):
        Horizon(0)


def test_overlapping_warmup_replaces_the_first_steps_of_the_schedule() -> None:
    # timm's warmup_prefix=False: the cosine is resolved on the whole run, not shifted.
    f = resolve_factor(Cosine(), Warmup(steps=3, start_factor=0.1, overlap=True), Horizon(10))
    for t in range(3):
        assert f(t) == pytest.approx(0.1 + 0.9 * t / 3, rel=1e-15)
    for t in range(3, 12):
        assert f(t) == pytest.approx((1 + math.cos(math.pi * min(t, 10) / 10)) / 2, abs=1e-15)
    prefixed = resolve_factor(Cosine(), Warmup(steps=3, start_factor=0.1), Horizon(10))
    assert prefixed(3) == 1.0 and f(3) < 1.0


def test_warmup_overlap_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match=r"^optim\.warmup\.overlap: expected true or false"):
        Warmup(steps=2, overlap="yes").validate()  # type: ignore[arg-type]


def test_sequence_without_shift_needs_the_run_length_when_any_child_does() -> None:
    fixed = {"class_path": "Linear", "init_args": {"total": 4}}
    assert not Sequence(schedules=[fixed, "Constant"], boundaries=[4], shift=False).needs_total
    assert Sequence(schedules=["Cosine", "Constant"], boundaries=[4], shift=False).needs_total
    assert not Sequence(schedules=["Cosine", "Constant"], boundaries=[4]).needs_total
