"""``--weights_from``: the weights of a checkpoint, loaded into a fresh model, or one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_optim import ConfigError
from lit_optim.lightning.warm_start import load_weights


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_lightning_checkpoint_and_plain_state_dict_load_exactly(tmp_path):
    source = net()
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, tmp_path / "a.ckpt")
    torch.save(source.state_dict(), tmp_path / "b.pt")
    for name in ("a.ckpt", "b.pt"):
        target = net()
        load_weights(target, tmp_path / name)
        for key, value in source.state_dict().items():
            assert torch.equal(target.state_dict()[key], value), (name, key)


def test_a_checkpoint_of_another_model_is_refused_with_the_names(tmp_path):
    torch.save({"state_dict": nn.Linear(3, 4).state_dict()}, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError) as err:
        load_weights(net(), tmp_path / "other.ckpt")
    assert str(err.value) == (
        f"weights_from: '{tmp_path / 'other.ckpt'}' does not fit Sequential: missing "
        "0.bias, 0.weight, 2.bias and 1 more, unexpected bias, weight"
    )
    wide = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    torch.save(wide.state_dict(), tmp_path / "wide.pt")
    with pytest.raises(ConfigError, match=r"shapes differ \(checkpoint vs model\): 0\.weight"):
        load_weights(net(), tmp_path / "wide.pt")


def test_a_missing_or_foreign_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^weights_from: no such file: '.*nope\.ckpt'$"):
        load_weights(net(), tmp_path / "nope.ckpt")
    torch.save({"lr": 0.1}, tmp_path / "hparams.pt")
    with pytest.raises(ConfigError, match=r"holds no state_dict; expected a Lightning"):
        load_weights(net(), tmp_path / "hparams.pt")
