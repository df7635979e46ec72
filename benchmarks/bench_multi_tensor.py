"""Optimizer step time: torch per-group foreach passes vs lit_optim's single pass.

Layer-wise lr decay needs one param group per (layer, decay) pair; torch runs one
multi-tensor pass per group. This prints, side by side in one process, the median step
time of each variant (interleaved in every repeat to cancel drift) as a ratio to torch
with a single group. Wall time is what the issue asks for; process CPU time is printed
next to it because it is far less sensitive to other processes sharing the machine.

    /work/venv/bin/python benchmarks/bench_multi_tensor.py [--repeats 9]

All torch variants use ``foreach=True`` (torch's multi-tensor path, its default on GPU;
on CPU torch defaults to a per-tensor loop, shown once for reference). Variants of one
model share its parameters and gradients; each has its own optimizer state.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from lit_optim.core.multi_tensor import multi_tensor_variant

Groups = list[dict[str, object]]


def small_model() -> tuple[nn.Module, list[list[nn.Parameter]]]:
    """300 x (Linear(64, 64) + LayerNorm(64)): 1,200 tensors, 300 layers."""
    layers = [nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64)) for _ in range(300)]
    return nn.Sequential(*layers), [list(layer.parameters()) for layer in layers]


class Block(nn.Module):
    """ViT-Base block parameters: qkv, proj, fc1, fc2 and two LayerNorms."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)


def vit_model(width: int = 768, depth: int = 12) -> tuple[nn.Module, list[list[nn.Parameter]]]:
    """ViT-Base-sized parameters: patch embed, cls/pos tokens, 12 blocks, norm, head.

    Layer ids as in timm's layer decay: 0 = embeddings, 1..12 = blocks; the final norm
    and the head join the last layer, so 13 layers x (decay, no decay) = 26 groups.
    """
    model = nn.Module()
    model.patch_embed = nn.Conv2d(3, width, 16, 16)
    model.cls_token = nn.Parameter(torch.zeros(1, 1, width))
    model.pos_embed = nn.Parameter(torch.zeros(1, 197, width))
    model.blocks = nn.ModuleList(Block(width) for _ in range(depth))
    model.norm = nn.LayerNorm(width)
    model.head = nn.Linear(width, 1000)
    layers = [[model.cls_token, model.pos_embed, *model.patch_embed.parameters()]]
    layers += [list(block.parameters()) for block in model.blocks]
    layers[-1] += [*model.norm.parameters(), *model.head.parameters()]
    return model, layers


def layer_decay_groups(layers: list[list[nn.Parameter]], rate: float = 0.75) -> Groups:
    """One group per (layer, decay / no decay), lr scaled by ``rate ** (depth - layer)``."""
    groups: Groups = []
    for layer_id, params in enumerate(layers):
        lr = 1e-3 * rate ** (len(layers) - 1 - layer_id)
        decay = [p for p in params if p.ndim > 1 and p.shape[:2] != (1, 1)]
        no_decay = [p for p in params if all(p is not q for q in decay)]
        groups.append({"params": decay, "lr": lr, "weight_decay": 0.05})
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def two_groups(layers: list[list[nn.Parameter]]) -> Groups:
    """Decay / no-decay groups over all layers."""
    groups = layer_decay_groups(layers, rate=1.0)
    return [
        {"params": [p for g in groups[0::2] for p in g["params"]], "weight_decay": 0.05},
        {"params": [p for g in groups[1::2] for p in g["params"]], "weight_decay": 0.0},
    ]


def timed(optimizer: torch.optim.Optimizer, steps: int) -> tuple[float, float]:
    """Wall and process-CPU seconds per ``optimizer.step()``, averaged over ``steps`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def compare(
    title: str, variants: dict[str, Callable[[], torch.optim.Optimizer]], repeats: int, steps: int
) -> None:
    """Print the median step time of each variant and its ratio to the first."""
    optimizers = {name: make() for name, make in variants.items()}
    for optimizer in optimizers.values():  # warm up: state allocation, first-step paths
        timed(optimizer, 2)
    walls: dict[str, list[float]] = {name: [] for name in optimizers}
    cpus: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(repeats):
        for name, optimizer in optimizers.items():
            wall, cpu = timed(optimizer, steps)
            walls[name].append(wall)
            cpus[name].append(cpu)
    wall_medians = {name: statistics.median(ts) for name, ts in walls.items()}
    cpu_medians = {name: statistics.median(ts) for name, ts in cpus.items()}
    wall_base, cpu_base = next(iter(wall_medians.values())), next(iter(cpu_medians.values()))
    print(f"\n{title}  (median of {repeats} repeats x {steps} steps; wall | process CPU)")
    for name in optimizers:
        groups = len(optimizers[name].param_groups)
        wall, cpu = wall_medians[name], cpu_medians[name]
        print(
            f"  {name:<42} {groups:>5} groups {wall * 1e3:9.2f} ms {wall / wall_base:5.2f}x"
            f" | {cpu * 1e3:9.2f} ms {cpu / cpu_base:5.2f}x"
        )
    del optimizers


def main() -> None:
    """Run the three comparisons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--vit-width", type=int, default=768)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    adamw = multi_tensor_variant(torch.optim.AdamW)
    sgd = multi_tensor_variant(torch.optim.SGD)
    assert adamw is not None and sgd is not None

    model, layers = small_model()
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-2
    params = list(model.parameters())
    print(f"small model: {len(params)} tensors, {sum(p.numel() for p in params):,} values")
    compare(
        "AdamW, 300 x (Linear(64,64) + LayerNorm)",
        {
            "(a) torch, 1 group": lambda: torch.optim.AdamW(params, foreach=True),
            "(b) torch, 2 groups (decay / no decay)": lambda: torch.optim.AdamW(
                two_groups(layers), foreach=True
            ),
            "(c) torch, layer decay": lambda: torch.optim.AdamW(
                layer_decay_groups(layers), foreach=True
            ),
            "(d) torch, 1 group per tensor": lambda: torch.optim.AdamW(
                [{"params": [p]} for p in params], foreach=True
            ),
            "(e) lit_optim single pass, layer decay": lambda: adamw(layer_decay_groups(layers)),
            "(f) lit_optim single pass, 1 group": lambda: adamw(params),
            "    torch, 1 group, CPU default (for-loop)": lambda: torch.optim.AdamW(params),
        },
        args.repeats,
        steps=5,
    )
    compare(
        "SGD momentum=0.9, 300 x (Linear(64,64) + LayerNorm)",
        {
            "torch, 1 group": lambda: torch.optim.SGD(params, lr=1e-3, momentum=0.9, foreach=True),
            "torch, layer decay": lambda: torch.optim.SGD(
                layer_decay_groups(layers), momentum=0.9, foreach=True
            ),
            "lit_optim single pass, layer decay": lambda: sgd(
                layer_decay_groups(layers), momentum=0.9
            ),
        },
        args.repeats,
        steps=5,
    )
    del model, layers, params

    model, layers = vit_model(width=args.vit_width)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-2
    params = list(model.parameters())
    print(f"\nViT model: {len(params)} tensors, {sum(p.numel() for p in params):,} values")
    compare(
        f"AdamW, ViT-Base-sized (width {args.vit_width}, 12 blocks)",
        {
            "torch, 1 group": lambda: torch.optim.AdamW(params, foreach=True),
            "torch, layer decay": lambda: torch.optim.AdamW(
                layer_decay_groups(layers), foreach=True
            ),
            "lit_optim single pass, layer decay": lambda: adamw(layer_decay_groups(layers)),
        },
        args.repeats,
        steps=1,
    )


if __name__ == "__main__":
    main()
