"""The papers' networks, each in the three architectures of Liu et al.'s Figure 1.

- ``"spatial"``: spatial convolution, spatial ReLU (the conventional network);
- ``"winograd"``: Winograd layers (:class:`~winolab.torch.layers.WinogradConv2d`), spatial ReLU;
- ``"winograd_relu"``: Winograd layers whose ReLU runs on the transformed input tiles,
  ``ReLU(BT d B)``, from layer 2 on. The ReLU "belongs to the previous layer", so the spatial
  ReLU in front of such a layer is removed (its input is the pre-activation). A max-pool or
  dropout in between commutes with ReLU, so it stays where it is.

The first layer (it sees the image) stays a spatial convolution in every architecture, and
1x1 convolutions and FC layers are spatial too. Module names follow the layer tables of
:mod:`winolab.counting` (``conv2``, ``res3a.conv1`` for ``res3a_conv1``, ``fc1``), so that
:func:`table_name` maps a module to its row.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from winolab import methods
from winolab._validate import check_bool, check_m
from winolab.derive import DEFAULT_CONVENTION, Convention, check_convention
from winolab.methods import Architecture
from winolab.torch.layers import WinogradConv2d

__all__ = ["ARCHITECTURES", "MODELS", "build_model", "convert_to_winograd", "table_name"]

ARCHITECTURES: tuple[Architecture, ...] = tuple(methods.ARCHITECTURES)
MODELS: dict[str, int] = {"vgg-nagadomi": 10, "convpool-cnn-c": 100, "resnet18-liu": 1000}


def table_name(module_name: str) -> str:
    """The :mod:`winolab.counting` layer name of a module: ``"res2a.conv1" -> "res2a_conv1"``."""
    return module_name.replace(".", "_")


def _conv3(
    c: int, k: int, arch: str, first: bool, m: int, padding: int = 1, bias: bool = False,
    convention: str = DEFAULT_CONVENTION,
) -> nn.Module:
    """A 3x3 layer of the given architecture (the first layer is always spatial)."""
    if arch == "spatial" or first:
        return nn.Conv2d(c, k, 3, padding=padding, bias=bias)
    return WinogradConv2d(
        c, k, 3, padding=padding, m=m, bias=bias, relu_in_winograd=arch == "winograd_relu",
        convention=convention,
    )


def _bn(k: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(k) if batchnorm else nn.Identity()


def _ch(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def _vgg_nagadomi(arch, num_classes, width, m, batchnorm, convention) -> nn.Sequential:
    # conv3-64 x2, pool, conv3-128 x2, pool, conv3-256 x4, pool, FC 4096-1024-1024-10
    # (Yu et al.'s replica of nagadomi's net: BN after each conv, no conv-stage dropout)
    plan = [64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P"]
    layers: list[tuple[str, nn.Module]] = []
    c, i, pool = 3, 0, 0
    for v in plan:
        if v == "P":
            pool += 1
            layers.append((f"pool{pool}", nn.MaxPool2d(2)))
            continue
        i, k = i + 1, _ch(v, width)
        layers += [
            (f"conv{i}", _conv3(c, k, arch, i == 1, m, bias=not batchnorm,
                                convention=convention)),
            (f"bn{i}", _bn(k, batchnorm)),
        ]
        # Winograd-ReLU: the next 3x3 layer applies this layer's ReLU in its Winograd domain
        if arch != "winograd_relu" or i == 8:
            layers.append((f"relu{i}", nn.ReLU(inplace=True)))
        c = k
    hidden = _ch(1024, width)
    layers += [
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c * 4 * 4, hidden)),
        ("relu_fc1", nn.ReLU(inplace=True)),
        ("drop1", nn.Dropout(0.5)),
        ("fc2", nn.Linear(hidden, hidden)),
        ("relu_fc2", nn.ReLU(inplace=True)),
        ("drop2", nn.Dropout(0.5)),
        ("fc3", nn.Linear(hidden, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


def _convpool_cnn_c(arch, num_classes, width, m, batchnorm, convention) -> nn.Sequential:
    # Springenberg et al.'s ConvPool-CNN-C as replicated by Yu et al.: 7 3x3 convs, 2 1x1
    c96, c192 = _ch(96, width), _ch(192, width)
    layers: list[tuple[str, nn.Module]] = [("drop0", nn.Dropout(0.2))]
    specs = [
        (3, c96, 1),
        (c96, c96, 1),
        (c96, c96, 1),
        "P",
        (c96, c192, 1),
        (c192, c192, 1),
        (c192, c192, 1),
        "P",
        (c192, c192, 0),
    ]
    i, pool = 0, 0
    for s in specs:
        if s == "P":
            pool += 1
            layers += [
                (f"pool{pool}", nn.MaxPool2d(3, 2, padding=1)),
                (f"drop{pool}", nn.Dropout(0.5)),
            ]
            continue
        i += 1
        c, k, pad = s
        layers += [
            (f"conv{i}", _conv3(c, k, arch, i == 1, m, pad, bias=not batchnorm,
                                convention=convention)),
            (f"bn{i}", _bn(k, batchnorm)),
        ]
        if arch != "winograd_relu" or i == 7:  # conv8 is 1x1: it needs the spatial ReLU
            layers.append((f"relu{i}", nn.ReLU(inplace=True)))
    layers += [
        ("conv8", nn.Conv2d(c192, c192, 1, bias=not batchnorm)),
        ("bn8", _bn(c192, batchnorm)),
        ("relu8", nn.ReLU(inplace=True)),
        ("conv9", nn.Conv2d(c192, num_classes, 1)),
        ("relu9", nn.ReLU(inplace=True)),
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
    ]
    return nn.Sequential(OrderedDict(layers))


class LiuBlock(nn.Module):
    """Liu et al.'s pre-activation basic block of their ResNet-18 variant.

    ``branch = BN(x) -> [ReLU] -> conv1 -> BN -> [ReLU] -> conv2 -> BN``, where the bracketed
    ReLUs are spatial (``"spatial"``, ``"winograd"``) or inside the Winograd layers
    (``"winograd_relu"``); ``out = shortcut + branch`` with no ReLU after the add. The shortcut
    is ``ReLU(x)`` in 'b' blocks and a 1x1 convolution in 'a' blocks, fed as in Liu et al.'s
    code: ``BN -> ReLU -> 1x1 conv -> BN`` in res2a (``shortcut_bn=True``), where the block
    input comes straight from a max-pool, and ``ReLU -> 1x1 conv -> BN`` in res3a, res4a and
    res5a, whose input is the sum of the previous block.
    """

    def __init__(
        self, c: int, k: int, arch: str, m: int, batchnorm: bool, shortcut: bool,
        shortcut_bn: bool = True, convention: str = DEFAULT_CONVENTION,
    ):
        super().__init__()
        self.spatial_relu = arch != "winograd_relu"
        self.bn0 = _bn(c, batchnorm)
        self.conv1 = _conv3(c, k, arch, False, m, bias=not batchnorm, convention=convention)
        self.bn1 = _bn(k, batchnorm)
        self.conv2 = _conv3(k, k, arch, False, m, bias=not batchnorm, convention=convention)
        self.bn2 = _bn(k, batchnorm)
        if shortcut:
            self.short_bn0 = _bn(c, batchnorm) if shortcut_bn else nn.Identity()
            self.short = nn.Conv2d(c, k, 1, bias=not batchnorm)
            self.short_bn1 = _bn(k, batchnorm)
        else:
            self.short = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu if self.spatial_relu else (lambda t: t)
        branch = self.bn2(self.conv2(relu(self.bn1(self.conv1(relu(self.bn0(x)))))))
        if self.short is None:
            return torch.relu(x) + branch
        return self.short_bn1(self.short(torch.relu(self.short_bn0(x)))) + branch


def _resnet18_liu(arch, num_classes, width, m, batchnorm, convention) -> nn.Sequential:
    # conv1 7x7/2 -> pool -> res2 -> pool -> res3 -> pool -> res4 -> res5 (res5 at 14x14)
    c64, c128, c256, c512 = (_ch(c, width) for c in (64, 128, 256, 512))
    layers = [
        ("conv1", nn.Conv2d(3, c64, 7, stride=2, padding=3, bias=False)),
        ("pool1", nn.MaxPool2d(3, 2, padding=1)),
    ]
    stages = [
        ("res2", c64, c64, "pool2"),
        ("res3", c64, c128, "pool3"),
        ("res4", c128, c256, None),
        ("res5", c256, c512, None),
    ]
    for name, c, k, pool in stages:
        layers += [
            (f"{name}a", LiuBlock(c, k, arch, m, batchnorm, True, shortcut_bn=name == "res2",
                                  convention=convention)),
            (f"{name}b", LiuBlock(k, k, arch, m, batchnorm, False, convention=convention)),
        ]
        if pool:
            layers.append((pool, nn.MaxPool2d(3, 2, padding=1)))
    layers += [
        ("relu", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("drop", nn.Dropout(0.15)),
        ("fc", nn.Linear(c512, num_classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


_BUILDERS = {
    "vgg-nagadomi": _vgg_nagadomi,
    "convpool-cnn-c": _convpool_cnn_c,
    "resnet18-liu": _resnet18_liu,
}


def build_model(
    name: str,
    architecture: Architecture = "spatial",
    num_classes: int | None = None,
    width: float = 1.0,
    m: int = 2,
    batchnorm: bool = True,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> nn.Sequential:
    """One of the papers' networks in one of Liu et al.'s three architectures.

    Parameters
    ----------
    name : {"vgg-nagadomi", "convpool-cnn-c", "resnet18-liu"}
        VGG-nagadomi (CIFAR-10, 32x32 input), ConvPool-CNN-C (CIFAR-100, 32x32), Liu et al.'s
        ResNet-18 variant (ImageNet, 224x224; any size >= 32 runs).
    architecture : {"spatial", "winograd", "winograd_relu"}
    num_classes : int, optional
        Defaults to the paper's dataset: 10, 100, 1000.
    width : float
        Channel multiplier for reduced runs (FC widths follow, so the shapes stay consistent).
    m : int
        Output tile of the Winograd layers (Liu et al.: 2; Li et al., Yu et al.: 4).
    batchnorm : bool
        BatchNorm after the convolutions (without it, convolutions get biases).
    convention : {"lavin", "wincnn", "nnpack"}
        Sign/scale convention of the Winograd layers; the default is Liu et al.'s, which a
        ``"winograd_relu"`` network needs to be their network (see
        :class:`~winolab.torch.layers.WinogradConv2d`).

    Returns
    -------
    torch.nn.Sequential
        With attributes ``network_name``, ``architecture`` and ``m``.

    Examples
    --------
    >>> net = build_model("vgg-nagadomi", "winograd_relu", width=0.125)
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> sum(isinstance(mod, WinogradConv2d) for mod in net.modules())
    7
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_BUILDERS)}")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; expected one of {list(ARCHITECTURES)}"
        )
    if num_classes is None:
        num_classes = MODELS[name]
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(width, bool) or not isinstance(width, int | float) or not (
            0 < width < float("inf")):
        raise ValueError(f"width must be a finite positive number, got {width!r}")
    m = check_m(m)  # also for "spatial": model.m is recorded, and pruners read it
    batchnorm = check_bool(batchnorm, "batchnorm", "BatchNorm after the convolutions")
    convention = check_convention(convention)
    model = _BUILDERS[name](
        architecture, num_classes, float(width), m, bool(batchnorm), convention
    )
    model.network_name, model.architecture, model.m = name, architecture, m
    model.convention = convention
    model.register_forward_pre_hook(_ImageSizeCheck(name))
    return model


