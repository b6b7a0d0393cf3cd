"""winolab.torch: Winograd-domain layers, pruning methods and networks in PyTorch (opt-in).

``import winolab.torch`` needs PyTorch (``pip install winolab[torch]``); the rest of winolab does
not. The pieces, one module each:

- :mod:`winolab.torch.functional`: the Winograd-domain convolution with an explicit backward;
- :mod:`winolab.torch.layers`: ``WinogradConv2d``, whose parameter is the Winograd-domain kernel U;
- :mod:`winolab.torch.pruning`: the pruning rules of Han et al., Li et al., Liu et al., Yu et al.;
- :mod:`winolab.torch.models`: VGG-nagadomi, ConvPool-CNN-C and Liu et al.'s ResNet-18 variant;
- :mod:`winolab.torch.stats`: activation densities and the papers' multiplication count;
- :mod:`winolab.torch.data`: the CIFAR-10 pipeline (numpy + Pillow) over the JPEG zip;
- :mod:`winolab.torch.train`: dense training, masked retraining, checkpoints and ``--resume``;
- :mod:`winolab.torch.cli`: the ``python -m winolab train`` command line.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "winolab.torch needs PyTorch, which is not installed: pip install winolab[torch]"
    ) from exc

from winolab.torch.functional import (  # noqa: E402
    filter_transform,
    input_transform,
    winograd_domain_conv2d,
)
from winolab.torch.layers import WinogradConv2d  # noqa: E402
from winolab.torch.models import build_model, convert_to_winograd  # noqa: E402
from winolab.torch.pruning import make_pruner  # noqa: E402
from winolab.torch.stats import activation_densities, multiplication_count  # noqa: E402

__all__ = [
    "WinogradConv2d",
    "activation_densities",
    "build_model",
    "convert_to_winograd",
    "filter_transform",
    "input_transform",
    "make_pruner",
    "multiplication_count",
    "winograd_domain_conv2d",
]
