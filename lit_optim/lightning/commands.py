"""The commands of ``lit-optim`` and its default config, importable without Lightning.

``lit-optim``'s fast path (:mod:`lit_optim.tools.precheck`) reads the same command line
as :class:`~lit_optim.lightning.cli.LitOptimCLI` before Lightning is imported, so both
take these from here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_CONFIG", "TOOL_COMMANDS", "TRAINER_COMMANDS", "with_default_config"]

DEFAULT_CONFIG = Path(__file__).parents[1] / "configs" / "digits_poly.yaml"
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
TOOL_COMMANDS = ("plot", "groups", "compare", "lr-find", "schedules")


def with_default_config(args: list[str]) -> list[str]:
    """Prepend the embedded demo config when a trainer command has neither config nor model.

    Example:
        >>> with_default_config(["fit", "--trainer.max_epochs", "1"])[1:3] == [
        ...     "--config", str(DEFAULT_CONFIG)]
        True

    """
    if not args or args[0] not in TRAINER_COMMANDS:
        return args
    given = {a.split("=")[0] for a in args[1:]}
    if given & {"--config", "-c", "--model"}:
        return args
    return [args[0], "--config", str(DEFAULT_CONFIG), *args[1:]]
