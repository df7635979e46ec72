"""Torch schedulers given by ``class_path``: recognised, checked and built as they are.

Arguments that mean "the length of the run" (``total_steps``, ``T_max``,
``total_iters``) are filled from the trainer when the user left them out; what only a
lit_optim schedule can do (warmup, per-group and hyperparameter schedules, groups that
join mid-run) is refused with the key path.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lit_optim.core.composite import optimizer_name
from lit_optim.core.config import GroupRule, OptimConfig
from lit_optim.core.config_checks import LARGEST
from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.groups.result import PendingGroup
from lit_optim.core.run_length import RunLengthUnknown
from lit_optim.core.scheduler.track import FIELDS, LR
from lit_optim.core.schedules._checks import check_torch_scheduler_args

__all__ = ["SchedulerLike", "build_torch_scheduler", "is_torch_scheduler", "refuse_mixing"]

SchedulerLike = LRScheduler | ReduceLROnPlateau

# Arguments of torch schedulers that mean "length of the run", filled when left out.
_TOTAL_ARGS = ("total_steps", "T_max", "total_iters")


def is_torch_scheduler(spec: Any) -> bool:
    """Whether a schedule spec names a torch scheduler class (``LRScheduler`` or plateau)."""
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    if isinstance(path, type):
        return issubclass(path, LRScheduler | ReduceLROnPlateau)
    if not isinstance(path, str) or "." not in path:
        return path in _torch_scheduler_names() if isinstance(path, str) else False
    module_name, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr, None)
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, LRScheduler | ReduceLROnPlateau)


def refuse_mixing(
    config: OptimConfig,
    group_specs: Sequence[Any],
    pending: Sequence[PendingGroup] = (),
    rule_configs: Sequence[GroupRule | None] = (),
) -> None:
    """Refuse what needs a lit_optim schedule when ``optim.schedule`` is a torch scheduler.

    Raises:
        ConfigError: A warmup, a per-group schedule, a momentum or weight-decay schedule,
            or a group joining mid-run.

    """
    for field in FIELDS:
        if getattr(config, field.warmup_key) is not None:
            raise ConfigError(
                f"optim.{field.warmup_key}",
                "warmup composes with lit_optim schedules only; a torch scheduler given by "
                "class_path runs as it is (use OneCycleLR's pct_start, or a lit_optim schedule)",
            )
    for i, spec in enumerate(group_specs):
        if spec is not None:
            raise ConfigError(
                _schedule_key(spec, i, config),
                "per-group schedules need a lit_optim schedule as optim.schedule, not a torch "
                "scheduler",
            )
    for field in FIELDS:
        name = field.schedule_key
        if field is not LR and (
            getattr(config, name) is not None
            or any(getattr(r, name) is not None for r in rule_configs if r is not None)
        ):
            raise ConfigError(
                f"optim.{name}",
                f"{name} needs a lit_optim schedule as optim.schedule, not a torch scheduler",
            )
    if pending:
        raise ConfigError(
            f"optim.groups[{pending[0].rule_index}].unfreeze_at",
            "groups that join mid-run need a lit_optim schedule as optim.schedule, not a "
            "torch scheduler (the torch scheduler does not know the group)",
        )


def build_torch_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int | None
) -> SchedulerLike:
    """Build ``optim.schedule``, a torch scheduler, filling its run-length arguments.

    Args:
        optimizer: The optimizer it schedules.
        config: The ``optim:`` section.
        total_steps: Scheduler steps over the run (``None``: unknown).

    Raises:
        ConfigError: An unknown or missing argument, a run length needed but unknown,
            ``ReduceLROnPlateau`` without ``optim.monitor``, or the class refusing them.

    """
    spec = config.schedule
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    init_args = dict((spec.get("init_args") or {}) if isinstance(spec, Mapping) else {})
    key = "optim.schedule"
    cls = path if isinstance(path, type) else _torch_scheduler_class(str(path))
    params = inspect.signature(cls.__init__).parameters
    names = [n for n in params if n not in ("self", "optimizer")]
    for name in init_args:
        if name not in names:
            raise ConfigError(
                f"{key}.init_args.{name}",
                f"not an argument of {cls.__name__}{closest(name, names)} "
                f"(valid: {', '.join(names)})",
            )
    check_torch_scheduler_args(cls.__name__, init_args, key)
    if cls is torch.optim.lr_scheduler.OneCycleLR:
        init_args.setdefault("max_lr", [g["lr"] for g in optimizer.param_groups])
        if "total_steps" not in init_args and "epochs" not in init_args:
            init_args["total_steps"] = _need_total(total_steps, cls, "total_steps")
    else:
        for name in _TOTAL_ARGS:
            if name in params and name not in init_args:
                init_args[name] = _need_total(total_steps, cls, name)
    if issubclass(cls, ReduceLROnPlateau) and not config.monitor:
        raise ConfigError(
            "optim.monitor",
            "ReduceLROnPlateau needs a metric to watch; set optim.monitor (e.g. val_loss)",
        )
    missing = [
        n
        for n, p in params.items()
        if n not in ("self", "optimizer")
        and p.default is p.empty
        and n not in init_args
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if missing:
        raise ConfigError(f"{key}.init_args.{missing[0]}", f"{cls.__name__} needs a value for it")
    if cls is torch.optim.lr_scheduler.OneCycleLR:
        _refuse_empty_one_cycle_phase(init_args, key)
    try:
        scheduler = cls(optimizer, **init_args)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}.init_args", f"{cls.__name__} refused them: {err}") from None
    except KeyError as err:
        # Groups of several optimizers (AdamW's betas beside Muon's momentum) differ in keys.
        raise ConfigError(
            f"{key}.init_args",
            f"{cls.__name__} needs {err} in every param group, but not every group of "
            f"{optimizer_name(optimizer)} has it (for momentum cycling, set "
            "cycle_momentum: false)",
        ) from None
    if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) and total_steps is not None:
        _refuse_short_one_cycle(scheduler.total_steps, total_steps, init_args, key)
    _refuse_overflow(scheduler, total_steps, key)
    return scheduler


def _refuse_overflow(scheduler: SchedulerLike, total_steps: int | None, key: str) -> None:
    """Refuse a torch scheduler that takes an lr past ``LARGEST`` (1e300) within the run.

    The lrs it sets up (OneCycleLR's ``max_lr / div_factor`` and its minimum) are checked
    as built; a ``gamma > 1`` of StepLR, MultiStepLR and ExponentialLR by the decays the
    run has (torch's closed form: ``lr * gamma ** decays``).
    """
    groups = scheduler.optimizer.param_groups
    name = type(scheduler).__name__
    for i, group in enumerate(groups):
        for field in ("lr", "initial_lr", "max_lr", "min_lr"):
            value = group.get(field)
            if isinstance(value, int | float) and not abs(value) <= LARGEST:
                raise ConfigError(
                    f"{key}.init_args",
                    f"{name} makes the {field} of group {group.get('name', i)!r} {value:g}, "
                    f"past {LARGEST:g}",
                )
    gamma = getattr(scheduler, "gamma", None)
    if total_steps is None or not isinstance(gamma, int | float) or gamma <= 1:
        return
    lr_scheduler = torch.optim.lr_scheduler
    if isinstance(scheduler, lr_scheduler.StepLR):
        decays = total_steps // scheduler.step_size
    elif isinstance(scheduler, lr_scheduler.MultiStepLR):
        decays = sum(n for step, n in scheduler.milestones.items() if step <= total_steps)
    elif isinstance(scheduler, lr_scheduler.ExponentialLR):
        decays = total_steps
    else:
        return
    largest = max(abs(float(g["initial_lr"])) for g in groups)
    if largest and math.log(largest) + decays * math.log(gamma) > math.log(LARGEST):
        raise ConfigError(
            f"{key}.init_args.gamma",
            f"gamma={gamma:g} takes the lr {largest:g} past {LARGEST:g} within the run "
            f"({decays} decays); use gamma <= 1 or a shorter run",
        )


def _refuse_empty_one_cycle_phase(init_args: Mapping[str, Any], key: str) -> None:
    """Refuse a OneCycleLR whose first or last phase ends where it starts.

    torch computes a phase's progress as ``(step - start) / (end - start)`` with the phase
    ends ``pct_start * total_steps - 1`` (and ``2 * pct_start * total_steps - 2`` with
    three phases) and ``total_steps - 1``: with ``pct_start * total_steps == 1`` step 0
    divides by zero when the scheduler is made, with ``pct_start: 1`` the last step does.
    """
    total = init_args.get("total_steps")
    if total is None:
        total = init_args.get("epochs", 0) * init_args.get("steps_per_epoch", 0)
    pct = float(init_args.get("pct_start", 0.3))
    peak = pct * total
    ends = [peak - 1, 2 * peak - 2] if init_args.get("three_phase") else [peak - 1]
    ends.append(total - 1)
    if ends[0] == 0 or ends[-1] == ends[-2]:
        raise ConfigError(
            f"{key}.init_args.pct_start",
            f"OneCycleLR over {total} steps with pct_start {pct:g} has a phase of 0 steps, "
            "where torch divides by zero; move pct_start so that pct_start * total_steps "
            "is neither 1 nor total_steps",
        )


def _refuse_short_one_cycle(
    length: int, total_steps: int, init_args: Mapping[str, Any], key: str
) -> None:
    """OneCycleLR raises when stepped past its ``total_steps``: refuse it before the run."""
    if length >= total_steps:
        return
    given = "total_steps" if "total_steps" in init_args else "epochs"
    raise ConfigError(
        f"{key}.init_args.{given}",
        f"OneCycleLR lasts {length} steps but the run has {total_steps} scheduler steps, and "
        f"torch raises when it is stepped past its end; leave total_steps and epochs out "
        f"(filled from the run) or make it >= {total_steps}",
    )


def _torch_scheduler_names() -> dict[str, type]:
    module = torch.optim.lr_scheduler
    return {
        n: getattr(module, n)
        for n in dir(module)
        if isinstance(getattr(module, n), type)
        and issubclass(getattr(module, n), LRScheduler | ReduceLROnPlateau)
        and n not in ("LRScheduler", "_LRScheduler")
    }


def _torch_scheduler_class(path: str) -> type:
    names = _torch_scheduler_names()
    if "." not in path:
        return names[path]
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _need_total(total_steps: int | None, cls: type, name: str) -> int:
    if total_steps is None:
        raise RunLengthUnknown(f"{cls.__name__} needs {name}", f"optim.schedule.init_args.{name}")
    return total_steps


def _schedule_key(spec: Any, index: int, config: OptimConfig) -> str:
    """Config key of a per-group spec: the rule it came from, else its group_schedules slot."""
    if spec is None:
        return "optim.schedule"
    for i, rule in enumerate(config.groups):
        if rule.schedule is spec:
            return f"optim.groups[{i}].schedule"
    return f"group_schedules[{index}]"
