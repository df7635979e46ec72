"""Everything about an ``optim:`` section that can be checked without a model or a run.

:meth:`OptimConfig.from_dict` (keys, types, ranges), then every lit_optim schedule spec
built (its arguments, with torch / timm / Hugging Face names translated), then the
optimizer classes and their init args, in the order ``fit`` meets them. ``lit-optim``
calls this before Lightning is imported (:mod:`lit_optim.tools.precheck`), and
``LitOptimCLI`` calls it again once jsonargparse has parsed the section, so a user's own
LightningCLI script gets the same checks.

Example:
    >>> validate_section({"optimizer": "SGD", "schedule": "Cosine"}).schedule
    'Cosine'
    >>> from lit_optim.core.errors import ConfigError
    >>> try:
    ...     validate_section({"schedule": {"class_path": "Cosine", "init_args": {"T_max": 10}}})
    ... except ConfigError as err:
    ...     print(err.key, "|", err.reason.split(" (valid")[0])
    optim.schedule.init_args.T_max | unknown argument of Cosine: T_max -> total: 10

"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lit_optim.core.config import OptimConfig
from lit_optim.core.optimizers import check_rules_options, resolve_specs
from lit_optim.core.scheduler import is_torch_scheduler
from lit_optim.core.schedules import build_schedule

__all__ = ["check_optimizers", "check_schedules", "validate_section"]

_SCHEDULE_KEYS = ("schedule", "momentum_schedule", "weight_decay_schedule")


def validate_section(section: Any) -> OptimConfig:
    """Validate a plain ``optim:`` section (a parsed YAML mapping) and return its config.

    Raises:
        ConfigError: The first mistake, named by its key path.

    """
    plain = dict(section) if isinstance(section, Mapping) else section
    config = OptimConfig.from_dict(plain)
    check_schedules(plain)
    # A section without `optimizer` (command-line keys only) gets its optimizer from a
    # config read later: group options are checked once the whole section is parsed.
    given = isinstance(plain, Mapping) and plain.get("optimizer") is not None
    check_optimizers(config, options=given)
    return config


def check_schedules(optim: Any) -> None:
    """Build the global and every per-group lit_optim schedule spec, naming its key path."""
    specs = [(f"optim.{n}", optim.get(n)) for n in _SCHEDULE_KEYS]
    for i, rule in enumerate(optim.get("groups") or []):
        rule = getattr(rule, "init_args", rule)  # a list item may be {class_path, init_args}
        if hasattr(rule, "get"):
            specs.extend((f"optim.groups[{i}].{n}", rule.get(n)) for n in _SCHEDULE_KEYS)
    for key, spec in specs:
        spec = spec.as_dict() if hasattr(spec, "as_dict") else spec
        if isinstance(spec, Mapping) and not is_torch_scheduler(spec):
            build_schedule(spec, key)


def check_optimizers(config: OptimConfig, *, options: bool = True) -> None:
    """Resolve the optimizer classes and check their init args, as ``build_optimizer`` does.

    Several optimizers (``optim.optimizers``) are left to the build, which names the
    entry in its messages.

    Args:
        config: The section.
        options: Also check the group rules' options against their optimizers (only
            when the section names its optimizer, not the default it would fall back to).

    """
    if config.optimizers is not None:
        return
    top, own = resolve_specs(config)
    if options:
        check_rules_options(config, top, own)
