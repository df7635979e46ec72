"""Bugs the fuzzer (``test_fuzz_config.py``) found, each pinned by the section that found it.

Every one of these ended in something other than a ``ConfigError`` with a key path
(a ``TypeError`` traceback, an error in the middle of training, a silent nonsense lr);
each is now refused by the validator, statically where it can be, with the key path and
what would be valid.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_fuzz_config import LOOPS, build_and_train

from lit_optim import ConfigError, OptimConfig


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
