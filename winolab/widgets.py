"""The book's widgets, in three layers: ``compute_*``, ``viz.plot_*``, ``make_*_widget``.

* ``compute_*`` functions are pure: numbers in, a small frozen dataclass out. They need numpy
  and sympy only, so they import and test without ipywidgets or matplotlib.
* :mod:`winolab.viz` draws a dataclass (matplotlib).
* ``make_*_widget()`` wires the two with :class:`ipywidgets.interactive` and returns it (it never
  displays it). Each change of a control recomputes; the widget's ``.result`` is the dataclass,
  and its output area shows the figure as a PNG. Needs ``pip install winolab[widgets]``.

>>> compute_conv_cost(m=4).ratio
4.0
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from winolab.derive import cook_toom, verify
from winolab.transforms import tile, tile_counts, transforms

__all__ = [
    "ConvCost",
    "Derivation",
    "Tiling",
    "compute_conv_cost",
    "compute_derivation",
    "compute_tiling",
    "make_conv_cost_widget",
    "make_derivation_widget",
    "make_tiling_widget",
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
        m=m, r=r, H=H, W=W, C=C, K=K, tiles=tiles(m), direct=direct, winograd=winograd,
        ratio=direct / winograd, ms=_readonly(ms),
        per_output_ideal=_readonly((alphas / ms) ** 2.0), per_output_layer=_readonly(layer),
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
        m=m, r=r, points=t.points, AT=t.AT, G=t.G, BT=t.BT,
        AT_text=text(ct.AT), G_text=text(ct.G), BT_text=text(ct.BT),
        verified=verify(ct), max_abs=float(max(np.abs(M).max() for M in (t.AT, t.G, t.BT))),
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
    region[padding:padding + H, padding:padding + W] = 0
    return Tiling(
        H=H, W=W, m=m, r=r, padding=padding, alpha=alpha, tiles_h=th, tiles_w=tw,
        coverage=_readonly(counts.reshape(need_h, need_w)), region=_readonly(region),
        redundancy=th * tw * alpha * alpha / (hp * wp),
    )


# ---------------------------------------------------------------------------------------------
# Wiring: compute_* + viz.plot_* -> ipywidgets.interactive


def _ipywidgets():
    try:
        return importlib.import_module("ipywidgets")
    except ImportError as exc:
        raise ImportError("winolab.widgets needs ipywidgets: pip install winolab[widgets]") from exc


def _wire(compute, plot, **controls):
    """``interactive`` calling ``compute(**values)``, showing ``plot(result)`` as a PNG."""
    ipywidgets = _ipywidgets()
    from IPython.display import Image, display

    from winolab import viz

    def update(**values):
        try:
            result = compute(**values)
        except ValueError as exc:  # a combination the maths does not allow: say so, no result
            display(f"not possible: {exc}")
            return None
        display(Image(data=viz.png(plot(result))))
        return result

    return ipywidgets.interactive(update, **controls)


def _int_slider(value: int, lo: int, hi: int, description: str):
    return _ipywidgets().IntSlider(value=value, min=lo, max=hi, description=description,
                                   continuous_update=False)


def make_conv_cost_widget():
    """Sliders for m and r over :func:`compute_conv_cost` (a 32x32, 64 -> 64 layer)."""
    from winolab import viz

    return _wire(compute_conv_cost, viz.plot_conv_cost,
                 m=_int_slider(2, 1, 8, "m"), r=_int_slider(3, 1, 7, "r"))


def make_derivation_widget():
    """Sliders for m and r and a point-set menu over :func:`compute_derivation`."""
    from winolab import viz

    menu = _ipywidgets().Dropdown(options=["lavin", "barabasz"], value="lavin",
                                  description="points")
    return _wire(compute_derivation, viz.plot_matrices,
                 m=_int_slider(2, 1, 6, "m"), r=_int_slider(3, 2, 5, "r"), points=menu)


def make_tiling_widget():
    """Sliders for m, r, the image size and the padding over :func:`compute_tiling`."""
    from winolab import viz

    return _wire(compute_tiling, viz.plot_tiling,
                 H=_int_slider(8, 3, 16, "H"), W=_int_slider(8, 3, 16, "W"),
                 m=_int_slider(2, 1, 6, "m"), r=_int_slider(3, 1, 5, "r"),
                 padding=_int_slider(1, 0, 2, "padding"))
