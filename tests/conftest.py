"""Shared fixtures: tiny models and a way to run ``lit-optim`` as a user would."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

# One compute thread per process, inherited by every subprocess the tests start: the
# models are tiny, and two workers (pytest-xdist) or a busy machine with OpenMP's
# spinning threads on 2 cores cost far more than a second thread gains.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_optim import OptimConfig, OptimMixin

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # torch may be imported already

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


class TinyNet(OptimMixin, pl.LightningModule):
    """Linear layers named like a real model: ``embed``, ``blocks.N``, ``norm``, ``head``."""

    def __init__(self, optim: OptimConfig | dict | None = None, depth: int = 3) -> None:
        super().__init__()
        self.optim = optim
        self.save_hyperparameters()
        self.embed = nn.Linear(4, 8)
        self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(depth)])
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = torch.relu(block(x))
        return self.head(self.norm(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))


class PlainNet(pl.LightningModule):
    """A model that knows nothing of lit_optim and has its own configure_optimizers."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def loader(n: int = 64, batch_size: int = 8, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def train_batches(datamodule: pl.LightningDataModule) -> int:
    """Training batches per epoch, as the data module's own train loader says.

    Tests derive step counts from this instead of hard-coding the digits dataset's size.
    """
    datamodule.setup("fit")
    return len(datamodule.train_dataloader())


def config_steps(config: Path) -> tuple[int, int]:
    """``(optimizer steps per epoch, max_epochs)`` of a digits YAML config (no accumulation)."""
    import yaml

    from lit_optim.demo import DigitsDataModule

    cfg = yaml.safe_load(Path(config).read_text())
    data = DigitsDataModule(**(cfg["data"].get("init_args") or {}))
    return train_batches(data), int(cfg["trainer"]["max_epochs"])


def read_metrics(log_dir: Path) -> list[dict[str, str]]:
    with open(Path(log_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def series(rows: list[dict[str, str]], key: str) -> dict[int, float]:
    """``{step: value}`` of one metric column in a CSVLogger file."""
    return {int(r["step"]): float(r[key]) for r in rows if r.get(key) not in (None, "")}


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run ``lit-optim`` in a subprocess, exactly as a user types it."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    exe = Path(sys.executable).with_name("lit-optim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lit_optim"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def run_main(cwd: Path, *args: str) -> None:
    """``lit-optim <args>`` in this process, in ``cwd``: the console script's entry point.

    No interpreter start-up; what a run changes globally is put back afterwards, also when
    it exits or raises: the working directory, ``sys.argv``, the environment (Lightning's
    ``seed_everything`` sets ``PL_GLOBAL_SEED``) and torch's deterministic-algorithms flag.
    """
    from lit_optim.tools.main import main

    saved = os.getcwd(), sys.argv, dict(os.environ), torch.are_deterministic_algorithms_enabled()
    os.chdir(cwd)
    sys.argv = ["lit-optim"]
    try:
        main(list(args))
    finally:
        os.chdir(saved[0])
        sys.argv = saved[1]
        os.environ.clear()
        os.environ.update(saved[2])
        torch.use_deterministic_algorithms(saved[3])


@pytest.fixture
def tiny_loader() -> DataLoader:
    return loader()


#: Counts reported at the end of the run (``record_count``), e.g. bad configs refused.
COUNTS: dict[str, int] = {}


def record_count(label: str, n: int = 1) -> None:
    """Add ``n`` to a count printed in the terminal summary of the test run."""
    COUNTS[label] = COUNTS.get(label, 0) + n


def pytest_sessionfinish(session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller prints the sum
        workeroutput["lit_optim_counts"] = dict(COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    for label, n in getattr(node, "workeroutput", {}).get("lit_optim_counts", {}).items():
        record_count(label, n)


def pytest_terminal_summary(terminalreporter) -> None:
    if COUNTS:
        terminalreporter.section("lit_optim validation counts")
        for label, n in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{label}: {n}")
