"""Fuzzing the ``optim:`` section: every section builds and trains, or is one ``ConfigError``.

Hypothesis writes whole sections as a YAML user would (names and ``class_path`` /
``init_args``, group rules, warmups, layer decay, torch schedulers, several optimizers),
mixing valid and invalid keys, values and types: ``null``, wrong types, negatives, NaN,
infinities, huge numbers, misspelled keys. Each section goes through
:meth:`OptimConfig.from_dict`, then the build ``fit`` does (:func:`build` on a
:class:`RunPlan`, every optimizer of the section) on a small model, then the whole run is
stepped as Lightning steps it (scheduler steps from :meth:`RunPlan.scheduler_steps`).

The only outcomes allowed: every lr of every step finite and ``>= 0``, or a
:class:`ConfigError` whose message starts with its key path (``optim...`` or, for a run
length the section needs, ``trainer.max_steps``). Any other exception or any warning
fails.

CI runs a bounded, derandomized number of examples; run more locally with
``LIT_OPTIM_FUZZ_EXAMPLES=20000``.
"""

from __future__ import annotations

import math
import os
import re
import types
import warnings
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from lit_optim import ConfigError, OptimConfig
from lit_optim.core.build import apply_freeze, build
from lit_optim.core.lr_scaling import find_batch_scale
from lit_optim.core.plan import RunPlan, TrainLoop

EXAMPLES = int(os.environ.get("LIT_OPTIM_FUZZ_EXAMPLES", "300"))

#: The key path a ConfigError starts with: ``optim``, ``optim.groups[1].params``,
#: ``optim.optimizers.gen.schedule``, ``optim (groups)``, or the trainer's run length.
KEY_PATH = re.compile(r"^(optim|trainer\.max_steps)([.\[ (]|$)")

# ----------------------------------------------------------------------------- model


class Block(nn.Module):
    """A transformer-ish block: a norm and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(self.norm(x))


class Tiny(nn.Module):
    """``embed``, ``blocks.0..2``, a final ``norm`` and a ``head``: every kind of tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(6, 4)
        self.blocks = nn.ModuleList(Block() for _ in range(3))
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)).mean()


#: What the trainer and the data may say: epochs of a sized loader, accumulation,
#: a step limit shorter than the epochs, interval-epoch friendly lengths.
LOOPS = (
    TrainLoop(batches_per_epoch=4, accumulate=1, max_epochs=3),
    TrainLoop(batches_per_epoch=5, accumulate=2, max_epochs=2),
    TrainLoop(batches_per_epoch=6, accumulate=1, max_epochs=4, max_steps=10),
    TrainLoop(batches_per_epoch=3, accumulate=1, max_epochs=1),
)

# ----------------------------------------------------------------------------- values

NAN, INF = float("nan"), float("inf")
#: Values a YAML user may write where they should not.
JUNK = st.sampled_from(
    [
        None,
        "",
        "x",
        "1e-3",
        -1,
        -0.5,
        0,
        0.0,
        1e308,
        10**30,
        NAN,
        INF,
        -INF,
        True,
        False,
        [],
        {},
        [1],
        {"a": 1},
        "null",
    ]
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-3, 50),
)
#: How noisy one whole section is (shared by every draw of the example): the chance, in
#: percent, that a value is junk, a name is a bad one or a key is misspelled. The clean
#: sections (noise 0) reach the build and training.
NOISE = st.shared(st.sampled_from([0, 0, 0, 0, 3, 10, 30]), key="noise")


