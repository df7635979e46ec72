"""Package hygiene: the public names, py.typed, and a core that imports no Lightning."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lit_optim


def test_all_is_sorted_and_importable():
    assert lit_optim.__all__ == sorted(lit_optim.__all__)
    for name in lit_optim.__all__:
        assert getattr(lit_optim, name) is not None


def test_contract_names_are_public():
    for name in ("OptimConfig", "OptimMixin", "LRLogger", "ConfigError", "Poly", "Sequence"):
        assert name in lit_optim.__all__
    assert issubclass(lit_optim.ConfigError, ValueError)


def test_py_typed_ships():
    assert (Path(lit_optim.__file__).parent / "py.typed").exists()


PACKAGE = Path(lit_optim.__file__).parent
MODULES = sorted(
    ".".join(("lit_optim", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if p.name != "__main__.py"
)
# Which layer may import which: core <- lightning <- tools (demo sits with lightning).
LAYER = {"core": 0, "lightning": 1, "demo": 1, "tools": 2}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER.get(parts[1]) if len(parts) > 1 else None


def _imports(module: str) -> set[str]:
    """lit_optim modules that ``module`` imports anywhere: module level, in functions, and
    under ``if TYPE_CHECKING:`` (a type hint ties two modules as much as a call does; what
    runs at import time is checked by the subprocess tests below).
    """
    path = PACKAGE.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lit_optim"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lit_optim")}
    return {m for m in found if m in MODULES and m != module}


def test_import_lit_optim_loads_no_lightning_jsonargparse_or_rich():
    code = (
        "import sys, lit_optim\n"
        "print([m for m in ('lightning', 'jsonargparse', 'rich') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_lightning_names_resolve():
    assert lit_optim.OptimMixin.__module__ == "lit_optim.lightning.mixin"
    assert lit_optim.LRLogger.__module__ == "lit_optim.lightning.callbacks"
    with pytest.raises(AttributeError):
        _ = lit_optim.NoSuchThing  # type: ignore[attr-defined]


def test_core_modules_import_no_lightning_jsonargparse_or_rich():
    core = " ".join(m for m in MODULES if _layer(m) == 0)
    code = (
        f"import sys, importlib\nfor m in {core!r}.split(): importlib.import_module(m)\n"
        "print([m for m in ('lightning', 'jsonargparse', 'rich') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_module_imports_in_isolation():
    # One interpreter (torch loads once); before each import every lit_optim module is
    # dropped, so each module must pull in what it needs by itself.
    code = (
        "import importlib, sys, torch\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'lit_optim']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_layers_import_only_downwards():
    wrong = [
        (m, dep)
        for m in MODULES
        for dep in _imports(m)
        if _layer(m) is not None and _layer(dep) is not None and _layer(dep) > _layer(m)
    ]
    assert wrong == []


def test_no_import_cycles():
    graph = {m: _imports(m) - {"lit_optim"} for m in MODULES}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycles.append([*stack[stack.index(node) :], node])
            return
        # A package's __init__ importing its submodules counts: a circle through a
        # package's face (config -> schedules -> schedules._join -> config) is one.
        for dep in sorted(graph.get(node, ())):
            visit(dep, [*stack, node])

    for module in MODULES:
        visit(module, [])
    assert cycles == []


def test_contract_schedules_module_exports_every_schedule():
    import lit_optim.schedules as schedules

    names = "Constant Step MultiStep Exponential Linear Cosine CosineRestarts Poly OneCycle"
    for name in (*names.split(), "InverseSqrt", "WarmupStableDecay", "Lambda", "Sequence"):
        assert getattr(schedules, name) is getattr(lit_optim, name)
