"""``build_param_groups``: rules -> every trainable parameter in one named, merged group."""

from __future__ import annotations

import gc
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.decay import NoDecay
from lit_optim.core.groups.layers import layer_ids
from lit_optim.core.groups.merge import PreGroup, merge, new_group
from lit_optim.core.groups.names import collect
from lit_optim.core.groups.result import ParamGroups, ParamInfo, PendingGroup
from lit_optim.core.groups.rules import (
    check_every_rule_used,
    check_rule_hyperparameters,
    compile_rule,
    first_matches,
)

__all__ = ["build_param_groups"]


def build_param_groups(
    model: nn.Module,
    config: OptimConfig,
    defaults: Mapping[str, Any],
    *,
    optimizer_name: str = "the optimizer",
    rule_optimizers: Mapping[int, tuple[Mapping[str, Any], str]] | None = None,
    only: Collection[torch.Tensor] | None = None,
    frozen_start: bool = False,
) -> ParamGroups:
    """Assign every trainable parameter of ``model`` to exactly one named, merged group.

    Pure: the model is not changed. Parameters of a ``frozen`` rule (and of rules with
    ``unfreeze_at``) are listed in ``ParamGroups.freeze`` for the trainer to freeze.

    Args:
        model: The fully built model.
        config: The ``optim:`` section.
        defaults: The optimizer's effective defaults (signature defaults overlaid with
            ``init_args``), e.g. ``{"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0}``.
        optimizer_name: Optimizer class name, for error messages.
        rule_optimizers: ``{rule index: (defaults, class name)}`` of rules that carry their
            own ``optimizer``; their groups take lr, weight decay and options from it.
        only: Consider only these parameters (one of several separate optimizers).
        frozen_start: Something will unfreeze parameters during the run (a
            ``BaseFinetuning`` callback): when every parameter has ``requires_grad=False``
            now, they are grouped as if trainable (as ``torch.optim.SGD(model.parameters())``
            does) instead of refused.

    Returns:
        The groups, their schedules and rule labels, and one row per parameter.

    Raises:
        ConfigError: A rule matches nothing, loses all its parameters to earlier rules,
            names an unknown module type, has a bad regex or an option the optimizer
            does not take; layer ids cannot be inferred; or nothing can ever train.

    """
    # ~100k small tracked objects are created; pausing the cyclic GC keeps the build linear
    # (its full collections would otherwise rescan everything built so far).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(
            model, config, defaults, optimizer_name, rule_optimizers or {}, only, frozen_start
        )
    finally:
        if enabled:
            gc.enable()


