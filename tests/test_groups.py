"""Param groups from rules: matching, no_decay, freezing, merging, layer decay, errors."""

from __future__ import annotations

import inspect
import re
from collections import defaultdict
from itertools import chain
from typing import Any

import pytest
import torch
from torch import nn

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups import ParamGroups, build_param_groups, normalize_name

# --------------------------------------------------------------------------- helpers


def optimizer_defaults(cls: type[torch.optim.Optimizer], **init_args: Any) -> dict[str, Any]:
    """Signature defaults overlaid with init_args, as the optimizer builder passes them."""
    sig = inspect.signature(cls.__init__)
    out = {
        k: p.default
        for k, p in sig.parameters.items()
        if k not in ("self", "params") and p.default is not inspect.Parameter.empty
    }
    return {**out, **init_args}


ADAMW = optimizer_defaults(torch.optim.AdamW, lr=1.0, weight_decay=0.05)
SGD = optimizer_defaults(torch.optim.SGD, lr=0.1, momentum=0.9)


def config(**kwargs: Any) -> OptimConfig:
    return OptimConfig(optimizer="torch.optim.AdamW", **kwargs)


def build(model: nn.Module, defaults: dict[str, Any] | None = None, **kwargs: Any) -> ParamGroups:
    return build_param_groups(model, config(**kwargs), defaults or ADAMW, optimizer_name="AdamW")


def group_of(pg: ParamGroups, model: nn.Module) -> dict[str, dict[str, Any]]:
    """Parameter name -> its group dict (raises if a parameter is in two groups)."""
    where: dict[int, dict[str, Any]] = {}
    for g in pg.groups:
        for p in g["params"]:
            assert id(p) not in where, "parameter in two groups"
            where[id(p)] = g
    return {normalize_name(n): where[id(p)] for n, p in model.named_parameters() if id(p) in where}


def rows(pg: ParamGroups) -> dict[str, Any]:
    return {info.name: info for info in pg.params}


def error(match: str) -> Any:
    return pytest.raises(ConfigError, match=f"^{re.escape(match)}$")


class Net(nn.Module):
    """stem (conv + bn), embedding table, two blocks, final norm, head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.embed = nn.Embedding(10, 4)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)) for _ in range(2)
        )
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 3)


class RMSNorm2d(nn.Module):
    """A third-party norm: not a torch norm type, with a 2-D parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4, 4))


# --------------------------------------------------------------------------- rules


def test_without_rules_everything_is_default_split_by_weight_decay() -> None:
    model = Net()
    pg = build(model)
    assert [g["name"] for g in pg.groups] == ["default", "default/no_decay"]
    assert [(g["lr"], g["weight_decay"]) for g in pg.groups] == [(1.0, 0.05), (1.0, 0.0)]
    assert pg.schedules == [None, None]
    assert pg.labels == ["default", "default"]
    assert pg.num_layers is None
    assert sum(len(g["params"]) for g in pg.groups) == len(list(model.parameters()))
    torch.optim.AdamW(pg.groups)  # groups are ready for the constructor


def test_glob_rule_scales_lr_of_whole_name_matches() -> None:
    model = Net()
    pg = build(model, groups=[{"name": "head", "params": ["head.*"], "lr_scale": 10.0}])
    groups = group_of(pg, model)
    assert groups["head.weight"]["name"] == "head"
    assert groups["head.weight"]["lr"] == 10.0
    assert groups["head.bias"]["name"] == "head/no_decay"
    assert groups["head.bias"]["weight_decay"] == 0.0
    # globs match the whole name: "head.*" does not match "blocks.0.head_x"
    assert groups["blocks.0.0.weight"]["name"] == "default"
    assert pg.labels == ["default", "default", "groups[0] (head)", "groups[0] (head)"]


def test_regex_rule_searches_anywhere_in_the_name() -> None:
    model = Net()
    pg = build(model, groups=[{"name": "b1", "params": [r"re:\.1\.0\."], "lr": 0.5}])
    groups = group_of(pg, model)
    assert {n for n, g in groups.items() if g["name"].startswith("b1")} == {
        "blocks.1.0.weight",
        "blocks.1.0.bias",
    }
    assert groups["blocks.1.0.weight"]["lr"] == 0.5