@st.composite
def noisy(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """``good``, or ``bad`` as often as the example's :data:`NOISE` says."""
    if draw(st.integers(0, 99)) < draw(NOISE):
        return draw(bad)
    return draw(good)


def junky(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good``, or junk / any number as often as the example's :data:`NOISE` says."""
    return noisy(good, st.one_of(JUNK, NUMBERS))


def pick(good: list[Any], bad: list[Any] = ()) -> st.SearchStrategy[Any]:  # type: ignore[assignment]
    """One of ``good``; with noise one of ``bad``, junk or any number."""
    wrong = (
        st.one_of(st.sampled_from(list(bad)), JUNK, NUMBERS) if bad else st.one_of(JUNK, NUMBERS)
    )
    return noisy(st.sampled_from(good), wrong)


@st.composite
def typo(draw: st.DrawFn, name: str) -> str:
    """``name``, or a misspelling of it as often as the example's :data:`NOISE` says."""
    if len(name) < 3 or draw(st.integers(0, 99)) >= draw(NOISE):
        return name
    return draw(
        st.sampled_from([name[:-1], name[1:], name.upper(), name.replace("_", "-"), name + "s"])
    )


@st.composite
def section_dict(
    draw: st.DrawFn,
    fields: dict[str, st.SearchStrategy[Any]],
    required: dict[str, st.SearchStrategy[Any]] | None = None,
    often: int = 2,
) -> dict[str, Any]:
    """A mapping with ``required`` and about ``1 / often`` of ``fields``; keys may be misspelled."""
    out: dict[str, Any] = {}
    for name, strategy in (required or {}).items():
        out[draw(typo(name))] = draw(strategy)
    for name, strategy in fields.items():
        if draw(st.integers(1, often)) == 1:
            out[draw(typo(name))] = draw(strategy)
    if draw(st.integers(0, 299)) < draw(NOISE):
        out[draw(st.sampled_from(["extra", "lr", "name", "class_path", "steps"]))] = draw(JUNK)
    return out


# ----------------------------------------------------------------------------- optimizers

OPTIMIZER_NAMES = pick(
    [
        "SGD",
        "sgd",
        "AdamW",
        "Adam",
        "torch.optim.SGD",
        "torch.optim.AdamW",
        "RMSprop",
        "Adagrad",
        "LBFGS",
        "Muon",
        "NAdam",
        "Adamax",
    ],
    [
        "Adamw",
        "torch.optim.Nope",
        "nope.Optim",
        "torch.nn.Linear",
        "os.path.join",
        "torch.optim.lr_scheduler.StepLR",
    ],
)
OPTIMIZER_ARGS = {
    "lr": pick([0.1, 1e-3, 0.01, 1, 1e-5]),
    "momentum": pick([0.0, 0.9, 0.5]),
    "weight_decay": pick([0.0, 0.05, 1e-4]),
    "betas": pick([[0.9, 0.999], (0.8, 0.9)], [[0.9], [1.5, 0.9], ["a", 0.9]]),
    "nesterov": pick([False, True]),
    "eps": pick([1e-8, 1e-6]),
    "fused": pick([False, True]),
    "foreach": pick([False, True]),
    "amsgrad": pick([False, True]),
}
OPTIMIZERS = st.one_of(
    OPTIMIZER_NAMES,
    st.builds(
        lambda path, args: {"class_path": path, "init_args": args},
        OPTIMIZER_NAMES,
        section_dict(OPTIMIZER_ARGS, often=3),
    ),
    noisy(
        st.nothing(), section_dict({"class_path": OPTIMIZER_NAMES, "init_args": junky(st.just({}))})
    ),
)

# ----------------------------------------------------------------------------- schedules

FRACTIONS = pick([0.0, 0.1, 0.3, 0.5, 0.9, 1.0])
FACTORS = pick([0.0, 0.1, 0.5, 1.0, 2.0])
STEPS = pick([1, 2, 3, 5, 8, 1000])
EXPRESSIONS = pick(
    [
        "0.95 ** epoch",
        "1 - progress",
        "max(0.1, cos(pi * progress / 2))",
        "1 / (1 + step)",
        "0.5",
        "sqrt(1 - progress)",
        "total_steps / (step + 1)",
        "epoch / total_epochs",
        "progress ** 0.5",
        "min(1, (step + 1) / 3)",
    ],
    [
        "1 / step",
        "step",
        "-1",
        "1 - 2 * progress",
        "exp(step)",
        "10 ** step",
        "nan",
        "log(step)",
        "__import__('os')",
        "x",
        "(",
        "",
        "step if step else 1",
        "inf",
        "1 - 1.5 * progress",
    ],
)
LAMBDA_FNS = pick(["math.exp", "math.cos", "builtins.abs"], ["math.nope", "os.getcwd", "nope"])
LAMBDA = noisy(
    st.one_of(
        st.builds(lambda e: {"expr": e}, EXPRESSIONS), st.builds(lambda f: {"fn": f}, LAMBDA_FNS)
    ),
    section_dict({"expr": EXPRESSIONS, "fn": LAMBDA_FNS}),
)
SCHEDULE_ARGS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "Constant": {"factor": FACTORS},
    "Step": {"step_size": STEPS, "gamma": FACTORS},
    "MultiStep": {
        "milestones": pick([[2, 4], [1], [1, 3]], [[3, 2], [0], [2, 2], "2,4", [1.5], [None]]),
        "gamma": FACTORS,
    },
    "Exponential": {"gamma": FACTORS},
    "Linear": {"start_factor": FACTORS, "min_factor": FACTORS, "total": STEPS},
    "Cosine": {"min_factor": FACTORS, "total": STEPS, "waves": FACTORS, "k_decay": FACTORS},
    "CosineRestarts": {
        "period": pick([None, 2, 3, 2.5]),
        "period_mult": pick([1, 2, 1.5]),
        "min_factor": FACTORS,
        "decay": FACTORS,
        "cycles": pick([None, 1, 2, 3]),
        "k_decay": FACTORS,
    },
    "Poly": {"power": FACTORS, "min_factor": FACTORS, "total": STEPS, "k_decay": FACTORS},
    "OneCycle": {
        "pct_start": FRACTIONS,
        "div_factor": pick([25.0, 1.0, 10]),
        "final_div_factor": pick([1e4, 1.0, 100]),
        "anneal": pick(["cosine", "linear"], ["cos"]),
        "three_phase": pick([False, True]),
    },
    "InverseSqrt": {"timescale": STEPS, "shift": STEPS},
    "WarmupStableDecay": {
        "warmup": FRACTIONS,
        "decay": FRACTIONS,
        "min_factor": FACTORS,
        "decay_shape": pick(["linear", "cosine", "sqrt"], ["exp"]),
        "warmup_shape": pick(["linear", "cosine", "sqrt"], ["exp"]),
    },
}
TORCH_SCHEDULERS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "torch.optim.lr_scheduler.StepLR": {"step_size": STEPS, "gamma": FACTORS},
    "torch.optim.lr_scheduler.CosineAnnealingLR": {"T_max": STEPS, "eta_min": FACTORS},
    "torch.optim.lr_scheduler.OneCycleLR": {
        "max_lr": pick([0.1, 1.0, [0.1]]),
        "pct_start": FRACTIONS,
        "total_steps": STEPS,
        "epochs": STEPS,
        "steps_per_epoch": STEPS,
        "cycle_momentum": pick([False, True]),
    },
    "torch.optim.lr_scheduler.LinearLR": {
        "start_factor": FACTORS,
        "end_factor": FACTORS,
        "total_iters": STEPS,
    },
    "torch.optim.lr_scheduler.ExponentialLR": {"gamma": FACTORS},
    "torch.optim.lr_scheduler.PolynomialLR": {"power": FACTORS, "total_iters": STEPS},
    "torch.optim.lr_scheduler.ReduceLROnPlateau": {
        "mode": pick(["min", "max"]),
        "factor": FACTORS,
        "patience": STEPS,
    },
    "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts": {"T_0": STEPS, "T_mult": STEPS},
    "torch.optim.lr_scheduler.CyclicLR": {
        "base_lr": FACTORS,
        "max_lr": FACTORS,
        "step_size_up": STEPS,
        "cycle_momentum": pick([False, True]),
    },
    "torch.optim.lr_scheduler.LambdaLR": {"lr_lambda": LAMBDA_FNS},
    "torch.optim.lr_scheduler.SequentialLR": {"schedulers": JUNK, "milestones": JUNK},
}
SHORT_NAMES = pick(
    [*SCHEDULE_ARGS, "Lambda", "poly", "cosine_restarts", "lit_optim.schedules.Cosine"],
    ["Cosin", "lit.Nope", "torch.optim.SGD", "os.path"],
)


