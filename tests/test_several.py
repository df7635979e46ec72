"""Several separate optimizers from ``optim.optimizers`` (manual optimization, GAN-style)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
import yaml
from conftest import ROOT, TinyNet, read_metrics, run_cli, series
from lightning.pytorch.callbacks import LearningRateMonitor

from lit_optim import ConfigError, LRLogger, OptimConfig
from lit_optim.core.build import build
from lit_optim.core.plan import RunPlan, TrainLoop
from lit_optim.tools.main import main


def build_several(model, cfg):
    return build(model, cfg, lambda section: None)


EXAMPLES = ROOT / "examples"


def gan_optim() -> dict:
    return yaml.safe_load((EXAMPLES / "gan.yaml").read_text())["optim"]


def test_each_entry_gets_its_own_parameters_optimizer_and_schedule() -> None:
    from examples.gan import RingGAN

    model = RingGAN()
    loop = TrainLoop(batches_per_epoch=5, max_epochs=2)  # 10 steps, 5 per epoch
    built = build(model, OptimConfig.from_dict(gan_optim()), lambda c: RunPlan.of(c, loop))
    assert [(b.name, type(b.optimizer).__name__) for b in built] == [
        ("generator", "Adam"),
        ("discriminator", "Adam"),
    ]
    g, d = (set(map(id, b.optimizer.param_groups[0]["params"])) for b in built)
    assert g == set(map(id, model.generator.parameters()))
    assert d == set(map(id, model.discriminator.parameters()))
    assert built[0].optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    # generator: 4 warmup steps from 0.1x then cosine; discriminator: linear to 0.5x
    assert built[0].scheduler.lr_at(0) == [pytest.approx(2e-4)]
    assert built[1].scheduler.lr_at(5) == [pytest.approx(1e-3 * (1 - 0.5 * 5 / 10))]


def test_an_entry_without_params_takes_the_rest() -> None:
    model = TinyNet()
    cfg = OptimConfig(
        optimizers={
            "head": {"params": ["head.*"], "optimizer": "SGD"},
            "body": {"optimizer": {"class_path": "AdamW", "init_args": {"lr": 0.01}}},
        }
    )
    head, body = build_several(model, cfg)
    assert len(head.optimizer.param_groups[0]["params"]) == 2
    assert sum(len(g["params"]) for g in body.optimizer.param_groups) == 10
    assert [g["name"] for g in body.optimizer.param_groups] == ["default", "default/no_decay"]


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"optimizers": {}}, "optim.optimizers: expected a mapping of named optimizers"),
        (
            {"optimizers": {"g": {"params": ["head.*"]}}},
            "optim.optimizers.g.optimizer: missing; give an optimizer",
        ),
        (
            {"optimizers": {"g": {"params": ["head.*"], "optimizer": {}}}},
            "optim.optimizers.g.optimizer.class_path: missing",
        ),
        (
            {"schedule": "Cosine", "optimizers": {"g": {"optimizer": "SGD"}}},
            "optim.optimizers: give several optimizers under optim.optimizers or one optimizer "
            "(optim.optimizer, groups, schedule, ...), not both; found optim.schedule",
        ),
        (
            {"optimizers": {"g": {"optimizer": "SGD", "sheduel": "Cosine"}}},
            "optim.optimizers.g.sheduel: unknown key; did you mean 'schedule'",
        ),
        (
            {
                "optimizers": {
                    "g": {"params": ["haed.*"], "optimizer": "SGD"},
                    "r": {"optimizer": "SGD"},
                }
            },
            "optim.optimizers.g.params: 'haed.*' matched no parameter (closest: 'head.weight'",
        ),
        (
            {"optimizers": {"g": {"params": ["head.*"], "optimizer": "SGD"}}},
            "optim.optimizers: 10 trainable parameters belong to no optimizer (embed.weight (8, 4)",
        ),
        (
            {
                "optimizers": {
                    "a": {"params": ["head.*"], "optimizer": "SGD"},
                    "b": {"params": ["head.weight", "norm.*"], "optimizer": "SGD"},
                    "c": {"optimizer": "SGD"},
                }
            },
            "optim.optimizers.b: 'head.weight' is also selected by 'a'",
        ),
        (
            {"optimizers": {"a": {"optimizer": "SGD", "groups": [{"params": ["x.*"]}]}}},
            "optim.optimizers.a.groups[0].params: 'x.*' matched no parameter",
        ),
    ],
)
def test_bad_several_optimizers_section_is_one_key_path_line(optim: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_several(TinyNet(), OptimConfig.from_dict(optim))
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_automatic_optimization_with_several_optimizers_is_refused() -> None:
    cfg = OptimConfig(optimizers={"a": {"optimizer": "SGD"}})
    with pytest.raises(ConfigError, match=r"^optim\.optimizers: several optimizers need manual"):
        TinyNet(optim=cfg).configure_optimizers()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gan_trains_and_lrlogger_writes_lightnings_keys_at_lightnings_steps(tmp_path) -> None:
    from examples.gan import RingData, RingGAN

    torch.manual_seed(0)
    model = RingGAN(optim=OptimConfig.from_dict({**gan_optim(), "summary": False}))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ours = pl.loggers.CSVLogger(tmp_path, name="ours", version=0)
    theirs = pl.loggers.CSVLogger(tmp_path, name="theirs", version=0)

    class Mirror(LearningRateMonitor):
        """Lightning's monitor writing to its own logger, to compare keys and steps."""

        def on_train_batch_start(self, trainer, *args, **kwargs):
            keep = trainer.loggers
            trainer.loggers = [theirs]
            try:
                super().on_train_batch_start(trainer, *args, **kwargs)
            finally:
                trainer.loggers = keep

    trainer = pl.Trainer(
        max_epochs=2,
        logger=ours,
        log_every_n_steps=1,
        callbacks=[LRLogger(), Mirror()],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, RingData(n=512))
    ours.finalize("success")
    theirs.finalize("success")
    mine, lightning = (
        read_metrics(tmp_path / "ours" / "version_0"),
        read_metrics(tmp_path / "theirs" / "version_0"),
    )
    keys = sorted(k for k in mine[0] if k.startswith("lr-"))
    assert keys == sorted(k for k in lightning[0] if k.startswith("lr-"))
    assert keys == ["lr-Adam-1/default", "lr-Adam/default"]
    for key in keys:
        assert series(mine, key) == series(lightning, key), key
    gen = series(mine, "lr-Adam/default")
    assert sorted(gen) == list(range(8))  # Lightning's per-batch step, not 2x optimizer steps
    assert gen[4] == pytest.approx(2e-3) and gen[7] == pytest.approx(
        2e-3 * 0.5 * (1 + math.cos(math.pi * 3 / 4))
    )
    assert trainer.global_step == 16  # both optimizers stepped every batch
    moved = {n: (p - before[n]).abs().max().item() for n, p in model.named_parameters()}
    assert min(moved.values()) > 0, moved