def test_module_rule_matches_parameters_owned_by_the_type() -> None:
    model = Net()
    for spec in ("torch.nn.LayerNorm", "LayerNorm", "torch.nn.modules.normalization.LayerNorm"):
        pg = build(
            model,
            groups=[{"name": "ln", "modules": [spec], "lr_scale": 0.5, "weight_decay": 0.0}],
        )
        groups = group_of(pg, model)
        assert {n for n, g in groups.items() if g["name"] == "ln"} == {
            "blocks.0.1.weight",
            "blocks.0.1.bias",
            "blocks.1.1.weight",
            "blocks.1.1.bias",
            "norm.weight",
            "norm.bias",
        }


def test_first_matching_rule_wins() -> None:
    model = Net()
    pg = build(
        model,
        groups=[
            {"name": "head_w", "params": ["head.weight"], "lr_scale": 3.0},
            {"name": "head", "params": ["head.*"], "lr_scale": 2.0},
            {"name": "linears", "modules": ["Linear"], "lr_scale": 0.5},
        ],
    )
    groups = group_of(pg, model)
    assert groups["head.weight"]["name"] == "head_w"
    assert groups["head.bias"]["name"] == "head/no_decay"
    assert groups["blocks.0.0.weight"]["name"] == "linears"
    assert groups["blocks.0.0.weight"]["lr"] == 0.5


def test_absolute_lr_weight_decay_and_options_are_set_on_the_group() -> None:
    model = Net()
    pg = build(
        model,
        groups=[
            {
                "name": "head",
                "params": ["head.*"],
                "lr": 0.01,
                "weight_decay": 0.1,
                "options": {"betas": (0.8, 0.9)},
                "schedule": "Constant",
            }
        ],
    )
    head = group_of(pg, model)["head.bias"]
    assert {k: v for k, v in head.items() if k != "params"} == {
        "name": "head",
        "lr": 0.01,
        "weight_decay": 0.1,  # the rule's weight_decay overrides no_decay for the bias
        "betas": (0.8, 0.9),
    }
    assert pg.schedules[pg.groups.index(head)] == "Constant"
    assert pg.schedules.count(None) == len(pg.groups) - 1


# --------------------------------------------------------------------------- no_decay


def no_decay_names(model: nn.Module, kinds: list[str]) -> set[str]:
    pg = build(model, no_decay=kinds)
    return {r.name for r in pg.params if not r.decay}


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gain = nn.Parameter(torch.ones(4))  # 1-D, not named bias
        self.bn = nn.BatchNorm1d(4)
        self.rms = RMSNorm2d()
        self.tok = nn.Embedding(5, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.proj_bias = nn.Parameter(torch.zeros(2, 4))  # 2-D but named ...bias


def test_no_decay_bias_means_names_ending_in_bias_and_every_1d_parameter() -> None:
    assert no_decay_names(Mixed(), ["bias"]) == {
        "fc.bias",
        "gain",
        "bn.weight",
        "bn.bias",
        "proj_bias",
    }


def test_no_decay_norm_means_parameters_of_normalisation_modules() -> None:
    assert no_decay_names(Mixed(), ["norm"]) == {"bn.weight", "bn.bias", "rms.scale"}


def test_no_decay_embedding_means_embedding_tables_and_token_parameters() -> None:
    assert no_decay_names(Mixed(), ["embedding"]) == {"tok.weight", "pos_embed", "cls_token"}


def test_no_decay_embedding_covers_hand_written_position_tables() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pos = nn.Parameter(torch.zeros(1, 16, 4))  # a custom 3-D position table
            self.enc = nn.Module()
            self.enc.positional_embedding = nn.Parameter(torch.zeros(16, 4))
            self.enc.pos_embedding = nn.Parameter(torch.zeros(16, 4))
            self.pose = nn.Parameter(torch.zeros(16, 4))  # not a position table
            self.positions = nn.Linear(4, 4)

    assert no_decay_names(Custom(), ["embedding"]) == {
        "pos",
        "enc.positional_embedding",
        "enc.pos_embedding",
    }


def test_no_decay_default_is_all_three_kinds_and_empty_list_turns_it_off() -> None:
    model = Mixed()
    assert no_decay_names(model, ["bias", "norm", "embedding"]) == no_decay_names(
        model, ["bias"]
    ) | no_decay_names(model, ["norm"]) | no_decay_names(model, ["embedding"])
    assert {g["name"] for g in build(model).groups} == {"default", "default/no_decay"}
    pg = build(model, no_decay=[])
    assert [g["name"] for g in pg.groups] == ["default"]
    assert pg.groups[0]["weight_decay"] == 0.05
    assert all(r.decay for r in pg.params)


def test_no_decay_is_not_split_off_when_weight_decay_is_zero() -> None:
    pg = build_param_groups(Net(), config(), SGD, optimizer_name="SGD")  # SGD: weight_decay 0
    assert [g["name"] for g in pg.groups] == ["default"]
    assert pg.groups[0]["weight_decay"] == 0
    assert not any(r.decay for r in pg.params)


# --------------------------------------------------------------------------- frozen


def test_frozen_rule_lists_params_to_freeze_and_leaves_them_out() -> None:
    model = Net()
    pg = build(model, groups=[{"name": "stem", "params": ["stem.*"], "frozen": True}])
    stem = [p for n, p in model.named_parameters() if n.startswith("stem.")]
    assert len(stem) == 4
    # Building is pure: what to freeze is returned, and only training applies it.
    assert all(p.requires_grad for p in model.parameters())
    assert [id(p) for p in pg.freeze] == [id(p) for p in stem]
    pg.apply_freeze()
    assert not any(p.requires_grad for p in stem)
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("stem."))
    in_groups = {id(p) for g in pg.groups for p in g["params"]}
    assert not in_groups & {id(p) for p in stem}
    row = rows(pg)["stem.0.weight"]
    assert (row.group, row.rule, row.frozen, row.decay) == (
        "",
        "frozen by groups[0] (stem)",
        True,
        False,
    )
    # building again (e.g. a second configure_optimizers) gives the same answer
    again = build(model, groups=[{"name": "stem", "params": ["stem.*"], "frozen": True}])
    assert rows(again)["stem.0.weight"].rule == "frozen by groups[0] (stem)"