def simple_schedule(name: Any) -> st.SearchStrategy[Any]:
    """A lit_optim schedule by short name, or ``{class_path, init_args}`` of its arguments."""
    if name == "Lambda":
        return st.builds(lambda a: {"class_path": name, "init_args": a}, LAMBDA)
    args = section_dict(SCHEDULE_ARGS.get(name, {}) if isinstance(name, str) else {}, often=3)
    return st.one_of(st.just(name), st.builds(lambda a: {"class_path": name, "init_args": a}, args))


LIT_SCHEDULES = SHORT_NAMES.flatmap(simple_schedule)


@st.composite
def sequences(draw: st.DrawFn) -> dict[str, Any]:
    """``Sequence`` of 1-3 schedules with increasing boundaries (with noise, any)."""
    n = draw(st.integers(1, 3))
    schedules = draw(junky(st.lists(LIT_SCHEDULES, min_size=n, max_size=n)))
    bounds = sorted(draw(st.sets(st.integers(1, 8), min_size=n - 1, max_size=n - 1)))
    bounds = draw(noisy(st.just(bounds), st.lists(junky(st.integers(-1, 12)), max_size=3)))
    extra = draw(section_dict({"shift": pick([True, False])}, often=3))
    return {
        "class_path": "Sequence",
        "init_args": {"schedules": schedules, "boundaries": bounds, **extra},
    }


