"""The ``optim:`` section on the command line: layering, overrides, presence, saved configs.

jsonargparse sees the section as one opaque value; :mod:`lit_optim.lightning.optim_args`
layers it and :meth:`OptimConfig.from_dict` alone validates it. These run ``lit-optim``
in this process (fast) on tiny digits runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import yaml
from conftest import CONFIGS, ROOT, read_metrics, series

from lit_optim.core.errors import ConfigError
from lit_optim.lightning.optim_args import layer_optim_args, merge_layers, optim_section
from lit_optim.tools.main import main

POLY = str(CONFIGS / "digits_poly.yaml")

# A small digits run: 3 batches per epoch, one validation batch, CSV logs under runs/tiny.
TINY = {
    "seed_everything": 0,
    "trainer": {
        "max_epochs": 2,
        "limit_train_batches": 3,
        "limit_val_batches": 1,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": "runs", "name": "tiny"},
        },
        "callbacks": [
            {"class_path": "lit_optim.LRLogger"},
            {
                "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                "init_args": {"save_last": True},
            },
        ],
    },
    "model": {"class_path": "examples.plain_model.PlainMLP", "init_args": {"hidden": 16}},
    "data": {"class_path": "lit_optim.demo.DigitsDataModule", "init_args": {"batch_size": 64}},
}


class StopAfterFirstEpoch(pl.Callback):
    """Ends fit after epoch 0, as a killed run would (its last.ckpt is from epoch 0)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.should_stop = True


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["lit-optim"])
    monkeypatch.syspath_prepend(str(ROOT))  # examples.plain_model, as from the repo root
    return tmp_path


