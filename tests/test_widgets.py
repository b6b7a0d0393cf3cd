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


# --- chapter 3: accuracy ----------------------------------------------------------------------


def test_accuracy_widget_orders_point_sets_as_published():
    # Barabasz et al. / oneDNN: for F(4, 3) oneDNN's points < Barabasz's < Lavin's in error
    w = widgets.make_accuracy_widget()
    c = controls(w)
    ratios = {}
    for pts in ("lavin", "barabasz", "onednn"):
        c["points"].value = pts
        assert w.result.points == pts and w.result.m == 4
        ratios[pts] = w.result.ratio
    assert ratios["onednn"] < ratios["barabasz"] < ratios["lavin"]
    c["m"].value = 2  # oneDNN's set fits F(4, 3) only: the widget says so, no stale result
    assert w.result is None
    c["points"].value = "barabasz"
    # published F(2, 3) ratio 1.65 (Barabasz et al.), F(8, 3) 159: the ordering must hold
    assert w.result.ratio < 2.5
    c["m"].value = 8
    assert w.result.ratio > 50


# --- chapter 5: fill-in -----------------------------------------------------------------------


def brute_force_fill_in(density, m, channels):
    """Prune the widget's seeded kernels by hand, transform, count clear nonzeros."""
    from winolab.reference import filter_transform

    w = np.random.default_rng(0).standard_normal((channels, channels, 3, 3))
    keep = np.argsort(-np.abs(w), axis=None, kind="stable")[: int(w.size * density)]
    pruned = np.zeros(w.size)
    pruned[keep] = w.ravel()[keep]
    U = filter_transform(pruned.reshape(w.shape), m)
    return float((np.abs(U) > 1e-12 * np.abs(w).max()).mean())


@pytest.mark.parametrize(("m", "published"), [(2, 0.32), (4, 0.40), (6, 0.45)])
def test_fill_in_matches_anchor_densities(m, published):
    # anchors §6.9: 90% spatial zeros -> Winograd density 0.32 / 0.40 / 0.45 (+-0.02)
    f = widgets.compute_fill_in(0.1, m=m, channels=16)
    assert f.winograd_weight_density == pytest.approx(published, abs=0.03)
    assert f.winograd_weight_density == pytest.approx(brute_force_fill_in(0.1, m, 16))


def test_fill_in_widget_sliders():
    w = widgets.make_fill_in_widget()
    c = controls(w)
    c["density"].value = 0.5
    assert w.result.weight_density == pytest.approx(0.5, abs=0.01)
    assert w.result.winograd_weight_density == pytest.approx(brute_force_fill_in(0.5, 2, 8))
    assert w.result.winograd_weight_density > 0.8  # half the taps: U is mostly dense
    c["m"].value = 4
    assert w.result.m == 4
    # spatial ReLU then BT d B fills in (anchors: 0.94 / 1.00); ReLU(BT d B) stays near 0.5
    assert w.result.winograd_activation_density > 0.85
    assert w.result.winograd_relu_density == pytest.approx(0.5, abs=0.05)


# --- chapter 6: pruning in the Winograd domain --------------------------------------------------


def test_pruning_widget_density_and_projection():
    from winolab.reference import filter_transform

    w = widgets.make_pruning_widget()
    c = controls(w)
    c["density"].value = 1.0
    assert w.result.layer_residual < 1e-12 and w.result.output_error < 1e-12
    c["density"].value = 0.3
    p = w.result
    assert p.layer_residual > 0.1 and p.output_error > 0.01
    # the layer, recomputed: U = G g GT of the same seeded kernels, top 30% by magnitude
    rng = np.random.default_rng(0)
    U = filter_transform(rng.standard_normal((4, 4, 3, 3)), 2)
    threshold = np.sort(np.abs(U), axis=None)[::-1][int(U.size * 0.3) - 1]
    k, ch = p.kernel
    np.testing.assert_array_equal(p.U, U[k, ch])
    np.testing.assert_array_equal(p.U_pruned, np.where(np.abs(U[k, ch]) >= threshold, U[k, ch], 0))
    # G g' GT is the orthogonal projection: the rest is orthogonal to every G e_uv GT
    basis = filter_transform(np.eye(9).reshape(9, 1, 3, 3), 2)[:, 0]
    rest = p.U_pruned - p.U_projected
    assert np.abs(np.einsum("ab,tab->t", rest, basis)).max() < 1e-12
    assert p.residual == pytest.approx(np.linalg.norm(rest) / np.linalg.norm(p.U_pruned))
    c["method"].value = "importance"
    assert w.result.method == "importance"
    c["method"].value = "magnitude"
    c["m"].value = 4
    assert w.result.U.shape == (6, 6)


