"""An optimizer per group rule (Muon for matrices, AdamW for the rest), as one optimizer."""

from __future__ import annotations

import copy
import io
import math

import lightning.pytorch as pl
import pytest
import torch
import yaml
from conftest import CONFIGS, TinyNet, config_steps, loader, read_metrics, run_cli, series
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from lit_optim import ConfigError, LRLogger, OptimConfig, build_optimizer, build_scheduler
from lit_optim.core.composite import CompositeOptimizer
from lit_optim.core.group_registry import groups_of
from lit_optim.lightning.table import group_table, render

MUON = {"class_path": "torch.optim.Muon", "init_args": {"lr": 0.02, "weight_decay": 0.01}}
ADAMW = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}}


def muon_config(**extra) -> OptimConfig:
    """Muon on the 2-D weights of the hidden blocks, AdamW (with the no-decay split) elsewhere."""
    rule = {"name": "matrices", "params": ["blocks.*"], "ndim": 2, "optimizer": MUON}
    return OptimConfig(optimizer=ADAMW, groups=[rule], **extra)


def net(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def loss_of(model: nn.Module, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    x = torch.randn(16, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return nn.functional.cross_entropy(model(x), y)


def train(model: nn.Module, optimizers: list[torch.optim.Optimizer], steps: range) -> None:
    for step in steps:
        for opt in optimizers:
            opt.zero_grad()
        loss_of(model, step).backward()
        for opt in optimizers:
            opt.step()


def test_composite_updates_equal_torch_muon_and_adamw_stepping_copies() -> None:
    model, ref = net(), net()
    opt = build_optimizer(model, muon_config())
    assert isinstance(opt, CompositeOptimizer)
    assert [g["name"] for g in opt.param_groups] == ["default", "default/no_decay", "matrices"]
    p = dict(ref.named_parameters())
    matrices = [p[f"blocks.{i}.weight"] for i in range(3)]
    decay = [p["embed.weight"], p["head.weight"]]
    rest = [t for n, t in p.items() if all(t is not m for m in matrices + decay)]
    muon = torch.optim.Muon(matrices, lr=0.02, weight_decay=0.01)
    adamw = torch.optim.AdamW(
        [{"params": decay}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, weight_decay=0.05
    )
    train(model, [opt], range(6))
    train(ref, [muon, adamw], range(6))
    moved = 0.0
    for (name, a), b in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
        moved = max(moved, (a - net().get_parameter(name)).abs().max().item())
    assert moved > 1e-3  # the comparison is not between untouched weights


def test_state_dict_round_trips_into_a_freshly_built_composite() -> None:
    model = net()
    opt = build_optimizer(model, muon_config())
    train(model, [opt], range(3))
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    twin = copy.deepcopy(model)
    fresh = build_optimizer(twin, muon_config())
    fresh.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    # torch's format over the joint groups: parameters numbered in param_groups order
    sd = opt.state_dict()
    assert [len(g["params"]) for g in sd["param_groups"]] == [2, 7, 3]
    assert sorted(sd["state"]) == list(range(12))
    assert set(sd["state"][9]) == {"momentum_buffer"}  # a Muon tensor
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    train(model, [opt], range(3, 6))
    train(twin, [fresh], range(3, 6))
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    assert fresh.param_groups[2] is fresh.optimizers[1].param_groups[0]


def test_a_scheduler_setting_group_lr_reaches_the_inner_optimizers() -> None:
    model = net()
    cfg = muon_config(schedule="Cosine")
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_steps=10)
    for _ in range(4):
        opt.step()
        sched.step()
    factor = 0.5 * (1 + math.cos(math.pi * 4 / 10))
    muon, adamw = opt.optimizers[1], opt.optimizers[0]
    assert muon.param_groups[0]["lr"] == pytest.approx(0.02 * factor, rel=1e-12)
    assert adamw.param_groups[1]["lr"] == pytest.approx(1e-3 * factor, rel=1e-12)


def test_torch_scheduler_by_class_path_drives_every_group() -> None:
    model = net()
    onecycle = "torch.optim.lr_scheduler.OneCycleLR"
    cfg = muon_config(schedule={"class_path": onecycle, "init_args": {}})
    with pytest.raises(ConfigError, match="OneCycleLR needs 'betas' in every param group"):
        build_scheduler(build_optimizer(net(), cfg), cfg, total_steps=20)
    cfg = muon_config(schedule={"class_path": onecycle, "init_args": {"cycle_momentum": False}})
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_steps=20)
    lrs = []
    for _ in range(20):
        opt.step()
        sched.step() if sched.last_epoch < 19 else None
        lrs.append([g["lr"] for g in opt.param_groups])
    peak = max(range(20), key=lambda i: lrs[i][2])
    assert lrs[peak][2] == pytest.approx(0.02, rel=1e-3)  # OneCycle's max_lr per group
    assert lrs[peak][0] == pytest.approx(1e-3, rel=1e-3)


def test_add_param_group_goes_to_the_default_or_the_named_optimizer() -> None:
    model = net()
    opt = build_optimizer(model, muon_config())
    extra_vec = nn.Parameter(torch.zeros(3))
    extra_mat = nn.Parameter(torch.zeros(3, 3))
    opt.add_param_group({"params": [extra_vec], "name": "late"})
    opt.add_param_group({"params": [extra_mat], "name": "late_matrix", "optimizer": "Muon"})
    assert [g["name"] for g in opt.param_groups][-2:] == ["late", "late_matrix"]
    assert opt.optimizer_of(opt.param_groups[-2]) is opt.optimizers[0]  # AdamW, the default
    assert opt.param_groups[-1] is opt.optimizers[1].param_groups[-1]
    assert opt.param_groups[-1]["momentum"] == 0.95  # Muon's defaults filled in
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [extra_vec]})
    with pytest.raises(ValueError, match="choose one of 0 \\(AdamW\\), 1 \\(Muon\\)"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(1))], "optimizer": "SGD"})


