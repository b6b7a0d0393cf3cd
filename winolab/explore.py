"""The numbers behind the book's widgets: ``compute_*`` functions returning frozen dataclasses.

Each function takes a widget's settings (numbers and names), computes what the chapter's figure
shows with numpy and sympy only, and returns a small frozen dataclass with read-only arrays.
:mod:`winolab.viz` draws these dataclasses, :mod:`winolab.widgets` wires both to ipywidgets, and
the book's static pages show them precomputed for every setting of the controls.

>>> compute_conv_cost(m=4).ratio
4.0
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from winolab.derive import cook_toom, verify
from winolab.transforms import tile, tile_counts, transforms

__all__ = [
    "Accuracy",
    "ConvCost",
    "Counts",
    "Derivation",
    "FillIn",
    "PruningView",
    "ReluDensity",
    "SpatialWinograd",
    "Tiling",
    "compute_accuracy",
    "compute_conv_cost",
    "compute_counts",
    "compute_derivation",
    "compute_fill_in",
    "compute_pruning",
    "compute_relu_density",
    "compute_spatial_winograd",
    "compute_tiling",
]


def _readonly(a) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------------------------
# Chapter 1: the cost of convolution


@dataclass(frozen=True)
class ConvCost:
    """Multiplies of one ``H x W`` output, ``C -> K`` channel layer: direct against F(m, r).

    ``per_output_ideal[i]`` is ``(alpha / m)^2`` for ``m = ms[i]``; ``per_output_layer[i]``
    also pays for the edge tiles that overhang an ``H x W`` output.
    """

    m: int
    r: int
    H: int
    W: int
    C: int
    K: int
    tiles: int
    direct: int
    winograd: int
    ratio: float
    ms: np.ndarray
    per_output_ideal: np.ndarray
    per_output_layer: np.ndarray


def compute_conv_cost(
    m: int = 2, r: int = 3, H: int = 32, W: int = 32, C: int = 64, K: int = 64, m_max: int = 8
) -> ConvCost:
    """Count the multiplies of direct and Winograd convolution for one layer.

    Direct: ``H W C K r^2``. Winograd F(m x m, r x r): ``alpha^2`` per tile per ``(c, k)``, with
    ``ceil(H/m) ceil(W/m)`` tiles covering the ``H x W`` output.

    >>> c = compute_conv_cost(m=2, r=3, H=32, W=32, C=64, K=64)
    >>> c.direct, c.winograd, c.ratio
    (37748736, 16777216, 2.25)
    """
    for name, v in (("m", m), ("r", r), ("H", H), ("W", W), ("C", C), ("K", K)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    ms = np.arange(1, max(m_max, m) + 1)
    alphas = ms + r - 1

    def tiles(mm: int) -> int:
        th, tw = tile_counts(H, W, int(mm))
        return th * tw

    # direct: r^2 multiplies per output per (c, k); Winograd: alpha^2 per tile per (c, k)
    direct = H * W * C * K * r * r
    winograd = tiles(m) * (m + r - 1) ** 2 * C * K
    layer = np.array([tiles(mm) * a * a / (H * W) for mm, a in zip(ms, alphas, strict=True)])
    return ConvCost(
        m=m,
        r=r,
        H=H,
        W=W,
        C=C,
        K=K,
        tiles=tiles(m),
        direct=direct,
        winograd=winograd,
        ratio=direct / winograd,
        ms=_readonly(ms),
        per_output_ideal=_readonly((alphas / ms) ** 2.0),
        per_output_layer=_readonly(layer),
    )


# ---------------------------------------------------------------------------------------------
# Chapter 2: the derivation


@dataclass(frozen=True)
class Derivation:
    """F(m, r) from :func:`winolab.derive.cook_toom`: float matrices, exact entries as text."""

    m: int
    r: int
    points: tuple[str, ...]
    AT: np.ndarray
    G: np.ndarray
    BT: np.ndarray
    AT_text: tuple[tuple[str, ...], ...]
    G_text: tuple[tuple[str, ...], ...]
    BT_text: tuple[tuple[str, ...], ...]
    verified: bool
    max_abs: float


def compute_derivation(m: int = 2, r: int = 3, points: str = "lavin") -> Derivation:
    """Derive F(m, r) exactly, prove it (:func:`winolab.derive.verify`), and tabulate it.

    >>> d = compute_derivation(4, 3)
    >>> d.verified, d.BT_text[0], d.max_abs
    (True, ('4', '0', '-5', '0', '1', '0'), 8.0)
    """
    ct = cook_toom(m, r, points)
    t = transforms(m, r, points)

    def text(M) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(str(v) for v in row) for row in M.tolist())

    return Derivation(
        m=m,
        r=r,
        points=t.points,
        AT=t.AT,
        G=t.G,
        BT=t.BT,
        AT_text=text(ct.AT),
        G_text=text(ct.G),
        BT_text=text(ct.BT),
        verified=verify(ct),
        max_abs=float(max(np.abs(M).max() for M in (t.AT, t.G, t.BT))),
    )


# ---------------------------------------------------------------------------------------------
# Chapter 4: tiles


@dataclass(frozen=True)
class Tiling:
    """How F(m x m, r x r) cuts a padded ``H x W`` input into overlapping tiles.

    ``coverage[i, j]`` counts the tiles that read pixel ``(i, j)`` of the padded, zero-extended
    input; ``region`` is 0 inside the image, 1 in the padding, 2 in the zero extension that
    makes the last tiles whole.
    """

    H: int
    W: int
    m: int
    r: int
    padding: int
    alpha: int
    tiles_h: int
    tiles_w: int
    coverage: np.ndarray
    region: np.ndarray
    redundancy: float


def compute_tiling(H: int = 8, W: int = 8, m: int = 2, r: int = 3, padding: int = 1) -> Tiling:
    """Count how often each input pixel is read by :func:`winolab.transforms.tile`.

    >>> t = compute_tiling(H=8, W=8, m=2, r=3, padding=1)
    >>> t.tiles_h, t.tiles_w, int(t.coverage.max()), t.redundancy
    (4, 4, 4, 2.56)
    """
    alpha = m + r - 1
    hp, wp = H + 2 * padding, W + 2 * padding
    if hp < r or wp < r:
        raise ValueError(f"a {H}x{W} input with padding {padding} is smaller than r = {r}")
    th, tw = tile_counts(hp - r + 1, wp - r + 1, m)
    need_h, need_w = (th - 1) * m + alpha, (tw - 1) * m + alpha
    # label every pixel of the zero-extended input 1, 2, ...; tile() then shows who reads what
    labels = np.arange(1, need_h * need_w + 1, dtype=np.float64).reshape(1, 1, need_h, need_w)
    d = tile(labels, m, r)  # (1, 1, tiles_h, tiles_w, alpha, alpha)
    counts = np.bincount(d.astype(np.int64).ravel(), minlength=need_h * need_w + 1)[1:]
    region = np.full((need_h, need_w), 2)
    region[:hp, :wp] = 1
    region[padding : padding + H, padding : padding + W] = 0
    return Tiling(
        H=H,
        W=W,
        m=m,
        r=r,
        padding=padding,
        alpha=alpha,
        tiles_h=th,
        tiles_w=tw,
        coverage=_readonly(counts.reshape(need_h, need_w)),
        region=_readonly(region),
        redundancy=th * tw * alpha * alpha / (hp * wp),
    )


# ---------------------------------------------------------------------------------------------
# Chapter 3: accuracy


@dataclass(frozen=True)
class Accuracy:
    """Float32 error of F(m x m, 3 x 3) relative to a float32 direct convolution.

    ``ratio`` is :attr:`winolab.accuracy.ErrorMeasurement.ratio` for the chosen ``m`` and point
    set; ``curves`` holds ``(point set, ms, ratios)`` for every point set, for context.
    """

    m: int
    points: str
    winograd: float
    direct: float
    ratio: float
    curves: tuple


def compute_accuracy(
    m: int = 4, points: str = "lavin", channels: int = 16, tiles: int = 200, seed: int = 0
) -> Accuracy:
    """Measure the float32 error with :func:`winolab.accuracy.measure_fp32_error`.

    >>> a = compute_accuracy(4, "onednn")
    >>> a.points, bool(a.ratio < compute_accuracy(4, "lavin").ratio)
    ('onednn', True)
    """
    from winolab.accuracy import measure_fp32_error

    e = measure_fp32_error(m, 3, points, channels, tiles, seed)
    return Accuracy(
        m=m,
        points=points,
        winograd=e.winograd,
        direct=e.direct,
        ratio=e.ratio,
        curves=_accuracy_curves(channels, tiles, seed),
    )


@lru_cache(maxsize=8)
def _accuracy_curves(channels: int, tiles: int, seed: int) -> tuple:
    from winolab.accuracy import measure_fp32_error

    def ratio(mm: int, pts: str) -> float:
        return measure_fp32_error(mm, 3, pts, channels, tiles, seed).ratio

    curves = [(name, range(2, 9)) for name in ("lavin", "barabasz")] + [("onednn", [4])]
    return tuple(
        (name, _readonly(list(ms)), _readonly([ratio(mm, name) for mm in ms]))
        for name, ms in curves
    )


# ---------------------------------------------------------------------------------------------
# Chapters 5 and 7: fill-in and the Winograd-domain ReLU


def _random_layer(seed: int, channels: int, size: int):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((channels, channels, 3, 3))
    x = rng.standard_normal((1, channels, size, size))
    return w, x


@dataclass(frozen=True)
class FillIn:
    """Densities of pruned weights and ReLU'd activations before and after the transforms."""

    m: int
    density: float
    weight_density: float
    winograd_weight_density: float
    activation_density: float
    winograd_activation_density: float
    winograd_relu_density: float