# --- chapter 7: ReLU in the Winograd domain ---------------------------------------------------


def test_relu_widget_matches_brute_force():
    from winolab.transforms import transforms

    w = widgets.make_relu_widget()
    c = controls(w)
    c["shift"].value = 0.5
    r = w.result
    assert r.shift == 0.5
    # brute force: every 4x4 tile of the padded input, V = BT d B, count V > 0 per position
    rng = np.random.default_rng(0)
    rng.standard_normal((8, 8, 3, 3))  # the layer's kernels come first from the seed
    x = rng.standard_normal((8, 16, 16)) + 0.5
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    BT = transforms(2, 3).BT
    pos = np.zeros((4, 4))
    n = 0
    for ch in range(8):
        for i in range(0, 16, 2):
            for j in range(0, 16, 2):
                pos += (BT @ xp[ch, i:i + 4, j:j + 4] @ BT.T) > 0
                n += 1
    np.testing.assert_allclose(r.position_density, pos / n)
    assert r.spatial_density == pytest.approx((x > 0).mean())
    c["m"].value = 4
    assert r.position_density.shape == (4, 4) and w.result.position_density.shape == (6, 6)


# --- chapter 8: spatial-Winograd pruning ------------------------------------------------------


def test_spatial_winograd_widget_mask_carries_into_winograd_domain():
    from winolab.reference import filter_transform
    from winolab.sparsity import structured_spatial_mask

    w = widgets.make_spatial_winograd_widget()
    c = controls(w)
    c["target"].value = 0.4
    y = w.result
    assert y.winograd_density <= 0.4 + 1e-12
    # Yu et al.: F_hat in [1, 20.2] for F(4x4, 3x3) (f^2 = 42, 136, 136, 850, 850, 42)
    f = np.sqrt([42, 136, 136, 850, 850, 42])
    np.testing.assert_allclose(y.factors, np.outer(f, f) / 42)
    # the zeros are exact zeros of U = G (g * mask) GT, computed by the float64 oracle
    kernels = np.random.default_rng(0).standard_normal((8, 8, 3, 3))
    U = filter_transform(kernels * structured_spatial_mask(kernels, 0.4, 4), 4)
    np.testing.assert_allclose(y.zero_fraction, (U == 0).mean(axis=(0, 1)))
    assert y.winograd_sparsity == pytest.approx((U == 0).mean())


# --- chapter 9: counting ----------------------------------------------------------------------


def test_counts_widget_reproduces_workshop_numbers():
    # Liu et al. 2017 workshop, VGG-nagadomi: 2.3e8 direct, 1.1e8 dense Winograd, 2.3e7
    # Winograd-ReLU at 40% weight and 41.1% activation density
    w = widgets.make_counts_widget()
    r = w.result
    assert f"{r.direct.sum():.2g}" == "2.3e+08"
    assert f"{r.winograd.sum():.2g}" == "1.1e+08"
    assert f"{r.sparse.sum():.2g}" == "2.3e+07"
    # by hand: conv2 is 32*32 outputs * 64 * 64 * 9 direct, (32/2)^2 tiles * 16 * 64 * 64 wino
    i = r.layers.index("conv2")
    assert r.direct[i] == 32 * 32 * 64 * 64 * 9
    assert r.winograd[i] == 16 * 16 * 16 * 64 * 64
    assert r.sparse[i] == pytest.approx(16 * 16 * 16 * 64 * 64 * 0.4 * 0.411)
    c = controls(w)
    c["weights"].value = 1.0
    c["activations"].value = 1.0
    assert w.result.reduction == pytest.approx(w.result.dense_reduction)
    c["network"].value = "resnet18-liu"
    assert w.result.network == "resnet18-liu" and "res2a_conv1" in w.result.layers


