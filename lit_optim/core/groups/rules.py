"""Group rules compiled once, and the one place that decides whether a rule matches.

``params`` entries are fnmatch globs matched against the *whole* normalised name
(``head.*`` matches ``head.weight``; ``*`` also crosses dots), case-sensitively;
``"re:<regex>"`` entries are searched anywhere in the name (:func:`re.search`), like
``grep``; ``modules`` entries match the parameters registered directly on modules of that
type (``isinstance``). :meth:`Rule.matches` is the only matching code: first-match
assignment and the "matched nothing" / "all taken" errors both call it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lit_optim.core.config import GroupRule
from lit_optim.core.errors import ConfigError
from lit_optim.core.imports import import_path
from lit_optim.core.optimizer_args import check_option_names

__all__ = [
    "Rule",
    "check_every_rule_used",
    "check_rule_hyperparameters",
    "closest_names",
    "compile_rule",
    "first_matches",
    "freeze",
    "quote",
]


@dataclass
class Rule:
    """A compiled ``optim.groups[i]`` rule.

    Attributes:
        index: Position in ``optim.groups``.
        rule: The rule as configured.
        name: Group name (``group{index}`` when unnamed).
        label: ``"groups[0] (head)"``, as tables and errors show it.
        texts: The ``params`` entries as written.
        name_matchers: Callables ``name -> match or None`` for ``params``; one combined
            regex when every entry can be combined, else one per entry.
        types: Module types of ``modules``.
        merge_key: Hashable stand-in for ``(options, schedule, optimizer)``, or ``None``.
        ndims: The ``ndim`` selector: tensor dimension counts the rule takes, or ``None``.

    """

    index: int
    rule: GroupRule
    name: str
    label: str
    texts: list[str]
    name_matchers: list[Callable[[str], Any]]
    types: tuple[type[nn.Module], ...]
    merge_key: Any
    ndims: frozenset[int] | None = None

    def matches(
        self, name: str, tensor: torch.Tensor, owner: nn.Module, *, ndim: bool = True
    ) -> bool:
        """Whether this rule selects parameter ``name`` (registered on ``owner``).

        ``ndim=False`` ignores the ``ndim`` selector (to explain a rule that took nothing).
        """
        if ndim and self.ndims is not None and tensor.ndim not in self.ndims:
            return False
        if not self.name_matchers and not self.types:
            return self.ndims is not None  # an `ndim`-only rule selects by shape alone
        for match in self.name_matchers:
            if match(name) is not None:
                return True
        return bool(self.types) and isinstance(owner, self.types)


def compile_rule(index: int, rule: GroupRule, model: nn.Module) -> Rule:
    """Compile rule ``index``: patterns to regexes, module paths to types.

    Raises:
        ConfigError: An empty or non-string pattern, a bad regex, or a module type that
            cannot be imported.

    """
    key = f"optim.groups[{index}]"
    sources: list[str] = []
    singles: list[Callable[[str], Any]] = []
    for j, text in enumerate(rule.params):
        if not isinstance(text, str) or not text:
            raise ConfigError(
                f"{key}.params[{j}]",
                f"expected a glob such as 'head.*' or 're:<regex>', got {text!r}",
            )
        if text.startswith("re:"):
            body = text[3:]
            try:
                rx = re.compile(body)
            except re.error as err:
                raise ConfigError(
                    f"{key}.params[{j}]",
                    f"invalid regex {quote(body)}: {err}; write a Python regex after 're:', "
                    "e.g. 're:^blocks\\.(0|1)\\.'",
                ) from None
            singles.append(rx.search)
            # Numbered backreferences / conditionals / named groups change meaning or
            # clash once combined into one alternation.
            combinable = not re.search(r"\\[1-9]|\(\?P[=<]|\(\?\(|\(\?[aiLmsux]+\)", body)
            sources.append(f".*?(?:{body})" if combinable else "")
        else:
            rx = _glob_regex(text)
            singles.append(rx.match)
            sources.append(rx.pattern)
    matchers = singles
    if len(singles) > 1 and all(sources):
        # One regex per rule: alternatives tried in order, same answer as any(...).
        try:
            matchers = [re.compile("|".join(f"(?:{s})" for s in sources)).match]
        except re.error:  # a combination the checks above did not foresee: keep them apart
            matchers = singles
    types = tuple(
        _resolve_module_type(spec, f"{key}.modules[{j}]", model)
        for j, spec in enumerate(rule.modules)
    )
    name = rule.name if rule.name is not None else f"group{index}"
    ndims = None
    if rule.ndim is not None:
        ndims = frozenset(rule.ndim if isinstance(rule.ndim, list | tuple) else [rule.ndim])
    return Rule(
        index=index,
        rule=rule,
        name=name,
        label=f"groups[{index}] ({name})",
        texts=list(rule.params),
        name_matchers=matchers,
        types=types,
        merge_key=_merge_key(rule),
        ndims=ndims,
    )


def first_matches(
    names: Sequence[str],
    tensors: Sequence[torch.Tensor],
    owners: Sequence[nn.Module],
    rules: Sequence[Rule],
) -> list[int]:
    """Index of the first rule matching each parameter (-1 = no rule)."""
    out: list[int] = []
    for name, tensor, owner in zip(names, tensors, owners, strict=True):
        out.append(next((r.index for r in rules if r.matches(name, tensor, owner)), -1))
    return out


def check_every_rule_used(
    rules: Sequence[Rule],
    names: Sequence[str],
    tensors: Sequence[torch.Tensor],
    owners: Sequence[nn.Module],
    winners: Sequence[int],
) -> None:
    """Raise on a rule that ends up with no parameter, saying which and why."""
    used = set(winners)
    for r in rules:
        if r.index in used:
            continue
        key = f"optim.groups[{r.index}]"
        if r.texts and not r.types:
            key += ".params"
        elif r.types and not r.texts:
            key += ".modules"
        hits = [
            k
            for k, (n, t, o) in enumerate(zip(names, tensors, owners, strict=True))
            if r.matches(n, t, o)
        ]
        if not hits and r.ndims is not None:
            _explain_ndim(r, names, tensors, owners)
        if not hits:
            raise ConfigError(key, _matched_nothing(r, names, owners))
        takers = sorted({winners[k] for k in hits})  # all earlier rules
        taker_labels = " and ".join(rules[t].label for t in takers)
        raise ConfigError(
            key,
            f"every parameter it matches ({len(hits)}, e.g. {names[hits[0]]!r}) is already "
            f"taken by {taker_labels}, which come{'s' if len(takers) == 1 else ''} first "
            "(first match wins); narrow the earlier rule or move this one above it",
        )


def check_rule_hyperparameters(
    rules: Sequence[Rule], optimizers: Sequence[tuple[Mapping[str, Any], str]]
) -> None:
    """Raise on a rule option its optimizer does not take.

    Args:
        rules: The compiled rules.
        optimizers: Per rule index: ``(defaults, class name)`` of the optimizer that takes
            the rule's parameters (its own ``optimizer``, else the top-level one).

    """
    for r in rules:
        defaults, optimizer_name = optimizers[r.index]
        valid = [k for k in defaults if k != "params"]
        check_option_names(r.rule.options, defaults, optimizer_name, f"optim.groups[{r.index}]")
        if r.rule.weight_decay is not None and "weight_decay" not in defaults:
            raise ConfigError(
                f"optim.groups[{r.index}].weight_decay",
                f"{optimizer_name} has no weight_decay option; remove it "
                f"(valid options: {', '.join(valid)})",
            )


def closest_names(pattern: str, names: Sequence[str], n: int = 3) -> list[str]:
    """Return the parameter names most like ``pattern``, best first.

    The pattern's literal text is compared with each name's start, end and whole; ties
    keep registration order.
    """
    key = re.sub(r"[][*?^$\\()+{}|]", "", pattern[3:] if pattern.startswith("re:") else pattern)
    if not key:
        return []
    matcher = difflib.SequenceMatcher(None, b=key)
    scored: dict[str, float] = {}
    cache: dict[str, float] = {}
    for name in names:
        best = 0.0
        for piece in (name[: len(key)], name[-len(key) :], name):
            if piece not in cache:
                matcher.set_seq1(piece)
                cache[piece] = matcher.ratio() if matcher.real_quick_ratio() >= 0.6 else 0.0
            best = max(best, cache[piece])
        if best >= 0.6:
            scored[name] = best
    return sorted(scored, key=lambda name: -scored[name])[:n]


def quote(pattern: str) -> str:
    """Quote a pattern for a message without doubling its backslashes (unlike repr)."""
    return f"'{pattern}'"


def freeze(value: Any) -> Any:
    """Return a hashable stand-in for plain data (dicts, lists), or ``None``."""

    def walk(v: Any) -> Any:
        if type(v) in _SCALARS:
            return (type(v) is bool, v)
        if isinstance(v, Mapping):
            return ("<map>", tuple(sorted(((str(k), walk(x)) for k, x in v.items()))))
        if isinstance(v, list | tuple):
            return ("<seq>", tuple(walk(x) for x in v))
        hash(v)
        return (type(v) is bool, v)  # keep True apart from 1

    try:
        return walk(value)
    except TypeError:
        return None


_SCALARS = frozenset({float, int, bool, str, type(None)})


@functools.lru_cache(maxsize=4096)
def _glob_regex(glob: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(glob))


def _resolve_module_type(spec: Any, key: str, model: nn.Module) -> type[nn.Module]:
    """Import a module class from a path or a short ``torch.nn`` name."""
    if isinstance(spec, type):
        obj: Any = spec
    elif not isinstance(spec, str) or not spec:
        raise ConfigError(
            key, f"expected a module class path such as torch.nn.LayerNorm, got {spec!r}"
        )
    elif "." not in spec:
        obj = getattr(nn, spec, None)
        if obj is None:
            raise ConfigError(
                key,
                f"{spec!r} is not a torch.nn module{_type_suggestion(spec, model)} "
                "(give a torch.nn name such as LayerNorm, or an import path such as "
                "my_pkg.layers.MyNorm)",
            )
    else:
        try:
            obj = import_path(spec)
        except (ImportError, AttributeError) as err:
            raise ConfigError(
                key,
                f"cannot import {spec!r} ({err}){_type_suggestion(spec, model)} "
                "(give a module class by import path, e.g. torch.nn.LayerNorm)",
            ) from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ConfigError(
            key,
            f"{spec!r} is a {type(obj).__name__}, not a torch.nn.Module subclass "
            "(e.g. torch.nn.LayerNorm)",
        )
    return obj


def _type_suggestion(spec: str, model: nn.Module) -> str:
    """``"; did you mean 'torch.nn.LayerNorm'?"`` from torch.nn and the model's own types."""
    paths: dict[str, str] = {}
    for attr in dir(nn):
        obj = getattr(nn, attr)
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            paths[attr] = f"torch.nn.{attr}"
    for m in model.modules():
        cls = type(m)
        paths.setdefault(cls.__name__, f"{cls.__module__}.{cls.__qualname__}")
    hits = difflib.get_close_matches(spec.rsplit(".", 1)[-1], list(paths), n=3, cutoff=0.6)
    return "; did you mean " + " or ".join(repr(paths[h]) for h in hits) + "?" if hits else ""


