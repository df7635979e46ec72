"""lr scaling by effective batch size (``optim.lr_scaling``), Goyal et al.'s linear rule.

The effective batch is ``batch size x accumulate_grad_batches x world size``; every
group's lr is multiplied by ``effective / reference_batch`` (``linear``) or its square root
(``sqrt``), so the ratios between groups stay as configured. Anchors: MMEngine's
``auto_scale_lr``, timm's ``lr_base`` / ``lr_base_size``, detectron2's reference world size.

Example:
    >>> s = BatchScale("linear", reference_batch=256, batch_size=64, accumulate=2, world_size=4)
    >>> s.effective_batch, s.factor
    (512, 2.0)
    >>> s.describe().split(", ")[1]
    'reference 256 -> lr x 2'

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lit_optim.core.config import LRScaling
from lit_optim.core.config_checks import check_below_largest
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups.result import PendingGroup

__all__ = ["BatchScale", "apply_batch_scale", "find_batch_scale"]


@dataclass(frozen=True)
class BatchScale:
    """The lr factor of one run, and where its numbers came from.

    Attributes:
        rule: ``linear`` or ``sqrt``.
        reference_batch: The effective batch the configured lrs were tuned for.
        batch_size: Per-process batch size.
        accumulate: ``trainer.accumulate_grad_batches``.
        world_size: Number of processes (devices x nodes).
        source: Where the batch size was read (``data.batch_size``, ...).

    """

    rule: str
    reference_batch: int
    batch_size: int
    accumulate: int = 1
    world_size: int = 1
    source: str = "optim.lr_scaling.batch_size"

    @property
    def effective_batch(self) -> int:
        """``batch_size x accumulate x world_size``."""
        return self.batch_size * self.accumulate * self.world_size

    @property
    def factor(self) -> float:
        """What every group's lr is multiplied by."""
        ratio = self.effective_batch / self.reference_batch
        return ratio if self.rule == "linear" else math.sqrt(ratio)

    def describe(self) -> str:
        """One line for the group table, the plot title and the start of fit."""
        return (
            f"lr scaling ({self.rule}): effective batch {self.effective_batch} = "
            f"{self.batch_size} x {self.accumulate} accumulated x {self.world_size} "
            f"process{'es' if self.world_size != 1 else ''}, reference {self.reference_batch} "
            f"-> lr x {self.factor:g}"
        )


def find_batch_scale(scaling: LRScaling, trainer: Any, datamodule: Any = None) -> BatchScale:
    """Read batch size, accumulation and world size from the trainer and the data.

    The batch size is, in this order: ``optim.lr_scaling.batch_size``; the data module's
    ``batch_size`` attribute or hyperparameter; the training ``DataLoader``'s batch size.

    Raises:
        ConfigError: No batch size can be found (says where to set it).

    """
    found = _batch_size(scaling, trainer, datamodule)
    if found is None:
        raise ConfigError(
            "optim.lr_scaling.batch_size",
            "lr_scaling needs the per-process batch size, which neither the data module "
            "(no batch_size attribute or hyperparameter) nor its training DataLoader "
            "(batch_size=None, e.g. a custom batch_sampler) tells; set "
            "optim.lr_scaling.batch_size, or give the data module a batch_size",
        )
    size, source = found
    return BatchScale(
        scaling.rule,
        int(scaling.reference_batch),
        int(size),
        int(getattr(trainer, "accumulate_grad_batches", 1) or 1),
        int(getattr(trainer, "world_size", 1) or 1),
        source,
    )


def apply_batch_scale(
    optimizer: torch.optim.Optimizer, scale: BatchScale, pending: Sequence[PendingGroup] = ()
) -> BatchScale:
    """Multiply the lr of every group (and of those that join later) by ``scale.factor``.

    Call before the scheduler is built (its base lrs are the scaled ones).

    Args:
        optimizer: The optimizer whose groups are scaled.
        scale: The run's batch scale.
        pending: The groups that join later (``ParamGroups.pending``).

    Returns:
        ``scale``, for whoever shows what was applied (the tools keep it beside the run).

    """
    factor = scale.factor
    groups = [*optimizer.param_groups, *(join.group for join in pending)]
    for group in groups:
        lr = group["lr"]
        if isinstance(lr, int | float):  # a tensor lr is left on its device
            how = f"the lr {lr:g} of group {group.get('name')!r} times {factor:g}"
            check_below_largest("optim.lr_scaling", lr * factor, how)
    for group in groups:
        group["lr"] = group["lr"] * factor
    return scale


def _batch_size(scaling: LRScaling, trainer: Any, datamodule: Any) -> tuple[int, str] | None:
    if scaling.batch_size is not None:
        return int(scaling.batch_size), "optim.lr_scaling.batch_size"
    dm = datamodule if datamodule is not None else getattr(trainer, "datamodule", None)
    if dm is not None and not isinstance(dm, torch.utils.data.DataLoader):
        value = getattr(dm, "batch_size", None)
        if _is_size(value):
            return int(value), "data.batch_size"
        hparams = getattr(dm, "hparams", None)
        if isinstance(hparams, Mapping) and _is_size(hparams.get("batch_size")):
            return int(hparams["batch_size"]), "data.hparams.batch_size"
    loader = datamodule if isinstance(datamodule, torch.utils.data.DataLoader) else None
    if loader is None and trainer is not None:
        loader = getattr(getattr(trainer, "fit_loop", None), "_combined_loader", None)
        loader = getattr(trainer, "train_dataloader", None) if loader is None else loader
        flat = getattr(loader, "flattened", None)
        loader = flat[0] if flat else loader
    size = getattr(loader, "batch_size", None)
    if size is None:
        size = getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    return (int(size), "train DataLoader.batch_size") if _is_size(size) else None


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
