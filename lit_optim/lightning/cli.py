"""``lit-optim``: LightningCLI with a top-level ``optim:`` section, plus tool subcommands.

``lit-optim fit --config x.yaml`` trains; plain ``lit-optim fit`` trains the embedded
digits demo (``lit_optim/configs/digits_poly.yaml``). ``plot``, ``groups`` and
``compare`` are tools that resolve a run exactly as ``fit`` would.

A bad config prints one ``error: <key path>: <what is wrong>`` line and exits 2.
"""

from __future__ import annotations

import sys
from argparse import RawDescriptionHelpFormatter
from collections.abc import Mapping
from pathlib import Path
from types import MethodType
from typing import Any, Optional

import lightning.pytorch as pl
from jsonargparse import DefaultHelpFormatter, Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

from lit_optim.core.build import build
from lit_optim.core.config import OptimConfig, rekey
from lit_optim.core.errors import ConfigError
from lit_optim.core.lr_scaling import find_batch_scale
from lit_optim.core.plan import RunPlan, TrainLoop
from lit_optim.core.scheduler import is_torch_scheduler
from lit_optim.core.validate import validate_section
from lit_optim.lightning.callbacks import PlateauResumeFix
from lit_optim.lightning.commands import (  # noqa: F401  (re-exported: tools import them here)
    DEFAULT_CONFIG,
    TOOL_COMMANDS,
    TRAINER_COMMANDS,
    with_default_config,
)
from lit_optim.lightning.finetuning import check_lr_callbacks
from lit_optim.lightning.lifecycle import model_as_fit_sees_it
from lit_optim.lightning.loop import loop_before_fit
from lit_optim.lightning.messages import bad_config_message
from lit_optim.lightning.mixin import OptimMixin, configure_optimizers, find_config
from lit_optim.lightning.modes import add_modes_callback
from lit_optim.lightning.optim_args import OPTIM_FLAG, layer_optim_args, optim_section
from lit_optim.lightning.optim_help import OPTIM_HELP_TITLE, optim_keys_help
from lit_optim.lightning.output import RunLocations, drop_version_number, quiet_warnings
from lit_optim.lightning.resume import (
    check_resume,
    continue_version,
    last_checkpoint,
    read_checkpoint,
)
from lit_optim.lightning.several import check_manual_optimization
from lit_optim.lightning.startup import StartupOutput
from lit_optim.lightning.types import OptimSection
from lit_optim.lightning.warm_start import WEIGHTS_FLAG, load_weights

DESCRIPTION = """Lightning's trainer commands with a top-level optim: section.

tools (each resolves the run as fit would, without training; see `lit-optim <tool> -h`):
  plot      draw the lr of every param group over the whole run
  groups    table of param groups: rule, tensors, parameters, lr, weight decay
  compare   train once per --optim file and compare loss, metric and lr
  lr-find   lr range test keeping the ratios between groups; suggests an lr
  schedules every schedule with its arguments and defaults (read from the code)"""


class _HelpFormatter(DefaultHelpFormatter, RawDescriptionHelpFormatter):
    """jsonargparse's help, keeping the line breaks of the description."""


