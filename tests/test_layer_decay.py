"""Layer-wise lr decay against data recorded from the real timm.

The fixtures (``tests/fixtures/layer_decay/*.json``) were written by
``tests/fixtures/record_layer_decay.py`` with timm 1.0.31 / transformers 5.24.0 /
torch 2.14.1 (the versions are in each file): parameter names and shapes, timm's
``group_matcher(coarse=False)`` and the ``lr_scale`` / ``weight_decay`` that
``timm.optim.param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.75)`` gives
every parameter. Here modules with exactly those names and shapes are rebuilt on the meta
device (no timm, no weights) and every parameter is compared.
"""

from __future__ import annotations

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

FIXTURES = Path(__file__).parent / "fixtures" / "layer_decay"
TIMM = sorted(
    p.stem for p in FIXTURES.glob("*.json") if json.loads(p.read_text())["kind"] == "timm"
)
#: timm models whose parameter names follow timm's ViT layout (no group_matcher needed).
VIT_STYLE = ["beit", "deit_distilled", "dinov2_reg", "eva02", "vit"]

#: What timm's reference call used, as an ``optim:`` section: lr 1 so lr == lr_scale,
#: weight decay 0.05 except 1-D tensors (timm's ``weight_decay_exclude_1d``).
DEFAULTS = {"lr": 1.0, "weight_decay": 0.05}


