"""The widgets: compute_* against independent oracles, make_*_widget driven headlessly.

Each widget test sets a control's value the way a reader's browser would and checks the
widget's ``.result`` against a number computed another way (published matrices, brute-force
counting, reference convolution).
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from winolab import widgets

ipywidgets = pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")


def controls(w) -> dict:
    """The widget's controls by their description."""
    return {c.description: c for c in w.children if getattr(c, "description", "")}


# --- chapter 1: cost ---------------------------------------------------------------------------

# Lavin & Gray's table: (m, reduction m^2 r^2 / alpha^2) for r = 3
LAVIN_REDUCTIONS = {2: 2.25, 4: 4.0, 6: 324 / 64, 8: 576 / 100}


@pytest.mark.parametrize("m", sorted(LAVIN_REDUCTIONS))
def test_conv_cost_matches_lavin_table_when_tiles_fit(m):
    c = widgets.compute_conv_cost(m=m, r=3, H=48, W=48, C=3, K=5)
    assert c.ratio == pytest.approx(LAVIN_REDUCTIONS[m], rel=1e-12)
    assert c.per_output_ideal[m - 1] == pytest.approx(9 / LAVIN_REDUCTIONS[m], rel=1e-12)


def test_conv_cost_counts_edge_tiles():
    # 13x13 outputs with m = 4 need 4x4 tiles (16x16 outputs): below the nominal 4x
    c = widgets.compute_conv_cost(m=4, r=3, H=13, W=13, C=2, K=3)
    assert c.tiles == 16
    assert c.winograd == 16 * 36 * 2 * 3
    assert c.direct == 13 * 13 * 9 * 2 * 3
    assert c.ratio < 4.0


def test_conv_cost_rejects_bad_sizes():
    with pytest.raises(ValueError, match="m must be a positive int"):
        widgets.compute_conv_cost(m=0)


def test_conv_cost_widget_slider_recomputes():
    w = widgets.make_conv_cost_widget()
    assert w.result.m == 2 and w.result.ratio == pytest.approx(2.25)
    controls(w)["m"].value = 4
    assert w.result.m == 4 and w.result.ratio == pytest.approx(4.0)
    controls(w)["r"].value = 5
    # F(4x4, 5x5): 16 * 25 / 64 = 6.25 (Li et al.'s AlexNet conv2 tile)
    assert w.result.ratio == pytest.approx(6.25)


# --- chapter 2: derivation --------------------------------------------------------------------

F = Fraction
# Lavin & Gray's F(4x4, 3x3) as printed in SkimCaffe / Yu et al.'s code (points 0, +-1, +-2)
F43_BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
F43_G = [[F(1, 4), 0, 0], [F(-1, 6), F(-1, 6), F(-1, 6)], [F(-1, 6), F(1, 6), F(-1, 6)],
         [F(1, 24), F(1, 12), F(1, 6)], [F(1, 24), F(-1, 12), F(1, 6)], [0, 0, 1]]
F43_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


def as_fractions(text):
    return [[F(v) for v in row] for row in text]


def test_derivation_widget_gives_published_f43():
    w = widgets.make_derivation_widget()
    controls(w)["m"].value = 4
    d = w.result
    assert (d.m, d.r, d.verified) == (4, 3, True)
    assert as_fractions(d.BT_text) == F43_BT
    assert as_fractions(d.G_text) == F43_G
    assert as_fractions(d.AT_text) == F43_AT
    np.testing.assert_array_equal(d.BT, np.array(F43_BT, dtype=float))


def test_derivation_float_matrices_compute_a_correlation():
    # the oracle is numpy's own correlation, not winolab
    d = widgets.compute_derivation(m=3, r=4, points="barabasz")
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal(3 + 4 - 1), rng.standard_normal(4)
    y = d.AT @ ((d.G @ g) * (d.BT @ x))
    np.testing.assert_allclose(y, np.correlate(x, g, mode="valid"), rtol=1e-12, atol=1e-12)


def test_derivation_widget_point_menu_and_impossible_combination():
    w = widgets.make_derivation_widget()
    c = controls(w)
    c["points"].value = "barabasz"
    c["m"].value = 4
    assert w.result.points == ("0", "-1", "1", "1/2", "-2")
    c["r"].value = 5
    c["m"].value = 6  # barabasz has 9 points; F(6, 5) needs 9: fine
    assert w.result.points[-1] == "4"
    assert w.result.verified


# --- chapter 4: tiling ------------------------------------------------------------------------


def brute_force_coverage(H, W, m, r, padding):
    hp, wp = H + 2 * padding, W + 2 * padding
    alpha = m + r - 1
    th, tw = -(-(hp - r + 1) // m), -(-(wp - r + 1) // m)
    cov = np.zeros(((th - 1) * m + alpha, (tw - 1) * m + alpha), dtype=int)
    for i in range(th):
        for j in range(tw):
            cov[i * m:i * m + alpha, j * m:j * m + alpha] += 1
    return cov


@pytest.mark.parametrize(("H", "W", "m", "r", "padding"),
                         [(8, 8, 2, 3, 1), (7, 5, 4, 3, 0), (13, 13, 4, 3, 1), (6, 9, 3, 5, 2)])
def test_tiling_matches_brute_force(H, W, m, r, padding):
    t = widgets.compute_tiling(H, W, m, r, padding)
    np.testing.assert_array_equal(t.coverage, brute_force_coverage(H, W, m, r, padding))
    assert (t.region == 0).sum() == H * W


def test_tiling_widget_slider_and_bad_combination():
    w = widgets.make_tiling_widget()
    c = controls(w)
    c["m"].value = 4
    assert (w.result.tiles_h, w.result.alpha) == (2, 6)  # 8x8 output in 4x4 tiles
    np.testing.assert_array_equal(w.result.coverage, brute_force_coverage(8, 8, 4, 3, 1))
    c["padding"].value = 0
    c["H"].value = 3
    c["r"].value = 5  # a 3-row input is smaller than the 5x5 kernel: no result, no stale one
    assert w.result is None


# --- optional dependencies --------------------------------------------------------------------


def test_compute_functions_need_neither_ipywidgets_nor_matplotlib():
    code = (
        "import sys; import winolab.widgets as w; w.compute_conv_cost(); w.compute_tiling();"
        "print(sorted(m for m in ('ipywidgets', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_ipywidgets_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match=r"pip install winolab\[widgets\]"):
        widgets.make_conv_cost_widget()
