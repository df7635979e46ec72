"""One pre-group per distinct hyperparameter key, then detectron2-style merging.

Groups whose hyperparameters and schedule are identical are merged (detectron2's
``reduce_param_groups``), so multi-tensor optimizer steps see as few groups as possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lit_optim.core.config_checks import check_below_largest
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.result import ParamInfo
from lit_optim.core.groups.rules import Rule, freeze

__all__ = ["PreGroup", "merge", "new_group"]


@dataclass
class PreGroup:
    """A group before merging: its name, label, hyperparameters and members."""

    name: str
    label: str
    hyper: dict[str, Any]
    schedule: Any
    key: Any  # hashable stand-in for (hyper, schedule), or None
    decay: bool  # weight decay > 0
    params: list[torch.Tensor]
    infos: list[ParamInfo]
    optimizer: int = -1  # rule index whose own optimizer takes the group, -1 = top-level
    rule: Rule | None = None


def new_group(
    rule: Rule | None,
    skip_wd: bool,
    layer_id: int | None,
    scales: Sequence[float],
    base_lr: Any,
    has_wd: bool,
    base_wd: Any,
    optimizer_name: str,
    optimizer: int = -1,
) -> PreGroup:
    """The group of parameters placed by ``rule`` (``None`` = default) at ``layer_id``."""
    base = rule.name if rule is not None else "default"
    if rule is not None and rule.rule.lr is not None:
        lr = rule.rule.lr
    else:
        if base_lr is None:
            raise ConfigError(
                "optim.optimizer.init_args.lr",
                f"{optimizer_name} has no default lr; set init_args.lr (or `lr` on every rule)",
            )
        lr = base_lr
        if rule is not None and rule.rule.lr_scale is not None:
            lr = lr * rule.rule.lr_scale
            check_below_largest(
                f"optim.groups[{rule.index}].lr_scale",
                lr,
                f"lr {base_lr:g} times lr_scale {rule.rule.lr_scale:g}",
            )
        if layer_id is not None:
            lr = lr * scales[layer_id]
    name = base
    if layer_id is not None:
        name = f"layer{layer_id}" if rule is None else f"{base}/layer{layer_id}"
    if skip_wd:
        name += "/no_decay"
    hyper: dict[str, Any] = {"lr": lr}
    if has_wd:
        rule_wd = rule.rule.weight_decay if rule is not None else None
        hyper["weight_decay"] = rule_wd if rule_wd is not None else (0.0 if skip_wd else base_wd)
    if rule is not None:
        hyper.update(rule.rule.options)
    rule_key = rule.merge_key if rule is not None else _DEFAULT_KEY
    lr_wd: Any = (hyper["lr"], hyper.get("weight_decay"))
    if not (type(lr_wd[0]) in _SCALARS and type(lr_wd[1]) in _SCALARS):
        lr_wd = freeze(lr_wd)
    return PreGroup(
        name=name,
        label=rule.label if rule is not None else "default",
        hyper=hyper,
        schedule=rule.rule.schedule if rule is not None else None,
        key=(lr_wd, rule_key) if rule_key is not None and lr_wd is not None else None,
        decay=bool(hyper.get("weight_decay", 0.0)),
        params=[],
        infos=[],
        optimizer=optimizer,
        rule=rule,
    )


def merge(groups: Sequence[PreGroup]) -> list[PreGroup]:
    """Merge groups with identical hyperparameters and schedule, in first-appearance order."""
    merged: list[PreGroup] = []
    by_key: dict[Any, PreGroup] = {}
    unhashable: list[PreGroup] = []
    for g in groups:
        if g.key is not None:
            target = by_key.get(g.key)
        else:
            target = next(
                (
                    m
                    for m in unhashable
                    if _equal((m.hyper, m.schedule), (g.hyper, g.schedule))
                    and _equal(_rule_extras(m), _rule_extras(g))
                ),
                None,
            )
        if target is None:
            merged.append(g)  # the first member becomes the merged group
            if g.key is not None:
                by_key[g.key] = g
            else:
                unhashable.append(g)
            continue
        target.name += f"+{g.name}"
        if g.label not in target.label.split(" + "):
            target.label += f" + {g.label}"
        target.params.extend(g.params)
        target.infos.extend(g.infos)
    for m in merged:
        for info in m.infos:
            info.group = m.name
    return merged


_SCALARS = frozenset({float, int, bool, str, type(None)})
_DEFAULT_KEY = freeze(({}, None, None, None, None))


def _rule_extras(group: PreGroup) -> tuple[Any, ...]:
    """What else keeps groups apart: when they join and their momentum / wd schedules."""
    if group.rule is None:
        return (None, None, None)
    r = group.rule.rule
    return (r.unfreeze_at, r.momentum_schedule, r.weight_decay_schedule)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. tensors with more than one element
        return a is b
