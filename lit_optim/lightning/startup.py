"""Lightning's start-up lines, held back until the run is known to start.

Lightning logs a seed line, the accelerator banner and tips while the trainer is built,
and warns as it goes. A config refused during that set-up should print its one
``error:`` line first, so these lines are held; they are printed in order once the
checks have passed, dropped when the config was refused, and tips are never printed
(they advertise products and are no part of the run's output).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

__all__ = ["StartupOutput"]

_LOGGERS = ("lightning.pytorch", "lightning.fabric")
_TIP = "💡 Tip"


class StartupOutput:
    """Hold Lightning's log records and warnings from :meth:`hold` until :meth:`release`.

    Example:
        >>> out = StartupOutput()
        >>> out.hold()
        >>> logging.getLogger("lightning.pytorch.x").info("GPU available: False")
        >>> out.drop()  # the config was refused: the banner never shows

    """

    def __init__(self) -> None:
        self._held: list[tuple[str, Any]] = []
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
        self._showwarning: Any = None

    @property
    def holding(self) -> bool:
        """Whether output is being held."""
        return self._showwarning is not None

    def hold(self) -> None:
        """Start holding (idempotent)."""
        if self.holding:
            return
        handler = _Hold(self._held)
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, list(logger.handlers), logger.propagate))
            for own in logger.handlers:  # tips come during fit too: quiet for good
                if not any(isinstance(f, _NoTips) for f in own.filters):
                    own.addFilter(_NoTips())
            # Only loggers that print themselves (Lightning's default); with a root
            # handler configured by the user, records propagate there untouched.
            if logger.handlers and not logger.propagate:
                logger.handlers = [handler]
        self._showwarning = warnings.showwarning
        held = self._held

        def showwarning(*args: Any, **kwargs: Any) -> None:
            held.append(("warning", (args, kwargs)))

        warnings.showwarning = showwarning

    def release(self) -> None:
        """Stop holding and print what was held, in order, without tips."""
        records = self._restore()
        for kind, item in records:
            if kind == "record":
                logging.getLogger(item.name).handle(item)
            else:
                args, kwargs = item
                warnings.showwarning(*args, **kwargs)

    def drop(self) -> None:
        """Stop holding and forget what was held."""
        self._restore()

    def _restore(self) -> list[tuple[str, Any]]:
        if not self.holding:
            return []
        for logger, handlers, _ in self._saved:
            if logger.handlers and isinstance(logger.handlers[0], _Hold):
                logger.handlers = handlers
        warnings.showwarning = self._showwarning
        self._showwarning = None
        self._saved = []
        held, self._held[:] = list(self._held), []
        return held


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_TIP)


class _Hold(logging.Handler):
    def __init__(self, held: list[tuple[str, Any]]) -> None:
        super().__init__()
        self._held = held

    def emit(self, record: logging.LogRecord) -> None:
        self._held.append(("record", record))
