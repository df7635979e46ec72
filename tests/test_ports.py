"""Ports from timm and Hugging Face: each recipe gives the lrs the real library recorded.

``tests/fixtures/ports/*.json`` hold the lr of every param group at every scheduler step,
recorded from timm and transformers by ``tests/fixtures/record_ports.py`` (versions inside).
Each recipe below is an ``optim:`` section (plus the run length); it is built the way a run
builds it (``OptimConfig.from_dict`` -> ``build_optimizer`` -> ``build_scheduler``) and
stepped like Lightning steps it. The README table "Coming from timm / Hugging Face" lists
the same recipes, one row per case id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from lit_optim import OptimConfig, build_optimizer, build_scheduler

FIXTURES = Path(__file__).parent / "fixtures" / "ports"
README = Path(__file__).parent.parent / "README.md"
CASES = {
    case["id"]: {**case, "versions": data["versions"]}
    for name in ("timm", "hf")
    for data in [json.loads((FIXTURES / f"{name}.json").read_text())]
    for case in data["cases"]
}


def cosine(**init_args: Any) -> dict[str, Any]:
    return {"class_path": "Cosine", "init_args": init_args}


def timm_warmup_then(lr: float, warmup_lr_init: float, warmup_t: int, then: dict) -> dict:
    """A group's own schedule: timm's absolute warmup_lr_init, then ``then`` (prefixed)."""
    ramp = {"start_factor": warmup_lr_init / lr, "min_factor": 1.0, "total": warmup_t}
    return {
        "class_path": "Sequence",
        "init_args": {
            "schedules": [{"class_path": "Linear", "init_args": ramp}, then],
            "boundaries": [warmup_t],
        },
    }


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
    "timm-cosine-absolute-lr-min-groups": (
        {
            "groups": [
                {
                    "name": name,
                    "params": [name],
                    "lr": lr,
                    "schedule": {
                        "class_path": "Sequence",
                        "init_args": {
                            "shift": False,  # warmup_prefix=False: the cosine starts at 0
                            "boundaries": [4],
                            "schedules": [
                                {
                                    "class_path": "Linear",
                                    "init_args": {
                                        "start_factor": 1e-5 / lr,
                                        "min_factor": 1.0,
                                        "total": 4,
                                    },
                                },
                                cosine(min_factor=1e-4 / lr),
                            ],
                        },
                    },
                }
                for name, lr in (("a", 0.1), ("b", 0.01))
            ]
        },
        30,
        1,
    ),
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
    "timm-step-fractional-decay-t": (
        {"schedule": {"class_path": "Step", "init_args": {"step_size": 2.5, "gamma": 0.5}}},
        20,
        1,
    ),
    "timm-multistep": (
        {  # timm decays one step before torch: milestones are decay_t - 1 (after the warmup)
            "schedule": {
                "class_path": "MultiStep",
                "init_args": {"milestones": [4, 11], "gamma": 0.1},
            },
            "warmup": {"steps": 2},
        },
        20,
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
    # Hugging Face: num_warmup_steps=W -> warmup {steps: W} (from 0), then the decay.
    "hf-linear": ({"schedule": "Linear", "warmup": {"steps": 5}, "groups": B}, 50, 1),
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
    "hf-inverse-sqrt": (  # timescale defaults to num_warmup_steps
        {
            "schedule": {"class_path": "InverseSqrt", "init_args": {"timescale": 5, "shift": 5}},
            "warmup": {"steps": 5},
        },
        60,
        1,
    ),
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


def test_readme_table_lists_every_recipe() -> None:
    text = README.read_text()
    section = text.split("### Coming from timm / Hugging Face", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|.*\|\s*`((?:timm|hf)-[a-z0-9-]+)`\s*\|$", section, flags=re.M)
    assert sorted(rows) == sorted(RECIPES)
