"""Single-pass Adam / AdamW / SGD step exactly as torch's own optimizers do."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lit_optim.core import multi_tensor
from lit_optim.core.multi_tensor import (
    MultiTensorAdam,
    MultiTensorAdamW,
    MultiTensorSGD,
    multi_tensor_variant,
)

STEPS = 100
Spec = list[dict[str, Any]]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add waiting, badly so on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Net(nn.Module):
    """Layers of several shapes; ``late`` joins the loss at step 10, ``unused`` never does."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(5, 8)
        self.norm = nn.LayerNorm(8)
        self.hidden = nn.Linear(8, 8)
        self.late = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)
        self.unused = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        h = torch.tanh(self.norm(self.embed(x)))
        h = torch.tanh(self.hidden(h))
        if step >= 10:
            h = h + torch.tanh(self.late(h))
        return self.head(h)


def make_net(dtype: torch.dtype) -> Net:
    torch.manual_seed(0)
    return Net().to(dtype)


def split_groups(net: nn.Module, spec: Spec) -> list[dict[str, Any]]:
    """Spread the parameters round-robin over ``len(spec)`` groups with the given options."""
    params = list(net.parameters())
    spec = copy.deepcopy(spec)  # tensor options (a tensor lr) must not be shared
    return [{"params": params[i :: len(spec)], **options} for i, options in enumerate(spec)]


def train(
    net: Net,
    optimizer: torch.optim.Optimizer,
    steps: int,
    start: int = 0,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> None:
    """``steps`` steps on a bounded loss, with the lr of every group changed every step."""
    if scheduler is None:
        factors = [
            lambda s, k=k: (1 + 0.5 * k) / (1 + 0.05 * s)
            for k in range(len(optimizer.param_groups))
        ]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
    dtype = next(net.parameters()).dtype
    for step in range(start, start + steps):
        generator = torch.Generator().manual_seed(step)
        x = torch.randn(16, 5, generator=generator, dtype=dtype)
        target = torch.randn(16, 3, generator=generator, dtype=dtype)
        optimizer.zero_grad()
        torch.tanh(net(x, step) - target).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()


def flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def assert_same_params(ours: nn.Module, theirs: nn.Module) -> None:
    a, b = flat(ours), flat(theirs)
    if a.dtype == torch.float64:
        assert (a - b).abs().max().item() <= 1e-12
    else:
        assert (a - b).abs().max().item() <= 1e-6 * b.abs().max().item()


def run_both(
    torch_cls: type[torch.optim.Optimizer],
    spec: Spec,
    defaults: dict[str, Any],
    dtype: torch.dtype = torch.float64,
    steps: int = STEPS,
    torch_defaults: dict[str, Any] | None = None,
) -> tuple[Net, Net, torch.optim.Optimizer, torch.optim.Optimizer]:
    """Train the same net with torch's optimizer and with ours; return both."""
    ours_cls = multi_tensor_variant(torch_cls)
    assert ours_cls is not None
    theirs, ours = make_net(dtype), make_net(dtype)
    theirs_opt = torch_cls(split_groups(theirs, spec), **defaults, **(torch_defaults or {}))
    ours_opt = ours_cls(split_groups(ours, spec), **defaults)
    train(theirs, theirs_opt, steps)
    train(ours, ours_opt, steps)
    return ours, theirs, ours_opt, theirs_opt


ADAM_CASES = {
    "adamw": (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    "adamw_amsgrad": (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1, "amsgrad": True}),
    "adamw_maximize": (torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.1, "maximize": True}),
    "adam_l2": (torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1}),
    "adam_l2_amsgrad_maximize": (
        torch.optim.Adam,
        {"lr": 1e-3, "weight_decay": 0.1, "amsgrad": True, "maximize": True},
    ),
}
ADAM_SPEC: Spec = [
    {},
    {"weight_decay": 0.0},
    {"lr": 3e-2, "weight_decay": 0.3},
    {"betas": (0.8, 0.95), "eps": 1e-6},
]
SGD_CASES = {
    "sgd_plain": {"lr": 1e-1},
    "sgd_weight_decay": {"lr": 1e-1, "weight_decay": 0.1},
    "sgd_momentum": {"lr": 1e-1, "momentum": 0.9},
    "sgd_nesterov_weight_decay": {
        "lr": 1e-1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.1,
    },
    "sgd_dampening_maximize": {"lr": 1e-2, "momentum": 0.9, "dampening": 0.3, "maximize": True},
}
SGD_SPEC: Spec = [{}, {"weight_decay": 0.0}, {"lr": 3e-1, "weight_decay": 0.05}, {"momentum": 0.5}]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("foreach", [None, True], ids=["torch_default", "torch_foreach"])
@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam_matches_torch_over_100_scheduled_steps(
    case: str, foreach: bool | None, dtype: torch.dtype
) -> None:
    torch_cls, defaults = ADAM_CASES[case]
    ours, theirs, ours_opt, theirs_opt = run_both(
        torch_cls, ADAM_SPEC, defaults, dtype, torch_defaults={"foreach": foreach}
    )
    assert_same_params(ours, theirs)
    # `late` got grads only from step 10, `unused` never: per-tensor step counts.
    assert ours_opt.state[ours.late.weight]["step"].item() == STEPS - 10
    assert ours.unused.weight not in ours_opt.state
    assert len(ours_opt.state) == len(theirs_opt.state)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("foreach", [None, True], ids=["torch_default", "torch_foreach"])
