"""Resolve a run exactly as ``lit-optim fit`` would, for the tools (nothing is trained).

The same config files, command-line overrides, data module, trainer settings,
accumulation and devices as ``fit``; then the optimizer, groups and scheduler that
:func:`lit_optim.core.build.build` built on the model as ``fit`` will see it (its
``configure_model`` layers made on the meta device). Nothing is written under the trainer's log
directory.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch

from lit_optim.core.build import Built
from lit_optim.core.build import build as build_all
from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.lr_scaling import find_batch_scale
from lit_optim.core.plan import RunPlan
from lit_optim.lightning.cli import LitOptimCLI, with_default_config
from lit_optim.lightning.lifecycle import model_as_fit_sees_it
from lit_optim.lightning.loop import loop_before_fit

__all__ = ["ResolvedRun", "note", "quiet_lightning", "resolve_run"]


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
        preview: Optimizer, groups and scheduler built as ``configure_optimizers`` will,
            with the run plan they were built on (``preview.plan``); ``None`` when the
            section has several optimizers.
        several: With ``optim.optimizers``: every entry built as ``configure_optimizers``
            will, in the order ``self.optimizers()`` returns them (else ``None``).

    """

    cli: LitOptimCLI
    model: pl.LightningModule
    datamodule: Any
    trainer: pl.Trainer
    config: OptimConfig
    preview: Built
    several: list[Built] | None = None


def resolve_run(cli_args: list[str], *, build: bool = True, several: bool = False) -> ResolvedRun:
    """Instantiate model, data and trainer from LightningCLI arguments and preview the run.

    Args:
        cli_args: What would follow ``lit-optim fit`` (``--config x.yaml``, overrides);
            without ``--config`` / ``--model`` the embedded digits demo is used.
        build: Also build optimizer and scheduler (``False`` only parses and instantiates;
            ``preview`` is then ``None``).
        several: The tool shows several optimizers (``optim.optimizers``, built into
            ``ResolvedRun.several``); ``False``: it takes one and refuses them.

    Returns:
        The resolved run.

    Raises:
        ConfigError: The config has no ``optim:`` section and the model no own config,
            or the section is invalid for this model and run, or it has several
            optimizers and the tool does not show them.

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
    # The data module is set up here, once; everything the tool shows reads this plan.
    run, entries = None, None
    if build and config.optimizers is not None and not several:
        raise ConfigError(
            "optim.optimizers",
            f"this tool works on one optimizer, the section has {len(config.optimizers)} "
            f"({', '.join(config.optimizers)}); plot and groups show several optimizers, or "
            "give this tool a config with one optimizer (optim.optimizer)",
        )
    if build:
        view = preview_model(model)
        loop = loop_before_fit(trainer, datamodule)
        scale = None
        if config.optimizers is None and config.lr_scaling is not None:
            scale = find_batch_scale(config.lr_scaling, trainer, datamodule)
        built = build_all(
            view, config, lambda section: RunPlan.of(section, loop), scale=scale, trainer=trainer
        )
        if config.optimizers is not None:
            entries = built
        else:
            run = built[0]
    return ResolvedRun(cli, model, datamodule, trainer, config, run, entries)  # type: ignore[arg-type]


def preview_model(model: pl.LightningModule) -> torch.nn.Module:
    """The model as ``fit`` will see it, for a tool; refused when only ``fit`` can make it.

    Raises:
        ConfigError: ``configure_model`` needs the strategy's setup (a device mesh).

    """
    view, why = model_as_fit_sees_it(model)
    if view is None:
        raise ConfigError(
            "model",
            f"{why}; this tool cannot build its layers ahead of fit. Preview it with a "
            "configure_model that also works on one device (e.g. skip fully_shard when "
            "self.device_mesh is None)",
        )
    return view


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


def note(message: str) -> None:
    """Print a tool's side remark to stderr (stdout stays the tool's output)."""
    print(f"lit-optim: {message}", file=sys.stderr)
