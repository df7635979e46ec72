"""Layer ids from the module tree, against module trees recorded from transformers and torchvision.

``tests/fixtures/structures/*.json`` were written by ``tests/fixtures/record_structures.py``
(the library versions are in each file): every module of a real model (tiny random Hugging
Face configs, full-size torchvision models on the meta device), with its class, container
base and parameter shapes, and the expected layer id of every parameter, written from the
family's published forward order (the ``order`` in each file), not by lit_optim.

Here the same trees are rebuilt from plain ``torch.nn`` modules on the meta device (no
transformers, no torchvision): torch's own classes where the model used one, and a class of
the same name for the library's own modules. Every model must either give exactly the
expected ids, or be refused with a suggested ``layer_decay.layers`` regex that gives them
when applied as written -- at top level, and nested as ``backbone`` beside a head of the
wrapper's own.
"""

from __future__ import annotations

import importlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from lit_optim.core.config import OptimConfig
from lit_optim.core.errors import ConfigError
from lit_optim.core.groups import ParamGroups, build_param_groups

FIXTURES = Path(__file__).parent / "fixtures" / "structures"
KEYS = sorted(p.stem for p in FIXTURES.glob("*.json"))
DEFAULTS = {"lr": 1.0, "weight_decay": 0.05}
_BASES: dict[str, type[nn.Module]] = {
    "Module": nn.Module,
    "ModuleList": nn.ModuleList,
    "Sequential": nn.Sequential,
    "ModuleDict": nn.ModuleDict,
}