@pytest.mark.slow
def test_gan_example_trains_from_its_config(tmp_path) -> None:
    proc = run_cli(
        "fit",
        "--config",
        str(EXAMPLES / "gan.yaml"),
        "--trainer.max_epochs=1",
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "optimizer 'generator':" in proc.stdout and "optimizer 'discriminator':" in proc.stdout
    rows = read_metrics(next((tmp_path / "runs" / "gan").glob("version_*")))
    assert len(series(rows, "loss_d")) == 8 and len(series(rows, "loss_g")) == 8
    assert {k for k in rows[0] if k.startswith("lr-")} == {"lr-Adam/default", "lr-Adam-1/default"}


def test_a_bad_several_section_on_the_cli_exits_2(tmp_path, capsys, monkeypatch) -> None:
    optim = gan_optim()
    optim["optimizers"]["generator"]["params"] = ["gen.*"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"optim": optim}))
    monkeypatch.chdir(tmp_path)  # gan.yaml logs under ./runs
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(EXAMPLES / "gan.yaml"), "--config", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    # Checked before fit: the error is the first line, no log directory was made.
    assert err[0].startswith("error: optim.optimizers.generator.params: 'gen.*' matched no"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_several_optimizers_on_an_automatically_optimized_model_exit_2_before_fit(
    tmp_path, capsys, monkeypatch
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "model": {"class_path": "lit_optim.demo.DigitsCNN"},
                "trainer": {"max_epochs": 1, "default_root_dir": str(tmp_path / "runs")},
                "optim": {
                    "optimizers": {
                        "head": {"params": ["head.*"], "optimizer": "SGD"},
                        "body": {"optimizer": "AdamW"},
                    }
                },
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (
        "error: optim.optimizers: several optimizers need manual optimization: set "
        "self.automatic_optimization = False in DigitsCNN.__init__ and step each optimizer "
        "(and its scheduler) in training_step"
    ), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.yaml"]


def snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("change", "first_line"),
    [
        (
            ["--trainer.max_epochs=3"],
            "error: optim.optimizers.generator (total_steps): the checkpoint was saved with run "
            "length",
        ),
        (
            ["--optim", "{optimizers: {discriminator: {schedule: null}}}"],
            "error: ckpt_path: the checkpoint has 2 lr scheduler(s) but this run builds 1 "
            "(optim.optimizers.generator)",
        ),
    ],
    ids=["run_length", "one_schedule_fewer"],
)
def test_resume_of_several_optimizers_is_checked_before_fit(
    tmp_path, capsys, monkeypatch, change, first_line
) -> None:
    monkeypatch.chdir(tmp_path)  # gan.yaml logs under ./runs
    base = ["fit", "--config", str(EXAMPLES / "gan.yaml"), "--trainer.max_epochs=1"]
    main(base)
    assert len(list((tmp_path / "runs").rglob("*.ckpt"))) == 1
    before = snapshot(tmp_path / "runs")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([*base, *change, "--ckpt_path", "last"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(first_line), err
    assert snapshot(tmp_path / "runs") == before  # no new version, nothing rewritten
