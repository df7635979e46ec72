r"""Layer ids from the module tree: the main stack of repeated blocks, numbered where it runs.

A *run* is a sequence of consecutive children of an indexed container (``ModuleList``,
``Sequential``, ``ModuleDict`` or a subclass) that hold parameters, are composite (they have
child modules with parameters: a block, not a ``Linear``) and are of one class; a run of one
counts only when it is all its container holds (a stage with a single block). A run whose
members contain such a whole container (``stages.N.blocks.M``, ``layer1..4``) is a run of
*stages*, and is looked into; any other run is a run of *blocks*, and is not. Blocks are
grouped into *stacks* by where they live: the container of their stages, else the parent of
their own container (torchvision's ``layer1``..``layer4`` are one stack, CLIP's two towers
are two). So the ``Sequential`` inside a block (torchvision ConvNeXt's ``block``,
EfficientNet's ``MBConv.block``) is never taken for the stack.

The main stack is the one holding most parameters. A second stack holding at least a
quarter as many makes the choice ambiguous, unless the two are an ``encoder`` and a
``decoder`` (numbered encoder, then decoder); then :class:`ConfigError` names the
candidates and suggests a ``layer_decay.layers`` regex checked on the model.

The blocks and everything else are numbered by :mod:`lit_optim.core.groups.numbering`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from lit_optim.core.groups.names import _WRAPPERS, normalize_name

__all__ = ["CONTAINERS", "Stack", "find_stacks", "main_stacks"]

#: Indexed containers: where blocks are listed.
CONTAINERS = (nn.ModuleList, nn.Sequential, nn.ModuleDict)
_GENERIC = frozenset(CONTAINERS)
#: A second stack with at least this share of the main one's parameters is a rival.
RIVAL_SHARE = 0.25


@dataclass
class Stack:
    """Blocks that form one stack, in order, and where they live."""

    key: str  #: normalised path of the module the stack lives in ("" = the model)
    staged: bool = False  #: ``key`` is a list of stages (``stages.N.blocks.M``)
    blocks: list[str] = field(default_factory=list)  #: normalised block paths
    modules: list[nn.Module] = field(default_factory=list, repr=False)  #: the blocks
    numel: int = 0  #: parameters held by the blocks (counted when stacks are compared)

    @property
    def where(self) -> str:
        """The stack as messages show it: its first block's container."""
        return self.blocks[0].rsplit(".", 1)[0] if "." in self.blocks[0] else self.blocks[0]


def main_stacks(stacks: Sequence[Stack]) -> tuple[list[Stack], str]:
    """The stacks to number (in order), or the candidates and the reason to refuse."""
    if not stacks:
        return [], "the model has no stack of repeated blocks"
    ranked = sorted(stacks, key=lambda s: -s.numel)
    top = ranked[0]
    rivals = [s for s in ranked if s.numel >= RIVAL_SHARE * top.numel]
    if len(rivals) == 2:
        pair = _encoder_decoder(rivals[0], rivals[1])
        if pair is not None:
            return pair, ""
    if len(rivals) > 1:
        return rivals, (
            f"{len(rivals)} stacks of blocks of similar size, so there is no single layer order"
        )
    if len(top.blocks) < 2:
        return [top], (
            f"the main stack, {top.where!r}, has a single block (layers shared by every "
            "step, as in ALBERT?)"
        )
    return [top], ""


def _encoder_decoder(a: Stack, b: Stack) -> list[Stack] | None:
    def has(stack: Stack, word: str) -> bool:
        return word in stack.key.split(".")

    for enc, dec in ((a, b), (b, a)):
        if has(enc, "encoder") and has(dec, "decoder") and not has(enc, "decoder"):
            return [enc, dec]
    return None


# --------------------------------------------------------------------------- finding stacks


class _Facts:
    """Facts about modules, computed when first asked and kept by ``id``.

    Lazy because the walk never looks inside a block for anything but "does it hold
    parameters" (answered at the first one) and "is there a block list below" (only
    module dicts are read): on a 100k-tensor model that is a fraction of a full pass.
    """

    def __init__(self) -> None:
        self._held: dict[int, bool] = {}
        self._whole: dict[int, bool] = {}

    def held(self, module: nn.Module) -> bool:
        """The module or a submodule holds a parameter (stops at the first one found)."""
        key = id(module)
        known = self._held.get(key)
        if known is None:
            known = any(p is not None for p in module._parameters.values()) or any(
                self.held(c) for c in module._modules.values() if c is not None
            )
            self._held[key] = known
        return known

    def composite(self, module: nn.Module) -> bool:
        """A child module holds a parameter: a block, not a single layer."""
        return any(self.held(c) for c in module._modules.values() if c is not None)

    def whole(self, module: nn.Module) -> bool:
        """The module is, or has below it, a stage's block list (see :func:`_is_whole`)."""
        key = id(module)
        known = self._whole.get(key)
        if known is None:
            known = False
            todo = [module]
            while todo:
                m = todo.pop()
                children = m._modules
                if not children:
                    continue
                kids = [c for c in children.values() if c is not None]
                if isinstance(m, CONTAINERS) and _is_whole(kids, self):
                    known = True
                    break
                todo.extend(kids)
            self._whole[key] = known
        return known


