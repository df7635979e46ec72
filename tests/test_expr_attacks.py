"""Safe expressions under attack: hostile input is refused at parse time and nothing runs.

Complements ``test_expr.py``: its fixed list of escapes plus more, and hypothesis-generated
expressions that each contain at least one construct outside the whitelist, nested inside
allowed arithmetic. Every one must raise ``ConfigError`` from ``compile_expr`` (nothing is
evaluated), and the sentinel function must never be called. How fast they are refused is
measured in ``benchmarks/bench_expr.py``, not asserted here (wall time on a shared machine
is not a property of the code).
"""

from __future__ import annotations

import pytest
from conftest import record_count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_expr import ESCAPES, SENTINEL

from lit_optim import ConfigError
from lit_optim.core.expr import MAX_LENGTH, compile_expr

KEY = "optim.schedule.init_args.expr"
VARS = ("step", "epoch", "total_steps", "total_epochs", "progress")

MORE_ESCAPES = [
    "__builtins__",
    "__import__",
    "().__class__.__bases__[0].__subclasses__()[104]",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda f: f(f))(lambda f: f(f))",
    "f'{().__class__}'",
    "f'{step!r}'",
    "(y := 9) ** (y ** y)",
    "step.__class__.__mro__",
    "math.__dict__['os']",
    "math.cos.__globals__",
    "(1).__class__",
    "breakpoint()",
    "input()",
    "vars()",
    "dir()",
    "type(step)",
    "compile('1', '', 'eval')",
    "step if __debug__ else 0",
    "'x' * 10 ** 9",
    "[1] * 10 ** 9",
    "10 ** 10 ** 10",
    "max(range(10 ** 9))",
    "sum(1 for _ in iter(int, 1))",
    "1; import os",
    "import os",
    "",
    "   ",
    "#",
    "step\n.__class__",
    "yield 1",
    "await step",
    "lambda: 0",
    "step[::-1]",
    "{**{}}",
    "min(step, *())",
    "cos(step, **{})",
    "math.pi.__class__",
    "math.cos(0).real",
    "9**9**9",
    "abs(" * 200 + "1" + ")" * 200,  # (redundant parentheses alone are harmless: no node)
    "-(" * 120 + "step" + ")" * 120,
    "step" + " + step" * 300,
    "a" * 100_000,
    "1" * (MAX_LENGTH + 1),
    "\u202e1",
    "\N{FULLWIDTH DIGIT ONE}",
]

#: Constructs outside the whitelist; ``{x}`` is filled with a (hostile or benign) subexpression.
HOSTILE = [
    "__import__('os')",
    "touch()",
    "eval('{x}')",
    "getattr(math, 'cos')",
    "open('/tmp/x')",
    "globals()",
    "({x}).__class__",
    "({x}).__class__.__bases__[0].__subclasses__()",
    "({x})[0]",
    "[{x}][0]",
    "({x}, 1)",
    "{{{x}}}",
    "{{1: {x}}}",
    "(lambda: {x})()",
    "[{x} for _ in [1]]",
    "{{{x} for _ in [1]}}",
    "sum({x} for _ in [1])",
    "f'{{{x}}}'",
    "(_w := {x})",
    "'{x}'",
    "({x}) @ 2",
    "({x}) << 1",
    "~({x})",
    "({x}) | 1",
    "({x}) is None",
    "({x}) in [1]",
    "min(*[{x}])",
    "max({x}, key=abs)",
    "9 ** 9 ** 9 + ({x})",
    "2 ** 1001 * ({x})",
    "math.os.system('{x}')",
    "True + ({x})",
    "None",
    "...",
    "1j * ({x})",
]
#: Allowed constructs that wrap a subexpression without making it safe.
BENIGN_WRAP = [
    "({x}) + 1",
    "min({x}, 2)",
    "-({x})",
    "({x}) if step > 3 else 1",
    "1 if step > 3 else ({x})",
    "cos({x})",
    "0.95 ** ({x})",
    "({x}) * progress",
    "not ({x})",
    "({x}) < 2 and 1",
]
BENIGN = ["step", "epoch", "1", "0.5", "progress", "pi", "total_steps", "1e-3"]


def _fill(template: str, sub: str) -> str:
    return template.replace("{x}", sub).replace("{{", "{").replace("}}", "}")


def hostile_expressions() -> st.SearchStrategy[str]:
    benign = st.sampled_from(BENIGN)
    inner = st.recursive(
        benign,
        lambda sub: st.builds(_fill, st.sampled_from(BENIGN_WRAP), sub),
        max_leaves=4,
    )
    attack = st.builds(_fill, st.sampled_from(HOSTILE), inner)
    nested_attack = st.recursive(
        attack,
        lambda sub: st.builds(_fill, st.sampled_from(BENIGN_WRAP + HOSTILE), sub),
        max_leaves=6,
    )
    return nested_attack


def touch() -> int:
    SENTINEL.append("ran")
    return 1


def refuse(text: str) -> None:
    """Compile ``text``; it must be refused with a one-line error naming the key."""
    with pytest.raises(ConfigError) as info:
        compile_expr(text, KEY, VARS)
    assert str(info.value).startswith(f"{KEY}: "), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ESCAPES + MORE_ESCAPES, ids=range(len(ESCAPES + MORE_ESCAPES)))
def test_known_escapes_are_refused_at_parse_time(text: str) -> None:
    text = text.replace("{flag}", "/nonexistent/flag").replace("{{", "{").replace("}}", "}")
    refuse(text)
    assert SENTINEL == []
    record_count("expression attacks refused (fixed list)", 1)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(hostile_expressions())
def test_generated_hostile_expressions_are_all_refused(text: str) -> None:
    refuse(text)
    assert SENTINEL == []
    record_count("expression attacks refused (hypothesis)", 1)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_either_refused_or_a_pure_number(text: str) -> None:
    """Random unicode: a ConfigError, or a compiled function of the variables only."""
    try:
        f = compile_expr(text, KEY, VARS)
    except ConfigError:
        record_count("random texts refused", 1)
    else:
        try:
            value = f(step=3, epoch=1, total_steps=10, total_epochs=2, progress=0.3)
        except ValueError:  # division by zero and the like, at evaluation time
            value = 0.0
        assert isinstance(value, float)
    assert SENTINEL == []
