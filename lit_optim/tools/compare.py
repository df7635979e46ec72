"""``lit-optim compare``: train one model with several ``optim:`` sections, side by side.

Every run starts from the same base config (model, data, trainer settings) and the same
seed, so the model initialisation and the batch order are identical; only the ``optim:``
section differs -- each ``--optim`` file's section is layered on the base's exactly as
``fit --optim FILE`` layers it (mappings merge, a new ``class_path`` or list replaces).
Runs are trained one after another in this process. The result is one PNG (train loss per
step, the validation metric per epoch, the lr per step; one colour per run) and a markdown
table (final train loss, best validation metric, wall time, steps/s) printed and saved
next to it, plus the raw series as JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, Checkpoint

from lit_optim.core.build import build
from lit_optim.core.composite import optimizer_name
from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.plan import RunPlan
from lit_optim.lightning.cli import with_default_config
from lit_optim.lightning.loop import loop_before_fit, run_plan
from lit_optim.lightning.optim_args import OPTIM_FLAG, optim_section, read_optim_value
from lit_optim.tools.plot import COLORS

__all__ = ["RunResult", "compare_command", "markdown_table"]

# Compare collects what it draws itself; the runs write no logs or checkpoints.
_QUIET_TRAINER = (
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
)


@dataclass
class RunResult:
    """What one run of the comparison produced.

    Attributes:
        name: The ``--optim`` file's stem.
        optimizer: Optimizer class name.
        loss: Train loss per optimizer step (mean over accumulated batches).
        lr: ``{group: [lr at every optimizer step]}``.
        metric: ``[(epoch, value)]`` of the validation metric.
        steps_per_epoch: Optimizer steps per epoch.
        wall_time: Seconds spent in ``trainer.fit``.
        steps: Optimizer steps taken.

    """

    name: str
    optimizer: str
    loss: list[float] = field(default_factory=list)
    lr: dict[str, list[float]] = field(default_factory=dict)
    metric: list[tuple[int, float]] = field(default_factory=list)
    steps_per_epoch: int | None = None
    wall_time: float = 0.0
    steps: int = 0

    @property
    def final_loss(self) -> float:
        """Mean train loss over the last epoch's steps."""
        tail = self.loss[-(self.steps_per_epoch or 1) :]
        return sum(tail) / len(tail) if tail else math.nan

    @property
    def steps_per_second(self) -> float:
        """Optimizer steps per second of ``trainer.fit`` (validation included)."""
        return self.steps / self.wall_time if self.wall_time > 0 else math.nan