@cache
def fixture(key: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{key}.json").read_text())


class TimmLike(nn.Module):
    """A module with timm's ``group_matcher`` method, answering what timm recorded."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self._spec = spec

    def group_matcher(self, coarse: bool = False) -> Any:
        assert not coarse  # layer decay asks for the fine-grained map
        if "function" in self._spec:  # CaiT: timm returns a function of the name
            table = self._spec["function"]
            return lambda name: tuple(v) if isinstance(v := table[name], list) else v
        return {
            group: spec
            if spec is None or isinstance(spec, str)
            else [(rx, tuple(s) if s is not None else None) for rx, s in spec]
            for group, spec in self._spec["dict"]
        }


def rebuild(record: dict[str, Any], *, with_matcher: bool) -> nn.Module:
    """A module tree with exactly the recorded parameter names and shapes (meta device).

    The timm fixtures record names, not module classes: a module whose children are
    numbered (``blocks.0``, ``blocks.1``) is rebuilt as the ``nn.Sequential`` /
    ``nn.ModuleList`` timm uses there, every other one as a plain ``nn.Module``.
    """
    names = [p["name"] for p in record["params"]]
    numbered = {n.rsplit(".", 1)[0] for n in _module_paths(names) if n.rsplit(".", 1)[-1].isdigit()}
    root: nn.Module = TimmLike(record["group_matcher"]) if with_matcher else nn.Module()
    for p in record["params"]:
        *path, leaf = p["name"].split(".")
        module = root
        for i, part in enumerate(path):
            child = module._modules.get(part)
            if child is None:
                child = nn.Sequential() if ".".join(path[: i + 1]) in numbered else nn.Module()
                module.add_module(part, child)
            module = child
        module.register_parameter(leaf, nn.Parameter(torch.empty(p["shape"], device="meta")))
    assert [n for n, _ in root.named_parameters()] == [p["name"] for p in record["params"]]
    return root


def _module_paths(names: list[str]) -> set[str]:
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


class Wrapper(nn.Module):
    """A LightningModule-like model: ``self.backbone = timm.create_model(...)`` + own head."""

    def __init__(self, backbone: nn.Module, dim: int = 7) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(dim, 3, device="meta")


def layer_decay(model: nn.Module, **extra: Any) -> ParamGroups:
    cfg = OptimConfig(no_decay=["bias"], layer_decay={"rate": 0.75, **extra})
    return build_param_groups(model, cfg, DEFAULTS)


def per_param(pg: ParamGroups) -> dict[str, tuple[float, float]]:
    by_tensor = {id(p): (g["lr"], g["weight_decay"]) for g in pg.groups for p in g["params"]}
    return {info.name: by_tensor[id(info.tensor)] for info in pg.params}


def timm_expected(record: dict[str, Any], prefix: str = "") -> dict[str, tuple[float, float]]:
    return {prefix + p["name"]: (p["lr_scale"], p["weight_decay"]) for p in record["params"]}


def nested_expected(record: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """timm's values for the model as ``backbone.``: one layer more if it has no head."""
    if has_unmatched(record):
        return timm_expected(record, "backbone.")
    top = max(p["layer_id"] for p in record["params"])
    return {
        f"backbone.{p['name']}": (0.75 ** (top + 1 - p["layer_id"]), p["weight_decay"])
        for p in record["params"]
    }


def has_unmatched(record: dict[str, Any]) -> bool:
    """Whether timm's matcher leaves some parameter unmatched (a head), read with ``re``."""
    spec = record["group_matcher"]
    if "function" in spec:
        return any(v == float("inf") for v in spec["function"].values())
    regexes = [
        rx
        for _, m in spec["dict"]
        if m is not None
        for rx in ([m] if isinstance(m, str) else [r for r, _ in m])
    ]
    return any(not any(re.match(rx, p["name"]) for rx in regexes) for p in record["params"])


def test_fixtures_cover_the_architectures_of_the_issue() -> None:
    assert set(TIMM) >= {
        "beit",
        "cait",
        "convnext",
        "deit_distilled",
        "dinov2_reg",
        "efficientnet",
        "eva02",
        "mixer",
        "regnety",
        "resnet",
        "swin",
        "vit",
    }
    for key in TIMM:
        assert set(fixture(key)["versions"]) >= {"torch", "timm", "transformers"}


@pytest.mark.parametrize("key", TIMM)
def test_layer_decay_equals_timm_with_its_group_matcher(key: str) -> None:
    record = fixture(key)
    pg = layer_decay(rebuild(record, with_matcher=True))
    assert per_param(pg) == timm_expected(record)
    ids = {info.name: info.layer_id for info in pg.params}
    assert ids == {p["name"]: p["layer_id"] for p in record["params"]}
    assert len(pg.groups) <= record["num_groups"]
    sources = {info.layer_source for info in pg.params}
    assert all(s is not None and s.startswith("group_matcher of the model") for s in sources)


@pytest.mark.parametrize("key", TIMM)
def test_layer_decay_equals_timm_nested_as_backbone(key: str) -> None:
    record = fixture(key)
    pg = layer_decay(Wrapper(rebuild(record, with_matcher=True)))
    # The wrapper's own head goes last: with timm's head (scale 1) when the backbone has
    # one, else one layer after everything (a head-less backbone such as DINOv2).
    expected = nested_expected(record)
    expected |= {"head.weight": (1.0, 0.05), "head.bias": (1.0, 0.0)}
    assert per_param(pg) == expected
    # timm groups by (layer, decay); distinct layers have distinct scales at rate 0.75.
    assert len(pg.groups) <= len(set(expected.values()))
    rows = {info.name: info for info in pg.params}
    assert rows["head.weight"].layer_source == "outside backbone: last"
    first = record["params"][0]["name"]
    assert rows[f"backbone.{first}"].layer_source.startswith("group_matcher of backbone")


@pytest.mark.parametrize("key", VIT_STYLE)
@pytest.mark.parametrize("nested", [False, True], ids=["top", "backbone"])
def test_vit_style_names_alone_equal_timm(key: str, nested: bool) -> None:
    record = fixture(key)
    model = rebuild(record, with_matcher=False)
    expected = timm_expected(record)
    if nested:
        model = Wrapper(model)
        expected = nested_expected(record)
        expected |= {"head.weight": (1.0, 0.05), "head.bias": (1.0, 0.0)}
    pg = layer_decay(model)
    assert per_param(pg) == expected
    assert len(pg.groups) <= len(set(expected.values()))


def test_deit_dist_token_is_in_the_stem_not_the_head() -> None:
    # The issue's first finding: dist_token had the head's lr (1.0 instead of 0.75 ** 13).
    pg = layer_decay(rebuild(fixture("deit_distilled"), with_matcher=False))
    row = next(i for i in pg.params if i.name == "dist_token")
    assert (row.layer_id, row.layer_source) == (0, "ViT names: dist_token")
    assert per_param(pg)["dist_token"] == (0.75**13, 0.05)


def test_a_matcher_that_is_not_timms_protocol_is_refused() -> None:
    model = nn.Module()
    model.blocks = nn.ModuleList(nn.Linear(2, 2, device="meta") for _ in range(2))
    model.group_matcher = lambda coarse=False: ["^blocks"]
    with pytest.raises(ConfigError) as err:
        layer_decay(model)
    assert str(err.value).startswith(
        "optim.layer_decay: the model.group_matcher(coarse=False) returned a list; "
    )
    model.group_matcher = lambda coarse=False: {"blocks": r"^blocks\.(\d+)(x)?"}
    with pytest.raises(ConfigError, match=r"gave None for 'blocks\.0\.weight'"):
        layer_decay(model)


def test_layers_regex_overrides_the_group_matcher() -> None:
    record = fixture("resnet")
    pg = layer_decay(rebuild(record, with_matcher=True), layers=r"re:^layer(\d+)\.")
    rows = {i.name: i for i in pg.params}
    # The distinct captures in order are blocks 1, 2, ...: torchvision's 1-based
    # layer1..4 -> 1..4 (no empty layer below them), the stem 0, the head last.
    assert rows["layer3.0.conv1.weight"].layer_id == 3
    assert rows["layer3.0.conv1.weight"].layer_source == "layers regex"
    assert rows["conv1.weight"].layer_id == 0
    assert rows["fc.weight"].layer_id == 5
    # Two groups number every block: 8 BasicBlocks -> 1..8.
    pg = layer_decay(rebuild(record, with_matcher=True), layers=r"re:^layer(\d+)\.(\d+)\.")
    rows = {i.name: i for i in pg.params}
    assert [rows[f"layer{s}.{b}.conv1.weight"].layer_id for s in (1, 2, 3, 4) for b in (0, 1)] == [
        1, 2, 3, 4, 5, 6, 7, 8
    ]  # fmt: skip
    assert (rows["conv1.weight"].layer_id, rows["fc.weight"].layer_id) == (0, 9)


# Hugging Face and torchvision models: tests/test_structures.py (module trees recorded with
# their classes, so the structure can be read as the real model has it).


def test_a_model_with_no_stack_gets_a_layers_regex_that_works_as_written() -> None:
    # Numbered siblings, no container: the structure has no stack, the names have numbers.
    model = nn.Module()
    for i in range(3):
        model.add_module(f"enc{i}", nn.Linear(2, 2, device="meta"))
    model.enc_out = nn.Linear(2, 2, device="meta")
    with pytest.raises(ConfigError) as err:
        layer_decay(model)
    message = str(err.value)
    assert message.startswith(
        "optim.layer_decay: cannot infer layer ids: the model has no stack of repeated blocks"
    )
    example = re.search(r"e\.g\. '([^']+)'$", message)
    assert example is not None and example.group(1) == r"re:^enc(\d+)\."
    pg = layer_decay(model, layers=example.group(1))
    assert {i.name: i.layer_id for i in pg.params} == {
        "enc0.weight": 1,
        "enc0.bias": 1,
        "enc1.weight": 2,
        "enc1.bias": 2,
        "enc2.weight": 3,
        "enc2.bias": 3,
        "enc_out.weight": 4,
        "enc_out.bias": 4,
    }


# --------------------------------------------------------------------------- groups --params


def test_param_table_shows_each_layer_id_and_its_source() -> None:
    from lit_optim.lightning.table import param_table, render

    pg = layer_decay(Wrapper(rebuild(fixture("swin"), with_matcher=True)))
    rows = {line.split()[0]: line for line in render(param_table(pg), width=400).splitlines()[3:]}
    assert rows["backbone.patch_embed.proj.weight"].split()[2:7] == [
        "0", "group_matcher", "of", "backbone:", "stem"
    ]  # fmt: skip
    assert rows["backbone.layers.1.downsample.reduction.weight"].split()[2:7] == [
        "3", "group_matcher", "of", "backbone:", "blocks"
    ]  # fmt: skip
    assert rows["head.weight"].split()[2:6] == ["13", "outside", "backbone:", "last"]


@pytest.mark.slow
def test_groups_params_prints_the_layer_source_from_the_cli(tmp_path: Path) -> None:
    from conftest import CONFIGS, run_cli

    config = CONFIGS / "digits_layer_decay_cosine.yaml"
    proc = run_cli("groups", "--config", str(config), "--params", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.strip()}
    assert rows["stem.0.weight"][1:6] == ["layer0", "0", "structure:", "before", "the"]
    assert rows["blocks.1.0.weight"][1:7] == [
        "layer2",
        "2",
        "structure:",
        "block",
        "of",
        "'blocks'",
    ]
    assert rows["head.bias"][1:6] == ["layer3/no_decay", "3", "structure:", "after", "the"]
