"""jsonargparse's view of the ``optim:`` section: how a :class:`Spec` is parsed and printed.

Registered when the CLI is imported, never by the core, so ``import lit_optim`` stays
free of jsonargparse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from jsonargparse.typing import register_type

from lit_optim.core.config_values import FrozenMapping, Spec
from lit_optim.core.errors import ConfigError
from lit_optim.core.implementation import printed_speed_flags
from lit_optim.core.optimizers import optimizer_defaults, resolve_optimizer


def _parse_spec(value: Any) -> str | Spec:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return Spec(_with_optimizer_defaults(value))
    raise ValueError(f"expected a class path or {{class_path, init_args}}, got {value!r}")


def _with_optimizer_defaults(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """An optimizer spec with every init arg spelled out, so ``--print_config`` shows what runs.

    Anything that is not a valid optimizer spec comes back unchanged: schedules share this
    type, and a bad optimizer is reported with its key path when the config is validated.
    """
    if set(spec) - {"class_path", "init_args"}:
        return spec  # a misspelled key: validation names it
    try:
        cls, init_args = resolve_optimizer(spec)
        full = optimizer_defaults(cls, init_args)
    except ConfigError:
        return spec
    given = str(spec.get("class_path"))
    if "." in given:
        path = given
    elif getattr(torch.optim, cls.__name__, None) is cls:
        path = f"torch.optim.{cls.__name__}"
    else:
        path = f"{cls.__module__}.{cls.__qualname__}"
    return {"class_path": path, "init_args": {k: _plain(v) for k, v in full.items()}}


def _plain(value: Any) -> Any:
    # YAML has no tuples: (0.9, 0.999) prints and round-trips as [0.9, 0.999].
    return list(value) if isinstance(value, tuple) else value


def _dump_spec(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    data = dict(value)
    if isinstance(data.get("init_args"), Mapping) and not set(data) - {"class_path", "init_args"}:
        try:
            cls, init_args = resolve_optimizer(data)
        except ConfigError:
            return data  # a schedule spec (same type) or a bad optimizer, reported elsewhere
        # The printed / saved config shows the implementation lit_optim picks (fused).
        data["init_args"] = {**init_args, **printed_speed_flags(cls, init_args)}
    return data


register_type(Spec, serializer=_dump_spec, deserializer=_parse_spec)


class OptimSection(FrozenMapping):
    """The top-level ``optim:`` section as jsonargparse holds it: plain, unchecked data.

    jsonargparse never looks inside it, so :meth:`OptimConfig.from_dict` (the one
    validator) sees the section exactly as written and names every mistake by its key
    path. :mod:`lit_optim.lightning.optim_args` layers it from configs and overrides.
    Not a dict subclass: jsonargparse would take a dict apart into nested keys.
    """

    def __repr__(self) -> str:
        return f"OptimSection({self._data!r})"


def _parse_section(value: Any) -> Any:
    # Anything but a mapping is handed on as it is: the validator says what is wrong.
    return OptimSection(value) if isinstance(value, Mapping) else value


def _dump_section(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    section = dict(value)
    optimizer = section.get("optimizer")
    if isinstance(optimizer, Mapping):
        # Every init arg spelled out (and the implementation lit_optim picks, fused), so
        # --print_config and config.yaml show what runs.
        section["optimizer"] = _dump_spec(_with_optimizer_defaults(optimizer))
    return section


register_type(OptimSection, serializer=_dump_section, deserializer=_parse_section)