TORCH_SCHEDULE = st.sampled_from(sorted(TORCH_SCHEDULERS)).flatmap(
    lambda path: st.one_of(
        st.just(path),
        st.builds(
            lambda a: {"class_path": path, "init_args": a},
            section_dict(TORCH_SCHEDULERS[path], often=3),
        ),
    )
)
SCHEDULES = junky(st.one_of(LIT_SCHEDULES, LIT_SCHEDULES, sequences(), TORCH_SCHEDULE))
#: Per-group, momentum and weight-decay schedules: lit_optim ones mostly.
HYPER_SCHEDULES = junky(
    st.one_of(LIT_SCHEDULES, LIT_SCHEDULES, sequences(), noisy(st.nothing(), TORCH_SCHEDULE))
)
WARMUP_OPTIONS = {
    "start_factor": pick([0.0, 0.1, 0.5, 1.0]),
    "mode": pick(["linear", "exponential", "constant"], ["cosine", "Linear"]),
    "overlap": pick([False, True]),
}
WARMUP_LENGTHS = {
    "steps": pick([1, 2, 3], [0, 100]),
    "epochs": pick([1, 0.5], [0, 2, 100]),
    "fraction": pick([0.1, 0.25, 0.5], [0.0, 0.99]),
}
WARMUPS = noisy(
    st.sampled_from(sorted(WARMUP_LENGTHS)).flatmap(
        lambda length: section_dict(WARMUP_OPTIONS, {length: WARMUP_LENGTHS[length]})
    ),
    st.one_of(section_dict({**WARMUP_LENGTHS, **WARMUP_OPTIONS}), JUNK),
)

# ----------------------------------------------------------------------------- groups

