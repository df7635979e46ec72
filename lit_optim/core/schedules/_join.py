"""Composition: :class:`Sequence` joins schedules; :func:`resolve_factor` puts a warmup first."""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules._base import DEFAULT_KEY, FactorFn, Horizon, Schedule
from lit_optim.core.schedules._build import build_schedule
from lit_optim.core.schedules._checks import _KEY, _round
from lit_optim.core.schedules._decay import Constant

__all__ = ["Sequence", "WarmupLike", "resolve_factor"]


class WarmupLike(Protocol):
    """What a warmup must provide (:class:`lit_optim.core.config.Warmup` does).

    A protocol, not the config class: the config imports the schedules (a schedule is a
    config value), so the schedules name no config type and no import circle forms.
    """

    # Read-only (properties) so that a dataclass with narrower field types conforms.
    @property
    def steps(self) -> int | None: ...
    @property
    def epochs(self) -> float | None: ...
    @property
    def fraction(self) -> float | None: ...
    @property
    def start_factor(self) -> float: ...
    @property
    def mode(self) -> str: ...
    @property
    def overlap(self) -> bool: ...

    def validate(self, key: str) -> None:
        """Raise :class:`ConfigError` on an impossible warmup."""


@dataclass(frozen=True)
class Sequence(Schedule):
    """Schedules one after another, joined at step boundaries (optax ``join_schedules``).

    ``schedules[i]`` runs from ``boundaries[i - 1]`` (0 for the first) to
    ``boundaries[i]`` (the end of the run for the last), resolved on its own segment
    length and called with the step counted from its segment start. Children are
    schedule specs like ``optim.schedule`` itself (short name, import path, or
    ``{class_path, init_args}``). With ``shift: false`` every child is resolved on the
    whole run and called with the run's own step, so a later schedule goes on as if it
    had run from step 0 (a per-group form of timm's ``warmup_prefix=False``).

    Example:
        >>> s = Sequence(schedules=["Constant", {"class_path": "Linear"}], boundaries=[4])
        >>> f = s.resolve(Horizon(8))
        >>> [f(t) for t in (0, 3, 4, 6, 8)]
        [1.0, 1.0, 1.0, 0.5, 0.0]

    """

    schedules: tuple[Schedule, ...] | list[Any]
    boundaries: tuple[int, ...] | list[int]
    shift: bool = True

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
        if not isinstance(self.shift, bool):
            raise ConfigError(
                f"{key}.init_args.shift", f"expected true or false, got {self.shift!r}"
            )

    @property
    def needs_total(self) -> bool:
        """True when the last schedule needs the run length (or any, with ``shift: false``)."""
        if not self.shift:
            return any(child.needs_total for child in self.schedules)  # type: ignore[union-attr]
        return self.schedules[-1].needs_total  # type: ignore[union-attr]

    def resolve(self, horizon: Horizon, key: str = DEFAULT_KEY) -> FactorFn:
        """Resolve every child on its segment and join them.

        A run that ends before a boundary ends inside that piece (a smoke test such as
        ``fast_dev_run``, or a short ``max_steps``): every piece but the last keeps its
        length in steps, so the short run's factors are the first steps of the long
        run's. A last piece that the run never reaches is resolved on one step (its value
        is read at most once, by the scheduler step after the final optimizer step).
        """
        total = horizon.total_steps
        if self.shift:
            starts = (0, *self.boundaries)
            # The last piece runs to the end of the run, or is one step when never reached.
            ends = (*self.boundaries, max(total, self.boundaries[-1] + 1 if self.boundaries else 1))
        else:  # every child sees the whole run and the run's step
            starts = (0,) * len(self.schedules)
            ends = (total,) * len(self.schedules)
        parts = [
            child.resolve(
                Horizon(end - start, horizon.steps_per_epoch), f"{key}.init_args.schedules[{i}]"
            )
            for i, (child, start, end) in enumerate(zip(self.schedules, starts, ends, strict=True))
        ]
        boundaries = self.boundaries
        # A run that ends inside a piece before the last holds its final value from then on,
        # as every schedule does past its end.
        end = total if self.shift and boundaries and total <= boundaries[-1] else None

        def factor(step: int) -> float:
            if end is not None:
                step = min(step, end)
            i = bisect.bisect_right(boundaries, step)
            return parts[i](step - starts[i])

        return factor


def resolve_factor(
    schedule: Schedule | None,
    warmup: WarmupLike | None,
    horizon: Horizon,
    key: str = DEFAULT_KEY,
    warmup_key: str = "optim.warmup",
) -> FactorFn:
    """Resolve a schedule with an optional warmup in front into one ``step -> factor``.

    A warmup of ``W`` steps (``steps``; ``epochs * steps_per_epoch`` or
    ``fraction * total_steps``, rounded half up, or up with ``rounding: up``) comes
    first: the schedule is resolved on
    the remaining ``total_steps - W`` steps and shifted by ``W``. During warmup the factor
    is ``schedule(0) * w(t)``, ``w`` going from ``start_factor`` towards 1 at ``t = W``:
    linear ``s + (1 - s) * t / W``, exponential ``s * (1 / s) ** (t / W)``, or constant
    ``s``. ``W = 0`` means no warmup. With ``warmup.overlap`` the schedule is resolved on
    the whole run and not shifted: from ``t = W`` on the factor is ``schedule(t)`` (timm's
    ``warmup_prefix=False``, where the warmup covers the schedule's first ``W`` steps).
    A run of at most ``W`` steps ends inside the warmup (the same factors as the first
    steps of a longer run): a smoke test never refuses what the full run accepts.

    Args:
        schedule: The main schedule; ``None`` is a constant factor of 1.
        warmup: The warmup, or ``None``.
        horizon: Length of the run.
        key: Config key path of the schedule.
        warmup_key: Config key path of the warmup.

    Returns:
        ``step -> factor``.

    Raises:
        ConfigError: The warmup is invalid, or the schedule does not fit the run.

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
    # overlap (timm's warmup_prefix=False): the schedule runs on the whole run from step 0.
    shift = 0 if warmup.overlap else steps
    # A run not longer than its warmup (fast_dev_run, a short max_steps) ends inside the
    # warmup: its factors are the first steps of a long run's warmup, never a refusal.
    # The schedule after it is never reached; only its value at step 0 (the warmup's
    # peak) is read, on a one-step run.
    main = main_schedule.resolve(Horizon(max(total - shift, 1), horizon.steps_per_epoch), key)
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

    if total <= steps:  # the run ends inside the warmup: its last value is held after it

        def factor(step: int) -> float:
            return peak * ramp(min(step, total))

        return factor

    def factor(step: int) -> float:
        if step >= steps:
            return main(step - shift)
        return peak * ramp(step)

    return factor


def _warmup_steps(warmup: WarmupLike, horizon: Horizon, key: str) -> int:
    """Warmup length in scheduler steps."""
    warmup.validate(key)
    if warmup.steps is not None:
        return int(warmup.steps)
    # HF computes ceil(ratio * steps) in floating point; so does rounding: up, to match it.
    rounded = math.ceil if warmup.rounding == "up" else _round
    if warmup.epochs is not None:
        return rounded(warmup.epochs * horizon.steps_per_epoch)
    assert warmup.fraction is not None  # validate() ensures exactly one is given
    return rounded(warmup.fraction * horizon.total_steps)