class LitOptimCLI(LightningCLI):
    """LightningCLI whose ``optim:`` section configures any LightningModule.

    The section works for models that use :class:`OptimMixin` and for models that do
    not (their ``configure_optimizers`` is replaced, with a one-line warning). Use it as
    the base of your own script like LightningCLI: ``LitOptimCLI(MyModel, MyData)`` takes
    those classes themselves (``--model.hidden 64``); ``LitOptimCLI()`` (the ``lit-optim``
    command) takes any model and data module by ``class_path``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Classes given (positionally, as LightningCLI takes them, or by keyword) mean those
        # classes, as in LightningCLI; none given means any class by class_path.
        model_class = args[0] if args else kwargs.get("model_class")
        data_class = args[1] if len(args) > 1 else kwargs.get("datamodule_class")
        kwargs.setdefault("subclass_mode_model", model_class is None)
        kwargs.setdefault("subclass_mode_data", data_class is None)
        kwargs.setdefault("auto_configure_optimizers", False)
        # Parse errors raise (main() prints them as one line) instead of printing the
        # whole usage text, which buries the one line that says what is wrong.
        kwargs["parser_kwargs"] = {
            "exit_on_error": False,
            "description": DESCRIPTION,
            "formatter_class": _HelpFormatter,
            # the optim: keys in `fit --help` keep their line breaks
            **{c: {"formatter_class": _HelpFormatter} for c in TRAINER_COMMANDS},
            **(kwargs.get("parser_kwargs") or {}),
        }
        # Lightning's banner, seed line and tips wait until the config has passed, so a
        # refused config prints its error line first (see lightning/startup.py).
        quiet_warnings()
        self._startup = StartupOutput()
        self._startup.hold()
        try:
            super().__init__(*args, **kwargs)
        except BaseException as err:
            if bad_config_message(err) is None:
                self._startup.release()
            else:
                self._startup.drop()
            raise
        self._startup.release()

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        """Lightning's parser; without subcommands (the tools) it also reads ``fit``'s arguments.

        A run's saved ``config.yaml`` and ``--print_config`` output hold ``ckpt_path`` and
        the other arguments of ``Trainer.fit``; the tools accept them (and ignore them).
        """
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if not add_subcommands:
            trainer_class = (
                self.trainer_class if isinstance(self.trainer_class, type) else pl.Trainer
            )
            self.parser.add_method_arguments(
                trainer_class, "fit", skip=set(self.subcommands()["fit"])
            )

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Add the top-level ``optim:`` section, as one opaque value (see ``optim_args``)."""
        parser.add_argument(
            OPTIM_FLAG,
            type=Optional[OptimSection],  # noqa: UP045  (jsonargparse reads the typing form)
            default=None,
            help="Optimizer, param groups and schedule (its keys: 'the optim: section' at the "
            "end of this help). "
            "Layered like configs: --optim '{...}' or --optim FILE merges a section, "
            "--optim.KEY VALUE sets one value (--optim.warmup.steps 10).",
        )
        parser.add_argument_group(OPTIM_HELP_TITLE, description=optim_keys_help())
        parser.add_argument(
            WEIGHTS_FLAG,
            type=Optional[str],  # noqa: UP045
            default=None,
            help="Start a new run from this checkpoint's model weights, with a fresh "
            "optimizer and schedule (training longer, fine-tuning). --ckpt_path resumes "
            "the same run instead.",
        )

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Parse, with the ``optim:`` section layered by us and validated before anything runs.

        jsonargparse sees the section as one opaque value: its layers (configs, ``--optim``,
        ``--optim.KEY``) are merged by :func:`layer_optim_args`, and the one validator,
        :meth:`OptimConfig.from_dict`, checks it right here, before the seed is set or
        any model, trainer or logger is built.
        """
        if isinstance(args, dict | Namespace):
            self.config = parser.parse_object(args)
        else:
            args = sys.argv[1:] if args is None else list(args)
            if any(a.partition("=")[0] == "--print_config" for a in args):
                # jsonargparse prints and exits inside parse_args: check the section first,
                # so --print_config refuses what fit would refuse.
                section = optim_section(args)
                if section is not None:
                    validate_section(section)
            args, _ = layer_optim_args(args)
            self.config = parser.parse_args(args)
        section = self._config_section_raw(self.config).get("optim")
        #: The validated top-level section (``None``: none was given, whatever its values).
        self.cli_optim: OptimConfig | None = None
        if section is not None:
            self.cli_optim = validate_section(section)

    def _config_section_raw(self, config: Any) -> Any:
        subcommand = config.get("subcommand")
        return config[subcommand] if subcommand else config

    def instantiate_classes(self) -> None:
        """Instantiate as Lightning does, then attach the ``optim:`` section to the model."""
        super().instantiate_classes()
        drop_version_number(self.trainer)
        if self.subcommand == "fit":  # not for the tools, which train without keeping logs
            self.trainer.callbacks.append(RunLocations())  # type: ignore[attr-defined]
        section = self._config_section_raw(self.config)
        if section.get("weights_from") is not None:
            load_weights(self.model, section["weights_from"])
        config = self.cli_optim
        if config is not None:
            attach_config(self.model, config)
        elif isinstance(self.model, OptimMixin):
            config = find_config(self.model)
            if config is None:
                config = OptimConfig()  # the documented defaults (AdamW)
                attach_config(self.model, config)
        if config is not None and _is_plateau(config.schedule):
            self.trainer.callbacks.append(PlateauResumeFix())
        # Also for a model's own configure_optimizers (a no-op without schedule-free).
        add_modes_callback(self.trainer)
        #: The config the model's optimizers are built from (``None``: the model's own code).
        self.optim_config = config

    def before_fit(self) -> None:
        """Validate the whole optim config and the resume before Lightning writes anything.

        Then Lightning's held start-up lines are printed and training starts.
        """
        schedulers: list[tuple[str, Any]] = []
        if self.optim_config is not None:
            schedulers = preflight(self.model, self.optim_config, self.trainer, self.datamodule)
        section = self._config_section()
        ckpt_path = section.get("ckpt_path")
        found = last_checkpoint(self.trainer) if ckpt_path == "last" else None
        if found is not None:
            ckpt_path = section["ckpt_path"] = str(found)
        state = read_checkpoint(ckpt_path) if ckpt_path and Path(ckpt_path).is_file() else None
        check_resume(schedulers, state, self.trainer)
        if found is not None:
            continue_version(self.trainer, found, state)
        self._startup.release()
        if found is not None:
            rank_zero_info(f"lit-optim: ckpt_path 'last' resumes from {found}")

    def before_validate(self) -> None:
        """Print Lightning's held start-up lines."""
        self._startup.release()

    before_test = before_validate
    before_predict = before_validate

    def _config_section(self) -> Any:
        return self.config_init[self.subcommand] if self.subcommand else self.config_init