def test_params_already_frozen_stay_out_and_are_listed() -> None:
    model = Net()
    model.head.requires_grad_(False)
    pg = build(model)
    assert {id(p) for g in pg.groups for p in g["params"]}.isdisjoint(
        {id(model.head.weight), id(model.head.bias)}
    )
    row = rows(pg)["head.weight"]
    assert (row.group, row.rule, row.frozen) == ("", "requires_grad=False", True)
    assert [r.name for r in pg.params] == [n for n, _ in model.named_parameters()]


def test_a_bad_config_leaves_the_model_untouched() -> None:
    model = Net()
    with pytest.raises(ConfigError):
        build(
            model,
            groups=[
                {"name": "stem", "params": ["stem.*"], "frozen": True},
                {"name": "typo", "params": ["haed.*"]},
            ],
        )
    assert all(p.requires_grad for p in model.parameters())


# --------------------------------------------------------------------------- sharing, names


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.body = nn.Linear(4, 4)
        self.lm_head = nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.wte.weight
        self.shared = self.body  # the same module under a second name


def test_tied_and_shared_parameters_are_counted_once() -> None:
    model = Tied()
    pg = build(model)
    params = [p for g in pg.groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == 3
    assert [r.name for r in pg.params] == ["wte.weight", "body.weight", "body.bias"]
    assert rows(pg)["wte.weight"].decay is False  # first owner is the embedding


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("head.weight", "head.weight"),
        ("module.head.weight", "head.weight"),
        ("_orig_mod.head.weight", "head.weight"),
        ("module._orig_mod.head.weight", "head.weight"),
        ("_orig_mod.module.head.weight", "head.weight"),
        ("_fsdp_wrapped_module.blocks.0._fsdp_wrapped_module.fc.weight", "blocks.0.fc.weight"),
        ("blocks.0._checkpoint_wrapped_module.fc.weight", "blocks.0.fc.weight"),
        ("encoder.module.weight", "encoder.module.weight"),  # only a leading module.
        ("my_orig_mod.weight", "my_orig_mod.weight"),  # whole components only
    ],
)
def test_normalize_name_strips_wrapper_components(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


class Wrapper(nn.Module):
    def __init__(self, inner: nn.Module, attr: str) -> None:
        super().__init__()
        self.add_module(attr, inner)


@pytest.mark.parametrize("attrs", [["_orig_mod"], ["module"], ["module", "_orig_mod"]])
def test_rules_match_through_compile_and_ddp_wrappers(attrs: list[str]) -> None:
    model: nn.Module = Net()
    for attr in attrs:
        model = Wrapper(model, attr)
    pg = build(model, groups=[{"name": "head", "params": ["head.*"], "lr_scale": 10.0}])
    assert [r.name for r in pg.params if r.group.startswith("head")] == [
        "head.weight",
        "head.bias",
    ]


# --------------------------------------------------------------------------- merging


def test_groups_with_identical_hyperparameters_are_merged_in_order() -> None:
    model = Net()
    pg = build(
        model,
        groups=[
            {"name": "head", "params": ["head.*"], "lr_scale": 2.0},
            {"name": "stem", "params": ["stem.*"], "lr_scale": 2.0},
            {"name": "norms", "modules": ["LayerNorm"], "weight_decay": 0.0},
        ],
    )
    assert [g["name"] for g in pg.groups] == [
        "stem+head",
        "stem/no_decay+head/no_decay",
        "default/no_decay+norms",  # embed.weight comes before the first block
        "default",
    ]
    assert pg.labels == [
        "groups[1] (stem) + groups[0] (head)",
        "groups[1] (stem) + groups[0] (head)",
        "default + groups[2] (norms)",
        "default",
    ]
    assert rows(pg)["head.weight"].group == "stem+head"
    assert rows(pg)["head.weight"].rule == "groups[0] (head)"


def test_groups_with_different_schedules_are_not_merged() -> None:
    pg = build(
        Net(),
        no_decay=[],
        groups=[
            {"name": "a", "params": ["head.*"], "schedule": "Constant"},
            {"name": "b", "params": ["stem.*"], "schedule": {"class_path": "Poly"}},
            {"name": "c", "params": ["norm.*"], "schedule": {"class_path": "Poly"}},
        ],
    )
    assert [g["name"] for g in pg.groups] == ["b+c", "default", "a"]
    assert pg.schedules == [{"class_path": "Poly"}, None, "Constant"]


def test_optimizer_without_weight_decay_gets_no_weight_decay_key() -> None:
    lbfgs = optimizer_defaults(torch.optim.LBFGS, lr=1.0)
    assert "weight_decay" not in lbfgs
    model = Net()
    pg = build_param_groups(
        model,
        config(groups=[{"name": "head", "params": ["head.*"], "lr_scale": 0.5}]),
        lbfgs,
        optimizer_name="LBFGS",
    )
    assert [g["name"] for g in pg.groups] == ["default", "head"]
    assert all("weight_decay" not in g for g in pg.groups)
    assert not any(r.decay for r in pg.params)


# --------------------------------------------------------------------------- layer ids


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)


class Mlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, 4, 4)


class ViT(nn.Module):
    """Parameter names exactly as timm's VisionTransformer registers them."""

    def __init__(self, depth: int = 4, dim: int = 8, fc_norm: bool = False) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embed = PatchEmbed(dim)
        self.blocks = nn.Sequential(*(Block(dim) for _ in range(depth)))
        self.norm = nn.Identity() if fc_norm else nn.LayerNorm(dim)
        self.fc_norm = nn.LayerNorm(dim) if fc_norm else nn.Identity()
        self.head = nn.Linear(dim, 10)


def layer_ids(model: nn.Module, **layer_decay: Any) -> dict[str, int]:
    pg = build(model, layer_decay={"rate": 0.5, **layer_decay})
    return {r.name: r.layer_id for r in pg.params}


def test_layer_ids_of_a_timm_vit() -> None:
    ids = layer_ids(ViT(depth=4))
    assert ids["cls_token"] == ids["pos_embed"] == ids["patch_embed.proj.weight"] == 0
    assert ids["blocks.0.norm1.weight"] == 1
    assert ids["blocks.3.mlp.fc2.bias"] == 4
    assert ids["norm.weight"] == 4  # timm: ^norm joins the last block (MATCH_PREV_GROUP)
    assert ids["head.weight"] == ids["head.bias"] == 5
    ids = layer_ids(ViT(depth=4, fc_norm=True))
    assert ids["fc_norm.weight"] == ids["head.weight"] == 5


class Bert(nn.Module):
    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.bert = nn.Module()
        emb = nn.Module()
        emb.word_embeddings = nn.Embedding(20, 8)
        emb.position_embeddings = nn.Embedding(16, 8)
        emb.LayerNorm = nn.LayerNorm(8)
        self.bert.embeddings = emb
        self.bert.encoder = nn.Module()
        self.bert.encoder.layer = nn.ModuleList(nn.Linear(8, 8) for _ in range(depth))
        self.bert.pooler = nn.Module()
        self.bert.pooler.dense = nn.Linear(8, 8)
        self.classifier = nn.Linear(8, 2)


