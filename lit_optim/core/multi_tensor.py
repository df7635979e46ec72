"""Single-pass multi-tensor Adam, AdamW and SGD: many param groups at the cost of one.

Torch optimizers hold ``lr`` and ``weight_decay`` per param group and run one
multi-tensor (``torch._foreach_*``) pass per group, so layer-wise lr decay, which needs
one group per (layer, decay) pair, pays for hundreds of small passes. The subclasses
here keep torch's classes unchanged on the outside (constructor, ``param_groups``,
``state_dict`` format, hooks, closures) and only change ``step()``: every parameter
with a gradient is gathered across all groups and updated in one foreach pass, with
``lr`` and ``weight_decay`` given per tensor as scalar lists. Groups that differ in an
option that cannot be a per-tensor scalar (betas, eps, amsgrad, maximize, momentum,
dampening, nesterov) or in device / dtype get a pass of their own. The math mirrors
torch's ``_multi_tensor_adam`` / ``_multi_tensor_sgd`` op for op.

Groups that ask for another implementation are stepped by torch's own code, exactly as
the torch optimizer would: ``foreach=False``, ``fused=True``, ``capturable=True``,
``differentiable=True``, a tensor ``lr`` / ``betas`` / ``weight_decay``, and (SGD) sparse
gradients. Nothing is refused; those groups just do not get the single pass.

Example:
    >>> import torch
    >>> from lit_optim.core.multi_tensor import multi_tensor_variant
    >>> cls = multi_tensor_variant(torch.optim.AdamW)
    >>> cls.__name__, cls.lit_optim_name
    ('MultiTensorAdamW', 'AdamW')
    >>> layer = torch.nn.Linear(2, 2)
    >>> opt = cls([{"params": [layer.weight], "lr": 0.1}, {"params": [layer.bias], "lr": 0.01}])
    >>> layer(torch.ones(1, 2)).sum().backward()
    >>> opt.step()
    >>> sorted(opt.state[layer.weight])
    ['exp_avg', 'exp_avg_sq', 'step']

"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.optim.adam import adam as torch_adam
from torch.optim.optimizer import _get_scalar_dtype, _use_grad_for_differentiable
from torch.optim.sgd import sgd as torch_sgd

__all__ = [
    "MultiTensorAdam",
    "MultiTensorAdamW",
    "MultiTensorSGD",
    "multi_tensor_variant",
]

Closure = Callable[[], Any] | None

# Values per foreach pass. Bigger batches are split: a pass keeps a temporary per tensor
# alive until it ends, and bounding those keeps peak memory (and, on CPU, allocator page
# faults) at the level of a mid-sized param group instead of the whole model.
CHUNK_VALUES = 1 << 23


def multi_tensor_variant(cls: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer] | None:
    """Return the single-pass subclass of a torch optimizer class, or ``None``.

    Only the exact classes ``torch.optim.AdamW``, ``Adam`` and ``SGD`` have one: a user
    subclass may override ``step`` or ``_init_group`` and is left alone.

    Args:
        cls: An optimizer class.

    Returns:
        ``MultiTensorAdamW``, ``MultiTensorAdam`` or ``MultiTensorSGD``; ``None`` for any
        other class.

    """
    return _VARIANTS.get(cls)


def _uses_torch_step(group: dict[str, Any], tensor_options: tuple[str, ...]) -> bool:
    """Whether a group asked for something only torch's own implementation does."""
    if group.get("foreach") is False or group.get("fused") or group.get("capturable"):
        return True
    if group.get("differentiable"):
        return True
    return any(isinstance(group[key], Tensor) for key in tensor_options) or any(
        isinstance(beta, Tensor) for beta in group.get("betas", ())
    )


def _indices_by_value(values: list[float]) -> dict[float, list[int]]:
    """Positions of each distinct value, in first-seen order."""
    positions: dict[float, list[int]] = {}
    for i, value in enumerate(values):
        positions.setdefault(value, []).append(i)
    return positions


def _add_scaled_(
    grads: list[Tensor], params: list[Tensor], scales: list[float], owned: bool
) -> list[Tensor]:
    """``grads[i] + scales[i] * params[i]`` (L2 weight decay), one foreach call per scale.

    Scales are weight decays: few distinct values (usually ``wd`` and ``0``), so grouping
    by value keeps torch's exact ``_foreach_add(grads, params, alpha=wd)`` arithmetic.
    ``owned`` grads (temporaries) are updated in place; the others are left untouched.
    """
    out = list(grads)
    for scale, idx in _indices_by_value(scales).items():
        if scale == 0:
            continue
        sub_grads = [grads[i] for i in idx]
        sub_params = [params[i] for i in idx]
        if owned:
            torch._foreach_add_(sub_grads, sub_params, alpha=scale)
        else:
            for i, grad in zip(
                idx, torch._foreach_add(sub_grads, sub_params, alpha=scale), strict=True
            ):
                out[i] = grad
    return out


