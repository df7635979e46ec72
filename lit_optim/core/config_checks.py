"""Checks of values in the ``optim:`` section: types, numbers, choices, specs.

Each raises :class:`~lit_optim.core.errors.ConfigError` whose key path names the value,
for the dataclasses of :mod:`lit_optim.core.config` and :mod:`lit_optim.core.config_values`.

Example:
    >>> check_number("optim.warmup.steps", 10, minimum=0, integer=True)
    >>> check_number("optim.warmup.steps", -1, minimum=0, integer=True)
    Traceback (most recent call last):
    ...
    lit_optim.core.errors.ConfigError: optim.warmup.steps: must be >= 0, got -1

"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from lit_optim.core.errors import ConfigError, closest

__all__ = [
    "LARGEST",
    "check_below_largest",
    "check_choice",
    "check_finite",
    "check_ndim",
    "check_number",
    "check_optimizer_spec",
    "check_strings",
    "check_type",
    "rekey",
]


def rekey(err: ConfigError, old: str, new: str) -> ConfigError:
    """The same error with the key prefix ``old`` replaced by ``new``."""
    if err.key == old or err.key.startswith((f"{old}.", f"{old}[", f"{old} ")):
        return ConfigError(new + err.key[len(old) :], err.reason)
    return err


def check_optimizer_spec(key: str, spec: Any) -> None:
    """Raise :class:`ConfigError` unless ``spec`` has the form of an optimizer spec.

    Args:
        key: Where the spec sits (``optim.optimizer``, ``optim.groups[1].optimizer``).
        spec: A class path / short name, a class, or ``{class_path, init_args}``.

    """
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"class_path", "init_args"}
        if unknown:
            raise ConfigError(
                f"{key}.{sorted(unknown)[0]}",
                "unknown key; an optimizer is {class_path: ..., init_args: {...}}",
            )
        if not isinstance(spec.get("class_path"), str):
            raise ConfigError(
                f"{key}.class_path", "missing; give an optimizer class such as torch.optim.AdamW"
            )
        init_args = spec.get("init_args", {}) or {}
        if not isinstance(init_args, Mapping):
            raise ConfigError(f"{key}.init_args", "must be a mapping")
        for name, value in init_args.items():
            check_finite(f"{key}.init_args.{name}", value)
    elif not isinstance(spec, str) and not isinstance(spec, type):
        raise ConfigError(
            key,
            f"expected a class path or {{class_path, init_args}}, got {type(spec).__name__}",
        )


def check_finite(key: str, value: Any) -> None:
    """Refuse a NaN or infinite number, also inside a list (``betas: [.nan, 0.999]``)."""
    values = value if isinstance(value, list | tuple) else [value]
    for i, item in enumerate(values):
        if isinstance(item, float) and not math.isfinite(item):
            where = f"{key}[{i}]" if isinstance(value, list | tuple) else key
            raise ConfigError(where, f"must be finite, got {item!r}")


def check_ndim(key: str, value: Any) -> None:
    """Raise unless ``value`` is ``None``, a tensor dimension count or a list of them."""
    if value is None:
        return
    values = value if isinstance(value, list | tuple) else [value]
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < 0]
    if bad or not values:
        raise ConfigError(
            key,
            f"expected a tensor dimension count or a list of them, such as 2 or [2, 3], "
            f"got {value!r}",
        )


def check_type(key: str, value: Any, kind: type, what: str, *, optional: bool = False) -> None:
    """Raise unless ``value`` is a ``kind`` (or ``None`` if ``optional``); ``what`` names it."""
    if (value is None and optional) or isinstance(value, kind):
        return
    raise ConfigError(key, f"expected {what}, got {type(value).__name__} {value!r}")


def check_strings(key: str, value: Any, example: str) -> None:
    """Raise unless ``value`` is a list of strings; ``example`` shows one."""
    if not isinstance(value, list | tuple):
        raise ConfigError(
            key, f"expected a list of strings ({example}), got {type(value).__name__} {value!r}"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(
                f"{key}[{i}]", f"expected a string ({example}), got {type(item).__name__} {item!r}"
            )


def check_number(
    key: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Refuse anything but a finite number above ``minimum`` (``None`` only if ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        what = "an integer" if integer else "a number"
        got = "null" if value is None else f"{type(value).__name__} {value!r}"
        raise ConfigError(key, f"expected {what}, got {got}")
    if not math.isfinite(value):
        raise ConfigError(key, f"must be finite, got {value!r}")
    if integer and not float(value).is_integer():
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        op = ">" if strict else ">="
        raise ConfigError(key, f"must be {op} {minimum:g}, got {value!r}")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices`` (naming the closest)."""
    if value not in choices:
        raise ConfigError(
            key, f"{value!r} is not one of {', '.join(choices)}{closest(str(value), choices)}"
        )


#: The largest value lit_optim lets a group's lr, momentum or weight decay take: close
#: to the float limit (1.8e308), a product in the optimizer's step (lr * update) overflows.
LARGEST = 1e300


def check_below_largest(key: str, value: Any, how: str) -> None:
    """Raise unless ``value``, a product of the section's numbers, is at most :data:`LARGEST`.

    Args:
        key: The key path of the value that made it large.
        value: The product.
        how: How it was made, for the message (``"lr 10 times lr_scale 1e+308"``).

    """
    if isinstance(value, int | float) and not abs(value) <= LARGEST:
        raise ConfigError(key, f"{how} is {value:g}, past {LARGEST:g}")
