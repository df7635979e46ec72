"""The one refusal of a length that cannot be known: warmups against an unknown run.

A run has no known length when ``max_epochs`` is -1 (or the data has no length) and no
``max_steps`` ends it; an epoch has none when the training data has no length. Every
warmup (lr, momentum, weight decay) given as a ``fraction`` of the run or in ``epochs``
needs one of them; :func:`check_lengths_known` refuses all of them the same way, from
:class:`~lit_optim.core.plan.RunPlan` and from the plain-Python ``build_scheduler``.
"""

from __future__ import annotations

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError

__all__ = ["WARMUPS", "RunLengthUnknown", "check_lengths_known"]

#: The warmups of a section, each a ramp in front of its own track.
WARMUPS = ("warmup", "momentum_warmup", "weight_decay_warmup")


def check_lengths_known(
    config: OptimConfig, total: int | None, steps_per_epoch: int | None
) -> None:
    """Refuse a warmup whose length depends on a run or epoch length that is unknown.

    Args:
        config: The one-optimizer ``optim:`` section.
        total: Scheduler steps in the run, or ``None`` when unknown.
        steps_per_epoch: Scheduler steps per epoch, or ``None`` when unknown.

    Raises:
        ConfigError: Keyed ``optim.<warmup>.fraction`` or ``optim.<warmup>.epochs``.

    Example:
        >>> from lit_optim import OptimConfig, Warmup
        >>> check_lengths_known(OptimConfig(warmup=Warmup(epochs=2)), 100, None)
        Traceback (most recent call last):
        ...
        lit_optim.core.errors.ConfigError: optim.warmup.epochs: ...

    """
    for name in WARMUPS:
        warmup = getattr(config, name)
        if warmup is None or warmup.steps is not None:
            continue
        if warmup.fraction is not None and total is None:
            raise ConfigError(
                f"optim.{name}.fraction",
                "a fraction of the run needs the run's length, which is unknown (max_epochs "
                "is -1 or the training data has no length); set trainer.max_steps, or "
                f"trainer.max_epochs with a sized dataset, or give optim.{name}.steps",
            )
        if warmup.epochs is not None and steps_per_epoch is None:
            raise ConfigError(
                f"optim.{name}.epochs",
                "epochs need the length of an epoch, which is unknown (the training data "
                f"has no length); give optim.{name}.steps instead",
            )


class RunLengthUnknown(ConfigError):
    """A schedule needs the run length and ``build_scheduler`` got no ``total_steps``.

    Worded for a plain-Python caller; :meth:`for_trainer` words it for a Lightning run,
    whose length comes from the trainer and the data.

    Attributes:
        what: What needs the length (``Poly needs the length of the run``).
        setting: A config key that would give the length instead, or ``""``.
        arg: The argument of ``build_scheduler`` that gives it.

    """

    def __init__(self, what: str, setting: str = "", arg: str = "total_steps") -> None:
        self.what, self.setting, self.arg = what, setting, arg
        also = f", or set {setting}" if setting else ""
        meaning = {
            "total_steps": "how many times scheduler.step() is called over the run",
            "steps_per_epoch": "scheduler steps per epoch",
        }[arg]
        super().__init__(
            "build_scheduler", f"{what}, but {arg} is None; pass {arg}=<{meaning}>{also}"
        )

    def __reduce__(self) -> tuple[type[RunLengthUnknown], tuple[str, str, str]]:  # type: ignore[override]
        return (type(self), (self.what, self.setting, self.arg))

    def for_trainer(self) -> ConfigError:
        """The same error for a Lightning run: what to set on the trainer."""
        also = f"{self.setting}, " if self.setting else ""
        return ConfigError(
            "trainer.max_steps",
            f"{self.what}, which is unknown (max_epochs is -1 or the training data has no "
            f"length); set {also}trainer.max_steps, or trainer.max_epochs with a sized dataset",
        )
