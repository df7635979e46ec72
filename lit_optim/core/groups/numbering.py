"""Numbering by where parameters run: blocks 1, 2, ...; the rest before, between or after.

Where a parameter runs is read statically from the module tree: a module's own
parameters, then its children in registration order, except beside the child that leads
to the stack, where a child named as running before it (``embed``, ``embedding``, ``pre``,
``in``, ``stem``, ``patch``) or after it (``final``, ``post``, ``out``, ``head``,
``pooler``, ``classifier``) is moved to that side (OPT's ``final_layer_norm`` and
``project_out``, BART's ``layernorm_embedding``), and per-stage lists beside a list of
stages are interleaved with it. Then: before the first block -> 0, block ``k`` -> ``k``,
between two blocks -> the preceding block, after the last block -> last.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from lit_optim.core.groups.names import _WRAPPERS, normalize_name
from lit_optim.core.groups.structure import CONTAINERS, Stack, find_stacks, main_stacks

__all__ = ["StructureIds", "ids_for", "number_parameters", "structure_ids"]

_BEFORE = frozenset({"embed", "embeds", "embedding", "embeddings", "pre", "in", "stem", "patch"})
_AFTER = frozenset({"final", "post", "out", "head", "pooler", "classifier"})
_WORD = re.compile(r"[a-z]+")


@dataclass
class StructureIds:
    """Ids from the structure, or why there are none."""

    ids: dict[str, int]  #: normalised parameter name -> id ({} when refused)
    stacks: list[Stack]  #: the main stacks (encoder, decoder) or the rivals when refused
    problem: str = ""  #: why the structure gives no answer ("" = it does)
    in_block: set[str] = field(default_factory=set)  #: names of parameters inside a block


def structure_ids(model: nn.Module, *, number: bool = True) -> StructureIds:
    """Layer id of every parameter from the module tree, or the reason there is none.

    Args:
        model: The model.
        number: Number the parameters; ``False`` only finds the main stacks (``ids`` is
            then empty: :func:`number_parameters` can fill it).

    Returns:
        Ids by normalised parameter name when one main stack (or an encoder and a
        decoder) stands out, else an empty ``ids`` with ``problem`` saying why and
        ``stacks`` the candidates.

    """
    stacks = find_stacks(model)
    main, problem = main_stacks(stacks)
    if problem or not number:
        return StructureIds({}, main, problem)
    ids, inside = number_parameters(model, main)
    return StructureIds(ids, main, "", inside)


def ids_for(model: nn.Module, stacks: Sequence[Stack]) -> dict[str, int]:
    """Ids of every parameter with ``stacks`` as the main stack, by static execution order."""
    return number_parameters(model, stacks)[0]


def number_parameters(model: nn.Module, stacks: Sequence[Stack]) -> tuple[dict[str, int], set[str]]:
    """Ids by normalised parameter name, and the names that are inside a block."""
    block_id: dict[str, int] = {}
    for stack in stacks:
        for path in stack.blocks:
            block_id.setdefault(path, len(block_id) + 1)
    last = len(block_id) + 1
    leads: set[str] = {""}
    for path in block_id:
        parts = path.split(".")
        leads.update(".".join(parts[:i]) for i in range(1, len(parts)))
    stage_lists = {s.key for s in stacks if s.staged}
    ids: dict[str, int] = {}
    inside: set[str] = set()
    after_last: list[str] = []
    current = 0
    for name, block in _walk(model, block_id, leads, stage_lists):
        if block:
            current = block
            if name not in ids:
                ids[name] = block
                inside.add(name)
        elif name not in ids:
            ids[name] = current
            if current == len(block_id):
                after_last.append(name)
    for name in after_last:
        ids[name] = last
    return ids, inside


def _walk(
    model: nn.Module, block_id: dict[str, int], leads: set[str], stage_lists: set[str]
) -> list[tuple[str, int]]:
    """(normalised parameter name, block id or 0) in static execution order."""
    out: list[tuple[str, int]] = []
    seen: set[int] = set()
    todo: list[tuple[str, nn.Module, int]] = [("", model, 0)]
    while todo:
        path, module, block = todo.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        norm = normalize_name(path + ".x")[:-1] if path else ""  # "a.b." (or "")
        if not block:
            block = block_id.get(norm[:-1], 0)
            if block:
                _emit_block(module, norm, block, seen, out)
                continue
        params = module._parameters
        out.extend((norm + name, block) for name, p in params.items() if p is not None)
        if not module._modules:
            continue
        kids = [(n, c) for n, c in module._modules.items() if c is not None]
        if not block and norm[:-1] in leads:
            kids = _reorder(kids, norm, leads, stage_lists)
        dot = path + "." if path else ""
        todo.extend((dot + n, c, block) for n, c in reversed(kids))
    return out


def _emit_block(
    block: nn.Module, norm: str, block_no: int, seen: set[int], out: list[tuple[str, int]]
) -> None:
    """Every parameter of one block (the bulk of a model), without per-module normalising.

    Inside a block only wrapper components (activation checkpointing's) need stripping;
    DDP's ``module.`` is a first component, never inside a block.
    """
    seen.discard(id(block))  # the walk marked it on the way in
    todo: list[tuple[str, nn.Module]] = [(norm, block)]
    while todo:
        prefix, module = todo.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.extend(
            (prefix + name, block_no) for name, p in module._parameters.items() if p is not None
        )
        children = module._modules
        if children:
            todo.extend(
                (prefix if name in _WRAPPERS else prefix + name + ".", child)
                for name, child in reversed(children.items())
                if child is not None
            )


def _reorder(
    children: list[tuple[str, nn.Module]], norm: str, leads: set[str], stage_lists: set[str]
) -> list[tuple[str, nn.Module]]:
    """Children of a module on the way to the stack, in the order they run."""
    leading = [i for i, (n, _) in enumerate(children) if norm + n in leads]
    if not leading:
        return children
    first, final = leading[0], leading[-1]
    before: list[tuple[str, nn.Module]] = []
    middle: list[tuple[str, nn.Module]] = []
    after: list[tuple[str, nn.Module]] = []
    for i, (n, c) in enumerate(children):
        side = _side(n) if i not in leading else ""
        if side == "before" or (not side and i < first):
            before.append((n, c))
        elif side == "after" or (not side and i > final):
            after.append((n, c))
        else:
            middle.append((n, c))
    stages = [(n, c) for n, c in middle if norm + n in stage_lists]
    if len(stages) == 1 and len(leading) == 1:
        # Per-stage lists beside a list of stages run with each stage (SegFormer).
        name, stage_list = stages[0]
        size = len(stage_list._modules)
        pre = [(n, c) for n, c in before if _parallel(c, size)]
        post = [(n, c) for n, c in after if _parallel(c, size)]
        if pre or post:
            before = [t for t in before if t not in pre]
            after = [t for t in after if t not in post]
            middle = []
            for i, key in enumerate(stage_list._modules):
                for n, c in pre:
                    middle.append((f"{n}.{list(c._modules)[i]}", c._modules[list(c._modules)[i]]))
                middle.append((f"{name}.{key}", stage_list._modules[key]))
                for n, c in post:
                    middle.append((f"{n}.{list(c._modules)[i]}", c._modules[list(c._modules)[i]]))
    return before + middle + after


def _side(name: str) -> str:
    words = set(_WORD.findall(name.lower()))
    if words & _AFTER:
        return "after"
    if words & _BEFORE:
        return "before"
    return ""


def _parallel(module: nn.Module, size: int) -> bool:
    return isinstance(module, CONTAINERS) and size >= 2 and len(module._modules) == size
