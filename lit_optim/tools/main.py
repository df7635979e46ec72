"""The ``lit-optim`` console entry: trainer commands, the tools, and ``schedules``.

``lit-optim fit --config x.yaml`` trains; plain ``lit-optim fit`` trains the embedded
digits demo. The tools look at a run before (or instead of) training it: each resolves
the run exactly as ``fit`` would (:mod:`lit_optim.tools.resolve`). Arguments a tool does
not know (``--config``, ``--trainer.max_epochs 3``, ``--optim.schedule Cosine``, ...) are
passed to the LightningCLI parser unchanged.

A bad config prints one ``error: <key path>: <what is wrong>`` line and exits 2. What
needs no model is checked before Lightning is imported (:mod:`lit_optim.tools.precheck`),
so that line comes in about the time of ``import torch``.
"""

from __future__ import annotations

import argparse
import os
import sys
from argparse import ArgumentError
from pathlib import Path

from lit_optim.core.errors import ConfigError
from lit_optim.lightning.commands import TOOL_COMMANDS, with_default_config
from lit_optim.tools.precheck import precheck

# Lightning is imported only past the fast path (precheck): a refused config exits 2 in
# about the time of `import torch` instead of waiting seconds for Lightning.

__all__ = ["main", "run_tool"]

TOOLS = TOOL_COMMANDS


def run_tool(name: str, args: list[str]) -> None:
    """Run the tool ``name`` (``plot``, ``groups``, ``compare``, ``lr-find``, ``schedules``).

    Raises:
        ConfigError: Bad config or arguments (the CLI prints it and exits 2).

    """
    if name == "plot":
        opts, rest = _plot_parser().parse_known_args(args)
        from lit_optim.tools.plot import plot_command

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
        from lit_optim.tools.compare import compare_command

        compare_command(
            rest,
            optim_files=opts.optim,
            out=opts.output,
            metric=opts.metric,
            mode=opts.mode,
            timing=opts.timing,
        )
    elif name == "schedules":
        opts = _schedules_parser().parse_args(args)
        from lit_optim.tools.schedules_ref import schedules_command

        schedules_command(markdown=opts.markdown)
    elif name == "lr-find":
        opts, rest = _lr_find_parser().parse_known_args(args)
        from lit_optim.tools.lr_find import lr_find_command

        lr_find_command(
            rest,
            out=opts.output,
            start=opts.start,
            end=opts.end,
            steps=opts.steps,
            diverge=opts.diverge,
        )
    else:
        raise ConfigError("command", f"unknown tool {name!r} (valid: {', '.join(TOOLS)})")


def groups_command(cli_args: list[str], *, params: bool = False) -> None:
    """``lit-optim groups``: print the param-group table (and every parameter with --params).

    With several optimizers (``optim.optimizers``) one table per optimizer, each headed by
    the entry's name and its place in ``self.optimizers()``.
    """
    from rich.console import Console

    from lit_optim.lightning.table import group_table, param_table, render
    from lit_optim.tools.resolve import resolve_run

    run = resolve_run(cli_args, several=True)
    if run.several is not None:
        built = [(f"optimizer {b.name!r}: self.optimizers()[{i}]", b)
                 for i, b in enumerate(run.several)]  # fmt: skip
    else:
        built = [(None, run.preview)]
    console = Console()
    for i, (heading, b) in enumerate(built):
        groups, optimizer = b.groups, b.optimizer
        tables = [group_table(groups, optimizer)]
        if params:
            tables.append(param_table(groups))
        if heading is not None:
            print(("\n" if i else "") + heading)
        for table in tables:
            if console.is_terminal:
                console.print(table)
            else:  # piped: plain text, no ANSI codes, wide enough that no column wraps
                print(render(table))
        if b.scale is not None:
            print(b.scale.describe())


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


def _schedules_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lit-optim schedules",
        description="List every registered schedule with its arguments, defaults and the "
        "names torch, timm and Hugging Face give them (read from the code).",
        allow_abbrev=False,
    )
    p.add_argument("--markdown", action="store_true", help="print docs/schedules.md")
    return p


def _lr_find_parser() -> argparse.ArgumentParser:
    p = _parser(
        "lr-find",
        "lr range test that keeps the ratios between param groups: a copy of the model "
        "trains with every group's configured lr times one factor, swept exponentially; "
        "draws loss against the base lr and prints the suggested lr (steepest descent). "
        "Nothing is written but the PNG: no logs, no checkpoints, the model untouched.",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("lr_find.png"), help="PNG to write")
    p.add_argument("--start", type=float, default=1e-3, help="first factor (1e-3)")
    p.add_argument("--end", type=float, default=1e2, help="last factor (100)")
    p.add_argument("--steps", type=int, default=100, help="optimizer steps at most (100)")
    p.add_argument(
        "--diverge",
        type=float,
        default=4.0,
        help="stop once the smoothed loss exceeds this many times its best (4)",
    )
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = _parser(
        "compare",
        "Train the same model on the same data with the same seed once per --optim file "
        "(each holds an optim: section, layered on the base config's like fit --optim FILE), "
        "then draw train loss, validation metric and lr of every run in one PNG with a "
        "markdown table.",
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
    p.add_argument(
        "--no-timing",
        dest="timing",
        action="store_false",
        help="leave wall time and steps/s out of the table and the JSON, so that the files "
        "are the same on every machine and run (losses and metrics are seeded)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lit-optim`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    saved_argv = sys.argv
    # Like `python -m lit_optim`: modules of the working directory (a project's own model,
    # `examples.plain_model`) are importable by class_path. Appended, so nothing installed
    # is shadowed by a local directory of the same name.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        precheck(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if args and args[0] == "schedules":  # reads the code only: no Lightning needed
        run_tool(args[0], args[1:])
        return
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    from lit_optim.lightning.messages import bad_config_message

    try:
        if args and args[0] in TOOLS:
            run_tool(args[0], args[1:])
            return
        from lit_optim.lightning.cli import LitOptimCLI

        # LightningCLI reads sys.argv itself (and warns when given both); hand it ours.
        sys.argv = [saved_argv[0] if saved_argv else "lit-optim", *with_default_config(args)]
        LitOptimCLI()
    except (ConfigError, ArgumentError, ValueError, TypeError, MisconfigurationException) as err:
        message = bad_config_message(err)
        if message is None:
            raise
        # Every rank of a multi-process run meets a check that runs in configure_optimizers;
        # one line says it (rank 0), every rank exits with it.
        if _is_rank_zero():
            print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    finally:
        sys.argv = saved_argv


def _is_rank_zero() -> bool:
    # Lightning's launchers give each process it starts its ranks in the environment.
    return all(os.environ.get(v, "0") == "0" for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))
