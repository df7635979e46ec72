"""From a config spec (short name, import path or ``{class_path, init_args}``) to a schedule."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.imports import import_path
from lit_optim.core.schedules._base import (
    DEFAULT_KEY,
    Schedule,
    find_registered,
    normalise_name,
    registered,
)
from lit_optim.core.schedules._checks import _key_context
from lit_optim.core.schedules.vocabulary import unknown_arguments_message

__all__ = ["build_schedule"]


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
        Poly(power=0.9, min_factor=0.0, total=None, k_decay=1.0)

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


# --- building from config ---------------------------------------------------------------


def _valid_names() -> str:
    names = ", ".join(registered())
    return f"{names}, or the import path of a Schedule subclass or a torch LRScheduler"


def _find_class(name: str, key: str) -> type[Schedule]:
    """Short name (case-insensitive) or import path -> Schedule subclass."""
    found = find_registered(name)
    if found is not None:
        return found
    normalised = normalise_name(name)
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
    names = {normalise_name(short): short for short in registered()}
    matches = closest(name.lower(), names)
    for low, short in names.items():
        matches = matches.replace(repr(low), repr(short))
    return matches


def _construct(cls: type[Schedule], init_args: Mapping[str, Any], key: str) -> Schedule:
    """Instantiate ``cls`` with config-path errors for unknown, missing or invalid args."""
    params, required = _init_params(cls)
    # Every wrong argument in one message, torch / timm / HF names with their conversion.
    unknown = unknown_arguments_message(cls, init_args, params)
    if unknown is not None:
        wrong = [a for a in init_args if a not in params]
        raise ConfigError(f"{key}.init_args" + (f".{wrong[0]}" if len(wrong) == 1 else ""), unknown)
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
