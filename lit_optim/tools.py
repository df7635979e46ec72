"""``lit-optim plot | groups | compare``: look at a run before (or instead of) training it.

Every tool resolves the run exactly as ``lit-optim fit`` would -- the same config files,
command-line overrides, data module, trainer settings, accumulation and devices -- through
:func:`resolve_run`, then reads the optimizer, groups and scheduler that
:func:`lit_optim.run.preview` built. Nothing is trained (except by ``compare``) and nothing
is written under the trainer's log directory.

Arguments a tool does not know (``--config``, ``--trainer.max_epochs 3``,
``--optim.schedule Cosine``, ...) are passed to the LightningCLI parser unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from lit_optim.cli import LitOptimCLI, with_default_config
from lit_optim.config import OptimConfig
from lit_optim.errors import ConfigError
from lit_optim.run import Preview, preview

__all__ = ["ResolvedRun", "resolve_run", "run_tool"]

TOOLS = ("plot", "groups", "compare")


def run_tool(name: str, args: list[str]) -> None:
    """Run the tool ``name`` (``plot``, ``groups`` or ``compare``) with its arguments.

    Raises:
        ConfigError: Bad config or arguments (the CLI prints it and exits 2).

    """
    if name == "plot":
        opts, rest = _plot_parser().parse_known_args(args)
        from lit_optim.plot import plot_command

        plot_command(
            rest,
            out=opts.output,
            data=opts.data,
            log=opts.log,
            ascii_only=opts.ascii,
            momentum=opts.momentum,
            weight_decay=opts.weight_decay,
        )
    elif name == "groups":
        opts, rest = _groups_parser().parse_known_args(args)
        groups_command(rest, params=opts.params)
    elif name == "compare":
        opts, rest = _compare_parser().parse_known_args(args)
        from lit_optim.compare import compare_command

        compare_command(
            rest, optim_files=opts.optim, out=opts.output, metric=opts.metric, mode=opts.mode
        )
    else:
        raise ConfigError("command", f"unknown tool {name!r} (valid: {', '.join(TOOLS)})")


@dataclass
class ResolvedRun:
    """A run resolved as ``fit`` would resolve it, with nothing trained.

    Attributes:
        cli: The LightningCLI (``run=False``) that parsed the config.
        model: The instantiated model.
        datamodule: The instantiated data module (``None`` when the config has none).
        trainer: The instantiated trainer (no fit started).
        config: The effective ``optim:`` section (the CLI's, else the model's own;
            ``None`` only when not built and there is none).
        preview: Optimizer, groups and scheduler built as ``configure_optimizers`` will.

    """

    cli: LitOptimCLI
    model: pl.LightningModule
    datamodule: Any
    trainer: pl.Trainer
    config: OptimConfig
    preview: Preview


def resolve_run(cli_args: list[str], *, build: bool = True) -> ResolvedRun:
    """Instantiate model, data and trainer from LightningCLI arguments and preview the run.

    Args:
        cli_args: What would follow ``lit-optim fit`` (``--config x.yaml``, overrides);
            without ``--config`` / ``--model`` the embedded digits demo is used.
        build: Also build optimizer and scheduler (``False`` only parses and instantiates;
            ``preview`` is then ``None``).

    Returns:
        The resolved run.

    Raises:
        ConfigError: The config has no ``optim:`` section and the model no own config,
            or the section is invalid for this model and run.

    """
    args = with_default_config(["fit", *cli_args])[1:]
    argv, sys.argv = sys.argv, sys.argv[:1]  # `args` stands for the whole command line
    try:
        with quiet_lightning():
            # No SaveConfigCallback: a tool writes nothing into the run's log directory.
            cli = LitOptimCLI(args=args, run=False, save_config_callback=None)
    finally:
        sys.argv = argv
    model, trainer, datamodule = cli.model, cli.trainer, cli.datamodule
    config = cli.optim_config
    if config is None and build:
        raise ConfigError(
            "optim",
            f"no optim: section in the config and {type(model).__name__} has no optim config "
            "of its own; add a top-level optim: section (see configs/digits_poly.yaml)",
        )
    run = preview(model, config, trainer, datamodule) if build else None
    return ResolvedRun(cli, model, datamodule, trainer, config, run)  # type: ignore[arg-type]


def groups_command(cli_args: list[str], *, params: bool = False) -> None:
    """``lit-optim groups``: print the param-group table (and every parameter with --params)."""
    from rich.console import Console

    from lit_optim.table import group_table, param_table, render

    run = resolve_run(cli_args)
    tables = [group_table(run.preview.groups, run.preview.optimizer)]
    if params:
        tables.append(param_table(run.preview.groups))
    console = Console()
    for table in tables:
        if console.is_terminal:
            console.print(table)
        else:  # piped: plain text, no ANSI codes, wide enough that no column wraps
            print(render(table))


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's info lines (seed, accelerator, tips) while a tool sets up."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"lit-optim {name}",
        description=description,
        epilog="Other arguments (--config x.yaml, --trainer.max_epochs 3, ...) are read as "
        "`lit-optim fit` reads them; without --config the embedded digits demo is used.",
        allow_abbrev=False,
    )


def _plot_parser() -> argparse.ArgumentParser:
    p = _parser(
        "plot",
        "Draw the lr of every param group over the whole run, without training: the run is "
        "resolved as fit resolves it and the scheduler's own functions are evaluated.",
    )
    p.add_argument("-o", "--output", type=Path, default=None, help="PNG to write (lr.png)")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="where to write the plotted values (.csv or .json; default: next to the PNG)",
    )
    p.add_argument("--log", action="store_true", help="log-scale lr axis")
    p.add_argument("--ascii", action="store_true", help="draw in the terminal instead")
    p.add_argument("--momentum", action="store_true", help="also plot momentum / betas[0]")
    p.add_argument("--weight-decay", action="store_true", help="also plot weight decay")
    return p


def _groups_parser() -> argparse.ArgumentParser:
    p = _parser(
        "groups",
        "Print the param groups fit will build: name, rule, tensors, parameters, lr, weight "
        "decay, other options, totals, and frozen parameters apart.",
    )
    p.add_argument("--params", action="store_true", help="also list every parameter with its group")
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = _parser(
        "compare",
        "Train the same model on the same data with the same seed once per --optim file "
        "(each holds an optim: section that replaces the base config's), then draw train "
        "loss, validation metric and lr of every run in one PNG with a markdown table.",
    )
    p.add_argument(
        "--optim",
        action="append",
        type=Path,
        required=True,
        help="YAML file with a top-level optim: section (repeat once per run)",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("compare.png"), help="PNG to write")
    p.add_argument("--metric", default="val_acc", help="validation metric to compare (val_acc)")
    p.add_argument(
        "--mode",
        choices=("auto", "max", "min"),
        default="auto",
        help="whether higher metric is better (auto: min for *loss*, else max)",
    )
    return p


def note(message: str) -> None:
    """Print a tool's side remark to stderr (stdout stays the tool's output)."""
    print(f"lit-optim: {message}", file=sys.stderr)