def test_layer_ids_of_a_hf_bert() -> None:
    ids = layer_ids(Bert(depth=3))
    assert ids == {
        "bert.embeddings.word_embeddings.weight": 0,
        "bert.embeddings.position_embeddings.weight": 0,
        "bert.embeddings.LayerNorm.weight": 0,
        "bert.embeddings.LayerNorm.bias": 0,
        "bert.encoder.layer.0.weight": 1,
        "bert.encoder.layer.0.bias": 1,
        "bert.encoder.layer.1.weight": 2,
        "bert.encoder.layer.1.bias": 2,
        "bert.encoder.layer.2.weight": 3,
        "bert.encoder.layer.2.bias": 3,
        "bert.pooler.dense.weight": 4,
        "bert.pooler.dense.bias": 4,
        "classifier.weight": 4,
        "classifier.bias": 4,
    }


class ResNet(nn.Module):
    """torchvision ResNet names: conv1, bn1, layer1..layer4, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        for i in range(1, 5):
            setattr(self, f"layer{i}", nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)))
        self.fc = nn.Linear(4, 10)


def test_layer_ids_of_sibling_layers_without_a_container_are_refused_with_a_regex() -> None:
    # layer1..layer4 here are single Sequential(conv, bn) siblings, no stack of blocks
    # (torchvision's real ResNet has blocks in each: tests/test_structures.py).
    with pytest.raises(ConfigError) as err:
        layer_ids(ResNet())
    assert str(err.value).endswith(r"e.g. 're:^layer(\d+)\.'")
    ids = layer_ids(ResNet(), layers=r"re:^layer(\d+)\.")
    assert ids["conv1.weight"] == ids["bn1.bias"] == 0
    assert [ids[f"layer{i}.0.weight"] for i in range(1, 5)] == [1, 2, 3, 4]
    assert ids["layer3.1.bias"] == 3
    assert ids["fc.weight"] == ids["fc.bias"] == 5


class Generic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(2, 4)
        self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_layer_ids_of_a_generic_model_by_position() -> None:
    ids = layer_ids(Generic())
    assert ids == {
        "embed.weight": 0,
        "embed.bias": 0,
        "layers.0.weight": 1,
        "layers.0.bias": 1,
        "layers.1.weight": 2,
        "layers.1.bias": 2,
        "layers.2.weight": 3,
        "layers.2.bias": 3,
        "norm.weight": 4,
        "norm.bias": 4,
        "head.weight": 4,
        "head.bias": 4,
    }


def test_layer_ids_of_encoder_and_decoder_stacks_follow_each_other() -> None:
    model = nn.Module()
    model.encoder = nn.Module()
    model.encoder.blocks = nn.ModuleList(nn.Linear(2, 2, bias=False) for _ in range(2))
    model.decoder = nn.Module()
    model.decoder.blocks = nn.ModuleList(nn.Linear(2, 2, bias=False) for _ in range(2))
    model.head = nn.Linear(2, 2, bias=False)
    assert layer_ids(model) == {
        "encoder.blocks.0.weight": 1,
        "encoder.blocks.1.weight": 2,
        "decoder.blocks.0.weight": 3,
        "decoder.blocks.1.weight": 4,
        "head.weight": 5,
    }


def test_layer_regex_override_uses_group_one_as_block_index() -> None:
    model = nn.Module()
    model.stem = nn.Linear(2, 2, bias=False)
    model.enc = nn.ModuleList(nn.Linear(2, 2, bias=False) for _ in range(3))
    model.out = nn.Linear(2, 2, bias=False)
    expected = {"stem.weight": 0, "enc.0.weight": 1, "enc.1.weight": 2, "enc.2.weight": 3}
    for spec in (r"re:^enc\.(\d+)\.", r"^enc\.(\d+)\."):
        ids = layer_ids(model, layers=spec)
        assert ids == {**expected, "out.weight": 4}
    pg = build(model, layer_decay={"rate": 0.5, "layers": r"re:^enc\.(\d+)\.", "num_layers": 7})
    assert pg.num_layers == 7
    assert group_of(pg, model)["out.weight"]["lr"] == 0.5 ** (7 - 1 - 4)


def test_layer_decay_scales_lr_and_names_groups() -> None:
    model = Generic()
    pg = build(
        model,
        layer_decay={"rate": 0.5},
        groups=[
            {"name": "head", "params": ["head.*"], "lr_scale": 10.0},
            {"name": "embed", "params": ["embed.*"], "lr": 0.3},
        ],
    )
    assert pg.num_layers == 5
    groups = group_of(pg, model)
    assert groups["layers.0.weight"]["name"] == "layer1"
    assert groups["layers.0.weight"]["lr"] == 0.5**3
    assert groups["layers.0.bias"]["name"] == "layer1/no_decay"
    assert groups["norm.weight"]["name"] == "layer4/no_decay"
    assert groups["norm.weight"]["lr"] == 1.0
    assert groups["head.weight"]["name"] == "head/layer4"
    assert groups["head.weight"]["lr"] == 10.0
    assert groups["embed.weight"]["name"] == "embed"  # an absolute lr is not decayed
    assert groups["embed.weight"]["lr"] == 0.3
    assert rows(pg)["embed.weight"].layer_id == 0


# --------------------------------------------------------------------------- timm equality
# A minimal, faithful copy of timm's layer-decay scales, from huggingface/pytorch-image-models
# @ aa4b5850c1543fa488abf260f18390eda46cf85d:
#   timm/models/vision_transformer.py  VisionTransformer.group_matcher / no_weight_decay
#   timm/models/_manipulate.py         group_with_matcher (dict matcher, reverse=True)
#   timm/optim/_param_groups.py        param_groups_layer_decay (lr_scale, weight_decay)

MATCH_PREV_GROUP = (99999,)


def timm_vit_group_matcher() -> dict[str, Any]:
    return dict(
        stem=r"^cls_token|reg_token|pos_embed|patch_embed",
        blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))],
    )


def timm_group_with_matcher(named_objects: Any, group_matcher: dict[str, Any]) -> dict[str, int]:
    compiled = []
    for group_ordinal, (_group_name, mspec) in enumerate(group_matcher.items()):
        if mspec is None:
            continue
        if isinstance(mspec, tuple | list):
            for sspec in mspec:
                compiled += [(re.compile(sspec[0]), (group_ordinal,), sspec[1])]
        else:
            compiled += [(re.compile(mspec), (group_ordinal,), None)]

    def _get_grouping(name: str) -> tuple[float, ...]:
        for match_fn, prefix, suffix in compiled:
            r = match_fn.match(name)
            if r:
                parts = (prefix, r.groups(), suffix)
                return tuple(map(float, chain.from_iterable(filter(None, parts))))
        return (float("inf"),)

    grouping: dict[tuple[float, ...], list[str]] = defaultdict(list)
    for k, _v in named_objects:
        grouping[_get_grouping(k)].append(k)
    layer_id_to_param: dict[int, list[str]] = defaultdict(list)
    lid = -1
    for k in sorted(filter(lambda x: x is not None, grouping.keys())):
        if lid < 0 or k[-1] != MATCH_PREV_GROUP[0]:
            lid += 1
        layer_id_to_param[lid].extend(grouping[k])
    return {n: lid for lid, lm in layer_id_to_param.items() for n in lm}


def timm_param_groups_layer_decay(
    model: nn.Module, weight_decay: float, layer_decay: float
) -> dict[str, tuple[float, float]]:
    """Parameter name -> (lr_scale, weight_decay), as timm's groups would give them."""
    no_weight_decay_list = {"pos_embed", "cls_token", "reg_token", "dist_token"}
    layer_map = timm_group_with_matcher(model.named_parameters(), timm_vit_group_matcher())
    num_layers = max(layer_map.values()) + 1
    layer_max = num_layers - 1
    layer_scales = [max(0.0, layer_decay ** (layer_max - i)) for i in range(num_layers)]
    out = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or any(re.fullmatch(p, name) for p in no_weight_decay_list):
            this_decay = 0.0
        else:
            this_decay = weight_decay
        out[name] = (layer_scales[layer_map.get(name, layer_max)], this_decay)
    return out


