r"""timm's model protocol for layer ids: ``module.group_matcher(coarse=False)``, without timm.

The semantics are those of timm's ``group_with_matcher`` (``timm/models/_manipulate.py``)
as ``param_groups_layer_decay`` uses it (timm 1.0.31):

* the matcher is a dict ``{group_name: spec}`` whose position gives the ordinal prefix
  (``stem`` first -> 0); ``spec`` is one regex, or a list of ``(regex, suffix)`` pairs, or
  ``None`` (skipped); regexes are applied with ``re.match`` in order, first match wins;
* a name's key is ``(ordinal, *captured numbers, *suffix)`` as floats; unmatched names
  (the head) get ``(inf,)``;
* or the matcher is a function ``name -> number or tuple of numbers``;
* the distinct keys, sorted, become ids 0, 1, ...; a key ending in ``99999``
  (``MATCH_PREV_GROUP``) shares the previous key's id.

Parameters outside the module that has the matcher (a LightningModule's own head around
``self.backbone = timm.create_model(...)``) are keyed like unmatched ones: last.

Example:
    >>> spec = {"stem": r"^stem", "blocks": [(r"^blocks\.(\d+)", None), (r"^norm", (99999,))]}
    >>> names = ["stem.w", "blocks.0.w", "blocks.1.w", "norm.w", "head.w"]
    >>> matcher_layer_ids(names, "", spec, "the model")[0]
    [0, 1, 2, 2, 3]

"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from torch import nn

from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.names import normalize_name

__all__ = ["MATCH_PREV_GROUP", "find_group_matchers", "matcher_layer_ids"]

#: timm's ``MATCH_PREV_GROUP``: an ordinal ending in it joins the previous layer id.
MATCH_PREV_GROUP = 99999.0

_KEY = "optim.layer_decay"
_Key = tuple[float, ...]


def find_group_matchers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost modules that have a callable ``group_matcher``, with their name prefix.

    A module's method (timm models) and a function set on the instance count alike; the
    walk does not descend into a module that has one. Prefixes are normalised names
    (``backbone``, ``""`` for the model itself).
    """
    found: list[tuple[str, nn.Module]] = []
    stack: list[tuple[str, nn.Module]] = [("", model)]
    seen: set[int] = set()
    # Per class, its group_matcher attribute; looked up once (100k-tensor models have
    # ~75k modules of a handful of classes).
    by_class: dict[type, Any] = {}
    while stack:
        prefix, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        # Class attribute or instance attribute only: nn.Module.__getattr__ would raise
        # (slowly) on every other module, and a child module named group_matcher is no method.
        fn = module.__dict__.get("group_matcher")
        if fn is None:
            cls = type(module)
            if cls not in by_class:
                by_class[cls] = getattr(cls, "group_matcher", None)
            fn = by_class[cls]
        if callable(fn) and not isinstance(fn, nn.Module):
            found.append((_normalized_prefix(prefix), module))
            continue
        children = module._modules
        if children:
            dot = prefix + "." if prefix else ""
            stack.extend(
                (dot + name, child)
                for name, child in reversed(children.items())
                if child is not None
            )
    return found


def matcher_layer_ids(
    names: Sequence[str], prefix: str, spec: Any, where: str
) -> tuple[list[int], list[str]]:
    """Layer id and its source for every name, from a ``group_matcher(coarse=False)`` result.

    Args:
        names: Normalised parameter names of the whole model.
        prefix: Normalised name of the module that has the matcher (``""`` = the model).
        spec: What ``group_matcher(coarse=False)`` returned (dict or function).
        where: How messages name the module (``"backbone"``).

    Returns:
        Ids in ``names`` order (0 .. n-1, timm's numbering) and a source label per name.

    Raises:
        ConfigError: The matcher returned something else than a dict or a function, a
            regex does not compile, or an ordinal is not a number.

    """
    key_of, label_of = _compile(spec, where)
    dot = prefix + "." if prefix else ""
    inside = len(dot)
    keys: list[_Key] = []
    labels: list[str] = []
    outside = f"outside {where}: last"
    unmatched = f"group_matcher of {where}: unmatched, last"
    for name in names:
        if not name.startswith(dot):
            keys.append((math.inf,))
            labels.append(outside)
            continue
        key, group = key_of(name[inside:])
        keys.append(key)
        labels.append(unmatched if group is None else label_of(group))
    id_of: dict[_Key, int] = {}
    lid = -1
    for key in sorted(set(keys)):
        if lid < 0 or key[-1] != MATCH_PREV_GROUP:
            lid += 1
        id_of[key] = lid
    return [id_of[k] for k in keys], labels