def test_zero_grad_state_view_and_closure_behave_as_one_optimizer() -> None:
    model = net()
    opt = build_optimizer(model, muon_config())
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        opt.zero_grad()
        loss = loss_of(model, 0)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and loss.item() > 0
    assert len(opt.state) == 12 and all(p in opt.state for p in model.parameters())
    weight = model.blocks[0].weight
    assert opt.state[weight] is opt.optimizers[1].state[weight]
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_default_no_decay_split_applies_inside_each_optimizer() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    rule = {"name": "mat", "ndim": 2, "optimizer": MUON}
    opt = build_optimizer(model, OptimConfig(optimizer=ADAMW, groups=[rule]))
    rows = {
        g["name"]: (type(opt.optimizer_of(g)).__name__, g["weight_decay"], len(g["params"]))
        for g in opt.param_groups
    }
    # the embedding matrix is 2-D (Muon) but an embedding: Muon's no-decay group
    assert rows == {
        "mat/no_decay": ("Muon", 0.0, 1),
        "mat": ("Muon", 0.01, 1),
        "default/no_decay": ("AdamW", 0.0, 3),
    }


def test_group_table_shows_each_groups_optimizer() -> None:
    opt = build_optimizer(net(), muon_config())
    lines = render(group_table(groups_of(opt), opt)).splitlines()
    assert lines[0] == "AdamW (fused)+Muon param groups"
    header = lines[2].split()
    assert header[:3] == ["group", "rule", "optimizer"]
    rows = {line.split()[0]: line.split() for line in lines[4:7]}
    assert rows["matrices"][3] == "Muon" and rows["default"][2] == "AdamW"
    # Muon's own defaults are not repeated as per-group options
    assert "nesterov" not in "\n".join(lines)


@settings(max_examples=15, deadline=None)
@given(ndims=st.sets(st.integers(0, 4), min_size=1, max_size=3))
def test_ndim_selects_exactly_the_tensors_of_those_dimension_counts(ndims: set[int]) -> None:
    shapes = [(), (3,), (3, 2), (2, 3, 1), (1, 2, 1, 2)]
    model = nn.Module()
    for i, shape in enumerate(shapes):
        model.register_parameter(f"p{i}", nn.Parameter(torch.zeros(shape)))
    rule = {"name": "picked", "ndim": sorted(ndims), "lr": 0.5}
    cfg = OptimConfig(optimizer="SGD", groups=[rule], no_decay=[])
    opt = build_optimizer(model, cfg)
    picked = [g for g in opt.param_groups if g["name"] == "picked"]
    assert picked and {p.ndim for p in picked[0]["params"]} == ndims
    assert sum(len(g["params"]) for g in opt.param_groups) == len(shapes)


# ----------------------------------------------------------------------------- errors


def test_muon_given_1d_tensors_names_rule_parameters_shapes_and_the_fix() -> None:
    rule = {"name": "matrices", "params": ["blocks.*"], "optimizer": MUON}
    with pytest.raises(ConfigError) as err:
        build_optimizer(net(), OptimConfig(optimizer=ADAMW, groups=[rule]))
    assert str(err.value) == (
        "optim.groups[0]: Muon refuses parameters of rule 'matrices': 3 tensors "
        "(blocks.0.bias (8,), blocks.1.bias (8,), blocks.2.bias (8,)); add `ndim: 2` to the "
        "rule so it takes only the tensors Muon accepts"
    )


