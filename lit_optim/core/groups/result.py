"""What building param groups returns: the groups, and one row per parameter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lit_optim.core.config import GroupRule, Unfreeze

__all__ = ["ParamGroups", "ParamInfo", "PendingGroup"]


@dataclass(slots=True)
class ParamInfo:
    """One row per parameter (``lit-optim groups --params``).

    Attributes:
        name: Normalised parameter name.
        group: Final (merged) group name; ``""`` for frozen parameters.
        rule: What placed it: ``"groups[0] (head)"``, ``"default"``,
            ``"frozen by groups[2] (stem)"`` or ``"requires_grad=False"``.
        layer_id: Layer id when ``layer_decay`` is on, else ``None``.
        numel: Number of elements.
        decay: Whether it gets weight decay > 0.
        frozen: Whether it is left out of the optimizer.
        tensor: The parameter itself.
        layer_source: Where the layer id came from (``"group_matcher of backbone"``,
            ``"name pattern blocks.N"``, ``"layers regex"``, ...), else ``None``.

    """

    name: str
    group: str
    rule: str
    layer_id: int | None
    numel: int
    decay: bool
    frozen: bool
    tensor: torch.Tensor = field(repr=False, compare=False)
    layer_source: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Tensor shape (read on demand: building a ``torch.Size`` per row costs 2 us)."""
        return tuple(self.tensor.shape)


@dataclass
class PendingGroup:
    """A group of a rule with ``unfreeze_at``: frozen now, added to the optimizer later.

    Attributes:
        group: The optimizer group dict (``params``, ``name``, ``lr``, ...).
        schedule: The rule's ``schedule`` spec (``None`` = global).
        label: Which rule(s) produced it.
        unfreeze_at: When it joins.
        rule_index: Index of the rule in ``optim.groups`` (for error messages).
        rule_config: The rule itself (for its momentum / weight-decay schedules).

    """

    group: dict[str, Any]
    schedule: Any
    label: str
    unfreeze_at: Unfreeze
    rule_index: int
    rule_config: GroupRule | None = None


@dataclass
class ParamGroups:
    """Optimizer-ready param groups plus what the tools need to explain them.

    Attributes:
        groups: Dicts for the optimizer constructor: ``params``, ``name``, ``lr``,
            ``weight_decay`` (when the optimizer has that option) and rule options.
        schedules: Parallel to ``groups``: the rule's ``schedule`` spec (``None`` = global).
        labels: Parallel to ``groups``: which rule(s) produced each group, as
            ``"groups[0] (head)"`` / ``"default"`` (joined by ``" + "`` when merged).
        params: Every parameter in registration order, frozen ones included.
        num_layers: Layer count used by layer decay, else ``None``.
        optimizers: Parallel to ``groups``: the index of the rule whose own ``optimizer``
            takes the group, or -1 for the top-level optimizer.
        pending: Groups that join the optimizer later (rules with ``unfreeze_at``).
        rule_configs: Parallel to ``groups``: the rule of each group (``None`` = default),
            for its momentum and weight-decay schedules.
        freeze: Parameters that ``fit`` sets to ``requires_grad=False`` (matched by a
            ``frozen`` rule, or waiting for ``unfreeze_at``). Building never changes the
            model; whoever trains it applies this (``configure_optimizers``).

    """

    groups: list[dict[str, Any]]
    schedules: list[Any]
    labels: list[str]
    params: list[ParamInfo]
    num_layers: int | None
    optimizers: list[int] = field(default_factory=list)
    pending: list[PendingGroup] = field(default_factory=list)
    rule_configs: list[GroupRule | None] = field(default_factory=list)
    freeze: list[torch.Tensor] = field(default_factory=list, repr=False)

    def apply_freeze(self) -> None:
        """Set ``requires_grad=False`` on :attr:`freeze` (what only training does)."""
        for p in self.freeze:
            p.requires_grad_(False)
