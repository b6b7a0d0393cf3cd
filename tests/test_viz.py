"""The plots draw exactly the numbers the compute_* functions return."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from winolab import viz, widgets  # noqa: E402


def images(fig):
    return [im.get_array() for ax in fig.axes for im in ax.images]


def test_png_is_a_png():
    fig = viz.plot_conv_cost(widgets.compute_conv_cost())
    assert viz.png(fig).startswith(b"\x89PNG\r\n\x1a\n")


def test_plot_conv_cost_draws_the_curves():
    c = widgets.compute_conv_cost(m=4, r=3, H=13, W=13)
    fig = viz.plot_conv_cost(c)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    ydata = [np.asarray(line.get_ydata()) for line in ax.lines]
    assert any(np.array_equal(y, c.per_output_ideal) for y in ydata)
    assert any(np.array_equal(y, c.per_output_layer) for y in ydata)
    assert f"{c.ratio:.2f}" in ax.get_title()


def test_plot_matrices_shows_the_three_matrices():
    d = widgets.compute_derivation(4, 3, "barabasz")
    fig = viz.plot_matrices(d)
    for shown, M in zip(images(fig), (d.AT, d.G, d.BT), strict=True):
        np.testing.assert_array_equal(shown, M)
    texts = {t.get_text() for t in fig.axes[1].texts}
    assert set(np.ravel(d.G_text)) <= texts


def test_plots_draw_into_given_axes():
    fig = Figure()
    axes = fig.subplots(2, 3)
    for row, m in zip(axes, (2, 4), strict=True):
        out = viz.plot_matrices(widgets.compute_derivation(m, 3), ax=row)
        assert out is fig
    assert len(images(fig)) == 6
    with pytest.raises(ValueError, match="expected 3 axes"):
        viz.plot_matrices(widgets.compute_derivation(2, 3), ax=axes[0, :2])


def test_plot_tiling_shows_the_coverage():
    t = widgets.compute_tiling(7, 9, 2, 3, 1)
    fig = viz.plot_tiling(t)
    (shown,) = images(fig)
    np.testing.assert_array_equal(shown, t.coverage)
    assert f"{t.tiles_h}×{t.tiles_w} tiles" in fig.axes[0].get_title()


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install winolab\[widgets\]"):
        viz.plot_conv_cost(widgets.compute_conv_cost())


def test_plot_accuracy_draws_every_point_set():
    a = widgets.compute_accuracy(4, "barabasz", channels=4, tiles=20)
    fig = viz.plot_accuracy(a)
    (ax,) = fig.axes
    ydata = [np.asarray(line.get_ydata()) for line in ax.lines]
    for _, _, ratios in a.curves:
        assert any(np.array_equal(y, ratios) for y in ydata)
    assert f"{a.ratio:.1f}" in ax.get_title()


def test_plot_fill_in_bars_are_the_densities():
    f = widgets.compute_fill_in(0.2, m=4)
    (ax,) = viz.plot_fill_in(f).axes
    heights = [p.get_height() for p in ax.patches]
    assert heights == [f.weight_density, f.winograd_weight_density, f.activation_density,
                       f.winograd_activation_density, f.winograd_relu_density]


def test_plot_pruning_relu_importance_counts_show_their_arrays():
    p = widgets.compute_pruning(0.4, m=2)
    for shown, want in zip(images(viz.plot_pruning(p)), (p.U, p.U_pruned, p.U_projected),
                           strict=True):
        np.testing.assert_array_equal(shown, want)
    r = widgets.compute_relu_density(4)
    np.testing.assert_array_equal(images(viz.plot_relu_density(r))[0], r.position_density)
    y = widgets.compute_spatial_winograd(0.5, m=4)
    shown = images(viz.plot_importance(y))
    np.testing.assert_array_equal(shown[0], y.factors)
    np.testing.assert_array_equal(shown[1], y.zero_fraction)
    c = widgets.compute_counts()
    (ax,) = viz.plot_counts(c).axes
    heights = np.array([p.get_height() for p in ax.patches]).reshape(3, -1)
    np.testing.assert_array_equal(heights, np.stack([c.direct, c.winograd, c.sparse]))
