"""The default optimizer step is torch's fastest, and it steps exactly like torch's for-loop.

Equality is checked step by step ("teacher forcing"): before every step both optimizers
get the same parameters, gradients and state, so what is compared is one update of one
implementation against the other, not two training runs drifting apart. Errors are
counted in ulps of the largest value the update reads or writes (the parameter before
and after, the state before and after, the gradient).
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from lit_optim import ConfigError, OptimConfig, build_optimizer, build_scheduler
from lit_optim.core import implementation
from lit_optim.core.group_registry import groups_of
from lit_optim.core.implementation import implementation_name, speed_flags

STEPS = 100


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add waiting, badly so on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_net(dtype: torch.dtype = torch.float32) -> nn.Module:
    """Layers ``0.`` .. ``5.`` (layer decay reads the index); 16+ values per weight."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 16),
        nn.LayerNorm(16),
        nn.Tanh(),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    ).to(dtype)


def config(optimizer: str, init_args: dict[str, Any]) -> OptimConfig:
    """Layer decay (7 groups) and a warmed-up cosine: every group's lr changes every step."""
    return OptimConfig(
        optimizer={"class_path": optimizer, "init_args": init_args},
        layer_decay={"rate": 0.7, "layers": r"re:^(\d+)\."},
        schedule="Cosine",
        warmup={"steps": 10},
    )


def ulps(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, *read: torch.Tensor) -> float:
    """Largest ``|a - b|`` in units in the last place of ``dtype`` at the operands' scale."""
    scale = torch.maximum(a.double().abs(), b.double().abs())
    for t in read:
        scale = torch.maximum(scale, t.double().abs())
    _, exponent = torch.frexp(scale)
    ulp = (torch.finfo(dtype).eps * torch.pow(2.0, exponent.double() - 1)).clamp_min(
        torch.finfo(dtype).tiny
    )
    return ((a.double() - b.double()).abs() / ulp).max().item()