def compare_command(
    cli_args: list[str],
    *,
    optim_files: Sequence[Path],
    out: Path = Path("compare.png"),
    metric: str = "val_acc",
    mode: str = "auto",
    timing: bool = True,
) -> list[RunResult]:
    """``lit-optim compare``: train once per ``--optim`` file, then draw and tabulate.

    Args:
        cli_args: LightningCLI arguments of the base run (``--config base.yaml``, overrides).
        optim_files: YAML files, each with a top-level ``optim:`` section.
        out: PNG path; the table goes to ``out`` with ``.md``, the series to ``.json``.
        metric: Validation metric to compare (as logged by the model).
        mode: ``max`` (higher is better), ``min``, or ``auto`` (``min`` for ``*loss*``).
        timing: Put wall time and steps/s in the table and the JSON; without them the
            files are reproducible (the runs are seeded), as the README's table is.

    Returns:
        One result per run, in the order given.

    Raises:
        ConfigError: A file has no ``optim:`` section, a section is invalid for the model
            or has several optimizers (``optim.optimizers``), or the metric is never logged.

    """
    from lit_optim.tools.resolve import note, preview_model, resolve_run

    names = [Path(f).stem for f in optim_files]
    if len(set(names)) != len(names):
        raise ConfigError("--optim", f"file names must differ (they label the runs): {names}")
    # Every section is checked before the first run trains.
    layers = [_optim_layer(Path(f)) for f in optim_files]
    configs = [_layered_config(cli_args, layer) for layer in layers]
    for config, path in zip(configs, optim_files, strict=True):
        if config.optimizers is not None:
            raise ConfigError(
                "optim.optimizers",
                f"compare trains models with one optimizer under automatic optimization (its "
                f"train loss, lr and steps/s are per step of that optimizer); {OPTIM_FLAG} "
                f"{path} gives {len(config.optimizers)} ({', '.join(config.optimizers)}): "
                "compare them with fit and LRLogger's CSV, and plot them with lit-optim plot",
            )
    higher = mode == "max" or (mode == "auto" and "loss" not in metric)

    base = resolve_run(cli_args, build=False)
    # Every section is built on the base run's plan (its data set up once) before any
    # training starts, so a bad third section fails before the first run trains. Each is
    # a pure build on the same model: what one section freezes is not frozen for the next.
    loop = loop_before_fit(base.trainer, base.datamodule)
    view = preview_model(base.model)
    for config in configs:
        build(view, config, lambda section: RunPlan.of(section, loop), trainer=base.trainer)
    seed = base.cli.config.get("seed_everything")
    if isinstance(seed, bool) or not isinstance(seed, int):
        seed = 0  # every run must start from the same initialisation
    run_args = [*cli_args, *_QUIET_TRAINER, f"--seed_everything={seed}"]

    results = []
    for i, name in enumerate(names):
        note(f"[{i + 1}/{len(names)}] {name}: training (seed {seed})")
        result = _train([*run_args, *layers[i]], name, metric)
        if not result.metric:
            raise ConfigError(
                "--metric",
                f"{metric!r} was never logged during validation of run {name!r}; give a metric "
                "the model logs with self.log (e.g. val_acc, val_loss)",
            )
        results.append(result)

    table = markdown_table(results, metric, higher, timing=timing)
    print(table)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n")
    clock = () if timing else ("wall_time", "steps")
    runs = [{k: v for k, v in asdict(r).items() if k not in clock} for r in results]
    out.with_suffix(".json").write_text(json.dumps({"metric": metric, "runs": runs}))
    try:
        draw_compare(results, out, metric)
        print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.json')}")
    except ImportError:
        note("matplotlib is not installed (pip install 'lit-optim[plot]'): no PNG, table only")
        print(f"wrote {out.with_suffix('.md')}, {out.with_suffix('.json')}")
    return results


def _optim_layer(path: Path) -> list[str]:
    """The arguments that layer ``path``'s ``optim:`` section on the base run, as ``fit`` would."""
    section = read_optim_value(path)
    quiet = [] if "summary" in section else [f"{OPTIM_FLAG}.summary=false"]  # one table per run
    return [OPTIM_FLAG, str(path), *quiet]


def _layered_config(cli_args: list[str], layer: list[str]) -> OptimConfig:
    try:
        return OptimConfig.from_dict(optim_section(with_default_config(["fit", *cli_args, *layer])))
    except ConfigError as err:
        raise ConfigError(err.key, f"{err.reason} (in {OPTIM_FLAG} {layer[1]})") from None


def markdown_table(
    results: Sequence[RunResult], metric: str, higher: bool = True, *, timing: bool = True
) -> str:
    """The comparison as a markdown table, one row per run (``timing``: with wall times)."""
    best = "max" if higher else "min"
    head = f"| run | optimizer | final train loss | {best} {metric} |"
    rule = "|---|---|---:|---:|"
    if timing:
        head, rule = head + " wall time (s) | steps/s |", rule + "---:|---:|"
    lines = [head, rule]
    for r in results:
        values = [v for _, v in r.metric]
        top = (max if higher else min)(values) if values else math.nan
        row = f"| {r.name} | {r.optimizer} | {r.final_loss:.4f} | {top:.4f} |"
        if timing:
            row += f" {r.wall_time:.1f} | {r.steps_per_second:.1f} |"
        lines.append(row)
    return "\n".join(lines)


