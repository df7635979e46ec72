"""Quiet, useful output: the shipped configs run without a warning and say where logs went.

Every run is ``lit-optim`` as a subprocess with Python's default warning filters (the
other CLI tests silence warnings with ``PYTHONWARNINGS=ignore``; these must not).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
from conftest import CONFIGS, ROOT, config_steps, read_metrics, run_cli, series

from lit_optim.demo import DigitsDataModule
from lit_optim.lightning.commands import DEFAULT_CONFIG

pytestmark = pytest.mark.slow

# own_cli.yaml is its own script's config (python examples/own_cli.py; tests/test_examples.py).
SHIPPED = sorted(CONFIGS.glob("*.yaml")) + sorted(
    p for p in (ROOT / "examples").glob("*.yaml") if p.name != "own_cli.yaml"
)
#: The one line a config may print as a warning: plain_model.yaml's model has its own
#: configure_optimizers, which the optim: section replaces on purpose (plain_model_cli.md).
NOTICES = {
    "plain_model.yaml": [
        "warning: lit-optim: PlainMLP.configure_optimizers is replaced by the optim: section."
    ]
}
#: A warning as Python or Lightning print it: ``file.py:12: ...``, a category name, ours.
_WARNING = re.compile(r"\.py:\d+: |Warning\b|^warning: ")


def fit(config: Path | None, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``lit-optim fit`` of a shipped config from the repo root, one epoch, logs in tmp_path.

    ``config=None``: plain ``lit-optim fit``, the embedded default.
    """
    return run_cli(
        "fit", *(["--config", str(config)] if config else []), "--trainer.max_epochs", "1",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"), *extra,
        cwd=ROOT, env={"PYTHONWARNINGS": ""}, timeout=900,
    )  # fmt: skip


def warnings_in(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (proc.stderr + proc.stdout).splitlines() if _WARNING.search(line)]


def locations(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("lit-optim: metrics")]


#: The embedded default of plain ``lit-optim fit`` is this shipped config.
EMBEDDED = CONFIGS / "digits_poly.yaml"
#: ``(config, its optimizer's class name)``: configs trained for 2 epochs, whose logged lrs
#: must be their own optimizer's (``test_every_config_runs``).
EVERY_CONFIG = [
    ("digits_layer_decay_cosine", "AdamW"),
    ("digits_lambda", "SGD"),
    ("digits_onecycle", "SGD"),
    ("digits_plateau", "Adam"),
    ("digits_lbfgs", "LBFGS"),
]