GLOBS = pick(
    [
        "head.*",
        "blocks.*",
        "blocks.0.*",
        "*.bias",
        "embed.weight",
        "norm.*",
        "*",
        r"re:blocks\.\d+\.fc\..*",
        "re:.*norm.*",
        "blocks.[12].*",
    ],
    ["haed.*", "re:(", "", "re:", "re:[", "blocks.9.*"],
)
MODULE_TYPES = pick(
    ["torch.nn.LayerNorm", "torch.nn.Linear", "torch.nn.Embedding"],
    ["torch.nn.Nope", "LayerNorm", "os.path", "torch.nn.Conv2d", "torch.optim.SGD", "nope.X"],
)
SELECTORS = noisy(
    st.one_of(
        st.builds(lambda p: {"params": p}, st.lists(GLOBS, min_size=1, max_size=2)),
        st.builds(lambda m: {"modules": m}, st.lists(MODULE_TYPES, min_size=1, max_size=2)),
        st.builds(lambda n: {"ndim": n}, pick([1, 2, [1, 2]])),
    ),
    section_dict(
        {
            "params": junky(st.lists(GLOBS, max_size=2)),
            "modules": junky(st.lists(MODULE_TYPES, max_size=2)),
            "ndim": pick([1, 2], [[], 0, 3, "2", [-1]]),
        }
    ),
)
UNFREEZE = noisy(
    st.one_of(
        st.builds(lambda e: {"epoch": e}, pick([1, 2], [0, 100])),
        st.builds(lambda s: {"step": s}, pick([1, 3], [0, 1000])),
    ),
    st.one_of(section_dict({"epoch": pick([1]), "step": pick([2])}), JUNK),
)
RULE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": pick(["head", "blocks", "norms", "g"], [""]),
    "lr": pick([0.01, 1.0, 1e-4]),
    "lr_scale": pick([10.0, 0.1, 1, 0.5]),
    "weight_decay": pick([0.0, 0.1, 1e-2]),
    "frozen": pick([False, True]),
    "unfreeze_at": UNFREEZE,
    "options": pick(
        [{"betas": [0.8, 0.9]}, {"momentum": 0.5}, {"eps": 1e-6}, {}],
        [{"foo": 1}, {"betas": 0.9}, {"momentum": -1}, {"params": []}, {"lr": 1}, "x"],
    ),
    "schedule": HYPER_SCHEDULES,
    "momentum_schedule": HYPER_SCHEDULES,
    "weight_decay_schedule": HYPER_SCHEDULES,
    "optimizer": OPTIMIZERS,
}
RULES = st.lists(
    junky(
        st.builds(lambda sel, rest: {**sel, **rest}, SELECTORS, section_dict(RULE_FIELDS, often=5))
    ),
    min_size=0,
    max_size=3,
    # A repeated name is refused; a few are enough, most lists should get further.
    unique_by=lambda rule: _hashable(rule.get("name")) if isinstance(rule, dict) else object(),
)


def _hashable(name: Any) -> Any:
    return name if isinstance(name, str) else object()


LAYER_DECAY = noisy(
    section_dict(
        {"layers": pick([r"re:blocks\.(\d+)\."]), "num_layers": pick([5, 6])},
        {"rate": pick([0.75, 0.5, 1.0, 0.9])},
        often=4,
    ),
    st.one_of(
        section_dict(
            {
                "rate": pick([0.75], [0, 1.5, None]),
                "layers": pick([r"re:blocks\.(\d+)\."], ["re:(", "blocks", "re:x", r"re:\d"]),
                "num_layers": pick([4], [1, 2, 0]),
            }
        ),
        JUNK,
    ),
)
NO_DECAY = junky(st.lists(pick(["bias", "norm", "embedding"], ["biases", "Norm"]), max_size=3))
LR_SCALING = noisy(
    section_dict(
        {
            "rule": pick(["linear", "sqrt"], ["log"]),
            "reference_batch": pick([256, 8, 1]),
            "batch_size": pick([8, 32, 1]),
        }
    ),
    JUNK,
)

