"""build_optimizer: class resolution, option checks and the multi-tensor switch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_optim import ConfigError, OptimConfig, build_optimizer, build_scheduler
from lit_optim.core.multi_tensor import MultiTensorAdamW, MultiTensorSGD
from lit_optim.lightning.callbacks import metric_keys


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


@pytest.mark.parametrize("spec", ["AdamW", "adamw", "torch.optim.AdamW", {"class_path": "AdamW"}])
def test_short_names_and_import_paths_resolve(spec):
    assert type(build_optimizer(model(), OptimConfig(optimizer=spec))) is torch.optim.AdamW


def test_multi_tensor_true_swaps_in_the_single_pass_class():
    cfg = OptimConfig(
        optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-3}},
        layer_decay={"rate": 0.5, "layers": r"re:^(\d+)\."},
        multi_tensor=True,
    )
    opt = build_optimizer(model(), cfg)
    assert type(opt) is MultiTensorAdamW
    assert opt.lit_optim_name == "AdamW"  # logs keep the lr-AdamW/<group> keys
    assert len(opt.param_groups) > 2


def test_multi_tensor_auto_keeps_unsupported_optimizers():
    cfg = OptimConfig(optimizer="Adagrad", multi_tensor="auto")
    assert type(build_optimizer(model(), cfg)) is torch.optim.Adagrad
    cfg = OptimConfig(optimizer="SGD", multi_tensor="auto")
    assert type(build_optimizer(model(), cfg)) is MultiTensorSGD


def test_multi_tensor_true_on_unsupported_optimizer_is_an_error():
    with pytest.raises(
        ConfigError, match=r"optim.multi_tensor: no single-pass implementation for Adagrad"
    ):
        build_optimizer(model(), OptimConfig(optimizer="Adagrad", multi_tensor=True))


def test_multi_tensor_training_matches_torch_with_a_schedule():
    torch.manual_seed(0)
    a, b = model().double(), model().double()
    b.load_state_dict(a.state_dict())
    results = []
    for net, flag in ((a, False), (b, True)):
        cfg = OptimConfig(
            optimizer={"class_path": "AdamW", "init_args": {"lr": 1e-2, "weight_decay": 0.1}},
            groups=[{"name": "last", "params": ["2.*"], "lr_scale": 3.0}],
            schedule="Cosine",
            warmup={"steps": 5},
            multi_tensor=flag,
        )
        opt = build_optimizer(net, cfg)
        sched = build_scheduler(opt, cfg, total_steps=50)
        g = torch.Generator().manual_seed(1)
        for _ in range(50):
            x = torch.randn(16, 4, generator=g, dtype=torch.float64)
            loss = net(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        results.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert torch.max(torch.abs(results[0] - results[1])).item() <= 1e-12


def test_lr_logger_prefix_uses_the_torch_name():
    cfg = OptimConfig(optimizer="SGD", multi_tensor=True)
    opt = build_optimizer(model(), cfg)

    (entry,) = metric_keys([], [opt])
    assert entry.lr[0].startswith("lr-SGD/")
