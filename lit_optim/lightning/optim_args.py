"""The ``optim:`` section of one command line, layered from every source as ``fit`` layers configs.

jsonargparse sees the section as one opaque value (:class:`lit_optim.lightning.types.OptimSection`)
and never type-checks inside it, so the one validator, :meth:`OptimConfig.from_dict`, reports
every mistake with its key path and rule index. The layers, in command-line order:

- each ``--config FILE`` (or inline YAML) whose top level has ``optim:``;
- ``--optim VALUE``: a YAML mapping, or a file holding one (a whole config with a top-level
  ``optim:``, or the bare section);
- ``--optim.KEY[.SUBKEY...] VALUE``: one value, e.g. ``--optim.warmup.steps 10`` or
  ``--optim.optimizer.init_args.lr 0.1``.

How two layers combine: mappings merge key by key; a ``{class_path: ...}`` mapping replaces
what was there (a switched optimizer keeps nothing of the previous one's init args), while
one without ``class_path`` (``{init_args: {lr: 0.1}}``) merges into it; lists and plain
values replace.

Example:
    >>> merge_layers({"optimizer": "SGD"}, {"optimizer": {"init_args": {"lr": 0.1}}})
    {'optimizer': {'class_path': 'SGD', 'init_args': {'lr': 0.1}}}
    >>> merge_layers({"warmup": {"steps": 5}}, {"warmup": {"mode": "constant"}})
    {'warmup': {'steps': 5, 'mode': 'constant'}}

"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lit_optim.core.errors import ConfigError
from lit_optim.lightning.yaml_values import load_yaml

__all__ = ["OPTIM_FLAG", "layer_optim_args", "merge_layers", "optim_section", "read_optim_value"]

OPTIM_FLAG = "--optim"
_CONFIG_FLAGS = ("--config", "-c")
_MISSING = object()


def layer_optim_args(args: Sequence[str]) -> tuple[list[str], bool]:
    """Move every ``optim:`` source of ``args`` into one ``--optim=<section>`` at the end.

    Args:
        args: A command line as LightningCLI parses it (``fit --config x.yaml ...``).

    Returns:
        The command line without ``--optim...`` arguments, plus one ``--optim=<YAML>``
        holding the layered section when any source gave one; and whether one did.

    Raises:
        ConfigError: An ``--optim...`` value is missing, unreadable, or cannot be applied.

    """
    kept, section = _layer(args)
    if section is _MISSING:
        return kept, False
    return [*kept, f"{OPTIM_FLAG}={_dump(section)}"], section is not None


def _layer(args: Sequence[str]) -> tuple[list[str], Any]:
    kept: list[str] = []
    section: Any = _MISSING
    i = 0
    while i < len(args):
        arg = args[i]
        flag, eq, inline = arg.partition("=")
        takes_value = flag in _CONFIG_FLAGS or flag == OPTIM_FLAG or flag.startswith("--optim.")
        if not takes_value:
            kept.append(arg)
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:
            raise ConfigError(flag.lstrip("-"), f"{flag} needs a value")
        if flag in _CONFIG_FLAGS:
            kept.extend((flag, value))
            layer = _optim_of_config(value)
            if layer is not _MISSING:
                section = _merge(section, layer)
        elif flag == OPTIM_FLAG:
            section = _merge(section, read_optim_value(value))
        else:
            section = _set_dotted(section, flag[2:], value)
    return kept, section


def read_optim_value(value: str | Path, key: str = OPTIM_FLAG) -> Any:
    """The section given to ``--optim``: a YAML file with a top-level ``optim:``, or a mapping.

    A file is read as one more config layer that may only hold ``optim:`` (the same file
    works with ``--config``); an inline value is the section itself
    (``--optim '{optimizer: SGD}'``).
    """
    path = Path(value)
    if not _is_file(path):
        data = _load(str(value), key)
        if isinstance(data, str):
            raise ConfigError(key, f"no such file {data!r}; give a YAML file or a mapping")
        return data
    key = f"{key} {value}"
    try:
        data = _load(path.read_text(), key)
    except OSError as err:
        raise ConfigError(key, f"cannot read it ({err.strerror}); give a YAML file") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("optim"), Mapping):
        found = ", ".join(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise ConfigError(
            key,
            f"expected a top-level `optim:` mapping, found {found or 'nothing'} "
            "(e.g. optim: {optimizer: {class_path: torch.optim.SGD, init_args: {lr: 0.05}}})",
        )
    others = sorted(str(k) for k in data if k != "optim")
    if others:
        raise ConfigError(
            key,
            f"holds more than an optim: section ({', '.join(others)}); --optim reads only "
            "the optim: section, give the whole file with --config",
        )
    return data["optim"]


def optim_section(args: Sequence[str]) -> Any:
    """The layered ``optim:`` section of a command line (``None`` when none is given)."""
    _, section = _layer(args)
    return None if section is _MISSING else section


def merge_layers(base: Any, layer: Any) -> Any:
    """``layer`` on top of ``base`` as config files are layered (see the module docstring)."""
    return _merge(base, layer)


def _merge(base: Any, layer: Any) -> Any:
    if base is _MISSING or not isinstance(layer, Mapping):
        return copy.deepcopy(layer)
    if "class_path" in layer or not isinstance(base, Mapping | str):
        return copy.deepcopy(layer)
    if isinstance(base, str):
        if not set(layer) <= {"init_args"}:
            return copy.deepcopy(layer)
        base = {"class_path": base}  # `init_args` given for a class named by short name
    merged = dict(base)
    for k, v in layer.items():
        merged[k] = _merge(base[k], v) if k in base and base[k] is not None else copy.deepcopy(v)
    return merged


def _set_dotted(section: Any, dotted: str, raw: str) -> Any:
    """Set ``optim.<dotted>`` to the YAML value ``raw`` inside ``section``."""
    keys = dotted.split(".")[1:]
    if not all(keys):
        raise ConfigError(dotted, "empty key in the dotted name")
    value = _load(raw, dotted)
    layer: Any = value
    for k in reversed(keys):
        layer = {k: layer}
    base = {} if section is _MISSING or section is None else section
    _check_path(base, keys, dotted)
    return _merge(base, layer)


def _check_path(section: Any, keys: list[str], dotted: str) -> None:
    node = section
    for depth, k in enumerate(keys[:-1]):
        if isinstance(node, str) and k in ("init_args", "class_path"):
            return
        if not isinstance(node, Mapping):
            return
        node = node.get(k)
        where = "optim." + ".".join(keys[: depth + 1])
        if isinstance(node, list):
            raise ConfigError(
                where,
                f"a list is replaced as a whole, not item by item; give {OPTIM_FLAG}."
                f"{'.'.join(keys[: depth + 1])} '[...]' with every item, or edit the config file",
            )


def _optim_of_config(value: str) -> Any:
    """The ``optim:`` of one ``--config`` value, or ``_MISSING``; jsonargparse reports bad ones."""
    path = Path(value)
    try:
        data = _load(path.read_text() if _is_file(path) else value, "--config")
    except (ConfigError, OSError):
        return _MISSING
    if isinstance(data, Mapping) and "optim" in data:
        return data["optim"]
    return _MISSING


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a long inline YAML string is no valid path
        return False


def _load(text: str, key: str) -> Any:
    try:
        return load_yaml(text)  # as jsonargparse reads it, without importing it
    except yaml.YAMLError as err:
        raise ConfigError(key, f"not valid YAML: {' '.join(str(err).split())}") from None


def _dump(section: Any) -> str:
    if section is None:
        return "null"
    # Flow style on one line; YAML (not JSON) so .inf / .nan survive the round trip.
    return yaml.safe_dump(
        section, default_flow_style=True, sort_keys=False, width=float("inf")
    ).strip()
