"""Bugs the fuzzer (``test_fuzz_config.py``) found, each pinned by the section that found it.

Every one of these ended in something other than a ``ConfigError`` with a key path
(a ``TypeError`` traceback, an error in the middle of training, a silent nonsense lr);
each is now refused by the validator, statically where it can be, with the key path and
what would be valid.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from test_fuzz_config import LOOPS, Tiny, build_and_train

from lit_optim import ConfigError, OptimConfig
from lit_optim.core.build import build
from lit_optim.core.lr_scaling import find_batch_scale
from lit_optim.core.optimizer_args import optimizer_defaults
from lit_optim.core.plan import RunPlan
from lit_optim.core.validate import validate_section


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"layer_decay": {"rate": None}}, "optim.layer_decay.rate: expected a number, got null"),
        (
            {"warmup": {"steps": 2, "start_factor": None}},
            "optim.warmup.start_factor: expected a number, got null",
        ),
        (
            {"lr_scaling": {"reference_batch": None}},
            "optim.lr_scaling.reference_batch: expected an integer, got null",
        ),
        ({"frequency": None}, "optim.frequency: expected an integer, got null"),
    ],
)
def test_null_for_a_required_number_is_refused_with_its_key(
    section: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: these ended in TypeError ('>' between NoneType and int) or
    # later in the build (int(None), x / None).
    with pytest.raises(ConfigError) as info:
        OptimConfig.from_dict(section)
    assert str(info.value) == message


def test_null_for_an_optional_number_still_means_not_set() -> None:
    section = {
        "layer_decay": {"rate": 0.5, "num_layers": None},
        "warmup": {"steps": None, "epochs": 1},
    }
    config = OptimConfig.from_dict(section)
    assert config.layer_decay is not None and config.layer_decay.num_layers is None
    assert config.warmup is not None and config.warmup.epochs == 1
    lrs = build_and_train(section, LOOPS[0])
    # one epoch (4 steps) of warmup from 0, then every layer's own lr
    assert set(lrs[0].values()) == {0.0}
    assert lrs[4]["layer4"] == pytest.approx(1e-3) and lrs[4]["layer0/no_decay"] == pytest.approx(
        1e-3 / 16
    )


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            {"class_path": "Lambda", "init_args": {"fn": "math.cos"}},
            "optim.momentum_schedule.init_args.fn: fails at step 2: 'math.cos' returned "
            "-0.4161468365471424 at step 2; a factor must be a finite number >= 0",
        ),
        (
            {"class_path": "Lambda", "init_args": {"expr": "1 - 2 * progress"}},
            "optim.momentum_schedule.init_args.expr: fails at step 7: '1 - 2 * progress' "
            "returned -0.16666666666666674 at step 7; a factor must be a finite number >= 0",
        ),
    ],
)
def test_lambda_going_negative_mid_run_is_refused_when_built(
    schedule: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: only step 0 was checked, so training stopped with a ValueError
    # traceback at the step where the factor went below 0.
    section = {"optimizer": {"class_path": "SGD", "init_args": {"momentum": 0.9}}}
    with pytest.raises(ConfigError) as info:
        build_and_train({**section, "momentum_schedule": schedule}, LOOPS[0])
    assert str(info.value) == message


def test_lambda_is_checked_at_spread_steps_of_a_long_run() -> None:
    from lit_optim import Horizon, Lambda

    with pytest.raises(ConfigError, match=r"expr: fails at step 600000: .* returned -1.0"):
        Lambda(expr="1 - 2 * (step >= 600000)").resolve(Horizon(10**6))
    assert Lambda(expr="0.5 ** (step / 1000)").resolve(Horizon(10**6))(2000) == 0.25


@pytest.mark.parametrize(
    ("init_args", "message"),
    [
        ({"eta_min": -1}, "optim.schedule.init_args.eta_min: must be >= 0, got -1"),
        ({"T_max": 0}, "optim.schedule.init_args.T_max: must be >= 1, got 0"),
        ({"eta_min": float("nan")}, "optim.schedule.init_args.eta_min: must be finite, got nan"),
        ({"T_max": 2.5}, "optim.schedule.init_args.T_max: expected an integer, got 2.5"),
        (
            {"last_epoch": 3},
            "optim.schedule.init_args.last_epoch: leave it out: CosineAnnealingLR starts at "
            "step 0 and resuming (ckpt_path) restores its step",
        ),
    ],
)
def test_torch_scheduler_arguments_making_bad_lrs_are_refused(
    init_args: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: torch accepted these; the lrs went negative or NaN in training,
    # or it failed with a ZeroDivisionError / KeyError traceback.
    schedule = {"class_path": "torch.optim.lr_scheduler.CosineAnnealingLR", "init_args": init_args}
    with pytest.raises(ConfigError) as info:
        build_and_train({"schedule": schedule}, LOOPS[0])
    assert str(info.value) == message


def test_torch_scheduler_arguments_checked_per_group_and_by_name() -> None:
    for schedule, message in [
        (
            {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 0}},
            "optim.schedule.init_args.step_size: must be >= 1, got 0",
        ),
        (
            {"class_path": "torch.optim.lr_scheduler.ExponentialLR", "init_args": {"gamma": -1}},
            "optim.schedule.init_args.gamma: must be > 0, got -1",
        ),
        (
            {
                "class_path": "torch.optim.lr_scheduler.CyclicLR",
                "init_args": {"base_lr": [0.1, -1], "max_lr": 1, "cycle_momentum": False},
            },
            "optim.schedule.init_args.base_lr[1]: must be >= 0, got -1",
        ),
    ]:
        with pytest.raises(ConfigError) as info:
            build_and_train({"schedule": schedule}, LOOPS[0])
        assert str(info.value) == message
    # in range: trains, with the lrs torch computes
    schedule = {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 4}}
    lrs = build_and_train({"optimizer": "SGD", "schedule": schedule}, LOOPS[0])
    assert [round(s["default"], 8) for s in lrs] == [1e-3] * 4 + [1e-4] * 4 + [1e-5] * 4


@pytest.mark.parametrize(
    ("init_args", "message"),
    [
        (
            {"total_steps": 3},
            "optim.schedule.init_args.total_steps: OneCycleLR lasts 3 steps but the run has 12 "
            "scheduler steps, and torch raises when it is stepped past its end; leave "
            "total_steps and epochs out (filled from the run) or make it >= 12",
        ),
        (
            {"epochs": 1, "steps_per_epoch": 2},
            "optim.schedule.init_args.epochs: OneCycleLR lasts 2 steps but the run has 12 "
            "scheduler steps, and torch raises when it is stepped past its end; leave "
            "total_steps and epochs out (filled from the run) or make it >= 12",
        ),
    ],
)
def test_one_cycle_lr_shorter_than_the_run_is_refused(
    init_args: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: "ValueError: Tried to step 4 times. The specified number of total
    # steps is 3" at the fourth step of training.
    schedule = {"class_path": "torch.optim.lr_scheduler.OneCycleLR", "init_args": init_args}
    with pytest.raises(ConfigError) as info:
        build_and_train({"schedule": schedule}, LOOPS[0])
    assert str(info.value) == message
    lrs = build_and_train({"schedule": {**schedule, "init_args": {"total_steps": 12}}}, LOOPS[0])
    assert len(lrs) == 12 and lrs[0]["default"] == pytest.approx(1e-3 / 25)  # div_factor 25


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"optimizer": {"class_path": "AdamW", "init_args": {"lr": float("inf")}}},
            "optim.optimizer.init_args.lr: must be finite, got inf",
        ),
        (
            {"optimizer": {"class_path": "AdamW", "init_args": {"betas": [float("nan"), 0.9]}}},
            "optim.optimizer.init_args.betas[0]: must be finite, got nan",
        ),
        (
            {
                "groups": [
                    {
                        "params": ["head.*"],
                        "optimizer": {
                            "class_path": "SGD",
                            "init_args": {"weight_decay": float("inf")},
                        },
                    }
                ]
            },
            "optim.groups[0].optimizer.init_args.weight_decay: must be finite, got inf",
        ),
        (
            {"groups": [{"params": ["head.*"], "options": {"eps": float("nan")}}]},
            "optim.groups[0].options.eps: must be finite, got nan",
        ),
        (
            {"groups": [{"params": ["head.*"], "options": {"eps": None}}]},
            "optim.groups[0].options.eps: null; leave the option out to use the optimizer's "
            "own value",
        ),
    ],
)
def test_non_finite_or_null_optimizer_values_are_refused_statically(
    section: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: an infinite lr trained with lr inf; `options: {eps: null}` ended
    # in a TypeError from torch's fused AdamW kernel at the first step.
    with pytest.raises(ConfigError) as info:
        OptimConfig.from_dict(section)
    assert str(info.value) == message


def _refusal(section: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        build_and_train(section, LOOPS[0])
    return str(info.value)


def _static_refusal(section: dict[str, Any]) -> str:
    """The same section through the validator ``lit-optim`` runs before Lightning."""
    with pytest.raises(ConfigError) as info:
        validate_section(section)
    return str(info.value)


SGD = {"class_path": "SGD", "init_args": {"lr": 0.1, "momentum": 0.9}}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"optimizer": "AdamW", "groups": [{"params": ["head.*"], "options": {"betas": 0.9}}]},
            "optim.groups[0].options.betas: expected a list of 2 like [0.9, 0.999], got 0.9",
        ),
        (
            {"optimizer": SGD, "groups": [{"params": ["head.*"], "options": {"nesterov": "x"}}]},
            "optim.groups[0].options.nesterov: expected true or false, got str 'x'",
        ),
        (
            {"optimizer": SGD, "groups": [{"params": ["head.*"], "options": {"momentum": "x"}}]},
            "optim.groups[0].options.momentum: expected a number, got str 'x'",
        ),
        (
            {"optimizer": {"class_path": "SGD", "init_args": {"lr": 0.1, "maximize": "x"}}},
            "optim.optimizer.init_args.maximize: expected true or false, got str 'x'",
        ),
        (
            {"optimizer": {"class_path": "AdamW", "init_args": {"amsgrad": 1}}},
            "optim.optimizer.init_args.amsgrad: expected true or false, got int 1",
        ),
        (
            {"optimizer": {"class_path": "AdamW", "init_args": {"foreach": "yes"}}},
            "optim.optimizer.init_args.foreach: expected true, false or null, got str 'yes'",
        ),
        (
            {"optimizer": {"class_path": "AdamW", "init_args": {"betas": [0.9, "a"]}}},
            "optim.optimizer.init_args.betas: expected a list of 2 like [0.9, 0.999], "
            "got [0.9, 'a']",
        ),
        (
            {"optimizer": {"class_path": "LBFGS", "init_args": {"history_size": 2.5}}},
            "optim.optimizer.init_args.history_size: expected an integer, got float 2.5",
        ),
        (
            {"optimizer": {"class_path": "LBFGS", "init_args": {"line_search_fn": "x"}}},
            "optim.optimizer.init_args.line_search_fn: 'x' is not one of null, 'strong_wolfe'",
        ),
    ],
)
def test_optimizer_values_of_the_wrong_type_are_refused_statically(
    section: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: torch takes these at construction and fails at the first step
    # (a fused kernel's TypeError, "cannot unpack non-iterable float", LBFGS's "only
    # 'strong_wolfe' is supported"); `foreach: "yes"` even trained, read as true.
    assert _static_refusal(section) == message
    assert _refusal(section) == message


def test_group_options_are_tried_with_torchs_own_checks() -> None:
    # torch checks its constructor's arguments, never a group's: betas[0] = 1.5 or a
    # negative momentum in a rule's options trained silently.
    for options, message in [
        ({"betas": [1.5, 0.9]}, "Invalid beta parameter at index 0: 1.5"),
        ({"momentum": -1}, "Invalid momentum value: -1"),
    ]:
        optimizer = "AdamW" if "betas" in options else SGD
        section = {"optimizer": optimizer, "groups": [{"params": ["head.*"], "options": options}]}
        name = "AdamW" if "betas" in options else "SGD"
        expected = f"optim.groups[0].options: {name} refuses them: {message}"
        assert _static_refusal(section) == expected
        assert _refusal(section) == expected
    # in range: the group gets them
    section = {"optimizer": SGD, "groups": [{"params": ["head.*"], "options": {"momentum": 0.5}}]}
    config = OptimConfig.from_dict(section)
    [built] = build(Tiny(), config, lambda _: RunPlan.of(config, LOOPS[0]))
    momenta = {g["name"]: g["momentum"] for g in built.optimizer.param_groups}
    assert momenta == {"group0": 0.5, "default": 0.9}


@pytest.mark.parametrize(
    "section",
    [
        {"optimizer": "AdamW", "groups": [{"params": ["head.*"], "optimizer": "LBFGS"}]},
        {"optimizer": "LBFGS", "groups": [{"params": ["head.*"], "optimizer": "SGD"}]},
        {
            "optimizer": "LBFGS",
            "groups": [
                {"params": ["head.*"], "optimizer": {"class_path": "LBFGS", "init_args": {"lr": 2}}}
            ],
        },
    ],
)
def test_lbfgs_beside_another_optimizer_is_refused(section: dict[str, Any]) -> None:
    # Found by fuzzing: "LBFGS.step() missing 1 required positional argument: 'closure'"
    # at the first step; the optimizer that joins several evaluates the closure once.
    key = "optim.optimizer" if section["optimizer"] == "LBFGS" else "optim.groups[0].optimizer"
    message = (
        f"{key}: LBFGS re-evaluates the loss inside its step, so it cannot share a step with "
        "the other optimizer specs of this section; use it alone as optim.optimizer (no group "
        "rule with an optimizer of its own)"
    )
    assert _static_refusal(section) == message
    assert _refusal(section) == message


def test_lbfgs_alone_trains() -> None:
    lrs = build_and_train({"optimizer": "LBFGS", "schedule": "Linear"}, LOOPS[0])
    assert [round(s["default"], 9) for s in lrs] == [round(1 - t / 12, 9) for t in range(12)]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {
                "optimizer": {"class_path": "SGD", "init_args": {"lr": 1e300}},
                "schedule": {"class_path": "Exponential", "init_args": {"gamma": 1e10}},
            },
            "optim.schedule: the lr of group 'default' passes 1e+300 at step 1 (1e+300 times "
            "factor 1e+10); lower the lr or the schedule's growth",
        ),
        (
            {
                "optimizer": {"class_path": "SGD", "init_args": {"lr": 1e-3}},
                "groups": [{"params": ["head.*"], "schedule": "Constant", "name": "head"}],
                "schedule": {"class_path": "Constant", "init_args": {"factor": 1e304}},
            },
            "optim.schedule: the lr of group 'default' passes 1e+300 at step 0 (0.001 times "
            "factor 1e+304); lower the lr or the schedule's growth",
        ),
        (
            {
                "optimizer": {"class_path": "SGD", "init_args": {"lr": 1e298}},
                "groups": [
                    {
                        "params": ["head.*"],
                        "name": "head",
                        "schedule": {"class_path": "Linear", "init_args": {"min_factor": 1e3}},
                    }
                ],
            },
            "optim.groups[0].schedule: the lr of group 'head' passes 1e+300 at step 2 (1e+298 "
            "times factor 167.5); lower the lr or the schedule's growth",
        ),
        (
            {
                "optimizer": {"class_path": "SGD", "init_args": {"lr": 10}},
                "groups": [{"params": ["head.*"], "lr_scale": 1e308}],
            },
            "optim.groups[0].lr_scale: lr 10 times lr_scale 1e+308 is inf, past 1e+300",
        ),
        (
            {
                "schedule": {
                    "class_path": "torch.optim.lr_scheduler.StepLR",
                    "init_args": {"step_size": 1, "gamma": 1e308},
                }
            },
            "optim.schedule.init_args.gamma: gamma=1e+308 takes the lr 0.001 past 1e+300 "
            "within the run (12 decays); use gamma <= 1 or a shorter run",
        ),
        (
            {
                "optimizer": {"class_path": "SGD", "init_args": {"lr": 1e290}},
                "schedule": {
                    "class_path": "torch.optim.lr_scheduler.MultiStepLR",
                    "init_args": {"milestones": [2, 4], "gamma": 1e6},
                },
            },
            "optim.schedule.init_args.gamma: gamma=1e+06 takes the lr 1e+290 past 1e+300 "
            "within the run (2 decays); use gamma <= 1 or a shorter run",
        ),
        (
            {
                "schedule": {
                    "class_path": "torch.optim.lr_scheduler.OneCycleLR",
                    "init_args": {"max_lr": 1.0, "div_factor": 1e-305},
                }
            },
            "optim.schedule.init_args: OneCycleLR makes the lr of group 'default/no_decay' 1e+305, "
            "past 1e+300",
        ),
    ],
)
def test_lrs_that_would_overflow_are_refused_when_built(
    section: dict[str, Any], message: str
) -> None:
    # Found by fuzzing: each trained with an lr of inf from some step on.
    assert _refusal(section) == message


def test_lr_scaling_past_the_largest_lr_is_refused() -> None:
    config = OptimConfig.from_dict(
        {
            "optimizer": {"class_path": "SGD", "init_args": {"lr": 1e299}},
            "lr_scaling": {"reference_batch": 1, "batch_size": 32},
        }
    )
    scale = find_batch_scale(config.lr_scaling, None, None)
    with pytest.raises(ConfigError) as info:
        build(Tiny(), config, lambda _: RunPlan.of(config, LOOPS[0]), scale=scale)
    assert str(info.value) == (
        "optim.lr_scaling: the lr 1e+299 of group 'default' times 32 is 3.2e+300, past 1e+300"
    )


def test_growth_inside_the_largest_lr_still_trains() -> None:
    # gamma > 1 is allowed where the lr stays representable: lr 1e-3 * 2 ** 12.
    section = {
        "optimizer": {"class_path": "SGD", "init_args": {"lr": 1e-3}},
        "schedule": {
            "class_path": "torch.optim.lr_scheduler.ExponentialLR",
            "init_args": {"gamma": 2.0},
        },
    }
    lrs = build_and_train(section, LOOPS[0])
    assert [s["default"] for s in lrs] == [1e-3 * 2.0**t for t in range(12)]


class _Unannotated(torch.optim.SGD):
    """A third-party optimizer without annotations: only its defaults tell the types."""

    def __init__(self, params, lr=1, decay=0, flag=False, name=None):
        super().__init__(params, lr=lr, weight_decay=decay)


def test_an_optimizer_without_annotations_is_checked_by_its_defaults() -> None:
    # A default of 1 means a number (lr: 0.5 is fine), False means true or false.
    optimizer_defaults(_Unannotated, {"lr": 0.5, "decay": 0.1, "name": "anything"})
    with pytest.raises(ConfigError) as info:
        optimizer_defaults(_Unannotated, {"flag": "yes"})
    assert (
        str(info.value) == "optim.optimizer.init_args.flag: expected true or false, got str 'yes'"
    )


@pytest.mark.parametrize(
    ("loop", "init_args", "total"),
    [
        (LOOPS[2], {"pct_start": 0.1}, 10),  # the first phase is [0, 0]: step 0 divides
        (LOOPS[2], {"pct_start": 0.1, "three_phase": True}, 10),
        (LOOPS[0], {"pct_start": 1.0}, 12),  # the last phase is [11, 11]: the last step does
    ],
)
def test_one_cycle_lr_with_a_phase_of_zero_steps_is_refused(
    loop: Any, init_args: dict[str, Any], total: int
) -> None:
    # Found by fuzzing: torch's OneCycleLR raised ZeroDivisionError when it was made
    # (pct_start * total_steps == 1) or at the scheduler step after the last optimizer
    # step, which Lightning takes (pct_start: 1).
    section = {
        "optimizer": "SGD",
        "schedule": {"class_path": "torch.optim.lr_scheduler.OneCycleLR", "init_args": init_args},
    }
    with pytest.raises(ConfigError) as info:
        build_and_train(section, loop)
    pct = init_args["pct_start"]
    assert str(info.value) == (
        f"optim.schedule.init_args.pct_start: OneCycleLR over {total} steps with pct_start "
        f"{pct:g} has a phase of 0 steps, where torch divides by zero; move pct_start so that "
        "pct_start * total_steps is neither 1 nor total_steps"
    )
    # a pct_start off those points trains through the last scheduler step
    section["schedule"]["init_args"]["pct_start"] = 0.25
    assert len(build_and_train(section, loop)) == total
