"""lit_optim: optimizers, param groups and learning-rate schedules from configuration."""

from lit_optim.config import GroupRule, LayerDecay, OptimConfig, Warmup
from lit_optim.errors import ConfigError

__all__ = sorted(["ConfigError", "GroupRule", "LayerDecay", "OptimConfig", "Warmup"])
