"""``lit-optim plot``: the lr of every param group over the whole run, without training.

The run is resolved as ``fit`` resolves it (:func:`lit_optim.tools.resolve.resolve_run`), then
the values are read from the scheduler ``fit`` would use -- nothing is re-implemented:

* a lit_optim schedule: ``ScheduleLR.lr_at(k)``, the very function ``step()`` applies;
* a torch scheduler given by ``class_path``: a copy of the built scheduler is stepped
  (``ReduceLROnPlateau`` depends on metrics only training produces: shown flat, with a note);
* which scheduler step ``k`` is in force at optimizer step ``t``, the epochs, the warmup
  and the boundaries come from the run's :class:`~lit_optim.core.plan.RunPlan`, the plan
  ``configure_optimizers`` builds the schedule on.

The x-axis is always optimizer steps (the step of ``LRLogger``'s ``lr-*`` columns), with
epoch marks; the values drawn are also written to a CSV / JSON file.
matplotlib is optional: without it (or with ``--ascii``) the chart is drawn in the terminal.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import textwrap
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lit_optim.core.errors import ConfigError
from lit_optim.core.lr_adapter import ScheduleLR
from lit_optim.core.optimizers import changed_init_args
from lit_optim.core.schedules import Schedule, build_schedule
from lit_optim.lightning.callbacks import group_keys, optimizer_key

__all__ = [
    "LRCurves",
    "ascii_chart",
    "curves_of",
    "draw_png",
    "draw_png_several",
    "lr_curves",
    "matplotlib_available",
    "merge_curves",
    "plot_command",
    "read_data",
    "several_lr_curves",
    "write_data",
]

#: Line colours, one per run / group (matplotlib's tab10).
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_ASCII_MARKS = "*o+x#@%&=~"


@dataclass
class LRCurves:
    """What ``plot`` draws: per-optimizer-step values of every param group.

    Attributes:
        steps: Optimizer steps ``0 .. T-1``.
        epochs: Epoch of each step.
        lr: ``{group: [lr at every step]}``, in optimizer group order.
        momentum: ``{group: [...]}`` of ``momentum`` / ``betas[0]`` (groups that have one).
        weight_decay: ``{group: [...]}`` (groups that have one).
        steps_per_epoch: Optimizer steps per epoch (``None`` when unknown).
        warmup_end: First optimizer step after the warmup (``0`` = no warmup).
        boundaries: Optimizer steps where a ``Sequence`` schedule switches.
        joins: ``{group: first optimizer step}`` of groups that join mid-run
            (``unfreeze_at``); their values before that step are NaN.
        keys: ``{group: lr key}`` under which ``LRLogger`` logs the group in ``fit``
            (``lr-SGD/head``; its momentum and weight decay add ``-momentum`` /
            ``-weight_decay``): the column names of the CSV.
        title: Optimizer and schedule, for the chart title.
        note: A remark to show on the chart (e.g. why a curve is flat), or ``None``.

    """

    steps: list[int]
    epochs: list[int]
    lr: dict[str, list[float]]
    momentum: dict[str, list[float]] = field(default_factory=dict)
    weight_decay: dict[str, list[float]] = field(default_factory=dict)
    steps_per_epoch: int | None = None
    warmup_end: int = 0
    boundaries: list[int] = field(default_factory=list)
    joins: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    title: str = ""
    note: str | None = None


def plot_command(
    cli_args: list[str],
    *,
    out: Path | None = None,
    data: Path | None = None,
    log: bool = False,
    ascii_only: bool = False,
    momentum: bool = False,
    weight_decay: bool = False,
) -> None:
    """``lit-optim plot``: resolve the run, write the data, draw a PNG or an ASCII chart.

    Args:
        cli_args: LightningCLI arguments (``--config x.yaml``, overrides).
        out: PNG path (default ``lr.png``; not written with ``ascii_only``).
        data: Where to write the plotted values (default: ``out`` with ``.csv``).
        log: Log-scale lr axis.
        ascii_only: Draw in the terminal only.
        momentum: Also draw momentum / ``betas[0]``.
        weight_decay: Also draw weight decay.

    """
    from lit_optim.tools.resolve import note, resolve_run

    run = resolve_run(cli_args, several=True)
    # Several optimizers (optim.optimizers): one chart per optimizer, one data file.
    named: list[tuple[str | None, LRCurves]] = (
        list(several_lr_curves(run)) if run.several is not None else [(None, lr_curves(run))]
    )
    curves = merge_curves(named) if run.several is not None else named[0][1]  # type: ignore[arg-type]
    if curves.note:
        note(curves.note)
    use_ascii = ascii_only
    if not use_ascii and not matplotlib_available():
        note("matplotlib is not installed (pip install 'lit-optim[plot]'); drawing as text")
        use_ascii = True
    if data is None and (out is not None or not use_ascii):
        data = (out or Path("lr.png")).with_suffix(".csv")
    if data is not None:
        write_data(curves, data)
    if use_ascii:
        charts = [
            (f"optimizer {name!r}\n" if name is not None else "")
            + ascii_chart(c, log=log, momentum=momentum, weight_decay=weight_decay)
            for name, c in named
        ]
        print("\n\n".join(charts))
    else:
        png = out or Path("lr.png")
        draw_png_several(named, png, log=log, momentum=momentum, weight_decay=weight_decay)
        who = f"{len(named)} optimizers, " if run.several is not None else ""
        print(f"wrote {png} ({len(curves.steps)} steps, {who}{len(curves.lr)} groups)")
    if data is not None:
        print(f"wrote {data}")


def matplotlib_available() -> bool:
    """Whether the parts of matplotlib the tools draw with can be imported."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError:
        return False
    return True