# The image sizes the layers fix: VGG-nagadomi's fc1 takes the 4x4 maps left by three 2x2
# pools, ConvPool-CNN-C's valid conv7 needs 3x3 maps after two stride-2 pools, and the
# ResNet pools globally. (lowest, highest) pixels a side, and the paper's size.
_IMAGE_SIZES = {"vgg-nagadomi": (32, 39, 32), "convpool-cnn-c": (9, None, 32),
                "resnet18-liu": (1, None, 224)}


class _ImageSizeCheck:
    """Forward pre-hook of :func:`build_model`'s models: an input the network cannot take is
    refused with the size it expects (instead of a matrix-shape error deep inside)."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, module: nn.Module, args: tuple) -> None:
        lo, hi, paper = _IMAGE_SIZES[self.name]
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{self.name} expects a batch of images (N, 3, {paper}, {paper}), "
                             f"got {got}")
        H, W = x.shape[2], x.shape[3]
        if min(H, W) < lo or (hi is not None and max(H, W) > hi):
            span = f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            raise ValueError(f"{self.name} expects {paper}x{paper} images ({span} pixels a "
                             f"side), got {H}x{W}")


def convert_to_winograd(
    model: nn.Module,
    m: int = 2,
    relu_in_winograd: bool = False,
    skip_first: bool = True,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> nn.Module:
    """Replace every 3x3 stride-1 ``nn.Conv2d`` by ``WinogradConv2d.from_conv2d`` (in place).

    Li et al. and Yu et al. start Winograd-domain pruning this way, from a trained spatial
    network (``U = G g GT``: the converted model computes the same function). The first
    convolution of the model is kept when ``skip_first``. Optimizers built before the call
    hold the old parameters: build them again. ``convention`` as in :func:`build_model`.

    >>> net = convert_to_winograd(build_model("vgg-nagadomi", width=0.125), m=4)
    >>> net.conv2.weight.shape, net.architecture
    (torch.Size([8, 8, 6, 6]), 'winograd')
    """
    m = check_m(m)
    relu_in_winograd = check_bool(relu_in_winograd, "relu_in_winograd",
                                  "ReLU after the input transform")
    skip_first = check_bool(skip_first, "skip_first", "keep the first convolution spatial")
    convention = check_convention(convention)
    first = True
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, nn.Conv2d):
                continue
            was_first, first = first, False
            if (was_first and skip_first) or child.kernel_size[0] != 3:
                continue
            if tuple(child.stride) != (1, 1) or child.kernel_size != (3, 3):
                continue
            setattr(
                parent,
                child_name,
                WinogradConv2d.from_conv2d(child, m, relu_in_winograd=relu_in_winograd,
                                           convention=convention),
            )
    if hasattr(model, "architecture"):
        model.architecture = "winograd_relu" if relu_in_winograd else "winograd"
        model.m = m
        model.convention = convention
    return model
