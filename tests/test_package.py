"""Package hygiene: the public names, py.typed, and a core that imports no Lightning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_core_modules_import_no_lightning():
    code = (
        "import sys\n"
        "import lit_optim.groups, lit_optim.schedules, lit_optim.scheduler, lit_optim.expr\n"
        "import lit_optim.optimizers, lit_optim.multi_tensor, lit_optim.config\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "bad = sorted(roots & {'lightning', 'pytorch_lightning'})\n"
        "print(bad)\n"
        "assert not bad\n"
    )
    # lit_optim/__init__ imports the Lightning glue, so load the core without it.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('lit_optim', "
            f"{str(Path(lit_optim.__file__))!r}, submodule_search_locations=[])\n"
            "pkg = importlib.util.module_from_spec(spec)\n"
            f"pkg.__path__ = [{str(Path(lit_optim.__file__).parent)!r}]\n"
            "sys.modules['lit_optim'] = pkg\n" + code,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