def _explain_ndim(
    rule: Rule,
    names: Sequence[str],
    tensors: Sequence[torch.Tensor],
    owners: Sequence[nn.Module],
) -> None:
    """Raise when the rule's params / modules select tensors, but none of its ``ndim``."""
    selected = [
        t
        for n, t, o in zip(names, tensors, owners, strict=True)
        if rule.matches(n, t, o, ndim=False)
    ]
    if not selected:
        return
    assert rule.ndims is not None  # the caller checked
    wanted = sorted(rule.ndims)
    present = ", ".join(str(d) for d in sorted({t.ndim for t in selected}))
    raise ConfigError(
        f"optim.groups[{rule.index}].ndim",
        f"none of the {len(selected)} parameters it selects has ndim "
        f"{wanted[0] if len(wanted) == 1 else wanted} (their ndims: {present})",
    )


def _matched_nothing(rule: Rule, names: Sequence[str], owners: Sequence[nn.Module]) -> str:
    parts = []
    if rule.texts:
        shown = ", ".join(quote(t) for t in rule.texts)
        near: list[str] = []
        for t in rule.texts:
            near += [n for n in closest_names(t, names) if n not in near]
        hint = (
            "closest: " + ", ".join(repr(n) for n in near[:3])
            if near
            else "names look like: " + ", ".join(repr(n) for n in names[:3])
        )
        parts.append(f"{shown} matched no parameter ({hint})")
    if rule.types:
        shown = ", ".join(f"{t.__module__}.{t.__qualname__}" for t in rule.types)
        present = sorted({type(o).__name__ for o in owners})
        parts.append(
            f"no parameter belongs to a {shown} module "
            f"(module types with parameters: {', '.join(present) or 'none'})"
        )
    return "; ".join(parts)


def _merge_key(rule: GroupRule) -> Any:
    """Hashable stand-in for what keeps a rule's groups apart besides lr / weight decay."""
    key = freeze(
        (
            rule.options,
            rule.schedule,
            rule.optimizer,
            rule.momentum_schedule,
            rule.weight_decay_schedule,
        )
    )
    if rule.unfreeze_at is not None and key is not None:
        # Never merged with a group that trains from another step.
        key = (key, "unfreeze_at", rule.unfreeze_at.epoch, rule.unfreeze_at.step)
    return key
