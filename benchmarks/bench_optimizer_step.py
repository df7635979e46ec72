"""Optimizer step time: lit_optim from a config with no speed flags vs torch's fastest.

The baseline is torch's fastest single-group step on the same device: ``fused=True``
with every parameter in one group. lit_optim's optimizer is built by ``build_optimizer``
from an ``optim:`` config that sets layer decay and nothing about the implementation,
so what is timed is what a user gets by default. All variants of a case share the same
parameters and gradients (each has its own state) and run interleaved in one process;
a ratio is the median over rounds of a variant's time over the baseline's in the same
round (machine drift cancels out). The baseline is timed twice: the second copy's ratio
is the noise floor of the run.

One markdown row per compared variant: ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_optimizer_step.py                    # every case
    python benchmarks/bench_optimizer_step.py --case vit-adamw   # one case (see --help)
    python benchmarks/bench_optimizer_step.py --quick            # tiny models: a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lit_optim import OptimConfig, build_optimizer
from lit_optim.core.implementation import implementation_name

COMMAND = "python benchmarks/bench_optimizer_step.py --case {case}"


class Block(nn.Module):
    """timm ViT block parameter layout: norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(width, 3 * width)
        self.attn.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(width, 4 * width)
        self.mlp.fc2 = nn.Linear(4 * width, width)


class ViT(nn.Module):
    """ViT-S/16 parameters under timm's names (22.1M parameters, 152 tensors at width 384)."""

    def __init__(self, width: int = 384, depth: int = 12, classes: int = 1000) -> None:
        super().__init__()
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, width, 16, 16)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 197, width))
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)


class Small(nn.Module):
    """300 x (Linear(64, 64) + LayerNorm(64)): 1,200 small tensors, 600 layer-decay groups."""

    def __init__(self, layers: int = 300, width: int = 64) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width)) for _ in range(layers)
        )


@dataclass(frozen=True)
class Case:
    """A model and optimizer; ``init_args`` hold no implementation flag."""

    title: str
    model: Callable[[], nn.Module]
    optimizer: type[torch.optim.Optimizer]
    init_args: dict[str, float]
    steps: int
    target: str
    #: A tiny model of the same layout, for ``--quick``.
    tiny: Callable[[], nn.Module]


CASES = {
    "vit-adamw": Case("AdamW step, ViT-S-sized", ViT, torch.optim.AdamW,
                      {"lr": 1e-3, "weight_decay": 0.05}, steps=4, target="≤ 1.10x",
                      tiny=lambda: ViT(width=32, depth=2, classes=10)),
    "vit-sgd": Case("SGD momentum step, ViT-S-sized", ViT, torch.optim.SGD,
                    {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.05}, steps=4, target="≤ 1.10x",
                    tiny=lambda: ViT(width=32, depth=2, classes=10)),
    "small-adamw": Case("AdamW step, 1,200 small tensors", Small, torch.optim.AdamW,
                        {"lr": 1e-3, "weight_decay": 0.05}, steps=5, target="—",
                        tiny=lambda: Small(layers=10, width=8)),
    "small-sgd": Case("SGD momentum step, 1,200 small tensors", Small, torch.optim.SGD,
                      {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.05}, steps=5, target="—",
                      tiny=lambda: Small(layers=10, width=8)),
}  # fmt: skip


def measure(case_name: str, repeats: int, quick: bool = False) -> list[str]:
    """Time the variants of one case; return its markdown rows (tiny model if ``quick``)."""
    case = CASES[case_name]
    torch.manual_seed(0)
    model = case.tiny() if quick else case.model()
    title = f"{case.title} (--quick: a tiny model instead)" if quick else case.title
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    config = OptimConfig(
        optimizer={"class_path": case.optimizer.__name__, "init_args": case.init_args},
        layer_decay={"rate": 0.75},
        summary=False,
    )
    ours = build_optimizer(model, config)
    same_groups = [
        {"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"]}
        for g in ours.param_groups
    ]
    variants: dict[str, torch.optim.Optimizer] = {
        "torch fused, 1 group": case.optimizer(params, **case.init_args, fused=True),
        "lit_optim": ours,
        "torch fused, same groups": case.optimizer(same_groups, **case.init_args, fused=True),
        # a second, identical baseline: its ratio is the noise floor of this run
        "torch fused, 1 group (again)": case.optimizer(params, **case.init_args, fused=True),
        "torch default (for-loop on CPU), 1 group": case.optimizer(params, **case.init_args),
    }
    walls, cpus, paired = interleaved(variants, repeats, 1 if quick else case.steps)
    size = f"{sum(p.numel() for p in params) / 1e6:.1f}M params, {len(params)} tensors"
    device = params[0].device.type
    base = "torch fused, 1 group"
    baseline = (
        f"torch `fused=True`, 1 group ({walls[base] * 1e3:.1f} ms wall, "
        f"{cpus[base] * 1e3:.1f} ms CPU), same process, {device}"
    )
    command = f"`{COMMAND.format(case=case_name)}`"

    def figure(name: str, bold: bool) -> str:
        mark = "**" if bold else ""
        return (
            f"{walls[name] * 1e3:.1f} ms: {mark}{paired[name][0]:.2f}x{mark} wall, "
            f"{paired[name][1]:.2f}x CPU"
        )

    reference = "torch default (for-loop on CPU), 1 group"
    return [
        f"| {title} ({size}): lit_optim, layer decay ({len(ours.param_groups)} groups), "
        f"config without speed flags (runs {implementation_name(ours)}) "
        f"| {figure('lit_optim', True)} | {baseline} | {case.target} | {command} |",
        f"| {title}: torch fused with lit_optim's {len(ours.param_groups)} groups "
        f"(torch's own per-group cost, for reference) "
        f"| {figure('torch fused, same groups', False)} | {baseline} | — | {command} |",
        f"| {title}: the baseline timed again (noise floor of this run) "
        f"| {figure('torch fused, 1 group (again)', False)} | {baseline} | — | {command} |",
        f"| {title}: torch default implementation, 1 group (for reference) "
        f"| {figure(reference, False)} | {baseline} | — | {command} |",
    ]


def interleaved(
    variants: dict[str, torch.optim.Optimizer], repeats: int, steps: int
) -> tuple[dict[str, float], dict[str, float], dict[str, tuple[float, float]]]:
    """Time every variant in turn, ``repeats`` rounds of ``steps`` steps.

    Returns the median wall and process-CPU seconds per ``step()`` of each variant, and
    the median over rounds of its wall and CPU time divided by the first variant's in the
    same round: pairing by round cancels the machine's drift, which a ratio of medians
    keeps. CPU time is far less sensitive to other processes sharing the machine.
    """
    for optimizer in variants.values():  # state allocation and first-step paths
        optimizer.step()
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, optimizer in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                optimizer.step()
            walls[name].append((time.perf_counter() - wall) / steps)
            cpus[name].append((time.process_time() - cpu) / steps)
    median = statistics.median
    base = next(iter(variants))

    def ratio(times: dict[str, list[float]], name: str) -> float:
        return median(t / b for t, b in zip(times[name], times[base], strict=True))

    paired = {n: (ratio(walls, n), ratio(cpus, n)) for n in variants}
    return (
        {n: median(t) for n, t in walls.items()},
        {n: median(t) for n, t in cpus.items()},
        paired,
    )


def main(argv: list[str] | None = None) -> None:
    """Print the rows of the chosen cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--repeats", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, 2 rounds")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for name in CASES if args.case == "all" else [args.case]:
        for row in measure(name, 2 if args.quick else args.repeats, args.quick):
            print(row, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
