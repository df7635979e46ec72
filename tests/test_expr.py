"""The safe expression compiler behind ``Lambda(expr=...)``."""

from __future__ import annotations

import math

import pytest

from lit_optim import ConfigError
from lit_optim.core.expr import compile_expr

KEY = "optim.schedule.init_args.expr"
VARS = ("step", "epoch", "total_steps", "total_epochs", "progress")
ENV = {"step": 6, "epoch": 2, "total_steps": 12, "total_epochs": 4, "progress": 0.5}

#: Appended to by `touch()`; any escape that manages to run code would leave a mark.
SENTINEL: list[str] = []


def touch() -> int:
    SENTINEL.append("ran")
    return 1


def evaluate(text: str, **env: float) -> float:
    return compile_expr(text, KEY, VARS)(**{**ENV, **env})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3 - 4 / 8", 6.5),
        ("7 // 2 + 7 % 4", 6.0),
        ("2 ** 10", 1024.0),
        ("-step + +1", -5.0),
        ("0.95 ** epoch", 0.95**2),
        ("1 - progress", 0.5),
        ("step / total_steps", 0.5),
        ("epoch / total_epochs", 0.5),
        ("1 if step < 5 else 0.5", 0.5),
        ("1 if step >= 5 else 0.5", 1.0),
        ("step > 3 and step < 10", 1.0),
        ("step > 8 or 0.25", 0.25),
        ("not step", 0.0),
        ("1 < step <= 6 != 7", 1.0),
        ("step == 6", 1.0),
        ("min(step, 3)", 3.0),
        ("max(1, 2, step)", 6.0),
        ("abs(-2.5)", 2.5),
        ("cos(pi)", -1.0),
        ("math.cos(0) + math.sin(0)", 1.0),
        ("exp(0)", 1.0),
        ("log(e)", 1.0),
        ("log(8, 2)", 3.0),
        ("sqrt(16)", 4.0),
        ("floor(2.7) + ceil(2.1)", 5.0),
        ("math.pi + math.e", math.pi + math.e),
        ("0.5 * (1 + cos(pi * progress))", 0.5),
        ("1e-3 * 2", 0.002),
    ],
)
def test_allowed_constructs_compute_the_right_value(text: str, expected: float) -> None:
    value = evaluate(text)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-15, abs=1e-15)


def test_arithmetic_is_float_so_huge_integers_cannot_be_built() -> None:
    # An integer power would build a 6-million-digit int; float pow overflows at once.
    with pytest.raises(ValueError, match="overflow"):
        evaluate("step ** step", step=1_000_000)


def test_variables_come_from_keyword_arguments() -> None:
    f = compile_expr("a * b", KEY, ["a", "b"])
    assert f(a=3, b=0.5) == 1.5
    with pytest.raises(TypeError, match="needs variable 'b'"):
        f(a=3)


@pytest.mark.parametrize(
    ("text", "env", "match"),
    [
        ("1 / (step - 3)", {"step": 3}, r"at step=3.*division by zero"),
        ("step % 0", {}, "division by zero"),
        ("exp(step)", {"step": 1000}, "numeric overflow"),
        ("log(step)", {"step": 0}, "math domain error"),
        ("sqrt(-step)", {"step": 2}, "math domain error"),
        ("(-1) ** 0.5", {}, "math domain error"),
        ("1e308 * 10", {}, "gave inf"),
    ],
)
def test_runtime_errors_raise_value_error_with_expression_and_step(
    text: str, env: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match) as info:
        evaluate(text, **env)
    assert not isinstance(info.value, ConfigError)
    assert repr(text) in str(info.value)


