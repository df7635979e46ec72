"""Test-only callback: each rank writes the lrs it used to ``$LIT_OPTIM_RANK_DUMP/rank<N>.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class RankDump(Callback):
    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.lrs.append([g["lr"] for g in optimizer.param_groups])

    def on_train_end(self, trainer, pl_module) -> None:
        out = Path(os.environ["LIT_OPTIM_RANK_DUMP"]) / f"rank{trainer.global_rank}.json"
        out.write_text(json.dumps(self.lrs))
