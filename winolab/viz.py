"""Pure plotting functions for the book's figures and widgets.

Each ``plot_*`` function takes the frozen dataclass that a ``winolab.explore.compute_*`` function
returns and draws it, without computing anything itself. It returns a
:class:`matplotlib.figure.Figure` built with the object-oriented API (no pyplot state, so no
figure is ever left open), or draws into the ``ax`` it is given, so that a chapter can put a few
settings side by side. :func:`png` renders a figure for glue and for the widgets.

Needs matplotlib: ``pip install winolab[widgets]``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_accuracy",
    "plot_conv_cost",
    "plot_counts",
    "plot_fill_in",
    "plot_importance",
    "plot_matrices",
    "plot_pruning",
    "plot_relu_density",
    "plot_tiling",
    "png",
]

_DIRECT, _WINO, _HIGHLIGHT = "#4c72b0", "#dd8452", "#c44e52"


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "winolab.viz needs matplotlib: pip install winolab[widgets]"
        ) from exc
    return Figure


def _axes(ax, ncols: int = 1, figsize=(5.0, 3.4)):
    """``ax`` as given (a list of ``ncols`` axes), or the axes of a new constrained figure."""
    if ax is not None:
        axes = list(np.atleast_1d(ax))
        if len(axes) != ncols:
            raise ValueError(f"expected {ncols} axes, got {len(axes)}")
        return axes[0].figure, axes
    fig = _figure_class()(figsize=figsize, layout="constrained")
    return fig, list(np.atleast_1d(fig.subplots(1, ncols)))


def png(fig: Figure, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes (for ``glue`` and the widgets' output).

    >>> from winolab import explore
    >>> png(plot_conv_cost(explore.compute_conv_cost()))[:4]
    b'\\x89PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _heatmap(ax: Axes, a: np.ndarray, title: str, labels=None, cmap="RdBu_r", vmax=None):
    if vmax is None:
        vmax = float(np.abs(a).max()) or 1.0
    ax.imshow(a, cmap=cmap, vmin=-vmax if cmap == "RdBu_r" else 0, vmax=vmax)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if labels is not None and a.size <= 100:
        for (i, j), text in np.ndenumerate(np.asarray(labels, dtype=object)):
            # viridis is dark at the bottom, the diverging and blue maps at the top
            dark = a[i, j] < 0.45 * vmax if cmap == "viridis" else abs(a[i, j]) > 0.6 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")


def plot_conv_cost(cost, ax=None) -> Figure:
    """Multiplies per output: direct ``r^2`` against Winograd's ``alpha^2 / m^2`` over m.

    ``cost`` is a :class:`winolab.explore.ConvCost`; the chosen ``m`` is marked.
    """
    fig, (ax,) = _axes(ax)
    ax.axhline(cost.r**2, color=_DIRECT, label=f"direct: r² = {cost.r**2}")
    ax.plot(cost.ms, cost.per_output_ideal, "o-", color=_WINO, label="Winograd: (α/m)²")
    ax.plot(cost.ms, cost.per_output_layer, "s--", color="gray", ms=4,
            label=f"Winograd on {cost.H}×{cost.W} (edge tiles)")
    ax.plot([cost.m], [cost.winograd / (cost.H * cost.W * cost.C * cost.K)], "o", ms=12,
            mfc="none", mec=_HIGHLIGHT, mew=2)
    ax.set_xlabel("output tile size m")
    ax.set_ylabel("multiplies per output per (c, k)")
    ax.set_ylim(0, max(cost.r**2, float(np.max(cost.per_output_layer))) * 1.1)
    ax.set_title(f"F({cost.m}×{cost.m}, {cost.r}×{cost.r}): {cost.ratio:.2f}× fewer", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_matrices(derivation, ax=None) -> Figure:
    """Heatmaps of ``AT``, ``G`` and ``BT`` with their exact entries written in.

    ``derivation`` is a :class:`winolab.explore.Derivation`; ``ax`` is three axes or ``None``.
    """
    d = derivation
    fig, axes = _axes(ax, 3, figsize=(8.0, 3.0))
    vmax = max(float(np.abs(M).max()) for M in (d.AT, d.G, d.BT))
    for a, name, M, lab in zip(axes, ("AT", "G", "BT"), (d.AT, d.G, d.BT),
                               (d.AT_text, d.G_text, d.BT_text), strict=True):
        _heatmap(a, M, f"{name} {M.shape[0]}×{M.shape[1]}", lab, vmax=vmax)
    ok = "verified" if d.verified else "NOT verified"
    axes[1].set_xlabel(f"F({d.m}, {d.r}), points {', '.join(d.points)}, ∞ ({ok})", fontsize=9)
    return fig


def plot_tiling(tiling, ax=None) -> Figure:
    """How many ``alpha x alpha`` tiles read each input pixel, with two tiles outlined."""
    from matplotlib.patches import Rectangle

    t = tiling
    fig, (ax,) = _axes(ax, figsize=(4.2, 4.0))
    vmax = max(4, int(t.coverage.max()))
    ax.imshow(t.coverage, cmap="Blues", vmin=0, vmax=vmax)
    for (i, j), c in np.ndenumerate(t.coverage):
        if t.coverage.size <= 400:
            ax.text(j, i, str(c), ha="center", va="center", fontsize=6,
                    color="white" if c > 0.6 * vmax else "black")
    # the padded input (zeros outside the image) and the zero extension beyond it
    hp, wp = t.H + 2 * t.padding, t.W + 2 * t.padding
    ax.add_patch(Rectangle((t.padding - 0.5, t.padding - 0.5), t.W, t.H, fill=False,
                           ec="black", lw=2))
    ax.add_patch(Rectangle((-0.5, -0.5), wp, hp, fill=False, ec="black", lw=1, ls="--"))
    for (ti, tj), color in (((0, 0), _HIGHLIGHT), ((0, 1), _WINO)):
        if ti < t.tiles_h and tj < t.tiles_w:
            ax.add_patch(Rectangle((tj * t.m - 0.5, ti * t.m - 0.5), t.alpha, t.alpha,
                                   fill=False, ec=color, lw=2.5))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"F({t.m}×{t.m}, {t.r}×{t.r}): {t.tiles_h}×{t.tiles_w} tiles of {t.alpha}×{t.alpha}\n"
        f"{t.redundancy:.2f} reads per pixel", fontsize=9,
    )
    return fig


def plot_accuracy(accuracy, ax=None) -> Figure:
    """Float32 error relative to float32 direct convolution, over m, per point set (log y)."""
    a = accuracy
    fig, (ax,) = _axes(ax)
    for name, ms, ratios in a.curves:
        ax.semilogy(ms, ratios, "o-", label=name)
    ax.axhline(1.0, color=_DIRECT, lw=1, label="direct float32")
    ax.semilogy([a.m], [a.ratio], "o", ms=13, mfc="none", mec=_HIGHLIGHT, mew=2)
    ax.set_xlabel("output tile size m")
    ax.set_ylabel("error / direct float32 error")
    ax.set_title(f"F({a.m}, 3), {a.points}: {a.ratio:.1f}× direct", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def plot_fill_in(fill, ax=None) -> Figure:
    """Density before and after the transforms, for weights and for activations."""
    f = fill
    fig, (ax,) = _axes(ax)
    labels = ["w", "U = G w Gᵀ", "ReLU(x)", "V = Bᵀ ReLU(x) B", "ReLU(Bᵀ x B)"]
    values = [f.weight_density, f.winograd_weight_density, f.activation_density,
              f.winograd_activation_density, f.winograd_relu_density]
    colors = [_DIRECT, _WINO, _DIRECT, _WINO, _HIGHLIGHT]
    bars = ax.bar(range(5), values, color=colors)
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(5), labels, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("density (fraction nonzero)")
    ax.set_title(f"F({f.m}×{f.m}, 3×3), pruned to density {f.density:.2f}", fontsize=10)
    return fig


def plot_pruning(pruning, ax=None) -> Figure:
    """``U``, the pruned ``U`` and ``G g' GT`` of its best ``r x r`` kernel ``g'``."""
    p = pruning
    fig, axes = _axes(ax, 3, figsize=(8.0, 3.0))
    vmax = float(np.abs(p.U).max()) or 1.0
    _heatmap(axes[0], p.U, f"U = G g Gᵀ, kernel {p.kernel}", vmax=vmax)
    zeros = np.where(p.U_pruned == 0, "0", "")  # mark the pruned entries
    _heatmap(axes[1], p.U_pruned, f"pruned U (layer density {p.density:.2f})", zeros, vmax=vmax)
    _heatmap(axes[2], p.U_projected, f"G g' Gᵀ (rel. residual {p.residual:.2f})", vmax=vmax)
    return fig


def plot_relu_density(relu, ax=None) -> Figure:
    """Density of ``ReLU(BT d B)`` at each of the ``alpha x alpha`` positions."""
    r = relu
    fig, (ax,) = _axes(ax, figsize=(4.0, 3.6))
    labels = [[f"{v:.2f}" for v in row] for row in r.position_density]
    _heatmap(ax, r.position_density, "", labels, cmap="viridis", vmax=1.0)
    ax.set_title(f"F({r.m}×{r.m}, 3×3): density of ReLU(Bᵀ d B) per position\n"
                 f"overall {r.winograd_relu_density:.2f}, spatial ReLU {r.spatial_density:.2f}",
                 fontsize=9)
    return fig


def plot_importance(importance, ax=None) -> Figure:
    """Yu et al.'s importance factors and which Winograd positions a spatial mask zeroes."""
    y = importance
    fig, axes = _axes(ax, 2, figsize=(7.0, 3.4))
    labels = [[f"{v:.1f}" for v in row] for row in y.factors]
    _heatmap(axes[0], y.factors, "importance factors F̂", labels, cmap="viridis")
    labels = [[f"{v:.2f}" for v in row] for row in y.zero_fraction]
    _heatmap(axes[1], y.zero_fraction, f"zero fraction of U (overall {y.winograd_sparsity:.2f})",
             labels, cmap="viridis", vmax=1.0)
    return fig


def plot_counts(counts, ax=None) -> Figure:
    """Multiplies per layer: direct, dense Winograd and sparse Winograd(-ReLU), log scale."""
    c = counts
    fig, (ax,) = _axes(ax, figsize=(6.5, 3.4))
    x = np.arange(len(c.layers))
    for dx, values, label, color in (
        (-0.27, c.direct, "direct", _DIRECT),
        (0.0, c.winograd, f"dense F({c.m}×{c.m}, 3×3)", _WINO),
        (0.27, c.sparse, "sparse Winograd", _HIGHLIGHT),
    ):
        ax.bar(x + dx, values, width=0.27, label=label, color=color)
    ax.set_yscale("log")
    ax.set_xticks(x, c.layers, rotation=45, fontsize=7)
    ax.set_ylabel("multiplies")
    ax.set_title(f"{c.network}: {c.reduction:.1f}× fewer than direct", fontsize=10)
    ax.legend(fontsize=8)
    return fig