def draw_compare(results: Sequence[RunResult], path: Path, metric: str) -> None:
    """Train loss per step, the metric per epoch and the lr per step, one colour per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(13, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_metric, ax_lr = fig.subplots(1, 3)
    lrs: list[float] = []
    for i, r in enumerate(results):
        color = COLORS[i % len(COLORS)]
        steps = list(range(len(r.loss)))
        ax_loss.plot(steps, r.loss, color=color, alpha=0.25, lw=0.8)
        ax_loss.plot(steps, _smooth(r.loss), color=color, lw=1.8, label=r.name)
        if r.metric:
            epochs = [e + 1 for e, _ in r.metric]
            ax_metric.plot(epochs, [v for _, v in r.metric], "o-", color=color, label=r.name)
        seen: list[list[float]] = []
        for values in r.lr.values():
            if values in seen:
                continue
            # Later runs thinner and dashed, so runs with the same lr stay visible.
            ax_lr.plot(
                [*range(len(values)), len(values)],
                [*values, values[-1]],
                color=color,
                ls="-" if i % 2 == 0 else (0, (4, 3)),
                lw=max(3.2 - 0.7 * i, 1.0),
                drawstyle="steps-post",
                label=r.name if not seen else None,
            )
            seen.append(values)
            lrs.extend(values)
    ax_loss.set(title="train loss (per step; bold: mean of 10)", xlabel="optimizer step")
    ax_loss.set_yscale("log")
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax_metric.set(title=f"{metric} (per epoch)", xlabel="epoch")
    ax_metric.xaxis.get_major_locator().set_params(integer=True)
    ax_lr.set(title="learning rate (per step)", xlabel="optimizer step")
    positive = [v for v in lrs if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax_lr.set_yscale("log")
        ax_lr.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    for ax in (ax_loss, ax_metric, ax_lr):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("same model, data and seed; only the optim: section differs", fontsize=10)
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------- training


class _Recorder(Callback):
    """Collect train loss and lr per optimizer step and the metric per validation."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.losses: dict[int, list[float]] = {}
        self.lr: dict[str, list[float]] = {}
        self.values: list[tuple[int, float]] = []
        self._step = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int
    ) -> None:
        self._step = trainer.global_step  # the optimizer step this batch contributes to

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None:
            self.losses.setdefault(self._step, []).append(float(loss.detach()))

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        inner = getattr(optimizer, "optimizer", optimizer)
        for j, group in enumerate(inner.param_groups):
            values = self.lr.setdefault(str(group.get("name") or f"pg{j + 1}"), [])
            # LBFGS calls this hook once per closure evaluation: keep one value per step.
            del values[trainer.global_step :]
            values.append(float(group["lr"]))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is not None:
            self.values.append((trainer.current_epoch, float(value)))


def _train(args: list[str], name: str, metric: str) -> RunResult:
    from lit_optim.tools.resolve import quiet_lightning, resolve_run

    run = resolve_run(args, build=False)  # the CLI attaches the layered section
    model, trainer, datamodule = run.model, run.trainer, run.datamodule
    recorder = _Recorder(metric)
    # No checkpoints: dropped from the built trainer rather than `enable_checkpointing=false`,
    # which Lightning refuses when the config (a run's saved config.yaml) lists one.
    trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, Checkpoint)]
    trainer.callbacks.append(recorder)
    with quiet_lightning():
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        wall = time.perf_counter() - start
    optimizer = trainer.optimizers[0]
    plan = run_plan(trainer, run.config)  # what configure_optimizers built the run on
    steps = trainer.global_step
    losses = [sum(v) / len(v) for _, v in sorted(recorder.losses.items())]
    return RunResult(
        name=name,
        optimizer=optimizer_name(optimizer),
        loss=losses,
        lr=recorder.lr,
        metric=recorder.values,
        steps_per_epoch=plan.optimizer_steps_per_epoch,
        wall_time=wall,
        steps=steps,
    )


def _smooth(values: Sequence[float], window: int = 10) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
