"""Layer ids for layer-wise lr decay: where each parameter sits, 0 = embeddings.

Sources, tried in order:

1. ``layer_decay.layers``: a regex whose groups number the blocks: the distinct values
   they capture, in order (digits as numbers), are blocks 1, 2, ...; a parameter it does
   not match is placed by name order (before the first match 0, between two matches the
   preceding block, after the last match last).
2. A module's own ``group_matcher(coarse=False)`` (timm's protocol, see
   :mod:`lit_optim.core.groups.matcher`): the model itself or a submodule
   (``backbone``); parameters outside it go last.
3. The module tree (:mod:`lit_optim.core.groups.structure`): the main stack of repeated
   blocks, everything else numbered by where it runs (before the first block -> 0,
   between two blocks -> the preceding block, after the last -> last). When that stack is
   a timm-style ViT's (``blocks`` beside ``cls_token`` / ``pos_embed`` / ``patch_embed``
   at the same prefix), its edges follow timm's ViT ``group_matcher``: ``cls_token``,
   ``dist_token``, ``reg_token``, ``pos_embed``, ``patch_embed``, ``rel_pos_bias``,
   ``norm_pre`` -> 0, ``norm*`` -> the last block's id (timm's ``MATCH_PREV_GROUP``),
   anything else (``fc_norm``, ``head``) -> last.

When the structure is ambiguous (no stack, a stack of one block, two stacks of similar
size that are not an encoder and a decoder), :class:`ConfigError` names the candidates
and suggests a ``layers`` regex that was applied to the model before being suggested.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from lit_optim.core.config import LayerDecay
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.matcher import find_group_matchers, matcher_layer_ids
from lit_optim.core.groups.names import normalize_name
from lit_optim.core.groups.rules import closest_names, quote
from lit_optim.core.groups.structure import (
    Stack,
    find_stacks,
    ids_for,
    number_parameters,
    structure_ids,
)

__all__ = ["LayerIds", "layer_ids", "regex_layer_ids"]

_KEY = "optim.layer_decay"

#: timm's ViT ``group_matcher(coarse=False)`` stems (all ViT-style timm models together).
_VIT_STEMS = (
    "cls_token",
    "dist_token",
    "reg_token",
    "pos_embed",
    "patch_embed",
    "rel_pos_bias",
    "norm_pre",
)
#: Names that mark a timm-style ViT when they sit beside ``blocks.N``.
_VIT_ANCHORS = ("cls_token", "reg_token", "pos_embed", "patch_embed")
# Applied with re.match at the prefix, in timm's order: group 1 = stem, group 2 = block
# index, group 3 = norm (joins the last block).
_VIT = re.compile(rf"({'|'.join(_VIT_STEMS)})|blocks\.(\d+)|(norm)")
_VIT_FIRST_BLOCK = re.compile(r"^((?:[^.]+\.)*?)blocks\.\d+\.")

# Position kinds (see _resolve).
_STEM, _BLOCK_KIND, _PREV, _AFTER, _POSITIONAL = range(5)
_Kind = tuple[int, str, int, str]  # (kind, sequence key, block index, source label)


@dataclass
class LayerIds:
    """Layer id of every parameter, where it came from, and the layer count."""

    ids: list[int]
    sources: list[str]
    num_layers: int


def layer_ids(model: nn.Module, names: Sequence[str], spec: LayerDecay) -> LayerIds:
    """Layer id of every parameter (in ``names`` order) and the layer count.

    Args:
        model: The model (searched for a ``group_matcher``, else read for its stack of
            blocks).
        names: Its normalised parameter names, as :func:`~.names.collect` lists them.
        spec: The ``layer_decay`` section.

    Raises:
        ConfigError: No source gives layer ids (the message names the candidates and
            suggests a ``layers`` regex), the ``layers`` regex is bad, or ``num_layers``
            is too small.

    """
    if spec.layers is not None:
        ids, sources = regex_layer_ids(names, spec.layers)
    else:
        matchers = find_group_matchers(model)
        if len(matchers) > 1:
            shown = ", ".join(repr(p or "the model") for p, _ in matchers)
            raise ConfigError(
                _KEY,
                f"several submodules have a group_matcher ({shown}), so there is no single "
                f"layer order; {suggestion(model, names)}",
            )
        if matchers:
            prefix, module = matchers[0]
            where = prefix or "the model"
            ids, sources = matcher_layer_ids(
                names, prefix, module.group_matcher(coarse=False), where
            )
        else:
            ids, sources = _from_structure(model, names)
    top = max(ids)
    if spec.num_layers is None:
        return LayerIds(ids, sources, top + 1)
    if top >= spec.num_layers:
        worst = names[ids.index(top)]
        raise ConfigError(
            f"{_KEY}.num_layers",
            f"{worst!r} is in layer {top}, so num_layers must be >= {top + 1} "
            f"(got {spec.num_layers}); omit it to infer {top + 1}",
        )
    return LayerIds(ids, sources, spec.num_layers)


def regex_layer_ids(names: Sequence[str], pattern: str) -> tuple[list[int], list[str]]:
    """Ids and sources that ``layer_decay.layers: pattern`` gives these names.

    Raises:
        ConfigError: The regex does not compile, has no group, group 1 captures no digits,
            or it matches no name.

    """
    return _resolve(_classify_by_regex(names, pattern), raw=True)


def _from_structure(model: nn.Module, names: Sequence[str]) -> tuple[list[int], list[str]]:
    found = structure_ids(model, number=False)
    if found.problem:
        raise ConfigError(
            _KEY,
            f"cannot infer layer ids: {found.problem}{describe(found.stacks)}; "
            f"{suggestion(model, names, found.stacks)}",
        )
    stack = found.stacks[0]
    prefix = _timm_vit_prefix(names) if len(found.stacks) == 1 else None
    if prefix is not None and not stack.staged and stack.where == prefix + "blocks":
        return _resolve(_classify_vit(names, prefix), raw=False)
    by_name, inside = number_parameters(model, found.stacks)
    ids = [by_name[n] for n in names]
    last = max(ids)
    where = " + ".join(repr(s.where) for s in found.stacks)
    labels = {
        "block": f"structure: block of {where}",
        0: "structure: before the first block: 0",
        last: "structure: after the last block: last",
    }
    between = "structure: between blocks: the preceding block"
    sources = [
        labels["block"] if n in inside else labels.get(i, between)
        for n, i in zip(names, ids, strict=True)
    ]
    return ids, sources


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


def _classify_by_regex(names: Sequence[str], pattern: str) -> list[_Kind]:
    key = f"{_KEY}.layers"
    body = pattern[3:] if pattern.startswith("re:") else pattern
    try:
        rx = re.compile(body)
    except re.error as err:
        raise ConfigError(
            key, f"invalid regex {quote(body)}: {err}; e.g. 're:^blocks\\.(\\d+)\\.'"
        ) from None
    if rx.groups < 1:
        raise ConfigError(
            key,
            f"{quote(body)} has no group; group 1 must capture the block index, "
            "e.g. 'blocks\\.(\\d+)\\.'",
        )
    # Pass 1: what the groups capture; pass 2: blocks numbered by the distinct captures in
    # order (digits as numbers), so torchvision's 1-based layer1..4 give 1..4, and two
    # groups (layer(\d+)\.(\d+), Mixed_(\d+)([a-z]+)) number every block.
    captures: list[tuple[tuple[int, int | str], ...] | None] = []
    for name in names:
        m = rx.search(name)
        if m is None or m.group(1) is None:
            captures.append(None)
            continue
        text = m.group(1)
        if not text.isdigit():
            raise ConfigError(
                key,
                f"group 1 captured {text!r} in {name!r}; it must capture a block index "
                "(digits), e.g. 'blocks\\.(\\d+)\\.'",
            )
        captures.append(tuple(_order(g) for g in m.groups()))
    rank = {c: i for i, c in enumerate(sorted({c for c in captures if c is not None}))}
    kinds: list[_Kind] = [
        (_POSITIONAL, "", 0, "") if c is None else (_BLOCK_KIND, "", rank[c], "layers regex")
        for c in captures
    ]
    if all(kind != _BLOCK_KIND for kind, _, _, _ in kinds) and names:
        near = closest_names(pattern, names)
        hint = (
            f"closest: {', '.join(map(repr, near))}"
            if near
            else (f"names look like: {', '.join(map(repr, names[:3]))}")
        )
        raise ConfigError(key, f"{quote(pattern)} matched no parameter ({hint})")
    return kinds


def _order(group: str | None) -> tuple[int, int | str]:
    """Sort key of a captured value: numbers by value, before words, before nothing."""
    if group is None:
        return (2, "")
    return (0, int(group)) if group.isdigit() else (1, group)


def _timm_vit_prefix(names: Sequence[str]) -> str | None:
    """Return the prefix (``""``, ``"backbone."``) of a timm-style ViT, or ``None``."""
    for name in names:
        m = _VIT_FIRST_BLOCK.match(name)
        if m is not None:
            prefix = m.group(1)
            # Whole components only: SegFormer's patch_embeddings is no patch_embed.
            exact = {prefix + s for s in _VIT_ANCHORS}
            stems = tuple(prefix + s + "." for s in _VIT_ANCHORS)
            return prefix if any(n in exact or n.startswith(stems) for n in names) else None
    return None


def _classify_vit(names: Sequence[str], prefix: str) -> list[_Kind]:
    seq = prefix + "blocks."
    start = len(prefix)
    after = (_AFTER, "", 0, "")
    match = _VIT.match
    out: list[_Kind] = []
    blocks: dict[str, _Kind] = {}  # "12" -> its kind: one tuple per block, no regex per name
    cut = len(seq)
    for name in names:
        if name.startswith(seq):
            index = name[cut:].partition(".")[0]
            kind = blocks.get(index)
            if kind is None and index.isdigit():
                kind = blocks[index] = (_BLOCK_KIND, seq, int(index), "ViT names: blocks.N")
            if kind is not None:
                out.append(kind)
                continue
        m = match(name, start) if name.startswith(prefix) else None
        if m is None:
            out.append(after)
        elif m.lastindex == 2:
            out.append((_BLOCK_KIND, seq, int(m.group(2)), "ViT names: blocks.N"))
        elif m.lastindex == 1:
            out.append((_STEM, "", 0, f"ViT names: {m.group(1)}"))
        else:
            out.append((_PREV, "", 0, "ViT names: norm joins the last block"))
    return out


def _resolve(kinds: Sequence[_Kind], raw: bool) -> tuple[list[int], list[str]]:
    """Turn positions into ids: stem 0, blocks 1.., ``_PREV`` = last block, after = last."""
    spans: dict[str, list[int]] = {}  # sequence -> [min index, max index], first-seen order
    first = final = -1
    for k, (kind, seq, idx, _) in enumerate(kinds):
        if kind == _BLOCK_KIND:
            span = spans.get(seq)
            if span is None:
                spans[seq] = [idx, idx]
            elif idx < span[0]:
                span[0] = idx
            elif idx > span[1]:
                span[1] = idx
            final = k
            if first < 0:
                first = k
    # Block id = offset[seq] + index: sequences are numbered one after the other from 1.
    offsets: dict[str, int] = {}
    total = 0
    for seq, (lo, hi) in spans.items():
        offsets[seq] = 1 if raw else total - lo + 1
        total += hi - lo + 1
    last_block = max(offsets[seq] + hi for seq, (_, hi) in spans.items())
    last = last_block + 1
    ids: list[int] = []
    sources: list[str] = []
    current = 0
    for k, (kind, seq, idx, label) in enumerate(kinds):
        if kind == _BLOCK_KIND:
            current = offsets[seq] + idx
            ids.append(current)
            sources.append(label)
        elif kind == _STEM:
            ids.append(0)
            sources.append(label)
        elif kind == _PREV:
            ids.append(last_block)
            sources.append(label)
        elif kind == _AFTER or k > final:
            ids.append(last)
            sources.append("after the last block: last")
        elif k < first:
            ids.append(0)
            sources.append("before the first block: 0")
        else:
            ids.append(current)
            sources.append("between blocks: the preceding block")
    return ids, sources