@pytest.mark.parametrize(("depth", "fc_norm", "rate"), [(12, False, 0.75), (4, True, 0.65)])
def test_layer_decay_on_a_vit_equals_timm(depth: int, fc_norm: bool, rate: float) -> None:
    model = ViT(depth=depth, fc_norm=fc_norm)
    expected = timm_param_groups_layer_decay(model, weight_decay=0.05, layer_decay=rate)
    pg = build(model, layer_decay={"rate": rate})  # lr 1.0, weight_decay 0.05
    groups = group_of(pg, model)
    assert set(groups) == set(expected)
    for name, (scale, wd) in expected.items():
        assert (groups[name]["lr"], groups[name]["weight_decay"]) == (scale, wd), name
    # ... and with any base lr the scale is the same
    lr = optimizer_defaults(torch.optim.AdamW, lr=3e-4, weight_decay=0.05)
    pg = build(model, lr, layer_decay={"rate": rate})
    for name, g in group_of(pg, model).items():
        assert g["lr"] == pytest.approx(3e-4 * expected[name][0], rel=1e-12)


def test_vit_layer_decay_needs_no_more_groups_than_timm() -> None:
    depth = 12
    pg = build(ViT(depth=depth), layer_decay={"rate": 0.75})
    timm_groups = 2 * (depth + 2)  # decay / no_decay per layer id, stem + blocks + head
    assert len(pg.groups) <= timm_groups
    assert len(pg.groups) == 28
    assert pg.groups[0]["name"] == "layer0/no_decay"
    assert pg.groups[-1]["name"] == "layer13/no_decay"


