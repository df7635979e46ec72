"""The run plan: how long a run is, in optimizer and scheduler steps, worked out once.

A :class:`RunPlan` is computed from the ``optim:`` section and a :class:`TrainLoop` (what
the trainer and the data say: batches per epoch, accumulation, epoch and step limits).
``configure_optimizers`` builds the schedule on it (:func:`lit_optim.core.build.build`);
``plot``, ``groups``, ``compare`` and ``lr-find`` read the same plan, so nothing about
the run's length is derived twice.
Reading a Lightning trainer into a :class:`TrainLoop` is done in
:mod:`lit_optim.lightning.loop`; this module needs no Lightning.

Example:
    >>> from lit_optim import OptimConfig, Warmup
    >>> cfg = OptimConfig(schedule="Cosine", warmup=Warmup(epochs=1))
    >>> plan = RunPlan.of(cfg, TrainLoop(batches_per_epoch=10, accumulate=2, max_epochs=3))
    >>> plan.optimizer_steps, plan.optimizer_steps_per_epoch, plan.total, plan.warmup_steps
    (15, 5, 15, 5)
    >>> plan.scheduler_steps()[:7]
    [0, 1, 2, 3, 4, 5, 6]

"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lit_optim.core.config import OptimConfig
from lit_optim.core.lr_adapter import is_torch_scheduler
from lit_optim.core.run_length import check_lengths_known
from lit_optim.core.schedules import Horizon, _warmup_steps, build_schedule


@dataclass(frozen=True)
class TrainLoop:
    """What the trainer and the data say about the training loop, in Lightning's terms.

    Attributes:
        batches_per_epoch: Training batches per epoch on one process (after the
            distributed sampler and ``limit_train_batches``); ``None`` when the data has
            no length or is not known.
        accumulate: ``accumulate_grad_batches``.
        max_epochs: ``-1`` for no epoch limit (Lightning's meaning, ``None`` resolved).
        max_steps: Optimizer steps at most; ``-1`` for no limit.

    """

    batches_per_epoch: int | None = None
    accumulate: int = 1
    max_epochs: int = -1
    max_steps: int = -1


@dataclass(frozen=True)
class RunPlan:
    """The length of a run in optimizer and scheduler steps, warmup and phase boundaries.

    Scheduler steps are in units of ``interval`` (optimizer steps, or epochs for
    ``interval: epoch``) divided by ``frequency``, as Lightning steps the scheduler.

    Attributes:
        loop: What the trainer and the data said.
        interval: ``step`` or ``epoch``.
        frequency: ``optim.frequency``.
        optimizer_steps: Optimizer steps in the run (Lightning's
            ``estimated_stepping_batches``); ``None`` when unknown (endless).
        optimizer_steps_per_epoch: ``ceil(batches_per_epoch / accumulate)``, or ``None``.
        epochs: Epochs in the run, or ``None`` when unknown.
        total: Scheduler steps the schedule is resolved on, or ``None`` when unknown.
        steps_per_epoch: Scheduler steps per epoch (1 for ``interval: epoch``), or ``None``.
        warmup_steps: Scheduler steps of warmup (0 = none).
        boundaries: Scheduler steps where the main schedule switches from one piece to
            the next (a ``Sequence``), warmup included.

    """

    loop: TrainLoop
    interval: str
    frequency: int
    optimizer_steps: int | None
    optimizer_steps_per_epoch: int | None
    epochs: int | None
    total: int | None
    steps_per_epoch: int | None
    warmup_steps: int
    boundaries: tuple[int, ...]

    @classmethod
    def of(cls, config: OptimConfig, loop: TrainLoop) -> RunPlan:
        """Work the plan out from the ``optim:`` section and the training loop.

        Raises:
            ConfigError: A warmup is invalid or needs a length that is unknown, or the
                schedule spec cannot be built.

        """
        per_epoch = (
            math.ceil(loop.batches_per_epoch / loop.accumulate)
            if loop.batches_per_epoch is not None
            else None
        )
        optimizer_steps = _optimizer_steps(loop, per_epoch)
        if config.interval == "epoch":
            epochs = loop.max_epochs if loop.max_epochs > 0 else None
            if epochs is None and loop.max_steps > 0 and per_epoch:
                epochs = math.ceil(loop.max_steps / per_epoch)
            total = math.ceil(epochs / config.frequency) if epochs else None
            sched_per_epoch: int | None = 1
        else:
            epochs = (
                math.ceil(optimizer_steps / per_epoch) if optimizer_steps and per_epoch else None
            )
            total = math.ceil(optimizer_steps / config.frequency) if optimizer_steps else None
            sched_per_epoch = max(1, per_epoch // config.frequency) if per_epoch else None
        check_lengths_known(config, total, sched_per_epoch)
        warmup = _warmup(config, total, sched_per_epoch)
        return cls(
            loop=loop,
            interval=config.interval,
            frequency=config.frequency,
            optimizer_steps=optimizer_steps,
            optimizer_steps_per_epoch=per_epoch,
            epochs=epochs,
            total=total,
            steps_per_epoch=sched_per_epoch,
            warmup_steps=warmup,
            boundaries=_boundaries(config, warmup),
        )

    @property
    def horizon(self) -> Horizon | None:
        """The :class:`Horizon` schedules are resolved on, or ``None`` when unknown."""
        if self.total is None:
            return None
        return Horizon(self.total, self.steps_per_epoch or 1)

    def scheduler_steps(self) -> list[int]:
        """``k[t]``: how many times the scheduler has stepped before optimizer step ``t``.

        Follows Lightning's loop: an optimizer step after every ``accumulate`` batches and
        at the last batch of an epoch; an ``interval: step`` scheduler steps after an
        optimizer step when the epoch's ``batch_idx + 1`` is a multiple of ``frequency``,
        an ``interval: epoch`` one after every ``frequency``-th epoch.

        Raises:
            ValueError: The run length is unknown (endless run).

        """
        if self.optimizer_steps is None:
            raise ValueError("the run length is unknown; there is no step sequence to list")
        loop = self.loop
        if self.optimizer_steps == 0:
            return []
        # Data without a length is one endless epoch that max_steps cuts.
        batches = loop.batches_per_epoch or self.optimizer_steps * loop.accumulate
        ks: list[int] = []
        k = epoch = 0
        while True:
            for batch_idx in range(batches):
                last = batch_idx + 1 == batches
                if (batch_idx + 1) % loop.accumulate and not last:
                    continue
                ks.append(k)
                if len(ks) == self.optimizer_steps:
                    return ks
                if self.interval == "step" and (batch_idx + 1) % self.frequency == 0:
                    k += 1
            epoch += 1
            if self.interval == "epoch" and epoch % self.frequency == 0:
                k += 1

    def epoch_of_steps(self) -> list[int]:
        """The epoch of every optimizer step ``0 .. optimizer_steps - 1``."""
        per = self.optimizer_steps_per_epoch or self.optimizer_steps or 1
        return [t // per for t in range(self.optimizer_steps or 0)]


def _optimizer_steps(loop: TrainLoop, per_epoch: int | None) -> int | None:
    """Lightning's ``estimated_stepping_batches``, with ``None`` for an endless run."""
    if loop.max_epochs == -1 or per_epoch is None:
        return loop.max_steps if loop.max_steps > 0 else None
    steps = per_epoch * max(loop.max_epochs, 1)
    return min(steps, loop.max_steps) if loop.max_steps != -1 else steps


def _warmup(config: OptimConfig, total: int | None, per_epoch: int | None) -> int:
    warmup = config.warmup
    if warmup is None:
        return 0
    if warmup.steps is not None:
        return int(warmup.steps)
    # check_lengths_known has made sure the length this warmup depends on is known.
    horizon = Horizon(total or 0, per_epoch or 1)
    return _warmup_steps(warmup, horizon, "optim.warmup")


def _boundaries(config: OptimConfig, warmup: int) -> tuple[int, ...]:
    if config.schedule is None or is_torch_scheduler(config.schedule):
        return ()
    schedule = build_schedule(config.schedule, "optim.schedule")
    # A schedule joined from pieces (Sequence) lists where each piece starts after the first;
    # they count from the warmup's end, or from 0 when the warmup overlaps the schedule.
    start = 0 if config.warmup is not None and config.warmup.overlap else warmup
    return tuple(start + int(b) for b in getattr(schedule, "boundaries", ()))
