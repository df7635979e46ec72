"""What building param groups returns: the groups, and one row per parameter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["ParamGroups", "ParamInfo"]


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

    """

    groups: list[dict[str, Any]]
    schedules: list[Any]
    labels: list[str]
    params: list[ParamInfo]
    num_layers: int | None
    optimizers: list[int] = field(default_factory=list)
