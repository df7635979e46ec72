"""Per-step cost of the scheduler at 600 param groups: ScheduleLR vs torch ``LambdaLR``.

Both schedule the same 600 groups (1,200 small tensors, layer-decay-like lrs) with the
same warmup + cosine factor; ``LambdaLR`` gets one lambda per group (one shared function,
as users write it), ScheduleLR one ``lit_optim`` schedule built from config. Only
``scheduler.step()`` is timed (no optimizer step). Runs alternate A/B in one process and
the median of the per-round ratios is printed (baseline: torch ``LambdaLR``).

    python benchmarks/bench_scheduler.py
"""

from __future__ import annotations

import math
import statistics
import time
import warnings

import torch

from lit_optim import OptimConfig, build_optimizer, build_scheduler

GROUPS, STEPS, ROUNDS, WARMUP = 600, 2_000, 9, 100
TOTAL = ROUNDS * STEPS * 2 + 10


class Many(torch.nn.Module):
    """``blocks.N`` of two tensors each: one group per block under layer decay."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(GROUPS))


CONFIG = OptimConfig(
    optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}},
    no_decay=[],
    layer_decay={"rate": 0.999},
    schedule="Cosine",
    warmup={"steps": WARMUP},
)


def factor(step: int) -> float:
    """The same warmup + cosine as CONFIG, written as users write a LambdaLR lambda."""
    if step < WARMUP:
        return step / WARMUP
    return 0.5 * (1 + math.cos(math.pi * min(step - WARMUP, TOTAL - WARMUP) / (TOTAL - WARMUP)))


def schedulers() -> tuple[torch.optim.lr_scheduler.LRScheduler, ...]:
    model = Many()
    ours_opt = build_optimizer(model, CONFIG)
    ours = build_scheduler(ours_opt, CONFIG, total_steps=TOTAL)
    groups = [
        {"params": g["params"], "lr": g["lr"]} for g in build_optimizer(model, CONFIG).param_groups
    ]
    torch_opt = torch.optim.SGD(groups, lr=0.1)
    theirs = torch.optim.lr_scheduler.LambdaLR(torch_opt, [factor] * len(groups))
    assert len(ours_opt.param_groups) == len(torch_opt.param_groups) == GROUPS
    return ours, theirs


def per_step(scheduler: torch.optim.lr_scheduler.LRScheduler) -> float:
    start = time.perf_counter()
    for _ in range(STEPS):
        scheduler.step()
    return (time.perf_counter() - start) / STEPS


def main() -> None:
    warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
    ours, theirs = schedulers()
    per_step(ours), per_step(theirs)  # warm up
    ratios, ours_t, theirs_t = [], [], []
    for _ in range(ROUNDS):
        a, b = per_step(ours), per_step(theirs)
        ours_t.append(a)
        theirs_t.append(b)
        ratios.append(a / b)
    pairs = zip(ours.optimizer.param_groups, theirs.optimizer.param_groups, strict=True)
    apart = max(abs(a["lr"] - b["lr"]) / b["lr"] for a, b in pairs)
    print(f"{GROUPS} groups sharing one schedule, {STEPS} steps x {ROUNDS} rounds, torch "
          f"{torch.__version__}")  # fmt: skip
    print(f"  torch LambdaLR (baseline): {statistics.median(theirs_t) * 1e6:8.1f} us/step")
    print(f"  lit_optim ScheduleLR:      {statistics.median(ours_t) * 1e6:8.1f} us/step")
    print(f"  ratio (median of rounds):  {statistics.median(ratios):.3f}x of LambdaLR")
    print(f"  lrs after the run: at most {apart:.1e} apart (relative)")


if __name__ == "__main__":
    main()
