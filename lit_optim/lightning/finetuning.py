"""Fine-tuning callbacks that set group lrs themselves, checked against the schedule.

``BaseFinetuning`` only adds groups; :class:`~lit_optim.core.scheduler.ScheduleLR`
adopts them and keeps their ratio to the others. ``BackboneFinetuning`` also *writes*
the backbone group's lr at every epoch start. A closed-form schedule stepped per
optimizer step rewrites every group's lr at the next step, so the callback's lr would
hold for one step and then be lost without a word. That pairing is refused; stepped
per epoch, the callback's lr holds for the whole epoch, as its documentation says.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import BackboneFinetuning

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.scheduler import ScheduleLR

__all__ = ["check_lr_callbacks"]


def check_lr_callbacks(callbacks: list[Any], config: OptimConfig, scheduler: Any) -> None:
    """Refuse a callback whose lr writes ``scheduler`` would silently overwrite.

    Raises:
        ConfigError: ``BackboneFinetuning`` (or a subclass) with a lit_optim schedule
            stepped per optimizer step (``optim.interval: step``).

    """
    if not isinstance(scheduler, ScheduleLR) or config.interval != "step":
        return
    for callback in callbacks:
        if isinstance(callback, BackboneFinetuning):
            name = type(callback).__name__
            raise ConfigError(
                "trainer.callbacks",
                f"{name} sets the backbone group's lr at every epoch start, and the "
                "optim: schedule (interval: step) sets every group's lr again at the next "
                f"step, so {name}'s lr would be lost after one step; unfreeze with an "
                "optim.groups rule (unfreeze_at, lr_scale) or a BaseFinetuning callback "
                "that only adds the group (its lr then follows the schedule), or step "
                "the schedule per epoch (optim.interval: epoch)",
            )
