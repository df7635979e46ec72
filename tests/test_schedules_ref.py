"""The schedule reference is read from the code, and other libraries' names are translated.

``lit-optim schedules`` and ``docs/schedules.md`` come from one function over the
registry; torch / timm / Hugging Face argument names are refused with their lit_optim
name and conversion, every wrong argument of a spec in one message.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

from lit_optim.core.errors import ConfigError
from lit_optim.core.schedules import build_schedule, registered
from lit_optim.core.schedules.vocabulary import FOREIGN_NAMES, renames_of
from lit_optim.tools.schedules_ref import entries, schedules_markdown, schedules_text

DOC = ROOT / "docs" / "schedules.md"


def test_docs_schedules_md_is_what_the_code_says() -> None:
    # Regenerate with: lit-optim schedules --markdown > docs/schedules.md
    assert DOC.read_text() == schedules_markdown()


def test_every_registered_schedule_is_listed_with_its_arguments_and_defaults() -> None:
    text = schedules_text()
    listed = [e.name for e in entries()]
    assert listed == list(registered())
    assert len(listed) == 13
    assert "Cosine(min_factor=0.0, total=None, waves=0.5, k_decay=1.0)\n" in text
    assert "Step(step_size, gamma=0.1)\n" in text  # required arguments bare
    assert "Sequence(schedules, boundaries, shift=True)\n" in text
    assert "    Half a cosine from 1 down to min_factor over total steps, then flat.\n" in text
    for name, cls in registered().items():
        fields = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
        (entry,) = [e for e in entries() if e.name == name]
        assert [a for a, _, _ in entry.arguments] == fields


def test_markdown_reference_has_a_table_per_schedule_and_the_other_libraries_names() -> None:
    md = schedules_markdown()
    assert md.count("\n## ") == len(registered())
    assert "| `min_factor` | `float` | `0.0` |" in md
    assert "| `step_size` | `float` | required |" in md
    cosine = md[md.index("\n## Cosine\n") : md.index("\n## CosineRestarts\n")]
    assert "`T_max` -> `total`" in cosine and "`eta_min` -> `min_factor`" in cosine


def test_schedules_command_prints_the_reference_and_exits_0() -> None:
    proc = run_cli("schedules", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == schedules_text()
    assert proc.stderr == ""
    proc = run_cli("schedules", "--markdown", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == schedules_markdown()


def test_schedules_command_does_not_import_lightning() -> None:
    code = (
        "import sys\nfrom lit_optim.tools.main import main\nmain(['schedules'])\n"
        "print('lightning' in sys.modules, 'jsonargparse' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == "False False"


def test_every_foreign_name_points_at_an_argument_a_schedule_has() -> None:
    params = {
        name: [f.name for f in dataclasses.fields(cls) if f.init]
        for name, cls in registered().items()
    }
    for foreign, targets in FOREIGN_NAMES.items():
        assert targets, foreign
        for where, _ in targets:
            if where is None:
                continue
            owner, _, arg = where.rpartition(".")
            owners = [owner] if owner else list(params)
            assert any(arg in params[o] for o in owners), (foreign, where)


def test_renames_of_cosine_restarts_are_torch_and_timm_names() -> None:
    cls = registered()["CosineRestarts"]
    names = renames_of("CosineRestarts", [f.name for f in dataclasses.fields(cls)])
    assert names["T_0"] == "period" and names["T_mult"] == "period_mult"
    assert names["cycle_decay"] == "decay" and names["cycle_limit"] == "cycles"
    assert names["eta_min"] == "min_factor" and names["num_cycles"] == "cycles"


def refused(spec: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_schedule(spec)
    return info.value


def test_torch_cosine_arguments_are_refused_together_with_their_conversion() -> None:
    err = refused({"class_path": "Cosine", "init_args": {"T_max": 100, "eta_min": 1e-5}})
    assert str(err) == (
        "optim.schedule.init_args: unknown arguments of Cosine: T_max -> total: 100; "
        "eta_min -> min_factor = eta_min / base lr (1e-05 / lr) "
        "(valid: min_factor, total, waves, k_decay)"
    )


def test_torch_linear_and_onecycle_arguments_name_their_equivalents() -> None:
    linear = refused(
        {
            "class_path": "Linear",
            "init_args": {"start_factor": 0.5, "end_factor": 1.0, "total_iters": 5},
        }
    )
    assert linear.reason.startswith(
        "unknown arguments of Linear: end_factor -> min_factor: 1.0; total_iters -> total: 5"
    )
    torch_args = {"max_lr": 0.1, "total_steps": 100, "anneal_strategy": "cos", "pct_start": 0.25}
    onecycle = refused({"class_path": "OneCycle", "init_args": torch_args})
    assert onecycle.key == "optim.schedule.init_args"
    assert onecycle.reason.split("; ") == [
        "unknown arguments of OneCycle: max_lr -> the peak lr is the optimizer's lr: "
        "optim.optimizer.init_args.lr: 0.1",
        "total_steps -> drop it: the run length comes from the trainer",
        "anneal_strategy -> anneal: cosine or linear (torch's 'cos' is 'cosine') (valid: "
        "pct_start, div_factor, final_div_factor, anneal, three_phase)",
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (("Step", {"step_size": 3, "milestones": [3, 6]}),
         "milestones -> milestones are MultiStep's; use class_path: MultiStep"),
        (("MultiStep", {"milestones": [3], "step_size": 3}),
         "step_size -> MultiStep takes milestones: [s, 2 s, ...]; step_size is Step's"),
        (("Cosine", {"gamma": 0.5}),
         "gamma -> gamma is the factor of Step, MultiStep and Exponential; this schedule has none"),
        (("CosineRestarts", {"period": 10, "gamma": 0.5}),
         "gamma -> decay: 0.5 (the peak's factor from one cycle to the next)"),
        (("InverseSqrt", {"warmup_steps": 4000}),
         "warmup_steps -> timescale: 4000 (T5's warmup_steps)"),
        (("Poly", {"warmup_steps": 500}),
         "warmup_steps -> a warmup is its own key: optim.warmup: {steps: 500}"),
        (("CosineRestarts", {"T_0": 10, "T_mult": 2, "eta_min": 0.0}), "T_0 -> period: 10"),
        (("Poly", {"lr_end": 1e-7, "num_training_steps": 1000}),
         "lr_end -> min_factor = lr_end / base lr (1e-07 / lr); num_training_steps -> total: 1000"),
        (("Lambda", {"lr_lambda": "0.9 ** epoch"}), "lr_lambda -> expr: '<expression of step>'"),
    ],
)  # fmt: skip
def test_other_libraries_names_are_named_in_lit_optim_words(spec, expected) -> None:
    name, init_args = spec
    err = refused({"class_path": name, "init_args": init_args})
    assert expected in err.reason, err.reason


def test_one_plain_typo_keeps_the_did_you_mean_message() -> None:
    err = refused({"class_path": "Poly", "init_args": {"powr": 2}})
    assert str(err) == (
        "optim.schedule.init_args.powr: unknown argument of Poly; did you mean 'power'? "
        "(valid: power, min_factor, total, k_decay)"
    )


def test_a_typo_next_to_a_torch_name_is_in_the_same_message() -> None:
    err = refused({"class_path": "Cosine", "init_args": {"T_max": 10, "k_decy": 2}})
    assert "T_max -> total: 10; k_decy: unknown; did you mean 'k_decay'?" in err.reason


@pytest.mark.slow
def test_cli_refuses_torch_cosine_arguments_in_one_line(tmp_path) -> None:
    spec = "{class_path: Cosine, init_args: {T_max: 100, eta_min: 1.0e-5}}"
    proc = run_cli("fit", "--optim.schedule", spec, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.splitlines() == [
        "error: optim.schedule.init_args: unknown arguments of Cosine: T_max -> total: 100; "
        "eta_min -> min_factor = eta_min / base lr (1e-05 / lr) "
        "(valid: min_factor, total, waves, k_decay)"
    ]


def section_error(section: dict) -> ConfigError:
    from lit_optim.core.validate import validate_section

    with pytest.raises(ConfigError) as info:
        validate_section(section)
    return info.value


def test_other_libraries_warmup_and_group_keys_get_their_lit_optim_form() -> None:
    err = section_error({"warmup": {"warmup_t": 5, "warmup_lr_init": 1e-6}})
    assert err.key == "optim.warmup"
    assert err.reason.startswith(
        "unknown keys: warmup_t -> steps: 5; warmup_lr_init -> start_factor = warmup_lr_init "
        "/ base lr (1e-06 / lr) (valid: steps, epochs, fraction"
    )
    err = section_error({"warmup_steps": 100})
    assert str(err).startswith(
        "optim.warmup_steps: unknown key: warmup_steps -> warmup: {steps: 100}"
    )
    err = section_error({"groups": [{"params": ["head.*"], "lr_mult": 10}]})
    assert str(err).startswith("optim.groups[0].lr_mult: unknown key: lr_mult -> lr_scale: 10")


def test_two_typos_of_the_section_are_reported_together() -> None:
    err = section_error({"schedul": "Cosine", "wamup": {"steps": 5}})
    assert err.key == "optim"
    assert err.reason.startswith(
        "unknown keys: schedul: unknown; did you mean 'schedule' or 'momentum_schedule' or "
        "'weight_decay_schedule'?; wamup: unknown; did you mean 'warmup' or 'momentum_warmup'?"
    )
