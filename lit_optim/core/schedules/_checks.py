"""Validation helpers shared by the schedule classes: numbers, choices and the key path."""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from lit_optim.core.config_checks import check_number
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


#: Numeric arguments of torch's own schedulers (``torch.optim.lr_scheduler``), by name:
#: ``(lowest value, whether the lowest itself is refused, integer)``. torch checks few of
#: them, and a NaN, a negative ``eta_min`` or a ``step_size`` of 0 only shows as a NaN or
#: negative lr, or a ZeroDivisionError, in the middle of training. Lists (a ``max_lr`` per
#: group) are checked element by element; ``null`` leaves an argument to its default.
TORCH_SCHEDULER_ARGS: dict[str, tuple[float, bool, bool]] = {
    "gamma": (0, True, False),
    "eta_min": (0, False, False),
    "min_lr": (0, False, False),
    "base_lr": (0, False, False),
    "max_lr": (0, True, False),
    "base_momentum": (0, False, False),
    "max_momentum": (0, False, False),
    "power": (0, False, False),
    "factor": (0, False, False),
    "start_factor": (0, False, False),
    "end_factor": (0, False, False),
    "div_factor": (0, True, False),
    "final_div_factor": (0, True, False),
    "pct_start": (0, False, False),
    "threshold": (0, False, False),
    "eps": (0, False, False),
    "step_size_up": (0, True, False),
    "step_size_down": (0, True, False),
    "step_size": (1, False, True),
    "T_max": (1, False, True),
    "T_0": (1, False, True),
    "T_mult": (1, False, True),
    "total_iters": (1, False, True),
    "total_steps": (1, False, True),
    "epochs": (1, False, True),
    "steps_per_epoch": (1, False, True),
    "patience": (0, False, True),
    "cooldown": (0, False, True),
    "milestones": (1, False, True),
}


def check_torch_scheduler_args(name: str, init_args: Mapping[str, Any], key: str) -> None:
    """Refuse a torch scheduler argument that would make a NaN, negative or failing lr.

    Args:
        name: The scheduler class name (for the message).
        init_args: The arguments as configured.
        key: Config key path of the schedule (``optim.schedule``).

    Raises:
        ConfigError: ``last_epoch`` (the checkpoint restores the step), a value that is not
            a finite number, or one below :data:`TORCH_SCHEDULER_ARGS`' bound.

    """
    if "last_epoch" in init_args:
        raise ConfigError(
            f"{key}.init_args.last_epoch",
            f"leave it out: {name} starts at step 0 and resuming (ckpt_path) restores its step",
        )
    for arg, value in init_args.items():
        rule = TORCH_SCHEDULER_ARGS.get(arg)
        if rule is None or value is None:
            continue
        low, strict, integer = rule
        arg_key = f"{key}.init_args.{arg}"
        items = enumerate(value) if isinstance(value, list | tuple) else [(None, value)]
        for i, item in items:
            where = arg_key if i is None else f"{arg_key}[{i}]"
            check_number(where, item, minimum=low, strict=strict, integer=integer)
