"""Kill and resume: SIGKILL a real ``lit-optim fit`` mid-epoch, resume, compare to a clean run.

For every recipe: a reference run (uninterrupted), a run killed with SIGKILL at a random
step mid-epoch (a real subprocess, see ``kill_resume_harness.KillAtStep``), and a run
resumed with ``--ckpt_path`` from the last step checkpoint. Asserted:

- the lr of every group logged at every step of the resumed run is bit-identical to the
  reference (the killed run's own log agrees too);
- the final weights, optimizer state and scheduler state are bit-identical.

Exact weights need data that resumes mid-epoch: the single-device cases use
``kill_resume_harness.ResumableDigits`` (shuffle from (seed, epoch), loader state in the
checkpoint). The DDP case uses the demo data (Lightning's DistributedSampler, seeded
per epoch) with a kill mid-epoch for the lrs; its weights are compared at an
end-of-epoch resume, because Lightning restarts a non-resumable loader from its first
batch on a mid-epoch resume (the lrs are still exact; the batches are not).

Reference and resumed runs of single-device cases run in-process through
``conftest.run_main`` (the console script's entry point, no interpreter start-up);
the killed runs are separate processes forked from a server that has imported lit_optim
once (``forked_cli``: its own pid, session and output, a real SIGKILL), started together so
they overlap. The DDP case starts the console script itself: Lightning launches its second
rank by running the command line again.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import CONFIGS, ROOT, read_metrics, record_count, run_main
from forked_cli import Forked, start_forked
from kill_resume_harness import KILL_ENV

pytestmark = pytest.mark.slow

CKPT_EVERY = 2  # step checkpoints every 2 optimizer steps


@dataclass(frozen=True)
class Case:
    name: str
    config: str
    batches: int  # limit_train_batches
    epochs: int = 2
    accumulate: int = 1
    optim: dict[str, Any] = field(default_factory=dict)  # merged into optim:
    devices: int = 1
    kill_after: int = 0  # the checkpoint resumed from is at a later step (e.g. after a join)
    callbacks: tuple[str, ...] = ()  # class paths added to the trainer's callbacks

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.batches // self.accumulate)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def kill_step(self, *, mid_epoch: bool = True) -> int:
        """A random step whose last checkpoint is mid-epoch (or exactly at an epoch end)."""
        per = self.steps_per_epoch
        rng = random.Random(self.name)
        candidates = [
            n
            for n in range(CKPT_EVERY + 1, self.total_steps)
            if n % CKPT_EVERY
            and ((n - n % CKPT_EVERY) % per != 0) == mid_epoch
            and n - n % CKPT_EVERY >= 1
            and n - n % CKPT_EVERY > self.kill_after
        ]
        return rng.choice(candidates)


CASES = [
    Case("poly_warmup", "digits_poly", 8, optim={"warmup": {"steps": 4, "start_factor": 0.1}}),
    Case("per_group_lambda", "digits_lambda", 8, epochs=3),
    Case("layer_decay_cosine", "digits_layer_decay_cosine", 8),
    Case("torch_onecycle", "digits_onecycle", 8),
    pytest.param(
        Case(
            "plateau",
            "digits_plateau",
            6,
            epochs=3,
            # mode max on a falling loss: every epoch is "no improvement", so the lr halves
            # after each epoch and the resumed run must restore the plateau state to match.
            optim={
                "schedule": {
                    "class_path": "torch.optim.lr_scheduler.ReduceLROnPlateau",
                    "init_args": {"mode": "max", "factor": 0.5, "patience": 0},
                }
            },
        ),
        id="plateau",
    ),
    Case(
        "epoch_interval",
        "digits_poly",
        6,
        epochs=3,
        optim={
            "interval": "epoch",
            "warmup": None,
            "schedule": {"class_path": "Step", "init_args": {"step_size": 1, "gamma": 0.5}},
        },
    ),
    Case(
        "accumulate_2",
        "digits_poly",
        12,
        accumulate=2,
        optim={"warmup": {"steps": 3, "start_factor": 0.1}},
    ),
    # An optimizer per group rule: Muon + AdamW as one composite optimizer.
    Case("muon_adamw_composite", "digits_muon", 8),
    # Schedule-free: checkpoints are written in eval mode, training resumes in train mode.
    Case("schedule_free", "digits_schedulefree", 8),
    # a group joins at epoch 1 (step 8); killed and resumed after the join
    Case(
        "join_rule",
        "digits_poly",
        8,
        optim={
            "schedule": "Cosine",
            "warmup": None,
            "groups": [
                {"name": "head", "params": ["head.*"], "lr_scale": 10.0},
                {"name": "blocks", "params": ["blocks.*"], "unfreeze_at": {"epoch": 1}},
            ],
        },
        kill_after=8,
    ),
    # the same join made by Lightning's BaseFinetuning
    Case(
        "join_callback",
        "digits_poly",
        8,
        optim={
            "schedule": "Cosine",
            "warmup": None,
            "groups": [{"name": "head", "params": ["head.*"], "lr_scale": 10.0}],
        },
        kill_after=8,
        callbacks=("kill_resume_harness.UnfreezeBlocks",),
    ),
]
ALL_CASES = [c.values[0] if hasattr(c, "values") else c for c in CASES]
DDP = Case(
    "ddp_2_cpu",
    "digits_poly",
    6,
    devices=2,
    optim={"warmup": {"steps": 2, "start_factor": 0.1}},
    kill_after=6,  # killed in the second epoch: the first epoch's end checkpoint exists
)


def write_config(case: Case, root: Path, data: str) -> Path:
    cfg = yaml.safe_load((CONFIGS / f"{case.config}.yaml").read_text())
    trainer = cfg["trainer"]
    trainer.update(
        max_epochs=case.epochs,
        limit_train_batches=case.batches,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        accumulate_grad_batches=case.accumulate,
        deterministic=True,
        accelerator="cpu",
        devices=case.devices,
        log_every_n_steps=1,
        enable_progress_bar=False,
    )
    if case.devices > 1:
        trainer["strategy"] = "ddp"
    trainer["logger"]["init_args"].update(save_dir=str(root / "runs"), name=case.name)
    trainer["callbacks"] = [
        {
            "class_path": "lit_optim.LRLogger",
            "init_args": {"logging_interval": "step", "every_n_steps": 1, "log_momentum": True},
        },
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {
                "every_n_train_steps": CKPT_EVERY,
                "save_top_k": -1,
                "save_last": True,
                "filename": "{step}",
            },
        },
        {"class_path": "kill_resume_harness.KillAtStep"},
        *({"class_path": path} for path in case.callbacks),
    ]
    cfg["data"]["class_path"] = data
    cfg["optim"].update(case.optim)
    cfg["optim"]["summary"] = False
    path = root / f"{case.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit_args(config: Path, version: str, ckpt: Path | None = None) -> list[str]:
    args = ["fit", "--config", str(config), "--trainer.logger.init_args.version", version]
    return [*args, "--ckpt_path", str(ckpt)] if ckpt else args


def start(args: list[str], cwd: Path, kill_at: int | None = None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        ),
    }
    if kill_at is not None:
        env["LIT_OPTIM_KILL_AT_STEP"] = str(kill_at)
    exe = Path(sys.executable).with_name("lit-optim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lit_optim"]
    return subprocess.Popen(
        [*cmd, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its DDP ranks share our process group id: clean up by id
    )


def start_killed(args: list[str], cwd: Path, kill_at: int, output: Path) -> Forked:
    """A run that SIGKILLs itself at step ``kill_at``: forked, already imported."""
    return start_forked(args, cwd, {**os.environ, KILL_ENV: str(kill_at)}, output)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # any rank left behind by the kill
    return proc.returncode, err


def lr_log(log_dir: Path) -> dict[str, dict[int, str]]:
    """``{lr key: {step: value as written}}``: compared as text, i.e. bit for bit."""
    rows = read_metrics(log_dir)
    keys = [k for k in rows[0] if k.startswith("lr-")] if rows else []
    return {k: {int(r["step"]): r[k] for r in rows if r[k] != ""} for k in keys}


def final_state(ckpt_dir: Path, step: int) -> dict[str, Any]:
    (path,) = ckpt_dir.glob(f"step={step}*.ckpt")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return {
        "weights": ckpt["state_dict"],
        "optimizer": ckpt["optimizer_states"],
        "schedulers": ckpt["lr_schedulers"],
        "global_step": ckpt["global_step"],
    }


def assert_same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def check_resume(case: Case, runs: Path, kill_at: int) -> None:
    resume_step = kill_at - kill_at % CKPT_EVERY
    ref, killed, resumed = (lr_log(runs / case.name / v) for v in ("ref", "killed", "resumed"))
    assert ref and set(ref) == set(resumed), (ref.keys(), resumed.keys())
    if case.kill_after:  # the joined group's lr starts at its join, the others at 0
        assert {min(v) for v in ref.values()} == {0, case.kill_after}, ref.keys()
    for key, values in ref.items():
        first = min(values)  # 0, or the step a group joined at
        assert first == 0 or case.kill_after, key
        assert sorted(values) == list(range(first, case.total_steps)), key
        assert sorted(resumed[key]) == list(range(max(first, resume_step), case.total_steps)), key
        for step, lr in resumed[key].items():
            assert lr == values[step], f"{key} at step {step}: {lr} != {values[step]}"
        # the killed run wrote its rows at every checkpoint (LRLogger.on_save_checkpoint):
        # with the resumed run's they cover every step, and agree with the reference
        assert set(range(first, resume_step)) <= set(killed.get(key, {})), (key, sorted(killed))
        for step, lr in killed[key].items():
            assert step < kill_at and lr == values[step], (key, step)
    record_count("kill/resume: lr values compared bit for bit", sum(map(len, resumed.values())))
    a = final_state(runs / case.name / "ref" / "checkpoints", case.total_steps)
    b = final_state(runs / case.name / "resumed" / "checkpoints", case.total_steps)
    assert_same(a, b, f"{case.name} final state (killed at {kill_at}, resumed at {resume_step})")
    record_count("kill/resume: cases with identical lrs and final state", 1)


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Start every single-device killed run at once; the tests collect them."""
    root = tmp_path_factory.mktemp("kill_resume")
    started = {}
    for case in ALL_CASES:
        config = write_config(case, root, "kill_resume_harness.ResumableDigits")
        kill_at = case.kill_step()
        output = root / f"{case.name}.killed.log"
        started[case.name] = (
            config,
            kill_at,
            start_killed(fit_args(config, "killed"), root, kill_at, output),
        )
    yield {"root": root, "started": started}
    for _, _, proc in started.values():
        proc.kill()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", CASES, ids=[getattr(c, "name", "") for c in CASES])
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(
    case: Case, killed_runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root: Path = killed_runs["root"]
    config, kill_at, proc = killed_runs["started"][case.name]
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    run_main(root, *fit_args(config, "ref"))
    code, output = proc.finish()
    assert code == -signal.SIGKILL, f"killed run exited {code}:\n{output[-3000:]}"
    ckpt_dir = root / "runs" / case.name / "killed" / "checkpoints"
    resume_step = kill_at - kill_at % CKPT_EVERY
    assert (ckpt_dir / "last.ckpt").exists(), sorted(ckpt_dir.iterdir())
    assert torch.load(ckpt_dir / "last.ckpt", weights_only=False)["global_step"] == resume_step
    assert resume_step % case.steps_per_epoch, "the resume point must be mid-epoch"
    run_main(root, *fit_args(config, "resumed", ckpt_dir / "last.ckpt"))
    check_resume(case, root / "runs", kill_at)


def test_ddp_two_cpu_processes_sigkill_then_resume(tmp_path: Path) -> None:
    """A 2-process DDP run killed mid-epoch, resumed twice: mid-epoch (lrs), epoch end (+ weights).

    The demo data goes through Lightning's DistributedSampler (seeded per epoch), which
    restarts from its first batch on a mid-epoch resume, so there only the lrs can match.
    The killed run also left the checkpoint of its first epoch's end (``step=6.ckpt``):
    resumed from there, the weights match too. One reference run serves both; the runs
    overlap to save wall time.
    """
    config = write_config(DDP, tmp_path, "lit_optim.demo.DigitsDataModule")
    kill_at = DDP.kill_step(mid_epoch=True)  # after the epoch end (DDP.kill_after)
    ref = start(fit_args(config, "ref"), tmp_path)
    code, err = finish(start(fit_args(config, "killed"), tmp_path, kill_at=kill_at))
    assert code == -signal.SIGKILL, f"killed run exited {code}:\n{err[-3000:]}"
    checkpoints = tmp_path / "runs" / DDP.name / "killed" / "checkpoints"
    resume_from = {
        "mid": (checkpoints / "last.ckpt", kill_at - kill_at % CKPT_EVERY),
        "end": (checkpoints / f"step={DDP.steps_per_epoch}.ckpt", DDP.steps_per_epoch),
    }
    resumed = {
        k: start(fit_args(config, f"resumed_{k}", path), tmp_path)
        for k, (path, _) in resume_from.items()
    }
    for name, proc in [("ref", ref), *resumed.items()]:
        code, err = finish(proc)
        assert code == 0, f"{name}:\n{err[-3000:]}"
    runs = tmp_path / "runs" / DDP.name
    ref_lr = lr_log(runs / "ref")
    for k, (path, resume_step) in resume_from.items():
        assert torch.load(path, weights_only=False)["global_step"] == resume_step
        assert (resume_step % DDP.steps_per_epoch == 0) == (k == "end")
        resumed_lr = lr_log(runs / f"resumed_{k}")
        assert ref_lr and resumed_lr.keys() == ref_lr.keys()
        for key, values in ref_lr.items():
            assert sorted(resumed_lr[key]) == list(range(resume_step, DDP.total_steps)), key
            assert all(resumed_lr[key][s] == values[s] for s in resumed_lr[key]), (k, key)
        record_count(
            "kill/resume: lr values compared bit for bit", sum(map(len, resumed_lr.values()))
        )
    a = final_state(runs / "ref" / "checkpoints", DDP.total_steps)
    b = final_state(runs / "resumed_end" / "checkpoints", DDP.total_steps)
    assert_same(a, b, f"DDP final state (killed at {kill_at}, epoch-end resume)")
    record_count("kill/resume: cases with identical lrs and final state", 1)
