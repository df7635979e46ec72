"""Arguments of an optimizer class checked against the class: names, types, values.

torch checks few of its optimizers' arguments when it builds one, and none of a param
group's own options: ``maximize: "x"`` or ``amsgrad: 1`` fail inside a fused kernel on
the first step, ``betas: 0.9`` in a group's options fails there too, and
``line_search_fn: "x"`` fails in ``LBFGS.step``. Here every value is checked against the
type its parameter is annotated with (or, without an annotation, the type of its
default), and a group's options are also tried on a one-element copy of the optimizer,
so torch's own range checks (``betas[0] < 1``, ``momentum >= 0``) name the group.

Example:
    >>> import torch
    >>> optimizer_defaults(torch.optim.SGD, {"maximize": 1}, key="sgd")
    Traceback (most recent call last):
    ...
    lit_optim.core.errors.ConfigError: sgd.init_args.maximize: expected true or false, got int 1

"""

from __future__ import annotations

import inspect
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any

import torch

from lit_optim.core.errors import ConfigError, closest

__all__ = [
    "check_group_options",
    "check_option_names",
    "optimizer_defaults",
    "signature",
    "signature_of_step",
]

KEY = "optim.optimizer"

#: String arguments torch takes any value of at construction and refuses in ``step``.
CHOICES: dict[tuple[type, str], tuple[str | None, ...]] = {
    (torch.optim.LBFGS, "line_search_fn"): (None, "strong_wolfe"),
}

#: Arguments that choose how the step runs on a device; the one-element trial copy of a
#: group's options (on the CPU) leaves them out, their types are still checked.
_DEVICE_FLAGS = ("fused", "foreach", "capturable")


def signature(cls: type) -> dict[str, inspect.Parameter]:
    """The parameters of ``cls.__init__`` after ``self`` and ``params``."""
    params = dict(inspect.signature(cls.__init__).parameters)
    for name in ("self", "params"):
        params.pop(name, None)
    return params


def signature_of_step(cls: type) -> dict[str, inspect.Parameter]:
    """The parameters of ``cls.step`` after ``self``."""
    step = inspect.unwrap(cls.step)
    params = dict(inspect.signature(step).parameters)
    params.pop("self", None)
    return params


def optimizer_defaults(
    cls: type[torch.optim.Optimizer], init_args: Mapping[str, Any], key: str = KEY
) -> dict:
    """The optimizer's effective defaults: its signature defaults overlaid with ``init_args``.

    Raises:
        ConfigError: An argument the class does not take, a missing required one, or a
            value of another type than the parameter's (a string where it takes a number,
            a number where it takes true or false).

    """
    params = signature(cls)
    hints = _hints(cls)
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    defaults: dict[str, Any] = {}
    for name in names:
        default = params[name].default
        if default is not inspect.Parameter.empty:
            defaults[name] = default
    for name, value in init_args.items():
        if name not in names and not accepts_kwargs:
            raise ConfigError(
                f"{key}.init_args.{name}",
                f"not an option of {cls.__name__}{closest(name, names)} "
                f"(valid: {', '.join(names)})",
            )
        _check_value(f"{key}.init_args.{name}", value, cls, name, hints, defaults)
        defaults[name] = value
    missing = [n for n in names if n not in defaults]
    if missing:
        raise ConfigError(
            f"{key}.init_args.{missing[0]}", f"{cls.__name__} needs a value for {missing[0]!r}"
        )
    if not isinstance(defaults.get("lr"), int | float) or isinstance(defaults.get("lr"), bool):
        raise ConfigError(f"{key}.init_args.lr", f"{cls.__name__} needs a numeric lr")
    if defaults["lr"] <= 0:
        raise ConfigError(f"{key}.init_args.lr", f"must be > 0, got {defaults['lr']!r}")
    return defaults


def check_option_names(
    options: Mapping[str, Any], defaults: Mapping[str, Any], optimizer_name: str, key: str
) -> None:
    """Raise on an option that is not among the optimizer's ``defaults``.

    Args:
        options: A group rule's ``options``.
        defaults: The optimizer's effective defaults (:func:`optimizer_defaults`).
        optimizer_name: Its class name, for the message.
        key: The rule's key path (``optim.groups[1]``).

    """
    valid = [k for k in defaults if k != "params"]
    for name in options:
        if name not in defaults:
            raise ConfigError(
                f"{key}.options.{name}",
                f"{name!r} is not an option of {optimizer_name}{closest(str(name), valid)} "
                f"(valid: {', '.join(valid)})",
            )


