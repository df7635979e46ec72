"""``LRLogger``: the lr (and momentum, weight decay) of every param group, every optimizer step.

A drop-in for Lightning's ``LearningRateMonitor``: the same keys
(``lr-<Optimizer>[-<n>][/<group name>]``, a scheduler's ``name``, ``-momentum`` and
``-weight_decay`` suffixes), at the same logger step (Lightning's per-batch step, which
every other metric uses), into ``trainer.callback_metrics`` so ``EarlyStopping`` and
``ModelCheckpoint`` can monitor them, and the monitor's attributes ``lrs``,
``last_momentum_values`` and ``last_weight_decay_values``. Where the defaults differ,
LRLogger's are: every optimizer step (``logging_interval="step"``, ``every_n_steps=1``)
instead of the scheduler's interval and the trainer's ``log_every_n_steps``; a bounded
history; and no device tensor, sync or ``.item()`` per value.

``LearningRateMonitor(logging_interval=i, log_momentum=m, log_weight_decay=w)`` logs what
``LRLogger(logging_interval=i, every_n_steps=None, momentum=m, weight_decay=w)`` logs.

Example:
    >>> import lightning as L
    >>> trainer = L.Trainer(callbacks=[LRLogger(momentum=True)])  # doctest: +SKIP

"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from lit_optim.core.composite import optimizer_name
from lit_optim.core.errors import ConfigError
from lit_optim.core.scheduler.track import MOMENTUM

Interval = Literal["step", "epoch"]


class LRLogger(Callback):
    """Log the lr of every param group once per optimizer step, with Lightning's keys.

    Values are read as Python floats from ``optimizer.param_groups`` just before the step
    they apply to, and logged at Lightning's logger step (``trainer.log``'s x-axis: one per
    batch, whatever the number of optimizers). Nothing touches the device: no ``.item()``,
    no synchronisation. ``trainer.callback_metrics`` gets each value as a float, and as a
    CPU tensor (made when the value changes) for a key that a callback such as
    ``EarlyStopping`` / ``ModelCheckpoint``, or a scheduler, monitors. Works with any
    LightningModule (with or without lit_optim), any logger, and no logger (then only
    ``history``, ``callback_metrics`` and the progress bar get the values).

    Args:
        momentum: Also log ``betas[0]`` / ``momentum`` of each group (``-momentum`` keys;
            0 for an optimizer that has neither, with a warning, as Lightning does).
        weight_decay: Also log each group's ``weight_decay`` (``-weight_decay`` keys).
        every_n_steps: Log every n-th step *of each optimizer* (1 = every step, its first
            step included). ``None`` follows the trainer's ``log_every_n_steps``, at the
            batches where Lightning logs every other metric.
        logging_interval: ``"step"``: at optimizer steps. ``"epoch"``: once at the start
            of every epoch. ``None``: as each scheduler's ``interval`` says (optimizers
            without a scheduler at both), like ``LearningRateMonitor``'s default.
        prog_bar: Show the first group's lr in the progress bar as ``lr``, formatted with
            its significant digits (``3e-04``, not ``0.000``).
        history_size: Values kept in ``history`` per key, newest last (0 keeps none,
            -1 keeps all: about 2.5 kB per step for 28 groups, 0.5 GB over 200k steps).
        log_key_prefix: Prepended to every key (``"optim/"`` -> ``optim/lr-Adam``).

    Attributes:
        history: ``{key: deque[(step, value)]}`` for every key logged (the last
            ``history_size`` values).
        lrs: ``{lr key: [value, ...]}``, ``LearningRateMonitor.lrs`` (from ``history``).
        last_momentum_values: ``{"<key>-momentum": last value or None}``.
        last_weight_decay_values: ``{"<key>-weight_decay": last value or None}``.

    Raises:
        ConfigError: On an invalid argument.
        MisconfigurationException: If one optimizer has two param groups of one ``name``
            (as ``LearningRateMonitor``).

    Example:
        >>> LRLogger(logging_interval=None, every_n_steps=None).every_n_steps is None
        True

    """

    def __init__(
        self,
        momentum: bool = False,
        weight_decay: bool = False,
        every_n_steps: int | None = 1,
        prog_bar: bool = False,
        logging_interval: Interval | None = "step",
        history_size: int = 1000,
        log_key_prefix: str = "",
    ) -> None:
        if every_n_steps is not None and (
            isinstance(every_n_steps, bool)
            or not isinstance(every_n_steps, int)
            or every_n_steps < 1
        ):
            raise ConfigError(
                "LRLogger.every_n_steps",
                f"must be an int >= 1, or null for the trainer's log_every_n_steps; "
                f"got {every_n_steps!r}",
            )
        if logging_interval not in ("step", "epoch", None):
            raise ConfigError(
                "LRLogger.logging_interval",
                f"unknown interval {logging_interval!r}; "
                "valid: 'step', 'epoch' or null (each scheduler's own)",
            )
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < -1:
            raise ConfigError(
                "LRLogger.history_size",
                f"must be an int >= 0, or -1 to keep every value; got {history_size!r}",
            )
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.every_n_steps = every_n_steps
        self.prog_bar = prog_bar
        self.logging_interval = logging_interval
        self.history_size = history_size
        self.log_key_prefix = log_key_prefix or ""
        self.history: dict[str, deque[tuple[int, float]]] = {}
        self.last_momentum_values: dict[str, float | None] = {}
        self.last_weight_decay_values: dict[str, float | None] = {}
        self._lr_keys: dict[str, None] = {}  # an ordered set: LearningRateMonitor.lrs's key order
        self._entries: list[KeyEntry] = []
        self._by_optimizer: dict[int, list[KeyEntry]] = {}
        self._group_counts: dict[int, int] = {}
        self._index: dict[int, int] = {}  # id(optimizer) -> its index in trainer.optimizers
        self._steps: dict[
            int, int
        ] = {}  # optimizer index -> steps taken (every_n_steps), resumable
        self._last_step: dict[int, int] = {}  # id(optimizer) -> logger step of its last step
        self._sent: dict[str, tuple[float, torch.Tensor]] = {}  # monitored values as tensors
        self._monitored: set[str] = set()  # keys a callback or a scheduler monitors

    @property
    def state_key(self) -> str:
        """Checkpoint key, distinct for differently configured instances."""
        return self._generate_state_key(
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            every_n_steps=self.every_n_steps,
            logging_interval=self.logging_interval,
            prog_bar=self.prog_bar,
            history_size=self.history_size,
            log_key_prefix=self.log_key_prefix,
        )

    @property
    def lrs(self) -> dict[str, list[float]]:
        """The logged lrs per key, as ``LearningRateMonitor.lrs`` (bounded by ``history_size``)."""
        return {key: [v for _, v in self.history.get(key, ())] for key in self._lr_keys}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Forget the state of a previous fit, before a checkpoint may restore it."""
        if stage == "fit":
            self._steps.clear()

    def state_dict(self) -> dict[str, Any]:
        """The per-optimizer step counts, so ``every_n_steps`` keeps its phase on resume."""
        return {"optimizer_steps": dict(self._steps)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the per-optimizer step counts."""
        self._steps = {int(k): int(v) for k, v in state_dict.get("optimizer_steps", {}).items()}

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

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Name every key (Lightning's rule) and warn about momentum that is not there."""
        self._last_step.clear()
        self._sent.clear()
        self._monitored = _monitored_keys(trainer)
        self._index = {id(_unwrap(o)): i for i, o in enumerate(trainer.optimizers)}
        self._rebuild(trainer)
        names = [key for entry in self._entries for key in entry.lr]
        self._lr_keys = dict.fromkeys(names)
        self.history = {}
        self.last_momentum_values = {f"{n}-momentum": None for n in names}
        self.last_weight_decay_values = {f"{n}-weight_decay": None for n in names}
        if self.momentum:
            lacking = sorted(
                {
                    type(e.optimizer).__name__
                    for e in self._entries
                    if not any("betas" in g or "momentum" in g for g in e.optimizer.param_groups)
                }
            )
            if lacking:
                rank_zero_warn(
                    f"LRLogger(momentum=True), but some optimizers do not have momentum or betas "
                    f"({', '.join(lacking)}): their -momentum keys log 0, as LearningRateMonitor's"
                    " do."
                    " Set momentum=False to leave them out.",
                    category=RuntimeWarning,
                )

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        """Log the values this optimizer step will use."""
        if self.logging_interval == "epoch":
            return
        inner = _unwrap(optimizer)
        opt_id = id(inner)
        step = _logger_step(trainer)
        # LBFGS runs the closure (and this hook) several times per step; a manual loop may
        # step one optimizer twice in a batch: the logger has one x per batch, log once.
        if self._last_step.get(opt_id) == step:
            return
        self._last_step[opt_id] = step
        if self._group_counts.get(opt_id) != len(inner.param_groups):
            self._rebuild(trainer)
            # An optimizer the trainer does not list (nothing to log) is not renamed again.
            self._group_counts.setdefault(opt_id, len(inner.param_groups))
        index = self._index.get(opt_id, -1)
        count = self._steps.get(index, 0)
        self._steps[index] = count + 1
        if self.every_n_steps is None:
            if not trainer._logger_connector.should_update_logs:
                return
        elif count % self.every_n_steps:
            return
        # With logging_interval=None an epoch-interval scheduler's lr is logged at epoch start.
        entries = [
            e
            for e in self._by_optimizer.get(opt_id, ())
            if self.logging_interval == "step" or e.interval != "epoch"
        ]
        self._emit(trainer, entries, step)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """With ``logging_interval`` "epoch" (or None, for epoch schedulers): log here."""
        if self.logging_interval == "step":
            return
        if any(
            self._group_counts.get(id(e.optimizer)) != len(e.optimizer.param_groups)
            for e in self._entries
        ):
            self._rebuild(trainer)
        entries = [
            e for e in self._entries if self.logging_interval == "epoch" or e.interval != "step"
        ]
        self._emit(trainer, entries, _logger_step(trainer))

    def _rebuild(self, trainer: pl.Trainer) -> None:
        """(Re)name every key: at train start and when an optimizer's group count changes."""
        entries = metric_keys(trainer.lr_scheduler_configs, trainer.optimizers, self.log_key_prefix)
        old = {(id(e.optimizer), e.interval, i): e for i, e in enumerate(self._entries)}
        for i, entry in enumerate(entries):
            previous = old.get((id(entry.optimizer), entry.interval, i))
            if previous is not None:
                entry.logged_at = previous.logged_at
            self._remap(entry.lr)
        self._entries = entries
        self._by_optimizer = defaultdict(list)
        for entry in entries:
            self._by_optimizer[id(entry.optimizer)].append(entry)
        self._group_counts = {id(e.optimizer): len(e.optimizer.param_groups) for e in entries}

    def _remap(self, names: list[str]) -> None:
        # LearningRateMonitor's rule: when a one-group optimizer ("lr-SGD") gains groups, its
        # history continues as "lr-SGD/pg1"; new keys start empty.
        for name in names:
            old = name.replace("/pg1", "")
            if "/pg1" in name and old in self._lr_keys:
                del self._lr_keys[old]
                self._lr_keys[name] = None
                for suffix in ("", "-momentum", "-weight_decay"):
                    if old + suffix in self.history:
                        self.history[name + suffix] = self.history.pop(old + suffix)
            elif name not in self._lr_keys:
                self._lr_keys[name] = None

    def _emit(self, trainer: pl.Trainer, entries: Iterable[KeyEntry], step: int) -> None:
        stats: dict[str, float] = {}
        for entry in entries:
            if entry.logged_at == step:  # an epoch-start value already logged at this step
                continue
            entry.logged_at = step
            self._read(entry, stats)
        if not stats:
            return
        if self.history_size:
            maxlen = None if self.history_size < 0 else self.history_size
            for key, value in stats.items():
                values = self.history.get(key)
                if values is None:
                    values = self.history[key] = deque(maxlen=maxlen)
                values.append((step, value))
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)
        self._to_callback_metrics(trainer, stats)
        if self.prog_bar and self._entries:
            value = stats.get(self._entries[0].lr[0])
            if value is not None:
                # The public property recomputes every logged metric (a device sync per metric).
                trainer._logger_connector._progress_bar_metrics["lr"] = ReadableFloat(value)

    def _read(self, entry: KeyEntry, stats: dict[str, float]) -> None:
        groups = entry.optimizer.param_groups
        for group, lr_key, mom_key, wd_key in zip(
            groups, entry.lr, entry.momentum, entry.weight_decay, strict=True
        ):
            stats[lr_key] = _number(group["lr"])
            if self.momentum:
                value = MOMENTUM.get(group) or 0.0
                stats[mom_key] = self.last_momentum_values[mom_key] = _number(value)
            if self.weight_decay and "weight_decay" in group:
                stats[wd_key] = self.last_weight_decay_values[wd_key] = _number(
                    group["weight_decay"]
                )

    def _to_callback_metrics(self, trainer: pl.Trainer, stats: dict[str, float]) -> None:
        # The public property recomputes every logged metric (a device sync each), so the
        # dict is updated directly. EarlyStopping / ModelCheckpoint / ReduceLROnPlateau need
        # a tensor: a monitored key gets a new CPU one when its value changes (a monitor
        # keeps references, so none is changed in place); every other key its float.
        metrics = trainer._logger_connector._callback_metrics
        for key, value in stats.items():
            if key not in self._monitored:
                metrics[key] = value
                continue
            sent = self._sent.get(key)
            if sent is None or sent[0] != value or metrics.get(key) is not sent[1]:
                tensor = torch.tensor(value)
                metrics[key] = tensor
                self._sent[key] = (value, tensor)


