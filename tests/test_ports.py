"""Ports from timm and Hugging Face: each recipe gives the lrs the real library recorded.

``tests/fixtures/ports/*.json`` hold the lr of every param group at every scheduler step,
recorded from timm and transformers by ``tests/fixtures/record_ports.py`` (versions inside).
Each recipe below is an ``optim:`` section (plus the run length); it is built the way a run
builds it (``OptimConfig.from_dict`` -> ``build_optimizer`` -> ``build_scheduler``) and
stepped like Lightning steps it. The table of ``docs/ports.md`` (linked from the README) is
:func:`ports_table` of :data:`ROWS`, each row naming its case ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from lit_optim import OptimConfig, build_optimizer, build_scheduler

FIXTURES = Path(__file__).parent / "fixtures" / "ports"
ROOT = Path(__file__).parent.parent
PORTS_DOC = ROOT / "docs" / "ports.md"
README = ROOT / "README.md"
CASES = {
    case["id"]: {**case, "versions": data["versions"]}
    for name in ("timm", "hf")
    for data in [json.loads((FIXTURES / f"{name}.json").read_text())]
    for case in data["cases"]
}


def cosine(**init_args: Any) -> dict[str, Any]:
    return {"class_path": "Cosine", "init_args": init_args}


def timm_warmup_then(
    lr: float, warmup_lr_init: float, warmup_t: int, then: dict, shift: bool = True
) -> dict:
    """A schedule: timm's absolute warmup_lr_init ramping to 1, then ``then``.

    ``shift`` is timm's ``warmup_prefix``: ``then`` counts from the warmup's end, or (false)
    from step 0, the warmup covering its first steps.
    """
    ramp = {"start_factor": warmup_lr_init / lr, "min_factor": 1.0, "total": warmup_t}
    return {
        "class_path": "Sequence",
        "init_args": {
            "schedules": [{"class_path": "Linear", "init_args": ramp}, then],
            "boundaries": [warmup_t],
            "shift": shift,
        },
    }


def absolute_lr_min_groups(shift: bool) -> dict[str, Any]:
    """timm cosine, groups with their own lr, absolute lr_min 1e-4 and warmup_lr_init 1e-5."""
    return {
        "groups": [
            {
                "name": name,
                "params": [name],
                "lr": lr,
                "schedule": timm_warmup_then(lr, 1e-5, 4, cosine(min_factor=1e-4 / lr), shift),
            }
            for name, lr in (("a", 0.1), ("b", 0.01))
        ]
    }


def multistep(*milestones: int) -> dict[str, Any]:
    return {"class_path": "MultiStep", "init_args": {"milestones": list(milestones), "gamma": 0.1}}


def inverse_sqrt(timescale: int) -> dict[str, Any]:
    return {"class_path": "InverseSqrt", "init_args": {"timescale": timescale, "shift": timescale}}


#: A second group with its own lr, as in the recorded HF cases with two groups.
B = [{"name": "b", "params": ["b"], "lr": 0.01}]

#: case id -> (optim section without the optimizer, run length in scheduler steps,
#: scheduler steps per epoch).
RECIPES: dict[str, tuple[dict[str, Any], int, int]] = {
    # timm: warmup_t=W, warmup_lr_init=w, lr_min=m for an lr of 0.1 -> relative factors.
    "timm-cosine-warmup-prefix": (
        {"schedule": cosine(min_factor=0.01), "warmup": {"steps": 5, "start_factor": 1e-3}},
        45,  # warmup_prefix=True: the run is warmup_t + t_initial
        1,
    ),
    "timm-cosine-warmup-overlap": (
        {
            "schedule": cosine(min_factor=0.01),
            "warmup": {"steps": 5, "start_factor": 1e-3, "overlap": True},
        },
        50,
        1,
    ),
    # warmup_prefix=False (timm's default): the cosine runs from step 0 under the ramp
    "timm-cosine-absolute-lr-min-groups": (absolute_lr_min_groups(shift=False), 30, 1),
    # warmup_prefix=True: the cosine starts after the ramp; the run is warmup_t + t_initial
    "timm-cosine-absolute-lr-min-groups-prefix": (absolute_lr_min_groups(shift=True), 34, 1),
    "timm-cosine-no-warmup": ({"schedule": cosine(min_factor=0.01)}, 40, 1),
    "timm-cosine-lr-scale-groups": (
        {  # timm scales lr_min and warmup_lr_init by lr_scale too: plain relative factors
            "groups": [{"name": "b", "params": ["b"], "lr_scale": 0.25}],
            "schedule": cosine(min_factor=1e-3),
            "warmup": {"steps": 4, "start_factor": 1e-4},
        },
        34,
        1,
    ),
    "timm-cosine-cycle-limit": (
        {
            "schedule": {
                "class_path": "CosineRestarts",
                "init_args": {"period": 10, "decay": 0.5, "cycles": 3, "min_factor": 0.01},
            }
        },
        40,
        1,
    ),
    "timm-cosine-cycle-mul-2": (
        {
            "schedule": {
                "class_path": "CosineRestarts",
                "init_args": {"period": 6, "period_mult": 2, "cycles": 3, "min_factor": 0.01},
            }
        },
        50,
        1,
    ),
    "timm-cosine-cycle-mul-fractional": (
        {
            "schedule": {
                "class_path": "CosineRestarts",
                "init_args": {
                    "period": 10,
                    "period_mult": 1.5,
                    "decay": 0.8,
                    "cycles": 4,
                    "min_factor": 0.01,
                },
            }
        },
        90,
        1,
    ),
    "timm-cosine-fractional-period": (
        {
            "schedule": {
                "class_path": "CosineRestarts",
                "init_args": {"period": 7.5, "cycles": 4, "min_factor": 0.01},
            }
        },
        35,
        1,
    ),
    "timm-cosine-k-decay": ({"schedule": cosine(min_factor=0.01, k_decay=2.0)}, 30, 1),
    "timm-step-warmup": (
        {  # absolute warmup_lr_init with groups of their own lr: one ramp per group
            "groups": [
                {
                    "name": name,
                    "params": [name],
                    "lr": lr,
                    "schedule": timm_warmup_then(
                        lr,
                        1e-3,
                        2,
                        {"class_path": "Step", "init_args": {"step_size": 3, "gamma": 0.5}},
                    ),
                }
                for name, lr in (("a", 0.1), ("b", 0.01))
            ]
        },
        20,
        1,
    ),
    "timm-step-warmup-overlap": (
        {  # warmup_prefix=False: the steps count from 0, the ramp covers the first ones
            "groups": [
                {
                    "name": name,
                    "params": [name],
                    "lr": lr,
                    "schedule": timm_warmup_then(
                        lr,
                        1e-3,
                        2,
                        {"class_path": "Step", "init_args": {"step_size": 3, "gamma": 0.5}},
                        shift=False,
                    ),
                }
                for name, lr in (("a", 0.1), ("b", 0.01))
            ]
        },
        20,
        1,
    ),
    "timm-step-fractional-decay-t": (
        {"schedule": {"class_path": "Step", "init_args": {"step_size": 2.5, "gamma": 0.5}}},
        20,
        1,
    ),
    # timm decays one step before torch: milestones are decay_t - 1 (after the warmup;
    # MultiStepLRScheduler's warmup_prefix defaults to True)
    "timm-multistep": ({"schedule": multistep(4, 11), "warmup": {"steps": 2}}, 20, 1),
    "timm-multistep-overlap": (
        {"schedule": multistep(4, 11), "warmup": {"steps": 2, "overlap": True}},
        20,
        1,
    ),
    # decay_t=[1, 6]: decayed from the warmup's end; a warmup ramps to the schedule's first
    # value (here already decayed), timm's to the lr: the ramp is a Sequence's first piece
    "timm-multistep-first-milestone-1": (
        {"schedule": timm_warmup_then(0.1, 0.0, 2, multistep(0, 5))},
        12,
        1,
    ),
    "timm-poly-k-decay": (
        {
            "schedule": {
                "class_path": "Poly",
                "init_args": {"power": 2.0, "min_factor": 0.01, "k_decay": 1.5},
            }
        },
        30,
        1,
    ),
    "timm-wsd": (
        {
            "schedule": {
                "class_path": "WarmupStableDecay",
                "init_args": {"decay": 0.25, "min_factor": 0.01, "decay_shape": "sqrt"},
            },
            "warmup": {"steps": 5, "start_factor": 1e-3},
        },
        45,  # warmup_t + t_initial
        1,
    ),
    "timm-factory-t-in-epochs": (
        {  # t_in_epochs=True: one scheduler step per epoch
            "interval": "epoch",
            "schedule": cosine(min_factor=0.01),
            "warmup": {"epochs": 2, "start_factor": 1e-3, "overlap": True},
        },
        10,
        1,
    ),
    "timm-factory-per-update": (
        {  # step_on_epochs=False: per optimizer step, lengths in epochs x updates_per_epoch
            "interval": "step",
            "schedule": cosine(min_factor=0.01),
            "warmup": {"epochs": 2, "start_factor": 1e-3, "overlap": True},
        },
        70,
        7,
    ),
    "timm-factory-per-update-prefix": (
        {  # warmup_prefix=True: the run is (warmup_epochs + num_epochs) x updates_per_epoch
            "interval": "step",
            "schedule": cosine(min_factor=0.01),
            "warmup": {"epochs": 2, "start_factor": 1e-3},
        },
        84,
        7,
    ),
    # Hugging Face: num_warmup_steps=W -> warmup {steps: W} (from 0), then the decay.
    "hf-linear": ({"schedule": "Linear", "warmup": {"steps": 5}, "groups": B}, 50, 1),
    "hf-linear-no-warmup": ({"schedule": "Linear"}, 30, 1),
    # the Trainer's warmup ratio: ceil(0.15 * 36) = 6 warmup steps
    "hf-linear-warmup-ratio": (
        {"schedule": "Linear", "warmup": {"fraction": 0.15, "rounding": "up"}},
        36,
        1,
    ),
    "hf-constant": ({"warmup": {"steps": 5}}, 20, 1),
    "hf-cosine": ({"schedule": "Cosine", "warmup": {"steps": 5}, "groups": B}, 50, 1),
    "hf-cosine-num-cycles": ({"schedule": cosine(waves=1.5), "warmup": {"steps": 5}}, 50, 1),
    "hf-cosine-min-lr": (  # min_lr / the optimizer's lr, for every group
        {"schedule": cosine(min_factor=1e-3 / 0.1), "warmup": {"steps": 5}, "groups": B},
        50,
        1,
    ),
    "hf-cosine-hard-restarts": (
        {
            "schedule": {
                "class_path": "CosineRestarts",
                "init_args": {"period": None, "cycles": 4},
            },
            "warmup": {"steps": 4},
        },
        42,
        1,
    ),
    "hf-polynomial": (  # lr_end / the optimizer's lr
        {
            "schedule": {"class_path": "Poly", "init_args": {"power": 2.0, "min_factor": 1e-3}},
            "warmup": {"steps": 5},
            "groups": B,
        },
        50,
        1,
    ),
    # timescale defaults to num_warmup_steps, or 10_000 when that is 0
    "hf-inverse-sqrt": ({"schedule": inverse_sqrt(5), "warmup": {"steps": 5}}, 60, 1),
    "hf-inverse-sqrt-no-warmup": ({"schedule": inverse_sqrt(10_000)}, 30, 1),
    "hf-inverse-sqrt-timescale": ({"schedule": inverse_sqrt(20), "warmup": {"steps": 5}}, 60, 1),
    "hf-wsd-min-lr-ratio": (  # warmup / decay as fractions of num_training_steps
        {
            "schedule": {
                "class_path": "WarmupStableDecay",
                "init_args": {
                    "warmup": 0.1,
                    "decay": 0.2,
                    "min_factor": 0.1,
                    "decay_shape": "cosine",
                },
            },
            "groups": B,
        },
        50,
        1,
    ),
    "hf-wsd-1-sqrt": (
        {
            "schedule": {
                "class_path": "WarmupStableDecay",
                "init_args": {
                    "warmup": 0.2,
                    "decay": 0.4,
                    "min_factor": 0.05,
                    "decay_shape": "sqrt",
                    "warmup_shape": "sqrt",
                },
            }
        },
        40,
        1,
    ),
}


class TwoParams(torch.nn.Module):
    """One parameter per recorded group: ``a`` (the optimizer's lr) and ``b``."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(1))
        self.b = torch.nn.Parameter(torch.zeros(1))


def lit_optim_lrs(recipe: dict[str, Any], case: dict[str, Any], total: int, per_epoch: int):
    """The lr of each recorded group at each step, from lit_optim built as a run builds it."""
    groups = case["groups"]
    model = TwoParams()
    if len(groups) == 1:
        model.b.requires_grad_(False)
    section = {
        "optimizer": {"class_path": "SGD", "init_args": {"lr": groups[0]["lr"]}},
        "no_decay": [],
        **recipe,
    }
    optimizer = build_optimizer(model, OptimConfig.from_dict(section))
    scheduler = build_scheduler(
        optimizer, OptimConfig.from_dict(section), total_steps=total, steps_per_epoch=per_epoch
    )
    assert scheduler is not None
    by_param = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    order = [by_param[id(p)] for p in (model.a, model.b)[: len(groups)]]
    lrs = []
    for _ in range(case["steps"]):
        lrs.append([g["lr"] for g in order])
        optimizer.step()
        scheduler.step()
    return lrs


def test_every_recorded_case_has_a_recipe() -> None:
    assert set(RECIPES) == set(CASES)
    assert CASES["timm-cosine-warmup-prefix"]["versions"]["timm"]
    assert CASES["hf-cosine"]["versions"]["transformers"]


@pytest.mark.parametrize("case_id", sorted(RECIPES))
def test_recipe_gives_the_recorded_lrs(case_id: str) -> None:
    case = CASES[case_id]
    recipe, total, per_epoch = RECIPES[case_id]
    ours = lit_optim_lrs(recipe, case, total, per_epoch)
    for step, (got, want) in enumerate(zip(ours, case["lrs"], strict=True)):
        for g, (x, y) in enumerate(zip(got, want, strict=True)):
            assert abs(x - y) <= 1e-9 * abs(y) + 1e-15, (case_id, step, g, x, y)


#: The table of ``docs/ports.md``: ``(library call, optim: recipe, case ids)``. The page
#: holds exactly :func:`ports_table`, so a row cannot drift from the recipes it names
#: (print it with ``python tests/test_ports.py``).
ROWS: list[tuple[str, str, list[str]]] = [
    (
        "timm `CosineLRScheduler(t_initial, lr_min, warmup_t=W, warmup_lr_init, "
        "warmup_prefix=True)`",
        "`schedule: {class_path: Cosine, init_args: {min_factor: lr_min/lr}}`, "
        "`warmup: {steps: W, start_factor: warmup_lr_init/lr}`, run `W + t_initial`; "
        "`W = 0`: no `warmup`",
        ["timm-cosine-warmup-prefix", "timm-cosine-no-warmup"],
    ),
    (
        "timm cosine, `warmup_prefix=False` (its default: the warmup overlaps the decay)",
        "as above with `warmup: {..., overlap: true}`, run `t_initial`",
        ["timm-cosine-warmup-overlap"],
    ),
    (
        "timm cosine, groups with their own `lr`, absolute `lr_min` / `warmup_lr_init`",
        "per group `lr: lr_g`, `schedule: {class_path: Sequence, init_args: {shift: P, "
        "boundaries: [W], schedules: [{class_path: Linear, init_args: {start_factor: "
        "warmup_lr_init/lr_g, min_factor: 1, total: W}}, {class_path: Cosine, init_args: "
        "{min_factor: lr_min/lr_g}}]}}` with `P` = timm's `warmup_prefix`: `false` (its "
        "default; run `t_initial`) or `true` (run `W + t_initial`)",
        ["timm-cosine-absolute-lr-min-groups", "timm-cosine-absolute-lr-min-groups-prefix"],
    ),
    (
        "timm cosine with `lr_scale` groups",
        "groups with `lr_scale`, one global schedule and warmup as in the first row",
        ["timm-cosine-lr-scale-groups"],
    ),
    (
        "timm cosine `cycle_limit=N, cycle_decay=d`",
        "`CosineRestarts: {period: t_initial, cycles: N, decay: d, min_factor: lr_min/lr}`",
        ["timm-cosine-cycle-limit"],
    ),
    (
        "timm cosine `cycle_mul=2`",
        "`CosineRestarts: {period: t_initial, period_mult: 2, cycles: N, ...}`",
        ["timm-cosine-cycle-mul-2"],
    ),
    (
        "timm cosine fractional `cycle_mul=1.5`",
        "`CosineRestarts: {period_mult: 1.5, ...}`",
        ["timm-cosine-cycle-mul-fractional"],
    ),
    (
        "timm cosine fractional `t_initial=7.5`",
        "`CosineRestarts: {period: 7.5, cycles: N, ...}`",
        ["timm-cosine-fractional-period"],
    ),
    (
        "timm cosine `k_decay=k`",
        "`Cosine: {min_factor: lr_min/lr, k_decay: k}`",
        ["timm-cosine-k-decay"],
    ),
    (
        "timm `StepLRScheduler(decay_t, decay_rate, warmup_t, warmup_lr_init)`, groups with "
        "own `lr`",
        "per group `schedule: {class_path: Sequence, init_args: {shift: P, boundaries: [W], "
        "schedules: [{class_path: Linear, init_args: {start_factor: warmup_lr_init/lr_g, "
        "min_factor: 1, total: W}}, {class_path: Step, init_args: {step_size: decay_t, gamma: "
        "decay_rate}}]}}`, `P` = `warmup_prefix` (`true`, its default, or `false`)",
        ["timm-step-warmup", "timm-step-warmup-overlap"],
    ),
    (
        "timm step, fractional `decay_t=2.5`",
        "`Step: {step_size: 2.5, gamma: decay_rate}`",
        ["timm-step-fractional-decay-t"],
    ),
    (
        "timm `MultiStepLRScheduler(decay_t=[m1, m2], warmup_t=W)` (decays one step before torch)",
        "`MultiStep: {milestones: [m1 - 1, m2 - 1]}` + `warmup: {steps: W}` "
        "(`warmup_prefix=True`, its default) or `warmup: {steps: W, overlap: true}` "
        "(`warmup_prefix=False`). `m1 = 1` decays from the warmup's end, but a `warmup` "
        "ramps to the schedule's first value: write the ramp as a `Sequence` piece instead, "
        "`{class_path: Sequence, init_args: {boundaries: [W], schedules: [{class_path: "
        "Linear, init_args: {start_factor: warmup_lr_init/lr, min_factor: 1, total: W}}, "
        "{class_path: MultiStep, init_args: {milestones: [0, m2 - 1]}}]}}`",
        ["timm-multistep", "timm-multistep-overlap", "timm-multistep-first-milestone-1"],
    ),
    (
        "timm `PolyLRScheduler(power, lr_min, k_decay)`",
        "`Poly: {power, min_factor: lr_min/lr, k_decay}`",
        ["timm-poly-k-decay"],
    ),
    (
        "timm `WSDLRScheduler(t_initial, decay_t, lr_min, warmup_t, warmup_lr_init)`",
        "`WarmupStableDecay: {decay: decay_t/t_initial, min_factor: lr_min/lr, decay_shape: "
        "sqrt}` + `warmup: {steps: W, start_factor: ...}`, run `W + t_initial`",
        ["timm-wsd"],
    ),
    (
        "timm `create_scheduler_v2(..., step_on_epochs=True)` (`t_in_epochs`)",
        "`interval: epoch`, lengths in epochs (`warmup: {epochs: ..., overlap: true}`)",
        ["timm-factory-t-in-epochs"],
    ),
    (
        "timm `create_scheduler_v2(..., step_on_epochs=False, updates_per_epoch=n)`",
        "`interval: step`, `warmup: {epochs: ..., overlap: true}` (with `warmup_prefix=True`: "
        "no `overlap`, run `(warmup_epochs + num_epochs) * n`), schedule `total` left to the "
        "run (or steps = epochs * n)",
        ["timm-factory-per-update", "timm-factory-per-update-prefix"],
    ),
    (
        "HF `get_linear_schedule_with_warmup(W, T)`",
        "`schedule: Linear`, `warmup: {steps: W}` (`W = 0`: no `warmup`); the Trainer's "
        "warmup ratio `r` (`warmup_steps < 1`, `ceil(r * T)` steps): "
        "`warmup: {fraction: r, rounding: up}`",
        ["hf-linear", "hf-linear-no-warmup", "hf-linear-warmup-ratio"],
    ),
    ("HF `get_constant_schedule_with_warmup(W)`", "`warmup: {steps: W}`", ["hf-constant"]),
    (
        "HF `get_cosine_schedule_with_warmup(W, T)`",
        "`schedule: Cosine`, `warmup: {steps: W}`",
        ["hf-cosine"],
    ),
    ("HF cosine `num_cycles=c`", "`Cosine: {waves: c}`", ["hf-cosine-num-cycles"]),
    (
        "HF `get_cosine_with_min_lr_schedule_with_warmup(min_lr=m)`",
        "`Cosine: {min_factor: m/lr}` (`min_lr_rate` as is), every group",
        ["hf-cosine-min-lr"],
    ),
    (
        "HF `get_cosine_with_hard_restarts_schedule_with_warmup(num_cycles=N)`",
        "`CosineRestarts: {period: null, cycles: N}`",
        ["hf-cosine-hard-restarts"],
    ),
    (
        "HF `get_polynomial_decay_schedule_with_warmup(lr_end, power)`",
        "`Poly: {power, min_factor: lr_end/lr}`",
        ["hf-polynomial"],
    ),
    (
        "HF `get_inverse_sqrt_schedule(W, timescale=s)` (`s` defaults to `W`, or 10000 when "
        "`W = 0`)",
        "`InverseSqrt: {timescale: s, shift: s}`, `warmup: {steps: W}` (`W = 0`: no `warmup`)",
        ["hf-inverse-sqrt", "hf-inverse-sqrt-timescale", "hf-inverse-sqrt-no-warmup"],
    ),
    (
        "HF `get_wsd_schedule(W, D, T, min_lr_ratio=r, decay_type=cosine)`",
        "`WarmupStableDecay: {warmup: W/T, decay: D/T, min_factor: r, decay_shape: cosine}`",
        ["hf-wsd-min-lr-ratio"],
    ),
    (
        'HF WSD `warmup_type="1-sqrt"`, `decay_type="1-sqrt"`',
        "`WarmupStableDecay: {..., warmup_shape: sqrt, decay_shape: sqrt}`",
        ["hf-wsd-1-sqrt"],
    ),
]


def ports_table() -> str:
    """The ports table of ``docs/ports.md``, one row per :data:`ROWS` entry."""
    lines = ["| timm / HF | `optim:` | cases |", "|---|---|---|"]
    for library, recipe, ids in ROWS:
        lines.append(f"| {library} | {recipe} | {', '.join(f'`{i}`' for i in ids)} |")
    return "\n".join(lines)


def test_every_recipe_is_in_exactly_one_row() -> None:
    ids = [i for _, _, row_ids in ROWS for i in row_ids]
    assert sorted(ids) == sorted(RECIPES)


def test_ports_page_table_is_the_rows_word_for_word() -> None:
    page = PORTS_DOC.read_text()
    assert f"\n{ports_table()}\n\n" in page
    versions = {**CASES["timm-cosine-no-warmup"]["versions"], **CASES["hf-cosine"]["versions"]}
    assert f"timm {versions['timm']} and\ntransformers {versions['transformers']}" in page


def test_readme_counts_the_rows_and_cases_it_links_to() -> None:
    section = README.read_text().split("### Coming from timm / Hugging Face", 1)[1]
    assert f"({len(ROWS)} rows, {len(RECIPES)}\nrecorded cases" in section
    assert "[docs/ports.md](docs/ports.md)" in section


if __name__ == "__main__":
    print(ports_table())
