"""Several separate optimizers from one ``optim:`` section (``optim.optimizers``).

Each entry names the parameters it takes (``params`` globs / ``modules`` types, the same
matching as group rules) and has its own optimizer, groups and schedule. Entries are
built in the order written, the order ``self.optimizers()`` returns them in a model with
manual optimization. Every trainable parameter belongs to exactly one entry: an entry
without ``params`` / ``modules`` takes the rest, a parameter two entries select, or one
no entry selects, is an error.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig
    >>> model = torch.nn.ModuleDict({"g": torch.nn.Linear(2, 2), "d": torch.nn.Linear(2, 1)})
    >>> cfg = OptimConfig(optimizers={"generator": {"params": ["g.*"], "optimizer": "Adam"},
    ...                               "discriminator": {"optimizer": "SGD"}})
    >>> [[p.shape[0] for p in share] for share in assign(model, cfg)]
    [[2, 2], [1, 1]]

:func:`lit_optim.core.build.build` builds each entry on its share.

"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lit_optim.core.config import GroupRule, OptimConfig, OptimizerEntry, rekey
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.names import collect
from lit_optim.core.groups.rules import check_every_rule_used, compile_rule, first_matches

__all__ = ["assign"]


def assign(model: nn.Module, config: OptimConfig) -> list[list[torch.Tensor]]:
    """The trainable parameters of each entry, in entry order (each parameter once)."""
    entries: list[OptimizerEntry] = list((config.optimizers or {}).values())
    names, tensors, owners = collect(model)
    selective = [(i, e) for i, e in enumerate(entries) if e.params or e.modules]
    rules = []
    for j, (_, e) in enumerate(selective):
        rule = GroupRule(name=e.name, params=e.params, modules=e.modules)
        try:
            rules.append(compile_rule(j, rule, model))
        except ConfigError as err:
            raise rekey(err, f"optim.groups[{j}]", f"optim.optimizers.{e.name}") from None
    winners = first_matches(names, tensors, owners, rules)
    try:
        check_every_rule_used(rules, names, tensors, owners, winners)
    except ConfigError as err:
        j = int(err.key.split("[")[1].split("]")[0])
        raise rekey(err, f"optim.groups[{j}]", f"optim.optimizers.{selective[j][1].name}") from None
    _refuse_overlaps(rules, selective, names, tensors, owners, winners)
    rest = next((i for i, e in enumerate(entries) if not e.params and not e.modules), None)
    shares: list[list[torch.Tensor]] = [[] for _ in entries]
    orphans = []
    for name, p, win in zip(names, tensors, winners, strict=True):
        if win >= 0:
            shares[selective[win][0]].append(p)
        elif rest is not None:
            shares[rest].append(p)
        elif p.requires_grad:
            orphans.append(f"{name} {tuple(p.shape)}")
    if orphans:
        shown = ", ".join(orphans[:4]) + (
            f" and {len(orphans) - 4} more" if len(orphans) > 4 else ""
        )
        raise ConfigError(
            "optim.optimizers",
            f"{len(orphans)} trainable parameters belong to no optimizer ({shown}); add them "
            "to an entry's params, leave params out of one entry so it takes the rest, or "
            "set requires_grad=False",
        )
    if rest is not None and not shares[rest]:
        name = entries[rest].name
        raise ConfigError(
            f"optim.optimizers.{name}",
            "takes every parameter the other optimizers do not, but they take them all; "
            "remove it or give it params",
        )
    return shares


def _refuse_overlaps(
    rules: list[Any],
    selective: list[tuple[int, OptimizerEntry]],
    names: list[str],
    tensors: list[torch.Tensor],
    owners: list[nn.Module],
    winners: list[int],
) -> None:
    for name, p, owner, win in zip(names, tensors, owners, winners, strict=True):
        if win < 0:
            continue
        for r in rules[win + 1 :]:
            if r.matches(name, p, owner):
                first, second = selective[win][1].name, selective[r.index][1].name
                raise ConfigError(
                    f"optim.optimizers.{second}",
                    f"{name!r} is also selected by {first!r}; a parameter belongs to one "
                    "optimizer: narrow one of the two selections",
                )
