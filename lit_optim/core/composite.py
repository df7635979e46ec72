"""``CompositeOptimizer``: several torch optimizers that step, save and schedule as one.

A group rule with its own ``optimizer:`` (Muon for the weight matrices, AdamW for the
rest) gives one inner optimizer per distinct optimizer spec. Lightning, schedulers,
gradient clipping, AMP and the tools see a single ``torch.optim.Optimizer`` whose
``param_groups`` are the inner optimizers' group dicts themselves, in the order the
group rules produced them; setting ``group["lr"]`` reaches the inner optimizer.

Example:
    >>> import torch
    >>> w, b = torch.nn.Parameter(torch.ones(3, 3)), torch.nn.Parameter(torch.ones(3))
    >>> muon = torch.optim.Muon([{"params": [w], "name": "matrices"}], lr=0.02)
    >>> adamw = torch.optim.AdamW([{"params": [b], "name": "rest"}], lr=1e-3)
    >>> opt = CompositeOptimizer([adamw, muon])
    >>> [g["name"] for g in opt.param_groups], opt.param_groups[1] is muon.param_groups[0]
    (['rest', 'matrices'], True)

"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["CompositeOptimizer", "optimizer_name"]


class CompositeOptimizer(Optimizer):
    """Inner optimizers, each over its own param groups, behaving as one optimizer.

    Args:
        optimizers: The inner optimizers; every parameter belongs to exactly one.
        order: The inner optimizers' group dicts in the order :attr:`param_groups` lists
            them (default: the first optimizer's groups, then the second's, ...).
        default: Index of the optimizer that takes groups added by
            :meth:`add_param_group` without an ``optimizer`` key; its ``defaults``
            are this optimizer's ``defaults``.

    Attributes:
        optimizers: The inner optimizers.
        param_groups: The inner group dicts (the same objects), in ``order``.

    Raises:
        ValueError: No optimizer, a parameter in two of them, or an ``order`` that is
            not a permutation of their groups.

    """

    def __init__(
        self,
        optimizers: Sequence[Optimizer],
        order: Sequence[dict[str, Any]] | None = None,
        default: int = 0,
    ) -> None:
        if not optimizers:
            raise ValueError("CompositeOptimizer needs at least one optimizer")
        self.optimizers = list(optimizers)
        self.default = default
        # Optimizer.__init__ is not called: it would build groups of its own. What its
        # methods rely on (hooks, the profiled step) is set up the same way here.
        self.defaults = self.optimizers[default].defaults
        self._optimizer_step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._warned_capturable_if_run_uncaptured = True
        self._patch_step_function()
        where = {
            id(g): (i, j)
            for i, o in enumerate(self.optimizers)
            for j, g in enumerate(o.param_groups)
        }
        groups = (
            order if order is not None else [g for o in self.optimizers for g in o.param_groups]
        )
        if sorted(map(id, groups)) != sorted(where):
            raise ValueError("order must list every group of the inner optimizers exactly once")
        #: (optimizer index, group index in it) of every entry of param_groups.
        self._layout = [where[id(g)] for g in groups]
        self.param_groups: list[dict[str, Any]] = []
        self._refresh()

    # ----------------------------------------------------------------- one optimizer

    @property
    def state(self) -> MutableMapping[torch.Tensor, Any]:  # type: ignore[override]
        """Per-parameter state, read from and written to the owning inner optimizer."""
        return _StateView(self._owner)

    @state.setter
    def state(self, value: Any) -> None:
        raise AttributeError("the state of a CompositeOptimizer lives in its inner optimizers")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Evaluate ``closure`` once (if given), then step every inner optimizer."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter."""
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to one inner optimizer and to :attr:`param_groups`.

        ``param_group["optimizer"]`` (popped) picks it by class name (``"Muon"``) or
        index; without it the group goes to the ``default`` optimizer.
        """
        target = param_group.pop("optimizer", self.default)
        index = self._index_of(target)
        new = param_group["params"]
        new = [new] if isinstance(new, torch.Tensor) else list(new)
        if any(p in self._owner for p in new):
            raise ValueError("some parameters appear in more than one parameter group")
        inner = self.optimizers[index]
        inner.add_param_group(param_group)
        self._layout.append((index, len(inner.param_groups) - 1))
        self._refresh()

    def state_dict(self) -> dict[str, Any]:
        """Torch's format over :attr:`param_groups`: ``{"state": {index: ...}, "param_groups"}``.

        Parameters are numbered in :attr:`param_groups` order, as one torch optimizer
        over these groups would number them.
        """
        index: dict[int, int] = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            packed_groups.append(packed)
        state: dict[int, Any] = {}
        for optimizer in self.optimizers:
            inner = optimizer.state_dict()
            params = [p for g in optimizer.param_groups for p in g["params"]]
            for j, value in inner["state"].items():
                state[index[id(params[j])]] = value
        return {"state": dict(sorted(state.items())), "param_groups": packed_groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a :meth:`state_dict`, handing each inner optimizer its groups and state.

        Raises:
            ValueError: The saved groups differ in number or size from these.

        """
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        saved_state = state_dict["state"]
        per_optimizer: list[dict[int, dict[str, Any]]] = [{} for _ in self.optimizers]
        for k, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"loaded state dict has {len(saved['params'])} parameters in group {k} "
                    f"({group.get('name', k)!r}), this optimizer has {len(group['params'])}"
                )
            i, j = self._layout[k]
            per_optimizer[i][j] = saved
        for optimizer, saved_by_position in zip(self.optimizers, per_optimizer, strict=True):
            groups, state, n = [], {}, 0
            for j in range(len(optimizer.param_groups)):
                saved = dict(saved_by_position[j])
                numbers = []
                for old in saved["params"]:
                    if old in saved_state:
                        state[n] = saved_state[old]
                    numbers.append(n)
                    n += 1
                saved["params"] = numbers
                groups.append(saved)
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        self._refresh()  # torch's load_state_dict replaces the group dicts

    # ----------------------------------------------------------------- modes

    def train(self) -> None:
        """Put every inner optimizer that has modes (schedule-free) in train mode."""
        for optimizer in self.optimizers:
            if callable(getattr(optimizer, "train", None)):
                optimizer.train()

    def eval(self) -> None:
        """Put every inner optimizer that has modes (schedule-free) in eval mode."""
        for optimizer in self.optimizers:
            if callable(getattr(optimizer, "eval", None)):
                optimizer.eval()

    # ----------------------------------------------------------------- helpers

    def optimizer_of(self, group: Mapping[str, Any]) -> Optimizer:
        """The inner optimizer that owns ``group`` (one of :attr:`param_groups`)."""
        for k, g in enumerate(self.param_groups):
            if g is group:
                return self.optimizers[self._layout[k][0]]
        raise ValueError("not a param group of this optimizer")

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        inner = ",\n".join("    " + repr(o).replace("\n", "\n    ") for o in self.optimizers)
        return f"{type(self).__name__}(\n{inner}\n)"

    def _refresh(self) -> None:
        # In place: wrappers (LightningOptimizer) and schedulers hold this very list.
        self.param_groups[:] = [self.optimizers[i].param_groups[j] for i, j in self._layout]
        self._owner = {
            p: self.optimizers[i]
            for (i, _), g in zip(self._layout, self.param_groups, strict=True)
            for p in g["params"]
        }

    def _in_use_order(self) -> list[Optimizer]:
        seen: list[int] = []
        for i, _ in self._layout:
            if i not in seen:
                seen.append(i)
        return [self.optimizers[i] for i in seen]

    def _index_of(self, target: Any) -> int:
        if isinstance(target, int) and not isinstance(target, bool):
            if 0 <= target < len(self.optimizers):
                return target
        else:
            names = [type(o).__name__ for o in self.optimizers]
            if names.count(str(target)) == 1:
                return names.index(str(target))
        choices = ", ".join(f"{i} ({optimizer_name(o)})" for i, o in enumerate(self.optimizers))
        raise ValueError(f"no single inner optimizer {target!r}; choose one of {choices}")