def compute_fill_in(
    density: float = 0.1, m: int = 2, seed: int = 0, channels: int = 8, size: int = 16
) -> FillIn:
    """Prune random 3x3 kernels to ``density``, transform, and measure what fills in.

    Weights: :func:`winolab.sparsity.prune_magnitude`, then
    :func:`winolab.fill_in.filter_fill_in`. Activations: N(0, 1) pre-activations, the density
    of ``ReLU(x)``, of ``BT ReLU(x) B`` and of ``ReLU(BT x B)``
    (:func:`winolab.fill_in.activation_density`).

    >>> f = compute_fill_in(0.1, m=2)
    >>> round(f.weight_density, 3), round(f.winograd_weight_density, 2)
    (0.099, 0.33)
    """
    from winolab import fill_in, sparsity

    w, x = _random_layer(seed, channels, size)
    pruned = sparsity.prune_magnitude(w, density).values
    return FillIn(
        m=m,
        density=density,
        weight_density=fill_in.density(pruned),
        winograd_weight_density=fill_in.filter_fill_in(pruned, m),
        activation_density=fill_in.density(np.maximum(x, 0.0)),
        winograd_activation_density=fill_in.activation_density(x, 3, m, relu="spatial"),
        winograd_relu_density=fill_in.activation_density(x, 3, m, relu="winograd"),
    )


