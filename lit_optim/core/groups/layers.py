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
from lit_optim.core.groups.numbering import number_parameters, structure_ids
from lit_optim.core.groups.positions import (
    AFTER,
    BLOCK,
    PREV,
    STEM,
    Kind,
    regex_layer_ids,
    resolve,
)
from lit_optim.core.groups.suggest import describe, suggestion

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
        return resolve(_classify_vit(names, prefix), raw=False)
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


def _classify_vit(names: Sequence[str], prefix: str) -> list[Kind]:
    seq = prefix + "blocks."
    start = len(prefix)
    after = (AFTER, "", 0, "")
    match = _VIT.match
    out: list[Kind] = []
    blocks: dict[str, Kind] = {}  # "12" -> its kind: one tuple per block, no regex per name
    cut = len(seq)
    for name in names:
        if name.startswith(seq):
            index = name[cut:].partition(".")[0]
            kind = blocks.get(index)
            if kind is None and index.isdigit():
                kind = blocks[index] = (BLOCK, seq, int(index), "ViT names: blocks.N")
            if kind is not None:
                out.append(kind)
                continue
        m = match(name, start) if name.startswith(prefix) else None
        if m is None:
            out.append(after)
        elif m.lastindex == 2:
            out.append((BLOCK, seq, int(m.group(2)), "ViT names: blocks.N"))
        elif m.lastindex == 1:
            out.append((STEM, "", 0, f"ViT names: {m.group(1)}"))
        else:
            out.append((PREV, "", 0, "ViT names: norm joins the last block"))
    return out
