"""winolab: sparse Winograd convolution, derived exactly, checked against oracles.

The core needs numpy and sympy only. ``winolab.sparse`` (numba), ``winolab.torch`` (PyTorch)
and ``winolab.widgets`` (ipywidgets, matplotlib) load their extras when imported.
"""

from winolab import derive, reference
from winolab.derive import cook_toom, verify
from winolab.transforms import WinogradTransforms, transforms

__version__ = "0.1.0"

__all__ = [
    "WinogradTransforms",
    "__version__",
    "cook_toom",
    "derive",
    "reference",
    "transforms",
    "verify",
]
