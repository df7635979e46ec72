"""Per-step cost of the scheduler at 600 param groups: ScheduleLR vs torch ``LambdaLR``.

Both schedule the same 600 groups (1,200 small tensors, layer-decay lrs) with the same
warmup + cosine factor; ``LambdaLR`` gets one lambda per group (one shared function, as
users write it), ScheduleLR one lit_optim schedule built from config. Only
``scheduler.step()`` is timed (no optimizer step). Rounds alternate A/B, B/A in one process
and the figure is the median of the per-round ratios (baseline: torch ``LambdaLR``).
Prints one markdown row ``| what | figure | baseline | target | command |``.

    python benchmarks/bench_scheduler.py            # 9 rounds of 2,000 steps each
    python benchmarks/bench_scheduler.py --quick    # smoke run, figures meaningless
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable

import torch
from rows import interleaved, row

from lit_optim import OptimConfig, build_optimizer, build_scheduler

GROUPS, WARMUP = 600, 100
COMMAND = "python benchmarks/bench_scheduler.py"


class Many(torch.nn.Module):
    """``blocks.N`` of two tensors each: one group per block under layer decay."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(GROUPS))


def schedulers(total: int) -> tuple[torch.optim.lr_scheduler.LRScheduler, ...]:
    """ScheduleLR from config and LambdaLR on a copy of the same groups."""
    config = OptimConfig(
        optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}},
        no_decay=[],
        layer_decay={"rate": 0.999},
        schedule="Cosine",
        warmup={"steps": WARMUP},
        summary=False,
    )

    def factor(step: int) -> float:  # the same warmup + cosine, as users write a lambda
        if step < WARMUP:
            return step / WARMUP
        return 0.5 * (1 + math.cos(math.pi * min(step - WARMUP, total - WARMUP) / (total - WARMUP)))

    model = Many()
    ours = build_scheduler(build_optimizer(model, config), config, total_steps=total)
    groups = [{"params": g["params"], "lr": g["lr"]} for g in ours.optimizer.param_groups]
    theirs_opt = torch.optim.SGD(groups, lr=0.1)
    for g, ours_g in zip(theirs_opt.param_groups, ours.optimizer.param_groups, strict=True):
        g["initial_lr"] = ours_g["initial_lr"]  # LambdaLR scales these, as ScheduleLR does
    theirs = torch.optim.lr_scheduler.LambdaLR(theirs_opt, [factor] * len(groups))
    if len(theirs_opt.param_groups) != GROUPS:
        raise SystemExit(f"expected {GROUPS} groups, got {len(theirs_opt.param_groups)}")
    return ours, theirs


def main() -> None:
    """Print the row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=2_000, help="scheduler steps per round")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 20 steps")
    args = parser.parse_args()
    rounds, steps = (2, 20) if args.quick else (args.rounds, args.steps)
    warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
    ours, theirs = schedulers(total=WARMUP + (rounds + 1) * steps + 10)

    def stepping(scheduler: torch.optim.lr_scheduler.LRScheduler) -> Callable[[], None]:
        def run() -> None:
            for _ in range(steps):
                scheduler.step()

        return run

    stepping(ours)(), stepping(theirs)()  # warm up
    t = interleaved({"LambdaLR": stepping(theirs), "ScheduleLR": stepping(ours)}, rounds)
    pairs = zip(ours.optimizer.param_groups, theirs.optimizer.param_groups, strict=True)
    apart = max(abs(a["lr"] - b["lr"]) / b["lr"] for a, b in pairs)
    us = {name: timing.seconds / steps * 1e6 for name, timing in t.items()}
    print(
        row(
            f"`ScheduleLR.step()`, {GROUPS} groups sharing one warmup + cosine schedule "
            f"(lrs after the run: {'equal' if apart == 0 else f'at most {apart:.1e} apart'})",
            f"{us['ScheduleLR']:.0f} us per step: **{t['ScheduleLR'].ratio:.2f}x** "
            f"(median of {rounds} A/B rounds of {steps} steps)",
            f"torch `LambdaLR` with one lambda per group on the same groups "
            f"({us['LambdaLR']:.0f} us per step), same process, cpu",
            "≤ 0.50x",
            COMMAND,
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
