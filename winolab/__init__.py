"""winolab: sparse Winograd convolution, derived exactly, checked against oracles.

The core needs numpy and sympy only. Submodules load on first use, so ``import winolab.derive``
needs sympy alone (it runs in a browser's Pyodide without numpy). ``winolab.sparse`` is fast
with numba (the ``fast`` extra) and falls back to numpy, with one warning, without it;
``winolab.torch`` (PyTorch) and ``winolab.widgets``/``winolab.viz`` (ipywidgets, matplotlib)
need their extras and say which one when it is missing.

>>> import winolab
>>> winolab.cook_toom(2, 3).BT.tolist()
[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("accuracy", "counting", "derive", "fill_in", "methods", "provenance", "reference",
               "results", "sparse", "sparsity", "study", "testing", "transforms")
_ATTRIBUTES = {
    "cook_toom": "derive",
    "verify": "derive",
    "WinogradTransforms": "transforms",
}

__all__ = ["__version__", *_SUBMODULES, *_ATTRIBUTES]


def __getattr__(name: str):
    # PEP 562: load submodules lazily so that sympy-only code never imports numpy.
    if name in _ATTRIBUTES:
        module = importlib.import_module(f"winolab.{_ATTRIBUTES[name]}")
        value = getattr(module, name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"winolab.{name}")
    else:
        raise AttributeError(f"module 'winolab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
