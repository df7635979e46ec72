"""What ``lit-optim`` prints around a run: one-line warnings, no noise, where the logs went.

- lit_optim's own warnings print as one line, ``warning: <message>``, without Lightning's
  ``file:line:`` prefix (a user cannot act on our source location).
- Lightning 2.6's ``isinstance(treespec, LeafSpec)`` deprecation is dropped: Lightning's
  ``CombinedLoader`` builds a ``LeafSpec`` on every fit with torch >= 2.10, nothing a
  user (or lit_optim) does causes it and nothing they can do removes it.
- The progress bar leaves out ``v_num``: the logger version, which Rich shows as
  ``v_num: 0.000``; the closing line names the version directory instead.
- :class:`RunLocations` prints, once fit ends, where the metrics, the lr log and the
  checkpoints went.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import (
    LearningRateMonitor,
    ModelCheckpoint,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_info

__all__ = ["RunLocations", "drop_version_number", "quiet_warnings", "run_locations"]

_PACKAGE = str(Path(__file__).resolve().parents[1])
#: Lightning's deprecation of its own use of torch's LeafSpec (see the module docstring).
_LEAFSPEC = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def quiet_warnings() -> None:
    """One-line lit_optim warnings and no LeafSpec deprecation (idempotent)."""
    warnings.filterwarnings("ignore", message=_LEAFSPEC)
    if getattr(warnings.formatwarning, "lit_optim", False):
        return
    previous = warnings.formatwarning

    def formatwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        line: str | None = None,
    ) -> str:
        text = str(message)
        if text.startswith("lit-optim") or os.path.abspath(filename).startswith(_PACKAGE):
            return f"warning: {text}\n"
        return previous(message, category, filename, lineno, line)

    formatwarning.lit_optim = True  # type: ignore[attr-defined]
    warnings.formatwarning = formatwarning


class _RichWithoutVersion(RichProgressBar):
    """Lightning's Rich progress bar without ``v_num``."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Lightning's metrics without the logger version."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class _TQDMWithoutVersion(TQDMProgressBar):
    """Lightning's TQDM progress bar without ``v_num``."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """Lightning's metrics without the logger version."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


_WITHOUT_VERSION = {RichProgressBar: _RichWithoutVersion, TQDMProgressBar: _TQDMWithoutVersion}


def drop_version_number(trainer: pl.Trainer) -> None:
    """Leave ``v_num`` out of the trainer's progress bar, when it is one of Lightning's own.

    The trainer made the bar already (from ``enable_progress_bar`` or the callbacks), with
    its settings; only its class changes, to a subclass that adds no state. A progress bar
    of the user's own class is left as it is.
    """
    bar = trainer.progress_bar_callback
    quiet = _WITHOUT_VERSION.get(type(bar))  # type: ignore[arg-type]
    if bar is not None and quiet is not None:
        bar.__class__ = quiet


class RunLocations(pl.Callback):
    """Print, when fit ends, one line saying where the metrics, lr log and checkpoints went."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the line (rank zero only)."""
        rank_zero_info(run_locations(trainer))


def run_locations(trainer: pl.Trainer) -> str:
    """``lit-optim: metrics + lr log -> ...; checkpoints -> ...`` for a trainer after fit.

    Paths are relative to the working directory when inside it.
    """
    logged = [_where(logger) for logger in trainer.loggers]
    lr_logged = any(
        type(c).__name__ == "LRLogger" or isinstance(c, LearningRateMonitor)
        for c in trainer.callbacks  # type: ignore[attr-defined]
    )
    what = "metrics + lr log" if lr_logged else "metrics"
    parts = [f"{what} -> {', '.join(logged)}" if logged else "metrics -> not logged (no logger)"]
    if logged and not lr_logged:
        parts.append("lr -> not logged (add lit_optim.LRLogger to trainer.callbacks)")
    saved = []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            saved.append(_relative(callback.dirpath))
    parts.append(f"checkpoints -> {', '.join(dict.fromkeys(saved))}" if saved else "no checkpoints")
    return "lit-optim: " + "; ".join(parts)


def _where(logger: Any) -> str:
    if isinstance(logger, CSVLogger):
        return _relative(os.path.join(logger.log_dir, "metrics.csv"))
    if isinstance(logger, TensorBoardLogger):
        return f"{_relative(logger.log_dir)} (TensorBoard)"
    log_dir = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
    name = type(logger).__name__
    return f"{_relative(log_dir)} ({name})" if log_dir else name


def _relative(path: str | os.PathLike[str]) -> str:
    absolute = os.path.abspath(path)
    here = os.getcwd()
    if absolute == here or absolute.startswith(here + os.sep):
        return os.path.relpath(absolute, here)
    return absolute
