"""Resuming with ``--ckpt_path``: find ``last``, refuse a mismatched run early, keep one version.

``lit-optim fit --ckpt_path last`` restarts a run: the newest checkpoint of the logger's
experiment is found, its scheduler state is checked against this run *before* Lightning
writes anything (a refused resume leaves no empty ``version_N`` behind), and the restart
logs into the checkpoint's own ``version_N`` instead of opening a new one.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger

from lit_optim.core.config import rekey
from lit_optim.core.errors import ConfigError

__all__ = ["check_resume", "continue_version", "last_checkpoint", "read_checkpoint"]


def last_checkpoint(trainer: pl.Trainer) -> Path | None:
    """The newest checkpoint of this experiment, for ``--ckpt_path last``.

    Lightning looks for ``last`` only in the checkpoint directory of the *new* run, which
    a versioned logger (``version_N``) has just made empty. When no ModelCheckpoint has a
    fixed ``dirpath``, look through every version of the logger's experiment instead:
    the newest ``last.ckpt``, else the newest ``*.ckpt``. ``None`` leaves it to Lightning
    (which warns and starts from scratch, so one command serves first start and restarts).
    """
    fixed = [c for c in trainer.checkpoint_callbacks if getattr(c, "dirpath", None)]
    logger = trainer.logger
    if fixed or logger is None or logger.save_dir is None:
        return None
    root = Path(logger.save_dir) / (logger.name or "")
    for pattern in ("version_*/checkpoints/last.ckpt", "version_*/checkpoints/*.ckpt"):
        found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    return None


def read_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint's contents, or ``None`` when it is no readable checkpoint.

    ``None`` leaves the file to Lightning, which reports it in its own words.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return state if isinstance(state, dict) else None


def check_resume(
    schedulers: Sequence[tuple[str, Any]],
    state: dict[str, Any] | None,
    trainer: pl.Trainer | None = None,
) -> None:
    """Load the checkpoint's scheduler states into preview schedulers to refuse a mismatch.

    :meth:`ScheduleLR.load_state_dict` raises :class:`ConfigError` when the groups or the
    run length differ; doing it here, before ``fit``, means nothing is written on refusal.
    Groups that a ``BaseFinetuning`` callback of ``trainer`` added during training are
    left out: that callback adds them again in ``on_fit_start``, after this preview.

    Args:
        schedulers: ``(key, scheduler)`` for each scheduler ``fit`` will build, in
            Lightning's order (``optim``, or ``optim.optimizers.<name>`` per entry); the
            key prefixes the error (``optim.optimizers.disc (total): ...``).
        state: The checkpoint (``None``: nothing to check).
        trainer: The trainer, for its callbacks.

    """
    if state is None or not schedulers:
        return
    saved = state.get("lr_schedulers")
    if not saved:
        return
    if len(saved) != len(schedulers):
        raise ConfigError(
            "ckpt_path",
            f"the checkpoint has {len(saved)} lr scheduler(s) but this run builds "
            f"{len(schedulers)} ({', '.join(k for k, _ in schedulers)}); resume with the "
            "config it was saved with, or start a new run without ckpt_path",
        )
    callbacks = trainer.callbacks if trainer is not None else []
    finetuning = any(isinstance(c, BaseFinetuning) for c in callbacks)
    for (key, scheduler), entry in zip(schedulers, saved, strict=True):
        if not hasattr(scheduler, "fingerprint"):
            continue  # a torch scheduler: Lightning loads it as it is
        if finetuning and isinstance(entry, dict):
            entry = _without_added_groups(entry)
        try:
            scheduler.load_state_dict(entry)
        except ConfigError as err:
            raise rekey(err, "optim", key) from None


def _without_added_groups(entry: dict[str, Any]) -> dict[str, Any]:
    joined = list(entry.get("joined", []))
    # the joined groups follow the built ones, in the order they joined
    first = len(entry.get("base_lrs", [])) - len(joined)
    drop = {first + i for i, j in enumerate(joined) if j.get("source") != "rule"}
    entry = {**entry, "joined": [j for j in joined if j.get("source") == "rule"]}
    for key in ("base_lrs", "base_momenta", "base_weight_decays", "_last_lr"):
        if isinstance(entry.get(key), list):
            entry[key] = [v for i, v in enumerate(entry[key]) if i not in drop]
    return entry


def continue_version(trainer: pl.Trainer, ckpt: Path, state: dict[str, Any] | None) -> None:
    """Make the trainer's logger write into the ``version_N`` that holds ``ckpt``.

    A CSVLogger would delete the version's ``metrics.csv`` when it opens the directory, so
    the rows logged before the checkpoint's step are written back: one run, one file.
    """
    logger = trainer.logger
    version_dir = ckpt.parent.parent
    if logger is None or ckpt.parent.name != "checkpoints" or logger.save_dir is None:
        return
    root = Path(logger.save_dir) / (logger.name or "")
    if version_dir.parent.resolve() != root.resolve() or not version_dir.name.startswith(
        "version_"
    ):
        return
    if getattr(logger, "_version", None) is not None:
        return  # the user fixed the version; Lightning uses it as given
    suffix = version_dir.name.removeprefix("version_")
    # Loggers take the version only at construction; this one is not opened yet.
    logger._version = int(suffix) if suffix.isdigit() else version_dir.name  # type: ignore[attr-defined]
    for callback in trainer.callbacks:
        if isinstance(callback, SaveConfigCallback):
            callback.overwrite = True  # the same run's config.yaml, now with ckpt_path set
    if isinstance(logger, CSVLogger):
        step = state.get("global_step") if state is not None else None
        _keep_metrics(logger, step if isinstance(step, int) else None)


def _keep_metrics(logger: CSVLogger, step: int | None) -> None:
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        keys = list(reader.fieldnames or [])
        rows = list(reader)
    if step is not None:  # rows after the checkpoint are logged again by the restart
        rows = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) < step]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        writer = logger.experiment
    writer.metrics_keys = keys
    with path.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=keys)
        out.writeheader()
        out.writerows(rows)
