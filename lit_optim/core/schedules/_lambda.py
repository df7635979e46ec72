"""The custom schedule: :class:`Lambda`, a safe expression or an importable function of the step."""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lit_optim.core.errors import ConfigError
from lit_optim.core.expr import compile_expr
from lit_optim.core.imports import import_path
from lit_optim.core.schedules._base import DEFAULT_KEY, FactorFn, Horizon, Schedule
from lit_optim.core.schedules._checks import _KEY, _arg_key

__all__ = ["LAMBDA_VARIABLES", "Lambda"]

#: Variables available to :class:`Lambda` expressions and functions.
LAMBDA_VARIABLES = ("step", "epoch", "total_steps", "total_epochs", "progress")
_TOTAL_VARIABLES = frozenset({"total_steps", "total_epochs", "progress"})


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

    The factor must be a finite number ``>= 0``: it is checked when resolving, at every
    step of the run (or at :data:`CHECKED_STEPS` steps spread over a longer one)
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
        """Return the custom factor, checked over the run (:func:`steps_to_check`)."""
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

        step = 0
        try:
            for step in steps_to_check(total):
                factor(step)
        except ConfigError:
            raise
        except Exception as err:  # the user's code: report it against the config key
            message = str(err).removeprefix(f"{arg_key}: ")
            raise ConfigError(arg_key, f"fails at step {step}: {message}") from err
        return factor


#: A Lambda is checked at every step of runs up to this long, else at this many steps
#: spread over the run (the first ones included), so a factor that goes negative, NaN or
#: raises mid-run is refused when the schedule is built, not in the middle of training.
CHECKED_STEPS = 1000


def steps_to_check(total: int) -> list[int]:
    """Steps a resolved Lambda is evaluated at: 0, the start, evenly spread, and the end."""
    if total <= CHECKED_STEPS:
        return list(range(total + 1))
    spread = {total * i // CHECKED_STEPS for i in range(CHECKED_STEPS + 1)}
    return sorted(spread | set(range(CHECKED_STEPS // 10)))


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