def _is_plateau(spec: Any) -> bool:
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    return is_torch_scheduler(spec) and str(path).rsplit(".", 1)[-1] == "ReduceLROnPlateau"


def attach_config(model: pl.LightningModule, config: OptimConfig) -> None:
    """Make ``model.configure_optimizers()`` build from ``config`` (the CLI section wins)."""
    name = type(model).__name__
    if isinstance(model, OptimMixin):
        if find_config(model) is not None:
            rank_zero_warn(f"lit-optim: the top-level optim: section replaces {name}'s own optim.")
    elif type(model).configure_optimizers is not pl.LightningModule.configure_optimizers:
        rank_zero_warn(f"lit-optim: {name}.configure_optimizers is replaced by the optim: section.")
    model.configure_optimizers = MethodType(  # type: ignore[method-assign]
        lambda self: configure_optimizers(self, config), model
    )


def preflight(
    model: pl.LightningModule, config: OptimConfig, trainer: pl.Trainer, datamodule: Any
) -> list[tuple[str, Any]]:
    """Build what ``fit`` will build, on the model as ``fit`` sees it: a bad config fails first.

    The build is the one ``configure_optimizers`` runs, on the model (or a meta copy with
    its ``configure_model`` layers, :func:`model_as_fit_sees_it`); nothing is changed.
    When the training data is not known before ``fit`` (no datamodule), no scheduler is
    built here: the run-length checks wait for ``configure_optimizers``. When the layers
    exist only after the strategy's setup (``fully_shard`` in ``configure_model``), every
    check that needs parameters waits for it too (it runs on every rank and ends in the
    same one-line error).

    Returns:
        ``(key, scheduler)`` for each scheduler ``fit`` will build, in Lightning's order
        (for :func:`check_resume`); empty when they are not known yet.

    """
    if config.optimizers is not None:
        check_manual_optimization(model)
    else:
        check_lr_callbacks(trainer.callbacks, config)
    loop = loop_before_fit(trainer, datamodule) if datamodule is not None else None
    view, why = model_as_fit_sees_it(model)
    if view is None:
        rank_zero_info(f"lit-optim: {why}; the optim: checks that need parameters run in fit")
        if loop is not None:  # the run-length checks need no parameters
            _check_lengths(config, loop)
        return []
    # Only when the data is known here; otherwise configure_optimizers finds the batch size.
    scale = None
    if config.lr_scaling is not None and loop is not None:
        scale = find_batch_scale(config.lr_scaling, trainer, datamodule)
    built = build(
        view,
        config,
        lambda section: RunPlan.of(section, loop) if loop is not None else None,
        scale=scale,
        trainer=trainer,
    )
    return [
        ("optim" if b.name is None else f"optim.optimizers.{b.name}", b.scheduler)
        for b in built
        if b.scheduler is not None
    ]


def _check_lengths(config: OptimConfig, loop: TrainLoop) -> None:
    """Work out every run plan of the section (it refuses lengths that cannot be known)."""
    if config.optimizers is None:
        RunPlan.of(config, loop)
        return
    for name, entry in config.optimizers.items():
        try:
            RunPlan.of(entry.config, loop)
        except ConfigError as err:
            raise rekey(err, "optim", f"optim.optimizers.{name}") from None
