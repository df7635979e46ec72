"""Values inside the ``optim:`` section: specs kept as plain data, and the small sections.

``Spec`` keeps ``{class_path, init_args}`` opaque to jsonargparse; ``Warmup``,
``LayerDecay``, ``Unfreeze`` and ``LRScaling`` are the sub-sections of
:class:`~lit_optim.core.config.OptimConfig` and its group rules. They sit in checkpoints
(a mixin model keeps its ``OptimConfig`` in hparams), so they stay plain dataclasses.

Example:
    >>> Warmup(steps=10).validate()
    >>> Warmup(steps=10, mode="cosine").validate()
    Traceback (most recent call last):
    ...
    lit_optim.core.errors.ConfigError: optim.warmup.mode: 'cosine' is not one of linear, ...

"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lit_optim.core.config_checks import check_choice, check_number, check_type
from lit_optim.core.errors import ConfigError

__all__ = ["FrozenMapping", "LRScaling", "LayerDecay", "Spec", "Unfreeze", "Warmup"]


class FrozenMapping(Mapping[str, Any]):
    """A read-only mapping over a private copy of ``data`` (not a dict on purpose).

    jsonargparse takes a dict apart into nested keys; a mapping that is not a dict stays
    one value, replaced as a whole.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Spec(FrozenMapping):
    """A ``{class_path: ..., init_args: {...}}`` mapping kept as plain data.

    A read-only mapping rather than a dict on purpose: jsonargparse treats a dict with a
    ``class_path`` as a class to resolve (refusing short names such as ``SGD``) and, when
    a later config or the command line switches the class, carries the old init args
    over. This type is replaced as a whole, so nothing of a previous class leaks.
    """

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[type[Spec], tuple[dict[str, Any]]]:
        return (Spec, (self._data,))


@dataclass
class Warmup:
    """A ramp in front of the schedule.

    Exactly one of ``steps``, ``epochs`` or ``fraction`` gives its length (in scheduler
    steps, epochs, or a fraction of the run). The factor goes from ``start_factor`` to the
    schedule's first value: linearly, exponentially (geometric), or stays constant at
    ``start_factor`` until the warmup ends. The schedule starts after the warmup; with
    ``overlap: true`` it runs from step 0 under the warmup instead (timm's
    ``warmup_prefix=False``), so the warmup replaces its first steps. A length given in
    ``epochs`` or as a ``fraction`` is rounded to whole steps: ``rounding: nearest`` (half
    up, the default) or ``up`` (``ceil``, as Hugging Face's ``warmup_ratio``: 0.15 of 36
    steps is 6 warmup steps, not 5).
    """

    steps: int | None = None
    epochs: float | None = None
    fraction: float | None = None
    start_factor: float = 0.0
    mode: Literal["linear", "exponential", "constant"] = "linear"
    overlap: bool = False
    rounding: Literal["nearest", "up"] = "nearest"

    def validate(self, key: str = "optim.warmup") -> None:
        """Raise :class:`ConfigError` on an impossible warmup."""
        given = [n for n in ("steps", "epochs", "fraction") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ConfigError(
                key, f"give exactly one of steps, epochs or fraction (got {given or 'none'})"
            )
        check_number(f"{key}.steps", self.steps, minimum=0, integer=True, optional=True)
        check_number(f"{key}.epochs", self.epochs, minimum=0, optional=True)
        check_number(f"{key}.fraction", self.fraction, minimum=0, optional=True)
        if self.fraction is not None and self.fraction >= 1:
            raise ConfigError(f"{key}.fraction", f"must be in [0, 1), got {self.fraction}")
        check_number(f"{key}.start_factor", self.start_factor, minimum=0)
        if self.start_factor > 1:
            raise ConfigError(f"{key}.start_factor", f"must be in [0, 1], got {self.start_factor}")
        if self.mode == "exponential" and self.start_factor <= 0:
            raise ConfigError(
                f"{key}.start_factor",
                "exponential warmup needs start_factor > 0 (a geometric ramp cannot start at 0)",
            )
        check_choice(f"{key}.mode", self.mode, ("linear", "exponential", "constant"))
        if not isinstance(self.overlap, bool):
            raise ConfigError(f"{key}.overlap", f"expected true or false, got {self.overlap!r}")
        check_choice(f"{key}.rounding", self.rounding, ("nearest", "up"))


@dataclass
class LayerDecay:
    """Layer-wise lr decay: layer ``i`` of ``n`` gets ``lr_scale = rate ** (n - 1 - i)``.

    Args:
        rate: Decay per layer, in (0, 1].
        layers: Optional ``"re:<regex>"`` (or plain regex) whose first group is the layer
            index (0 = embeddings); overrides the automatic inference.
        num_layers: Total layer count; inferred from the model when omitted.

    """

    rate: float = 0.75
    layers: str | None = None
    num_layers: int | None = None

    def validate(self, key: str = "optim.layer_decay") -> None:
        """Raise :class:`ConfigError` on an impossible layer decay."""
        check_number(f"{key}.rate", self.rate, minimum=0, strict=True)
        if self.rate > 1:
            raise ConfigError(f"{key}.rate", f"must be in (0, 1], got {self.rate}")
        check_number(f"{key}.num_layers", self.num_layers, minimum=1, integer=True, optional=True)
        check_type(f"{key}.layers", self.layers, str, "a regex string", optional=True)


@dataclass
class Unfreeze:
    """When a rule's parameters join the optimizer: at an ``epoch`` or an optimizer ``step``.

    Until then they are frozen (``requires_grad=False``); from then on they train with
    the rule's own ``lr`` / ``lr_scale`` under the schedule, as if they had always been in
    the optimizer (Lightning's ``BaseFinetuning`` pattern without a callback).
    """

    epoch: int | None = None
    step: int | None = None

    def validate(self, key: str) -> None:
        """Raise :class:`ConfigError` unless exactly one of ``epoch`` / ``step`` is given."""
        given = [n for n in ("epoch", "step") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ConfigError(key, f"give exactly one of epoch or step (got {given or 'none'})")
        check_number(f"{key}.{given[0]}", getattr(self, given[0]), minimum=0, integer=True)


@dataclass
class LRScaling:
    """Scale every lr by the effective batch size (see :mod:`lit_optim.core.lr_scaling`).

    Args:
        rule: ``linear`` (``effective / reference``) or ``sqrt`` (its square root).
        reference_batch: The effective batch size the configured lrs are meant for.
        batch_size: Per-process batch size, when the data module does not tell it.

    """

    rule: Literal["linear", "sqrt"] = "linear"
    reference_batch: int = 256
    batch_size: int | None = None

    def validate(self, key: str = "optim.lr_scaling") -> None:
        """Raise :class:`ConfigError` on an unknown rule or a batch size below 1."""
        check_choice(f"{key}.rule", self.rule, ("linear", "sqrt"))
        check_number(f"{key}.reference_batch", self.reference_batch, minimum=1, integer=True)
        check_number(f"{key}.batch_size", self.batch_size, minimum=1, integer=True, optional=True)
