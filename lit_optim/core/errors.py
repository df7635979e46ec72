"""The one error type users see for bad configuration."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """Invalid ``optim:`` configuration.

    The message starts with the config key path and ends with what would be valid,
    e.g. ``optim.groups[0].params: 'haed.*' matched no parameter (closest: 'head.weight')``.

    Attributes:
        key: The config key path (``optim.groups[0].params``).
        reason: The message without the key.

    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str]]:
        # Keeps the error picklable across DDP / multiprocessing boundaries.
        return (type(self), (self.key, self.reason))


def closest(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """Return a ``"did you mean ..."`` suffix naming the closest candidates, or ``""``."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"