MAKERS = [n for n in widgets.__all__ if n.startswith("make_") and n != "make_widget"]


@pytest.mark.parametrize("maker", MAKERS)
def test_every_widget_is_an_interactive_with_a_dataclass_result(maker):
    import dataclasses

    w = getattr(widgets, maker)()
    assert isinstance(w, ipywidgets.interactive)
    assert dataclasses.is_dataclass(w.result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.result.m = 99


def test_one_widget_per_chapter():
    assert len(MAKERS) == 9


# --- the wiring: one declaration for Jupyter and the static book --------------------------------


def test_compute_layer_lives_in_explore_and_stays_importable_from_widgets():
    from winolab import explore

    for name in explore.__all__:
        assert getattr(widgets, name) is getattr(explore, name)
    assert not [n for n in widgets.__all__ if n.startswith("compute_")]


@pytest.mark.parametrize("name", sorted(widgets.WIDGETS))
def test_widget_controls_are_the_declared_ones(name):
    spec = widgets.WIDGETS[name]
    w = widgets.make_widget(name)
    shown = controls(w)
    assert list(shown) == [c.description for c in spec.controls]
    for c in spec.controls:
        control = shown[c.description]
        assert control.value == c.value
        if c.kind == "menu":
            assert tuple(control.options) == c.values
        else:
            assert (control.min, control.max) == (c.values[0], c.values[-1])
            assert control.step == pytest.approx(c.values[1] - c.values[0])
        # the static book can move every control to at least two values besides its default
        static = c.static or c.values
        assert c.value in static, (name, c.name)
        assert len(set(static)) >= min(3, len(c.values)), (name, c.name)


@pytest.mark.parametrize("name", sorted(widgets.WIDGETS))
def test_widget_offers_the_static_placeholder_beside_the_live_view(name):
    bundle = widgets.make_widget(name)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert f'data-widget="{name}"' in bundle["text/html"]


def test_widget_shows_the_rendered_state_and_prints_its_numbers(capsys):
    from winolab import explore, viz

    result, png, nums = widgets.render(widgets.WIDGETS["conv_cost"], {"m": 4, "r": 3})
    assert result.ratio == explore.compute_conv_cost(m=4, r=3).ratio == 4.0
    assert png == viz.png(viz.plot_conv_cost(explore.compute_conv_cost(m=4, r=3)))
    assert ("ratio", 4.0, "4") in nums and ("winograd", 9437184, "9,437,184") in nums
    w = widgets.make_conv_cost_widget()
    capsys.readouterr()
    controls(w)["m"].value = 4
    # headless (no kernel), the output area's print reaches stdout
    printed = capsys.readouterr().out
    assert "m = 4  r = 3" in printed and printed.rstrip().endswith("ratio = 4")
    assert w.result.ratio == 4.0


def test_render_says_why_a_setting_is_impossible():
    spec = widgets.WIDGETS["accuracy"]
    result, message, nums = widgets.render(spec, {"m": 2, "points": "onednn"})
    assert result is None and message.startswith("not possible:") and nums == []


def test_numbers_are_the_scalar_fields_formatted():
    from winolab import explore

    t = explore.compute_tiling(H=8, W=8, m=2, r=3, padding=1)
    nums = {name: (value, text) for name, value, text in widgets.numbers(t)}
    assert nums["redundancy"] == (t.redundancy, f"{t.redundancy:.4g}")
    assert nums["tiles_h"] == (4, "4")
    assert "coverage" not in nums  # arrays are the figure's


def test_state_keys_use_the_readouts():
    spec = widgets.WIDGETS["counts"]
    key = spec.key({"network": "vgg-nagadomi", "weight_density": 0.4,
                    "activation_density": 0.411, "m": 2})
    assert key == "network=vgg-nagadomi,weight_density=0.40,activation_density=0.411,m=2"


def test_control_rejects_a_default_outside_its_values():
    with pytest.raises(ValueError, match="is not one of"):
        widgets.Control("m", "m", (1, 2, 3), 5, "d")


def test_unknown_widget_is_named():
    with pytest.raises(ValueError, match="no widget 'nope'"):
        widgets.make_widget("nope")