def write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def printed(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert run("fit", *args, "--print_config") == 0
    return yaml.safe_load(capsys.readouterr().out)


# --------------------------------------------------------------------------- layering


def test_a_new_class_path_replaces_the_spec_and_keeps_nothing_of_the_old_one() -> None:
    base = {"optimizer": {"class_path": "AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}}}
    layer = {"optimizer": {"class_path": "SGD", "init_args": {"lr": 0.1}}}
    assert merge_layers(base, layer) == layer


def test_init_args_without_class_path_merge_into_the_given_optimizer() -> None:
    base = {"optimizer": {"class_path": "SGD", "init_args": {"lr": 0.1, "momentum": 0.9}}}
    merged = merge_layers(base, {"optimizer": {"init_args": {"lr": 0.5}}})
    assert merged == {"optimizer": {"class_path": "SGD", "init_args": {"lr": 0.5, "momentum": 0.9}}}


def test_later_layers_win_in_command_line_order(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", {"optim": {"optimizer": "SGD", "warmup": {"steps": 5}}})
    second = write(tmp_path / "b.yaml", {"optim": {"warmup": {"start_factor": 0.5}}})
    args = ["fit", "--config", first, "--optim.warmup.steps", "7", "--config", second]
    assert optim_section(args) == {
        "optimizer": "SGD",
        "warmup": {"steps": 7, "start_factor": 0.5},
    }
    kept, given = layer_optim_args(args)
    assert given and kept[:5] == ["fit", "--config", first, "--config", second]
    assert kept[5].startswith("--optim={")


def test_no_optim_source_adds_nothing(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.yaml", {"trainer": {"max_epochs": 1}})
    assert layer_optim_args(["fit", "--config", plain]) == (["fit", "--config", plain], False)


def test_a_dotted_override_into_a_list_says_how_to_give_the_list() -> None:
    with pytest.raises(ConfigError, match=r"^optim\.groups: a list is replaced as a whole"):
        optim_section(["fit", "--optim", "{groups: [{params: [a]}]}", "--optim.groups.0.lr", "1"])


# --------------------------------------------------------------------------- overrides


@pytest.mark.filterwarnings("ignore")
def test_overrides_of_schedule_warmup_and_optimizer_lr(workdir, capsys) -> None:
    optim = printed(
        capsys,
        "--config",
        POLY,
        "--optim.schedule",
        "Cosine",
        "--optim.warmup.steps",
        "10",
        "--optim.optimizer.init_args.lr",
        "0.1",
    )["optim"]
    assert optim["schedule"] == "Cosine"
    assert optim["warmup"] == {"steps": 10, "start_factor": 0.1}
    assert optim["optimizer"]["class_path"] == "torch.optim.SGD"
    # the lr is changed in the config's SGD; its other init args stay
    assert optim["optimizer"]["init_args"]["lr"] == 0.1
    assert optim["optimizer"]["init_args"]["momentum"] == 0.9
    assert optim["optimizer"]["init_args"]["weight_decay"] == 5.0e-4
    assert optim["groups"] == [{"name": "head", "params": ["head.*"], "lr_scale": 10.0}]


@pytest.mark.filterwarnings("ignore")
def test_print_config_output_loads_again_to_the_same_config(workdir, capsys) -> None:
    first = printed(capsys, "--config", POLY, "--optim.schedule", "Cosine")
    saved = write(workdir / "printed.yaml", first)
    assert printed(capsys, "--config", saved) == first


@pytest.mark.filterwarnings("ignore")
def test_fit_optim_file_is_layered_like_a_config(workdir, capsys) -> None:
    layer = write(workdir / "longer_warmup.yaml", {"optim": {"warmup": {"steps": 3}}})
    optim = printed(capsys, "--config", POLY, "--optim", layer)["optim"]
    assert optim["warmup"] == {"steps": 3, "start_factor": 0.1}  # merged, not replaced
    assert optim["schedule"] == {"class_path": "Poly", "init_args": {"power": 0.9}}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "source", ["file", "dotted"], ids=["misspelled key in a file", "misspelled --optim.KEY"]
)
def test_misspelled_top_level_key_with_a_mapping_gets_a_suggestion(workdir, capsys, source):
    spec = {"class_path": "Poly", "init_args": {"power": 2.0}}
    if source == "file":
        args = ["--config", write(workdir / "typo.yaml", {"optim": {"shedule": spec}})]
    else:
        args = ["--optim.shedule", yaml.safe_dump(spec, default_flow_style=True)]
    assert run("fit", "--config", POLY, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: optim.shedule: unknown key; did you mean 'schedule'"), err
    assert len(err.splitlines()) == 1


# --------------------------------------------------------------------------- presence


@pytest.mark.filterwarnings("ignore")
def test_a_written_section_equal_to_the_defaults_still_replaces_the_models_adam(
    workdir, capsys
) -> None:
    config = write(workdir / "adamw.yaml", {**TINY, "optim": {"optimizer": "torch.optim.AdamW"}})
    assert run("fit", "--config", config, "--trainer.max_epochs", "1") == 0
    (log_dir,) = (workdir / "runs" / "tiny").glob("version_*")
    rows = read_metrics(log_dir)
    lr_keys = {k for r in rows for k, v in r.items() if k.startswith("lr-") and v}
    assert lr_keys == {"lr-AdamW/default", "lr-AdamW/default/no_decay"}
    assert set(series(rows, "lr-AdamW/default").values()) == {1e-3}  # AdamW's own default
    capsys.readouterr()
    assert run("groups", "--config", config) == 0
    table = capsys.readouterr().out
    assert table.startswith("AdamW"), table


# --------------------------------------------------------------------------- saved configs


@pytest.mark.filterwarnings("ignore")
def test_tools_read_a_runs_saved_config_and_print_config_output(workdir, capsys) -> None:
    config = write(workdir / "tiny.yaml", {**TINY, "optim": {"optimizer": "SGD"}})
    assert run("fit", "--config", config, "--trainer.max_epochs", "1") == 0
    (saved,) = (workdir / "runs" / "tiny").glob("version_*/config.yaml")
    assert "ckpt_path" in yaml.safe_load(saved.read_text())
    printed_cfg = write(workdir / "printed.yaml", printed(capsys, "--config", config))
    adam = write(workdir / "adam.yaml", {"optim": {"optimizer": "Adam"}})
    for source in (str(saved), printed_cfg):
        capsys.readouterr()
        assert run("groups", "--config", source) == 0, capsys.readouterr().err
        assert capsys.readouterr().out.startswith("SGD")
        out = workdir / f"lr_{Path(source).stem}.csv"
        assert run("plot", "--config", source, "--ascii", "--data", str(out)) == 0
        assert out.is_file()
        png = workdir / f"cmp_{Path(source).stem}.png"
        assert run("compare", "--config", source, "--optim", adam, "-o", str(png)) == 0
        (row,) = png.with_suffix(".md").read_text().splitlines()[2:]
        assert row.split("|")[1:3] == [" adam ", " Adam "]


# --------------------------------------------------------------------------- resume


@pytest.mark.filterwarnings("ignore")
def test_ckpt_path_last_continues_the_same_version_and_its_metrics(workdir, caplog) -> None:
    config = write(workdir / "tiny.yaml", {**TINY, "optim": {"optimizer": "SGD"}})
    stop = "--trainer.callbacks+=test_cli_args.StopAfterFirstEpoch"
    assert run("fit", "--config", config, stop) == 0
    assert run("fit", "--config", config, "--ckpt_path", "last") == 0
    assert "ckpt_path 'last' resumes from runs/tiny/version_0/checkpoints/last.ckpt" in caplog.text
    versions = sorted(p.name for p in (workdir / "runs" / "tiny").iterdir())
    assert versions == ["version_0"]
    rows = read_metrics(workdir / "runs" / "tiny" / "version_0")
    # one file for the whole run: the 3 steps of epoch 0, then the 3 of epoch 1 (an optimizer
    # without a scheduler is logged at epoch start and at batch start, as LearningRateMonitor)
    steps = [int(r["step"]) for r in rows if r.get("lr-SGD/default")]
    assert steps == [0, 0, 1, 2, 3, 3, 4, 5]


@pytest.mark.filterwarnings("ignore")
def test_a_refused_resume_writes_nothing(workdir, capsys) -> None:
    config = write(
        workdir / "tiny.yaml", {**TINY, "optim": {"optimizer": "SGD", "schedule": "Poly"}}
    )
    assert run("fit", "--config", config) == 0
    (ckpt,) = (workdir / "runs" / "tiny").glob("version_0/checkpoints/last.ckpt")
    before = sorted(str(p) for p in (workdir / "runs").rglob("*"))
    capsys.readouterr()
    assert (
        run("fit", "--config", config, "--trainer.max_epochs", "3", "--ckpt_path", str(ckpt)) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: optim (total_steps): the checkpoint was saved with run length 6")
    assert "but this run has 9" in err
    assert sorted(str(p) for p in (workdir / "runs").rglob("*")) == before
