r"""Other libraries' schedule argument names (torch, timm, Hugging Face) and their lit_optim form.

lit_optim has one vocabulary (``total``, ``min_factor``, ``"cosine"``); users arrive with
torch's (``T_max``, ``eta_min``, ``total_iters``), timm's (``t_initial``, ``lr_min``) or
Hugging Face's (``num_warmup_steps``, ``lr_end``). When a schedule is given such a name,
:func:`unknown_arguments_message` says what it is here and how to convert the value,
for every wrong argument of the section at once. The schedule reference
(``lit-optim schedules``) lists the same renames per schedule (:func:`renames_of`).

Example:
    >>> from lit_optim.core.schedules import Linear
    >>> msg = unknown_arguments_message(Linear, {"end_factor": 0.1, "total_iters": 5},
    ...                                 ["start_factor", "min_factor", "total"])
    >>> print(msg.replace("; ", ";\n"))
    unknown arguments of Linear: end_factor -> min_factor: 0.1;
    total_iters -> total: 5 (valid: start_factor, min_factor, total)

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lit_optim.core.errors import closest

__all__ = [
    "FOREIGN_NAMES",
    "SECTION_NAMES",
    "hint",
    "renames_of",
    "unknown_arguments_message",
    "unknown_keys_message",
]

#: A foreign argument name -> ``(where it applies, hint)``, the first applicable entry wins:
#: ``"arg"`` applies to every schedule taking ``arg``, ``"Schedule.arg"`` to that schedule
#: only, ``None`` to any. ``{v}`` in a hint is the value given. A hint that starts with the
#: argument (``total: {v}``, ``min_factor = ...``) is a rename, listed by
#: ``lit-optim schedules``; the others say where the value goes instead.
FOREIGN_NAMES: dict[str, tuple[tuple[str | None, str], ...]] = {
    # torch.optim.lr_scheduler
    "T_max": (("total", "total: {v}"),),
    "eta_min": (("min_factor", "min_factor = eta_min / base lr ({v} / lr)"),),
    "total_iters": (
        ("total", "total: {v}"),
        (
            "Constant.factor",
            "Constant has no end; torch's ConstantLR(factor, total_iters) is "
            "optim.warmup: {{steps: {v}, start_factor: factor, mode: constant}} with no schedule",
        ),
    ),
    "end_factor": (("min_factor", "min_factor: {v}"),),
    "start_factor": (
        (None, "a ramp in front of the schedule is optim.warmup: {{start_factor: {v}, steps: N}}"),
    ),
    "gamma": (
        ("CosineRestarts.decay", "decay: {v} (the peak's factor from one cycle to the next)"),
        (None, "gamma is the factor of Step, MultiStep and Exponential; this schedule has none"),
    ),
    "step_size": (
        ("milestones", "MultiStep takes milestones: [s, 2 s, ...]; step_size is Step's"),
        (None, "step_size is Step's; use class_path: Step"),
    ),
    "milestones": (
        ("boundaries", "boundaries: {v} (SequentialLR's milestones)"),
        ("step_size", "milestones are MultiStep's; use class_path: MultiStep"),
        (None, "milestones are MultiStep's; use class_path: MultiStep"),
    ),
    "T_0": (("period", "period: {v}"),),
    "T_mult": (("period_mult", "period_mult: {v}"),),
    "max_lr": ((None, "the peak lr is the optimizer's lr: optim.optimizer.init_args.lr: {v}"),),
    "pct_start": (
        (None, "a warmup over a fraction of the run is optim.warmup: {{fraction: {v}}}"),
    ),
    "anneal_strategy": (("anneal", "anneal: cosine or linear (torch's 'cos' is 'cosine')"),),
    "total_steps": (
        ("total", "total: {v}, or leave it out for the whole run"),
        (None, "drop it: the run length comes from the trainer"),
    ),
    "epochs": ((None, "drop it: the run length comes from the trainer"),),
    "steps_per_epoch": ((None, "drop it: the run length comes from the trainer"),),
    "cycle_momentum": (
        (None, "schedules drive the lr only; cycle momentum with optim.momentum_schedule"),
    ),
    "base_momentum": (
        (None, "schedules drive the lr only; cycle momentum with optim.momentum_schedule"),
    ),
    "max_momentum": (
        (None, "schedules drive the lr only; cycle momentum with optim.momentum_schedule"),
    ),
    "lr_lambda": (("expr", "expr: '<expression of step>' or fn: my_pkg.my_factor"),),
    "schedulers": (("schedules", "schedules: [...] (lit_optim schedules, by name or spec)"),),
    "last_epoch": ((None, "drop it: a resumed run restores the step (--ckpt_path)"),),
    "verbose": ((None, "drop it: LRLogger logs every lr"),),
    "lr": ((None, "the lr is the optimizer's: optim.optimizer.init_args.lr"),),
    # Warmup, as a schedule argument (torch, Hugging Face, T5)
    "warmup_steps": (
        ("InverseSqrt.timescale", "timescale: {v} (T5's warmup_steps)"),
        ("WarmupStableDecay.warmup", "warmup = warmup_steps / run length (a fraction)"),
        (None, "a warmup is its own key: optim.warmup: {{steps: {v}}}"),
    ),
    "num_warmup_steps": (
        ("WarmupStableDecay.warmup", "warmup = num_warmup_steps / run length (a fraction)"),
        (None, "a warmup is its own key: optim.warmup: {{steps: {v}}}"),
    ),
    # timm.scheduler
    "t_initial": (("CosineRestarts.period", "period: {v}"), ("total", "total: {v}")),
    "lr_min": (("min_factor", "min_factor = lr_min / base lr ({v} / lr)"),),
    "cycle_mul": (("period_mult", "period_mult: {v}"),),
    "cycle_decay": (("CosineRestarts.decay", "decay: {v}"),),
    "cycle_limit": (("cycles", "cycles: {v}"),),
    "decay_t": (("step_size", "step_size: {v}"),),
    "decay_rate": (("gamma", "gamma: {v}"),),
    "warmup_t": ((None, "a warmup is its own key: optim.warmup: {{steps: {v}}}"),),
    "warmup_lr_init": ((None, "optim.warmup.start_factor = warmup_lr_init / base lr ({v} / lr)"),),
    "warmup_prefix": ((None, "optim.warmup.overlap = not warmup_prefix"),),
    # Hugging Face transformers.optimization
    "num_training_steps": (
        ("total", "total: {v}, or leave it out for the whole run"),
        (None, "drop it: the run length comes from the trainer"),
    ),
    "num_cycles": (("Cosine.waves", "waves: {v}"), ("CosineRestarts.cycles", "cycles: {v}")),
    "lr_end": (("min_factor", "min_factor = lr_end / base lr ({v} / lr)"),),
    "min_lr": (("min_factor", "min_factor = min_lr / base lr ({v} / lr)"),),
    "min_lr_ratio": (("min_factor", "min_factor: {v}"),),
    "num_decay_steps": (
        ("WarmupStableDecay.decay", "decay = num_decay_steps / run length (a fraction)"),
    ),
    "num_stable_steps": (
        (
            "WarmupStableDecay.decay",
            "drop it: the stable phase is what warmup and decay leave of the run",
        ),
    ),
    "decay_type": (
        ("WarmupStableDecay.decay_shape", "decay_shape: {v} (Hugging Face's '1-sqrt' is 'sqrt')"),
    ),
}


#: Other libraries' names for keys of the ``optim:`` section (``OptimConfig``), a warmup
#: (``Warmup``) and a group rule (``GroupRule``): ``{section: {name: hint}}``. Names that
#: "did you mean" finds on its own (``scheduler`` -> ``schedule``) are left to it.
SECTION_NAMES: dict[str, dict[str, str]] = {
    "OptimConfig": {
        "warmup_steps": "warmup: {{steps: {v}}}",
        "num_warmup_steps": "warmup: {{steps: {v}}}",
        "warmup_ratio": "warmup: {{fraction: {v}}}",
        "warmup_epochs": "warmup: {{epochs: {v}}}",
        "lr": "optimizer: {{init_args: {{lr: {v}}}}}",
        "weight_decay": "optimizer: {{init_args: {{weight_decay: {v}}}}}",
        "layer_decay_rate": "layer_decay: {{rate: {v}}}",
        "layerwise_lr_decay": "layer_decay: {{rate: {v}}}",
    },
    "Warmup": {
        "warmup_steps": "steps: {v}",
        "num_warmup_steps": "steps: {v}",
        "warmup_t": "steps: {v}",
        "warmup_iters": "steps: {v}",
        "warmup_epochs": "epochs: {v}",
        "warmup_ratio": "fraction: {v}",
        "warmup_lr_init": "start_factor = warmup_lr_init / base lr ({v} / lr)",
        "warmup_factor": "start_factor: {v}",
        "warmup_prefix": "overlap = not warmup_prefix",
        "warmup_method": "mode: {v}",
    },
    "GroupRule": {
        "lr_mult": "lr_scale: {v}",
        "decay_mult": "weight_decay = decay_mult * the optimizer's weight_decay",
    },
}


def hint(name: str, value: Any, schedule: str, params: Sequence[str]) -> str | None:
    """What the foreign argument ``name`` is for ``schedule`` (taking ``params``), or ``None``.

    Example:
        >>> hint("T_max", 100, "Cosine", ["min_factor", "total"])
        'T_max -> total: 100'
        >>> hint("warmup_steps", 500, "Poly", ["power", "total"])
        'warmup_steps -> a warmup is its own key: optim.warmup: {steps: 500}'
        >>> hint("powr", 1, "Poly", ["power"]) is None
        True

    """
    entry = _entry(name, schedule, params)
    return None if entry is None else f"{name} -> {entry[1].format(v=_show(value))}"


def renames_of(schedule: str, params: Sequence[str]) -> dict[str, str]:
    """``{foreign name: lit_optim argument}`` for ``schedule`` taking ``params``.

    Example:
        >>> renames_of("Cosine", ["min_factor", "total", "waves", "k_decay"])["T_max"]
        'total'

    """
    found = {}
    for name in FOREIGN_NAMES:
        entry = _entry(name, schedule, params)
        if entry is None or entry[0] is None:
            continue
        arg = entry[0].rpartition(".")[2]
        if arg != name and entry[1].startswith((f"{arg}:", f"{arg} =")):
            found[name] = arg
    return found


def _entry(name: str, schedule: str, params: Sequence[str]) -> tuple[str | None, str] | None:
    for where, text in FOREIGN_NAMES.get(name, ()):
        if where is None:
            return where, text
        owner, _, arg = where.rpartition(".")
        if arg in params and owner in ("", schedule):
            return where, text
    return None


def unknown_arguments_message(
    cls: type, init_args: Mapping[str, Any], params: Sequence[str]
) -> str | None:
    """The reason for every argument of ``init_args`` that ``cls`` does not take, in one text.

    Args:
        cls: The schedule class.
        init_args: The arguments given.
        params: The arguments ``cls`` takes.

    Returns:
        ``None`` when every argument is known; else one message naming each wrong argument
        with its lit_optim equivalent and conversion (or its closest valid name).

    """
    wrong = [str(a) for a in init_args if a not in params]
    if not wrong:
        return None
    valid = f"(valid: {', '.join(params) or 'none'})"
    hints = {a: hint(a, init_args[a], cls.__name__, params) for a in wrong}
    if len(wrong) == 1 and hints[wrong[0]] is None:
        return f"unknown argument of {cls.__name__}{closest(wrong[0], params)} {valid}"
    parts = []
    for a in wrong:
        parts.append(hints[a] or f"{a}: unknown{closest(a, params)}")
    what = "argument" if len(wrong) == 1 else "arguments"
    return f"unknown {what} of {cls.__name__}: {'; '.join(parts)} {valid}"


def unknown_keys_message(
    section: str, given: Mapping[str, Any], names: Sequence[str]
) -> str | None:
    """The reason for every key of ``given`` that the section class ``section`` does not have.

    Like :func:`unknown_arguments_message`, for the keys of ``optim:`` itself, a warmup
    or a group rule; other libraries' names (:data:`SECTION_NAMES`) get their lit_optim
    form.

    Example:
        >>> names = ["steps", "epochs", "fraction", "start_factor", "mode", "overlap"]
        >>> message = unknown_keys_message("Warmup", {"warmup_t": 5, "warmup_lr_init": 1e-6}, names)
        >>> for part in message.split("; "):
        ...     print(part.split(" (valid")[0])
        unknown keys: warmup_t -> steps: 5
        warmup_lr_init -> start_factor = warmup_lr_init / base lr (1e-06 / lr)

    """
    wrong = [str(k) for k in given if k not in names]
    if not wrong:
        return None
    valid = f"(valid: {', '.join(names)})"
    known = SECTION_NAMES.get(section, {})
    hints = {
        k: f"{k} -> {known[k].format(v=_show(given[k]))}" if k in known else None for k in wrong
    }
    if len(wrong) == 1 and hints[wrong[0]] is None:
        return f"unknown key{closest(wrong[0], names)} {valid}"
    parts = [hints[k] or f"{k}: unknown{closest(k, names)}" for k in wrong]
    return f"unknown key{'s' if len(wrong) > 1 else ''}: {'; '.join(parts)} {valid}"


def _show(value: Any) -> str:
    # YAML's spelling, as the user wrote it: 1e-05 rather than 1e-05's repr quirks, lists as [..]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
