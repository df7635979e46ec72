"""Param-group building: time vs parameter count, and group count vs timm's.

1. ``build_param_groups`` time for 1k / 10k / 100k parameter tensors (ViT-named trees on
   the meta device; 3 rules + no_decay + layer decay), interleaved in one process with
   torch's own ``AdamW(params)`` constructor on the same tensors (the baseline: what any
   optimizer costs to build), median of the per-round ratios; and the growth per 10x more
   tensors (linear growth: 10x).
2. ``build_param_groups`` time with layer decay on the largest recorded Hugging Face /
   torchvision module tree (``tests/fixtures/structures/``, layer ids read from the module
   tree; no forward pass is run), against torch's ``AdamW(params)`` constructor on the same
   tensors, interleaved.
3. Group count for layer decay + no_decay on every timm architecture whose parameter
   names, shapes and ``group_matcher`` were recorded from timm 1.0.31
   (``tests/fixtures/layer_decay/*.json``, written by
   ``tests/fixtures/record_layer_decay.py``), vs the number of groups timm's
   ``param_groups_layer_decay`` made for the same model (recorded in the same files).

The step time with these groups is in ``bench_optimizer_step.py`` (against torch fused,
one group). Prints markdown rows ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_groups.py            # 1k / 10k / 100k tensors
    python benchmarks/bench_groups.py --quick    # 1k / 10k, 1 round: a smoke run
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch
from rows import interleaved, row
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_layer_decay import TIMM, fixture, layer_decay, rebuild
from test_structures import KEYS as TREES
from test_structures import fixture as tree_fixture
from test_structures import rebuild as rebuild_tree

from lit_optim.core.config import OptimConfig
from lit_optim.core.groups import build_param_groups

COMMAND = "python benchmarks/bench_groups.py"
ADAMW_DEFAULTS = {
    "lr": 1e-3,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "weight_decay": 0.05,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
    "fused": None,
}
CONFIG = OptimConfig(
    optimizer="torch.optim.AdamW",
    groups=[
        {"name": "head", "params": ["head.*"], "lr_scale": 10.0},
        {"name": "qkv", "params": [r"re:\.attn\.qkv\."], "options": {"betas": (0.9, 0.95)}},
        {"name": "norms", "modules": ["LayerNorm"], "weight_decay": 0.0},
    ],
    layer_decay={"rate": 0.75},
    summary=False,
)


class Block(nn.Module):
    """timm ViT block parameter layout: norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, device="meta")
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim, device="meta")
        self.attn.proj = nn.Linear(dim, dim, device="meta")
        self.norm2 = nn.LayerNorm(dim, device="meta")
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim, device="meta")
        self.mlp.fc2 = nn.Linear(4 * dim, dim, device="meta")


class ViT(nn.Module):
    """timm ViT parameter names, ``depth`` blocks of 12 tensors + 6 (meta device)."""

    def __init__(self, depth: int, dim: int = 2) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, device="meta"))
        self.pos_embed = nn.Parameter(torch.zeros(1, 197, dim, device="meta"))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, 16, 16, device="meta")
        self.blocks = nn.Sequential(*(Block(dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, device="meta")
        self.head = nn.Linear(dim, 1000, device="meta")


def build_time_rows(depths: list[int], rounds: int) -> list[str]:
    """Rows 1: absolute times, ratio to torch's constructor, growth per 10x."""
    sizes, seconds, ratios = [], [], []
    for depth in depths:
        model = ViT(depth)
        params = list(model.parameters())
        t = interleaved(
            {
                "torch": lambda p=params: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.05),
                "ours": lambda m=model: build_param_groups(m, CONFIG, ADAMW_DEFAULTS),
            },
            rounds,
        )
        sizes.append(len(params))
        seconds.append(t["ours"].seconds)
        ratios.append((t["ours"].ratio, t["torch"].seconds))
    growth = [b / a for a, b in itertools.pairwise(seconds)]
    largest = f"{sizes[-1] / 1000:.0f}k"
    what = " / ".join(f"{n / 1000:.0f}k" for n in sizes)
    return [
        row(
            f"build groups (3 rules + no_decay + layer decay), {largest} tensors",
            f"{seconds[-1]:.2f} s: **{ratios[-1][0]:.1f}x** (median of {rounds} rounds)",
            f"torch `AdamW(params)` constructor on the same {largest} tensors "
            f"({ratios[-1][1]:.2f} s), interleaved, same process",
            "100k < 1 s",
            COMMAND,
        ),
        row(
            f"build groups, growth from {what} tensors",
            " / ".join(f"{s:.3f} s" for s in seconds)
            + ": "
            + ", ".join(f"**{g:.1f}x**" for g in growth)
            + " per 10x",
            "the build for 10x fewer tensors in the same run (linear growth: 10x)",
            "≈ 10x (linear)",
            COMMAND,
        ),
    ]


def largest_model_row(rounds: int) -> str:
    """Row 2: the build on the recorded model with the most parameter tensors."""
    size, key = max((len(tree_fixture(k)["names"]), k) for k in TREES)
    model = rebuild_tree(tree_fixture(key))
    params = list(model.parameters())
    config = OptimConfig(optimizer="torch.optim.AdamW", layer_decay={"rate": 0.75}, summary=False)
    t = interleaved(
        {
            "torch": lambda: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05),
            "ours": lambda: build_param_groups(model, config, ADAMW_DEFAULTS),
        },
        rounds,
    )
    return row(
        f"build groups (no_decay + layer decay from the module tree), {key} ({size} tensors, "
        "the largest recorded model)",
        f"{t['ours'].seconds * 1000:.1f} ms: **{t['ours'].ratio:.1f}x** (median of {rounds} "
        "rounds)",
        f"torch `AdamW(params)` constructor on the same {size} tensors "
        f"({t['torch'].seconds * 1000:.2f} ms), interleaved, same process",
        "—",
        COMMAND,
    )


def group_count_row() -> str:
    """Row 3: our group count vs timm's recorded one on every timm fixture."""
    counts = {}
    for key in TIMM:
        record = fixture(key)
        ours = len(layer_decay(rebuild(record, with_matcher=True)).groups)
        counts[key] = (ours, record["num_groups"])
    at_most = sum(ours <= theirs for ours, theirs in counts.values())
    equal = sum(ours == theirs for ours, theirs in counts.values())
    detail = ", ".join(f"{name} {o}/{t}" for name, (o, t) in counts.items())
    versions = fixture(TIMM[0])["versions"]
    return row(
        f"groups for layer decay + no_decay (rate 0.75), {len(counts)} timm architectures "
        "rebuilt from recorded names and shapes",
        f"**≤ timm on {at_most}/{len(counts)}** (equal on {equal}); ours/timm: {detail}",
        f"timm {versions['timm']} `param_groups_layer_decay(model, weight_decay=0.05, "
        "layer_decay=0.75)` group count on the same models, recorded "
        "(`tests/fixtures/layer_decay/`)",
        "≤ timm on all",
        COMMAND,
    )


def main() -> None:
    """Print the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1k / 10k, 1 round")
    args = parser.parse_args()
    depths = [83, 833] if args.quick else [83, 833, 8333]  # 12 per block + 6: ~1k, 10k, 100k
    rows = build_time_rows(depths, 1 if args.quick else args.rounds)
    largest = largest_model_row(3 if args.quick else 5 * args.rounds)
    print(*rows, largest, group_count_row(), sep="\n", flush=True)


if __name__ == "__main__":
    main()
