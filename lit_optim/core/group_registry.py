"""Which param groups each optimizer was built from, kept beside it rather than on it.

:func:`~lit_optim.core.optimizers.build_optimizer` registers the
:class:`~lit_optim.core.groups.ParamGroups` it built, so that the plain-Python call
``build_scheduler(optimizer, config, total_steps=...)`` finds the per-group schedules,
the rules and the groups that join later without being handed them. The registry holds
optimizers weakly: it keeps nothing alive and sets no attribute on a torch object.
"""

from __future__ import annotations

import weakref

import torch

from lit_optim.core.groups.result import ParamGroups

__all__ = ["groups_of", "register_groups"]

_GROUPS: weakref.WeakKeyDictionary[torch.optim.Optimizer, ParamGroups] = weakref.WeakKeyDictionary()


def register_groups(optimizer: torch.optim.Optimizer, groups: ParamGroups) -> None:
    """Remember that ``optimizer`` was built from ``groups``."""
    _GROUPS[optimizer] = groups


def groups_of(optimizer: torch.optim.Optimizer) -> ParamGroups | None:
    """The param groups ``optimizer`` was built from (``None``: not built by lit_optim)."""
    return _GROUPS.get(optimizer)