def test_unknown_variable_suggests_the_closest_name() -> None:
    with pytest.raises(ConfigError, match=r"unknown name 'stpe'.*did you mean 'step'\?") as info:
        compile_expr("0.9 ** stpe", KEY, VARS)
    assert info.value.key == KEY
    assert "allowed: numbers, variables (epoch, progress, step, total_epochs, total_steps)" in (
        str(info.value)
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("min(step)", r"min\(\) takes 2 to 32 arguments, got 1"),
        ("sqrt(1, 2)", r"sqrt\(\) takes 1 arguments, got 2"),
        ("max(step, key=1)", "keyword argument in max"),
        ("flor(step)", r"call of 'flor' is not allowed; did you mean 'floor'"),
        ("round(step)", r"call of 'round' is not allowed \(functions: min, max, abs, cos"),
        ("cos", "function 'cos' used without a call"),
        ("step +", "not a valid expression"),
        ("step is 1", "operator `is` is not allowed"),
        ("step & 1", "operator & is not allowed"),
        ("True", "bool literal True is not allowed"),
        ("1j", "complex literal 1j is not allowed"),
        ("9" * 400, "integer literal too large"),
        ("2 ** 1001", "exponent '1001' is too large"),
        ("2 ** -(1000 + 1)", r"exponent '-\(1000 \+ 1\)' is too large"),
        ("2 ** (1 / 0)", "exponent '1 / 0' is too large"),
    ],
)
def test_refusals_name_the_construct(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compile_expr(text, KEY, VARS)


ESCAPES = [
    "__import__('os').system('touch {flag}')",
    "__import__('test_expr').touch()",
    "touch()",
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__",
    "step.__class__",
    "math.os.system('touch {flag}')",
    "math.__loader__",
    "math.cos.__self__",
    "(1).real",
    "[touch()][0]",
    "step[0]",
    "(lambda: touch())()",
    "[touch() for _ in [1]]",
    "{{touch() for _ in [1]}}",
    "{{k: touch() for k in [1]}}",
    "sum(touch() for _ in [1])",
    "f'{{touch()}}'",
    "(x := touch())",
    "'abc'",
    "b'abc'",
    "...",
    "None",
    "{{1: 2}}",
    "(1, 2)",
    "[1, 2]",
    "*step",
    "min(*[1, 2])",
    "eval('1')",
    "exec('touch()')",
    "getattr(math, 'cos')",
    "open('{flag}', 'w')",
    "globals()",
    "9 ** 9 ** 9",
    "9 ** (9 ** 9)",
    "2 ** 2 ** 2 ** 2 ** 2",
    "10 ** 10000",
    "-" * 999 + "1",
    "not " * 200 + "1",
    "(" * 150 + "1" + ")" * 150 + "[0]",
    "(-" * 150 + "1" + ")" * 150,
    "1 < " * 249 + "1",
    "+".join(["step"] * 199),
    "min(" * 60 + "1" + ", 1)" * 60,
    "x" * 10_000,
    "1 + " * 2_500 + "1",
    "\x00",
]


@pytest.mark.parametrize("template", ESCAPES, ids=[e[:40] for e in ESCAPES])
def test_escapes_are_refused_and_nothing_runs(template: str, tmp_path) -> None:
    flag = tmp_path / "flag"
    text = template.format(flag=flag) if "{" in template else template
    with pytest.raises(ConfigError) as info:
        compile_expr(text, KEY, VARS)
    assert str(info.value).startswith(f"{KEY}: ")
    assert SENTINEL == []
    assert not flag.exists()


def test_length_depth_and_size_limits_are_reported() -> None:
    with pytest.raises(ConfigError, match="10000 characters long; at most 1000"):
        compile_expr("x" * 10_000, KEY, VARS)
    with pytest.raises(ConfigError, match="nested too deeply"):
        compile_expr("-" * 999 + "1", KEY, VARS)
    # Shallow but wide: a flat comparison chain passes the depth limit, not the size one.
    wide = "1<" * 499 + "1"
    assert len(wide) <= 1000
    with pytest.raises(ConfigError, match=r"too large \(at most 500 syntax nodes\)"):
        compile_expr(wide, KEY, VARS)
    shallow = "min(" + ", ".join(["1"] * 32) + ")"
    assert evaluate(shallow) == 1.0


def test_hostile_inputs_near_the_length_limit_compile() -> None:
    accepted = [
        "1**" * 40 + "1",  # nested powers of small constants are fine
        " + ".join(f"({i} * step)" for i in range(40)),
        "min(" + ", ".join(["step"] * 30) + ")",
    ]
    for text in accepted:
        assert len(text) <= 1000
        f = compile_expr(text, KEY, VARS)
        assert math.isfinite(f(**ENV))
