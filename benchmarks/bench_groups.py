"""Param-group building: time vs. parameter count, group count and AdamW step time on a ViT-B.

Everything is measured side by side in one run:

1. ``build_param_groups`` time for 1k / 10k / 100k parameter tensors (ViT-named trees on the
   meta device, rules + no_decay + layer decay all on), median of repeats, and the ratio per
   10x more tensors (linear growth -> ~10).
2. Group count for layer decay + no_decay on a 12-block ViT-Base-shaped model, ours vs.
   timm's ``param_groups_layer_decay`` (2 groups per layer id: 2 * (12 + 2)).
3. AdamW step time with our groups vs. one single group on that model (median of
   interleaved repeats), for the default implementation and for ``foreach=True``.

Run: ``python benchmarks/bench_groups.py`` (about a minute on a laptop CPU).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from lit_optim.core.config import OptimConfig
from lit_optim.core.groups import build_param_groups

Clock = Callable[[], float]

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


class Attention(nn.Module):
    def __init__(self, dim: int, device: str) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, device=device)
        self.proj = nn.Linear(dim, dim, device=device)


class Mlp(nn.Module):
    def __init__(self, dim: int, device: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim, device=device)
        self.fc2 = nn.Linear(4 * dim, dim, device=device)


class Block(nn.Module):
    def __init__(self, dim: int, device: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, device=device)
        self.attn = Attention(dim, device)
        self.norm2 = nn.LayerNorm(dim, device=device)
        self.mlp = Mlp(dim, device)


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, device: str) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 16, 16, device=device)


class ViT(nn.Module):
    """Parameter names and shapes of timm's ``vit_base_patch16_224`` (depth, dim vary)."""

    def __init__(self, depth: int, dim: int, device: str = "cpu") -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim, device=device))
        self.pos_embed = nn.Parameter(torch.zeros(1, 197, dim, device=device))
        self.patch_embed = PatchEmbed(dim, device)
        self.blocks = nn.Sequential(*(Block(dim, device) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, device=device)
        self.head = nn.Linear(dim, 1000, device=device)


CONFIG = OptimConfig(
    optimizer="torch.optim.AdamW",
    groups=[
        {"name": "head", "params": ["head.*"], "lr_scale": 10.0},
        {"name": "qkv", "params": [r"re:\.attn\.qkv\."], "options": {"betas": (0.9, 0.95)}},
        {"name": "norms", "modules": ["LayerNorm"], "weight_decay": 0.0},
    ],
    layer_decay={"rate": 0.75},
)


def median_time(fn: Callable[[], object], repeats: int, clock: Clock = time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def bench_build_time() -> None:
    print("1. build_param_groups time (3 rules + no_decay + layer decay, ViT-named tree)")
    print(
        f"   {'tensors':>8} {'wall s':>8} {'cpu s':>8} {'cpu us/tensor':>14} {'cpu x per 10x':>14}"
    )
    previous = None
    for depth in (83, 833, 8333):  # 12 tensors per block + 6 -> ~1k, 10k, 100k
        model = ViT(depth=depth, dim=2, device="meta")
        n = sum(1 for _ in model.parameters())
        repeats = 5 if n < 50_000 else 3

        def run(m: nn.Module = model) -> object:
            return build_param_groups(m, CONFIG, ADAMW_DEFAULTS)

        wall = median_time(run, repeats)
        cpu = median_time(run, repeats, time.process_time)
        ratio = f"{cpu / previous:14.1f}" if previous else f"{'':>14}"
        print(f"   {n:>8} {wall:8.3f} {cpu:8.3f} {cpu / n * 1e6:14.2f} {ratio}")
        previous = cpu


def bench_vit_base() -> None:
    torch.manual_seed(0)
    model = ViT(depth=12, dim=768)
    config = OptimConfig(optimizer="torch.optim.AdamW", layer_decay={"rate": 0.75})
    pg = build_param_groups(model, config, ADAMW_DEFAULTS)
    timm_groups = 2 * (12 + 2)
    print("\n2. groups for layer decay + no_decay on a 12-block ViT-Base-shaped model")
    print(f"   ours: {len(pg.groups)}   timm (2 per layer id): {timm_groups}")
    print(f"   names: {', '.join(g['name'] for g in pg.groups[:4])}, ...")

    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    print(f"\n3. AdamW step time on that model ({n_params / 1e6:.1f}M parameters, CPU)")
    print(f"   {'impl':>14} {'ours ms':>8} {'1 group ms':>11} {'ratio':>6}")
    for foreach in (None, True):
        kw = {"foreach": foreach}
        ours = torch.optim.AdamW(pg.groups, lr=1e-3, weight_decay=0.05, **kw)
        single = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, **kw)
        ours.step()  # allocate state outside the timing
        single.step()
        t_ours, t_single = [], []
        for _ in range(5):  # interleaved, so drift hits both alike
            t_ours.append(median_time(ours.step, 1))
            t_single.append(median_time(single.step, 1))
        a, b = statistics.median(t_ours), statistics.median(t_single)
        impl = "default" if foreach is None else "foreach=True"
        print(f"   {impl:>14} {a * 1e3:8.1f} {b * 1e3:11.1f} {a / b:6.2f}")
        del ours, single


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    bench_build_time()
    bench_vit_base()
    print(f"\ntotal {time.perf_counter() - start:.0f} s (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
