"""YAML read as jsonargparse reads it, without importing jsonargparse.

The ``optim:`` section is layered before jsonargparse parses the rest (see
:mod:`lit_optim.lightning.optim_args`), and on ``lit-optim``'s fast path before Lightning
or jsonargparse are imported at all. Its values must read exactly as jsonargparse would
read them: PyYAML's safe loader, but ``1e-3`` is a float (YAML 1.1 wants ``1.0e-3``) and
dates stay strings. ``tests/test_precheck.py`` checks this against jsonargparse's own
loader.

Example:
    >>> load_yaml("{lr: 1e-3, when: 2024-01-01, n: 1_000}")
    {'lr': 0.001, 'when': '2024-01-01', 'n': 1000}

"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml"]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader with jsonargparse's implicit resolvers (no timestamps, wider floats)."""


_DROPPED = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {  # a copy: PyYAML's own loaders stay as they are
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        """^(?:
    [-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*
    |[-+]?\\.(?:inf|Inf|INF)
    |\\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """``text`` as jsonargparse's ``yaml`` loader reads it.

    Like jsonargparse, a text that YAML reads as a mapping of keys without values
    (``"abc:"``, ``"{a, b}"``) is kept as the string itself.

    Raises:
        yaml.YAMLError: Not valid YAML.

    """
    value = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    if isinstance(value, dict) and value and all(v is None for v in value.values()):
        if len(value) == 1 and text.strip() == f"{next(iter(value))}:":
            return text
        keys = set(text.strip(" {}").replace(" ", "").split(","))
        if keys and keys == set(value):
            return text
    return value
