"""``--weights_from PATH``: a new run that starts from a checkpoint's weights.

``--ckpt_path`` *resumes* a run: weights, optimizer state, schedule step and loop
position, which is refused when the run length or the groups changed (the lr sequence
would silently change). Training longer, or fine-tuning from a finished run, is a *new*
run: ``--weights_from PATH`` loads only the model weights, and the optimizer, its state
and the schedule start fresh from step 0 of this run's own plan. Given with ``--ckpt_path``
too, a checkpoint that is found resumes the run (Lightning restores its weights over
these); ``--ckpt_path last`` with no checkpoint yet starts from the weights, so one
command serves the first start of a preemptible fine-tuning job and every restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from lit_optim.core.errors import ConfigError

__all__ = ["WEIGHTS_FLAG", "load_weights"]

#: The command-line flag (and ``weights_from:`` config key) of a warm start.
WEIGHTS_FLAG = "--weights_from"


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load the weights of a checkpoint (or a plain ``state_dict`` file) into ``model``.

    Args:
        model: The freshly built model.
        path: A Lightning checkpoint (its ``state_dict``) or a file holding a
            ``state_dict`` saved with ``torch.save``.

    Raises:
        ConfigError: The file is missing or holds no state dict, or its keys or shapes
            differ from the model's.

    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError("weights_from", f"no such file: {str(path)!r}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's unpickling errors have no common base class
        raise ConfigError(
            "weights_from", f"{str(path)!r} is not a readable checkpoint ({err})"
        ) from None
    weights = state.get("state_dict", state) if isinstance(state, Mapping) else None
    if not isinstance(weights, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise ConfigError(
            "weights_from",
            f"{str(path)!r} holds no state_dict; expected a Lightning checkpoint or a "
            "torch.save(model.state_dict()) file",
        )
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise ConfigError(
            "weights_from",
            f"{str(path)!r} does not fit {type(model).__name__}: "
            f"missing {_few(missing)}, unexpected {_few(unexpected)}",
        )
    wrong = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if tuple(weights[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ConfigError(
            "weights_from",
            f"{str(path)!r} does not fit {type(model).__name__}: shapes differ "
            f"(checkpoint vs model): {_few(wrong)}",
        )
    model.load_state_dict(weights)


def _few(names: list[str], n: int = 3) -> str:
    if not names:
        return "none"
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more
