"""``lit-optim lr-find``: an lr range test that keeps the ratios between param groups.

Lightning's ``Tuner.lr_find``, ignite's and pytorch-lr-finder's range tests set every param
group to one lr, so layer-wise decay and head multipliers are lost. Here every group's
configured lr is multiplied by one factor, swept exponentially from ``start`` to ``end``
over ``steps`` optimizer steps (Smith's range test), so the groups keep their ratios.

The run is resolved as ``fit`` resolves it (:func:`lit_optim.tools.resolve.resolve_run`);
a deep copy of the model trains in a Trainer without logger, checkpoints or progress
files (in a temporary directory), so the model, its optimizer and the run directory are
left as they were. The loss is smoothed (exponential moving average with bias
correction, as fastai and Lightning do, but 0.9 rather than their 0.98: over 100 steps
the longer average lags the loss by tens of steps); the sweep stops early once the
smoothed loss exceeds ``diverge`` times its best. The suggestion is the steepest descent: the
base lr
where the smoothed loss falls fastest against log lr.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import MethodType
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from lit_optim.core.errors import ConfigError
from lit_optim.core.optimizers import resolve_optimizer
from lit_optim.lightning.mixin import configure_optimizers

__all__ = ["LRFind", "lr_find", "lr_find_command", "steepest_descent"]

#: Trainer settings of the resolved run that the sweep keeps (the rest is the sweep's).
_KEPT = ("accelerator", "precision", "accumulate_grad_batches", "gradient_clip_val",
         "gradient_clip_algorithm")  # fmt: skip


@dataclass
class LRFind:
    """What the sweep measured.

    Attributes:
        base_lr: The configured base lr (``optim.optimizer.init_args.lr``, after
            ``lr_scaling``).
        factors: The factor at each sweep step.
        losses: Raw training loss at each step.
        smoothed: Smoothed loss at each step.
        group_lrs: ``{group name: [lr at each step]}`` as the optimizer used them.
        stopped_early: Whether the sweep stopped on divergence.
        suggestion: Index of the suggested step (steepest descent), or ``None``.

    """

    base_lr: float
    factors: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    group_lrs: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: bool = False
    suggestion: int | None = None

    @property
    def lrs(self) -> list[float]:
        """The base lr at each sweep step (the x-axis)."""
        return [self.base_lr * f for f in self.factors]

    @property
    def suggested_lr(self) -> float | None:
        """The base lr to use, or ``None`` when the sweep was too short to tell."""
        return None if self.suggestion is None else self.lrs[self.suggestion]


def lr_find_command(
    cli_args: list[str],
    *,
    out: Path = Path("lr_find.png"),
    start: float = 1e-3,
    end: float = 1e2,
    steps: int = 100,
    diverge: float = 4.0,
) -> LRFind:
    """``lit-optim lr-find``: sweep, draw ``out``, print the suggestion and its YAML line."""
    from lit_optim.tools.resolve import note, quiet_lightning, resolve_run

    run = resolve_run(cli_args)
    with quiet_lightning():
        result = lr_find(run, start=start, end=end, steps=steps, diverge=diverge)
    if result.stopped_early:
        note(f"stopped after {len(result.factors)} steps: the loss diverged")
    _draw(result, Path(out))
    print(f"wrote {out} ({len(result.factors)} steps, {len(result.group_lrs)} groups)")
    lr = result.suggested_lr
    if lr is None:
        raise ConfigError(
            "lr-find --steps",
            f"the sweep took {len(result.factors)} steps, too few to find a descent; "
            "give more steps or a wider range (--start / --end)",
        )
    print(
        f"suggested lr: {lr:.3g} (steepest descent of the smoothed loss; configured "
        f"{result.base_lr:.3g}); every group keeps its ratio to it"
    )
    print(f"optim.optimizer.init_args.lr: {lr:.3g}")
    return result


def lr_find(
    run: Any,
    *,
    start: float = 1e-3,
    end: float = 1e2,
    steps: int = 100,
    diverge: float = 4.0,
    smoothing: float = 0.9,
) -> LRFind:
    """Sweep a copy of the resolved run's model; nothing of the run is changed.

    Args:
        run: A :class:`lit_optim.tools.resolve.ResolvedRun`.
        start: First factor of the configured lrs.
        end: Last factor.
        steps: Optimizer steps of the sweep (at most).
        diverge: Stop once the smoothed loss exceeds this many times its best.
        smoothing: EMA coefficient of the loss (0 = raw).

    Raises:
        ConfigError: A bad range or step count.

    """
    if not (0 < start < end) or not math.isfinite(end):
        raise ConfigError("lr-find --start", f"need 0 < start < end, got {start} and {end}")
    if steps < 3:
        raise ConfigError("lr-find --steps", f"need at least 3 steps, got {steps}")
    _, init_args = resolve_optimizer(run.config.optimizer)
    scale = run.preview.scale
    base = float(run.preview.optimizer.defaults.get("lr", init_args.get("lr", 0.0)))
    base *= scale.factor if scale is not None else 1.0
    result = LRFind(base_lr=base)
    # The copy trains on one process: the run's own lr scale is applied, not the copy's.
    sweep = _Sweep(result, start, end, steps, diverge, smoothing, scale.factor if scale else 1.0)
    model = copy.deepcopy(run.model)  # the run's own weights stay as they are
    kept = {k: run.cli.config["trainer"].get(k) for k in _KEPT}
    kept = {k: v for k, v in kept.items() if v is not None}
    with tempfile.TemporaryDirectory(prefix="lit-optim-lr-find-") as tmp:
        trainer = pl.Trainer(
            **kept,
            devices=1,
            max_steps=steps,
            max_epochs=-1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            callbacks=[sweep],
            default_root_dir=tmp,
        )
        config = dataclasses.replace(run.config, summary=False, lr_scaling=None)
        model.configure_optimizers = MethodType(  # type: ignore[method-assign]
            lambda self: configure_optimizers(self, config), model
        )
        trainer.fit(model, datamodule=run.datamodule)
    result.suggestion = steepest_descent(result.smoothed)
    return result


def steepest_descent(smoothed: list[float], skip: int = 3) -> int | None:
    """Index where the smoothed loss falls fastest (most negative slope per step).

    The first ``skip`` points are left out (the average is still warming up), as
    Lightning's ``suggestion()`` skips its first 10 of 100. The sweep is geometric, so a
    slope per step is a slope against log lr.

    Example:
        >>> steepest_descent([5, 5, 5, 5, 4.9, 4, 2, 1.9, 3, 9])
        5

    """
    if len(smoothed) < skip + 3:
        return None
    slopes = [(smoothed[i + 1] - smoothed[i - 1]) / 2 for i in range(skip, len(smoothed) - 1)]
    best = min(range(len(slopes)), key=slopes.__getitem__)
    return best + skip


class _Sweep(Callback):
    """Set every group to ``configured lr x factor(step)`` and record the loss."""

    def __init__(
        self,
        result: LRFind,
        start: float,
        end: float,
        steps: int,
        diverge: float,
        beta: float,
        lr_scale: float = 1.0,
    ) -> None:
        self.result, self.start, self.end, self.steps = result, start, end, steps
        self.lr_scale = lr_scale
        self.diverge, self.beta = diverge, beta
        self.configured: list[float] = []
        self._batch_losses: list[float] = []
        self._avg = 0.0
        self._best = math.inf

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        groups = trainer.optimizers[0].param_groups
        # initial_lr: what the scheduler scales (after lr_scaling), before any warmup factor
        self.configured = [float(g.get("initial_lr", g["lr"])) * self.lr_scale for g in groups]
        names = [str(g.get("name") or f"pg{i + 1}") for i, g in enumerate(groups)]
        self.result.group_lrs = {n: [] for n in names}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer) -> None:
        k = trainer.global_step
        factor = self.start * (self.end / self.start) ** (k / (self.steps - 1))
        groups = optimizer.param_groups
        for group, lr, name in zip(groups, self.configured, self.result.group_lrs, strict=True):
            group["lr"] = lr * factor
            self.result.group_lrs[name].append(lr * factor)
        self.result.factors.append(factor)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._batch_losses.append(float(torch.as_tensor(loss).detach().float().mean()))
        if len(self.result.factors) == len(self.result.losses):
            return  # accumulating: the optimizer has not stepped yet
        value = sum(self._batch_losses) / len(self._batch_losses)
        self._batch_losses.clear()
        self.result.losses.append(value)
        n = len(self.result.losses)
        self._avg = self.beta * self._avg + (1 - self.beta) * value
        smooth = self._avg / (1 - self.beta**n)
        self.result.smoothed.append(smooth)
        self._best = min(self._best, smooth)
        if not math.isfinite(smooth) or (n > 3 and smooth > self.diverge * self._best):
            self.result.stopped_early = True
            trainer.should_stop = True


def _draw(result: LRFind, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    n = len(result.smoothed)
    lrs = result.lrs[:n]
    ax.plot(lrs, result.losses[:n], color="0.75", lw=1, label="loss")
    ax.plot(lrs, result.smoothed, color="#1f77b4", lw=2, label="smoothed loss")
    ax.set_xscale("log")
    ax.set_xlabel("base lr (every group keeps its configured ratio)")
    ax.set_ylabel("training loss")
    finite = [(i, v) for i, v in enumerate(result.smoothed) if math.isfinite(v)]
    if finite:
        # The whole descent, from the first loss down to the lowest smoothed one, is on the
        # chart (the suggestion lies on it); only the divergence after the lowest is cut.
        best = min(finite, key=lambda iv: iv[1])[0]
        descent = [v for i, v in finite if i <= best]
        raw = [v for v in result.losses[: best + 1] if math.isfinite(v)]
        low, high = min([*descent, *raw]), max(descent)
        pad = 0.05 * (high - low) + 1e-12
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(lrs[0], lrs[-1])  # the sweep's own range, no empty margin
    ax.axvline(result.base_lr, color="0.4", ls=":", lw=1.2,
               label=f"configured {result.base_lr:.3g}")  # fmt: skip
    if result.suggestion is not None:
        i = result.suggestion
        ax.plot([lrs[i]], [result.smoothed[i]], "o", color="#d62728", ms=8,
                label=f"suggested {lrs[i]:.3g} (steepest descent)")  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    ax.set_title(f"lr range test: {n} steps, factor {result.factors[0]:.3g} -> "
                 f"{result.factors[n - 1]:.3g} of every group's lr", fontsize=10)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