def check_group_options(
    cls: type[torch.optim.Optimizer],
    init_args: Mapping[str, Any],
    defaults: Mapping[str, Any],
    options: Mapping[str, Any],
    key: str,
) -> None:
    """Check a group rule's ``options`` for the optimizer that takes its parameters.

    Names and types as :func:`optimizer_defaults` checks ``init_args``; then the options
    are tried on a one-element optimizer built with ``init_args`` and them, so torch's own
    checks of its arguments (which it runs on the constructor's, never on a group's) name
    the rule. The trial only blames the options: if ``init_args`` alone are refused on it
    (an optimizer that takes no such tensor), nothing is said here.

    Args:
        cls: The optimizer class (the rule's own, else the top-level one).
        init_args: Its init args.
        defaults: Its effective defaults (:func:`optimizer_defaults` of ``init_args``).
        options: The rule's ``options``.
        key: The rule's key path (``optim.groups[1]``).

    Raises:
        ConfigError: At ``<key>.options.<name>``, or ``<key>.options`` for a refusal by torch.

    """
    if not options:
        return
    check_option_names(options, defaults, cls.__name__, key)
    hints = _hints(cls)
    for name, value in options.items():
        _check_value(f"{key}.options.{name}", value, cls, name, hints, defaults)
    base = {k: v for k, v in init_args.items() if k not in _DEVICE_FLAGS}
    with_options = {**base, **{k: v for k, v in options.items() if k not in _DEVICE_FLAGS}}
    probe = torch.zeros(1, 1)
    try:
        cls([probe], **base)
    except (ValueError, TypeError, RuntimeError):
        return
    try:
        cls([probe], **with_options)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(f"{key}.options", f"{cls.__name__} refuses them: {err}") from None


def _hints(cls: type) -> dict[str, Any]:
    """Resolved annotations of ``cls.__init__`` (``{}`` where they cannot be resolved)."""
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # a third-party class's annotations may name what is not importable
        return {}


def _check_value(
    key: str, value: Any, cls: type, name: str, hints: Mapping[str, Any], defaults: Mapping
) -> None:
    """Refuse ``value`` unless it fits the annotation of ``name`` (else its default's type)."""
    choices = CHOICES.get((cls, name))
    if choices is not None and value not in choices:
        shown = ", ".join("null" if c is None else repr(c) for c in choices)
        raise ConfigError(key, f"{value!r} is not one of {shown}")
    default = defaults.get(name)
    hint = hints.get(name)
    if isinstance(default, tuple) and not (
        isinstance(value, list | tuple)
        and len(value) == len(default)
        and (hint is None or _fits(value, hint))
    ):
        raise ConfigError(
            key, f"expected a list of {len(default)} like {list(default)}, got {value!r}"
        )
    if hint is None and default is not None:
        # Without an annotation, a default of 1 says "a number", not "an integer".
        hint = float if type(default) is int else type(default)
    if hint is None:
        return
    want = _expected(hint)
    if want is not None and not _fits(value, hint):
        raise ConfigError(key, f"expected {want}, got {type(value).__name__} {value!r}")


def _options(hint: Any) -> tuple[Any, ...]:
    """The members of a union annotation, else the annotation alone."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _expected(hint: Any) -> str | None:
    """The annotation in a YAML user's words, or ``None`` if it is not checked here."""
    words = []
    for option in _options(hint):
        if option is bool:
            words += ["true", "false"]
        elif option is int:
            words.append("an integer")
        elif option in (float, torch.Tensor):
            words.append("a number")
        elif option is str:
            words.append("a string")
        elif option is type(None):
            words.append("null")
        elif typing.get_origin(option) is tuple or option is tuple:
            args = typing.get_args(option)
            fixed = args and Ellipsis not in args
            words.append(f"a list of {len(args)} numbers" if fixed else "a list")
        else:
            return None  # callables, classes of its own: the optimizer checks them
    unique = list(dict.fromkeys(words))
    return " or ".join(unique) if len(unique) < 3 else f"{', '.join(unique[:-1])} or {unique[-1]}"


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits ``hint`` (lists stand for tuples, ints for floats)."""
    return any(_fits_one(value, option) for option in _options(hint))


def _fits_one(value: Any, option: Any) -> bool:
    if option is type(None):
        return value is None
    if option is bool:
        return isinstance(value, bool)
    if option is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if option in (float, torch.Tensor):
        return isinstance(value, numbers.Real | torch.Tensor) and not isinstance(value, bool)
    if option is str:
        return isinstance(value, str)
    if typing.get_origin(option) is tuple or option is tuple:
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(option)
        if not args or Ellipsis in args:
            return True
        return len(value) == len(args) and all(
            _fits(v, a) for v, a in zip(value, args, strict=True)
        )
    return True
