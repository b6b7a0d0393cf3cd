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