@cache
def fixture(key: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{key}.json").read_text())


@cache
def module_class(qualified: str, base: str) -> type[nn.Module]:
    """torch's own class for a ``torch.nn`` type, else a class of that name on ``base``."""
    module_name, _, qualname = qualified.rpartition(".")
    if module_name.startswith("torch.nn.") and "." not in qualname:
        cls = getattr(importlib.import_module(module_name), qualname, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            return cls
    return type(qualname, (_BASES[base],), {"__module__": module_name})


def rebuild(record: dict[str, Any]) -> nn.Module:
    """The recorded module tree, parameters on the meta device, ties and sharing kept."""
    built: dict[str, nn.Module] = {}
    tensors: dict[str, nn.Parameter] = {}
    for m in record["modules"]:
        cls = module_class(m["type"], m["base"])
        module = cls.__new__(cls)
        nn.Module.__init__(module)  # no constructor arguments: only the structure matters
        dot = m["path"] + "." if m["path"] else ""
        for name, shape, tied in m["params"]:
            p = tensors[tied] if tied else nn.Parameter(torch.empty(shape, device="meta"))
            tensors.setdefault(dot + name, p)
            module.register_parameter(name, p)
        built[m["path"]] = module
    for m in record["modules"]:
        for name, path in m["children"]:
            built[m["path"]].add_module(name, built[path])
    root = built[""]
    assert [n for n, _ in root.named_parameters()] == record["names"]
    return root


class Wrapper(nn.Module):
    """A LightningModule-like model: the recorded model as ``backbone`` + its own head."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(4, 3, device="meta")


def build(model: nn.Module, **layer_decay: Any) -> ParamGroups:
    cfg = OptimConfig(no_decay=["bias"], layer_decay={"rate": 0.75, **layer_decay})
    return build_param_groups(model, cfg, DEFAULTS)


def expected(record: dict[str, Any], nested: bool) -> dict[str, int]:
    ids = dict(zip(record["names"], record["expected_ids"], strict=True))
    if not nested:
        return ids
    out = {f"backbone.{n}": i for n, i in ids.items()}
    last = max(ids.values())
    # The wrapper's head runs after everything: with the model's own head and final norm
    # if it has some (the last id then holds no block), else one id after the last block.
    head = last if last > max_block_id(record) else last + 1
    return out | {"head.weight": head, "head.bias": head}


def max_block_id(record: dict[str, Any]) -> int:
    """The id of the last block: what the order's block entries number."""
    kinds = [kind for _, kind in record["order"]]
    compiled = [re.compile(rx) for rx, _ in record["order"]]
    best = 0
    for name, i in zip(record["names"], record["expected_ids"], strict=True):
        entry = next(k for k, rx in enumerate(compiled) if rx.search(name))
        if kinds[entry] == "block":
            best = max(best, i)
    return best


def suggested_regex(message: str) -> str:
    m = re.search(r"e\.g\. '([^']+)'$", message)
    assert m is not None, message
    return m.group(1)


def layer_ids_of(pg: ParamGroups) -> dict[str, int]:
    return {info.name: info.layer_id for info in pg.params}


def test_fixtures_cover_the_families_of_the_issue() -> None:
    families = {fixture(k)["family"] for k in KEYS}
    hf = [k for k in KEYS if fixture(k)["kind"] == "transformers"]
    tv = [k for k in KEYS if fixture(k)["kind"] == "torchvision"]
    assert len(hf) >= 50
    # Mistral, Qwen2, Gemma and Phi follow the Llama order (model.layers.N).
    assert {"mistral_lm", "qwen2_lm", "gemma_lm", "phi_lm", "mbart_lm"} <= set(hf)
    assert families >= {
        "bert", "roberta", "distilbert", "albert", "electra", "deberta_v2", "rembert",
        "gpt2", "gpt_neox", "opt", "bloom", "llama", "falcon", "t5", "bart", "whisper",
        "vit", "swin", "convnext", "segformer", "pvt_v2", "clip", "clip_vision",
        "clip_text", "wav2vec2",
        "tv_resnet", "tv_convnext", "tv_efficientnet", "tv_mobilenet", "tv_regnet",
        "tv_vit", "tv_swin", "tv_densenet", "tv_inception",
    }  # fmt: skip
    assert {"tv_mobilenet_v2", "tv_mobilenet_v3_small", "tv_mobilenet_v3_large"} <= set(tv)
    for key in KEYS:
        record = fixture(key)
        assert set(record["versions"]) >= {"torch", "transformers", "torchvision"}
        assert len(record["expected_ids"]) == len(record["names"])
        # Every order places blocks (ALBERT: its one shared layer).
        assert max_block_id(record) >= (1 if record["family"] == "albert" else 2)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("nested", [False, True], ids=["top", "backbone"])
def test_layer_ids_equal_the_published_order_or_a_refusal_whose_regex_does(
    key: str, nested: bool
) -> None:
    record = fixture(key)
    model = rebuild(record)
    if nested:
        model = Wrapper(model)
    want = expected(record, nested)
    if record["verdict"] == "equal":
        pg = build(model)
        assert layer_ids_of(pg) == want
        assert pg.num_layers == max(want.values()) + 1
        by_tensor = {id(p): g["lr"] for g in pg.groups for p in g["params"]}
        for info in pg.params:
            assert by_tensor[id(info.tensor)] == 0.75 ** (pg.num_layers - 1 - info.layer_id)
        return
    with pytest.raises(ConfigError) as err:
        build(model)
    message = str(err.value)
    assert message.startswith("optim.layer_decay: cannot infer layer ids: ")
    assert layer_ids_of(build(model, layers=suggested_regex(message))) == want


def test_segformer_is_no_vit_every_stage_is_decayed() -> None:
    # The issue: SegFormer was taken for a timm ViT and only stage 0 was decayed.
    record = fixture("segformer_cls")
    ids = layer_ids_of(build(rebuild(record)))
    assert ids["segformer.stages.0.patch_embeddings.proj.weight"] == 0
    assert ids["segformer.stages.0.blocks.1.mlp.fc1.weight"] == 2
    assert ids["segformer.stages.0.layer_norm.weight"] == 2  # after its stage's blocks
    assert ids["segformer.stages.3.blocks.1.mlp.fc1.weight"] == 8
    assert ids["classifier.weight"] == 9


def test_registration_order_is_not_taken_for_execution_order() -> None:
    opt = layer_ids_of(build(rebuild(fixture("opt_lm"))))
    assert opt["model.decoder.final_layer_norm.weight"] == 4  # registered first, runs last
    assert opt["model.decoder.project_out.weight"] == 4
    assert opt["model.decoder.project_in.weight"] == 0
    bart = layer_ids_of(build(rebuild(fixture("bart_lm"))))
    assert bart["model.encoder.layernorm_embedding.weight"] == 0
    assert bart["model.decoder.layernorm_embedding.weight"] == 3  # the encoder's last


def test_electra_and_rembert_projections_run_before_layer_0() -> None:
    electra = layer_ids_of(build(rebuild(fixture("electra_seqcls"))))
    assert electra["electra.embeddings_project.weight"] == 0
    rembert = layer_ids_of(build(rebuild(fixture("rembert_seqcls"))))
    assert rembert["rembert.encoder.embedding_hidden_mapping_in.weight"] == 0


@pytest.mark.parametrize(
    ("key", "layers", "stem"),
    [
        ("tv_convnext_tiny", 19, "features.0.0.weight"),
        ("tv_efficientnet_b0", 17, "features.0.0.weight"),
        ("tv_mobilenet_v3_small", 12, "features.0.0.weight"),
    ],
)
def test_torchvision_inner_sequential_is_no_stack(key: str, layers: int, stem: str) -> None:
    # The issue: features.1.0.block.N was read as the stack (convnext_tiny: 110 layers).
    pg = build(rebuild(fixture(key)))
    assert pg.num_layers == layers + 1
    assert layer_ids_of(pg)[stem] == 0


def test_refusals_name_the_candidates() -> None:
    with pytest.raises(ConfigError) as err:
        build(rebuild(fixture("clip_both")))
    message = str(err.value)
    assert "'text_model.encoder.layers' (3 blocks" in message
    assert "'vision_model.encoder.layers' (3 blocks" in message
    assert suggested_regex(message) == r"re:^vision_model\.encoder\.layers\.(\d+)\."
    with pytest.raises(ConfigError) as err:
        build(rebuild(fixture("tv_inception_v3")))
    assert "no stack of repeated blocks" in str(err.value)
    assert suggested_regex(str(err.value)) == r"re:^Mixed_(\d+)([a-z]+)\."


def test_the_docs_layers_example_gives_the_documented_ids() -> None:
    import yaml

    text = (Path(__file__).parents[1] / "docs" / "layer_ids.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    config = OptimConfig.from_dict(yaml.safe_load(blocks[0])["optim"])
    record = fixture("tv_inception_v3")
    pg = build_param_groups(rebuild(record), config, DEFAULTS)
    assert layer_ids_of(pg) == dict(zip(record["names"], record["expected_ids"], strict=True))
    ids = layer_ids_of(pg)
    assert (ids["Conv2d_1a_3x3.conv.weight"], ids["Mixed_5b.branch1x1.conv.weight"]) == (0, 1)
    assert (ids["AuxLogits.fc.weight"], ids["Mixed_6e.branch1x1.conv.weight"]) == (8, 8)
    assert (ids["Mixed_7c.branch1x1.conv.weight"], ids["fc.weight"]) == (11, 12)


def test_two_timm_backbones_are_refused_with_a_regex_per_backbone() -> None:
    # The issue: with two backbones that have a group_matcher, the suggestion covered one.
    from test_layer_decay import fixture as timm_fixture
    from test_layer_decay import rebuild as timm_rebuild

    model = nn.Module()
    model.image = timm_rebuild(timm_fixture("vit"), with_matcher=True)
    model.video = timm_rebuild(timm_fixture("vit"), with_matcher=True)
    with pytest.raises(ConfigError) as err:
        build(model)
    message = str(err.value)
    assert message.startswith(
        "optim.layer_decay: several submodules have a group_matcher ('image', 'video')"
    )
    assert r"'re:^video\.blocks\.(\d+)\.'" in message  # the other backbone's regex
    ids = layer_ids_of(build(model, layers=suggested_regex(message)))
    assert suggested_regex(message) == r"re:^image\.blocks\.(\d+)\."
    assert (ids["image.cls_token"], ids["image.blocks.11.mlp.fc2.weight"]) == (0, 12)
    assert ids["video.blocks.0.norm1.weight"] == ids["video.head.weight"] == 13


def test_wrappers_of_compile_ddp_and_checkpointing_do_not_change_the_ids() -> None:
    record = fixture("bart_lm")
    want = dict(zip(record["names"], record["expected_ids"], strict=True))
    compiled = nn.Module()  # torch.compile's OptimizedModule keeps the model as _orig_mod
    compiled._orig_mod = rebuild(record)
    ddp = nn.Module()  # DDP keeps it as module
    ddp.module = compiled
    layers = compiled._orig_mod.model.encoder.layers
    for i in (0, 2):  # activation checkpointing wraps some blocks
        wrapped = nn.Module()
        wrapped._checkpoint_wrapped_module = layers[i]
        layers[i] = wrapped
    assert layer_ids_of(build(ddp)) == want
