"""``lit-optim``: LightningCLI with a top-level ``optim:`` section, plus tool subcommands.

``lit-optim fit --config x.yaml`` trains; plain ``lit-optim fit`` trains the embedded
digits demo (``lit_optim/configs/digits_poly.yaml``). ``plot``, ``groups`` and
``compare`` are tools that resolve a run exactly as ``fit`` would.

A bad config prints one ``error: <key path>: <what is wrong>`` line and exits 2.
"""

from __future__ import annotations

import dataclasses
from argparse import RawDescriptionHelpFormatter
from collections.abc import Mapping
from pathlib import Path
from types import MethodType
from typing import Any

import lightning.pytorch as pl
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

from lit_optim.core.config import OptimConfig
from lit_optim.core.lr_adapter import is_torch_scheduler
from lit_optim.core.lr_scaling import find_batch_scale
from lit_optim.core.plan import RunPlan, preview
from lit_optim.core.schedules import build_schedule
from lit_optim.lightning import types as _types  # noqa: F401  (registers Spec with jsonargparse)
from lit_optim.lightning.callbacks import PlateauResumeFix
from lit_optim.lightning.loop import loop_before_fit
from lit_optim.lightning.mixin import OptimMixin, configure_optimizers, find_config
from lit_optim.lightning.modes import add_modes_callback

DEFAULT_CONFIG = Path(__file__).parents[1] / "configs" / "digits_poly.yaml"
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
TOOL_COMMANDS = ("plot", "groups", "compare", "lr-find")
DESCRIPTION = """Lightning's trainer commands with a top-level optim: section.

tools (each resolves the run as fit would, without training; see `lit-optim <tool> -h`):
  plot      draw the lr of every param group over the whole run
  groups    table of param groups: rule, tensors, parameters, lr, weight decay
  compare   train once per --optim file and compare loss, metric and lr
  lr-find   lr range test keeping the ratios between groups; suggests an lr"""


class _HelpFormatter(DefaultHelpFormatter, RawDescriptionHelpFormatter):
    """jsonargparse's help, keeping the line breaks of the description."""


class LitOptimCLI(LightningCLI):
    """LightningCLI whose ``optim:`` section configures any LightningModule.

    The section works for models that use :class:`OptimMixin` and for models that do
    not (their ``configure_optimizers`` is replaced, with a one-line warning).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("auto_configure_optimizers", False)
        # Parse errors raise (main() prints them as one line) instead of printing the
        # whole usage text, which buries the one line that says what is wrong.
        kwargs["parser_kwargs"] = {
            "exit_on_error": False,
            "description": DESCRIPTION,
            "formatter_class": _HelpFormatter,
            **(kwargs.get("parser_kwargs") or {}),
        }
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: Any) -> None:
        """Add the top-level ``optim:`` section."""
        # A plain (not Optional) dataclass: jsonargparse then keeps `class_path: SGD`-style
        # short names as data and resolves `class_path: Poly` to lit_optim schedules.
        parser.add_argument(
            "--optim",
            type=OptimConfig,
            help="Optimizer, param groups and schedule (see lit_optim.OptimConfig).",
        )

    def before_instantiate_classes(self) -> None:
        """Build every schedule under its own key path before jsonargparse instantiates it.

        jsonargparse builds ``class_path: Lambda`` schedules itself, where a bad argument
        cannot know whether it sits in ``optim.schedule`` or ``optim.groups[2].schedule``.
        """
        optim = self._config_section_raw().get("optim")
        if optim is not None:
            check_schedules(optim)

    def _config_section_raw(self) -> Any:
        return self.config[self.subcommand] if self.subcommand else self.config

    def instantiate_classes(self) -> None:
        """Instantiate as Lightning does, then attach the ``optim:`` section to the model."""
        super().instantiate_classes()
        config = self._cli_optim()
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

    def _cli_optim(self) -> OptimConfig | None:
        """The ``optim:`` section, or ``None`` when it was left at its defaults."""
        config = self._config_section().get("optim")
        return None if config is None or config == OptimConfig() else config

    def before_fit(self) -> None:
        """Validate the whole optim config before Lightning writes logs or checkpoints."""
        if self.optim_config is not None:
            preflight(self.model, self.optim_config, self.trainer, self.datamodule)
        section = self._config_section()
        if section.get("ckpt_path") == "last":
            found = last_checkpoint(self.trainer)
            if found is not None:
                rank_zero_info(f"lit-optim: ckpt_path 'last' resumes from {found}")
                section["ckpt_path"] = str(found)

    def _config_section(self) -> Any:
        return self.config_init[self.subcommand] if self.subcommand else self.config_init


def _is_plateau(spec: Any) -> bool:
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    return is_torch_scheduler(spec) and str(path).rsplit(".", 1)[-1] == "ReduceLROnPlateau"


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


def check_schedules(optim: Any) -> None:
    """Build the global and every per-group lit_optim schedule spec, naming its key path."""
    names = ("schedule", "momentum_schedule", "weight_decay_schedule")
    specs = [(f"optim.{n}", optim.get(n)) for n in names]
    for i, rule in enumerate(optim.get("groups") or []):
        rule = getattr(rule, "init_args", rule)  # a list item may be {class_path, init_args}
        if hasattr(rule, "get"):
            specs.extend((f"optim.groups[{i}].{n}", rule.get(n)) for n in names)
    for key, spec in specs:
        spec = spec.as_dict() if hasattr(spec, "as_dict") else spec
        if isinstance(spec, Mapping) and not is_torch_scheduler(spec):
            build_schedule(spec, key)


def preflight(
    model: pl.LightningModule, config: OptimConfig, trainer: pl.Trainer, datamodule: Any
) -> None:
    """Build what ``fit`` will build, on the real model, so a bad config fails first.

    When the training data is not known before ``fit`` (no datamodule), the run-length
    checks wait for ``configure_optimizers``; everything else is checked here.
    """
    loop = loop_before_fit(trainer, datamodule)
    if datamodule is None and trainer.max_steps == -1:
        loop = dataclasses.replace(loop, max_steps=_PLACEHOLDER_STEPS)
    # Only when the data is known here; otherwise configure_optimizers finds the batch size.
    scale = None
    if config.lr_scaling is not None and datamodule is not None:
        scale = find_batch_scale(config.lr_scaling, trainer, datamodule)
    preview(model, config, RunPlan.of(config, loop), scale, trainer=trainer)


# Run length used to validate a schedule whose real length only ``fit`` can know.
_PLACEHOLDER_STEPS = 10**6


def with_default_config(args: list[str]) -> list[str]:
    """Prepend the embedded demo config when a trainer command has neither config nor model."""
    if not args or args[0] not in TRAINER_COMMANDS:
        return args
    given = {a.split("=")[0] for a in args[1:]}
    if given & {"--config", "-c", "--model"}:
        return args
    return [args[0], "--config", str(DEFAULT_CONFIG), *args[1:]]
