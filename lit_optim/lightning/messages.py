"""Bad-config errors as one line: ``<key path>: <what is wrong>``.

Three sources reach the CLI: our :class:`ConfigError` (the whole ``optim:`` section is
validated by :meth:`OptimConfig.from_dict` alone), jsonargparse's parse errors of the
*other* sections (YAML syntax, types and unknown keys of ``trainer``, ``model``, ``data``;
nested, multi-line, with usage text), and Lightning's "monitored metric not available".
Each becomes the one line ``lit-optim`` prints. The jsonargparse part is a fallback that
only shortens its text: jsonargparse never sees inside ``optim:``.
"""

from __future__ import annotations

import re
from argparse import ArgumentError

from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lit_optim.core.errors import ConfigError, closest


def bad_config_message(err: BaseException) -> str | None:
    """The one-line message for an error caused by the config, or ``None`` for a real bug.

    A ``ConfigError`` may arrive wrapped: jsonargparse instantiates schedules given by
    ``class_path`` and reports a failure as a ``ValueError`` of the union type whose
    cause is our error. Parse errors of jsonargparse itself (unknown key, wrong type)
    are shortened to ``<key path>: <what is wrong>``; Lightning's "monitored metric not
    available" is translated into an ``optim.monitor`` error.
    """
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConfigError):
            return str(cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if isinstance(err, ArgumentError):
        return parser_message(str(err))
    if isinstance(err, MisconfigurationException):
        monitor = monitor_error(str(err))
        return None if monitor is None else str(monitor)
    return None


def one_line(message: str) -> str:
    """A multi-line message as one line (jsonargparse indents its details)."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


_PARSER_KEY = re.compile(r'\s*Parser key "(?P<key>[^"]+)":\s*(?P<rest>.*)', re.S)
_CLASS_PATH = re.compile(r"\s*Problem with given class_path '[^']+':\s*(?P<rest>.*)", re.S)
_UNKNOWN_OPTION = re.compile(
    r"Subcommand '(?P<command>\w+)' does not accept option '(?P<key>[^']+)'"
)
_UNION = "Does not validate against any of the Union subtypes"
# Union alternatives that only say "it is not this other type" (None, a string, a Spec).
_NOT_THIS_TYPE = ("Expected a <class 'NoneType'>", "Expected a <class 'str'>", "Not of type Spec")


def parser_message(message: str) -> str:
    """Shorten jsonargparse's nested message to ``<key path>: <what is wrong>`` on one line.

    ``Parser key "optim.warmup": ... class_path 'lit_optim.Warmup': Parser key "mode":
    Expected ...`` becomes ``optim.warmup.mode: Expected ...``; of a union's
    alternatives only the one that explains the failure is kept.
    """
    keys: list[str] = []
    rest = message
    while True:
        if match := _PARSER_KEY.match(rest):
            keys.append(match["key"])
            rest = match["rest"]
        elif match := _CLASS_PATH.match(rest):
            rest = match["rest"]
        elif rest.lstrip().startswith(_UNION):
            errors = _union_errors(rest)
            useful = [e for e in errors if not e.startswith(_NOT_THIS_TYPE)]
            if not useful:
                break
            if all(e.startswith("Expected a ") for e in useful):  # a plain type mismatch
                given = re.search(r"^\s*Given value: (.*)$", rest, re.M)
                rest = " or ".join(useful) + (f". Got value: {given[1]}" if given else "")
                break
            rest = useful[0]
        else:
            break
    if not keys:
        unknown = _UNKNOWN_OPTION.search(message)
        if unknown is None:
            return one_line(message)
        return f"{unknown['key']}: unknown option (see `lit-optim {unknown['command']} --help`)"
    return f"{'.'.join(keys)}: {one_line(rest)}"


def _union_errors(text: str) -> list[str]:
    """The ``- <error>`` items of a union message (an item may span indented lines)."""
    lines = text.splitlines()
    dashes = [line for line in lines if line.lstrip().startswith("- ")]
    if not dashes:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in dashes)
    items: list[list[str]] = []
    for line in lines:
        depth = len(line) - len(line.lstrip())
        if depth == indent and line.lstrip().startswith("- "):
            items.append([line.strip()[2:]])
        elif items and depth > indent:
            items[-1].append(line.strip())
        elif items:
            break
    return ["\n".join(item) for item in items]


_MONITOR_MISSING = re.compile(
    r"conditioned on metric (?P<key>.+?) which is not available\. "
    r"Available metrics are: \[(?P<logged>.*?)\]\."
)


def monitor_error(message: str) -> ConfigError | None:
    """Lightning's "metric not available" error for ``optim.monitor`` as a ConfigError.

    Lightning only finds out when the scheduler first steps (end of the first epoch or
    step), so logs of the current run exist by then; the message names what is logged.
    """
    match = _MONITOR_MISSING.search(message)
    if match is None:
        return None
    key = match["key"]
    logged = [m.strip().strip("'\"") for m in match["logged"].split(",") if m.strip()]
    return ConfigError(
        "optim.monitor",
        f"{key!r} is never logged by the model{closest(key, logged)} "
        f"(logged metrics: {', '.join(logged) or 'none'})",
    )
