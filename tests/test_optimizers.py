"""build_optimizer: class resolution and option checks (step choice: test_step_implementation)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_optim import OptimConfig, build_optimizer
from lit_optim.lightning.callbacks import metric_keys


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


@pytest.mark.parametrize("spec", ["AdamW", "adamw", "torch.optim.AdamW", {"class_path": "AdamW"}])
def test_short_names_and_import_paths_resolve(spec):
    assert type(build_optimizer(model(), OptimConfig(optimizer=spec))) is torch.optim.AdamW


def test_lr_logger_prefix_uses_the_torch_name():
    opt = build_optimizer(model(), OptimConfig(optimizer="SGD"))
    assert opt.defaults["fused"] is True

    (entry,) = metric_keys([], [opt])
    assert entry.lr[0].startswith("lr-SGD/")


def _optimizer_classes() -> list[type[torch.optim.Optimizer]]:
    names = [n for n in dir(torch.optim) if n != "Optimizer"]
    found = [getattr(torch.optim, n) for n in names]
    found = [c for c in found if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)]
    schedulefree = pytest.importorskip("schedulefree")
    return [*found, schedulefree.AdamWScheduleFree, schedulefree.SGDScheduleFree]


def test_every_optimizer_accepts_its_own_defaults_written_as_yaml() -> None:
    # The type check reads each parameter's annotation; an optimizer's own defaults, as
    # --print_config writes them (tuples as lists), must never be refused by it.
    from lit_optim.core.optimizer_args import optimizer_defaults, signature

    classes = _optimizer_classes()
    assert len(classes) >= 15
    for cls in classes:
        written = {
            name: list(p.default) if isinstance(p.default, tuple) else p.default
            for name, p in signature(cls).items()
            if p.default is not p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        assert optimizer_defaults(cls, written) == written, cls.__name__