@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_matches_torch_over_100_scheduled_steps(
    case: str, foreach: bool | None, dtype: torch.dtype
) -> None:
    spec = SGD_SPEC
    if SGD_CASES[case].get("nesterov"):  # nesterov needs momentum in every group
        spec = [{k: v for k, v in g.items() if k != "momentum"} for g in SGD_SPEC]
    ours, theirs, ours_opt, theirs_opt = run_both(
        torch.optim.SGD, spec, SGD_CASES[case], dtype, torch_defaults={"foreach": foreach}
    )
    assert_same_params(ours, theirs)
    ours_state, theirs_state = ours_opt.state_dict()["state"], theirs_opt.state_dict()["state"]
    assert ours_state.keys() == theirs_state.keys()
    for index, state in theirs_state.items():
        buf = ours_state[index]["momentum_buffer"]
        assert (buf - state["momentum_buffer"]).abs().max().item() <= 1e-6


def test_sgd_without_momentum_keeps_no_state_like_torch() -> None:
    _, _, ours_opt, theirs_opt = run_both(torch.optim.SGD, SGD_SPEC[:3], {"lr": 0.1}, steps=5)
    assert ours_opt.state_dict()["state"] == theirs_opt.state_dict()["state"] == {}


def test_state_dict_has_torch_format() -> None:
    for torch_cls, defaults in [
        (torch.optim.AdamW, {"amsgrad": True}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ]:
        _, _, ours_opt, theirs_opt = run_both(torch_cls, ADAM_SPEC[:2], defaults, steps=3)
        ours_sd, theirs_sd = ours_opt.state_dict(), theirs_opt.state_dict()
        assert ours_sd["param_groups"] == theirs_sd["param_groups"]
        assert ours_sd["state"].keys() == theirs_sd["state"].keys()
        for index, theirs_state in theirs_sd["state"].items():
            ours_state = ours_sd["state"][index]
            assert ours_state.keys() == theirs_state.keys()
            for key, value in theirs_state.items():
                assert ours_state[key].dtype == value.dtype
                assert ours_state[key].device == value.device
                assert ours_state[key].shape == value.shape


@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
@pytest.mark.parametrize(
    ("torch_cls", "defaults"),
    [
        (torch.optim.AdamW, {"lr": 1e-2, "amsgrad": True}),
        (torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ],
    ids=["adamw", "adam", "sgd"],
)
def test_checkpoint_resumes_identically_across_implementations(
    torch_cls: type[torch.optim.Optimizer], defaults: dict[str, Any], direction: str
) -> None:
    ours_cls = multi_tensor_variant(torch_cls)
    assert ours_cls is not None
    first_cls, second_cls = (
        (torch_cls, ours_cls) if direction == "torch_to_ours" else (ours_cls, torch_cls)
    )
    spec = ADAM_SPEC[:3]
    net = make_net(torch.float64)
    optimizer = first_cls(split_groups(net, spec), **defaults)
    train(net, optimizer, 30)
    checkpoint = copy.deepcopy((net.state_dict(), optimizer.state_dict()))

    # Uninterrupted run on the first implementation ...
    train(net, optimizer, 30, start=30)
    # ... and a resumed one on the other.
    resumed = make_net(torch.float64)
    resumed.load_state_dict(checkpoint[0])
    resumed_opt = second_cls(split_groups(resumed, spec), **defaults)
    resumed_opt.load_state_dict(checkpoint[1])
    train(resumed, resumed_opt, 30, start=30)
    assert_same_params(resumed, net)


@pytest.mark.parametrize(
    ("torch_cls", "defaults"),
    [(torch.optim.AdamW, {"lr": 0.05}), (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9})],
    ids=["adamw", "sgd"],
)
def test_add_param_group_mid_run_matches_torch(
    torch_cls: type[torch.optim.Optimizer], defaults: dict[str, Any]
) -> None:
    ours_cls = multi_tensor_variant(torch_cls)
    assert ours_cls is not None
    nets, opts = [], []
    for cls in (torch_cls, ours_cls):
        net = make_net(torch.float64)
        params = list(net.parameters())
        optimizer = cls(params[:6], **defaults)
        train(net, optimizer, 5)
        optimizer.add_param_group({"params": params[6:], "lr": 0.01, "weight_decay": 0.2})
        train(net, optimizer, 20, start=5)
        nets.append(net)
        opts.append(optimizer)
    assert len(opts[1].param_groups) == 2
    assert_same_params(nets[1], nets[0])


def test_closure_is_evaluated_with_grad_and_its_loss_returned() -> None:
    results = []
    for cls in (torch.optim.AdamW, MultiTensorAdamW, torch.optim.SGD, MultiTensorSGD):
        net = make_net(torch.float64)
        optimizer = cls(split_groups(net, [{}, {"lr": 0.01}]), lr=0.1)
        x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

        def closure(
            net: Net = net, optimizer: torch.optim.Optimizer = optimizer, x: torch.Tensor = x
        ) -> torch.Tensor:
            optimizer.zero_grad()
            loss = net(x, 0).pow(2).mean()
            loss.backward()
            return loss

        with torch.no_grad():  # the closure must get grad enabled, as with torch
            losses = [optimizer.step(closure).item() for _ in range(3)]
        results.append((losses, flat(net)))
    for (losses, params), (torch_losses, torch_params) in [
        (results[1], results[0]),
        (results[3], results[2]),
    ]:
        assert losses == pytest.approx(torch_losses, abs=1e-12)
        assert (params - torch_params).abs().max().item() <= 1e-12
    assert results[0][0][0] > results[0][0][-1]


@settings(max_examples=15, deadline=None)
@given(
    groups=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "lr": st.sampled_from([1e-3, 1e-2, 5e-2]),
                "weight_decay": st.sampled_from([0.0, 0.01, 0.3]),
                "betas": st.sampled_from([(0.9, 0.999), (0.8, 0.95)]),
                "eps": st.sampled_from([1e-8, 1e-5]),
                "amsgrad": st.booleans(),
                "maximize": st.booleans(),
            },
        ),
        min_size=1,
        max_size=6,
    ),
    cls=st.sampled_from([torch.optim.AdamW, torch.optim.Adam]),
)
def test_random_adam_group_configurations_match_torch(
    groups: Spec, cls: type[torch.optim.Optimizer]
) -> None:
    ours, theirs, _, _ = run_both(cls, groups, {}, steps=20)
    assert_same_params(ours, theirs)


