"""Schedulers: the ``optim:`` section's schedules applied to an optimizer's param groups.

Modules: ``track`` (one hyperparameter track: a group field set to ``base * f(step)``),
``schedule_lr`` (:class:`ScheduleLR`, the ``LRScheduler`` applying every track),
``joins`` (groups joining mid-run), ``torch_schedulers`` (torch schedulers by
``class_path``), ``build`` (:func:`build_scheduler`, the entry point).
"""

from lit_optim.core.scheduler.build import build_scheduler
from lit_optim.core.scheduler.schedule_lr import ScheduleLR
from lit_optim.core.scheduler.torch_schedulers import SchedulerLike, is_torch_scheduler

__all__ = ["ScheduleLR", "SchedulerLike", "build_scheduler", "is_torch_scheduler"]