class _StateView(MutableMapping[torch.Tensor, Any]):
    """``optimizer.state`` of a composite: each parameter's entry in its own optimizer."""

    def __init__(self, owner: Mapping[torch.Tensor, Optimizer]) -> None:
        self._owner = owner

    def __getitem__(self, p: torch.Tensor) -> Any:
        return self._owner[p].state[p]

    def __setitem__(self, p: torch.Tensor, value: Any) -> None:
        self._owner[p].state[p] = value

    def __delitem__(self, p: torch.Tensor) -> None:
        del self._owner[p].state[p]

    def __iter__(self) -> Iterator[torch.Tensor]:
        seen: set[int] = set()
        for optimizer in self._owner.values():
            if id(optimizer) not in seen:
                seen.add(id(optimizer))
                yield from optimizer.state

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, p: object) -> bool:
        owner = self._owner.get(p)  # type: ignore[call-overload]
        return owner is not None and p in owner.state


def optimizer_name(optimizer: Optimizer) -> str:
    """The name an optimizer is shown and logged under: its class, or its inner ones'.

    Example:
        >>> p, q = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(2))
        >>> inner = [torch.optim.Muon([p], lr=0.02), torch.optim.AdamW([q])]
        >>> optimizer_name(inner[1]), optimizer_name(CompositeOptimizer(inner))
        ('AdamW', 'Muon+AdamW')

    """
    if isinstance(optimizer, CompositeOptimizer):
        # Groups added later go after the existing ones, so this order never changes.
        return "+".join(optimizer_name(o) for o in optimizer._in_use_order())
    return type(optimizer).__name__
