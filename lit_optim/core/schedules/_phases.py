"""Schedules in phases: OneCycle (up, then down), InverseSqrt (flat, then 1/sqrt), WSD."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules._base import DEFAULT_KEY, FactorFn, Horizon, Schedule
from lit_optim.core.schedules._checks import (
    _arg_key,
    _check_bool,
    _check_choice,
    _check_number,
    _round,
)

__all__ = [
    "InverseSqrt",
    "OneCycle",
    "WarmupStableDecay",
]


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
