"""lit_optim: optimizers, param groups and learning-rate schedules from configuration.

The core (config, groups, schedules, optimizer and scheduler builders) imports only
torch. The Lightning parts (:class:`OptimMixin`, :class:`LRLogger`, the CLI) load on
first use, so ``import lit_optim`` for :func:`build_optimizer` stays light.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig, build_optimizer
    >>> opt = build_optimizer(torch.nn.Linear(2, 2), OptimConfig(optimizer="SGD"))
    >>> type(opt).__name__
    'SGD'

"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lit_optim.core.config import GroupRule, LayerDecay, OptimConfig, Warmup
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups import ParamGroups, ParamInfo, build_param_groups
from lit_optim.core.optimizers import build_optimizer
from lit_optim.core.scheduler import ScheduleLR, build_scheduler
from lit_optim.core.schedules import (
    Constant,
    Cosine,
    CosineRestarts,
    Exponential,
    Horizon,
    InverseSqrt,
    Lambda,
    Linear,
    MultiStep,
    OneCycle,
    Poly,
    Schedule,
    Sequence,
    Step,
    WarmupStableDecay,
)

if TYPE_CHECKING:
    from lit_optim.lightning.callbacks import LRLogger, PlateauResumeFix
    from lit_optim.lightning.cli import LitOptimCLI
    from lit_optim.lightning.mixin import OptimMixin
    from lit_optim.lightning.modes import OptimizerModes

#: Public names that live in the Lightning layer, loaded on first access (PEP 562).
_LAZY = {
    "LRLogger": "lit_optim.lightning.callbacks",
    "LitOptimCLI": "lit_optim.lightning.cli",
    "OptimMixin": "lit_optim.lightning.mixin",
    "OptimizerModes": "lit_optim.lightning.modes",
    "PlateauResumeFix": "lit_optim.lightning.callbacks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_optim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ConfigError",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Exponential",
    "GroupRule",
    "Horizon",
    "InverseSqrt",
    "LRLogger",
    "Lambda",
    "LayerDecay",
    "Linear",
    "LitOptimCLI",
    "MultiStep",
    "OneCycle",
    "OptimConfig",
    "OptimMixin",
    "OptimizerModes",
    "ParamGroups",
    "ParamInfo",
    "PlateauResumeFix",
    "Poly",
    "Schedule",
    "ScheduleLR",
    "Sequence",
    "Step",
    "Warmup",
    "WarmupStableDecay",
    "build_optimizer",
    "build_param_groups",
    "build_scheduler",
]
__version__ = "0.1.0"