def test_muon_as_the_only_optimizer_points_at_a_rule_with_ndim() -> None:
    with pytest.raises(ConfigError, match=r"^optim.optimizer: Muon refuses 7 tensors \(embed.bias"):
        build_optimizer(net(), OptimConfig(optimizer="torch.optim.Muon"))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"ndim": "two"}, "optim.groups[0].ndim: expected a tensor dimension count"),
        ({"ndim": -1}, "optim.groups[0].ndim: expected a tensor dimension count"),
        ({"ndim": [2, True]}, "optim.groups[0].ndim: expected a tensor dimension count"),
        ({"ndim": []}, "optim.groups[0].ndim: expected a tensor dimension count"),
        ({"ndim": 2, "optimizer": {}}, "optim.groups[0].optimizer.class_path: missing"),
        (
            {"ndim": 2, "optimizer": {"class_path": "Muon", "init_args": {"lr": "x"}}},
            "optim.groups[0].optimizer.init_args.lr: expected a number",
        ),
        (
            {"ndim": 2, "optimizer": {"class_path": "Muon", "init_args": {"betas": [0.9, 0.9]}}},
            "optim.groups[0].optimizer.init_args.betas: not an option of Muon",
        ),
        (
            {"ndim": 2, "optimizer": "Muom"},
            "optim.groups[0].optimizer: unknown optimizer 'Muom'; did you mean 'Muon'?",
        ),
        (
            {"params": ["blocks.*"], "frozen": True, "optimizer": "Muon"},
            "optim.groups[0]: a frozen group is left out of the optimizer, so optimizer",
        ),
        (
            {"params": ["norm.*"], "ndim": 2},
            "optim.groups[0].ndim: none of the 2 parameters it selects has ndim 2 (their ndims: 1)",
        ),
    ],
)
def test_bad_rule_optimizer_or_ndim_is_one_key_path_line(rule: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_optimizer(net(), OptimConfig(optimizer=ADAMW, groups=[{"name": "r", **rule}]))
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- Lightning


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_trainer_sees_one_optimizer_with_clipping_bf16_checkpoint_and_lrlogger(tmp_path) -> None:
    cfg = muon_config(schedule="Cosine", summary=False)

    def trainer(**kwargs) -> pl.Trainer:
        return pl.Trainer(
            max_steps=8,
            gradient_clip_val=0.5,
            precision="bf16-mixed",
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
            **kwargs,
        )

    first = trainer(
        logger=pl.loggers.CSVLogger(tmp_path, name="run", version=0),
        callbacks=[
            LRLogger(logging_interval="step", every_n_steps=1),
            ModelCheckpoint(every_n_train_steps=4, save_top_k=-1),
        ],
    )
    first.fit(TinyNet(optim=cfg), loader(), loader(32))
    (opt,) = first.optimizers
    assert isinstance(opt, CompositeOptimizer)
    rows = read_metrics(tmp_path / "run" / "version_0")
    muon = series(rows, "lr-AdamW+Muon/matrices")
    factors = [0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    assert sorted(muon) == list(range(8))
    assert [muon[s] for s in range(8)] == pytest.approx([0.02 * f for f in factors], rel=1e-6)
    assert series(rows, "lr-AdamW+Muon/default")[5] == pytest.approx(1e-3 * factors[5], rel=1e-6)
    # the checkpoint holds one optimizer state, in torch's format, and a new run resumes it
    ckpt = tmp_path / "run" / "version_0" / "checkpoints" / "epoch=0-step=4.ckpt"
    state = torch.load(ckpt, weights_only=True)["optimizer_states"]
    assert len(state) == 1 and len(state[0]["param_groups"]) == 3
    saved_lrs = [g["lr"] for g in state[0]["param_groups"]]
    resumed_lrs: list[list[float]] = []

    class Spy(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            resumed_lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    again = trainer(logger=False, enable_checkpointing=False, callbacks=[Spy()])
    again.fit(TinyNet(optim=cfg), loader(), ckpt_path=ckpt)
    assert again.global_step == 8
    assert resumed_lrs == [saved_lrs]


@pytest.mark.slow
def test_digits_muon_config_trains_and_lrlogger_logs_the_cosine_muon_group(tmp_path) -> None:
    cfg = yaml.safe_load((CONFIGS / "digits_muon.yaml").read_text())
    cfg["trainer"].update(max_epochs=2, enable_progress_bar=False)
    cfg["trainer"]["logger"]["init_args"].update(save_dir=str(tmp_path), version=0)
    path = tmp_path / "muon.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_cli("fit", "--config", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "matrices           groups[0] (matrices)   Muon" in proc.stdout
    rows = read_metrics(tmp_path / "digits_muon" / "version_0")
    assert max(series(rows, "val_acc").values()) >= 0.95
    muon = series(rows, "lr-AdamW+Muon/matrices")
    steps = sorted(muon)
    per_epoch, _ = config_steps(CONFIGS / "digits_muon.yaml")
    total = 2 * per_epoch  # 2 epochs, logged every step
    assert steps == list(range(total))
    # warmup 10 steps from 0.1x, then cosine to 0.1x of Muon's 0.02
    assert muon[0] == pytest.approx(0.002) and muon[10] == pytest.approx(0.02)
    t = 28
    cosine = 0.5 * (1 + math.cos(math.pi * (t - 10) / (total - 10)))
    assert muon[t] == pytest.approx(0.02 * (0.1 + 0.9 * cosine))
