"""``lit-optim plot | groups | compare | lr-find`` on a config with several optimizers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, read_metrics, run_cli, run_main, series
from test_tools import png_size

from lit_optim.tools.plot import read_data

GAN = str(ROOT / "examples" / "gan.yaml")
ENV = {"PYTHONPATH": str(ROOT)}  # examples.gan importable from any working directory
STEPS = 32  # 4 epochs of 8 batches (1024 ring points, batch 128)


def generator_lr(t: int) -> float:
    """gan.yaml's generator: 4 linear warmup steps from 0.1x, then Cosine to the end."""
    if t < 4:
        return 2e-3 * (0.1 + 0.9 * t / 4)
    return 2e-3 * 0.5 * (1 + math.cos(math.pi * (t - 4) / (STEPS - 4)))


def discriminator_lr(t: int) -> float:
    """gan.yaml's discriminator: Linear down to 0.5x over the run."""
    return 1e-3 * (1 - 0.5 * t / STEPS)


@pytest.mark.slow
def test_groups_prints_one_table_per_optimizer_in_self_optimizers_order(tmp_path):
    proc = run_cli("groups", "--config", GAN, "--params", cwd=tmp_path, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    head_g = out.index("optimizer 'generator': self.optimizers()[0]")
    head_d = out.index("optimizer 'discriminator': self.optimizers()[1]")
    assert head_g < head_d
    generator, discriminator = out[head_g:head_d], out[head_d:]
    rows = {
        part: {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
        for part, text in (("g", generator), ("d", discriminator))
    }
    # 8*64+64 + 64*64+64 + 64*2+2 generator parameters, 2*64+64 + 64+1 discriminator ones
    assert rows["g"]["default"][2:5] == ["6", "4,866", "0.002"]
    assert rows["d"]["default"][2:5] == ["4", "257", "0.001"]
    assert rows["g"]["total"][1:] == ["6", "4,866"]
    assert rows["d"]["total"][1:] == ["4", "257"]
    # --params: each optimizer lists its own parameters, and only those
    assert "generator.4.bias" in rows["g"] and "discriminator.0.weight" not in rows["g"]
    assert "discriminator.2.bias" in rows["d"] and "generator.0.weight" not in rows["d"]
    assert out.count("Adam (fused) param groups") == 2


@pytest.mark.slow
def test_plotted_lrs_of_each_optimizer_equal_what_fit_logs(monkeypatch, tmp_path, capsys):
    # plot in this process (what it draws is tested); fit below as a real lit-optim process
    monkeypatch.syspath_prepend(str(ROOT))  # examples.gan, as ENV gives the subprocess
    run_main(tmp_path, "plot", "--config", GAN, "-o", "lr.png")
    assert f"wrote lr.png ({STEPS} steps, 2 optimizers, 2 groups)" in capsys.readouterr().out
    assert png_size(tmp_path / "lr.png") == (1100, 968)  # one 4.4-inch row per optimizer
    plotted = read_data(tmp_path / "lr.csv")
    assert list(plotted) == [
        "step",
        "epoch",
        # the keys LRLogger logs in fit: each scheduler is named after its optimizer entry
        "lr-generator/default",
        "lr-discriminator/default",
        "lr-generator/default-momentum",
        "lr-discriminator/default-momentum",
        "lr-generator/default-weight_decay",
        "lr-discriminator/default-weight_decay",
    ]
    gen, disc = plotted["lr-generator/default"], plotted["lr-discriminator/default"]
    assert gen == pytest.approx([generator_lr(t) for t in range(STEPS)], rel=1e-12)
    assert disc == pytest.approx([discriminator_lr(t) for t in range(STEPS)], rel=1e-12)
    assert set(plotted["lr-generator/default-momentum"]) == {0.5}  # betas[0]

    # What fit then logs (LRLogger, Lightning's keys and per-batch steps) is what was drawn.
    proc = run_cli("fit", "--config", GAN, "--trainer.enable_progress_bar=false",
                   cwd=tmp_path, env=ENV)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_metrics(next((tmp_path / "runs" / "gan").glob("version_*")))
    for key, values in (("lr-generator/default", gen), ("lr-discriminator/default", disc)):
        logged = series(rows, key)
        assert sorted(logged) == list(range(STEPS)), key
        assert [logged[t] for t in range(STEPS)] == pytest.approx(values, rel=1e-12), key


def test_ascii_plot_draws_one_chart_per_optimizer(tmp_path, capsys):
    run_main(tmp_path, "plot", "--config", GAN, "--ascii")
    out = capsys.readouterr().out
    g, d = out.index("optimizer 'generator'\n"), out.index("optimizer 'discriminator'\n")
    assert g < d
    assert "linear warmup 4 steps + Cosine()" in out[g:d]
    assert "Linear(min_factor=0.5)" in out[d:]
    assert f"  * default  ({2e-4:.3g} -> {generator_lr(STEPS - 1):.3g})" in out[g:d]
    assert f"  * default  ({1e-3:.3g} -> {discriminator_lr(STEPS - 1):.3g})" in out[d:]
    assert out.count("optimizer step (| = epoch)") == 2
    assert not (tmp_path / "lr.csv").exists()  # --ascii alone writes nothing


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ("compare", "compare trains models with one optimizer under automatic optimization"),
        ("lr-find", "this tool works on one optimizer, the section has 2 (generator, "),
    ],
)
def test_tools_of_one_optimizer_refuse_several_with_a_config_error(tmp_path, capsys, tool, message):
    section = tmp_path / "two_adams.yaml"  # compare's --optim file: an optim: section only
    section.write_text(yaml.safe_dump({"optim": yaml.safe_load(Path(GAN).read_text())["optim"]}))
    extra = ["--optim", str(section)] if tool == "compare" else []
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SystemExit) as exc:
        run_main(work, tool, "--config", GAN, *extra)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"error: optim.optimizers: {message}"), err
    assert list(work.iterdir()) == []  # nothing trained, nothing written