def _build(
    model: nn.Module,
    config: OptimConfig,
    defaults: Mapping[str, Any],
    optimizer_name: str,
    rule_optimizers: Mapping[int, tuple[Mapping[str, Any], str]],
    only: Collection[torch.Tensor] | None,
    frozen_start: bool,
) -> ParamGroups:
    names, tensors, owners = collect(model)
    if only is not None:
        keep = {id(p) for p in only}
        rows = [(n, t, o) for n, t, o in zip(names, tensors, owners, strict=True) if id(t) in keep]
        names, tensors, owners = (
            (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
        )
    rules = [compile_rule(i, r, model) for i, r in enumerate(config.groups)]
    # Per winner (rule index; the extra last entry, -1, is the default group): the
    # optimizer whose defaults apply, and its name.
    opts = [rule_optimizers.get(r.index, (defaults, optimizer_name)) for r in rules]
    opts.append((defaults, optimizer_name))
    check_rule_hyperparameters(rules, opts)
    winners = first_matches(names, tensors, owners, rules)
    check_every_rule_used(rules, names, tensors, owners, winners)

    ids: Sequence[int | None] = [None] * len(names)
    sources: Sequence[str | None] = ids
    num_layers: int | None = None
    scales: list[float] = []
    if config.layer_decay is not None:
        layers = layer_ids(model, names, config.layer_decay)
        ids, sources, num_layers = layers.ids, layers.sources, layers.num_layers
        rate = config.layer_decay.rate
        scales = [rate ** (num_layers - 1 - i) for i in range(num_layers)]

    has_wd = ["weight_decay" in d for d, _ in opts]
    base_wd = [d["weight_decay"] if w else None for (d, _), w in zip(opts, has_wd, strict=True)]
    base_lr = [d.get("lr") for d, _ in opts]
    no_decay = NoDecay(config.no_decay)
    # no_decay applies where the group's own optimizer has a non-zero weight decay.
    decays = [bool(w and wd and config.no_decay) for w, wd in zip(has_wd, base_wd, strict=True)]
    rule_opt = [r.index if r.index in rule_optimizers else -1 for r in rules] + [-1]

    # Per-rule facts as lists indexed by the winner; the extra last entry (index -1) is
    # the default group, so the hot loop below does no attribute lookups.
    frozen = [r.rule.frozen for r in rules] + [False]
    frozen_labels = [f"frozen by {r.label}" for r in rules] + [""]
    may_skip_wd = [r.rule.weight_decay is None and decays[r.index] for r in rules]
    may_skip_wd.append(decays[-1])
    layered = [r.rule.lr is None for r in rules] + [True]
    # Rules with unfreeze_at are grouped now (whatever requires_grad says: an earlier
    # fit may have frozen them already) and frozen until they join.
    joining = [r.rule.unfreeze_at is not None for r in rules] + [False]
    # Everything frozen by the model itself (BaseFinetuning's freeze-all) while something
    # unfreezes later: group it all, as an optimizer over model.parameters() would.
    frozen_by_model = frozen_start and not any(
        p.requires_grad for p, w in zip(tensors, winners, strict=True) if not frozen[w]
    )

    pre: dict[tuple[int, bool, int | None], PreGroup] = {}
    infos: list[ParamInfo] = []
    to_freeze: list[torch.Tensor] = []
    rows = zip(names, tensors, owners, winners, ids, sources, strict=True)
    for name, p, owner, win, layer_id, source in rows:
        if joining[win]:
            to_freeze.append(p)
        elif frozen[win] or not (p.requires_grad or frozen_by_model):
            if frozen[win]:
                label = frozen_labels[win]
                to_freeze.append(p)
            else:
                label = "requires_grad=False"
            infos.append(ParamInfo(name, "", label, layer_id, p.numel(), False, True, p, source))
            continue
        skip_wd = may_skip_wd[win] and no_decay(name, p, owner)
        # Keyed by what decides the hyperparameters; the dict keeps first-appearance order.
        key = (win, skip_wd, layer_id if layered[win] else None)
        group = pre.get(key)
        if group is None:
            group = pre[key] = new_group(
                rules[win] if win >= 0 else None,
                skip_wd,
                key[2],
                scales,
                base_lr[win],
                has_wd[win],
                base_wd[win],
                opts[win][1],
                rule_opt[win],
            )
        group.params.append(p)
        info = ParamInfo(name, "", group.label, layer_id, p.numel(), group.decay, False, p, source)
        group.infos.append(info)
        infos.append(info)

    if not pre:
        raise ConfigError(*_nothing_to_train(infos))
    merged = merge(list(pre.values()))
    active = [g for g in merged if g.rule is None or g.rule.rule.unfreeze_at is None]
    if not active:
        raise ConfigError(
            "optim.groups",
            "every trainable parameter waits for unfreeze_at, so the optimizer would start "
            "empty; let at least one group train from the start",
        )
    return ParamGroups(
        groups=[{"params": g.params, "name": g.name, **g.hyper} for g in active],
        schedules=[g.schedule for g in active],
        labels=[g.label for g in active],
        params=infos,
        num_layers=num_layers,
        optimizers=[g.optimizer for g in active],
        pending=[
            PendingGroup(
                {"params": g.params, "name": g.name, **g.hyper},
                g.schedule,
                g.label,
                g.rule.rule.unfreeze_at,
                g.rule.index,
                g.rule.rule,
            )
            for g in merged
            if g.rule is not None and g.rule.rule.unfreeze_at is not None
        ],
        rule_configs=[g.rule.rule if g.rule is not None else None for g in active],
        freeze=to_freeze,
    )


def _nothing_to_train(infos: Sequence[ParamInfo]) -> tuple[str, str]:
    """``(key, message)`` naming what left nothing to train."""
    if not infos:
        return "model", "the model has no parameters, so there is nothing to optimize"
    by_rule = sum(1 for i in infos if i.rule.startswith("frozen by"))
    by_model = len(infos) - by_rule
    if by_model == 0:
        return (
            "optim.groups",
            f"no trainable parameter left: `frozen: true` rules freeze all {len(infos)} "
            "parameters; drop `frozen: true` from a rule, narrow its params, or give it "
            "unfreeze_at",
        )
    if by_rule == 0:
        return (
            "model",
            f"all {len(infos)} parameters have requires_grad=False (set by the model or a "
            "callback), so nothing can train; unfreeze some, or let a BaseFinetuning callback "
            "unfreeze them during the run (then the optimizer starts over the frozen ones)",
        )
    return (
        "optim.groups",
        f"no trainable parameter left: {by_rule} parameters are frozen by `frozen: true` rules "
        f"and the other {by_model} have requires_grad=False; drop `frozen: true` from a rule "
        "or unfreeze some parameters",
    )
