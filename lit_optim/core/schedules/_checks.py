"""Validation helpers shared by the schedule classes: numbers, choices and the key path."""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.schedules._base import DEFAULT_KEY

if TYPE_CHECKING:
    from lit_optim.core.schedules._base import Schedule


# Key path of the schedule being built, so that validation in __post_init__ can name
# `optim.groups[2].schedule.init_args.power` when build_schedule is given that key.
_KEY: contextvars.ContextVar[str] = contextvars.ContextVar("lit_optim_schedule_key")


@contextlib.contextmanager
def _key_context(key: str) -> Iterator[None]:
    token = _KEY.set(key)
    try:
        yield
    finally:
        _KEY.reset(token)


def _round(x: float) -> int:
    """Round half up (Python's round() goes to even, which surprises in configs)."""
    return math.floor(x + 0.5)


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
