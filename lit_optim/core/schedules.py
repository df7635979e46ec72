"""Learning-rate schedules as pure functions of the step.

A schedule is a small frozen dataclass of its arguments. Once the run length is known,
:meth:`Schedule.resolve` turns it into a :data:`FactorFn`, ``step -> factor``, a closed-form
function with no state: the learning rate of a param group at scheduler step ``t`` is
``base_lr * factor(t)``, where ``t = 0`` is the lr of the first optimizer step. Warmup and
:class:`Sequence` are function composition (optax style), so resuming is just restoring
the step and plotting is calling the function.

Conventions shared by every schedule:

- Steps are scheduler steps (optimizer steps, or epochs when ``interval: epoch``), counted
  from 0; factors are finite and ``>= 0``.
- Schedules with an end (``Linear``, ``Cosine``, ``Poly``, ``OneCycle``,
  ``WarmupStableDecay``) reach their final value at their end and stay there: unlike torch,
  no schedule goes back up or raises when stepped past its end.
- ``total``-like arguments left as ``None`` mean "the whole run" (after warmup); such
  schedules report :attr:`Schedule.needs_total`.

Example:
    >>> from lit_optim import Warmup
    >>> f = resolve_factor(Poly(power=2.0), Warmup(steps=2), Horizon(total_steps=12))
    >>> [round(f(t), 3) for t in (0, 1, 2, 7, 12, 99)]  # ramp, then (1 - s/10) ** 2
    [0.0, 0.5, 1.0, 0.25, 0.0, 0.0]

"""

from __future__ import annotations

import abc
import ast
import bisect
import contextlib
import contextvars
import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.expr import compile_expr
from lit_optim.core.imports import import_path

if TYPE_CHECKING:  # config imports this module (a schedule is a config value)
    from lit_optim.core.config import Warmup

__all__ = [
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Exponential",
    "FactorFn",
    "Horizon",
    "InverseSqrt",
    "Lambda",
    "Linear",
    "MultiStep",
    "OneCycle",
    "Poly",
    "Schedule",
    "Sequence",
    "Step",
    "WarmupStableDecay",
    "build_schedule",
    "resolve_factor",
]

#: ``step -> lr multiplier``: pure and closed form (no state, no recursion).
FactorFn = Callable[[int], float]

DEFAULT_KEY = "optim.schedule"
#: Variables available to :class:`Lambda` expressions and functions.
LAMBDA_VARIABLES = ("step", "epoch", "total_steps", "total_epochs", "progress")
_TOTAL_VARIABLES = frozenset({"total_steps", "total_epochs", "progress"})

# Key path of the schedule being built, so that validation in __post_init__ can name
# `optim.groups[2].schedule.init_args.power` when build_schedule is given that key.
_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("lit_optim_schedule_key")