#: Keys of one optimizer's section, without ``optimizers``.
ONE_OPTIMIZER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "optimizer": OPTIMIZERS,
    "groups": junky(RULES),
    "no_decay": NO_DECAY,
    "layer_decay": LAYER_DECAY,
    "schedule": SCHEDULES,
    "warmup": WARMUPS,
    "momentum_schedule": HYPER_SCHEDULES,
    "momentum_warmup": WARMUPS,
    "weight_decay_schedule": HYPER_SCHEDULES,
    "weight_decay_warmup": WARMUPS,
    "lr_scaling": LR_SCALING,
    "interval": pick(["step", "epoch"], ["Step", "batch"]),
    "frequency": pick([1, 2], [0, 1.5, "1"]),
    "monitor": pick(["val_loss", None]),
    "summary": pick([True, False], ["yes"]),
}
#: Rarer keys: each one in about a quarter of the sections.
RARE = ("momentum_schedule", "momentum_warmup", "weight_decay_schedule", "weight_decay_warmup")
RARE += ("lr_scaling", "monitor", "summary", "frequency", "no_decay")


@st.composite
def one_optimizer(draw: st.DrawFn) -> dict[str, Any]:
    """A one-optimizer section: the common keys in about half, the rare in a quarter."""
    common = {k: v for k, v in ONE_OPTIMIZER_FIELDS.items() if k not in RARE}
    rare = {k: v for k, v in ONE_OPTIMIZER_FIELDS.items() if k in RARE}
    return {**draw(section_dict(common)), **draw(section_dict(rare, often=5))}


ENTRY = st.builds(
    lambda sel, optimizer, rest: {**sel, "optimizer": optimizer, **rest},
    noisy(
        st.builds(lambda p: {"params": p}, st.lists(GLOBS, min_size=1, max_size=2)),
        SELECTORS,
    ),
    OPTIMIZERS,
    one_optimizer(),
)
SEVERAL = noisy(
    st.builds(
        lambda first, rest: {"generator": first, "rest": rest},
        st.builds(
            lambda p, e: {**e, "params": p}, st.sampled_from([["head.*"], ["blocks.*"]]), ENTRY
        ),
        st.builds(
            lambda e: {k: v for k, v in e.items() if k not in ("params", "modules", "ndim")}, ENTRY
        ),
    ),
    st.one_of(
        st.dictionaries(
            st.sampled_from(["generator", "discriminator", "rest"]), junky(ENTRY), max_size=3
        ),
        JUNK,
    ),
)
SECTIONS = junky(
    st.one_of(
        one_optimizer(),
        one_optimizer(),
        one_optimizer(),
        st.builds(
            lambda several, extra: {"optimizers": several, **extra},
            SEVERAL,
            section_dict({"summary": pick([False, True])}),
        ),
    )
)

# ----------------------------------------------------------------------------- the check


def train(
    model: Tiny, optimizer: torch.optim.Optimizer, scheduler: Any, plan: RunPlan
) -> list[dict[str, float]]:
    """Step ``optimizer`` (and ``scheduler`` as Lightning does) through the whole run.

    Returns:
        ``{group name: lr}`` in force at each optimizer step, all checked finite and ``>= 0``.

    """
    ids = torch.arange(6)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(ids)
        loss.backward()
        return loss

    stepped = 0

    def step_scheduler_to(k: int) -> None:
        nonlocal stepped
        while scheduler is not None and stepped < k:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(1.0)
            else:
                scheduler.step()
            stepped += 1

    lrs = []
    for t, k in enumerate(plan.scheduler_steps()):
        step_scheduler_to(k)
        lrs.append(group_lrs(optimizer, f"optimizer step {t}"))
        optimizer.step(closure)
    # Lightning steps the scheduler after the last optimizer step too (up to the length
    # the schedule was resolved on): torch's OneCycleLR with pct_start 1 divides by zero there.
    step_scheduler_to(plan.total or 0)
    group_lrs(optimizer, "after the last step")
    return lrs


