"""Layer ids for layer-wise lr decay: where each parameter sits, 0 = embeddings.

Sources, tried in order:

1. ``layer_decay.layers``: a regex whose group 1 is the block index (id = index + 1).
2. A module's own ``group_matcher(coarse=False)`` (timm's protocol, see
   :mod:`lit_optim.core.groups.matcher`): the model itself or a submodule
   (``backbone``); parameters outside it go last.
3. Name schemes:

   * timm ViT-style (``blocks.N`` beside ``cls_token`` / ``pos_embed`` / ``patch_embed``
     at the same prefix): ``cls_token``, ``dist_token``, ``reg_token``, ``pos_embed``,
     ``patch_embed``, ``rel_pos_bias``, ``norm_pre`` -> 0, ``blocks.N`` -> N+1, ``norm*``
     -> the last block's id (timm's ``MATCH_PREV_GROUP``), anything else (``fc_norm``,
     ``head``) -> last;
   * BERT-style (``encoder.layer.N``: BERT, RoBERTa, HF ViT): ``embeddings.*`` -> 0,
     layer N -> N+1, anything else -> last;
   * generic: the first ``blocks.N`` / ``block.N`` / ``layers.N`` / ``layer.N`` /
     ``stages.N`` / ``stage.N`` / ``resblocks.N`` / ``h.N`` / ``layerN`` component ->
     its position in its sequence + 1 (GPT-2 ``h.N``, Llama ``model.layers.N``, T5
     ``encoder.block.N``, CLIP ``encoder.layers.N``, torchvision ``layer1..4``); several
     sequences (encoder, decoder) are numbered one after the other; parameters before
     the first block -> 0 (``wte``, ``embed_tokens``, ``shared``, ``embeddings``),
     after the last -> last (``ln_f``, ``norm``, ``lm_head``, ``post_layernorm``),
     between two blocks -> the preceding block's id (T5's ``encoder.final_layer_norm``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from lit_optim.core.config import LayerDecay
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.matcher import find_group_matchers, matcher_layer_ids
from lit_optim.core.groups.rules import closest_names, quote

__all__ = ["LayerIds", "layer_ids"]

_KEY = "optim.layer_decay"

#: The block components of the generic scheme; group 1/2 = component and index, or
#: group 3 = torchvision's ``layerN``.
_BLOCK = re.compile(
    r"(?:^|\.)(?:(blocks|block|layers|layer|stages|stage|resblocks|h)\.(\d+)|layer(\d+))(?=\.|$)"
)
_BERT_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
_BERT_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")
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
        model: The model (searched for a ``group_matcher``).
        names: Its normalised parameter names, as :func:`~.names.collect` lists them.
        spec: The ``layer_decay`` section.

    Raises:
        ConfigError: No source gives layer ids, the ``layers`` regex is bad, or
            ``num_layers`` is too small.

    """
    if spec.layers is not None:
        ids, sources = _resolve(_classify_by_regex(names, spec.layers), raw=True)
    else:
        matchers = find_group_matchers(model)
        if len(matchers) > 1:
            shown = ", ".join(repr(p or "the model") for p, _ in matchers)
            raise ConfigError(
                _KEY,
                f"several submodules have a group_matcher ({shown}), so there is no single "
                "layer order; set layer_decay.layers to a regex whose group 1 is the block "
                f"index, e.g. {quote(_example(names))}",
            )
        if matchers:
            prefix, module = matchers[0]
            where = prefix or "the model"
            ids, sources = matcher_layer_ids(
                names, prefix, module.group_matcher(coarse=False), where
            )
        else:
            kinds = _classify_auto(names)
            if not any(kind == _BLOCK_KIND for kind, _, _, _ in kinds):
                raise ConfigError(
                    _KEY,
                    "cannot infer layer ids: no parameter name has a blocks.N, layers.N, "
                    "layer.N, stages.N or layerN component and the model has no "
                    f"group_matcher (names look like: {', '.join(map(repr, names[:3]))}); "
                    "set layer_decay.layers to a regex whose group 1 is the block index, "
                    f"e.g. {quote(_example(names))}",
                )
            ids, sources = _resolve(kinds, raw=False)
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


def _example(names: Sequence[str]) -> str:
    """A ``layers`` regex that works on these names: their most numbered component."""
    best, best_count = "", 0
    seen: dict[str, set[str]] = {}
    for name in names:
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):
            m = re.fullmatch(r"([A-Za-z_]*?)(\d+)", part)
            if m is None:
                continue
            head = "".join(re.escape(p) + r"\." for p in parts[:i])
            regex = f"re:^{head}{re.escape(m.group(1))}(\\d+)\\."
            indices = seen.setdefault(regex, set())
            indices.add(m.group(2))
            if len(indices) > best_count:
                best, best_count = regex, len(indices)
            break
    return best or r"re:^encoder\.(\d+)\."


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
    kinds: list[_Kind] = []
    for name in names:
        m = rx.search(name)
        if m is None or m.group(1) is None:
            kinds.append((_POSITIONAL, "", 0, ""))
            continue
        text = m.group(1)
        if not text.isdigit():
            raise ConfigError(
                key,
                f"group 1 captured {text!r} in {name!r}; it must capture a block index "
                "(digits), e.g. 'blocks\\.(\\d+)\\.'",
            )
        kinds.append((_BLOCK_KIND, "", int(text), "layers regex"))
    if all(kind != _BLOCK_KIND for kind, _, _, _ in kinds) and names:
        near = closest_names(pattern, names)
        hint = (
            f"closest: {', '.join(map(repr, near))}"
            if near
            else (f"names look like: {', '.join(map(repr, names[:3]))}")
        )
        raise ConfigError(key, f"{quote(pattern)} matched no parameter ({hint})")
    return kinds


def _classify_auto(names: Sequence[str]) -> list[_Kind]:
    prefix = _timm_vit_prefix(names)
    if prefix is not None:
        return _classify_vit(names, prefix)
    if any(_BERT_LAYER.search(name) for name in names):
        out: list[_Kind] = []
        for name in names:
            m = _BERT_LAYER.search(name)
            if m is not None:
                seq = name[: m.start(1)]
                out.append((_BLOCK_KIND, seq, int(m.group(1)), "name pattern encoder.layer.N"))
            elif _BERT_EMBEDDINGS.search(name):
                out.append((_STEM, "", 0, "name pattern embeddings"))
            else:
                out.append((_AFTER, "", 0, ""))
        return out
    out = []
    for name in names:
        m = _BLOCK.search(name)
        if m is None:
            out.append((_POSITIONAL, "", 0, ""))
        elif m.group(2) is not None:
            seq = name[: m.start(2)]
            out.append((_BLOCK_KIND, seq, int(m.group(2)), f"name pattern {m.group(1)}.N"))
        else:
            seq = name[: m.start(3)]
            out.append((_BLOCK_KIND, seq, int(m.group(3)), "name pattern layerN"))
    return out


def _timm_vit_prefix(names: Sequence[str]) -> str | None:
    """Return the prefix (``""``, ``"backbone."``) of a timm-style ViT, or ``None``."""
    for name in names:
        m = _VIT_FIRST_BLOCK.match(name)
        if m is not None:
            prefix = m.group(1)
            stems = tuple(prefix + s for s in _VIT_ANCHORS)
            return prefix if any(n.startswith(stems) for n in names) else None
    return None


def _classify_vit(names: Sequence[str], prefix: str) -> list[_Kind]:
    seq = prefix + "blocks."
    start = len(prefix)
    after = (_AFTER, "", 0, "")
    match = _VIT.match
    out: list[_Kind] = []
    for name in names:
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
