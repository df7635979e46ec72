"""The keys of the ``optim:`` section for ``lit-optim fit --help``, read from OptimConfig.

jsonargparse sees the section as one opaque value (see :mod:`lit_optim.lightning.types`),
so its help would show ``--optim OPTIM`` and nothing inside. This lists every key with the
first sentence of its entry in :class:`~lit_optim.core.config.OptimConfig`'s docstring,
so the help cannot drift from the code.

Example:
    >>> print(optim_keys_help().splitlines()[0])
    optimizer               Optimizer class path or short torch name, with init_args.

"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap

from lit_optim.core.config import GroupRule, LayerDecay, LRScaling, OptimConfig, Warmup

__all__ = ["OPTIM_HELP_TITLE", "optim_keys_help"]

OPTIM_HELP_TITLE = (
    "the optim: section (set a key with --optim.KEY VALUE, e.g. --optim.warmup.steps 10)"
)
_WIDTH = 24
#: Keys whose value is a mapping (or a list of them) with keys of its own.
_NESTED = {
    "groups": GroupRule,
    "layer_decay": LayerDecay,
    "warmup": Warmup,
    "momentum_warmup": Warmup,
    "weight_decay_warmup": Warmup,
    "lr_scaling": LRScaling,
}


def optim_keys_help() -> str:
    """One line per key of the ``optim:`` section, in declaration order.

    Raises:
        RuntimeError: A key of OptimConfig has no entry under ``Args:`` in its docstring.

    """
    described = _args_section(inspect.getdoc(OptimConfig) or "")
    lines = []
    for field in dataclasses.fields(OptimConfig):
        text = described.get(field.name)
        if text is None:
            raise RuntimeError(f"OptimConfig's docstring does not describe {field.name!r}")
        text = re.sub(r"``([^`]+)``", r"\1", text)
        nested = _NESTED.get(field.name)
        if nested is not None:
            keys = ", ".join(f.name for f in dataclasses.fields(nested))
            text += f" {'Each rule' if field.name == 'groups' else 'Keys'}: {keys}."
        lines.append(
            textwrap.fill(
                text,
                width=88,
                initial_indent=f"{field.name:<{_WIDTH}}",
                subsequent_indent=" " * _WIDTH,
                break_on_hyphens=False,
            )
        )
    lines.append(
        "Schedules and their arguments: `lit-optim schedules`;\n"
        "the param groups a config builds: `lit-optim groups`."
    )
    return "\n".join(lines)


def _args_section(doc: str) -> dict[str, str]:
    """``{name: description}`` of a Google-style ``Args:`` section."""
    found: dict[str, str] = {}
    inside, name = False, None
    for line in doc.splitlines():
        if line.strip() == "Args:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            name = match[1]
            found[name] = match[2]
        elif name is not None and line.strip():
            found[name] += " " + line.strip()
    return found
