"""Ids from positions: blocks numbered, the rest placed before, between or after them.

Shared by the ``layers`` regex, timm-style ViT names and the suggestions checked before
they are offered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.rules import closest_names, quote

__all__ = ["AFTER", "BLOCK", "POSITIONAL", "PREV", "STEM", "Kind", "regex_layer_ids", "resolve"]

_KEY = "optim.layer_decay"

# Position kinds (see resolve).
STEM, BLOCK, PREV, AFTER, POSITIONAL = range(5)
Kind = tuple[int, str, int, str]  # (kind, sequence key, block index, source label)


def regex_layer_ids(names: Sequence[str], pattern: str) -> tuple[list[int], list[str]]:
    """Ids and sources that ``layer_decay.layers: pattern`` gives these names.

    Raises:
        ConfigError: The regex does not compile, has no group, group 1 captures no digits,
            or it matches no name.

    """
    return resolve(_classify_by_regex(names, pattern), raw=True)


def _classify_by_regex(names: Sequence[str], pattern: str) -> list[Kind]:
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
    kinds: list[Kind] = [
        (POSITIONAL, "", 0, "") if c is None else (BLOCK, "", rank[c], "layers regex")
        for c in captures
    ]
    if all(kind != BLOCK for kind, _, _, _ in kinds) and names:
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


def resolve(kinds: Sequence[Kind], raw: bool) -> tuple[list[int], list[str]]:
    """Turn positions into ids: stem 0, blocks 1.., ``PREV`` = last block, after = last."""
    spans: dict[str, list[int]] = {}  # sequence -> [min index, max index], first-seen order
    first = final = -1
    for k, (kind, seq, idx, _) in enumerate(kinds):
        if kind == BLOCK:
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
        if kind == BLOCK:
            current = offsets[seq] + idx
            ids.append(current)
            sources.append(label)
        elif kind == STEM:
            ids.append(0)
            sources.append(label)
        elif kind == PREV:
            ids.append(last_block)
            sources.append(label)
        elif kind == AFTER or k > final:
            ids.append(last)
            sources.append("after the last block: last")
        elif k < first:
            ids.append(0)
            sources.append("before the first block: 0")
        else:
            ids.append(current)
            sources.append("between blocks: the preceding block")
    return ids, sources