CASES = {
    "adamw": ("AdamW", {"lr": 1e-2, "weight_decay": 0.1}),
    "adam_amsgrad_l2": ("Adam", {"lr": 1e-2, "weight_decay": 0.01, "amsgrad": True}),
    "sgd_momentum": ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    "sgd_nesterov": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "adagrad": ("Adagrad", {"lr": 0.05, "weight_decay": 0.01}),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("case", list(CASES))
def test_default_step_equals_torch_for_loop_over_100_scheduled_steps(
    case: str, dtype: torch.dtype
) -> None:
    name, init_args = CASES[case]
    nets = [make_net(dtype), make_net(dtype)]
    cfgs = [config(name, init_args), config(name, {**init_args, "foreach": False})]
    opts = [build_optimizer(net, cfg) for net, cfg in zip(nets, cfgs, strict=True)]
    scheds = [build_scheduler(o, c, total_steps=STEPS) for o, c in zip(opts, cfgs, strict=True)]
    ours, loop = opts
    fused_expected = not (name == "SGD" and dtype is torch.bfloat16 and not _fused_sgd_cpu_ok())
    assert implementation_name(ours) == ("fused" if fused_expected else "for-loop")
    assert implementation_name(loop) == "for-loop"
    assert len(ours.param_groups) >= 4  # 7 with weight decay (decay / no-decay per layer)
    seen_lrs: list[list[float]] = []
    worst_param = worst_state = 0.0
    for step in range(STEPS):
        generator = torch.Generator().manual_seed(step)
        x = torch.randn(16, 5, generator=generator).to(dtype)
        target = torch.randn(16, 3, generator=generator).to(dtype)
        loop.zero_grad()
        torch.tanh(nets[1](x) - target).pow(2).mean().backward()
        with torch.no_grad():  # same parameters, gradients and state before the step
            for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
                p.copy_(q)
                p.grad = q.grad.clone()
                for key, value in loop.state.get(q, {}).items():
                    ours.state[p][key].copy_(value)
        before = [q.detach().clone() for q in nets[1].parameters()]
        state_before = [copy.deepcopy(loop.state.get(q, {})) for q in nets[1].parameters()]
        lrs = [[g["lr"] for g in o.param_groups] for o in opts]
        assert lrs[0] == lrs[1]  # what ScheduleLR set is what each step reads
        seen_lrs.append(lrs[0])
        ours.step()
        loop.step()
        for p, q, p0, s0 in zip(
            nets[0].parameters(), nets[1].parameters(), before, state_before, strict=True
        ):
            worst_param = max(worst_param, ulps(p, q, dtype, p0))
            for key, value in loop.state[q].items():
                if key != "step":
                    read = s0.get(key, value)
                    worst_state = max(
                        worst_state, ulps(ours.state[p][key], value, dtype, read, q.grad)
                    )
        for sched in scheds:
            sched.step()
    # every group's lr changed at every step, and the fused kernel followed it
    assert all(
        a != b for prev, cur in itertools.pairwise(seen_lrs) for a, b in zip(prev, cur, strict=True)
    )
    # a few roundings apart: torch's for-loop rounds after each of its ops, fused once
    assert worst_param <= 4.0, worst_param
    assert worst_state <= 1.0, worst_state


def test_default_step_trains_like_the_for_loop_in_float32() -> None:
    """Free-running: 100 steps of both stay within float32 rounding of each other."""
    name, init_args = CASES["adamw"]
    results = []
    for extra in ({}, {"fused": False}):
        net = make_net()
        cfg = config(name, {**init_args, **extra})
        opt = build_optimizer(net, cfg)
        sched = build_scheduler(opt, cfg, total_steps=STEPS)
        for step in range(STEPS):
            generator = torch.Generator().manual_seed(step)
            x, target = (
                torch.randn(16, 5, generator=generator),
                torch.randn(16, 3, generator=generator),
            )
            opt.zero_grad()
            torch.tanh(net(x) - target).pow(2).mean().backward()
            opt.step()
            sched.step()
        results.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    start = torch.cat([p.detach().flatten() for p in make_net().parameters()])
    assert (results[0] - start).abs().max().item() > 0.05  # it did train
    assert (results[0] - results[1]).abs().max().item() <= 1e-6


def _fused_sgd_cpu_ok() -> bool:
    return implementation._fused_sgd_cpu_ok()


def test_fused_sgd_probe_matches_what_torch_does_in_bf16() -> None:
    """The probe's verdict is what a real fused SGD step on a bf16 layer does."""
    p = nn.Parameter(torch.full((64,), 1.0, dtype=torch.bfloat16))
    p.grad = torch.full_like(p, 0.5)
    torch.optim.SGD([p], lr=1.0, fused=True).step()
    updated = bool((p.detach() == 0.5).all())
    assert updated == _fused_sgd_cpu_ok()
    flags = speed_flags(torch.optim.SGD, {}, [p])
    assert flags == ({"fused": True} if updated else {})


def param(dtype: torch.dtype = torch.float32) -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(4, dtype=dtype))]


class MyAdamW(torch.optim.AdamW):
    """A third-party subclass: its step may not be torch's, so nothing is chosen for it."""


@pytest.mark.parametrize(
    ("cls", "init_args", "expected"),
    [
        (torch.optim.AdamW, {}, {"fused": True}),
        (torch.optim.Adam, {"fused": None, "foreach": None}, {"fused": True}),
        (torch.optim.SGD, {"momentum": 0.9}, {"fused": True}),
        (torch.optim.Adagrad, {}, {"fused": True}),
        (torch.optim.AdamW, {"foreach": False}, {}),
        (torch.optim.AdamW, {"foreach": True}, {}),
        (torch.optim.AdamW, {"fused": False}, {}),
        (torch.optim.AdamW, {"capturable": True}, {}),
        (torch.optim.AdamW, {"differentiable": True}, {}),
        (torch.optim.RMSprop, {}, {}),  # foreach only, and CPU is not a foreach device
        (torch.optim.LBFGS, {}, {}),
        (MyAdamW, {}, {}),
    ],
)
def test_speed_flags_choice(
    cls: type[torch.optim.Optimizer], init_args: dict[str, Any], expected: dict[str, bool]
) -> None:
    assert speed_flags(cls, init_args, param()) == expected


