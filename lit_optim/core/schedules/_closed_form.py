"""Closed-form schedules: each factor is a formula of the step (torch's ``_get_closed_form_lr``)."""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules._base import DEFAULT_KEY, FactorFn, Horizon, Schedule
from lit_optim.core.schedules._checks import (
    _arg_key,
    _check_bool,
    _check_choice,
    _check_growth,
    _check_number,
    _power,
    _round,
)

__all__ = [
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Exponential",
    "InverseSqrt",
    "Linear",
    "MultiStep",
    "OneCycle",
    "Poly",
    "Step",
    "WarmupStableDecay",
]


@dataclass(frozen=True)
class Constant(Schedule):
    """A constant factor.

    Example:
        >>> Constant(0.5).resolve(Horizon(10))(7)
        0.5

    """

    factor: float = 1.0

    def __post_init__(self) -> None:
        _check_number(self, "factor", low=0)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return ``step -> factor``."""
        factor = self.factor
        return lambda step: factor


@dataclass(frozen=True)
class Step(Schedule):
    """Multiply by ``gamma`` every ``step_size`` steps, like torch ``StepLR``.

    ``factor(t) = gamma ** (t // step_size)``; it goes on past the end of the run.
    ``step_size`` may be fractional (timm's ``decay_t``; torch wants an integer).

    Example:
        >>> f = Step(step_size=10, gamma=0.5).resolve(Horizon(100))
        >>> [f(0), f(9), f(10), f(25)]
        [1.0, 1.0, 0.5, 0.25]

    """

    step_size: float
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check_number(self, "step_size", low=0, low_open=True)
        if float(self.step_size).is_integer():  # integers stay integers (exact, like torch)
            object.__setattr__(self, "step_size", int(self.step_size))
        _check_number(self, "gamma", low=0, low_open=True)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return ``step -> gamma ** (step // step_size)``."""
        gamma, size = self.gamma, self.step_size
        _check_growth(key, gamma, horizon.total_steps // size)
        return lambda step: _power(gamma, int(step // size), key, step)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """Multiply by ``gamma`` at each milestone, like torch ``MultiStepLR``.

    ``factor(t) = gamma ** (number of milestones <= t)``. Milestones are strictly
    increasing steps ``>= 0`` (torch counts a repeated milestone twice; write the gamma
    you want instead). A milestone of 0 applies ``gamma`` from the first step, as torch's
    ``MultiStepLR(milestones=[0])`` does (timm's ``decay_t=[1, ...]`` is milestone 0).

    Example:
        >>> f = MultiStep(milestones=[3, 5], gamma=0.1).resolve(Horizon(10))
        >>> [round(f(t), 6) for t in (0, 2, 3, 4, 5, 9)]
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]

    """

    milestones: tuple[int, ...] | list[int]
    gamma: float = 0.1

    def __post_init__(self) -> None:
        key = _arg_key("milestones")
        value = self.milestones
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list of steps such as [30, 60], got {value!r}")
        for i, m in enumerate(value):
            if isinstance(m, bool) or not isinstance(m, numbers.Real) or not float(m).is_integer():
                raise ConfigError(f"{key}[{i}]", f"expected an integer step, got {m!r}")
            if m < 0:
                raise ConfigError(f"{key}[{i}]", f"milestones must be >= 0, got {m!r}")
        milestones = tuple(int(m) for m in value)
        for i in range(1, len(milestones)):
            if milestones[i] <= milestones[i - 1]:
                raise ConfigError(
                    key,
                    f"milestones must be strictly increasing, got {list(milestones)} "
                    f"({milestones[i]} after {milestones[i - 1]})",
                )
        object.__setattr__(self, "milestones", milestones)
        _check_number(self, "gamma", low=0, low_open=True)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return ``step -> gamma ** bisect_right(milestones, step)``."""
        gamma, milestones = self.gamma, self.milestones
        _check_growth(key, gamma, len(milestones))
        return lambda step: gamma ** bisect.bisect_right(milestones, step)


@dataclass(frozen=True)
class Exponential(Schedule):
    """Multiply by ``gamma`` every step, like torch ``ExponentialLR``: ``factor(t) = gamma ** t``.

    Example:
        >>> Exponential(gamma=0.5).resolve(Horizon(10))(3)
        0.125

    """

    gamma: float

    def __post_init__(self) -> None:
        _check_number(self, "gamma", low=0, low_open=True)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return ``step -> gamma ** step``."""
        gamma = self.gamma
        _check_growth(key, gamma, horizon.total_steps)
        return lambda step: _power(gamma, step, key, step)


@dataclass(frozen=True)
class Linear(Schedule):
    """Linear from ``start_factor`` to ``min_factor`` over ``total`` steps, then flat.

    ``factor(t) = (start * (T - s) + end * s) / T`` with ``s = min(t, T)``,
    ``end = min_factor`` and ``T = total`` (the whole run when ``None``): the closed form of
    torch ``LinearLR(start_factor, end_factor=min_factor, total_iters=total)``, but the
    defaults differ: torch ramps 1/3 -> 1 over 5 steps, ours decays 1 -> 0 over the run.
    ``min_factor`` is named like the other decays' floor; it may also lie above
    ``start_factor`` (and above 1) for a ramp up. ``start_factor`` is in ``[0, 1]``: it may
    be 0 (torch requires > 0), and above 1 it is refused, as torch refuses it.

    Example:
        >>> f = Linear().resolve(Horizon(4))
        >>> [f(t) for t in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

    """

    start_factor: float = 1.0
    min_factor: float = 0.0
    total: int | None = None

    def __post_init__(self) -> None:
        # torch's LinearLR refuses start_factor > 1 too: a start above the lr is a typo far
        # more often than a plan (a ramp up ends at min_factor, which may exceed 1).
        _check_number(self, "start_factor", low=0, high=1)
        _check_number(self, "min_factor", low=0)
        _check_number(self, "total", low=1, integer=True, optional=True)

    @property
    def needs_total(self) -> bool:
        """True when ``total`` is left to the run length."""
        return self.total is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the linear ramp."""
        start, end = self.start_factor, self.min_factor
        total = self.total or horizon.total_steps

        def factor(step: int) -> float:
            done = min(step, total)
            return (start * (total - done) + end * done) / total

        return factor


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from 1 down to ``min_factor`` over ``total`` steps, then flat.

    ``factor(t) = min + (1 - min) * (1 + cos(2 pi * waves * p)) / 2`` with
    ``p = min(t, T) ** k / T ** k``, ``T = total`` (the whole run when ``None``) and
    ``k = k_decay``. With the defaults (``waves=0.5``, ``k_decay=1``) this is torch
    ``CosineAnnealingLR`` with ``T_max = T`` and ``eta_min = min_factor * base_lr``, except
    that torch rises again after ``T_max`` while this stays at its value at ``T``.

    ``waves`` is Hugging Face's ``num_cycles`` (0.5: down once; 1: down and back up);
    ``k_decay`` is timm's (k > 1 keeps the lr high for longer, k < 1 drops it sooner).

    Example:
        >>> f = Cosine(min_factor=0.1).resolve(Horizon(10))
        >>> [round(f(t), 4) for t in (0, 5, 10, 20)]
        [1.0, 0.55, 0.1, 0.1]

    """

    min_factor: float = 0.0
    total: int | None = None
    waves: float = 0.5
    k_decay: float = 1.0

    def __post_init__(self) -> None:
        _check_number(self, "min_factor", low=0)
        _check_number(self, "total", low=1, integer=True, optional=True)
        _check_number(self, "waves", low=0, low_open=True)
        _check_number(self, "k_decay", low=0, low_open=True)

    @property
    def needs_total(self) -> bool:
        """True when ``total`` is left to the run length."""
        return self.total is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the cosine annealing."""
        low, k = self.min_factor, self.k_decay
        total = self.total or horizon.total_steps
        # 2 * waves is exact (a power of two), so waves=0.5 is exactly pi * p.
        angle = math.pi * 2.0 * self.waves
        if k == 1.0:
            return lambda step: (
                low + (1.0 - low) * (1.0 + math.cos(angle * min(step, total) / total)) / 2
            )
        span = total**k
        return lambda step: (
            low + (1.0 - low) * (1.0 + math.cos(angle * min(step, total) ** k / span)) / 2
        )


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing restarted every period (SGDR), like torch ``CosineAnnealingWarmRestarts``.

    Cycle ``i`` lasts ``P_i = period * period_mult ** i`` steps; inside it, at step ``c``,
    ``factor = min + (peak_i - min) * (1 + cos(pi * c ** k / P_i ** k)) / 2`` with
    ``peak_i = max(decay ** i, min_factor)`` (timm's ``cycle_decay``; 1.0 = torch) and
    ``k = k_decay`` (timm's). ``period`` and ``period_mult`` may be fractional (timm's
    ``t_initial`` / ``cycle_mul``; torch wants integers). After ``cycles`` cycles the factor
    stays at ``min_factor`` (timm's ``cycle_limit``); with ``cycles: null`` restarts go on
    past the end of the run. ``period: null`` splits the run (or segment) into ``cycles``
    equal cycles: Hugging Face's ``get_cosine_with_hard_restarts_schedule_with_warmup``.

    Example:
        >>> f = CosineRestarts(period=4, decay=0.5).resolve(Horizon(100))
        >>> [round(f(t), 4) for t in (0, 2, 4, 6, 8)]
        [1.0, 0.5, 0.5, 0.25, 0.25]
        >>> g = CosineRestarts(period=None, cycles=2).resolve(Horizon(8))  # HF hard restarts
        >>> [g(t) for t in (0, 2, 4, 6, 8)]
        [1.0, 0.5, 1.0, 0.5, 0.0]

    """

    period: float | None
    period_mult: float = 1
    min_factor: float = 0.0
    decay: float = 1.0
    cycles: int | None = None
    k_decay: float = 1.0

    def __post_init__(self) -> None:
        _check_number(self, "period", low=0, low_open=True, optional=True)
        _check_number(self, "period_mult", low=1)
        _check_number(self, "min_factor", low=0)
        _check_number(self, "decay", low=0, high=1, low_open=True)
        _check_number(self, "cycles", low=1, integer=True, optional=True)
        _check_number(self, "k_decay", low=0, low_open=True)
        if self.period is None and (self.cycles is None or self.period_mult != 1):
            raise ConfigError(
                _arg_key("period"),
                "period: null splits the run into `cycles` equal cycles; give cycles "
                f"(got {self.cycles!r}) and period_mult 1 (got {self.period_mult:g}), "
                "or a period in steps",
            )
        for name in ("period", "period_mult"):  # integers stay integers (exact, like torch)
            value = getattr(self, name)
            if value is not None and float(value).is_integer():
                object.__setattr__(self, name, int(value))

    @property
    def needs_total(self) -> bool:
        """True when ``period: null`` (cycles over the run)."""
        return self.period is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the restarted cosine."""
        mult, low, decay, k = self.period_mult, self.min_factor, self.decay, self.k_decay
        limit = self.cycles
        total = horizon.total_steps
        locate = _cycle_locator(self.period, mult, limit, total)

        def factor(step: int) -> float:
            cycle, into, length = locate(step)
            if limit is not None and cycle >= limit:
                return low
            peak = max(decay**cycle, low)
            ratio = into / length if k == 1.0 else into**k / length**k
            return low + (peak - low) * (1.0 + math.cos(math.pi * ratio)) / 2

        return factor


def _cycle_locator(
    period: float | None, mult: float, cycles: int | None, total: int
) -> Callable[[int], tuple[int, float, float]]:
    """``step -> (cycle, steps into it, its length)`` for restarts.

    Integer period and multiplier walk the cycles in integers (exact, like torch's
    stepping); fractional ones use timm's closed form; ``period=None`` is Hugging Face's
    ``(cycles * progress) % 1``.
    """
    if period is None:
        assert cycles is not None  # __post_init__ ensures it

        def equal(step: int) -> tuple[int, float, float]:
            x = cycles * (step / total)
            cycle = math.floor(x)
            return cycle, x - cycle, 1.0

        return equal
    if mult == 1:

        def fixed(step: int) -> tuple[int, float, float]:
            cycle = int(step // period)  # as timm: floor division, also for a fractional period
            return cycle, step - period * cycle, period

        return fixed
    if isinstance(period, int) and isinstance(mult, int):

        def walk(step: int) -> tuple[int, float, float]:
            cycle, start, length = 0, 0, period
            while step >= start + length:  # O(log step)
                start += length
                length *= mult
                cycle += 1
            return cycle, step - start, length

        return walk

    def start_of(cycle: int) -> float:
        return (1 - mult**cycle) / (1 - mult) * period

    def geometric(step: int) -> tuple[int, float, float]:
        # timm CosineLRScheduler._get_lr, term for term; then one correction each way,
        # because with mult within a few ulps of 1 the log rounds to the wrong cycle
        # and the step would lie outside it (a negative position, a complex k_decay power).
        cycle = math.floor(math.log(1 - step / period * (1 - mult), mult))
        if cycle > 0 and start_of(cycle) > step:
            cycle -= 1
        elif start_of(cycle + 1) <= step:
            cycle += 1
        length = mult**cycle * period
        into = min(max(step - start_of(cycle), 0.0), length)
        return cycle, into, length

    return geometric


@dataclass(frozen=True)
class Poly(Schedule):
    """Polynomial decay to ``min_factor`` over ``total`` steps, then flat.

    ``factor(t) = min + (1 - min) * ((T - min(t, T)) / T) ** power`` with ``T = total`` (the
    whole run when ``None``). With ``min_factor = 0`` this is torch ``PolynomialLR`` with
    ``total_iters = T``, computed in closed form (no drift after millions of steps).
    ``k_decay`` (timm's ``PolyLRScheduler``) uses ``1 - min(t, T) ** k / T ** k`` inside.

    Example:
        >>> f = Poly(power=0.5).resolve(Horizon(100))
        >>> [f(0), f(75), f(100), f(150)]
        [1.0, 0.5, 0.0, 0.0]

    """

    power: float = 1.0
    min_factor: float = 0.0
    total: int | None = None
    k_decay: float = 1.0

    def __post_init__(self) -> None:
        _check_number(self, "power", low=0, low_open=True)
        _check_number(self, "min_factor", low=0, high=1)
        _check_number(self, "total", low=1, integer=True, optional=True)
        _check_number(self, "k_decay", low=0, low_open=True)

    @property
    def needs_total(self) -> bool:
        """True when ``total`` is left to the run length."""
        return self.total is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the polynomial decay."""
        power, low, k = self.power, self.min_factor, self.k_decay
        total = self.total or horizon.total_steps
        if k != 1.0:
            span = total**k
            return lambda step: low + (1.0 - low) * (1.0 - min(step, total) ** k / span) ** power
        # (total - t) / total is exact to one rounding; 1 - t / total cancels near the end.
        if low == 0.0:
            return lambda step: ((total - min(step, total)) / total) ** power
        return lambda step: low + (1.0 - low) * ((total - min(step, total)) / total) ** power


@dataclass(frozen=True)
class OneCycle(Schedule):
    """The 1cycle policy over the run, exactly like torch ``OneCycleLR`` with ``max_lr = base_lr``.

    The factor rises from ``1 / div_factor`` to 1 over the first ``pct_start`` of the run,
    then anneals to ``1 / (div_factor * final_div_factor)`` at step ``total_steps - 1``
    (``three_phase``: back to ``1 / div_factor`` first, then down). Phase boundaries
    follow torch: phase ends at steps ``pct_start * T - 1`` (and ``2 * pct_start * T - 2``)
    and ``T - 1``. Past step ``T - 1`` the factor stays final (torch raises after ``T``).
    ``anneal`` is ``"cosine"`` or ``"linear"`` (torch's ``anneal_strategy="cos"`` /
    ``"linear"``). Momentum cycling is not done here: lit_optim schedules only drive the lr.

    Example:
        >>> f = OneCycle(pct_start=0.25, anneal="linear").resolve(Horizon(9))
        >>> [round(f(t), 4) for t in (0, 1, 2, 8, 50)]
        [0.04, 0.808, 0.8889, 0.0, 0.0]

    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Literal["cosine", "linear"] = "cosine"
    three_phase: bool = False

    def __post_init__(self) -> None:
        _check_number(self, "pct_start", low=0, high=1, low_open=True, high_open=True)
        _check_number(self, "div_factor", low=0, low_open=True)
        _check_number(self, "final_div_factor", low=0, low_open=True)
        _check_choice(self, "anneal", ("cosine", "linear"))
        _check_bool(self, "three_phase")

    @property
    def needs_total(self) -> bool:
        """Always true: the phases are fractions of the run."""
        return True

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the one-cycle factor."""
        total, pct = horizon.total_steps, self.pct_start
        rise = float(pct * total) - 1
        if rise <= 0:
            raise ConfigError(
                f"{key}.init_args.pct_start",
                f"pct_start * run length = {pct * total:g} steps leaves no rising phase; "
                f"use pct_start > {1 / total:.3g} or a longer run (run: {total} steps)",
            )
        initial = 1.0 / self.div_factor
        final = initial / self.final_div_factor
        phases: list[tuple[float, float, float]]  # (end step, start factor, end factor)
        if self.three_phase:
            fall = float(2 * pct * total) - 2
            if fall >= total - 1:
                raise ConfigError(
                    f"{key}.init_args.pct_start",
                    f"three_phase needs 2 * pct_start * run length < run length + 1, got "
                    f"pct_start={pct:g} for {total} steps; use pct_start < 0.5",
                )
            phases = [(rise, initial, 1.0), (fall, 1.0, initial), (total - 1, initial, final)]
        else:
            phases = [(rise, initial, 1.0), (total - 1, 1.0, final)]
        cosine = self.anneal == "cosine"
        last = total - 1

        def factor(step: int) -> float:
            step = min(step, last)
            start_step = 0.0
            for end_step, start, end in phases:
                if step <= end_step:  # always true in the last phase: step <= total - 1
                    pct = (step - start_step) / (end_step - start_step)
                    if cosine:
                        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
                    return (end - start) * pct + start
                start_step = end_step
            return final

        return factor


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """Inverse square root decay (T5 / fairseq).

    ``factor(t) = 1 / sqrt(max(1, (t + shift) / timescale))``: flat at 1 until
    ``t + shift`` reaches ``timescale``, then ``sqrt(timescale / (t + shift))``.
    T5's ``rsqrt`` with ``warmup_steps = W`` is ``timescale=W``. fairseq's
    ``inverse_sqrt`` with ``warmup_updates = W`` is ``warmup: {steps: W}`` plus
    ``timescale=W, shift=W`` (the schedule after a warmup counts from 0; ``shift``
    restores the absolute step). Goes on past the end of the run.

    Example:
        >>> f = InverseSqrt(timescale=100).resolve(Horizon(10_000))
        >>> [f(0), f(100), f(400), f(10_000)]
        [1.0, 1.0, 0.5, 0.1]

    """

    timescale: int = 10_000
    shift: int = 0

    def __post_init__(self) -> None:
        _check_number(self, "timescale", low=1, integer=True)
        _check_number(self, "shift", low=0, integer=True)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the inverse square root decay."""
        timescale, shift = self.timescale, self.shift
        return lambda step: 1.0 / math.sqrt(max(1.0, (step + shift) / timescale))


@dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay (trapezoid): ramp up, hold at 1, decay to ``min_factor`` at the end.

    With ``W = round(warmup * T)`` and ``D = round(decay * T)`` steps of a run of ``T``
    (rounded half up): for ``t < W``, ``min + (1 - min) * u(t / W)``; 1 until ``T - D``;
    then with ``p = (t - (T - D)) / D``, ``min + (1 - min) * s(p)``; ``min_factor`` from
    step ``T`` on. ``s`` is ``decay_shape``: ``1 - p`` (linear), ``(1 + cos(pi p)) / 2``
    (cosine) or ``1 - sqrt(p)`` (sqrt, the "1-sqrt" cooldown); ``u`` is ``warmup_shape``:
    ``q``, ``(1 - cos(pi q)) / 2`` or ``1 - sqrt(1 - q)``. This is Hugging Face
    ``get_wsd_schedule`` with ``num_warmup_steps = W``, ``num_decay_steps = D``,
    ``min_lr_ratio = min_factor`` and ``"1-sqrt"`` written ``sqrt``: both ends start and
    stop at ``min_factor``.

    Example:
        >>> f = WarmupStableDecay(warmup=0.1, decay=0.2).resolve(Horizon(100))
        >>> [f(0), f(5), f(10), f(80), f(90), f(100)]
        [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]

    """

    warmup: float = 0.0
    decay: float = 0.1
    min_factor: float = 0.0
    decay_shape: Literal["linear", "cosine", "sqrt"] = "linear"
    warmup_shape: Literal["linear", "cosine", "sqrt"] = "linear"

    def __post_init__(self) -> None:
        _check_number(self, "warmup", low=0, high=1)
        _check_number(self, "decay", low=0, high=1)
        if self.warmup + self.decay > 1:
            raise ConfigError(
                _arg_key("decay"),
                f"warmup + decay = {self.warmup + self.decay:g} is more than the whole run; "
                "they are fractions of the run and must add up to <= 1",
            )
        _check_number(self, "min_factor", low=0, high=1)
        _check_choice(self, "decay_shape", ("linear", "cosine", "sqrt"))
        _check_choice(self, "warmup_shape", ("linear", "cosine", "sqrt"))

    @property
    def needs_total(self) -> bool:
        """Always true: the phases are fractions of the run."""
        return True

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the trapezoid factor."""
        total, low = horizon.total_steps, self.min_factor
        warm = _round(self.warmup * total)
        cool = _round(self.decay * total)
        decay_start = total - cool
        down = _DECAY_SHAPES[self.decay_shape]
        up = _WARMUP_SHAPES[self.warmup_shape]

        def factor(step: int) -> float:
            if step < warm:
                return low + (1.0 - low) * up(step / warm)
            if step < decay_start or cool == 0:
                return 1.0
            return low + (1.0 - low) * down(min(step - decay_start, cool) / cool)

        return factor


#: ``progress in [0, 1] -> 1..0`` and ``-> 0..1``: the shapes of WarmupStableDecay.
_DECAY_SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1.0 - p,
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    "sqrt": lambda p: 1.0 - math.sqrt(p),
}
_WARMUP_SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda q: q,
    "cosine": lambda q: 0.5 * (1.0 - math.cos(math.pi * q)),
    "sqrt": lambda q: 1.0 - math.sqrt(1.0 - q),
}