@dataclass(frozen=True)
class ReluDensity:
    """How much of ``ReLU(BT d B)`` is nonzero, overall and per Winograd position."""

    m: int
    shift: float
    spatial_density: float
    winograd_density: float
    winograd_relu_density: float
    position_density: np.ndarray


def compute_relu_density(
    m: int = 2, shift: float = 0.0, seed: int = 0, channels: int = 8, size: int = 16
) -> ReluDensity:
    """Pre-activations ``x ~ N(shift, 1)``: densities with the ReLU before or after ``BT d B``.

    >>> r = compute_relu_density(2)
    >>> r.position_density.shape, round(r.winograd_relu_density, 2)
    ((4, 4), 0.5)
    """
    from winolab import fill_in
    from winolab.reference import input_transform

    _, x = _random_layer(seed, channels, size)
    x = x + shift
    V = input_transform(x, r=3, m=m, padding=1)  # (N, C, tiles_h, tiles_w, alpha, alpha)
    return ReluDensity(
        m=m,
        shift=shift,
        spatial_density=fill_in.density(np.maximum(x, 0.0)),
        winograd_density=fill_in.activation_density(x, 3, m, relu="spatial"),
        winograd_relu_density=fill_in.activation_density(x, 3, m, relu="winograd"),
        position_density=_readonly((V > 0).mean(axis=(0, 1, 2, 3))),
    )


# ---------------------------------------------------------------------------------------------
# Chapters 6 and 8: pruning in the Winograd domain, spatial-Winograd pruning


@dataclass(frozen=True)
class PruningView:
    """One layer pruned in the Winograd domain, and its best spatial approximation.

    ``U``, ``U_pruned`` and ``U_projected`` show one kernel, ``kernel = (k, c)``, the one whose
    kept fraction is closest to the layer's density; ``residual`` is its
    ``||U_pruned - G g' GT|| / ||U_pruned||``, ``layer_residual`` the mean over the layer,
    ``output_error`` the relative difference between the pruned Winograd layer and the spatial
    convolution with ``g'``.
    """

    m: int
    density: float
    method: str
    kernel: tuple[int, int]
    U: np.ndarray
    U_pruned: np.ndarray
    U_projected: np.ndarray
    residual: float
    layer_residual: float
    output_error: float


