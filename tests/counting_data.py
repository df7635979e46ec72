"""A digits data module that counts how often it is set up (imported by class_path)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lit_optim.demo import DigitsDataModule

#: ``{"prepare_data" | "setup" | "train_dataloader": calls}`` since the last ``clear()``.
CALLS: Counter[str] = Counter()


class CountingDigits(DigitsDataModule):
    """The demo digits; every ``prepare_data``, ``setup`` and ``train_dataloader`` counted."""

    def prepare_data(self) -> None:
        """Counted."""
        CALLS["prepare_data"] += 1

    def setup(self, stage: str | None = None) -> None:
        """Counted (before the demo's own idempotence check, so every call counts)."""
        CALLS["setup"] += 1
        super().setup(stage)

    def train_dataloader(self) -> Any:
        """Counted."""
        CALLS["train_dataloader"] += 1
        return super().train_dataloader()
