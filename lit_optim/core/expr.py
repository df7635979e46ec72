"""A safe compiler for the arithmetic expressions of :class:`lit_optim.core.schedules.Lambda`.

The text is parsed with :func:`ast.parse` and checked node by node against a whitelist;
the accepted tree is turned into a tree of small Python closures. User text is never
passed to ``eval`` or ``exec``, and nothing outside the whitelist (attributes other than
``math.<function>``, subscripts, strings, lambdas, comprehensions, ...) can be reached.

All arithmetic is done in ``float``: no unbounded integers, so every evaluation takes
microseconds whatever the input. Input is bounded (length, tree depth, node count), and a
power whose constant exponent exceeds 1000 in absolute value (``9 ** 9 ** 9``) is refused
when the expression is compiled.

Example:
    >>> f = compile_expr("0.95 ** epoch", "optim.schedule.init_args.expr", ["epoch"])
    >>> round(f(epoch=2), 4)
    0.9025
    >>> g = compile_expr("max(0.1, cos(pi * progress / 2))", "expr", ["progress"])
    >>> g(progress=1.0)
    0.1

"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Collection, Mapping
from typing import NoReturn

from lit_optim.core.errors import ConfigError, closest

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "MAX_POWER", "compile_expr"]

#: Longest accepted expression, in characters.
MAX_LENGTH = 1000
#: Deepest accepted syntax tree.
MAX_DEPTH = 50
#: Most syntax-tree nodes accepted.
MAX_NODES = 500
#: Largest absolute value of a constant exponent.
MAX_POWER = 1000.0

Env = Mapping[str, float]
Node = Callable[[Env], float]


def _checked_pow(a: float, b: float) -> float:
    # math.pow raises instead of returning a complex number or silently overflowing.
    return math.pow(a, b)


_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _checked_pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
#: Callable functions: name -> (implementation, minimum args, maximum args).
_FUNCTIONS: dict[str, tuple[Callable[..., float], int, int]] = {
    "min": (min, 2, 32),
    "max": (max, 2, 32),
    "abs": (abs, 1, 1),
    "cos": (math.cos, 1, 1),
    "sin": (math.sin, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (math.log, 1, 2),
    "sqrt": (math.sqrt, 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
}
_MATH_FUNCTIONS = frozenset(_FUNCTIONS) - {"min", "max", "abs"}
_CONSTANTS = {"pi": math.pi, "e": math.e}

#: Friendly names of refused constructs, for error messages.
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access `x.y`",
    ast.Subscript: "subscript `x[...]`",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.NamedExpr: "assignment expression `:=`",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Starred: "star expression",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
    ast.MatMult: "operator @",
    ast.BitAnd: "operator &",
    ast.BitOr: "operator |",
    ast.BitXor: "operator ^",
    ast.LShift: "operator <<",
    ast.RShift: "operator >>",
    ast.Invert: "operator ~",
    ast.Is: "operator `is`",
    ast.IsNot: "operator `is not`",
    ast.In: "operator `in`",
    ast.NotIn: "operator `not in`",
}


def compile_expr(text: str, key: str, variables: Collection[str]) -> Callable[..., float]:
    """Compile a whitelisted arithmetic expression into a function of keyword variables.

    Allowed: int / float numbers, the given variable names, ``+ - * / // % **``, unary
    ``+ -``, comparisons, ``and or not``, ``a if cond else b``, the functions ``min``,
    ``max``, ``abs``, ``cos``, ``sin``, ``exp``, ``log``, ``sqrt``, ``floor``, ``ceil``
    (also spelled ``math.cos`` etc.) and the constants ``pi``, ``e``. Arithmetic is float
    arithmetic; a comparison gives 1.0 or 0.0.

    Args:
        text: The expression, e.g. ``"0.5 * (1 + cos(pi * progress))"``.
        key: Config key path used in error messages.
        variables: Names the expression may use; the returned function takes them as
            keyword arguments.

    Returns:
        ``f(**values) -> float``. It raises :class:`ValueError` (naming the expression and
        the variable values) on a runtime error such as a division by zero, an overflow,
        a math domain error or a non-finite result.

    Raises:
        ConfigError: The text is too long, does not parse, is too deep or too large, or
            uses anything outside the whitelist.

    Example:
        >>> f = compile_expr("1 - step / total_steps", "expr", ["step", "total_steps"])
        >>> f(step=25, total_steps=100)
        0.75

    """
    if not isinstance(text, str):
        raise ConfigError(key, f"expected an expression string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ConfigError(
            key, f"expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ConfigError(
            key, f"{_short(text)} is not a valid expression ({err.msg}); {_allowed(variables)}"
        ) from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise ConfigError(key, f"{_short(text)} cannot be parsed ({type(err).__name__})") from None
    _check_size(tree, key)
    compiled = _Compiler(text, key, frozenset(variables)).visit(tree.body)
    names = tuple(variables)

    def evaluate(**values: float) -> float:
        try:
            env = {name: float(values[name]) for name in names}
        except KeyError as err:
            raise TypeError(
                f"{key}: expression {_short(text)} needs variable {err.args[0]!r}"
            ) from None
        try:
            result = float(compiled(env))
        except (ArithmeticError, ValueError) as err:
            raise ValueError(
                f"{key}: expression {_short(text)} failed at {_show(env)}: {_reason(err)}"
            ) from None
        if not math.isfinite(result):
            raise ValueError(f"{key}: expression {_short(text)} gave {result} at {_show(env)}")
        return result

    return evaluate


def _check_size(tree: ast.AST, key: str) -> None:
    """Refuse trees deeper than MAX_DEPTH or larger than MAX_NODES (iteratively: no recursion)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ConfigError(key, f"expression is nested too deeply (at most {MAX_DEPTH} levels)")
        if count > MAX_NODES:
            raise ConfigError(key, f"expression is too large (at most {MAX_NODES} syntax nodes)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Compiler:
    """Turns a validated AST into a tree of closures ``env -> float``."""

    def __init__(self, text: str, key: str, variables: frozenset[str]) -> None:
        self.text = text
        self.key = key
        self.variables = variables

    def visit(self, node: ast.AST) -> Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            self._refuse(node)
        return method(node)  # type: ignore[no-any-return]

    def _refuse(self, node: ast.AST, what: str | None = None) -> NoReturn:
        if what is None:
            what = _CONSTRUCTS.get(type(node), type(node).__name__)
        raise ConfigError(
            self.key, f"{what} is not allowed in an expression; {_allowed(self.variables)}"
        )

    def _Constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = {str: "string", bytes: "bytes"}.get(type(value), type(value).__name__)
            self._refuse(node, f"{kind} literal {value!r}"[:80])
        try:
            number = float(value)
        except OverflowError:
            self._refuse(node, "an integer literal too large for a float")
        return lambda env: number

    def _Name(self, node: ast.Name) -> Node:
        name = node.id
        if name in self.variables:
            return lambda env: env[name]
        if name in _CONSTANTS:
            constant = _CONSTANTS[name]
            return lambda env: constant
        if name in _FUNCTIONS:
            self._refuse(node, f"function {name!r} used without a call")
        known = [*self.variables, *_CONSTANTS]
        raise ConfigError(
            self.key,
            f"unknown name {name!r} in expression{closest(name, known)} "
            f"({_allowed(self.variables)})",
        )

    def _Attribute(self, node: ast.Attribute) -> Node:
        # Only math.<constant>; math.<function> is handled by _Call.
        if _is_math(node) and node.attr in _CONSTANTS:
            constant = _CONSTANTS[node.attr]
            return lambda env: constant
        self._refuse(node)

    def _UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda env: float(not operand(env))
        self._refuse(node.op)

    def _BinOp(self, node: ast.BinOp) -> Node:
        if type(node.op) not in _BINARY:
            self._refuse(node.op)
        fn = _BINARY[type(node.op)]
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow):
            self._check_exponent(node.right, right)
        return lambda env: fn(left(env), right(env))

    def _check_exponent(self, node: ast.expr, exponent: Node) -> None:
        """Refuse a constant exponent above MAX_POWER, such as ``9 ** 9`` in ``9 ** 9 ** 9``."""
        try:
            value = exponent({})  # constant parts only: a variable raises KeyError
        except KeyError:
            return
        except (ArithmeticError, ValueError):
            value = math.inf
        if not abs(value) <= MAX_POWER:
            raise ConfigError(
                self.key,
                f"exponent {ast.unparse(node)[:40]!r} is too large; a constant exponent must be "
                f"within +-{MAX_POWER:g}",
            )

    def _BoolOp(self, node: ast.BoolOp) -> Node:
        values = [self.visit(v) for v in node.values]
        if isinstance(node.op, ast.And):

            def both(env: Env) -> float:
                result = 1.0
                for value in values:
                    result = value(env)
                    if not result:
                        return result
                return result

            return both

        def either(env: Env) -> float:
            result = 0.0
            for value in values:
                result = value(env)
                if result:
                    return result
            return result

        return either

    def _Compare(self, node: ast.Compare) -> Node:
        for op in node.ops:
            if type(op) not in _COMPARE:
                self._refuse(op)
        ops = [_COMPARE[type(op)] for op in node.ops]
        operands = [self.visit(node.left), *(self.visit(c) for c in node.comparators)]

        def compare(env: Env) -> float:
            left = operands[0](env)
            for op, operand in zip(ops, operands[1:], strict=True):
                right = operand(env)
                if not op(left, right):
                    return 0.0
                left = right
            return 1.0

        return compare

    def _IfExp(self, node: ast.IfExp) -> Node:
        test, body, orelse = self.visit(node.test), self.visit(node.body), self.visit(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)

    def _Call(self, node: ast.Call) -> Node:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _FUNCTIONS:
            name = func.id
        elif isinstance(func, ast.Attribute) and _is_math(func) and func.attr in _MATH_FUNCTIONS:
            name = func.attr
        else:
            shown = ast.unparse(func)[:40]
            raise ConfigError(
                self.key,
                f"call of {shown!r} is not allowed{closest(shown, _FUNCTIONS)} "
                f"(functions: {', '.join(_FUNCTIONS)})",
            )
        if node.keywords:
            self._refuse(node, f"keyword argument in {name}()")
        fn, low, high = _FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise ConfigError(
                self.key,
                f"{name}() takes {want} arguments, got {len(node.args)} in {_short(self.text)}",
            )
        args = [self.visit(a) for a in node.args]  # a Starred argument is refused here
        if len(args) == 1:
            (only,) = args
            return lambda env: fn(only(env))
        return lambda env: fn(*(a(env) for a in args))


def _is_math(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id == "math"


def _allowed(variables: Collection[str]) -> str:
    names = ", ".join(sorted(variables)) or "none"
    return (
        f"allowed: numbers, variables ({names}), + - * / // % **, comparisons, and/or/not, "
        f"`a if cond else b`, {', '.join(_FUNCTIONS)}, pi, e"
    )


def _short(text: str, limit: int = 80) -> str:
    """Quote the expression for a message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def _show(env: Env) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in env.items()) or "no variables"


def _reason(err: BaseException) -> str:
    if isinstance(err, ZeroDivisionError):
        return "division by zero"
    if isinstance(err, OverflowError):
        return "numeric overflow"
    return str(err) or type(err).__name__
