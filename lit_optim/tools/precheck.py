"""``lit-optim``'s fast path: config mistakes found before Lightning is imported.

Importing Lightning (and with it jsonargparse, torchmetrics, ...) takes several times as
long as importing torch, so a typo in ``optim:`` should not wait for it. This reads the
command line as ``fit`` will (:func:`~lit_optim.lightning.optim_args.optim_section`
layers every ``--config`` / ``--optim`` / ``--optim.KEY``) with core and PyYAML only, and
refuses:

- LightningCLI's ``--optimizer`` / ``--lr_scheduler`` (and top-level ``optimizer:`` /
  ``lr_scheduler:`` in a config file): lit-optim reads ``optim:``, and says where;
- a top-level key or flag that is a typo of ``optim`` (``optm:``, ``--optm.warmup``);
- an ``optim:`` section that :func:`~lit_optim.core.validate.validate_section` refuses
  (everything that needs no model: keys, types, schedule arguments, optimizer options).

Whatever needs the model (globs matching nothing, layer ids) or the run length is
checked later, by ``fit`` itself. A valid command line passes through unchanged: the
checks here are the ones ``LitOptimCLI`` runs again after parsing, so a config that
passes here behaves as it did before.

Example:
    >>> try:
    ...     precheck(["fit", "--optimizer", "AdamW"])
    ... except ConfigError as err:
    ...     print(err)
    --optimizer: LightningCLI's flag, not read here; use --optim.optimizer (e.g. AdamW)

"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lit_optim.core.errors import ConfigError
from lit_optim.core.validate import validate_section
from lit_optim.lightning.commands import TRAINER_COMMANDS, with_default_config
from lit_optim.lightning.optim_args import optim_section
from lit_optim.lightning.yaml_values import load_yaml

__all__ = ["LIGHTNING_OPTIMIZER_KEYS", "precheck"]

#: LightningCLI's own optimizer keys (``auto_configure_optimizers``), and where they go here.
LIGHTNING_OPTIMIZER_KEYS = {"optimizer": "optim.optimizer", "lr_scheduler": "optim.schedule"}
#: Commands whose arguments are a ``fit`` command line (the tools read it as fit does;
#: ``compare`` is not here: its own ``--optim FILE`` means one run per file).
_COMMANDS = (*TRAINER_COMMANDS, "plot", "groups", "lr-find")
#: Top-level keys of a LightningCLI config: never taken for a typo of ``optim``.
_TOP_LEVEL = frozenset(
    {"optim", "trainer", "model", "data", "seed_everything", "ckpt_path", "config"}
)
_CONFIG_FLAGS = ("--config", "-c")


def precheck(args: Sequence[str]) -> None:
    """Refuse what is wrong with a ``lit-optim`` command line before Lightning is imported.

    Args:
        args: The command line without the program name (``["fit", "--config", ...]``).

    Raises:
        ConfigError: The first mistake, with its key path (the CLI prints it, exits 2).

    """
    if not args or args[0] not in _COMMANDS or {"-h", "--help"} & set(args):
        return
    args = with_default_config(list(args))
    _check_flags(args[1:])
    for path, data in _configs(args[1:]):
        _check_top_level(data, path)
    section = optim_section(args[1:])
    if section is not None:
        validate_section(section)


def _check_flags(args: Sequence[str]) -> None:
    for arg in args:
        if not arg.startswith("--"):
            continue
        name = arg.partition("=")[0][2:]
        head = name.split(".")[0]
        if head in LIGHTNING_OPTIMIZER_KEYS:
            target = LIGHTNING_OPTIMIZER_KEYS[head]
            example = "AdamW" if head == "optimizer" else "Cosine"
            raise ConfigError(
                f"--{name}",
                f"LightningCLI's flag, not read here; use --{target}{name[len(head) :]} "
                f"(e.g. {example})",
            )
        if _is_optim_typo(head):
            raise ConfigError(
                f"--{name}",
                f"unknown option; did you mean --optim{name[len(head) :]}? (the section is optim)",
            )


def _check_top_level(data: Mapping[str, Any], where: str) -> None:
    for key in data:
        key = str(key)
        if key in LIGHTNING_OPTIMIZER_KEYS:
            raise ConfigError(
                key,
                f"LightningCLI's {key}: section (in {where}); lit-optim reads the optim: "
                f"section: move it to {LIGHTNING_OPTIMIZER_KEYS[key]}",
            )
        if _is_optim_typo(key):
            raise ConfigError(key, f"unknown top-level key in {where}; did you mean 'optim'?")


def _is_optim_typo(word: str) -> bool:
    if word in _TOP_LEVEL or word in LIGHTNING_OPTIMIZER_KEYS:
        return False
    return bool(difflib.get_close_matches(word.lower(), ["optim"], n=1, cutoff=0.7))


def _configs(args: Sequence[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(name, top-level mapping)`` of every ``--config`` that reads as one.

    A config that cannot be read is left to jsonargparse, which reports it in its words.
    """
    found = []
    for i, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        if flag not in _CONFIG_FLAGS:
            continue
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else None)
        if value is None:
            continue
        path = Path(value)
        try:
            is_file = path.is_file()
            data = load_yaml(path.read_text() if is_file else value)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, Mapping):
            found.append((value if is_file else "--config", data))
    return found