_Pass = TypeVar("_Pass", "_AdamPass", "_SGDPass")


def _chunks(batch: _Pass) -> list[_Pass]:
    """Split a pass into consecutive ones of at most ``CHUNK_VALUES`` values (>= 1 tensor)."""
    bounds, start, total = [], 0, 0
    for i, p in enumerate(batch.params):
        if total and total + p.numel() > CHUNK_VALUES:
            bounds.append((start, i))
            start, total = i, 0
        total += p.numel()
    if start == 0:
        return [batch]
    bounds.append((start, len(batch.params)))
    lists = [f.name for f in dataclasses.fields(batch) if str(f.type).startswith("list")]
    return [
        dataclasses.replace(batch, **{name: getattr(batch, name)[lo:hi] for name in lists})
        for lo, hi in bounds
    ]


@dataclasses.dataclass
class _AdamPass:
    """Tensors and per-tensor scalars of the groups that share one Adam pass."""

    params: list[Tensor] = dataclasses.field(default_factory=list)
    grads: list[Tensor] = dataclasses.field(default_factory=list)
    exp_avgs: list[Tensor] = dataclasses.field(default_factory=list)
    exp_avg_sqs: list[Tensor] = dataclasses.field(default_factory=list)
    max_exp_avg_sqs: list[Tensor] = dataclasses.field(default_factory=list)
    steps: list[Tensor] = dataclasses.field(default_factory=list)
    lrs: list[float] = dataclasses.field(default_factory=list)
    weight_decays: list[float] = dataclasses.field(default_factory=list)
    has_complex: bool = False


class _AdamSinglePass(torch.optim.Adam):
    """``step()`` of Adam / AdamW as one foreach pass over all groups."""

    @_use_grad_for_differentiable
    def step(self, closure: Closure = None) -> Any:  # type: ignore[override]
        """Perform a single optimization step over every param group.

        Args:
            closure: Re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.

        """
        self._accelerator_graph_capture_health_check()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        passes: dict[tuple[Any, ...], _AdamPass] = {}
        for group in self.param_groups:
            if torch.compiler.is_compiling() or _uses_torch_step(group, ("lr",)):
                self._torch_group_step(group)
                continue
            self._gather(group, passes)
        for key, batch in passes.items():
            for chunk in _chunks(batch):
                _multi_tensor_adam_pass(chunk, *key[2:])
        return loss

    def _gather(self, group: dict[str, Any], passes: dict[tuple[Any, ...], _AdamPass]) -> None:
        """Add a group's params with grads (initialising their state as torch does)."""
        beta1, beta2 = group["betas"]
        options = (
            group["amsgrad"],
            group["maximize"],
            group["decoupled_weight_decay"],
            beta1,
            beta2,
            group["eps"],
        )
        lr, weight_decay, amsgrad = group["lr"], group["weight_decay"], group["amsgrad"]
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(
                    "Adam does not support sparse gradients, please consider SparseAdam instead"
                )
            state = self.state[p]
            if len(state) == 0:
                # Same placement as torch's non-capturable path: step on CPU, so reading it
                # for the bias correction never syncs a device.
                state["step"] = torch.tensor(0.0, dtype=_get_scalar_dtype(), device="cpu")
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if amsgrad:
                    state["max_exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
            batch = passes.get((p.device, p.dtype, *options))
            if batch is None:
                batch = passes[(p.device, p.dtype, *options)] = _AdamPass()
            batch.has_complex |= torch.is_complex(p)
            batch.params.append(p)
            batch.grads.append(p.grad)
            batch.exp_avgs.append(state["exp_avg"])
            batch.exp_avg_sqs.append(state["exp_avg_sq"])
            if amsgrad:
                batch.max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            batch.steps.append(state["step"])
            batch.lrs.append(lr)
            batch.weight_decays.append(weight_decay)

    def _torch_group_step(self, group: dict[str, Any]) -> None:
        """Step one group with torch's own code (the body of ``torch.optim.Adam.step``)."""
        params: list[Tensor] = []
        grads: list[Tensor] = []
        exp_avgs: list[Tensor] = []
        exp_avg_sqs: list[Tensor] = []
        max_exp_avg_sqs: list[Tensor] = []
        steps: list[Tensor] = []
        has_complex = self._init_group(
            group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps
        )
        beta1, beta2 = group["betas"]
        torch_adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            steps,
            amsgrad=group["amsgrad"],
            has_complex=has_complex,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            foreach=group["foreach"],
            capturable=group["capturable"],
            differentiable=group["differentiable"],
            fused=group["fused"],
            grad_scale=getattr(self, "grad_scale", None),
            found_inf=getattr(self, "found_inf", None),
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )


def _multi_tensor_adam_pass(
    batch: _AdamPass,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """``torch.optim.adam._multi_tensor_adam`` with per-tensor lr and weight decay."""
    params, grads, exp_avgs = batch.params, batch.grads, batch.exp_avgs
    exp_avg_sqs, max_exp_avg_sqs = batch.exp_avg_sqs, batch.max_exp_avg_sqs
    lrs, weight_decays = batch.lrs, batch.weight_decays
    if batch.has_complex:
        params, grads, exp_avgs, exp_avg_sqs = (
            [torch.view_as_real(t) if torch.is_complex(t) else t for t in tensors]
            for tensors in (params, grads, exp_avgs, exp_avg_sqs)
        )
        if amsgrad:
            max_exp_avg_sqs = [
                torch.view_as_real(t) if torch.is_complex(t) else t for t in max_exp_avg_sqs
            ]

    owned = maximize
    if maximize:
        grads = list(torch._foreach_neg(grads))

    steps = batch.steps
    if steps[0].is_cpu:
        # A CPU scalar tensor wrapped once; torch does the same to skip re-wrapping `1`.
        torch._foreach_add_(steps, torch.tensor(1.0, device="cpu"), alpha=1.0)
    else:
        torch._foreach_add_(steps, 1)

    if decoupled_weight_decay:
        decayed = [
            (i, 1 - lr * wd)
            for i, (lr, wd) in enumerate(zip(lrs, weight_decays, strict=True))
            if wd != 0
        ]
        if decayed:
            torch._foreach_mul_([params[i] for i, _ in decayed], [f for _, f in decayed])
    elif any(wd != 0 for wd in weight_decays):
        grads = _add_scaled_(grads, params, weight_decays, owned)

    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    del grads

    # Bias corrections depend on each tensor's own step count; the counts are few distinct
    # values, so each pow is computed once per value.
    corrections: dict[float, tuple[float, float]] = {}
    bias_correction1: list[float] = []
    bias_correction2_sqrt: list[float] = []
    for step_t in steps:
        step = step_t.item()
        pair = corrections.get(step)
        if pair is None:
            pair = corrections[step] = (1 - beta1**step, (1 - beta2**step) ** 0.5)
        bias_correction1.append(pair[0])
        bias_correction2_sqrt.append(pair[1])
    step_sizes = [(lr / bc) * -1 for lr, bc in zip(lrs, bias_correction1, strict=True)]

    if amsgrad:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        denoms = torch._foreach_sqrt(max_exp_avg_sqs)
    else:
        denoms = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denoms, bias_correction2_sqrt)
    torch._foreach_add_(denoms, eps)
    torch._foreach_addcdiv_(params, exp_avgs, denoms, step_sizes)


class MultiTensorAdam(_AdamSinglePass):
    """``torch.optim.Adam`` whose ``step()`` updates all param groups in one foreach pass."""

    lit_optim_name = "Adam"


class MultiTensorAdamW(_AdamSinglePass, torch.optim.AdamW):
    """``torch.optim.AdamW`` whose ``step()`` updates all param groups in one foreach pass."""

    lit_optim_name = "AdamW"


@dataclasses.dataclass
class _SGDPass:
    """Tensors and per-tensor scalars of the groups that share one SGD pass."""

    params: list[Tensor] = dataclasses.field(default_factory=list)
    grads: list[Tensor] = dataclasses.field(default_factory=list)
    states: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    lrs: list[float] = dataclasses.field(default_factory=list)
    weight_decays: list[float] = dataclasses.field(default_factory=list)