@settings(max_examples=15, deadline=None)
@given(
    groups=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "lr": st.sampled_from([1e-2, 1e-1]),
                "weight_decay": st.sampled_from([0.0, 0.01, 0.3]),
                "momentum": st.sampled_from([0.0, 0.5, 0.9]),
                "dampening": st.sampled_from([0.0, 0.2]),
                "maximize": st.booleans(),
            },
        ),
        min_size=1,
        max_size=6,
    ),
    nesterov=st.booleans(),
)
def test_random_sgd_group_configurations_match_torch(groups: Spec, nesterov: bool) -> None:
    if nesterov:
        groups = [{**g, "momentum": 0.9, "dampening": 0.0, "nesterov": True} for g in groups]
    ours, theirs, _, _ = run_both(torch.optim.SGD, groups, {"lr": 0.05}, steps=20)
    assert_same_params(ours, theirs)


def test_groups_asking_for_torch_implementations_are_stepped_by_torch() -> None:
    # foreach=False and fused=True groups go through torch's own code, next to our pass.
    spec: Spec = [{}, {"foreach": False}, {"fused": True, "lr": 0.02}]
    for torch_cls in (torch.optim.AdamW, torch.optim.SGD):
        ours, theirs, _, _ = run_both(torch_cls, spec, {"lr": 0.01}, steps=30)
        assert_same_params(ours, theirs)


def test_tensor_lr_group_is_stepped_by_torch() -> None:
    spec: Spec = [{"lr": torch.tensor(0.01)}]
    ours, theirs, _, _ = run_both(torch.optim.SGD, spec, {"momentum": 0.9}, steps=10)
    assert_same_params(ours, theirs)


