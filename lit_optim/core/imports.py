"""Import an object from a dotted path given in a config."""

from __future__ import annotations

import importlib
from typing import Any


def import_path(path: str) -> Any:
    """Import ``pkg.mod.attr[.attr...]``, trying the longest importable module prefix.

    Raises:
        ImportError: Not a dotted path, no such module or attribute. A module that exists
            but fails on one of its own imports re-raises that error unchanged.

    Example:
        >>> import_path("torch.nn.LayerNorm").__name__
        'LayerNorm'

    """
    parts = path.strip().split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise ImportError(f"{path!r} is not a dotted import path")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not module_name.startswith(err.name):
                raise  # a module that exists failed on one of its own imports
            continue
        for attr in parts[split:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None
        return obj
    raise ImportError(f"no module named {parts[0]!r}")