@dataclass(frozen=True)
class Horizon:
    """The length of the run a schedule is resolved on.

    Args:
        total_steps: Scheduler steps in the whole run (``>= 1``), in units of the
            interval (optimizer steps, or epochs when ``interval: epoch``).
        steps_per_epoch: Scheduler steps per epoch (1 when ``interval: epoch``).

    Example:
        >>> Horizon(total_steps=1000, steps_per_epoch=300).total_epochs
        4

    """

    total_steps: int
    steps_per_epoch: int = 1

    def __post_init__(self) -> None:
        for name in ("total_steps", "steps_per_epoch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"Horizon.{name} must be an integer >= 1, got {value!r}")

    @property
    def total_epochs(self) -> int:
        """Epochs in the run, ``ceil(total_steps / steps_per_epoch)``."""
        return -(-self.total_steps // self.steps_per_epoch)


class Schedule(abc.ABC):
    """Base of all schedules: a description that resolves to a :data:`FactorFn`.

    Subclass it (as a frozen dataclass of the init args) to add your own schedule, then
    refer to it by import path in the config (``class_path: my_pkg.MySchedule``).
    """

    @property
    def needs_total(self) -> bool:
        """True when the schedule depends on the run length (to report runs of unknown length)."""
        return False

    @abc.abstractmethod
    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Check the schedule against the run length and return ``step -> factor``.

        Args:
            horizon: Length of the run (or of the segment, inside a :class:`Sequence`).
            key: Config key path of this schedule, for error messages.

        Raises:
            ConfigError: The schedule cannot work on this run length.

        """


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

    Example:
        >>> f = Step(step_size=10, gamma=0.5).resolve(Horizon(100))
        >>> [f(0), f(9), f(10), f(25)]
        [1.0, 1.0, 0.5, 0.25]

    """

    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        _check_number(self, "step_size", low=1, integer=True)
        _check_number(self, "gamma", low=0, low_open=True)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return ``step -> gamma ** (step // step_size)``."""
        gamma, size = self.gamma, self.step_size
        _check_growth(key, gamma, horizon.total_steps // size)
        return lambda step: _power(gamma, step // size, key, step)


@dataclass(frozen=True)
class MultiStep(Schedule):
    """Multiply by ``gamma`` at each milestone, like torch ``MultiStepLR``.

    ``factor(t) = gamma ** (number of milestones <= t)``. Milestones are strictly
    increasing steps ``>= 1`` (torch counts a repeated milestone twice; write the gamma
    you want instead).

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
            if m < 1:
                raise ConfigError(f"{key}[{i}]", f"milestones must be >= 1, got {m!r}")
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
    """Linear from ``start_factor`` to ``end_factor`` over ``total_iters`` steps, then flat.

    ``factor(t) = (start * (T - s) + end * s) / T`` with ``s = min(t, T)`` and
    ``T = total_iters`` (the whole run when ``None``): the closed form of torch ``LinearLR``,
    but the defaults differ: torch ramps 1/3 -> 1 over 5 steps, ours decays 1 -> 0 over
    the run. ``start_factor`` may be 0 (torch requires > 0).

    Example:
        >>> f = Linear().resolve(Horizon(4))
        >>> [f(t) for t in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

    """

    start_factor: float = 1.0
    end_factor: float = 0.0
    total_iters: int | None = None

    def __post_init__(self) -> None:
        _check_number(self, "start_factor", low=0)
        _check_number(self, "end_factor", low=0)
        _check_number(self, "total_iters", low=1, integer=True, optional=True)

    @property
    def needs_total(self) -> bool:
        """True when ``total_iters`` is left to the run length."""
        return self.total_iters is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the linear ramp."""
        start, end = self.start_factor, self.end_factor
        total = self.total_iters or horizon.total_steps

        def factor(step: int) -> float:
            done = min(step, total)
            return (start * (total - done) + end * done) / total

        return factor


@dataclass(frozen=True)
class Cosine(Schedule):
    """Half a cosine from 1 down to ``min_factor`` over ``total`` steps, then flat.

    ``factor(t) = min + (1 - min) * (1 + cos(pi * min(t, T) / T)) / 2`` with ``T = total``
    (the whole run when ``None``): torch ``CosineAnnealingLR`` with ``T_max = T`` and
    ``eta_min = min_factor * base_lr``, except that torch rises again after ``T_max``
    while this stays at ``min_factor``.

    Example:
        >>> f = Cosine(min_factor=0.1).resolve(Horizon(10))
        >>> [round(f(t), 4) for t in (0, 5, 10, 20)]
        [1.0, 0.55, 0.1, 0.1]

    """

    min_factor: float = 0.0
    total: int | None = None

    def __post_init__(self) -> None:
        _check_number(self, "min_factor", low=0)
        _check_number(self, "total", low=1, integer=True, optional=True)

    @property
    def needs_total(self) -> bool:
        """True when ``total`` is left to the run length."""
        return self.total is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the cosine annealing."""
        low = self.min_factor
        total = self.total or horizon.total_steps
        return lambda step: (
            low + (1.0 - low) * (1.0 + math.cos(math.pi * min(step, total) / total)) / 2
        )


@dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Cosine annealing restarted every period (SGDR), like torch ``CosineAnnealingWarmRestarts``.

    Cycle ``i`` lasts ``period * period_mult ** i`` steps; inside it, at step ``c`` of
    ``P``, ``factor = min + (peak_i - min) * (1 + cos(pi * c / P)) / 2`` with
    ``peak_i = max(decay ** i, min_factor)`` (timm's ``cycle_decay``; 1.0 = torch).
    Restarts go on past the end of the run.

    Example:
        >>> f = CosineRestarts(period=4, decay=0.5).resolve(Horizon(100))
        >>> [round(f(t), 4) for t in (0, 2, 4, 6, 8)]
        [1.0, 0.5, 0.5, 0.25, 0.25]

    """

    period: int
    period_mult: int = 1
    min_factor: float = 0.0
    decay: float = 1.0

    def __post_init__(self) -> None:
        _check_number(self, "period", low=1, integer=True)
        _check_number(self, "period_mult", low=1, integer=True)
        _check_number(self, "min_factor", low=0)
        _check_number(self, "decay", low=0, high=1, low_open=True)

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the restarted cosine."""
        period, mult, low, decay = self.period, self.period_mult, self.min_factor, self.decay

        def factor(step: int) -> float:
            if mult == 1:
                cycle, start, length = step // period, (step // period) * period, period
            else:
                # Integer walk over cycles: O(log step), exact like torch's stepping.
                cycle, start, length = 0, 0, period
                while step >= start + length:
                    start += length
                    length *= mult
                    cycle += 1
            peak = max(decay**cycle, low)
            return low + (peak - low) * (1.0 + math.cos(math.pi * (step - start) / length)) / 2

        return factor


@dataclass(frozen=True)
class Poly(Schedule):
    """Polynomial decay to ``min_factor`` over ``total`` steps, then flat.

    ``factor(t) = min + (1 - min) * ((T - min(t, T)) / T) ** power`` with ``T = total`` (the
    whole run when ``None``). With ``min_factor = 0`` this is torch ``PolynomialLR`` with
    ``total_iters = T``, computed in closed form (no drift after millions of steps).

    Example:
        >>> f = Poly(power=0.5).resolve(Horizon(100))
        >>> [f(0), f(75), f(100), f(150)]
        [1.0, 0.5, 0.0, 0.0]

    """

    power: float = 1.0
    min_factor: float = 0.0
    total: int | None = None

    def __post_init__(self) -> None:
        _check_number(self, "power", low=0, low_open=True)
        _check_number(self, "min_factor", low=0, high=1)
        _check_number(self, "total", low=1, integer=True, optional=True)

    @property
    def needs_total(self) -> bool:
        """True when ``total`` is left to the run length."""
        return self.total is None

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the polynomial decay."""
        power, low = self.power, self.min_factor
        total = self.total or horizon.total_steps
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
    Momentum cycling is not done here: lit_optim schedules only drive the lr.

    Example:
        >>> f = OneCycle(pct_start=0.25, anneal="linear").resolve(Horizon(9))
        >>> [round(f(t), 4) for t in (0, 1, 2, 8, 50)]
        [0.04, 0.808, 0.8889, 0.0, 0.0]

    """

    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Literal["cos", "linear"] = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        _check_number(self, "pct_start", low=0, high=1, low_open=True, high_open=True)
        _check_number(self, "div_factor", low=0, low_open=True)
        _check_number(self, "final_div_factor", low=0, low_open=True)
        _check_choice(self, "anneal", ("cos", "linear"))
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
        cosine = self.anneal == "cos"
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

    With ``W = round(warmup * T)`` and ``D = round(decay * T)`` steps of a run of ``T``:
    ``t / W`` for ``t < W``; 1 until ``T - D``; then with ``p = (t - (T - D)) / D``,
    ``min + (1 - min) * s(p)`` where ``s`` is ``1 - p`` (linear), ``(1 + cos(pi p)) / 2``
    (cosine) or ``1 - sqrt(p)`` (sqrt, the "1-sqrt" cooldown). ``min_factor`` from step
    ``T`` on. Same formula as Hugging Face ``get_wsd_schedule``.

    Example:
        >>> f = WarmupStableDecay(warmup=0.1, decay=0.2).resolve(Horizon(100))
        >>> [f(0), f(5), f(10), f(80), f(90), f(100)]
        [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]

    """

    warmup: float = 0.0
    decay: float = 0.1
    min_factor: float = 0.0
    decay_shape: Literal["linear", "cosine", "sqrt"] = "linear"

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
        shape = {
            "linear": lambda p: 1.0 - p,
            "cosine": lambda p: (1.0 + math.cos(math.pi * p)) / 2,
            "sqrt": lambda p: 1.0 - math.sqrt(p),
        }[self.decay_shape]

        def factor(step: int) -> float:
            if step < warm:
                return step / warm
            if step < decay_start or cool == 0:
                return 1.0
            return low + (1.0 - low) * shape(min(step - decay_start, cool) / cool)

        return factor


@dataclass(frozen=True)
class Lambda(Schedule):
    """A custom factor: a safe arithmetic expression or an importable function.

    Exactly one of:

    - ``expr``: an expression (see :func:`lit_optim.core.expr.compile_expr`) of ``step``,
      ``epoch = step // steps_per_epoch``, ``total_steps``, ``total_epochs`` and
      ``progress = step / total_steps``, e.g. ``"0.95 ** epoch"``. Never passed to ``eval``.
    - ``fn``: import path of a callable, ``"my_pkg.schedules.my_factor"``. If its
      parameters are all among the variable names it is called with those as keywords;
      otherwise it must take one positional argument and is called as ``fn(step)``.

    The factor must be a finite number ``>= 0``: it is checked at step 0 when resolving
    (:class:`ConfigError`) and on every call (:class:`ValueError`). Past the end of the run
    the function is evaluated as is (``progress > 1``). Inside a warmup or a
    :class:`Sequence`, ``step`` counts from the start of this schedule's segment and
    ``total_steps`` is the segment's length.

    Example:
        >>> f = Lambda(expr="1 - progress").resolve(Horizon(10))
        >>> [f(0), f(5)]
        [1.0, 0.5]

    """

    expr: str | None = None
    fn: str | None = None
    _compiled: Callable[..., float] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _keywords: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.expr is None) == (self.fn is None):
            raise ConfigError(
                f"{_KEY.get(DEFAULT_KEY)}.init_args",
                "give exactly one of expr (an expression such as '0.95 ** epoch') or fn "
                "(an import path such as my_pkg.schedules.my_factor)",
            )
        if self.expr is not None:
            key = _arg_key("expr")
            compiled = compile_expr(self.expr, key, LAMBDA_VARIABLES)
            keywords = tuple(sorted(_names_in(self.expr) & set(LAMBDA_VARIABLES)))
        else:
            key = _arg_key("fn")
            if not isinstance(self.fn, str):
                raise ConfigError(key, f"expected an import path string, got {self.fn!r}")
            try:
                compiled = import_path(self.fn)
            except ImportError as err:
                raise ConfigError(
                    key, f"cannot import {self.fn!r} ({err}); give an importable module.function"
                ) from None
            if not callable(compiled):
                raise ConfigError(key, f"{self.fn!r} is not callable")
            keywords = _call_style(compiled, key)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_keywords", keywords)

    def __reduce__(self) -> tuple[type[Lambda], tuple[str | None, str | None]]:
        # The compiled function is rebuilt from the text (closures do not pickle).
        return (type(self), (self.expr, self.fn))

    @property
    def needs_total(self) -> bool:
        """True when the expression or function uses total_steps, total_epochs or progress."""
        return bool(_TOTAL_VARIABLES & set(self._keywords or ()))

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Return the custom factor, checked at step 0."""
        arg_key = f"{key}.init_args.{'expr' if self.expr is not None else 'fn'}"
        what = repr(self.expr if self.expr is not None else self.fn)
        compiled, keywords = self._compiled, self._keywords
        assert compiled is not None  # set in __post_init__
        total, per_epoch, epochs = (
            horizon.total_steps,
            horizon.steps_per_epoch,
            horizon.total_epochs,
        )

        def call(step: int) -> Any:
            if keywords is None:
                return compiled(step)
            values = {
                "step": step,
                "epoch": step // per_epoch,
                "total_steps": total,
                "total_epochs": epochs,
                "progress": step / total,
            }
            if self.expr is not None:
                return compiled(**values)
            return compiled(**{k: values[k] for k in keywords})

        def factor(step: int) -> float:
            value = call(step)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{arg_key}: {what} returned {value!r} at step {step}; expected a number"
                ) from None
            if not (math.isfinite(number) and number >= 0):
                raise ValueError(
                    f"{arg_key}: {what} returned {number} at step {step}; "
                    "a factor must be a finite number >= 0"
                )
            return number

        try:
            factor(0)
        except ConfigError:
            raise
        except Exception as err:  # the user's code: report it against the config key
            message = str(err).removeprefix(f"{arg_key}: ")
            raise ConfigError(arg_key, f"fails at step 0: {message}") from err
        return factor


@dataclass(frozen=True)
class Sequence(Schedule):
    """Schedules one after another, joined at step boundaries (optax ``join_schedules``).

    ``schedules[i]`` runs from ``boundaries[i - 1]`` (0 for the first) to
    ``boundaries[i]`` (the end of the run for the last), resolved on its own segment
    length and called with the step counted from its segment start. Children are
    schedule specs like ``optim.schedule`` itself (short name, import path, or
    ``{class_path, init_args}``).

    Example:
        >>> s = Sequence(schedules=["Constant", {"class_path": "Linear"}], boundaries=[4])
        >>> f = s.resolve(Horizon(8))
        >>> [f(t) for t in (0, 3, 4, 6, 8)]
        [1.0, 1.0, 1.0, 0.5, 0.0]

    """

    schedules: tuple[Schedule, ...] | list[Any]
    boundaries: tuple[int, ...] | list[int]

    def __post_init__(self) -> None:
        key = _KEY.get(DEFAULT_KEY)
        specs = self.schedules
        if isinstance(specs, str | bytes | Mapping) or not isinstance(specs, list | tuple):
            raise ConfigError(
                f"{key}.init_args.schedules", f"expected a list of schedules, got {specs!r}"
            )
        if not specs:
            raise ConfigError(f"{key}.init_args.schedules", "needs at least one schedule")
        children = []
        for i, spec in enumerate(specs):
            child_key = f"{key}.init_args.schedules[{i}]"
            if spec is None:
                raise ConfigError(child_key, "expected a schedule, got null")
            child = build_schedule(spec, child_key)
            assert child is not None  # spec is not None
            children.append(child)
        object.__setattr__(self, "schedules", tuple(children))
        bkey = f"{key}.init_args.boundaries"
        bounds = self.boundaries
        if isinstance(bounds, str | bytes) or not isinstance(bounds, list | tuple):
            raise ConfigError(bkey, f"expected a list of steps, got {bounds!r}")
        if len(bounds) != len(children) - 1:
            raise ConfigError(
                bkey,
                f"expected {len(children) - 1} boundaries for {len(children)} schedules "
                f"(one between each pair), got {len(bounds)}",
            )
        for i, b in enumerate(bounds):
            if isinstance(b, bool) or not isinstance(b, numbers.Real) or not float(b).is_integer():
                raise ConfigError(f"{bkey}[{i}]", f"expected an integer step, got {b!r}")
        ints = tuple(int(b) for b in bounds)
        previous = 0
        for i, b in enumerate(ints):
            if b <= previous:
                raise ConfigError(
                    f"{bkey}[{i}]",
                    f"boundaries must be strictly increasing and > 0, got {list(ints)}",
                )
            previous = b
        object.__setattr__(self, "boundaries", ints)

    @property
    def needs_total(self) -> bool:
        """True when the last schedule needs the run length (the others get fixed segments)."""
        return self.schedules[-1].needs_total  # type: ignore[union-attr]

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Resolve every child on its segment and join them."""
        total = horizon.total_steps
        if self.boundaries and self.boundaries[-1] >= total:
            raise ConfigError(
                f"{key}.init_args.boundaries",
                f"boundary {self.boundaries[-1]} is not inside the run ({total} steps); "
                f"boundaries must be < {total}",
            )
        starts = (0, *self.boundaries)
        ends = (*self.boundaries, total)
        parts = [
            child.resolve(
                Horizon(end - start, horizon.steps_per_epoch), f"{key}.init_args.schedules[{i}]"
            )
            for i, (child, start, end) in enumerate(zip(self.schedules, starts, ends, strict=True))
        ]
        boundaries = self.boundaries

        def factor(step: int) -> float:
            i = bisect.bisect_right(boundaries, step)
            return parts[i](step - starts[i])

        return factor


_SCHEDULES: tuple[type[Schedule], ...] = (
    Constant,
    Step,
    MultiStep,
    Exponential,
    Linear,
    Cosine,
    CosineRestarts,
    Poly,
    OneCycle,
    InverseSqrt,
    WarmupStableDecay,
    Lambda,
    Sequence,
)
_BY_NAME = {cls.__name__.lower(): cls for cls in _SCHEDULES}


def build_schedule(
    spec: Schedule | str | Mapping[str, Any] | None, key: str = DEFAULT_KEY
) -> Schedule | None:
    """Build a schedule from its config spec.

    Args:
        spec: ``None``; a :class:`Schedule` (returned as is) or Schedule class; a short
            name (``"Poly"``, case-insensitive, ``_`` / ``-`` ignored) or the import path
            of a Schedule subclass (yours too); or ``{"class_path": ..., "init_args": {...}}``.
        key: Config key path of the spec, for error messages.

    Returns:
        The schedule, or ``None`` for ``None``.

    Raises:
        ConfigError: Unknown class, unknown or missing argument, or an invalid value,
            with the key path of the offending entry.

    Example:
        >>> build_schedule({"class_path": "poly", "init_args": {"power": 0.9}})
        Poly(power=0.9, min_factor=0.0, total=None)

    """
    if spec is None or isinstance(spec, Schedule):
        return spec
    if callable(getattr(spec, "as_dict", None)):  # a jsonargparse Namespace (nested in YAML)
        spec = spec.as_dict()
    if isinstance(spec, type) and issubclass(spec, Schedule):
        return _construct(spec, {}, key)
    if isinstance(spec, str):
        return _construct(_find_class(spec, key), {}, key)
    if not isinstance(spec, Mapping):
        raise ConfigError(
            key,
            f"expected a schedule name or {{class_path, init_args}}, got {type(spec).__name__} "
            f"{spec!r} (valid: {_valid_names()})",
        )
    for k in spec:
        if k not in ("class_path", "init_args"):
            raise ConfigError(
                f"{key}.{k}",
                f"unknown key{closest(str(k), ['class_path', 'init_args'])} "
                "(a schedule is {class_path: ..., init_args: {...}})",
            )
    class_path = spec.get("class_path")
    if isinstance(class_path, type) and issubclass(class_path, Schedule):
        cls = class_path
    elif isinstance(class_path, str):
        cls = _find_class(class_path, f"{key}.class_path")
    else:
        raise ConfigError(
            f"{key}.class_path", f"missing or not a string; give one of {_valid_names()}"
        )
    init_args = spec.get("init_args") or {}
    if not isinstance(init_args, Mapping):
        raise ConfigError(f"{key}.init_args", f"expected a mapping, got {init_args!r}")
    return _construct(cls, init_args, key)


def resolve_factor(
    schedule: Schedule | None,
    warmup: Warmup | None,
    horizon: Horizon,
    key: str = DEFAULT_KEY,
    warmup_key: str = "optim.warmup",
) -> FactorFn:
    """Resolve a schedule with an optional warmup in front into one ``step -> factor``.

    A warmup of ``W`` steps (``steps``; ``epochs * steps_per_epoch`` or
    ``fraction * total_steps``, rounded half up) comes first: the schedule is resolved on
    the remaining ``total_steps - W`` steps and shifted by ``W``. During warmup the factor
    is ``schedule(0) * w(t)``, ``w`` going from ``start_factor`` towards 1 at ``t = W``:
    linear ``s + (1 - s) * t / W``, exponential ``s * (1 / s) ** (t / W)``, or constant
    ``s``. ``W = 0`` means no warmup.

    Args:
        schedule: The main schedule; ``None`` is a constant factor of 1.
        warmup: The warmup, or ``None``.
        horizon: Length of the run.
        key: Config key path of the schedule.
        warmup_key: Config key path of the warmup.

    Returns:
        ``step -> factor``.

    Raises:
        ConfigError: The warmup is not shorter than the run, or the schedule does not fit
            the run.

    Example:
        >>> from lit_optim import Warmup
        >>> f = resolve_factor(None, Warmup(steps=4, start_factor=0.2), Horizon(10))
        >>> [round(f(t), 2) for t in range(6)]
        [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]

    """
    main_schedule = Constant() if schedule is None else schedule
    steps = 0 if warmup is None else _warmup_steps(warmup, horizon, warmup_key)
    if steps == 0:
        return main_schedule.resolve(horizon, key)
    assert warmup is not None
    total = horizon.total_steps
    if steps >= total:
        raise ConfigError(
            warmup_key,
            f"warmup of {steps} steps is not shorter than the run ({total} steps); "
            "use fewer steps, epochs or a smaller fraction, or a longer run",
        )
    main = main_schedule.resolve(Horizon(total - steps, horizon.steps_per_epoch), key)
    peak = main(0)
    start = float(warmup.start_factor)
    if warmup.mode == "linear":

        def ramp(step: int) -> float:
            return start + (1.0 - start) * step / steps

    elif warmup.mode == "exponential":

        def ramp(step: int) -> float:
            return start * (1.0 / start) ** (step / steps)

    else:

        def ramp(step: int) -> float:
            return start

    def factor(step: int) -> float:
        if step >= steps:
            return main(step - steps)
        return peak * ramp(step)

    return factor


def _warmup_steps(warmup: Warmup, horizon: Horizon, key: str) -> int:
    """Warmup length in scheduler steps."""
    warmup.validate(key)
    if warmup.steps is not None:
        return int(warmup.steps)
    if warmup.epochs is not None:
        return _round(warmup.epochs * horizon.steps_per_epoch)
    assert warmup.fraction is not None  # validate() ensures exactly one is given
    return _round(warmup.fraction * horizon.total_steps)


def _round(x: float) -> int:
    """Round half up (Python's round() goes to even, which surprises in configs)."""
    return math.floor(x + 0.5)


# --- building from config ---------------------------------------------------------------


def _valid_names() -> str:
    names = ", ".join(cls.__name__ for cls in _SCHEDULES)
    return f"{names}, or the import path of a Schedule subclass or a torch LRScheduler"


def _find_class(name: str, key: str) -> type[Schedule]:
    """Short name (case-insensitive) or import path -> Schedule subclass."""
    normalised = name.strip().lower().replace("_", "").replace("-", "")
    if normalised in _BY_NAME:
        return _BY_NAME[normalised]
    if "." not in name:
        raise ConfigError(
            key, f"unknown schedule {name!r}{_closest_name(normalised)} (valid: {_valid_names()})"
        )
    try:
        obj = import_path(name)
    except ImportError as err:
        tail = name.rsplit(".", 1)[-1].lower()
        raise ConfigError(
            key, f"cannot import {name!r} ({err}){_closest_name(tail)} (valid: {_valid_names()})"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, Schedule)):
        raise ConfigError(
            key, f"{name!r} is not a lit_optim Schedule subclass (valid: {_valid_names()})"
        )
    return obj


def _closest_name(name: str) -> str:
    """``"; did you mean 'Poly'?"`` for a (normalised, lower-case) unknown name."""
    matches = closest(name.lower(), _BY_NAME)
    for low, cls in _BY_NAME.items():
        matches = matches.replace(repr(low), repr(cls.__name__))
    return matches


def _construct(cls: type[Schedule], init_args: Mapping[str, Any], key: str) -> Schedule:
    """Instantiate ``cls`` with config-path errors for unknown, missing or invalid args."""
    params, required = _init_params(cls)
    for arg in init_args:
        if arg not in params:
            raise ConfigError(
                f"{key}.init_args.{arg}",
                f"unknown argument of {cls.__name__}{closest(str(arg), params)} "
                f"(valid: {', '.join(params) or 'none'})",
            )
    for arg in required:
        if arg not in init_args:
            raise ConfigError(
                f"{key}.init_args.{arg}",
                f"missing required argument of {cls.__name__} (arguments: {', '.join(params)})",
            )
    with _key_context(key):
        try:
            return cls(**init_args)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{key}.init_args", f"{cls.__name__}: {err}") from err


def _init_params(cls: type[Schedule]) -> tuple[list[str], list[str]]:
    """(all init argument names, required ones) of a Schedule class."""
    if dataclasses.is_dataclass(cls):
        fields = [f for f in dataclasses.fields(cls) if f.init]
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        return [f.name for f in fields], required
    sig = inspect.signature(cls)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = [p for p in sig.parameters.values() if p.kind in kinds]
    return [p.name for p in params], [p.name for p in params if p.default is p.empty]


@contextlib.contextmanager
def _key_context(key: str) -> Iterator[None]:
    token = _KEY.set(key)
    try:
        yield
    finally:
        _KEY.reset(token)


def _call_style(fn: Callable[..., Any], key: str) -> tuple[str, ...] | None:
    """Keywords to call a Lambda fn with, or None to call it as fn(step)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # builtins without a signature: fn(step)
    params = list(sig.parameters.values())
    named = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    required = [
        p
        for p in params
        if p.default is p.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params) and not required:
        return LAMBDA_VARIABLES
    if (
        named
        and all(n in LAMBDA_VARIABLES for n in named)
        and all(p.kind is not inspect.Parameter.POSITIONAL_ONLY for p in required)
    ):
        return tuple(named)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    takes_one = len(required) == 1 and required[0].kind in positional
    takes_any = not required and any(
        p.kind in positional or p.kind is inspect.Parameter.VAR_POSITIONAL for p in params
    )
    if takes_one or takes_any:
        return None
    raise ConfigError(
        key,
        f"cannot call {getattr(fn, '__qualname__', fn)}{sig}; a schedule function takes one "
        f"positional step argument, or keyword arguments among {', '.join(LAMBDA_VARIABLES)}",
    )


def _names_in(text: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(n, ast.Name)}


# --- validation helpers ---------------------------------------------------------------


def _arg_key(name: str) -> str:
    return f"{_KEY.get(DEFAULT_KEY)}.init_args.{name}"


def _check_number(
    obj: Schedule,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Validate a numeric init arg in place (ints become ints, other numbers floats)."""
    value = getattr(obj, name)
    key = _arg_key(name)
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(key, f"expected {kind}, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ConfigError(key, f"must be finite, got {value!r}")
    if integer and not float(value).is_integer():
        raise ConfigError(key, f"expected {kind}, got {value!r}")
    number: float = int(value) if integer else float(value)
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        if low is not None and high is not None:
            span = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            span = f"{'>' if low_open else '>='} {low:g}"
        else:
            span = f"{'<' if high_open else '<='} {high:g}"
        raise ConfigError(key, f"must be {span}, got {value!r}")
    object.__setattr__(obj, name, number)


def _check_choice(obj: Schedule, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in choices:
        raise ConfigError(
            _arg_key(name),
            f"{value!r} is not one of {', '.join(choices)}{closest(str(value), choices)}",
        )


def _check_bool(obj: Schedule, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, bool):
        raise ConfigError(_arg_key(name), f"expected true or false, got {value!r}")


def _check_growth(key: str, gamma: float, times: int) -> None:
    """Refuse a gamma > 1 that overflows within the run."""
    if gamma > 1 and times * math.log(gamma) > 700:
        raise ConfigError(
            f"{key}.init_args.gamma",
            f"gamma={gamma:g} grows the lr past 1e300 within the run ({times} decays); "
            "use gamma <= 1 or a shorter run",
        )


def _power(gamma: float, times: int, key: str, step: int) -> float:
    try:
        return gamma**times
    except OverflowError:
        raise ValueError(f"{key}: factor {gamma:g} ** {times} overflows at step {step}") from None
