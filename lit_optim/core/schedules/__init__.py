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
- One vocabulary for arguments: ``total`` (length), ``min_factor`` (final factor),
  ``"cosine"`` (shape).

Modules: ``_base`` (:class:`Horizon`, :class:`Schedule`, the registry of short names),
``_checks`` (argument validation), the closed-form schedules: ``_decay`` (no end needed:
``Constant``, ``Step``, ``MultiStep``, ``Exponential``), ``_anneal`` (to a final factor at the
end: ``Linear``, ``Cosine``, ``CosineRestarts``, ``Poly``), ``_phases`` (``OneCycle``,
``InverseSqrt``, ``WarmupStableDecay``),
``_lambda`` (:class:`Lambda`), ``_join`` (:class:`Sequence`, warmup), ``_build``
(config spec -> schedule). Every concrete ``Schedule`` in lit_optim registers itself
under its class name; :func:`registered` lists them.

Example:
    >>> from lit_optim import Warmup
    >>> f = resolve_factor(Poly(power=2.0), Warmup(steps=2), Horizon(total_steps=12))
    >>> [round(f(t), 3) for t in (0, 1, 2, 7, 12, 99)]  # ramp, then (1 - s/10) ** 2
    [0.0, 0.5, 1.0, 0.25, 0.0, 0.0]

"""

# In this order on purpose: schedules register as they are defined, and registered()
# lists them so in error messages (simple to elaborate).
from lit_optim.core.schedules._decay import Constant, Exponential, MultiStep, Step  # isort: split

from lit_optim.core.schedules._anneal import Cosine, CosineRestarts, Linear, Poly  # isort: split

from lit_optim.core.schedules._phases import InverseSqrt, OneCycle, WarmupStableDecay  # isort: split

from lit_optim.core.schedules._base import (
    DEFAULT_KEY,
    FactorFn,
    Horizon,
    Schedule,
    find_registered,
    normalise_name,
    registered,
    unregister,
)
from lit_optim.core.schedules._build import build_schedule
from lit_optim.core.schedules._join import Sequence, resolve_factor
from lit_optim.core.schedules._join import _warmup_steps as _warmup_steps  # for core.plan
from lit_optim.core.schedules._lambda import LAMBDA_VARIABLES, Lambda, steps_to_check

__all__ = [
    "DEFAULT_KEY",
    "LAMBDA_VARIABLES",
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
    "find_registered",
    "normalise_name",
    "registered",
    "resolve_factor",
    "steps_to_check",
    "unregister",
]
