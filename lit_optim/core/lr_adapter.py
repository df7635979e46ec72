"""``ScheduleLR``: one ``LRScheduler`` applying ``base_lr[g] * f_g(step)`` in closed form.

Also the pass-through for torch schedulers given by ``class_path`` (their run-length
arguments filled in), and :func:`build_scheduler`, the plain-Python entry point.

Example:
    >>> import torch
    >>> from lit_optim import OptimConfig, build_optimizer, build_scheduler
    >>> model = torch.nn.Linear(4, 2)
    >>> cfg = OptimConfig(optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}},
    ...                   schedule={"class_path": "Poly", "init_args": {"power": 2.0}})
    >>> opt = build_optimizer(model, cfg)
    >>> sched = build_scheduler(opt, cfg, total_steps=10)
    >>> for _ in range(5):
    ...     opt.step(); sched.step()
    >>> round(opt.param_groups[0]["lr"], 12)  # 0.1 * (1 - 5/10) ** 2
    0.025

"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError, closest
from lit_optim.core.schedules import FactorFn, Horizon, Schedule, build_schedule, resolve_factor

SchedulerLike = LRScheduler | ReduceLROnPlateau

# Arguments of torch schedulers that mean "length of the run", filled when left out.
_TOTAL_ARGS = ("total_steps", "T_max", "total_iters")


class ScheduleLR(LRScheduler):
    """Apply ``base_lr[g] * factors[g](step)`` to every param group, in closed form.

    The lr depends on the step count alone, so resuming is restoring the step and
    plotting is evaluating the functions. ``state_dict()`` holds plain data only.

    Args:
        optimizer: The optimizer whose groups are scheduled.
        factors: One factor function per param group.
        fingerprint: Plain data describing the run (group names, run length);
            a checkpoint with a different fingerprint is refused on load.
        last_epoch: Index of the last step taken (-1 = start).

    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factors: Sequence[FactorFn],
        fingerprint: Mapping[str, Any] | None = None,
        last_epoch: int = -1,
    ) -> None:
        if len(factors) != len(optimizer.param_groups):
            raise ValueError(
                f"Expected {len(optimizer.param_groups)} factor functions, got {len(factors)}"
            )
        self.factors = list(factors)
        self.fingerprint = dict(fingerprint or {})
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The lr of every group at the current step."""
        return self.lr_at(self.last_epoch)

    _get_closed_form_lr = get_lr

    def lr_at(self, step: int) -> list[float]:
        """The lr of every group at ``step`` without changing any state."""
        return [base * f(step) for base, f in zip(self.base_lrs, self.factors, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        """Plain data: the step, base lrs and the run fingerprint (no functions)."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "base_lrs": list(self.base_lrs),
            "_last_lr": list(self._last_lr),
            "fingerprint": dict(self.fingerprint),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the step; refuse a checkpoint from a run of another shape.

        Raises:
            ConfigError: The checkpoint's groups or run length differ from this run's.

        """
        saved = state_dict.get("fingerprint") or {}
        for field, what in (("groups", "param groups"), ("total_steps", "run length")):
            if (
                field in saved
                and field in self.fingerprint
                and saved[field] != self.fingerprint[field]
            ):
                raise ConfigError(
                    f"optim ({field})",
                    f"the checkpoint was saved with {what} {saved[field]!r} but this run has "
                    f"{self.fingerprint[field]!r}; resuming would silently change the lr "
                    "sequence. Resume with the original config, or start a new run "
                    "(load the weights with ckpt_path: null and init from the checkpoint)",
                )
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self.base_lrs = list(state_dict["base_lrs"])
        self._last_lr = list(state_dict.get("_last_lr", self.lr_at(self.last_epoch)))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: OptimConfig,
    total_steps: int | float | None = None,
    steps_per_epoch: int | None = None,
    group_schedules: Sequence[Any] | None = None,
) -> SchedulerLike | None:
    """Build the configured schedule for ``optimizer``.

    Args:
        optimizer: Built by :func:`lit_optim.build_optimizer` (or any optimizer).
        config: The ``optim:`` section.
        total_steps: How many times ``scheduler.step()`` will be called over the run
            (in units of ``config.interval``); ``None`` / ``inf`` when unknown.
        steps_per_epoch: Scheduler steps per epoch (1 for ``interval: epoch``).
        group_schedules: Per-group schedule specs parallel to ``optimizer.param_groups``
            (defaults to what :func:`build_optimizer` recorded on the optimizer).

    Returns:
        A :class:`ScheduleLR`, a torch scheduler, or ``None`` when nothing is scheduled.

    Raises:
        ConfigError: Unknown schedule, bad arguments, or a schedule that needs a run
            length that is unknown.

    """
    if group_schedules is None:
        recorded = getattr(optimizer, "lit_optim_groups", None)
        group_schedules = recorded.schedules if recorded is not None else None
    group_specs = list(group_schedules or [None] * len(optimizer.param_groups))
    known = total_steps is not None and math.isfinite(total_steps) and total_steps > 0
    if is_torch_scheduler(config.schedule):
        _refuse_mixing_with_torch(config, group_specs)
        return _build_torch_scheduler(
            optimizer, config, int(total_steps) if known else None, steps_per_epoch
        )
    if config.schedule is None and config.warmup is None and all(s is None for s in group_specs):
        return None
    main = build_schedule(config.schedule, "optim.schedule")
    per_group = [
        main if spec is None else _group_schedule(spec, i, config)
        for i, spec in enumerate(group_specs)
    ]
    horizon = _horizon(config, per_group, total_steps if known else None, steps_per_epoch)
    factors = [
        resolve_factor(
            sched,
            config.warmup,
            horizon,
            key=_schedule_key(spec, i, config),
            warmup_key="optim.warmup",
        )
        for i, (sched, spec) in enumerate(zip(per_group, group_specs, strict=True))
    ]
    fingerprint = {
        "groups": [g.get("name", str(i)) for i, g in enumerate(optimizer.param_groups)],
        "total_steps": horizon.total_steps if known else None,
    }
    return ScheduleLR(optimizer, factors, fingerprint)


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


def _torch_scheduler_names() -> dict[str, type]:
    module = torch.optim.lr_scheduler
    return {
        n: getattr(module, n)
        for n in dir(module)
        if isinstance(getattr(module, n), type)
        and issubclass(getattr(module, n), LRScheduler | ReduceLROnPlateau)
        and n not in ("LRScheduler", "_LRScheduler")
    }


def _group_schedule(spec: Any, index: int, config: OptimConfig) -> Schedule | None:
    key = _schedule_key(spec, index, config)
    if is_torch_scheduler(spec):
        raise ConfigError(
            key,
            "a per-group schedule must be a lit_optim schedule (Poly, Cosine, Lambda, ...); "
            "torch schedulers act on all groups at once",
        )
    return build_schedule(spec, key)


def _schedule_key(spec: Any, index: int, config: OptimConfig) -> str:
    """Config key of a per-group spec: the rule it came from, else its group_schedules slot."""
    if spec is None:
        return "optim.schedule"
    for i, rule in enumerate(config.groups):
        if rule.schedule is spec:
            return f"optim.groups[{i}].schedule"
    return f"group_schedules[{index}]"


def _horizon(
    config: OptimConfig,
    schedules: Sequence[Schedule | None],
    total_steps: int | float | None,
    steps_per_epoch: int | None,
) -> Horizon:
    spe = max(1, int(steps_per_epoch or 1))
    if total_steps is not None:
        return Horizon(total_steps=int(total_steps), steps_per_epoch=spe)
    needs = [s for s in schedules if s is not None and s.needs_total]
    if needs or (config.warmup is not None and config.warmup.fraction is not None):
        what = type(needs[0]).__name__ if needs else "warmup.fraction"
        raise ConfigError(
            "trainer.max_steps",
            f"{what} needs the length of the run, which is unknown (max_epochs is -1 or the "
            "training data has no length); set trainer.max_steps, or trainer.max_epochs "
            "with a sized dataset",
        )
    # Schedules that ignore the run length still get a horizon; make it effectively endless.
    return Horizon(total_steps=2**62, steps_per_epoch=spe)


def _refuse_mixing_with_torch(config: OptimConfig, group_specs: Sequence[Any]) -> None:
    if config.warmup is not None:
        raise ConfigError(
            "optim.warmup",
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


def _build_torch_scheduler(
    optimizer: torch.optim.Optimizer,
    config: OptimConfig,
    total_steps: int | None,
    steps_per_epoch: int | None,
) -> SchedulerLike:
    spec = config.schedule
    path = spec.get("class_path") if isinstance(spec, Mapping) else spec
    init_args = dict((spec.get("init_args") or {}) if isinstance(spec, Mapping) else {})
    key = "optim.schedule"
    cls = path if isinstance(path, type) else _torch_scheduler_class(str(path), key)
    params = inspect.signature(cls.__init__).parameters
    names = [n for n in params if n not in ("self", "optimizer")]
    for name in init_args:
        if name not in names:
            raise ConfigError(
                f"{key}.init_args.{name}",
                f"not an argument of {cls.__name__}{closest(name, names)} "
                f"(valid: {', '.join(names)})",
            )
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
    try:
        return cls(optimizer, **init_args)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}.init_args", f"{cls.__name__} refused them: {err}") from None
    except KeyError as err:
        # Groups of several optimizers (AdamW's betas beside Muon's momentum) differ in keys.
        raise ConfigError(
            f"{key}.init_args",
            f"{cls.__name__} needs {err} in every param group, but not every group of "
            f"{getattr(optimizer, 'lit_optim_name', type(optimizer).__name__)} has it "
            "(for momentum cycling, set cycle_momentum: false)",
        ) from None


def _torch_scheduler_class(path: str, key: str) -> type:
    names = _torch_scheduler_names()
    if "." not in path:
        return names[path]
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _need_total(total_steps: int | None, cls: type, name: str) -> int:
    if total_steps is None:
        raise ConfigError(
            "trainer.max_steps",
            f"{cls.__name__} needs {name}, but the run length is unknown; set "
            f"optim.schedule.init_args.{name}, trainer.max_steps, or trainer.max_epochs with a "
            "sized dataset",
        )
    return total_steps
