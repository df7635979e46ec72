"""Which torch step implementation runs: ``fused``, else ``foreach``, else torch's own choice.

torch leaves ``fused`` off by default (and on CPU ``foreach`` too), so its default step on
CPU is a Python loop over tensors. When the user sets neither flag, lit_optim passes the
fastest one the class supports for the parameters' devices and dtypes (torch 2.13
sources: ``torch/optim/optimizer.py`` ``_default_to_fused_or_foreach``, each class's
``fused`` check). An explicit ``fused`` / ``foreach`` wins, and nothing is added for
optimizers outside ``torch.optim``, for ``differentiable`` / ``capturable`` steps, or
for sparse gradients.

Example:
    >>> import torch
    >>> params = [torch.nn.Parameter(torch.zeros(2))]
    >>> speed_flags(torch.optim.AdamW, {"lr": 1e-3}, params)
    {'fused': True}
    >>> speed_flags(torch.optim.AdamW, {"foreach": False}, params)
    {}
    >>> speed_flags(torch.optim.LBFGS, {}, params)
    {}

"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils._foreach_utils import (
    _get_foreach_kernels_supported_devices,
    _get_fused_kernels_supported_devices,
)

__all__ = [
    "FLAGS",
    "clip_under_amp",
    "has_sparse_gradients",
    "implementation_name",
    "keep_speed_flags",
    "printed_speed_flags",
    "speed_flags",
]

#: The init args that pick the implementation; a user value for either is left alone.
FLAGS = ("fused", "foreach")
#: Options under which torch has no fused / foreach path worth choosing for the user.
_OPT_OUT = ("differentiable", "capturable")
#: torch classes with a fused step. ``None``: torch's fused device list; Adagrad's
#: kernel exists for CPU and CUDA only (its docstring, torch 2.13).
_FUSED: dict[type[torch.optim.Optimizer], tuple[str, ...] | None] = {
    torch.optim.Adam: None,
    torch.optim.AdamW: None,
    torch.optim.SGD: None,
    torch.optim.Adagrad: ("cpu", "cuda"),
}
_REDUCED = (torch.bfloat16, torch.float16)
#: Plain tensors only: tensor subclasses (DTensor, quantized wrappers) keep torch's default.
_PLAIN = (torch.Tensor, nn.Parameter)


def speed_flags(
    cls: type[torch.optim.Optimizer],
    init_args: Mapping[str, Any],
    params: Iterable[torch.Tensor],
    *,
    groups: Iterable[Mapping[str, Any]] = (),
    sparse: bool = False,
) -> dict[str, bool]:
    """The flag to add to ``cls(...)``: ``{"fused": True}``, ``{"foreach": True}`` or ``{}``.

    Args:
        cls: The optimizer class.
        init_args: What the user gave (``None`` counts as not given, as in torch).
        params: Every parameter the optimizer will step.
        groups: The param group dicts; a group that sets a flag or opt-out itself
            means the user is choosing, so nothing is added.
        sparse: Some parameter gets sparse gradients (``nn.Embedding(sparse=True)``).

    Returns:
        Keyword arguments for the constructor.

    """
    if getattr(torch.optim, cls.__name__, None) is not cls or sparse:
        return {}
    if any(init_args.get(k) is not None for k in FLAGS) or any(init_args.get(k) for k in _OPT_OUT):
        return {}
    if any(k in g for g in groups for k in (*FLAGS, *_OPT_OUT)):
        return {}
    params = list(params)
    if not all(type(p) in _PLAIN for p in params):
        return {}
    devices = {p.device.type for p in params}
    if cls in _FUSED:
        fused_devices = _FUSED[cls] or tuple(_get_fused_kernels_supported_devices())
        if (
            devices <= set(fused_devices)
            and all(torch.is_floating_point(p) for p in params)
            and not (cls is torch.optim.SGD and _reduced_cpu(params) and not _fused_sgd_cpu_ok())
        ):
            return {"fused": True}
    if "foreach" in _parameters(cls) and devices <= set(_get_foreach_kernels_supported_devices()):
        return {"foreach": True}
    return {}


def printed_speed_flags(
    cls: type[torch.optim.Optimizer], init_args: Mapping[str, Any]
) -> dict[str, bool]:
    """The flags :func:`speed_flags` picks for ``cls`` before any parameter exists.

    For a saved or printed config (``--print_config``): ``{"fused": True}`` for the torch
    classes whose fused step runs on both CPU and CUDA, when the user chose nothing. The
    foreach choice depends on the device (torch itself uses it on CUDA), so it is left
    unset here; the group table shows what runs.
    """
    if cls not in _FUSED:
        return {}
    probe = [torch.nn.Parameter(torch.zeros(1))]
    return {k: v for k, v in speed_flags(cls, init_args, probe).items() if k == "fused"}


def implementation_name(optimizer: torch.optim.Optimizer) -> str | None:
    """``"fused"``, ``"foreach"`` or ``"for-loop"``: what torch runs for this optimizer.

    ``None`` for optimizers without these flags (LBFGS, third-party ones). Read from
    ``optimizer.defaults``, resolving ``None`` as torch's step does (``foreach`` when every
    parameter sits on a foreach device such as CUDA).
    """
    defaults = optimizer.defaults
    if not any(k in defaults for k in FLAGS):
        return None
    if defaults.get("fused"):
        return "fused"
    if defaults.get("foreach"):
        return "foreach"
    if defaults.get("foreach") is False or defaults.get("fused") is False:
        return "for-loop"
    if defaults.get("differentiable"):
        return "for-loop"
    devices = {p.device.type for g in optimizer.param_groups for p in g["params"]}
    foreach_devices = set(_get_foreach_kernels_supported_devices())
    return "foreach" if devices and devices <= foreach_devices else "for-loop"


def clip_under_amp(optimizer: torch.optim.Optimizer, trainer: Any) -> None:
    """Let Lightning clip the gradients of a fused step under mixed precision.

    A fused torch optimizer says it unscales gradients inside its own step
    (``_step_supports_amp_scaling``). Lightning's mixed-precision plugins then refuse to
    clip them, even under bf16 where there is no scaler at all. Unscaling *before* the
    step, as the GradScaler does for every other optimizer, is exact for a fused step
    too, so for a run that clips (or has no scaler, where it costs nothing) the
    optimizer is marked as one that does not unscale itself. A 16-mixed run without
    clipping keeps torch's unscale-inside-the-step.

    Args:
        optimizer: The optimizer just built.
        trainer: A Lightning ``Trainer`` (read by attribute; ``None``: no trainer).

    """
    plugin = getattr(trainer, "precision_plugin", None)
    if not getattr(optimizer, "_step_supports_amp_scaling", False) or not hasattr(plugin, "scaler"):
        return
    if getattr(plugin, "scaler", None) is None or getattr(trainer, "gradient_clip_val", None):
        optimizer._step_supports_amp_scaling = False  # type: ignore[attr-defined]


def has_sparse_gradients(model: nn.Module) -> bool:
    """Whether some module of ``model`` produces sparse gradients (``sparse=True`` embeddings)."""
    return any(isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse for m in model.modules())


def _reduced_cpu(params: list[torch.Tensor]) -> bool:
    return any(p.device.type == "cpu" and p.dtype in _REDUCED for p in params)


@functools.cache
def _fused_sgd_cpu_ok() -> bool:
    """Whether torch's fused CPU SGD updates bfloat16 / float16 tensors of 16+ values.

    torch 2.13.0's does not (the vectorised part of the update is lost, the parameter
    stays put; 2.14.1 is fixed), so on such a torch the for-loop step is kept for them.
    Probed once on a 32-value tensor per dtype rather than guessed from version numbers.
    """
    for dtype in _REDUCED:
        p = nn.Parameter(torch.zeros(32, dtype=dtype))
        p.grad = torch.ones_like(p)
        torch.optim.SGD([p], lr=1.0, fused=True).step()
        if not bool((p.detach() == -1).all()):
            return False
    return True


def _parameters(cls: type) -> Mapping[str, Any]:
    return inspect.signature(cls.__init__).parameters


def keep_speed_flags(optimizer: torch.optim.Optimizer) -> None:
    """Keep this run's ``fused`` / ``foreach`` choice when a checkpoint is loaded.

    torch's ``load_state_dict`` takes every group option from the checkpoint, so a run
    saved with another implementation (before lit_optim chose ``fused``, or with other
    flags) would resume on that one, overriding the current config. The implementation
    is not training state: each group gets back the flags it was built with, and for a
    fused step the ``step`` counters become float32 on the parameter's device, as torch
    keeps them when fused.
    """
    built = [{k: g[k] for k in FLAGS if k in g} for g in optimizer.param_groups]
    if not any(built):
        return

    def restore(opt: torch.optim.Optimizer) -> None:
        # Groups added since the build (a join restored from the checkpoint) were filled
        # from ``defaults`` by ``add_param_group``; they get the defaults' flags back.
        added = {k: opt.defaults[k] for k in FLAGS if k in opt.defaults}
        for i, group in enumerate(opt.param_groups):
            group.update(built[i] if i < len(built) else added)
            if not group.get("fused"):
                continue
            for p in group["params"]:
                step = opt.state.get(p, {}).get("step")
                if isinstance(step, torch.Tensor):
                    opt.state[p]["step"] = step.to(dtype=torch.float32, device=p.device)

    optimizer.register_load_state_dict_post_hook(restore)
