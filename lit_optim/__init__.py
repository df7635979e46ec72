"""lit_optim: optimizers, param groups and learning-rate schedules from configuration.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig, build_optimizer
    >>> opt = build_optimizer(torch.nn.Linear(2, 2), OptimConfig(optimizer="SGD"))
    >>> type(opt).__name__
    'SGD'

"""

from lit_optim.callbacks import LRLogger, PlateauResumeFix
from lit_optim.config import GroupRule, LayerDecay, OptimConfig, Warmup
from lit_optim.errors import ConfigError
from lit_optim.groups import ParamGroups, ParamInfo, build_param_groups
from lit_optim.mixin import OptimMixin
from lit_optim.optimizers import build_optimizer
from lit_optim.scheduler import ScheduleLR, build_scheduler
from lit_optim.schedules import (
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
    "MultiStep",
    "OneCycle",
    "OptimConfig",
    "OptimMixin",
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