def find_stacks(model: nn.Module) -> list[Stack]:
    """Every stack of repeated blocks in the model, in registration order.

    Blocks are composite modules; only a model with no stack of them (an MLP whose
    ``layers`` are ``nn.Linear``) is read as a stack of its repeated single layers.
    """
    facts = _Facts()
    stacks = _find(model, facts, leaf=False) or _find(model, facts, leaf=True)
    if len(stacks) > 1 or any(len(s.blocks) < 2 for s in stacks):
        # Sizes only matter to compare stacks (and to show them in a refusal).
        for stack in stacks:
            stack.numel = sum(_numel(b) for b in stack.modules)
    return stacks


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _find(model: nn.Module, facts: _Facts, leaf: bool) -> list[Stack]:
    stacks: dict[str, Stack] = {}
    # (path, module, stage container the path lies in or None)
    todo: list[tuple[str, nn.Module, str | None]] = [("", model, None)]
    seen: set[int] = set()
    while todo:
        path, module, stage = todo.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        dot = path + "." if path else ""
        children = [(n, c) for n, c in module._modules.items() if c is not None]
        runs = _runs(children, facts, leaf) if isinstance(module, CONTAINERS) else []
        in_run: set[str] = set()
        later: list[tuple[str, nn.Module, str | None]] = []
        for run in runs:
            in_run.update(n for n, _ in run)
            if _stage_run(run, facts):
                # A run of stages: look into each, its blocks belong to this container.
                later.extend((dot + n, c, path) for n, c in run)
                continue
            key = stage if stage is not None else _parent(path)
            stack = stacks.setdefault(key, Stack(key, staged=stage is not None))
            for n, c in run:
                stack.blocks.append(normalize_name(dot + n + ".x")[:-2])
                stack.modules.append(c)
                seen.add(id(c))
        later.extend((dot + n, c, stage) for n, c in children if n not in in_run)
        # Depth first in registration order: stacks are listed where they first appear.
        order = {n: i for i, (n, _) in enumerate(children)}
        later.sort(key=lambda t: order[t[0][len(dot) :]])
        todo.extend(reversed(later))
    return [s for s in stacks.values() if s.blocks]


def _stage_run(run: list[tuple[str, nn.Module]], facts: _Facts) -> bool:
    """Some member of the run holds a stage's block list: it is a run of stages.

    Members of one model class are built by the same code, so the first and the last of
    each class stand for the rest (8333 ViT blocks are not each searched); members of
    torch's generic containers (``Sequential``) are each looked at, since one
    ``Sequential`` may be a stem and the next a stage (torchvision Swin's ``features``).
    """
    first: dict[type, bool] = {}
    for _, module in run:
        cls = _kind(module)
        if cls in _GENERIC:
            if facts.whole(module):
                return True
        elif cls not in first:
            first[cls] = facts.whole(module)
            if first[cls]:
                return True
    return facts.whole(run[-1][1])


def _is_whole(children: Sequence[nn.Module], facts: _Facts) -> bool:
    """The container is a stage's block list: its blocks are all of one class.

    Single layers beside them are allowed when there are two blocks or more (timm
    CSATv2's ``stages.N`` opens with a downsampling ``Conv2d``). Children that are
    containers themselves (torchvision's ``Conv2dNormActivation``, a ``Sequential``) are
    layers of a block, not blocks: MobileNetV3's ``block`` of three of them is no stage.
    """
    held = [c for c in children if facts.held(c)]
    blocks = [c for c in held if facts.composite(c)]
    if not blocks or (len(blocks) < len(held) and len(blocks) < 2):
        return False
    cls = _kind(blocks[0])
    return not issubclass(cls, CONTAINERS) and all(_kind(c) is cls for c in blocks)


def _runs(
    children: list[tuple[str, nn.Module]], facts: _Facts, leaf: bool
) -> list[list[tuple[str, nn.Module]]]:
    """Maximal runs of consecutive same-class children that hold parameters.

    Composite children (blocks) unless ``leaf``, then single layers; a run of one only
    when it is all the container holds, and never of single layers.
    """
    held = [(n, c) for n, c in children if facts.held(c)]
    runs: list[list[tuple[str, nn.Module]]] = []
    current: list[tuple[str, nn.Module]] = []
    for n, c in held:
        if facts.composite(c) == leaf:
            if current:
                runs.append(current)
            current = []
        elif current and _kind(current[-1][1]) is _kind(c):
            current.append((n, c))
        else:
            if current:
                runs.append(current)
            current = [(n, c)]
    if current:
        runs.append(current)
    whole = len(runs) == 1 and len(runs[0]) == len(held) and not leaf
    return [r for r in runs if len(r) >= 2 or whole]


def _kind(module: nn.Module) -> type:
    """The module's class, seen through activation checkpointing's / FSDP's wrapper."""
    children = module._modules
    if len(children) == 1:
        ((name, inner),) = children.items()
        if name in _WRAPPERS and inner is not None:
            return _kind(inner)
    return type(module)


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""