def test_complex_params_match_torch() -> None:
    results = []
    for cls in (torch.optim.AdamW, MultiTensorAdamW, torch.optim.SGD, MultiTensorSGD):
        torch.manual_seed(0)
        z = nn.Parameter(torch.randn(4, 3, dtype=torch.complex128))
        w = nn.Parameter(torch.randn(3, dtype=torch.float64))
        optimizer = cls([{"params": [z]}, {"params": [w], "lr": 0.02}], lr=0.01)
        for step in range(20):
            optimizer.zero_grad()
            ((z * (step + 1)).abs().sum() + (w**2).sum()).backward()
            optimizer.step()
        results.append(torch.cat([torch.view_as_real(z).detach().flatten(), w.detach()]))
    assert (results[1] - results[0]).abs().max().item() <= 1e-12
    assert (results[3] - results[2]).abs().max().item() <= 1e-12


def test_sparse_sgd_grads_are_stepped_by_torch() -> None:
    results = []
    for cls in (torch.optim.SGD, MultiTensorSGD):
        torch.manual_seed(0)
        embedding = nn.Embedding(10, 4, sparse=True).double()
        optimizer = cls(embedding.parameters(), lr=0.1)
        for step in range(5):
            optimizer.zero_grad()
            embedding(torch.tensor([step, step + 1])).sum().backward()
            optimizer.step()
        results.append(embedding.weight.detach().clone())
    assert torch.equal(results[0], results[1])


def test_mixed_dtypes_and_chunked_passes_match_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny chunk size splits each pass into many; float32 and float64 params in one group.
    monkeypatch.setattr(multi_tensor, "CHUNK_VALUES", 20)
    shapes = [(4, 5), (5,), (3, 3), (7,), (2, 2, 2), (30,)]
    for torch_cls, defaults in [
        (torch.optim.AdamW, {"amsgrad": True}),
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
    ]:
        results = []
        for cls in (torch_cls, multi_tensor_variant(torch_cls)):
            assert cls is not None
            torch.manual_seed(0)
            params = [
                nn.Parameter(torch.randn(shape, dtype=(torch.float64, torch.float32)[i % 2]))
                for i, shape in enumerate(shapes)
            ]
            optimizer = cls(
                [{"params": params[:3]}, {"params": params[3:], "weight_decay": 0.0, "lr": 0.02}],
                **defaults,
            )
            for step in range(30):
                optimizer.zero_grad()
                sum(torch.sin(p * (1 + 0.1 * step)).sum() for p in params).backward()
                optimizer.step()
            results.append(torch.cat([p.detach().double().flatten() for p in params]))
        assert (results[1] - results[0]).abs().max().item() <= 1e-6


def test_step_hooks_and_schedulers_see_a_normal_optimizer() -> None:
    net = make_net(torch.float64)
    optimizer = MultiTensorAdamW(split_groups(net, ADAM_SPEC[:2]), lr=0.1)
    calls: list[str] = []
    optimizer.register_step_pre_hook(lambda *_: calls.append("pre"))
    optimizer.register_step_post_hook(lambda *_: calls.append("post"))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    train(net, optimizer, 2, scheduler=scheduler)  # warnings are errors: no misuse warning
    assert calls == ["pre", "post", "pre", "post"]
    assert [g["lr"] for g in optimizer.param_groups] == [0.025, 0.025]


def variant_cases() -> list[tuple[type[torch.optim.Optimizer], type | None, str | None]]:
    class MyAdamW(torch.optim.AdamW):
        pass

    return [
        (torch.optim.AdamW, MultiTensorAdamW, "AdamW"),
        (torch.optim.Adam, MultiTensorAdam, "Adam"),
        (torch.optim.SGD, MultiTensorSGD, "SGD"),
        (MyAdamW, None, None),
        (torch.optim.RMSprop, None, None),
        (MultiTensorAdamW, None, None),
    ]


@pytest.mark.parametrize(("cls", "variant", "name"), variant_cases())
def test_variant_exists_only_for_exact_torch_classes(
    cls: type[torch.optim.Optimizer], variant: type | None, name: str | None
) -> None:
    assert multi_tensor_variant(cls) is variant
    if variant is not None:
        assert issubclass(variant, cls)
        assert variant.lit_optim_name == name == cls.__name__


def test_constructor_validation_is_torchs() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    checks: list[Callable[[], object]] = [
        lambda: MultiTensorAdamW(params, lr=-1.0),
        lambda: MultiTensorAdam(params, betas=(1.5, 0.9)),
        lambda: MultiTensorSGD(params, lr=0.1, nesterov=True),
    ]
    for build in checks:
        with pytest.raises(ValueError):
            build()