def lr_curves(run: Any) -> LRCurves:
    """Evaluate the lr (momentum, weight decay) of every group at every optimizer step.

    Everything comes from the run's plan (``run.preview.plan``: length, which scheduler
    step is in force at each optimizer step, epochs, warmup, boundaries) and from the
    scheduler ``fit`` uses; nothing is worked out again here.

    Args:
        run: A :class:`lit_optim.tools.resolve.ResolvedRun`.

    Returns:
        The curves, with epoch marks, warmup end and schedule boundaries.

    Raises:
        ConfigError: The run length cannot be known before ``fit``.

    """
    return curves_of(run.config, run.preview)


def several_lr_curves(run: Any) -> list[tuple[str, LRCurves]]:
    """:func:`lr_curves` of every optimizer of ``optim.optimizers``, with its name.

    Args:
        run: A :class:`lit_optim.tools.resolve.ResolvedRun` with ``several``.

    Returns:
        ``[(entry name, its curves)]`` in the order ``self.optimizers()`` returns them.

    """
    return [(b.name, curves_of(b.config, b)) for b in run.several]


def merge_curves(named: Sequence[tuple[str, LRCurves]]) -> LRCurves:
    """Several optimizers' curves as one, each group named ``<optimizer>/<group>``.

    The steps are each optimizer's own steps (under manual optimization every optimizer
    steps once per batch in the usual pattern); warmup and boundaries are per optimizer
    and stay in the separate curves.
    """
    first = named[0][1]
    out = LRCurves(
        steps=first.steps,
        epochs=first.epochs,
        lr={},
        steps_per_epoch=first.steps_per_epoch,
        title="\n".join(f"{n}: {c.title}" for n, c in named),
        note="; ".join(f"{n}: {c.note}" for n, c in named if c.note) or None,
    )
    seen: Counter[str] = Counter()
    for name, c in named:
        if len(c.steps) != len(first.steps):
            raise ConfigError(
                f"optim.optimizers.{name}",
                f"runs {len(c.steps)} steps and {named[0][0]!r} {len(first.steps)}; "
                "plot draws optimizers of one run length",
            )
        for target, series in (
            (out.lr, c.lr),
            (out.momentum, c.momentum),
            (out.weight_decay, c.weight_decay),
        ):
            target.update({f"{name}/{g}": v for g, v in series.items()})
        out.joins.update({f"{name}/{g}": t for g, t in c.joins.items()})
        # LRLogger's keys, as Lightning names optimizers of one class: lr-Adam, lr-Adam-1, ...
        prefix = next(iter(c.keys.values()), "").split("/")[0]
        new = prefix if not seen[prefix] else f"{prefix}-{seen[prefix]}"
        seen[prefix] += 1
        out.keys.update({f"{name}/{g}": new + k[len(prefix) :] for g, k in c.keys.items()})
    return out