def _compile(
    spec: Any, where: str
) -> tuple[Callable[[str], tuple[_Key, str | None]], Callable[[str], str]]:
    """``name -> (key, group name or None)`` and ``group -> source label``."""
    call = f"{where}.group_matcher(coarse=False)"
    if isinstance(spec, Mapping):
        compiled: list[tuple[re.Pattern[str], float, tuple[float, ...], str]] = []
        for ordinal, (group, mspec) in enumerate(spec.items()):
            if mspec is None:
                continue
            pairs = mspec if isinstance(mspec, list | tuple) else [(mspec, None)]
            for pair in pairs:
                if not (isinstance(pair, list | tuple) and len(pair) == 2):
                    raise ConfigError(
                        _KEY,
                        f"{call}[{group!r}] has {pair!r}; timm's protocol wants a regex or "
                        "a list of (regex, ordinal) pairs, e.g. [('^blocks\\.(\\d+)', None)]",
                    )
                regex, suffix = pair
                try:
                    rx = re.compile(regex)
                except (re.error, TypeError) as err:
                    raise ConfigError(
                        _KEY, f"{call}[{group!r}]: invalid regex {regex!r}: {err}"
                    ) from None
                tail = () if suffix is None else _numbers(suffix, f"{call}[{group!r}]", regex)
                compiled.append((rx, float(ordinal), tail, str(group)))

        def key_of(name: str) -> tuple[_Key, str | None]:
            for rx, ordinal, tail, group in compiled:
                m = rx.match(name)
                if m is not None:
                    captured = _numbers(m.groups(), f"{call}[{group!r}]", rx.pattern, name)
                    return (ordinal, *captured, *tail), group
            return (math.inf,), None

        return key_of, lambda group: f"group_matcher of {where}: {group}"
    if callable(spec):

        def key_of_fn(name: str) -> tuple[_Key, str | None]:
            value = spec(name)
            values = value if isinstance(value, Iterable) else (value,)
            key = _numbers(values, call, None, name)
            return key, None if key == (math.inf,) else "function"

        return key_of_fn, lambda _: f"group_matcher of {where}"
    raise ConfigError(
        _KEY,
        f"{call} returned a {type(spec).__name__}; timm's protocol wants a dict "
        "{'stem': regex, 'blocks': regex or [(regex, ordinal), ...]} or a function "
        "name -> ordinal (or set layer_decay.layers to a regex)",
    )


def _numbers(
    values: Iterable[Any], where: str, regex: str | None, name: str | None = None
) -> tuple[float, ...]:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            got = f" for {name!r}" if name is not None else ""
            by = f" (regex {regex!r})" if regex is not None else ""
            raise ConfigError(
                _KEY,
                f"{where} gave {v!r}{got}{by}; every ordinal must be a number, as timm's "
                "group_with_matcher needs (capture only digits, e.g. '^blocks\\.(\\d+)')",
            ) from None
    return tuple(out)


def _normalized_prefix(prefix: str) -> str:
    if not prefix:
        return ""
    # normalize_name works on parameter names; give it one to strip wrappers and DDP's
    # "module." the same way the parameter names were stripped.
    return normalize_name(prefix + ".x")[:-2]
