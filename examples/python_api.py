"""lit_optim without Lightning: param groups, optimizer and schedule in a plain loop.

python examples/python_api.py
"""

from __future__ import annotations

import torch
from torch import nn

from lit_optim import OptimConfig, build_optimizer, build_scheduler


def main() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.LayerNorm(64), nn.Linear(64, 1))
    config = OptimConfig(
        optimizer={
            "class_path": "SGD",
            "init_args": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        },
        groups=[{"name": "last", "params": ["3.*"], "lr_scale": 0.5}],
        schedule={"class_path": "Poly", "init_args": {"power": 0.9}},
        warmup={"steps": 20, "start_factor": 0.1},
    )
    optimizer = build_optimizer(model, config)
    epochs, steps_per_epoch = 5, 40
    scheduler = build_scheduler(
        optimizer, config, total_steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch
    )
    x, y = torch.randn(1280, 10), torch.randn(1280, 1)
    for epoch in range(epochs):
        for i in range(steps_per_epoch):
            xb, yb = x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32]
            loss = nn.functional.mse_loss(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()  # once per optimizer step: the schedule is in steps
        lrs = ", ".join(f"{g['name']}={g['lr']:.4g}" for g in optimizer.param_groups)
        print(f"epoch {epoch}: loss {loss.item():.4f}  lr {lrs}")


if __name__ == "__main__":
    main()