#: Two epochs of 10 batches (at least log_every_n_steps = 5: no warning about it).
TWO_SHORT_EPOCHS = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "10"]
#: The first steps only: what these tests read is printed when fit starts or ends.
FEW_STEPS = ["--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "1"]


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory):
    """``shipped_run(config) -> (proc, tmp)``: one ``fit`` per shipped config, shared.

    The run of a config in :data:`EVERY_CONFIG` is 2 epochs of 10 batches, of the others
    one whole epoch; the tests that read it (no warning, where the logs went; the config's
    own optimizer logged; the embedded default) see the same real ``lit-optim`` process,
    which costs an import of torch and Lightning. :data:`EMBEDDED` runs as plain
    ``lit-optim fit`` (no ``--config``): the CLI reads that very file (``DEFAULT_CONFIG``).
    """
    runs: dict[Path, tuple[subprocess.CompletedProcess[str], Path]] = {}
    two_epochs = {name for name, _ in EVERY_CONFIG}

    def run(config: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
        if config not in runs:
            tmp = tmp_path_factory.mktemp(config.stem)
            if config == EMBEDDED:  # plain `lit-optim fit`: this very file, embedded
                runs[config] = (fit(None, tmp), tmp)
            else:
                extra = TWO_SHORT_EPOCHS if config.stem in two_epochs else []
                runs[config] = (fit(config, tmp, *extra), tmp)
        return runs[config]

    return run


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_runs_without_a_warning_and_says_where_the_logs_went(
    config: Path, shipped_run
) -> None:
    proc, tmp_path = shipped_run(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert warnings_in(proc) == NOTICES.get(config.name, []), proc.stderr[-3000:]
    assert "LeafSpec" not in proc.stderr
    assert "v_num" not in proc.stdout + proc.stderr
    (line,) = locations(proc)
    (version,) = (tmp_path / "runs").glob("*/version_*")
    assert line == (
        f"lit-optim: metrics + lr log -> {version / 'metrics.csv'}; "
        f"checkpoints -> {version / 'checkpoints'}"
    )
    assert (version / "metrics.csv").read_text().startswith(("epoch,", "lr-", "step,"))
    # the demo also keeps its newest step checkpoint (latest-step=N.ckpt)
    assert {p.suffix for p in (version / "checkpoints").iterdir()} == {".ckpt"}


@pytest.mark.parametrize("name, optimizer", EVERY_CONFIG)
def test_every_config_runs(shipped_run, name: str, optimizer: str) -> None:
    proc, tmp_path = shipped_run(CONFIGS / f"{name}.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (version,) = [p for p in (tmp_path / "runs" / name).rglob("version_*") if p.is_dir()]
    rows = read_metrics(version)
    lr_keys = {k for r in rows for k, v in r.items() if k.startswith("lr-") and v}
    assert lr_keys, rows[0].keys()
    # the config's own optimizer runs (not a default one)
    assert all(k.startswith(f"lr-{optimizer}/") or k == f"lr-{optimizer}" for k in lr_keys)
    assert series(rows, "val_acc")
    assert max(int(r["epoch"]) for r in rows if r.get("epoch")) == 1  # both epochs ran


def test_plain_fit_runs_the_embedded_default(shipped_run) -> None:
    # `lit-optim fit` with no --config trains the embedded demo, configs/digits_poly.yaml
    assert DEFAULT_CONFIG.resolve() == EMBEDDED.resolve()
    proc, tmp_path = shipped_run(EMBEDDED)
    assert "fit" in proc.args and "--config" not in proc.args
    assert proc.returncode == 0, proc.stderr[-3000:]
    (version,) = [p for p in (tmp_path / "runs" / "digits_poly").rglob("version_*") if p.is_dir()]
    rows = read_metrics(version)
    per_epoch, _ = config_steps(EMBEDDED)
    assert len(series(rows, "lr-SGD/head")) == per_epoch


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The demo on 2 CPU processes under DDP, 2 epochs, warnings on; each rank dumps its lrs.

    One real run read by two tests: no warning and one location line (rank zero only);
    the same lrs on both ranks, logged once.
    """
    tmp = tmp_path_factory.mktemp("ddp")
    proc = run_cli(
        "fit", "--config", str(EMBEDDED), "--trainer.max_epochs", "2",
        "--trainer.logger.init_args.save_dir", str(tmp / "runs"),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.callbacks+=rank_dump.RankDump",
        cwd=ROOT, timeout=900,
        env={
            "PYTHONWARNINGS": "",
            "LIT_OPTIM_RANK_DUMP": str(tmp),
            "PYTHONPATH": str(Path(__file__).parent),
        },
    )  # fmt: skip
    return proc, tmp


def test_the_demo_under_ddp_runs_without_a_warning(ddp_run) -> None:
    proc, _ = ddp_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert warnings_in(proc) == [], proc.stderr[-3000:]
    (line,) = locations(proc)  # rank zero only
    assert "version_0/metrics.csv" in line


def test_ddp_on_two_cpu_processes_logs_the_same_lrs_once(ddp_run) -> None:
    proc, tmp = ddp_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = json.loads((tmp / "rank0.json").read_text())
    rank1 = json.loads((tmp / "rank1.json").read_text())
    # The training images split over 2 ranks (DistributedSampler pads to equal shares).
    data = DigitsDataModule(batch_size=64)
    data.setup("fit")
    total = 2 * math.ceil(math.ceil(len(data.train_set) / 2) / 64)
    assert rank0 == rank1 and len(rank0) == total  # the same lrs on both ranks, every step
    (version,) = [p for p in (tmp / "runs").rglob("version_*") if p.is_dir()]
    rows = read_metrics(version)
    logged = [int(r["step"]) for r in rows if r.get("lr-SGD/head")]
    assert logged == list(range(total))  # logged once, by rank 0
    head = series(rows, "lr-SGD/head")
    assert [head[s] for s in range(total)] == [lrs[-1] for lrs in rank0]
    warm = 20
    for step in range(warm, total):
        expected = 0.2 * (1 - (step - warm) / (total - warm)) ** 0.9
        assert head[step] == pytest.approx(expected, rel=1e-12)


def test_our_warnings_print_as_one_line_without_file_and_line(tmp_path: Path) -> None:
    # LRLogger(momentum=True) with an optimizer that has no momentum (L-BFGS) warns
    layer = tmp_path / "momentum.yaml"
    layer.write_text(
        "trainer:\n  callbacks: [{class_path: lit_optim.LRLogger, init_args: {momentum: true}}]\n"
    )
    proc = fit(CONFIGS / "digits_lbfgs.yaml", tmp_path, "--config", str(layer), *FEW_STEPS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # LRLogger is a LearningRateMonitor: the monitor's own warning, printed as our one line.
    assert warnings_in(proc) == [
        "warning: You have set log_momentum=True, but some optimizers do not have momentum. "
        "This will log a value 0 for the momentum."
    ], proc.stderr[-3000:]


def test_a_run_without_lr_logger_says_the_lr_is_not_logged(tmp_path: Path) -> None:
    layer = tmp_path / "no_callbacks.yaml"
    layer.write_text("trainer:\n  callbacks: []\n")
    proc = fit(CONFIGS / "digits_poly.yaml", tmp_path, "--config", str(layer), *FEW_STEPS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = locations(proc)
    (version,) = (tmp_path / "runs").glob("*/version_*")
    assert line == (
        f"lit-optim: metrics -> {version / 'metrics.csv'}; lr -> not logged (add "
        f"lit_optim.LRLogger to trainer.callbacks); checkpoints -> {version / 'checkpoints'}"
    )
