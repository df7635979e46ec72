"""Fine-tuning callbacks that set group lrs themselves, checked against the schedule.

``BaseFinetuning`` only adds groups; :class:`~lit_optim.core.lr_adapter.ScheduleLR`
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
from lit_optim.core.lr_adapter import is_torch_scheduler

__all__ = ["check_lr_callbacks"]


def check_lr_callbacks(callbacks: list[Any], config: OptimConfig) -> None:
    """Refuse a callback whose lr writes the section's schedule would silently overwrite.

    Decided from the section alone (no model, no run length), so it is refused before
    ``fit`` whatever the data.

    Raises:
        ConfigError: ``BackboneFinetuning`` (or a subclass) with a lit_optim schedule
            stepped per optimizer step (``optim.interval: step``).

    """
    if config.interval != "step" or not _sets_lr_every_step(config):
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


def _sets_lr_every_step(config: OptimConfig) -> bool:
    """Whether the section builds a ``ScheduleLR`` (it writes every group's lr each step)."""
    if is_torch_scheduler(config.schedule):
        return False
    scheduled = [
        config.schedule,
        config.warmup,
        config.momentum_schedule,
        config.momentum_warmup,
        config.weight_decay_schedule,
        config.weight_decay_warmup,
    ]
    for rule in config.groups:
        scheduled += [rule.schedule, rule.unfreeze_at, rule.momentum_schedule]
        scheduled.append(rule.weight_decay_schedule)
    return any(s is not None for s in scheduled)