# --------------------------------------------------------------------------- errors


def test_rule_matching_nothing_names_closest_parameters() -> None:
    with error(
        "optim.groups[0].params: 'haed.*' matched no parameter "
        "(closest: 'head.weight', 'head.bias')"
    ):
        build(Net(), groups=[{"name": "head", "params": ["haed.*"]}])


def test_rule_matching_nothing_close_shows_what_names_look_like() -> None:
    with error(
        "optim.groups[0].params: 'zzzzz', 're:^qqq' matched no parameter "
        "(names look like: 'stem.0.weight', 'stem.0.bias', 'stem.1.weight')"
    ):
        build(Net(), groups=[{"params": ["zzzzz", "re:^qqq"]}])


def test_module_rule_matching_nothing_lists_module_types() -> None:
    with error(
        "optim.groups[0].modules: no parameter belongs to a torch.nn.modules.rnn.GRU module "
        "(module types with parameters: BatchNorm2d, Conv2d, Embedding, LayerNorm, Linear)"
    ):
        build(Net(), groups=[{"modules": ["GRU"]}])


def test_module_rule_matches_only_directly_owned_parameters() -> None:
    # Sequential registers no parameter itself, so it matches nothing.
    with pytest.raises(ConfigError, match=r"^optim\.groups\[0\]\.modules: no parameter belongs"):
        build(Net(), groups=[{"modules": ["Sequential"]}])


def test_rule_whose_parameters_were_all_taken_names_the_earlier_rule() -> None:
    with error(
        "optim.groups[1].params: every parameter it matches (2, e.g. 'head.weight') is already "
        "taken by groups[0] (all), which comes first (first match wins); "
        "narrow the earlier rule or move this one above it"
    ):
        build(
            Net(),
            groups=[
                {"name": "all", "params": ["*"], "lr_scale": 0.5},
                {"name": "head", "params": ["head.*"]},
            ],
        )


def test_unknown_module_type_suggests_a_close_one() -> None:
    with error(
        "optim.groups[0].modules[1]: 'LayerNrom' is not a torch.nn module; did you mean "
        "'torch.nn.LayerNorm'? (give a torch.nn name such as LayerNorm, or an import path "
        "such as my_pkg.layers.MyNorm)"
    ):
        build(Net(), groups=[{"modules": ["Linear", "LayerNrom"]}])
    with pytest.raises(ConfigError) as info:
        build(Net(), groups=[{"modules": ["my_pkg.layers.Block"]}])
    assert info.value.key == "optim.groups[0].modules[0]"
    assert info.value.reason.startswith("cannot import 'my_pkg.layers.Block' (")
    assert info.value.reason.endswith(
        "(give a module class by import path, e.g. torch.nn.LayerNorm)"
    )
    with error(
        "optim.groups[0].modules[0]: 'torch.nn.functional.relu' is a function, "
        "not a torch.nn.Module subclass (e.g. torch.nn.LayerNorm)"
    ):
        build(Net(), groups=[{"modules": ["torch.nn.functional.relu"]}])