def curves_of(config: Any, pv: Any) -> LRCurves:
    """:func:`lr_curves` of one optimizer: its ``optim:`` section and what was built of it.

    Args:
        config: The optimizer's :class:`~lit_optim.core.config.OptimConfig`.
        pv: Its :class:`~lit_optim.core.build.Built` (optimizer, scheduler, plan, scale).

    """
    plan = pv.plan
    if not plan.optimizer_steps:
        raise ConfigError(
            "trainer.max_steps",
            "the run length is unknown before fit (no sized training data, or max_epochs: -1); "
            "set trainer.max_steps, or trainer.max_epochs with a data module of known length",
        )
    ks = plan.scheduler_steps()
    optimizer, scheduler = pv.optimizer, pv.scheduler
    raw_names = [g.get("name") for g in optimizer.param_groups]
    if isinstance(scheduler, ScheduleLR):
        raw_names = list(scheduler.group_names)  # with the groups that join later
    names = [str(n or f"pg{i + 1}") for i, n in enumerate(raw_names)]
    table, note = _values_per_scheduler_step(optimizer, scheduler, ks[-1] + 1 if ks else 1)
    epochs = plan.epoch_of_steps()
    curves = LRCurves(
        steps=list(range(plan.optimizer_steps)),
        epochs=epochs,
        lr={},
        steps_per_epoch=plan.optimizer_steps_per_epoch,
        title=_title(optimizer, config, scheduler, plan.optimizer_steps, epochs[-1] + 1, pv.scale),
        note=note,
        # fit names the scheduler optimizer_key(optimizer), and LRLogger its groups so.
        keys=dict(zip(names, group_keys(optimizer_key(optimizer), raw_names), strict=True)),
    )
    for what, target in (
        ("lr", curves.lr),
        ("momentum", curves.momentum),
        ("weight_decay", curves.weight_decay),
    ):
        for i, name in enumerate(names):
            column = [table[k][i].get(what) for k in ks]
            joined = [v for v in column if v is not None]
            # A group that joins mid-run has no value before: NaN (not drawn).
            if joined and (len(joined) == len(column) or what == "lr" or name in curves.joins):
                target[name] = [math.nan if v is None else float(v) for v in column]
            if what == "lr" and len(joined) < len(column) and joined:
                curves.joins[name] = next(t for t, v in enumerate(column) if v is not None)
    if isinstance(scheduler, ScheduleLR):
        # Scheduler steps -> the first optimizer step at which each is in force.
        first = {}
        for t, k in enumerate(ks):
            first.setdefault(k, t)
        curves.warmup_end = first.get(plan.warmup_steps or 0, 0)
        curves.boundaries = [first[b] for b in plan.boundaries if b in first]
    return curves


