"""Decays that need no end: constant, step-wise, multi-step and exponential factors."""

from __future__ import annotations

import bisect
import numbers
from dataclasses import dataclass

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules._base import DEFAULT_KEY, FactorFn, Horizon, Schedule
from lit_optim.core.schedules._checks import (
    _arg_key,
    _check_growth,
    _check_number,
    _power,
)

__all__ = [
    "Constant",
    "Exponential",
    "MultiStep",
    "Step",
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