def test_invalid_regex_reports_the_re_error() -> None:
    with error(
        "optim.groups[0].params[1]: invalid regex 'blocks.(': missing ), unterminated "
        "subpattern at position 7; write a Python regex after 're:', e.g. 're:^blocks\\.(0|1)\\.'"
    ):
        build(Net(), groups=[{"params": ["head.*", "re:blocks.("]}])


def test_option_the_optimizer_does_not_take_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        build_param_groups(
            Net(),
            config(groups=[{"params": ["head.*"], "options": {"momentun": 0.8}}]),
            SGD,
            optimizer_name="SGD",
        )
    assert str(info.value) == (
        "optim.groups[0].options.momentun: 'momentun' is not an option of SGD; did you mean "
        f"'momentum'? (valid: {', '.join(SGD)})"
    )


def test_weight_decay_on_an_optimizer_without_it_is_an_error() -> None:
    lbfgs = optimizer_defaults(torch.optim.LBFGS, lr=1.0)
    with error(
        "optim.groups[0].weight_decay: LBFGS has no weight_decay option; remove it "
        f"(valid options: {', '.join(lbfgs)})"
    ):
        build_param_groups(
            Net(),
            config(groups=[{"params": ["head.*"], "weight_decay": 0.1}]),
            lbfgs,
            optimizer_name="LBFGS",
        )


def test_no_trainable_parameter_left_is_an_error() -> None:
    model = Net()
    model.head.requires_grad_(False)
    with error(
        "optim.groups: no trainable parameter left: 15 parameters are frozen by `frozen: true` "
        "rules and the other 2 have requires_grad=False; drop `frozen: true` from a rule or "
        "unfreeze some parameters"
    ):
        build(
            model, groups=[{"params": ["stem.*", "embed.*", "blocks.*", "norm.*"], "frozen": True}]
        )
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("head"))


def test_layer_decay_errors() -> None:
    flat = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    # A stack of single layers is a stack when there is nothing else.
    assert layer_ids(flat) == {"0.weight": 1, "0.bias": 1, "1.weight": 2, "1.bias": 2}
    unnumbered = nn.Module()
    unnumbered.a = nn.Linear(2, 2)
    unnumbered.b = nn.Linear(2, 2)
    with error(
        "optim.layer_decay: cannot infer layer ids: the model has no stack of repeated "
        "blocks; set layer_decay.layers to a regex whose groups number the blocks (no "
        "module of this model is numbered, so none is suggested)"
    ):
        build(unnumbered, layer_decay={"rate": 0.5})
    with error(
        "optim.layer_decay.layers: '^\\d' has no group; group 1 must capture the block index, "
        "e.g. 'blocks\\.(\\d+)\\.'"
    ):
        build(flat, layer_decay={"layers": r"re:^\d"})
    with error(
        "optim.layer_decay.layers: 're:^(x)' matched no parameter "
        "(names look like: '0.weight', '0.bias', '1.weight')"
    ):
        build(flat, layer_decay={"layers": "re:^(x)"})
    with error(
        "optim.layer_decay.layers: group 1 captured 'weight' in '0.weight'; it must capture "
        "a block index (digits), e.g. 'blocks\\.(\\d+)\\.'"
    ):
        build(flat, layer_decay={"layers": r"re:^\d\.(\w+)"})
    with error(
        "optim.layer_decay.num_layers: 'head.weight' is in layer 5, so num_layers must be "
        ">= 6 (got 3); omit it to infer 6"
    ):
        build(ViT(depth=4), layer_decay={"num_layers": 3})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"params": ["x"], "lr": 0.0}, "optim.groups[0].lr: must be > 0, got 0.0"),
        ({"params": ["x"], "lr_scale": -1.0}, "optim.groups[0].lr_scale: must be > 0, got -1.0"),
        (
            {"params": ["x"], "frozen": True, "lr": 0.1},
            "optim.groups[0]: a frozen group is left out of the optimizer, so lr would never "
            "apply; remove them or drop `frozen: true`",
        ),
        (
            {"params": ["x"], "lr": 0.1, "lr_scale": 2.0},
            "optim.groups[0]: give either `lr` or `lr_scale`, not both",
        ),
    ],
)
def test_impossible_rules_are_rejected_by_the_config(rule: dict[str, Any], message: str) -> None:
    with error(message):
        OptimConfig(groups=[rule])