@dataclass
class KeyEntry:
    """The keys of one optimizer's groups (one entry per scheduler config, then per optimizer).

    Attributes:
        optimizer: The torch optimizer.
        interval: The scheduler's ``interval`` (``"step"`` / ``"epoch"``), None without one.
        lr: One key per param group, in group order.
        momentum: ``<lr key>-momentum`` per group.
        weight_decay: ``<lr key>-weight_decay`` per group.
        logged_at: The logger step this entry was last logged at.

    """

    optimizer: torch.optim.Optimizer
    interval: str | None
    lr: list[str]
    momentum: list[str] = field(init=False)
    weight_decay: list[str] = field(init=False)
    logged_at: int | None = None

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
        MisconfigurationException: If an optimizer has two groups of the same name, or two
            optimizers would log under one key (two schedulers of one ``name``).

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1)], lr=0.1)
        >>> [e.lr for e in metric_keys([], [opt, torch.optim.SGD([torch.zeros(1)], lr=0.1)])]
        [['lr-SGD'], ['lr-SGD-1']]

    """
    entries: list[KeyEntry] = []
    seen: list[int] = []
    count: defaultdict[type, int] = defaultdict(int)

    def add(optimizer: Any, name: str | None, interval: str | None) -> None:
        seen.append(id(optimizer))
        cls = type(optimizer)
        if name is None:
            count[cls] += 1
            name = optimizer_key(optimizer)
        # Lightning suffixes a named scheduler too once its class was counted twice.
        if count[cls] > 1:
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
        inner = _unwrap(optimizer)
        if id(inner) not in seen:
            add(inner, None, None)
    owner: dict[str, Any] = {}
    for entry in entries:
        for key in entry.lr:
            other = owner.setdefault(key, entry.optimizer)
            if other is not entry.optimizer:
                # LearningRateMonitor would write both lrs into one curve.
                raise MisconfigurationException(
                    f"Two optimizers ({type(other).__name__} and "
                    f"{type(entry.optimizer).__name__}) would both log their lr as {key!r}: "
                    "give their schedulers distinct `name`s, or leave `name` out for "
                    "lr-<Optimizer>, lr-<Optimizer>-1, ..."
                )
    return entries


def optimizer_key(optimizer: Any) -> str:
    """``lr-<Optimizer>``: the lr key of an optimizer without a named scheduler.

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


def _monitored_keys(trainer: pl.Trainer) -> set[str]:
    # EarlyStopping, ModelCheckpoint and most third-party monitors name it ``monitor``.
    keys = {getattr(cb, "monitor", None) for cb in trainer.callbacks}
    keys |= {config.monitor for config in trainer.lr_scheduler_configs}
    return {k for k in keys if isinstance(k, str)}


def _unwrap(optimizer: Any) -> Any:
    # LightningOptimizer and DeepSpeed wrap the torch optimizer; a torch one is never unwrapped.
    if isinstance(optimizer, LightningOptimizer):
        return optimizer.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer"):
        return optimizer.optimizer
    return optimizer


def _logger_step(trainer: pl.Trainer) -> int:
    # The step ``self.log`` metrics and LearningRateMonitor are logged at: once per batch
    # that steps (not per micro-batch, not per optimizer), restored on resume.
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def _number(value: Any) -> float:
    # A tensor lr (capturable/fused optimizers) is read without a device sync when on CPU.
    if isinstance(value, torch.Tensor):
        return float(value.item())
    return float(value)


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
