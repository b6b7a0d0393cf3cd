"""Multiplication counts, the papers' metric, and the layer tables of the papers' networks.

The model (Liu et al., ICLR 2017 workshop; book notes §1.5) counts only the elementwise
products: the transforms ``BT d B`` and ``AT M A`` have 0/±1 entries and cost additions only,
and the weights are stored already transformed, so ``G g GT`` is never computed at inference.
A pruned layer does ``dense count x weight density x activation density`` products: weight and
activation zeros are assumed independent. Fully connected layers, 1x1 convolutions and every
layer that cannot run as Winograd are dense in every method; the first layer is unpruned and
sees the dense image. :func:`exact_winograd_multiplies` counts what a sparse kernel really does,
so that the model can be checked against it.

>>> vgg = get_network("vgg-nagadomi")
>>> print(f"{count_multiplies(vgg, 'direct').total:.4g}")
2.335e+08
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from winolab._validate import check_bool, check_m
from winolab.methods import COUNTS, CountMethod

__all__ = [
    "DENSITY_FIELDS", "METHODS", "NETWORKS", "WORKSHOP_DENSITIES", "ConvLayer", "Densities",
    "FCLayer", "LayerCount", "MultiplyCount", "Network", "compare_methods", "count_multiplies",
    "exact_winograd_multiplies", "get_network",
]

Method = CountMethod  # the table is winolab.methods.COUNTS
METHODS: tuple[Method, ...] = tuple(COUNTS)
DensitySpec = float | Sequence[float] | Mapping[str, float]


def _positive(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution; ``height`` and ``width`` are its *input* size (before padding).

    ``winograd`` marks layers that run as Winograd F(m x m, r x r) (stride 1, square kernel);
    ``first`` marks the first layer, which the papers neither prune nor feed sparse input.

    >>> ConvLayer("conv", 64, 64, 3, 32, 32, padding=1).direct_multiplies
    37748736
    """

    name: str
    in_channels: int
    out_channels: int
    kernel: int
    height: int
    width: int
    padding: int = 0
    winograd: bool = True
    first: bool = False
    stride: int = 1

    def __post_init__(self):
        for f in ("in_channels", "out_channels", "kernel", "height", "width", "stride"):
            _positive(getattr(self, f), f"{self.name}: {f}")
        check_bool(self.winograd, f"{self.name}: winograd", "the layer runs as Winograd")
        check_bool(self.first, f"{self.name}: first", "the first layer, never pruned")
        p = self.padding
        if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 0:
            raise ValueError(f"{self.name}: padding must be an int >= 0, got {p!r}")
        if self.winograd and self.stride != 1:
            raise ValueError(f"{self.name}: a Winograd layer needs stride 1, got {self.stride}")
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"{self.name}: the {self.kernel}x{self.kernel} kernel does not "
                             f"fit the padded {self.height}x{self.width} input")

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def direct_multiplies(self) -> int:
        """Dense direct products: ``H_out W_out C K r^2``."""
        r2 = self.kernel * self.kernel
        return self.out_height * self.out_width * self.in_channels * self.out_channels * r2

    def tiles(self, m: int) -> int:
        """Output tiles per image: ``ceil(H_out / m) ceil(W_out / m)`` (edge tiles cropped)."""
        m = check_m(m)
        return -(-self.out_height // m) * -(-self.out_width // m)

    def winograd_multiplies(self, m: int) -> int:
        """Dense Winograd products: ``tiles alpha^2 C K`` with ``alpha = m + r - 1``."""
        alpha = check_m(m) + self.kernel - 1
        return self.tiles(m) * alpha * alpha * self.in_channels * self.out_channels


@dataclass(frozen=True)
class FCLayer:
    """A fully connected layer: ``in_features x out_features`` products, dense in every method."""

    name: str
    in_features: int
    out_features: int

    def __post_init__(self):
        _positive(self.in_features, f"{self.name}: in_features")
        _positive(self.out_features, f"{self.name}: out_features")

    @property
    def direct_multiplies(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True)
class Network:
    """A network's layers in order, where they come from, and which layers the densities hit."""

    name: str
    dataset: str
    layers: tuple[ConvLayer | FCLayer, ...]
    source: str

    def __post_init__(self):
        layers = self.layers
        if isinstance(layers, str | ConvLayer | FCLayer) or not isinstance(layers, Sequence):
            raise TypeError(f"{self.name}: layers must be a sequence of ConvLayer and FCLayer, "
                            f"got {type(layers).__name__}")
        for i, la in enumerate(layers):
            if not isinstance(la, ConvLayer | FCLayer):
                raise TypeError(f"{self.name}: layer {i} is {la!r} ({type(la).__name__}); "
                                f"expected a ConvLayer or an FCLayer")
        names = [la.name for la in layers]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{self.name}: layer names must be unique (densities are keyed "
                             f"by name), repeated: {twice}")
        object.__setattr__(self, "layers", tuple(layers))

    @property
    def pruned(self) -> tuple[str, ...]:
        """Names of the layers the densities apply to: the Winograd convs but the first."""
        return tuple(la.name for la in self.layers
                     if isinstance(la, ConvLayer) and la.winograd and not la.first)

    @property
    def pruned_multiplies(self) -> dict[str, int]:
        """Dense direct multiplies of each pruned layer: what a per-layer density weighs."""
        pruned = set(self.pruned)
        return {la.name: la.direct_multiplies for la in self.layers if la.name in pruned}


def _conv(name, c, k, hw, r=3, padding=1, **kw) -> ConvLayer:
    return ConvLayer(name, c, k, r, hw, hw, padding, **kw)


# 32x32 input; maxpool 2x2 after conv2, conv4, conv8; 4x4x256 = 4096 features (notes §1.4)
VGG_NAGADOMI = Network("vgg-nagadomi", "CIFAR-10", (
    _conv("conv1", 3, 64, 32, first=True), _conv("conv2", 64, 64, 32),
    _conv("conv3", 64, 128, 16), _conv("conv4", 128, 128, 16),
    _conv("conv5", 128, 256, 8), _conv("conv6", 256, 256, 8),
    _conv("conv7", 256, 256, 8), _conv("conv8", 256, 256, 8),
    FCLayer("fc1", 4096, 1024), FCLayer("fc2", 1024, 1024), FCLayer("fc3", 1024, 10),
), "Liu et al. 2017/2018; nagadomi/kaggle-cifar10-torch7 as replicated by Yu et al.")

# maxpool 3x3/2 (pad 1) after conv3 and conv6; conv7 valid 8 -> 6; then 6x6 global average
CONVPOOL_CNN_C = Network("convpool-cnn-c", "CIFAR-100", (
    _conv("conv1", 3, 96, 32, first=True), _conv("conv2", 96, 96, 32),
    _conv("conv3", 96, 96, 32), _conv("conv4", 96, 192, 16),
    _conv("conv5", 192, 192, 16), _conv("conv6", 192, 192, 16),
    _conv("conv7", 192, 192, 8, padding=0),
    _conv("conv8", 192, 192, 6, r=1, padding=0, winograd=False),
    _conv("conv9", 192, 100, 6, r=1, padding=0, winograd=False),
), "Springenberg et al. 2015, as replicated by Yu et al.; used by Liu et al. 2018")


def _block(name, c, k, hw, shortcut) -> tuple[ConvLayer, ...]:
    convs = (_conv(f"{name}_conv1", c, k, hw), _conv(f"{name}_conv2", k, k, hw))
    short = (_conv(f"{name}_short", c, k, hw, r=1, padding=0, winograd=False),)
    return convs + short if shortcut else convs


# all Winograd convs stride 1; maxpool 3x3/2 before res3a and res4a; res5 stays at 14x14
RESNET18_LIU = Network("resnet18-liu", "ImageNet", (
    _conv("conv1", 3, 64, 224, r=7, padding=3, stride=2, winograd=False, first=True),
    *_block("res2a", 64, 64, 56, True), *_block("res2b", 64, 64, 56, False),
    *_block("res3a", 64, 128, 28, True), *_block("res3b", 128, 128, 28, False),
    *_block("res4a", 128, 256, 14, True), *_block("res4b", 256, 256, 14, False),
    *_block("res5a", 256, 512, 14, True), *_block("res5b", 512, 512, 14, False),
    FCLayer("fc", 512, 1000),
), "Liu et al. 2018, official code xingyul/sparse-winograd-cnn (ResNet-18-var)")

NETWORKS: dict[str, Network] = {n.name: n for n in (VGG_NAGADOMI, CONVPOOL_CNN_C, RESNET18_LIU)}


def get_network(name: str) -> Network:
    """The layer table called ``name``: one of ``NETWORKS`` (``"vgg-nagadomi"``, ...)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; expected one of {sorted(NETWORKS)}")
    return NETWORKS[name]


@dataclass(frozen=True)
class Densities:
    """Densities (fraction nonzero) for the pruned layers; 1.0 means dense.

    Each is one float for every pruned layer (:attr:`Network.pruned`), a sequence in that
    order, or a dict by layer name. ``weight`` and ``activation`` are Winograd-domain
    (``d_w'`` of U, ``d_a'`` of ``ReLU(BT d B)``); the ``spatial_*`` ones are for the
    conventional network pruned in the spatial domain.
    """

    weight: DensitySpec = 1.0
    activation: DensitySpec = 1.0
    spatial_weight: DensitySpec = 1.0
    spatial_activation: DensitySpec = 1.0


# (domain, operand) -> the Densities field a sparse operand of that domain reads
DENSITY_FIELDS = {("winograd", "weight"): "weight", ("winograd", "activation"): "activation",
                  ("spatial", "weight"): "spatial_weight",
                  ("spatial", "activation"): "spatial_activation"}  # fmt: skip


# Liu, Han, Mao, Dally, ICLR 2017 workshop, VGG-nagadomi on CIFAR-10 (m = 2): Winograd-ReLU
# prunable to 40% density, conventional to 60%; overall activation density 41.1% (Winograd
# domain) and 36.9% (spatial). Measured for VGG-nagadomi only; for the other networks they are
# placeholders until a run measures per-layer densities.
WORKSHOP_DENSITIES = Densities(weight=0.40, activation=0.411, spatial_weight=0.60,
                               spatial_activation=0.369)


def _per_layer(spec: DensitySpec, network: Network, what: str) -> dict[str, float]:
    names = network.pruned
    if isinstance(spec, Mapping):
        if set(spec) != set(names):
            raise ValueError(f"{what}: a dict needs exactly the pruned layers of "
                             f"{network.name}, {list(names)}; got {list(spec)}")
        values = [spec[n] for n in names]
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) != len(names):
            raise ValueError(f"{what}: expected {len(names)} densities, one per pruned layer "
                             f"of {network.name} {list(names)}, got {len(spec)}")
        values = list(spec)
    else:
        values = [spec] * len(names)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not 0 <= v <= 1:
            raise ValueError(f"{what} must be a density in [0, 1], got {v!r}")
    return {n: float(v) for n, v in zip(names, values, strict=True)}


@dataclass(frozen=True)
class LayerCount:
    """One layer under one method: its products, the dense direct ones, the densities used."""

    name: str
    multiplies: float
    direct: int
    weight_density: float
    activation_density: float


@dataclass(frozen=True)
class MultiplyCount:
    """Per-layer products of a network under one method, with totals."""

    network: str
    method: Method
    m: int
    layers: tuple[LayerCount, ...]

    @property
    def total(self) -> float:
        return sum(la.multiplies for la in self.layers)

    @property
    def direct_total(self) -> int:
        return sum(la.direct for la in self.layers)

    @property
    def reduction(self) -> float:
        """Dense direct products over this method's products."""
        return self.direct_total / self.total if self.total else float("inf")


def count_multiplies(network: Network | str, method: Method = "winograd", m: int = 2,
                     weight_density: DensitySpec = 1.0,
                     activation_density: DensitySpec = 1.0) -> MultiplyCount:
    """Products per forward pass (one image) under the papers' model.

    Parameters
    ----------
    network : Network or str
        A layer table or its name in ``NETWORKS``.
    method : {"direct", "spatial_pruned", "winograd", "winograd_native", "winograd_relu"}
        Dense direct; direct with spatial weight and input-activation sparsity (Han et al.);
        dense Winograd F(m x m, r x r) (Lavin & Gray); Winograd-domain weight sparsity with
        dense activations (Li et al.); Winograd-domain weight and ReLU sparsity (Liu et al.).
    m : int
        Output tile size of the Winograd methods.
    weight_density, activation_density : float, sequence or dict
        For the pruned layers, as in :class:`Densities`. Spatial densities for
        ``"spatial_pruned"``, Winograd-domain ones for the Winograd methods; the dense methods
        take 1.0 only, ``"winograd_native"`` dense activations only.

    Examples
    --------
    >>> c = count_multiplies("vgg-nagadomi", "winograd_relu", 2, 0.40, 0.411)
    >>> print(f"{c.total:.3g} multiplies, {c.reduction:.1f}x fewer than direct")
    2.26e+07 multiplies, 10.3x fewer than direct
    """
    if isinstance(network, str):
        network = get_network(network)
    if not isinstance(network, Network):
        raise TypeError(f"network must be a Network or one of {sorted(NETWORKS)}, got "
                        f"{type(network).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}")
    m = check_m(m)
    dw = _per_layer(weight_density, network, "weight_density")
    da = _per_layer(activation_density, network, "activation_density")
    row = COUNTS[method]
    dense_w, dense_a = not row.sparse_weights, not row.sparse_activations
    if (dense_w and set(dw.values()) - {1.0}) or (dense_a and set(da.values()) - {1.0}):
        raise ValueError(f"method {method!r} has dense "
                         f"{'weights and activations' if dense_w else 'activations'}: "
                         f"leave its densities at 1.0")
    rows = []
    for la in network.layers:
        n = la.direct_multiplies
        winograd = isinstance(la, ConvLayer) and la.winograd and row.domain == "winograd"
        if winograd:
            n = la.winograd_multiplies(m)
        # pruned layer: dense count x d_w x d_a (weight and activation zeros independent)
        w, a = dw.get(la.name, 1.0), da.get(la.name, 1.0)
        rows.append(LayerCount(la.name, n * w * a, la.direct_multiplies, w, a))
    return MultiplyCount(network.name, method, m, tuple(rows))


def compare_methods(network: Network | str, m: int = 2,
                    densities: Densities = WORKSHOP_DENSITIES) -> dict[Method, MultiplyCount]:
    """All five methods, each with its own densities from ``densities``.

    With the workshop densities, VGG-nagadomi gives 2.3e8 (direct), 1.1e8 (dense Winograd) and
    2.3e7 (Winograd-ReLU, 10.3x; the paper rounds to 2.2x * 4.6x = 10.2x), as published. The
    spatial baseline gives 5.7e7 (4.1x), not the published 5.0e7 (4.6x): a single overall
    activation density cannot weight the layers as the per-layer densities the authors used
    do, and how they treated the first and FC layers is not stated. (The pruned layers 2-8
    alone give 5.0e7, 4.6x fewer than the direct 3x3 layers: perhaps what was reported;
    unverified.)

    >>> c = compare_methods("vgg-nagadomi")
    >>> print(f"{c['spatial_pruned'].total:.2g} {c['winograd'].reduction:.2f}")
    5.7e+07 2.19
    """
    if not isinstance(densities, Densities):
        raise TypeError(f"densities must be a Densities, got {type(densities).__name__}")

    def density(c, operand, sparse):  # the field of a sparse operand, 1.0 for a dense one
        return getattr(densities, DENSITY_FIELDS[c.domain, operand]) if sparse else 1.0

    return {k: count_multiplies(network, k, m, density(c, "weight", c.sparse_weights),
                                density(c, "activation", c.sparse_activations))
            for k, c in COUNTS.items()}


def _countable(a, name: str) -> np.ndarray:
    """``a`` as a real numeric (or bool) array: strings and objects have no zeros to skip."""
    try:
        arr = np.asarray(a)
    except ValueError as exc:  # ragged nested lists
        raise TypeError(f"{name} must be a numeric array, got a ragged {type(a).__name__}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric or bool array (weights, activations or "
                        f"their masks), got dtype {arr.dtype}")
    return arr


def exact_winograd_multiplies(U, V=None, n_tiles: int | None = None) -> int:
    """The products a sparse Winograd kernel does: it skips every zero of U and of V.

    ``sum over (c, s) of #{k : U[k, c, s] != 0} * #{(n, tile) : V[n, c, tile, s] != 0}``
    over input channels ``c`` and the ``alpha x alpha`` positions ``s``. With ``V`` None the
    activations are dense and the count is ``nnz(U) * n_tiles``, ``n_tiles`` counting
    (image, tile) pairs.

    Parameters
    ----------
    U : array, shape (K, C, alpha, alpha)
        Winograd-domain weights (or their mask).
    V : array, shape (N, C, tiles_h, tiles_w, alpha, alpha), optional
        Transformed input tiles, e.g. ``ReLU(BT d B)``.
    n_tiles : int, optional
        Needed when ``V`` is None; if both are given it must equal ``N tiles_h tiles_w``.

    Examples
    --------
    >>> U = np.ones((2, 1, 4, 4)); U[0] = 0
    >>> V = np.ones((1, 1, 3, 3, 4, 4)); V[..., 0, 0] = 0
    >>> exact_winograd_multiplies(U, V), exact_winograd_multiplies(U, n_tiles=9)
    (135, 144)
    """
    U = _countable(U, "U")
    if U.ndim != 4 or U.shape[2] != U.shape[3]:
        raise ValueError(f"U must have shape (K, C, alpha, alpha), got {U.shape}")
    if n_tiles is not None:
        _positive(n_tiles, "n_tiles")
    if V is None:
        if n_tiles is None:
            raise ValueError("give V (the transformed input tiles) or n_tiles (dense activations)")
        return int(np.count_nonzero(U)) * int(n_tiles)
    V = _countable(V, "V")
    if V.ndim != 6 or V.shape[1] != U.shape[1] or V.shape[4:] != U.shape[2:]:
        raise ValueError(f"V must have shape (N, C, tiles_h, tiles_w, alpha, alpha) = "
                         f"(N, {U.shape[1]}, th, tw, {U.shape[2]}, {U.shape[3]}), got {V.shape}")
    if n_tiles is not None and n_tiles != V.shape[0] * V.shape[2] * V.shape[3]:
        raise ValueError(f"n_tiles = {n_tiles} disagrees with V's {V.shape[0]} images x "
                         f"{V.shape[2]}x{V.shape[3]} tiles")
    # (C, alpha, alpha): output channels with a nonzero weight, tiles with a nonzero input
    k_nonzero = np.count_nonzero(U, axis=0).astype(np.int64)
    tiles_nonzero = np.count_nonzero(V, axis=(0, 2, 3)).astype(np.int64)
    return int((k_nonzero * tiles_nonzero).sum())