def test_no_fused_for_integer_or_complex_params_sparse_grads_or_group_choices() -> None:
    complex_param = [nn.Parameter(torch.zeros(2, dtype=torch.complex64))]
    assert speed_flags(torch.optim.AdamW, {}, complex_param) == {}
    assert speed_flags(torch.optim.SGD, {}, param(), sparse=True) == {}
    assert speed_flags(torch.optim.AdamW, {}, param(), groups=[{"foreach": False}]) == {}


def test_bf16_and_float64_params_get_fused_adamw() -> None:
    assert speed_flags(torch.optim.AdamW, {}, param(torch.bfloat16) + param(torch.float64)) == {
        "fused": True
    }


def test_sparse_embedding_keeps_torch_default_and_trains() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4, sparse=True))
    opt = build_optimizer(
        model, OptimConfig(optimizer={"class_path": "SGD", "init_args": {"lr": 0.1}})
    )
    assert opt.defaults["fused"] is None and implementation_name(opt) == "for-loop"
    before = model[0].weight.detach().clone()
    model(torch.tensor([1, 2])).sum().backward()
    opt.step()
    assert not torch.equal(before, model[0].weight.detach())


def test_explicit_settings_reach_the_optimizer_unchanged() -> None:
    net = make_net()
    opt = build_optimizer(
        net, OptimConfig(optimizer={"class_path": "AdamW", "init_args": {"foreach": True}})
    )
    assert opt.defaults["foreach"] is True and opt.defaults["fused"] is None
    assert implementation_name(opt) == "foreach"
    opt = build_optimizer(net, OptimConfig(optimizer="AdamW"))
    assert opt.defaults["fused"] is True and opt.defaults["foreach"] is None
    assert implementation_name(build_optimizer(net, OptimConfig(optimizer="LBFGS"))) is None