def compute_pruning(
    density: float = 0.5, m: int = 2, method: str = "magnitude", seed: int = 0, channels: int = 4
) -> PruningView:
    """Prune ``U = G g GT`` (Liu: ``"magnitude"``; Yu: ``"importance"``), project it back.

    >>> p = compute_pruning(1.0)
    >>> bool(p.layer_residual < 1e-12), bool(p.output_error < 1e-12)
    (True, True)
    """
    from winolab import reference, sparsity
    from winolab.testing import relative_error

    if method not in ("magnitude", "importance"):
        raise ValueError(f"method must be 'magnitude' or 'importance', got {method!r}")
    w, x = _random_layer(seed, channels, 8)
    U = reference.filter_transform(w, m)
    if method == "magnitude":
        pruned = sparsity.prune_magnitude(U, density).values
    else:
        pruned = sparsity.prune_importance(U, density, m).values
    proj = sparsity.project_to_spatial(pruned, m)
    y_wino = reference.winograd_domain_conv2d(x, pruned, padding=1, m=m)
    y_spatial = reference.direct_conv2d(x, proj.w, padding=1)
    # show a typical kernel: kept fraction closest to the layer's density
    kept = (pruned != 0).mean(axis=(2, 3))
    k, c = np.unravel_index(np.argmin(np.abs(kept - density)), kept.shape)
    return PruningView(
        m=m,
        density=density,
        method=method,
        kernel=(int(k), int(c)),
        U=_readonly(U[k, c]),
        U_pruned=_readonly(pruned[k, c]),
        U_projected=_readonly(reference.filter_transform(proj.w[k : k + 1, c : c + 1], m)[0, 0]),
        residual=float(proj.residual[k, c]),
        layer_residual=float(proj.residual.mean()),
        output_error=relative_error(y_spatial, y_wino) if np.any(y_wino) else 0.0,
    )


@dataclass(frozen=True)
class SpatialWinograd:
    """Yu et al.'s structured spatial mask and importance factors for F(m x m, 3 x 3).

    ``zero_fraction[a, b]`` is the fraction of kernels whose ``U[a, b]`` the mask makes exactly
    zero; ``winograd_sparsity`` is the overall fraction of zeros of ``U``.
    """

    m: int
    target_density: float
    spatial_density: float
    winograd_density: float
    winograd_sparsity: float
    factors: np.ndarray
    zero_fraction: np.ndarray


def compute_spatial_winograd(
    target_density: float = 0.5, m: int = 4, seed: int = 0, channels: int = 8
) -> SpatialWinograd:
    """Mask random kernels with :func:`winolab.sparsity.structured_spatial_mask`.

    >>> y = compute_spatial_winograd(0.5, m=4)
    >>> bool(y.winograd_density <= 0.5), round(float(y.factors.max()), 1)
    (True, 20.2)
    """
    from winolab import fill_in, reference, sparsity

    w, _ = _random_layer(seed, channels, 4)
    mask = sparsity.structured_spatial_mask(w, target_density, m)
    U = reference.filter_transform(w * mask, m)
    wd = fill_in.filter_fill_in(w * mask, m, rule="structural")
    return SpatialWinograd(
        m=m,
        target_density=target_density,
        spatial_density=fill_in.density(mask),
        winograd_density=wd,
        winograd_sparsity=1.0 - wd,
        factors=_readonly(sparsity.importance_factors(m, 3)),
        zero_fraction=_readonly((U == 0).mean(axis=(0, 1))),
    )


# ---------------------------------------------------------------------------------------------
# Chapter 9: counting the savings


@dataclass(frozen=True)
class Counts:
    """Per-layer multiplies of a network: direct, dense Winograd, sparse Winograd-ReLU."""

    network: str
    m: int
    weight_density: float
    activation_density: float
    layers: tuple[str, ...]
    direct: np.ndarray
    winograd: np.ndarray
    sparse: np.ndarray
    dense_reduction: float
    reduction: float


def compute_counts(
    network: str = "vgg-nagadomi",
    weight_density: float = 0.4,
    activation_density: float = 0.411,
    m: int = 2,
) -> Counts:
    """Multiplies under the papers' model (:func:`winolab.counting.count_multiplies`).

    >>> c = compute_counts()
    >>> round(c.dense_reduction, 2), round(c.reduction, 1)
    (2.19, 10.3)
    """
    from winolab import counting

    def per_layer(method, *densities):
        return counting.count_multiplies(network, method, m, *densities)

    direct, wino = per_layer("direct"), per_layer("winograd")
    sparse = per_layer("winograd_relu", weight_density, activation_density)
    return Counts(
        network=network,
        m=m,
        weight_density=weight_density,
        activation_density=activation_density,
        layers=tuple(la.name for la in direct.layers),
        direct=_readonly([la.multiplies for la in direct.layers]),
        winograd=_readonly([la.multiplies for la in wino.layers]),
        sparse=_readonly([la.multiplies for la in sparse.layers]),
        dense_reduction=wino.reduction,
        reduction=sparse.reduction,
    )