def write_data(curves: LRCurves, path: Path) -> None:
    """Write the plotted values: ``.json`` as a mapping, anything else as CSV.

    CSV columns: ``step``, ``epoch``, then the keys ``LRLogger`` logs in ``fit``:
    ``lr-<Optimizer>/<group>`` for every group's lr, the same with ``-momentum`` and
    ``-weight_decay``; floats at full precision (``repr``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        payload = dataclasses.asdict(curves)
        path.write_text(json.dumps(payload))
        return
    columns = _columns(curves)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", *columns])
        series = list(columns.values())
        for i, (step, epoch) in enumerate(zip(curves.steps, curves.epochs, strict=True)):
            writer.writerow([step, epoch, *(repr(s[i]) for s in series)])


def read_data(path: Path) -> dict[str, list[float]]:
    """Read a CSV written by :func:`write_data` back as ``{column: values}``."""
    with Path(path).open() as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) for r in rows] for key in (rows[0] if rows else {})}


def draw_png(
    curves: LRCurves,
    path: Path,
    *,
    log: bool = False,
    momentum: bool = False,
    weight_decay: bool = False,
) -> None:
    """Draw the curves with matplotlib (no pyplot, no display needed) into ``path``."""
    draw_png_several([(None, curves)], path, log=log, momentum=momentum, weight_decay=weight_decay)


def draw_png_several(
    named: Sequence[tuple[str | None, LRCurves]],
    path: Path,
    *,
    log: bool = False,
    momentum: bool = False,
    weight_decay: bool = False,
) -> None:
    """Draw one optimizer's curves per row (titled by its name) into ``path``.

    Args:
        named: ``[(optimizer name or None, curves)]``, top to bottom.
        path: The PNG to write.
        log: Log-scale lr axis.
        momentum: Also draw momentum / ``betas[0]``.
        weight_decay: Also draw weight decay.

    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = 1.4 + 3.0 + 1.4 * (int(momentum) + int(weight_decay))
    fig = Figure(figsize=(10, height * len(named)), layout="constrained")
    FigureCanvasAgg(fig)
    rows = fig.subfigures(len(named), 1, squeeze=False)[:, 0] if len(named) > 1 else [fig]
    for row, (name, curves) in zip(rows, named, strict=True):
        title = curves.title if name is None else f"optimizer {name!r}: {curves.title}"
        _draw_curves(row, curves, title, log=log, momentum=momentum, weight_decay=weight_decay)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def _draw_curves(
    fig: Any, curves: LRCurves, title: str, *, log: bool, momentum: bool, weight_decay: bool
) -> None:
    """Draw one optimizer's panels into ``fig`` (a matplotlib figure or subfigure)."""
    panels: list[tuple[str, dict[str, list[float]]]] = [("learning rate", curves.lr)]
    if momentum:
        panels.append(("momentum", curves.momentum))
    if weight_decay:
        panels.append(("weight decay", curves.weight_decay))
    heights = [3.0] + [1.4] * (len(panels) - 1)
    axes = fig.subplots(len(panels), 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    # One extra point so the last step is drawn as wide as the others (steps-post).
    steps = [*curves.steps, len(curves.steps)]
    for ax, (label, series) in zip(axes, panels, strict=True):
        lines = _distinct(series)
        for i, (names, values) in enumerate(lines):
            ax.plot(
                steps,
                [*values, values[-1]],
                color=COLORS[i % len(COLORS)],
                lw=1.8,
                drawstyle="steps-post",
                label=_legend(names, values, label, len(series)),
            )
        if not lines:
            ax.text(0.5, 0.5, f"no {label} option", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")  # fmt: skip
        elif all(min(v) == max(v) for _, v in lines) and label != "learning rate":
            ax.text(0.99, 0.05, "constant", ha="right", va="bottom",
                    transform=ax.transAxes, color="0.4")  # fmt: skip
        ax.set_ylabel(label)
        if log and label == "learning rate":
            ax.set_yscale("log")
        _mark_epochs(ax, curves)
        if curves.warmup_end and label == "learning rate":
            ax.axvspan(0, curves.warmup_end, color="0.85", alpha=0.6, lw=0,
                       label=f"warmup ({curves.warmup_end} steps)")  # fmt: skip
        for b in curves.boundaries if label == "learning rate" else ():
            ax.axvline(b, color="0.3", ls="--", lw=1)
        for name, t in curves.joins.items() if label == "learning rate" else ():
            ax.axvline(t, color="0.45", ls="-.", lw=1)
            ax.annotate(f"{name} joins", (t, 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", fontsize=8,
                        color="0.3")  # fmt: skip
        ax.grid(True, axis="y", alpha=0.3)
        if lines:
            ax.legend(loc="best", fontsize=8, framealpha=0.9)
    fig.suptitle(_wrap(title), fontsize=10)
    if curves.note:
        axes[0].text(0.5, 0.8, curves.note, ha="center", va="center", wrap=True,
                     transform=axes[0].transAxes, fontsize=9,
                     bbox={"facecolor": "lightyellow", "edgecolor": "0.6"})  # fmt: skip
    axes[-1].set_xlabel("optimizer step")
    axes[-1].set_xlim(0, len(curves.steps))
    if curves.steps_per_epoch:
        per = curves.steps_per_epoch
        top = axes[0].secondary_xaxis("top", functions=(lambda s: s / per, lambda e: e * per))
        top.set_xlabel("epoch")
        top.xaxis.get_major_locator().set_params(integer=True)


def ascii_chart(
    curves: LRCurves,
    *,
    log: bool = False,
    momentum: bool = False,
    weight_decay: bool = False,
    width: int = 72,
    height: int = 14,
) -> str:
    """The curves as text: one mark per group, epoch ticks under the x-axis.

    Example:
        >>> c = LRCurves(steps=list(range(8)), epochs=[0] * 4 + [1] * 4, steps_per_epoch=4,
        ...              lr={"a": [1 - t / 8 for t in range(8)], "b": [0.5] * 8})
        >>> print(ascii_chart(c, width=8, height=4))
        learning rate
              1 |**
                |  **
                |oooooooo
          0.125 |      **
                +-------+
                 0      7  optimizer step (| = epoch)
                 |   |
          * a  (1 -> 0.125)
          o b  (0.5 -> 0.5)

    """
    blocks = [_ascii_panel("learning rate", curves.lr, curves, log, width, height)]
    if momentum:
        blocks.append(_ascii_panel("momentum", curves.momentum, curves, False, width, 5))
    if weight_decay:
        blocks.append(_ascii_panel("weight decay", curves.weight_decay, curves, False, width, 5))
    head = [curves.title] if curves.title else []
    if curves.note:
        head.append(f"note: {curves.note}")
    return "\n".join([*head, *blocks])


# --------------------------------------------------------------------------- helpers


def _values_per_scheduler_step(
    optimizer: torch.optim.Optimizer, scheduler: Any, count: int
) -> tuple[list[list[dict[str, float | None]]], str | None]:
    """``table[k][group]`` = lr / momentum / weight_decay once the scheduler stepped k times."""
    base = [_group_values(g) for g in optimizer.param_groups]
    if scheduler is None:
        return [base] * count, None
    if isinstance(scheduler, ScheduleLR):
        return [scheduler.values_at(k) for k in range(count)], None
    if isinstance(scheduler, ReduceLROnPlateau):
        note = (
            "ReduceLROnPlateau lowers the lr when the monitored metric stops improving, "
            "which only training can tell: shown is the starting lr"
        )
        return [base] * count, note
    # A torch scheduler: step a copy (parameters shared, not copied) as fit steps it.
    memo = {id(p): p for g in optimizer.param_groups for p in g["params"]}
    sched = copy.deepcopy(scheduler, memo)
    table = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for k in range(count):
            table.append([_group_values(g) for g in sched.optimizer.param_groups])
            if k + 1 < count:
                sched.step()
    return table, None


def _group_values(group: Mapping[str, Any]) -> dict[str, float | None]:
    mom = group.get("momentum")
    if mom is None and "betas" in group:
        mom = group["betas"][0]
    wd = group.get("weight_decay")
    return {
        "lr": _float(group["lr"]),
        "momentum": None if mom is None else _float(mom),
        "weight_decay": None if wd is None else _float(wd),
    }


def _float(value: Any) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def _title(
    optimizer: torch.optim.Optimizer,
    config: Any,
    scheduler: Any,
    steps: int,
    epochs: int,
    scale: Any = None,
) -> str:
    name = getattr(optimizer, "lit_optim_name", type(optimizer).__name__)
    opt = f"{name}({_kwargs(changed_init_args(config.optimizer))})"
    if scheduler is None:
        sched = "constant lr"
    elif isinstance(scheduler, ScheduleLR):
        main = build_schedule(config.schedule, "optim.schedule") if config.schedule else None
        sched = _describe(main) if main is not None else "Constant"
        if any(r.schedule is not None for r in config.groups):
            sched += " (per-group schedules)"
        if config.warmup is not None:
            w = config.warmup
            length = (
                f"{w.steps} steps"
                if w.steps is not None
                else (f"{w.epochs} epochs" if w.epochs is not None else f"{w.fraction:.0%}")
            )
            sched = f"{w.mode} warmup {length} + {sched}"
    else:
        spec = config.schedule
        init = dict(spec.get("init_args") or {}) if isinstance(spec, Mapping) else {}
        sched = f"{type(scheduler).__name__}({_kwargs(init)})"
    every = "" if config.frequency == 1 else f" every {config.frequency}"
    if scale is not None:
        sched += f"\n{scale.describe()}"
    return (
        f"{opt}\n{sched}, stepped per {config.interval}{every}  ·  "
        f"{steps} optimizer steps, {epochs} epochs"
    )


def _describe(schedule: Schedule) -> str:
    if not dataclasses.is_dataclass(schedule):
        return type(schedule).__name__
    shown = {}
    for f in dataclasses.fields(schedule):
        if f.name.startswith("_") or not f.repr:  # compiled caches, not arguments
            continue
        value = getattr(schedule, f.name)
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
        if value != default:
            shown[f.name] = _Raw(_describe(value)) if isinstance(value, Schedule) else value
            if isinstance(value, list | tuple) and any(isinstance(v, Schedule) for v in value):
                shown[f.name] = [_Raw(_describe(v)) for v in value]
    return f"{type(schedule).__name__}({_kwargs(shown)})"


class _Raw(str):
    """Text shown as is in a title (a nested schedule), not quoted."""


def _wrap(title: str, width: int = 120) -> str:
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def _kwargs(args: Mapping[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, list | tuple):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return repr(v) if isinstance(v, str) and not isinstance(v, _Raw) else str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in args.items())


def _columns(curves: LRCurves) -> dict[str, list[float]]:
    """``{LRLogger key: values}`` of every curve, lrs first."""
    return (
        {curves.keys[n]: v for n, v in curves.lr.items()}
        | {f"{curves.keys[n]}-momentum": v for n, v in curves.momentum.items()}
        | {f"{curves.keys[n]}-weight_decay": v for n, v in curves.weight_decay.items()}
    )


def _distinct(series: Mapping[str, list[float]]) -> list[tuple[list[str], list[float]]]:
    """Groups with identical curves share one line (their names joined in the legend)."""
    out: list[tuple[list[str], list[float]]] = []
    for name, values in series.items():
        for names, seen in out:
            if seen == values:
                names.append(name)
                break
        else:
            out.append(([name], values))
    return out


def _legend(names: Sequence[str], values: Sequence[float], label: str, of: int) -> str:
    if len(names) <= 3:
        shown = ", ".join(names)
    else:
        shown = f"all {of} groups" if len(names) == of else f"{names[0]} (+{len(names) - 1})"
    if label != "learning rate":
        return shown
    return f"{shown}  (peak {max(v for v in values if not math.isnan(v)):.3g})"


def _mark_epochs(ax: Any, curves: LRCurves) -> None:
    per = curves.steps_per_epoch
    if not per:
        return
    epochs = len(curves.steps) / per
    every = max(1, math.ceil(epochs / 40))  # at most ~40 marks
    for e in range(every, math.ceil(epochs), every):
        ax.axvline(e * per, color="0.75", lw=0.6, ls=":", zorder=0)


def _ascii_panel(
    label: str,
    series: Mapping[str, list[float]],
    curves: LRCurves,
    log: bool,
    width: int,
    height: int,
) -> str:
    lines = _distinct(series)
    if not lines:
        return f"{label}: (no such option)"
    n = len(curves.steps)
    width = max(2, min(width, n))
    # Column c shows the step at its left edge (what a step-function plot shows).
    cols = [min(n - 1, (c * (n - 1)) // (width - 1)) for c in range(width)]

    def scale(v: float) -> float:
        return math.log10(v) if log else v

    values = [scale(v) for _, s in lines for v in s if not (math.isnan(v) or (log and v <= 0))]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0
    grid = [[" "] * width for _ in range(height)]
    for i, (_, s) in enumerate(lines):
        mark = _ASCII_MARKS[i % len(_ASCII_MARKS)]
        for c, t in enumerate(cols):
            v = s[t]
            if math.isnan(v) or (log and v <= 0):
                continue
            row = height - 1 - round((scale(v) - lo) / span * (height - 1))
            grid[row][c] = mark

    def fmt(v: float) -> str:
        return f"{(10**v if log else v):.3g}"

    top, bottom = fmt(hi), fmt(lo)
    pad = max(len(top), len(bottom))
    out = [label + (" (log scale)" if log else "")]
    for r, row in enumerate(grid):
        tick = top if r == 0 else (bottom if r == height - 1 else "")
        out.append(f"{tick:>{pad + 2}} |{''.join(row)}".rstrip())
    out.append(" " * (pad + 3) + "+" + "-" * (width - 1) + "+")
    last = str(n - 1)
    out.append(" " * (pad + 4) + "0" + last.rjust(width - 1) + "  optimizer step (| = epoch)")
    per = curves.steps_per_epoch
    if per:
        marks = [" "] * width
        for c, t in enumerate(cols):
            if t % per == 0 or (c and cols[c - 1] // per != t // per):
                marks[c] = "|"
        out.append(" " * (pad + 4) + "".join(marks).rstrip())
    for i, (names, s) in enumerate(lines):
        mark = _ASCII_MARKS[i % len(_ASCII_MARKS)]
        start = next((t for t, v in enumerate(s) if not math.isnan(v)), 0)
        since = f" from step {start}" if start else ""
        out.append(f"  {mark} {', '.join(names)}  ({s[start]:.3g} -> {s[-1]:.3g}{since})")
    return "\n".join(out)
