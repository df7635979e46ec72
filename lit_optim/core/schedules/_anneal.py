"""Annealing to a final factor at the end of the run: Linear, Cosine, Poly, CosineRestarts."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules._base import DEFAULT_KEY, FactorFn, Horizon, Schedule
from lit_optim.core.schedules._checks import (
    _arg_key,
    _check_number,
)

__all__ = [
    "Cosine",
    "CosineRestarts",
    "Linear",
    "Poly",
]


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
