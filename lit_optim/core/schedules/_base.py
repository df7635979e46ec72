"""The base of every schedule: :class:`Horizon`, :class:`Schedule` and the registry of short names.

Every concrete :class:`Schedule` subclass defined in lit_optim registers itself under its
class name when it is defined, so ``class_path: Poly`` finds :class:`Poly` and a test can
iterate over :func:`registered` schedules. A schedule of your own is found by its import
path; pass ``short_name=`` in its class statement to give it a short name too.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Halving(Schedule, short_name="Halving"):
    ...     every: int = 10
    ...     def resolve(self, horizon, key="optim.schedule"):
    ...         return lambda step: 0.5 ** (step // self.every)
    >>> registered()["Halving"] is Halving and find_registered("halving") is Halving
    True
    >>> unregister("Halving")

"""

from __future__ import annotations

import abc
import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_KEY",
    "FactorFn",
    "Horizon",
    "Schedule",
    "find_registered",
    "normalise_name",
    "registered",
    "unregister",
]

#: ``step -> lr multiplier``: pure and closed form (no state, no recursion).
FactorFn = Callable[[int], float]

DEFAULT_KEY = "optim.schedule"

#: normalised short name (see :func:`normalise_name`) -> (short name, Schedule class), in
#: definition order.
_REGISTRY: dict[str, tuple[str, type[Schedule]]] = {}


def registered() -> dict[str, type[Schedule]]:
    """Every registered schedule class by short name (``"CosineRestarts"``), in definition order."""
    return dict(_REGISTRY.values())


def find_registered(name: str) -> type[Schedule] | None:
    """The class registered under ``name`` (case-insensitive, ``_`` / ``-`` ignored), or None."""
    entry = _REGISTRY.get(normalise_name(name))
    return None if entry is None else entry[1]


def unregister(short_name: str) -> None:
    """Remove a short name added with ``short_name=`` (for tests and notebooks)."""
    _REGISTRY.pop(normalise_name(short_name), None)


def normalise_name(name: str) -> str:
    """The registry key of a short name: case-insensitive, ``_`` and ``-`` ignored."""
    return name.strip().lower().replace("_", "").replace("-", "")


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
    refer to it by import path in the config (``class_path: my_pkg.MySchedule``), or give
    it a short name with ``class MySchedule(Schedule, short_name="MySchedule")``.
    """

    def __init_subclass__(cls, short_name: str | None = None, **kwargs: Any) -> None:
        """Register ``cls`` under its short name (lit_optim's own classes always)."""
        super().__init_subclass__(**kwargs)
        ours = cls.__module__.startswith("lit_optim.")
        if inspect.isabstract(cls) or (short_name is None and not ours):
            return
        name = short_name or cls.__name__
        key = normalise_name(name)
        other = _REGISTRY.get(key, (None, None))[1]
        same = other is not None and (other.__module__, other.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        )  # a reloaded module redefines the same class
        if other is not None and not same:
            raise TypeError(
                f"schedule short name {name!r} of "
                f"{cls.__module__}.{cls.__qualname__} is taken by "
                f"{other.__module__}.{other.__qualname__}; choose another short_name"
            )
        _REGISTRY[key] = (name, cls)

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