class MultiTensorSGD(torch.optim.SGD):
    """``torch.optim.SGD`` whose ``step()`` updates all param groups in one foreach pass."""

    lit_optim_name = "SGD"

    @_use_grad_for_differentiable
    def step(self, closure: Closure = None) -> Any:  # type: ignore[override]
        """Perform a single optimization step over every param group.

        Args:
            closure: Re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.

        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        passes: dict[tuple[Any, ...], _SGDPass] = {}
        for group in self.param_groups:
            if (
                torch.compiler.is_compiling()
                or _uses_torch_step(group, ("lr", "weight_decay"))
                or any(p.grad is not None and p.grad.is_sparse for p in group["params"])
            ):
                self._torch_group_step(group)
                continue
            options = (group["momentum"], group["dampening"], group["nesterov"], group["maximize"])
            lr, weight_decay = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                batch = passes.get((p.device, p.dtype, *options))
                if batch is None:
                    batch = passes[(p.device, p.dtype, *options)] = _SGDPass()
                batch.params.append(p)
                batch.grads.append(p.grad)
                # Like torch, state is only created for params that keep a momentum buffer.
                batch.states.append(self.state[p] if group["momentum"] != 0 else {})
                batch.lrs.append(lr)
                batch.weight_decays.append(weight_decay)
        for key, batch in passes.items():
            for chunk in _chunks(batch):
                _multi_tensor_sgd_pass(chunk, *key[2:])
        return loss

    def _torch_group_step(self, group: dict[str, Any]) -> None:
        """Step one group with torch's own code (the body of ``torch.optim.SGD.step``)."""
        params: list[Tensor] = []
        grads: list[Tensor] = []
        momentum_buffers: list[Tensor | None] = []
        has_sparse_grad = self._init_group(group, params, grads, momentum_buffers)
        torch_sgd(
            params,
            grads,
            momentum_buffers,
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            has_sparse_grad=has_sparse_grad,
            foreach=group["foreach"],
            fused=group["fused"],
            grad_scale=getattr(self, "grad_scale", None),
            found_inf=getattr(self, "found_inf", None),
        )
        if group["momentum"] != 0:
            for p, buf in zip(params, momentum_buffers, strict=True):
                self.state[p]["momentum_buffer"] = buf


def _multi_tensor_sgd_pass(
    batch: _SGDPass, momentum: float, dampening: float, nesterov: bool, maximize: bool
) -> None:
    """``torch.optim.sgd._multi_tensor_sgd`` with per-tensor lr and weight decay."""
    params, grads, lrs = batch.params, batch.grads, batch.lrs
    owned = maximize
    if maximize:
        grads = list(torch._foreach_neg(grads))
    if any(wd != 0 for wd in batch.weight_decays):
        grads = _add_scaled_(grads, params, batch.weight_decays, owned)
        owned = owned or all(wd != 0 for wd in batch.weight_decays)

    if momentum != 0:
        bufs: list[Tensor] = []
        old = [i for i, state in enumerate(batch.states) if "momentum_buffer" in state]
        if len(old) == len(grads):
            bufs = [state["momentum_buffer"] for state in batch.states]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, grads, alpha=1 - dampening)
        else:
            if old:
                old_bufs = [batch.states[i]["momentum_buffer"] for i in old]
                torch._foreach_mul_(old_bufs, momentum)
                torch._foreach_add_(old_bufs, [grads[i] for i in old], alpha=1 - dampening)
            for state, grad in zip(batch.states, grads, strict=True):
                if "momentum_buffer" not in state:
                    # First step: the buffer starts as the (decayed) gradient, as in torch.
                    state["momentum_buffer"] = grad.detach().clone()
                bufs.append(state["momentum_buffer"])
        if nesterov:
            if owned:
                torch._foreach_add_(grads, bufs, alpha=momentum)
            else:
                grads = list(torch._foreach_add(grads, bufs, alpha=momentum))
                owned = True
        else:
            grads, owned = bufs, False

    _add_lr_scaled_(params, grads, lrs, owned)


def _add_lr_scaled_(
    params: list[Tensor], updates: list[Tensor], lrs: list[float], owned: bool
) -> None:
    """``params[i] -= lrs[i] * updates[i]`` in the cheapest foreach form for the device.

    ``_foreach_add_`` takes one ``alpha`` for all tensors. On CPU a foreach op is a loop
    over tensors, so one call per distinct lr costs no more tensor ops than torch's single
    group. Elsewhere a call launches kernels, so the lrs are applied as a scalar list
    (one multiply) and the update is added in one more call.
    """
    first = lrs[0]
    if all(lr == first for lr in lrs):
        torch._foreach_add_(params, updates, alpha=-first)
    elif params[0].is_cpu:
        for lr, idx in _indices_by_value(lrs).items():
            torch._foreach_add_([params[i] for i in idx], [updates[i] for i in idx], alpha=-lr)
    elif owned:
        torch._foreach_mul_(updates, [-lr for lr in lrs])
        torch._foreach_add_(params, updates)
    else:
        torch._foreach_add_(params, torch._foreach_mul(updates, [-lr for lr in lrs]))


_VARIANTS: dict[type[torch.optim.Optimizer], type[torch.optim.Optimizer]] = {
    torch.optim.SGD: MultiTensorSGD,
}
# Adam and AdamW share one implementation (and a ``decoupled_weight_decay`` group option)
# since torch 2.6; on older torch they have no single-pass variant.
if "decoupled_weight_decay" in inspect.signature(torch.optim.Adam).parameters:
    _VARIANTS[torch.optim.Adam] = MultiTensorAdam
    _VARIANTS[torch.optim.AdamW] = MultiTensorAdamW
