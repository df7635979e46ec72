"""The param-group table: ``lit-optim groups`` and the summary printed when ``fit`` starts.

Rows come straight from :class:`~lit_optim.core.groups.ParamGroups` (what the optimizer is
built from), so the table shows exactly the groups, lrs and options the run uses.
Rendering uses rich; without a terminal (a pipe, a log file, the ``fit`` summary) the
output is plain text with no ANSI codes.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig
    >>> from lit_optim.core.groups import build_param_groups
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    >>> pg = build_param_groups(model, OptimConfig(), {"lr": 0.1, "weight_decay": 0.01})
    >>> [r.name for r in group_rows(pg)]
    ['default', 'default/no_decay']

"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from rich import box

from lit_optim.core.composite import optimizer_name
from lit_optim.core.groups import ParamGroups, ParamInfo
from lit_optim.core.implementation import implementation_name

__all__ = [
    "GroupRow",
    "group_rows",
    "group_table",
    "optimizer_title",
    "param_table",
    "render",
]

# Keys of a group dict that have their own column (everything else is an "option").
_OWN_COLUMNS = ("params", "name", "lr", "weight_decay", "initial_lr")
_BOX = box.SIMPLE_HEAD
# Wide enough that no column wraps when the output is not a terminal.
_PLAIN_WIDTH = 240


@dataclass(frozen=True)
class GroupRow:
    """One optimizer param group as the table shows it.

    Attributes:
        name: Group name (merged groups read ``a+b``).
        rule: The rule(s) that produced it (``groups[0] (head)``, ``default``).
        tensors: Number of parameter tensors.
        numel: Number of scalar parameters.
        lr: Base lr (before any schedule or warmup factor).
        weight_decay: Weight decay, or ``None`` when the optimizer has no such option.
        options: Per-group options that differ from the optimizer's defaults
            (``betas``, ``momentum``, ... set by a rule).
        optimizer: The class of the optimizer that steps the group when the groups use
            several (a rule with its own ``optimizer``), else ``""``.

    """

    name: str
    rule: str
    tensors: int
    numel: int
    lr: Any
    weight_decay: Any
    options: dict[str, Any]
    optimizer: str = ""


def group_rows(
    groups: ParamGroups,
    defaults: Mapping[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[GroupRow]:
    """One :class:`GroupRow` per optimizer param group, in optimizer order.

    Args:
        groups: The param groups (also after the optimizer and scheduler were built on
            them: the base lr is then read from ``initial_lr``).
        defaults: The optimizer's ``defaults``; options equal to them are not listed.
        optimizer: The optimizer built on them; when it joins several (a
            :class:`~lit_optim.core.composite.CompositeOptimizer`), each row names its
            group's optimizer and compares options with that one's defaults.

    """
    from lit_optim.core.composite import CompositeOptimizer

    inner: list[Any] = [None] * len(groups.groups)
    if isinstance(optimizer, CompositeOptimizer):
        inner = [optimizer.optimizer_of(g) for g in groups.groups]
    known = defaults is not None or optimizer is not None
    rows = []
    for group, label, owner in zip(groups.groups, groups.labels, inner, strict=True):
        own = owner.defaults if owner is not None else (defaults or {})
        params = group["params"]
        # Rule options are always options of the optimizer (checked when the rules are
        # built), so a key it does not know is a torch scheduler's bookkeeping (OneCycleLR's
        # max_lr, min_lr, base_momentum, ...), not something the run configured.
        options = {
            k: v
            for k, v in group.items()
            if k not in _OWN_COLUMNS
            and ((k in own and not _same(v, own[k])) or (k not in own and not known))
        }
        rows.append(
            GroupRow(
                name=str(group.get("name", "")),
                rule=label,
                tensors=len(params),
                numel=sum(p.numel() for p in params),
                lr=group.get("initial_lr", group.get("lr")),
                weight_decay=group.get("weight_decay"),
                options=options,
                optimizer=optimizer_name(owner) if owner else "",
            )
        )
    return rows


def group_table(
    groups: ParamGroups, optimizer: torch.optim.Optimizer | None = None, *, compact: bool = False
) -> Any:
    """A rich renderable: the group table, its totals, and the frozen parameters apart.

    Args:
        groups: The param groups of the run.
        optimizer: The optimizer built on them (its name titles the table; options equal
            to its defaults are not repeated per group).
        compact: Summarise frozen parameters by rule (one line each) instead of
            listing every frozen tensor; used for the summary at the start of ``fit``.

    Returns:
        A ``rich.console.Group`` to print with a rich ``Console`` or :func:`render`.

    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = group_rows(groups, optimizer.defaults if optimizer is not None else None, optimizer)
    name = optimizer_title(optimizer) if optimizer is not None else ""
    has_wd = any(r.weight_decay is not None for r in rows)
    has_options = any(r.options for r in rows)
    title = f"{name} param groups" if name else "param groups"
    table = Table(
        title=title, title_justify="left", show_footer=True, header_style="bold", box=_BOX
    )
    table.add_column("group", footer="total", style="cyan", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    several = any(r.optimizer for r in rows)
    if several:
        table.add_column("optimizer", no_wrap=True)
    table.add_column("tensors", footer=str(sum(r.tensors for r in rows)), justify="right")
    table.add_column("params", footer=f"{sum(r.numel for r in rows):,}", justify="right")
    table.add_column("lr", justify="right")
    if has_wd:
        table.add_column("weight_decay", justify="right")
    if has_options:
        table.add_column("options")
    for r in rows:
        cells = [r.name, r.rule, *([r.optimizer] if several else [])]
        cells += [str(r.tensors), f"{r.numel:,}", _num(r.lr)]
        if has_wd:
            cells.append(_num(r.weight_decay))
        if has_options:
            cells.append(", ".join(f"{k}={_num(v)}" for k, v in r.options.items()))
        table.add_row(*cells)

    parts: list[Any] = [table]
    frozen = [p for p in groups.params if p.frozen]
    if frozen:
        total = sum(p.numel for p in frozen)
        head = f"frozen (not in the optimizer): {len(frozen)} tensors, {total:,} params"
        if compact:
            lines = [head]
            for reason, members in _by_reason(frozen).items():
                count = sum(p.numel for p in members)
                lines.append(f"  {reason}: {len(members)} tensors, {count:,} params")
            parts.append(Text("\n".join(lines)))
        else:
            ftable = Table(title=head, title_justify="left", header_style="bold", box=_BOX)
            ftable.add_column("parameter", no_wrap=True)
            ftable.add_column("shape")
            ftable.add_column("params", justify="right")
            ftable.add_column("why", no_wrap=True)
            for p in frozen:
                ftable.add_row(p.name, _shape(p.shape), f"{p.numel:,}", p.rule)
            parts.append(ftable)
    return Group(*parts)


def optimizer_title(optimizer: torch.optim.Optimizer) -> str:
    """The optimizer's name with the step torch runs: ``AdamW (fused)``, ``AdamW (fused)+Muon``.

    Example:
        >>> p = [torch.nn.Parameter(torch.zeros(2))]
        >>> optimizer_title(torch.optim.AdamW(p, fused=True)), optimizer_title(torch.optim.LBFGS(p))
        ('AdamW (fused)', 'LBFGS')

    """
    # A composite optimizer (per-rule optimizers) lists its inner ones in use order.
    in_use = getattr(optimizer, "_in_use_order", None)
    parts = in_use() if callable(in_use) else [optimizer]
    titles = []
    for part in parts:
        name = optimizer_name(part)
        implementation = implementation_name(part)
        titles.append(f"{name} ({implementation})" if implementation else name)
    return "+".join(titles)


def param_table(groups: ParamGroups) -> Any:
    """A rich table with every parameter: group, layer id and where it came from, shape, decay.

    The ``layer from`` column says which source gave the id (``group_matcher of
    backbone: blocks``, ``structure: block of 'encoder.layer'``, ``layers regex``,
    ``structure: after the last block: last``), so a wrong id can be seen before training.
    """
    from rich.table import Table

    with_layers = groups.num_layers is not None
    table = Table(title="parameters", title_justify="left", header_style="bold", box=_BOX)
    table.add_column("parameter", style="cyan", no_wrap=True)
    table.add_column("group", no_wrap=True)
    if with_layers:
        table.add_column("layer", justify="right")
        table.add_column("layer from", no_wrap=True)
    table.add_column("shape")
    table.add_column("params", justify="right")
    table.add_column("decay")
    table.add_column("rule", no_wrap=True)
    for p in groups.params:
        cells = [p.name, "(frozen)" if p.frozen else p.group]
        if with_layers:
            cells.append("" if p.layer_id is None else str(p.layer_id))
            cells.append(p.layer_source or "")
        cells += [_shape(p.shape), f"{p.numel:,}", "-" if p.frozen else _yes(p.decay), p.rule]
        table.add_row(*cells)
    return table


def render(renderable: Any, width: int = _PLAIN_WIDTH) -> str:
    """Render a rich renderable to plain text (no ANSI codes), as piped output shows it."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):  # tensors, arrays
        return False


def _by_reason(params: Sequence[ParamInfo]) -> dict[str, list[ParamInfo]]:
    out: dict[str, list[ParamInfo]] = {}
    for p in params:
        out.setdefault(p.rule, []).append(p)
    return out


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_num(v) for v in value) + ")"
    return str(value)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
