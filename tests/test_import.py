"""`import winolab` and its core modules need numpy and sympy only (checked in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numba", "matplotlib", "ipywidgets", "scipy", "hypothesis", "pytest")
# what the core may load beyond the standard library and the interpreter's own start-up
# (cython_runtime is the pseudo-module Cython extensions such as numpy.random register)
ALLOWED = {"winolab", "numpy", "sympy", "mpmath", "cython_runtime"}


def loaded_after(code: str) -> dict:
    """Top-level modules a fresh interpreter holds after ``code``, minus those at start-up."""
    probe = (
        "import sys, json; before = set(sys.modules); "
        f"{code}; "
        "top = lambda names: sorted({n.split('.')[0] for n in names}); "
        "print(json.dumps({'new': top(set(sys.modules) - before), "
        "'stdlib': sorted(sys.stdlib_module_names)}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    "code",
    [
        "import winolab",
        "import winolab; winolab.cook_toom(2, 3); winolab.transforms.transforms(4, 3)",
        "import winolab.derive, winolab.transforms, winolab.reference, winolab.testing",
        "import winolab.accuracy, winolab.fill_in, winolab.sparsity",
        "import winolab; winolab.sparse; winolab.results",
        "import winolab.methods, winolab.counting",
        "from winolab.testing import assert_conv_close, random_case; "
        "from winolab.reference import winograd_conv2d; c = random_case(0); "
        "assert_conv_close(winograd_conv2d(c.x, c.w, c.bias, c.padding, c.m), c.reference(), "
        "c.m, dtype='float64')",
    ],
)
def test_core_loads_only_numpy_and_sympy(code):
    res = loaded_after(code)
    heavy = [m for m in res["new"] if m in HEAVY]
    assert heavy == [], f"{code!r} imported {heavy}"
    third_party = [m for m in res["new"]
                   if m not in ALLOWED and m not in res["stdlib"] and not m.startswith("_")]
    assert third_party == [], f"{code!r} imported third-party modules {third_party}"
    assert "winolab" in res["new"]


def test_bare_import_is_lazy_and_derive_needs_no_numpy():
    assert "numpy" not in loaded_after("import winolab")["new"]
    derive = loaded_after("import winolab.derive")["new"]
    assert "sympy" in derive and "numpy" not in derive


def test_probe_sees_heavy_imports():
    # negative control: the probe does notice a third-party import
    assert "hypothesis" in loaded_after("import winolab, hypothesis")["new"]


def test_type_hints_ship_with_the_package():
    # PEP 561: the py.typed marker sits in the package and pyproject.toml ships it
    from importlib.resources import files
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
        import tomli as tomllib

    assert files("winolab").joinpath("py.typed").is_file()
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["winolab"]
    assert config["project"]["license"] == {"text": "MIT"} and (root / "LICENSE").is_file()
