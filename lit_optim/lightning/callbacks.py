"""``LRLogger``: Lightning's ``LearningRateMonitor``, without its per-step costs.

``LRLogger`` is a :class:`~lightning.pytorch.callbacks.LearningRateMonitor` (a subclass):
the same constructor and defaults, the same keys (``lr-<Optimizer>[-<n>][/<group name>]``,
a scheduler's ``name``, ``-momentum`` / ``-weight_decay`` suffixes, ``log_key_prefix``),
the same values at the same logger steps, the same ``trainer.callback_metrics`` entries
and the same ``lrs`` / ``last_momentum_values`` / ``last_weight_decay_values``. What it
adds: the names are rebuilt only when the trainer's optimizers or schedulers change, a
bounded ``history``, it runs without a logger, and optional ``every_n_steps`` /
``prog_bar``. ``docs/lr_logger.md`` lists every difference.

Example:
    >>> import lightning as L
    >>> trainer = L.Trainer(callbacks=[LRLogger(log_momentum=True)])  # doctest: +SKIP

"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from lit_optim.core.composite import optimizer_name
from lit_optim.core.errors import ConfigError

Interval = Literal["step", "epoch"]


class LRLoggerArgumentError(ConfigError, MisconfigurationException):
    """A bad ``LRLogger`` argument.

    A :class:`ConfigError` and, as ``LearningRateMonitor`` raises, a
    ``MisconfigurationException``.
    """


class LRLogger(LearningRateMonitor):
    """Log the lr (and momentum, weight decay) of every param group, as ``LearningRateMonitor``.

    A subclass of ``LearningRateMonitor``, so ``isinstance(cb, LearningRateMonitor)`` is
    True: it logs the same keys, steps and values, so code that looks for "the lr
    monitor" (to read its ``lrs``, or to avoid adding a second one) should find it. It
    overrides every hook and none of the monitor's private helpers is called, so the
    parent is a type, not an implementation; its ``__init__`` is not called because
    ``lrs`` is a property here (read from the bounded ``history``).

    At each ``on_train_batch_start`` where Lightning logs (its ``log_every_n_steps``) and
    at each ``on_train_epoch_start``, as ``logging_interval`` and each scheduler's
    ``interval`` say, it reads ``param_groups`` of the trainer's *current* optimizers and
    schedulers (``setup_optimizers`` mid-fit, ``StochasticWeightAveraging``'s SWALR,
    groups added by ``BaseFinetuning`` are followed), sends the values to every logger at
    Lightning's logger step, and puts each into ``trainer.callback_metrics`` as a CPU
    scalar tensor of the dtype ``torch.tensor(value)`` gives (a NumPy or tensor float64
    lr stays float64). While no value changes the tensors stay; when one does, every key
    gets a new tensor, the Python floats from one ``torch.tensor`` call. Nothing is moved
    to or synchronised with an accelerator, and no ``.item()`` is called, unless the lr
    itself is a tensor on an accelerator (then one copy per logged step, as the monitor's
    logger makes).

    Without a logger (``Trainer(logger=False)``) it still fills ``callback_metrics``,
    ``lrs`` and ``history``, where ``LearningRateMonitor`` raises.

    Args:
        logging_interval: ``"step"`` / ``"epoch"`` log every optimizer at that interval;
            ``None`` (default) as each scheduler's ``interval`` says (optimizers without a
            scheduler at both).
        log_momentum: Also log ``betas[0]`` (when the optimizer's ``defaults`` have
            ``betas``) or ``momentum`` (0 when neither) of each group.
        log_weight_decay: Also log each group's ``weight_decay``.
        log_key_prefix: Prepended to every key (``"optim/"`` -> ``optim/lr-Adam``), as on
            Lightning's main branch.
        momentum: The project's earlier name of ``log_momentum``.
        weight_decay: The project's earlier name of ``log_weight_decay``.
        every_n_steps: Log at the batches where ``(step + 1) % every_n_steps == 0``
            (Lightning's rule with its own ``log_every_n_steps``); ``None`` (default)
            uses the trainer's ``log_every_n_steps``.
        prog_bar: Show the first group's lr in the progress bar as ``lr``, formatted with
            its significant digits (``3e-04``, not ``0.000``).
        history_size: Logging calls kept for ``history`` and ``lrs`` (each call logs every
            key due then), newest last; 0 keeps none, -1 all.

    Attributes:
        last_momentum_values: ``{"<key>-momentum": last value or None}``.
        last_weight_decay_values: ``{"<key>-weight_decay": last value or None}``.

    Raises:
        LRLoggerArgumentError: On an invalid argument (a ``ConfigError`` and a
            ``MisconfigurationException``).
        MisconfigurationException: If one optimizer has two param groups of one ``name``
            (as ``LearningRateMonitor``).

    Example:
        >>> cb = LRLogger()
        >>> isinstance(cb, LearningRateMonitor), cb.logging_interval, cb.log_momentum
        (True, None, False)

    """

    def __init__(
        self,
        logging_interval: Interval | None = None,
        log_momentum: bool = False,
        log_weight_decay: bool = False,
        log_key_prefix: str | None = None,
        *,
        momentum: bool | None = None,
        weight_decay: bool | None = None,
        every_n_steps: int | None = None,
        prog_bar: bool = False,
        history_size: int = 1000,
    ) -> None:
        if logging_interval not in ("step", "epoch", None):
            raise LRLoggerArgumentError(
                "LRLogger.logging_interval",
                f"unknown interval {logging_interval!r}; "
                "valid: 'step', 'epoch' or null (each scheduler's own)",
            )
        if every_n_steps is not None and (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise LRLoggerArgumentError(
                "LRLogger.every_n_steps",
                f"must be an int >= 1, or null for the trainer's log_every_n_steps; "
                f"got {every_n_steps!r}",
            )
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < -1:
            raise LRLoggerArgumentError(
                "LRLogger.history_size",
                f"must be an int >= 0, or -1 to keep every value; got {history_size!r}",
            )
        self.logging_interval = logging_interval
        self.log_momentum = _alias("momentum", momentum, "log_momentum", log_momentum)
        self.log_weight_decay = _alias(
            "weight_decay", weight_decay, "log_weight_decay", log_weight_decay
        )
        self.log_key_prefix = log_key_prefix or ""
        self.every_n_steps = every_n_steps
        self.prog_bar = prog_bar
        self.history_size = history_size
        # (logger step, keys, values) of each logging call: one append per call, not per key.
        self._calls: deque[tuple[int, tuple[str, ...], tuple[Any, ...]]] = deque(
            maxlen=None if history_size < 0 else history_size
        )
        self.last_momentum_values: dict[str, Any] = {}
        self.last_weight_decay_values: dict[str, Any] = {}
        self._lr_keys: dict[str, None] = {}  # an ordered set: LearningRateMonitor.lrs's keys
        self._entries: list[KeyEntry] = []
        self._signature: tuple[Any, ...] = ()
        self._alive: tuple[list[Any], ...] = ()
        # The keys, values and their types last put into callback_metrics, and the tensors.
        self._sent: tuple[tuple[str, ...], tuple[Any, ...], tuple[type, ...]] = ((), (), ())
        self._made: tuple[torch.Tensor, ...] = ()
        # {interval: the keys of the last call at it}: a new call's dict starts as a copy
        # (one allocation of the right size; growing a dict key by key reallocates it 5
        # times for 50 keys, slow right after a training step has returned its memory).
        self._templates: dict[str, dict[str, Any]] = {}

    @property
    def lrs(self) -> dict[str, list[Any]]:
        """``LearningRateMonitor.lrs``: the lrs logged per key (in the kept calls)."""
        history = self.history
        return {key: [v for _, v in history.get(key, ())] for key in self._lr_keys}

    @property
    def history(self) -> dict[str, list[tuple[int, Any]]]:
        """``{key: [(logger step, value), ...]}`` of every key logged, oldest first.

        Momentum and weight decay keys too; the last ``history_size`` logging calls.
        """
        out: dict[str, list[tuple[int, Any]]] = {}
        for step, keys, values in self._calls:
            for key, value in zip(keys, values, strict=True):
                out.setdefault(key, []).append((step, value))
        return out

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Write the loggers' buffered rows, so a checkpoint never outlives its lr rows.

        ``CSVLogger`` writes every 100 steps; after a kill -9 the rows since its last write
        are gone, while the resume starts at the checkpoint (and, with ``--ckpt_path last``,
        keeps the rows on disk before it). Writing at each checkpoint leaves no gap.
        """
        for logger in trainer.loggers:
            logger.save()

    def on_train_start(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        """Name every key (``LearningRateMonitor``'s rule); warn about missing momentum."""
        if self.log_momentum and _lacks("momentum", trainer) and _lacks("betas", trainer):
            # The monitor's words, so filters and tests written for it still match.
            rank_zero_warn(
                "You have set log_momentum=True, but some optimizers do not have momentum. "
                "This will log a value 0 for the momentum.",
                category=RuntimeWarning,
            )
        self._signature = ()
        self._sent, self._made = ((), (), ()), ()
        self._templates.clear()
        self._calls.clear()
        self._lr_keys = {}
        self._layout(trainer)
        names = [key for entry in self._entries for key in entry.lr]
        self._lr_keys = dict.fromkeys(names)
        self.last_momentum_values = {f"{n}-momentum": None for n in names}
        self.last_weight_decay_values = {f"{n}-weight_decay": None for n in names}

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        """Log the lrs this batch starts with, at the batches where Lightning logs."""
        if self.logging_interval == "epoch":
            return
        if self.every_n_steps is None:
            if not trainer._logger_connector.should_update_logs:
                return
        elif (_logger_step(trainer) + 1) % self.every_n_steps and not trainer.should_stop:
            return
        self._log(trainer, "step" if self.logging_interval is None else "any")

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        """Log the lrs this epoch starts with (``logging_interval`` "epoch" or None)."""
        if self.logging_interval != "step":
            self._log(trainer, "epoch" if self.logging_interval is None else "any")

    def _log(self, trainer: pl.Trainer, interval: str) -> None:
        entries = self._layout(trainer)
        template = self._templates.get(interval)
        stats: dict[str, Any] = {} if template is None else template.copy()
        for entry in entries:
            # LearningRateMonitor: a scheduler at its interval, an optimizer without one always.
            if entry.interval is None or interval == "any" or entry.interval == interval:
                self._read(entry, stats)
        if template is None or _UNSET in stats.values():
            # A group lost a key since (weight_decay): the keys in the order they were read.
            stats = {k: v for k, v in stats.items() if v is not _UNSET}
            self._templates[interval] = dict.fromkeys(stats, _UNSET)
        if not stats:
            return
        step = _logger_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)
        keys, values = self._to_callback_metrics(trainer, stats)
        if self.history_size:
            self._calls.append((step, keys, values))
        if self.prog_bar and self._entries:
            value = stats.get(self._entries[0].lr[0])
            if value is not None:
                # The public property recomputes every logged metric (a device sync per metric).
                trainer._logger_connector._progress_bar_metrics["lr"] = ReadableFloat(value)

    def _layout(self, trainer: pl.Trainer) -> list[KeyEntry]:
        """The key entries of the trainer's current optimizers, renamed when they change."""
        configs, optimizers = trainer.lr_scheduler_configs, trainer.optimizers
        # Identities are safe to compare: self._alive keeps the previous objects alive.
        signature = (
            *((id(c), id(c.scheduler), c.name, c.interval) for c in configs),
            *(id(o) for o in optimizers),
            *(len(e.optimizer.param_groups) for e in self._entries),
        )
        if signature == self._signature:
            return self._entries
        entries = metric_keys(configs, optimizers, self.log_key_prefix)
        self._warn_shared_keys(entries)
        for entry in entries:
            self._remap(entry.lr)
        self._entries = entries
        self._templates.clear()
        self._alive = (list(configs), [c.scheduler for c in configs], list(optimizers))
        self._signature = (
            *((id(c), id(c.scheduler), c.name, c.interval) for c in configs),
            *(id(o) for o in optimizers),
            *(len(e.optimizer.param_groups) for e in entries),
        )
        return entries

    def _remap(self, names: list[str]) -> None:
        # LearningRateMonitor's rule: when a one-group optimizer ("lr-SGD") gains groups, its
        # history continues as "lr-SGD/pg1"; new keys start empty.
        for name in names:
            old = name.replace("/pg1", "")
            if "/pg1" in name and old in self._lr_keys:
                del self._lr_keys[old]
                self._lr_keys[name] = None
                renames = {old + x: name + x for x in ("", "-momentum", "-weight_decay")}
                self._calls = deque(
                    (step, tuple(renames.get(k, k) for k in keys), values)
                    for step, keys, values in self._calls
                )
            elif name not in self._lr_keys:
                self._lr_keys[name] = None

    def _warn_shared_keys(self, entries: list[KeyEntry]) -> None:
        owner: dict[str, Any] = {}
        for entry in entries:
            for key in entry.lr:
                other = owner.setdefault(key, entry.optimizer)
                if other is not entry.optimizer:
                    # LearningRateMonitor writes both into one curve, silently; so does this.
                    rank_zero_warn(
                        f"Two optimizers ({type(other).__name__} and "
                        f"{type(entry.optimizer).__name__}) log their lr as {key!r}, one curve "
                        "for two lrs: give their schedulers distinct `name`s.",
                        category=RuntimeWarning,
                    )
                    return

    def _read(self, entry: KeyEntry, stats: dict[str, Any]) -> None:
        groups = entry.optimizer.param_groups
        if not (self.log_momentum or self.log_weight_decay):
            for key, group in zip(entry.lr, groups, strict=True):
                stats[key] = group["lr"]
            return
        use_betas = "betas" in entry.optimizer.defaults
        for group, lr_key, mom_key, wd_key in zip(
            groups, entry.lr, entry.momentum, entry.weight_decay, strict=True
        ):
            stats[lr_key] = group["lr"]
            if self.log_momentum:
                # The monitor's rule (its int 0 included); a group without betas in an
                # optimizer whose defaults have them (Muon in a composite) reads its own
                # momentum where the monitor raises KeyError.
                if use_betas and "betas" in group:
                    value = group["betas"][0]
                else:
                    value = group.get("momentum", 0)
                stats[mom_key] = self.last_momentum_values[mom_key] = value
            # The monitor raises KeyError for a group without weight_decay; it is left out.
            if self.log_weight_decay and "weight_decay" in group:
                stats[wd_key] = self.last_weight_decay_values[wd_key] = group["weight_decay"]

    def _to_callback_metrics(
        self, trainer: pl.Trainer, stats: dict[str, Any]
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """Put a CPU tensor per key into ``callback_metrics``; return the keys and values.

        The public property recomputes every logged metric (a device sync each), so the
        dict is updated directly. A monitor (EarlyStopping, ModelCheckpoint) keeps references
        to the tensors it saw, so none is changed in place: when no value changed since the
        last call, the tensors stay; else every key gets a new one, the Python floats as
        views of one tensor (one allocation; a view costs a third of a ``torch.tensor``).
        The values returned hold a CPU copy of a tensor lr, which its scheduler changes in
        place.
        """
        metrics = trainer._logger_connector._callback_metrics
        keys, values = tuple(stats), tuple(stats.values())
        types = tuple(map(type, values))
        if types.count(float) == len(types):
            if (keys, values, types) == self._sent and all(
                map(operator.is_, map(metrics.get, keys), self._made)
            ):
                return keys, values
            made = torch.tensor(list(values)).unbind()
        else:
            # NumPy floats, the int 0 of a missing momentum, tensor lrs: made every time.
            floats = [i for i, t in enumerate(types) if t is float]
            shared = torch.tensor([values[i] for i in floats]).unbind() if floats else ()
            tensors: list[Any] = list(values)
            for i, tensor in zip(floats, shared, strict=True):
                tensors[i] = tensor
            snapshot = list(values)
            for i, value in enumerate(values):
                if isinstance(value, torch.Tensor):
                    tensors[i] = snapshot[i] = value.detach().to("cpu", copy=True)
                elif types[i] is not float:
                    tensors[i] = torch.tensor(value)
            made, values = tuple(tensors), tuple(snapshot)
        metrics.update(zip(keys, made, strict=True))
        self._sent, self._made = (keys, values, types), made
        return keys, values


_UNSET = object()  # a template's value: not read yet


def _alias(name: str, value: bool | None, lightning_name: str, lightning_value: bool) -> bool:
    """``lightning_value``, or the project's alias ``value`` when it is given."""
    if value is None:
        return lightning_value
    if lightning_value and not value:
        raise LRLoggerArgumentError(
            f"LRLogger.{name}",
            f"is the old name of {lightning_name}; give one of them, not both",
        )
    return bool(value)


def _lacks(key: str, trainer: pl.Trainer) -> bool:
    # LearningRateMonitor's test: the scheduled optimizers' defaults, else all optimizers'.
    if trainer.lr_scheduler_configs:
        return any(key not in c.scheduler.optimizer.defaults for c in trainer.lr_scheduler_configs)
    return any(key not in o.defaults for o in trainer.optimizers)


@dataclass
class KeyEntry:
    """The keys of one optimizer's groups (one entry per scheduler config, then per optimizer).

    Attributes:
        optimizer: The torch optimizer.
        interval: The scheduler's ``interval`` (``"step"`` / ``"epoch"``), None without one.
        lr: One key per param group, in group order.
        momentum: ``<lr key>-momentum`` per group.
        weight_decay: ``<lr key>-weight_decay`` per group.

    """

    optimizer: torch.optim.Optimizer
    interval: str | None
    lr: list[str]
    momentum: list[str] = field(init=False)
    weight_decay: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.momentum = [f"{k}-momentum" for k in self.lr]
        self.weight_decay = [f"{k}-weight_decay" for k in self.lr]


def metric_keys(
    lr_scheduler_configs: Sequence[Any], optimizers: Sequence[Any], prefix: str = ""
) -> list[KeyEntry]:
    """Name the lr keys of every optimizer exactly as ``LearningRateMonitor`` does.

    Schedulers first, in order: the scheduler's ``name``, else ``lr-<Optimizer class>``;
    then the optimizers without a scheduler, as ``lr-<class>``. The n-th (n > 1) optimizer
    of a class counted so far (unnamed schedulers and optimizers without one count) gets
    ``-<n-1>``: two Adams are ``lr-Adam`` and ``lr-Adam-1``. An optimizer with several
    groups gets ``/<group name>`` (``/pg<i>`` when unnamed), one named group ``/<name>``.

    Args:
        lr_scheduler_configs: ``trainer.lr_scheduler_configs``.
        optimizers: ``trainer.optimizers``.
        prefix: Prepended to every key (``log_key_prefix``).

    Returns:
        One entry per scheduler config, then one per optimizer without a scheduler.

    Raises:
        MisconfigurationException: If an optimizer has two groups of the same name.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
        >>> [e.lr for e in metric_keys([], [opt, torch.optim.SGD([torch.zeros(1)], lr=0.1)])]
        [['lr-SGD'], ['lr-SGD-1']]

    """
    entries: list[KeyEntry] = []
    seen: list[Any] = []
    count: dict[type, int] = {}

    def add(optimizer: Any, name: str | None, interval: str | None) -> None:
        seen.append(optimizer)
        cls = type(optimizer)
        if name is None:
            count[cls] = count.get(cls, 0) + 1
            name = "lr-" + cls.__name__
        # Lightning suffixes a named scheduler too once its class was counted twice.
        if count.get(cls, 0) > 1:
            name += f"-{count[cls] - 1}"
        groups = optimizer.param_groups
        names = [g.get("name", f"pg{i}") for i, g in enumerate(groups, start=1)]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise MisconfigurationException(
                "A single `Optimizer` cannot have multiple parameter groups with identical `name` "
                f"values. {name} has duplicated parameter group names {duplicates}; "
                "give each group its own name."
            )
        keys = group_keys(name, [g.get("name") for g in groups])
        entries.append(KeyEntry(optimizer, interval, [prefix + k for k in keys]))

    for config in lr_scheduler_configs:
        add(config.scheduler.optimizer, config.name, config.interval)
    for optimizer in optimizers:
        # As the monitor: DeepSpeed's (and any) wrapper's ``optimizer`` is what is logged.
        inner = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
        if not any(inner is s for s in seen):
            add(inner, None, None)
    return entries


def optimizer_key(optimizer: Any) -> str:
    """``lr-<name>``: the name ``OptimMixin`` gives the scheduler of a built optimizer.

    ``LRLogger`` and ``LearningRateMonitor`` log a scheduled optimizer under its
    scheduler's name; a composite optimizer's name lists its parts (``lr-AdamW+Muon``).

    Example:
        >>> optimizer_key(torch.optim.SGD([torch.zeros(1)], lr=0.1))
        'lr-SGD'

    """
    return "lr-" + optimizer_name(optimizer)


def group_keys(name: str, group_names: Sequence[str | None]) -> list[str]:
    """The lr key of every param group of one optimizer whose key is ``name``.

    Several groups get ``<name>/<group name>`` (``/pg<i>`` when unnamed); one group
    ``<name>/<group name>`` when it is named, else ``name`` (``LearningRateMonitor``'s rule).

    Example:
        >>> group_keys("lr-SGD", ["head", None]), group_keys("lr-SGD", [None])
        (['lr-SGD/head', 'lr-SGD/pg2'], ['lr-SGD'])

    """
    if len(group_names) == 1:
        return [f"{name}/{group_names[0]}" if group_names[0] else name]
    return [f"{name}/{n or f'pg{i}'}" for i, n in enumerate(group_names, start=1)]


class ReadableFloat(float):
    """A float whose fixed-point format keeps three significant digits.

    Progress bars format metrics with ``.3f``, which shows an lr of 3e-4 as ``0.000``.

    Example:
        >>> f"{ReadableFloat(3e-4):.3f}", f"{ReadableFloat(0.1):.3f}", f"{ReadableFloat(1e-6):.3f}"
        ('0.0003', '0.1', '1e-06')

    """

    def __format__(self, spec: str) -> str:
        if spec.endswith(("f", "F")):
            spec = spec[:-1] + "g"
        return float.__format__(self, spec)


def _logger_step(trainer: pl.Trainer) -> int:
    # The step ``self.log`` metrics and LearningRateMonitor are logged at: once per batch
    # that steps (not per micro-batch, not per optimizer), restored on resume.
    return trainer.fit_loop.epoch_loop._batches_that_stepped


class PlateauResumeFix(Callback):
    """Step ``ReduceLROnPlateau`` at the end of an epoch resumed mid-way.

    Lightning steps plateau schedulers in ``FitLoop.on_advance_end`` only when the loop is
    not restarting, to avoid a second step after a resume from an end-of-epoch checkpoint.
    After a *mid-epoch* resume that guard skips a step that is due, so the plateau lr
    would change one epoch late. This callback takes that step, from the same metrics,
    exactly when Lightning skips it. ``lit-optim`` adds it when the schedule is a plateau.
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Take the plateau step Lightning is about to skip."""
        loop = trainer.fit_loop
        if loop.restarting and loop.epoch_loop._num_ready_batches_reached():
            loop.epoch_loop.update_lr_schedulers("epoch", update_plateau_schedulers=True)