def group_lrs(optimizer: torch.optim.Optimizer, where: str) -> dict[str, float]:
    """``{group name: lr}``, every lr checked to be a finite number ``>= 0``."""
    out = {}
    for i, group in enumerate(optimizer.param_groups):
        lr = group["lr"]
        value = float(lr.item() if isinstance(lr, torch.Tensor) else lr)
        assert math.isfinite(value) and value >= 0, f"{where}: group {i} has lr {value!r}"
        out[str(group.get("name", i))] = value
    return out


def build_and_train(section: Any, loop: TrainLoop) -> list[dict[str, float]]:
    """Validate, build and train one section on :class:`Tiny` as ``fit`` would.

    Returns:
        ``{group name: lr}`` at each optimizer step (of every optimizer, one after another).

    Raises:
        ConfigError: The section is refused.
        AssertionError: An lr that is not finite and ``>= 0``.

    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = OptimConfig.from_dict(section)
        model = Tiny()
        if config.optimizers is not None:
            lrs = []
            every = build(model, config, lambda section: RunPlan.of(section, loop))
            apply_freeze(every)
            for built in every:
                assert built.plan is not None
                lrs += train(model, built.optimizer, built.scheduler, built.plan)
            return lrs
        plan = RunPlan.of(config, loop)
        scale = None
        if config.lr_scaling is not None:
            data = types.SimpleNamespace(batch_size=8)
            scale = find_batch_scale(config.lr_scaling, None, data)
        [built] = build(model, config, lambda _: plan, scale=scale)
        apply_freeze([built])
        lrs = train(model, built.optimizer, built.scheduler, plan)
        assert len(lrs) == plan.optimizer_steps
        return lrs


def outcome(section: Any, loop: TrainLoop) -> str:
    """``"built"``, or ``"refused <the error>"`` for a well-formed :class:`ConfigError`.

    Raises:
        AssertionError: The section neither trained with sane lrs nor was refused with
            one key-path ``ConfigError`` (any other exception propagates as it is).

    """
    try:
        build_and_train(section, loop)
    except ConfigError as err:
        message = str(err)
        assert message == f"{err.key}: {err.reason}", message
        assert KEY_PATH.match(err.key), f"no key path at the start of {message!r}"
        assert err.reason.strip(), f"an empty reason after {err.key!r}"
        return f"refused {message}"
    return "built"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(section=SECTIONS, loop=st.sampled_from(LOOPS))
def test_every_section_builds_or_is_one_config_error(section: Any, loop: TrainLoop) -> None:
    result = outcome(section, loop)
    assert result == "built" or result.startswith("refused optim"), result


def test_fuzzed_sections_both_build_and_are_refused() -> None:
    """The generator is not degenerate: among 60 derandomized sections both outcomes occur."""
    outcomes: list[str] = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(section=SECTIONS, loop=st.sampled_from(LOOPS))
    def collect(section: Any, loop: TrainLoop) -> None:
        outcomes.append(outcome(section, loop))

    collect()
    built = outcomes.count("built")
    assert 0 < built < len(outcomes), outcomes


# ----------------------------------------------------------------------------- regressions


def test_a_clean_section_trains_with_the_lrs_it_describes() -> None:
    section = {
        "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}},
        "groups": [{"name": "head", "params": ["head.*"], "lr_scale": 10.0}],
        "schedule": "Linear",
        "warmup": {"steps": 2},
    }
    lrs = build_and_train(section, LOOPS[0])  # 12 steps: 2 of warmup, then 10 of decay
    assert [round(step["head"], 6) for step in lrs] == [
        0.0,
        0.5,
        *(round(1.0 - s / 10, 6) for s in range(10)),
    ]
    assert [round(step["default"], 6) for step in lrs] == [
        round(step["head"] / 10, 6) for step in lrs
    ]
