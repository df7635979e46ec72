"""Suggested ``layer_decay.layers`` regexes, each applied to the model before it is offered."""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.names import normalize_name
from lit_optim.core.groups.numbering import ids_for
from lit_optim.core.groups.positions import regex_layer_ids
from lit_optim.core.groups.rules import quote
from lit_optim.core.groups.structure import Stack, find_stacks

__all__ = ["block_regex", "describe", "numbered_modules", "suggestion"]


def describe(stacks: Sequence[Stack]) -> str:
    """The candidate stacks as a message lists them."""
    if not stacks:
        return ""
    shown = ", ".join(
        f"{s.where!r} ({len(s.blocks)} block{'s' if len(s.blocks) != 1 else ''}, "
        f"{s.numel:,} parameters)"
        for s in stacks
    )
    return f" (candidates: {shown})"


def suggestion(
    model: nn.Module, names: Sequence[str], stacks: Sequence[Stack] | None = None
) -> str:
    """``set layer_decay.layers to ..., e.g. '<regex>'`` with regexes checked on ``names``.

    Each candidate stack gives the regex that reproduces, applied as written, the ids the
    structure would give with that stack as the main one; with no candidate stack, the
    most parameter-heavy family of numbered modules (``Mixed_5b`` .. ``Mixed_7c``) does.
    """
    regexes: list[str] = []
    for stack in stacks if stacks is not None else find_stacks(model):
        wanted = ids_for(model, [stack])
        regex = block_regex(stack.blocks)
        if regex is not None and _gives(names, regex, [wanted[n] for n in names]):
            regexes.append(regex)
    if not regexes:
        for blocks in numbered_modules(model):
            regex = block_regex(blocks)
            if regex is not None and _matches_each(names, regex, blocks):
                regexes.append(regex)
                break
    text = "set layer_decay.layers to a regex whose groups number the blocks"
    if not regexes:
        # No example: one that matches nothing here would only move the error.
        return text + " (no module of this model is numbered, so none is suggested)"
    if len(regexes) > 1:
        text += f" (for the other candidates: {', '.join(quote(r) for r in regexes[1:])})"
    return f"{text}, e.g. {quote(regexes[0])}"


def _gives(names: Sequence[str], regex: str, wanted: list[int]) -> bool:
    try:
        ids, _ = regex_layer_ids(names, regex)
    except ConfigError:
        return False
    return ids == wanted


def _matches_each(names: Sequence[str], regex: str, blocks: Sequence[str]) -> bool:
    """Every block gets its own id and nothing but these blocks matches."""
    rx = re.compile(regex[3:])
    hit = [n for n in names if rx.search(n)]
    inside = [n for n in names if any(n.startswith(b + ".") for b in blocks)]
    if hit != inside:
        return False
    ids, _ = regex_layer_ids(names, regex)
    pairs = list(zip(names, ids, strict=True))
    by_block = {b: {i for n, i in pairs if n.startswith(b + ".")} for b in blocks}
    firsts = [min(v) for v in by_block.values() if v]
    return all(len(v) == 1 for v in by_block.values() if v) and len(set(firsts)) == len(firsts)


_TOKEN = re.compile(r"\d+|[A-Za-z]+|[^A-Za-z\d]+")


def block_regex(blocks: Sequence[str]) -> str | None:
    r"""A ``layers`` regex matching exactly these block paths, a group per varying part.

    Example:
        >>> block_regex(["layer1.0", "layer1.1", "layer2.0"])
        're:^layer(\\d+)\\.(\\d+)\\.'
        >>> block_regex(["Mixed_5b", "Mixed_5c", "Mixed_6a"])
        're:^Mixed_(\\d+)([a-z]+)\\.'

    """
    tokens = [_TOKEN.findall(b) for b in blocks]
    if not tokens or any(len(t) != len(tokens[0]) for t in tokens):
        return None
    columns = list(zip(*tokens, strict=True))
    if len(blocks) == 1:
        # One block: its last number is the one captured.
        digits = [i for i, c in enumerate(columns) if c[0].isdigit()]
        if not digits:
            return None
        varies = {digits[-1]}
    else:
        varies = {i for i, c in enumerate(columns) if len(set(c)) > 1}
    parts: list[str] = []
    for i, column in enumerate(columns):
        if i not in varies:
            parts.append(re.escape(column[0]))
        elif all(c.isdigit() for c in column):
            parts.append(r"(\d+)")
        elif all(c.isalpha() and c.islower() for c in column) and "(" in "".join(parts):
            parts.append(r"([a-z]+)")  # group 1 must capture digits, so never first
        else:
            return None
    return f"re:^{''.join(parts)}\\." if varies else None


def numbered_modules(model: nn.Module) -> list[list[str]]:
    """Families of sibling modules whose names differ by numbers, most parameters first.

    ``Mixed_5b``, ``Mixed_6a`` .. ``Mixed_7c`` are one family (``Mixed_#``), as are
    ``enc.0`` .. ``enc.2``; a family needs two members.
    """
    families: dict[tuple[str, str], list[str]] = {}
    weight: dict[tuple[str, str], int] = {}
    for path, module in model.named_modules():
        if not path:
            continue
        parent, _, last = path.rpartition(".")
        if not any(ch.isdigit() for ch in last):
            continue
        key = (parent, re.sub(r"\d+[a-z]?", "#", last))
        numel = sum(p.numel() for p in module.parameters())
        if numel == 0:
            continue
        families.setdefault(key, []).append(normalize_name(path + ".x")[:-2])
        weight[key] = weight.get(key, 0) + numel
    ranked = sorted((k for k, v in families.items() if len(v) >= 2), key=lambda k: -weight[k])
    return [families[k] for k in ranked]