@pytest.mark.parametrize("direction", ["for_loop_to_default", "default_to_for_loop"])
def test_checkpoints_resume_across_implementations(direction: str) -> None:
    """A checkpoint of torch's for-loop AdamW resumes on the fused default, and back."""
    cfgs = [config("AdamW", {"lr": 1e-2, "foreach": False}), config("AdamW", {"lr": 1e-2})]
    first, second = cfgs if direction == "for_loop_to_default" else cfgs[::-1]

    def run(net: nn.Module, opt: torch.optim.Optimizer, start: int, steps: int) -> None:
        for step in range(start, start + steps):
            x = torch.randn(8, 5, generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()

    net = make_net()
    opt = build_optimizer(net, first)
    run(net, opt, 0, 10)
    saved = copy.deepcopy((net.state_dict(), opt.state_dict()))
    run(net, opt, 10, 10)
    resumed = make_net()
    resumed.load_state_dict(saved[0])
    resumed_opt = build_optimizer(resumed, second)
    resumed_opt.load_state_dict(saved[1])
    expected = "fused" if second is cfgs[1] else "for-loop"
    assert {g["fused"] or False for g in resumed_opt.param_groups} == {expected == "fused"}
    run(resumed, resumed_opt, 10, 10)
    for p, q in zip(resumed.parameters(), net.parameters(), strict=True):
        assert (p - q).abs().max().item() <= 1e-6


def test_multi_tensor_key_is_gone_with_what_to_use_instead() -> None:
    with pytest.raises(
        ConfigError, match=r"^optim.multi_tensor: removed: .*init_args.fused or foreach"
    ):
        OptimConfig.from_dict({"optimizer": "AdamW", "multi_tensor": True})


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_run_with_clipping_on_cpu(tmp_path, precision: str) -> None:
    """A real Trainer: the fused default under autocast, gradients clipped before every step.

    16-mixed runs with a CPU GradScaler (Lightning's string refuses fp16 AMP on CPU).
    """
    import lightning.pytorch as pl
    from conftest import TinyNet, loader, read_metrics, series
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.plugins import MixedPrecision

    from lit_optim import LRLogger

    clip = 0.01
    norms: list[float] = []

    class RecordNorms(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            def record(optimizer: torch.optim.Optimizer, *_: Any) -> None:
                grads = [p.grad for g in optimizer.param_groups for p in g["params"]]
                norms.append(
                    torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item()
                )

            # after the step: the grads the step used (the closure runs inside step())
            trainer.optimizers[0].register_step_post_hook(record)

    amp: dict[str, Any] = {"precision": precision}
    if precision == "16-mixed":
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
        amp = {"plugins": [MixedPrecision("16-mixed", "cpu", scaler=scaler)]}
    cfg = {
        "optimizer": {"class_path": "AdamW", "init_args": {"lr": 0.05}},
        "layer_decay": {"rate": 0.5},
        "schedule": "Cosine",
        "summary": False,
    }
    model = TinyNet(optim=cfg)
    start = [p.detach().clone() for p in model.parameters()]
    trainer = pl.Trainer(
        max_steps=16,
        gradient_clip_val=clip,
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        callbacks=[LRLogger(logging_interval="step", every_n_steps=1), RecordNorms()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **amp,
    )
    trainer.fit(model, loader(n=128))
    assert implementation_name(trainer.optimizers[0]) == "fused"
    # what the fused kernel got was unscaled and clipped
    assert len(norms) == 16
    assert max(norms) <= clip * (1 + 1e-3) and min(norms) >= clip * 0.99, norms
    assert all(
        not torch.equal(a, b.detach()) for a, b in zip(start, model.parameters(), strict=True)
    )
    rows = read_metrics(trainer.logger.log_dir)
    lr_keys = [k for k in rows[0] if k.startswith("lr-AdamW/")]
    assert len(lr_keys) >= 4
    lrs = series(rows, lr_keys[0])
    assert len(lrs) == 16 and lrs[0] > lrs[15]  # the cosine reached the optimizer every step


def test_group_table_header_names_the_implementation() -> None:
    from lit_optim.lightning.table import group_table, render

    for spec, header in [
        ("AdamW", "AdamW (fused) param groups"),
        ({"class_path": "AdamW", "init_args": {"foreach": False}}, "AdamW (for-loop) param groups"),
        ("LBFGS", "LBFGS param groups"),
    ]:
        opt = build_optimizer(make_net(), OptimConfig(optimizer=spec))
        assert render(group_table(groups_of(opt), opt)).splitlines()[0] == header


def test_print_config_shows_the_fused_choice(tmp_path, monkeypatch, capsys) -> None:
    # In this process through lit-optim's own entry (the printed config is what is tested;
    # tests/test_cli.py runs --print_config as a real lit-optim process).
    import yaml
    from conftest import ROOT

    from lit_optim.tools.main import main

    config = ROOT / "lit_optim" / "configs" / "digits_poly.yaml"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    shown = {}
    for optimizer in (
        '{"class_path": "AdamW"}',
        '{"class_path": "RMSprop"}',
        '{"class_path": "SGD", "init_args": {"foreach": false}}',
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["fit", "--config", str(config), "--optim.optimizer", optimizer, "--print_config"])
        out = capsys.readouterr().out
        assert exit_.value.code in (0, None), out
        printed = yaml.safe_load(out)["optim"]["optimizer"]
        init_args = printed["init_args"]
        shown[printed["class_path"]] = (init_args.get("fused"), init_args["foreach"])
    # RMSprop has no fused step; its foreach choice depends on the device (CUDA: torch's own)
    assert shown == {
        "torch.optim.AdamW": (True, None),
        "torch.optim.RMSprop": (None, None),
        "torch.optim.SGD": (None, False),
    }
