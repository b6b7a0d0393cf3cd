"""winolab.derive against the published matrices (exactly, as sympy Rationals) and algebra.

Golden values are typed in from andravin/wincnn's README (F(2,3), F(4,3), F(6,3) with the
NNPACK points), Lavin & Gray's paper (F(2,3) with the other sign of the infinity row, and
F(4,3)), IntelLabs/SkimCaffe's include/caffe/util/winograd.hpp (F(4x4,5x5) in the scaled NNPACK
form that Yu et al. use) and oneDNN's benchdnn ref_wino.cpp (F(4,3) with points 0, +-5/8, +-3/2).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from winolab.derive import (
    CONVENTIONS,
    DEFAULT_CONVENTION,
    POINT_SETS,
    CookToom,
    cook_toom,
    nested,
    residual,
    resolve_points,
    verify,
)

R = sympy.Rational


def exact(rows) -> sympy.ImmutableMatrix:
    """A matrix of exact rationals from ints and "p/q" strings."""
    return sympy.ImmutableMatrix([[R(v) for v in row] for row in rows])


# wincnn README, points (0, 1, -1)
F23 = {
    "AT": [[1, 1, 1, 0], [0, 1, -1, 1]],
    "G": [[1, 0, 0], ["1/2", "1/2", "1/2"], ["1/2", "-1/2", "1/2"], [0, 0, 1]],
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]],
}
# wincnn README, points (0, 1, -1, 2, -2)
F43 = {
    "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    "G": [["1/4", 0, 0], ["-1/6", "-1/6", "-1/6"], ["-1/6", "1/6", "-1/6"],
          ["1/24", "1/12", "1/6"], ["1/24", "-1/12", "1/6"], [0, 0, 1]],
    "BT": [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
}
# wincnn README, points (0, 1, -1, 2, -2, 1/2, -1/2): NNPACK's F(6x6, 3x3).
# Hand check: the row of G for p = 2 is (1, 2, 4) / f with f = 2*1*3*4*(3/2)*(5/2) = 90, and for
# p = 1/2 it is (1, 1/2, 1/4) / f with f = (1/2)(-1/2)(3/2)(-3/2)(5/2)(1) = 45/32.
F63 = {
    "AT": [[1, 1, 1, 1, 1, 1, 1, 0],
           [0, 1, -1, 2, -2, "1/2", "-1/2", 0],
           [0, 1, 1, 4, 4, "1/4", "1/4", 0],
           [0, 1, -1, 8, -8, "1/8", "-1/8", 0],
           [0, 1, 1, 16, 16, "1/16", "1/16", 0],
           [0, 1, -1, 32, -32, "1/32", "-1/32", 1]],
    "G": [[1, 0, 0], ["-2/9", "-2/9", "-2/9"], ["-2/9", "2/9", "-2/9"],
          ["1/90", "1/45", "2/45"], ["1/90", "-1/45", "2/45"],
          ["32/45", "16/45", "8/45"], ["32/45", "-16/45", "8/45"], [0, 0, 1]],
    "BT": [[1, 0, "-21/4", 0, "21/4", 0, -1, 0],
           [0, 1, 1, "-17/4", "-17/4", 1, 1, 0],
           [0, -1, 1, "17/4", "-17/4", -1, 1, 0],
           [0, "1/2", "1/4", "-5/2", "-5/4", 2, 1, 0],
           [0, "-1/2", "1/4", "5/2", "-5/4", -2, 1, 0],
           [0, 2, 4, "-5/2", -5, "1/2", 1, 0],
           [0, -2, 4, "5/2", -5, "-1/2", 1, 0],
           [0, -1, 0, "21/4", 0, "-21/4", 0, 1]],
}
# Lavin & Gray (2016), as printed: the infinity row of BT and column of AT have the other sign.
LAVIN_F23 = {
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
    "G": F23["G"],
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
}


@pytest.mark.parametrize(
    ("m", "points", "golden"),
    [(2, (0, 1, -1), F23), (4, (0, 1, -1, 2, -2), F43),
     (6, (0, 1, -1, 2, -2, "1/2", "-1/2"), F63)],
)
def test_published_wincnn_matrices_exactly(m, points, golden):
    for spec in (points, None, "lavin"):  # explicit points and the default set agree
        ct = cook_toom(m, 3, spec, convention="wincnn")
        for name in ("AT", "G", "BT"):
            assert getattr(ct, name) == exact(golden[name]), (m, name)
            assert all(isinstance(v, sympy.Rational) for v in getattr(ct, name))


# Lavin & Gray (2016), F(4x4, 3x3) as printed: wincnn's matrices, signs included.
LAVIN_F43 = F43
# SkimCaffe's WinogradParameters<5> (stored there as A = AT^T, B = BT^T): the points
# 0, 1, -1, 2, -2, 1/2, -1/2 with the AT columns of +-1/2 scaled by 8 and G's rows by 1/8.
SKIMCAFFE_F45 = {
    "AT": [[1, 1, 1, 1, 1, 8, 8, 0], [0, 1, -1, 2, -2, 4, -4, 0],
           [0, 1, 1, 4, 4, 2, 2, 0], [0, 1, -1, 8, -8, 1, -1, 1]],
    "G": [[1, 0, 0, 0, 0],
          ["-2/9", "-2/9", "-2/9", "-2/9", "-2/9"],
          ["-2/9", "2/9", "-2/9", "2/9", "-2/9"],
          ["1/90", "1/45", "2/45", "4/45", "8/45"],
          ["1/90", "-1/45", "2/45", "-4/45", "8/45"],
          ["4/45", "2/45", "1/45", "1/90", "1/180"],
          ["4/45", "-2/45", "1/45", "-1/90", "1/180"],
          [0, 0, 0, 0, 1]],
    "BT": F63["BT"],  # the same 8 points as F(6, 3): the same data transform
}


@pytest.mark.parametrize(("m", "golden"), [(2, LAVIN_F23), (4, LAVIN_F43)])
def test_default_is_lavin_and_gray_as_printed(m, golden):
    assert DEFAULT_CONVENTION == "lavin"
    for ct in (cook_toom(m, 3), cook_toom(m, 3, convention="lavin")):
        assert ct.convention == "lavin"
        for name in ("AT", "G", "BT"):
            assert getattr(ct, name) == exact(golden[name]), (m, name)


def test_nnpack_convention_is_skimcaffe_f45_exactly():
    ct = cook_toom(4, 5, convention="nnpack")
    for name in ("AT", "G", "BT"):
        assert getattr(ct, name) == exact(SKIMCAFFE_F45[name]), name
    # AT_yu = AT D and G_yu = D^-1 G against wincnn's, D = diag(1, 1, 1, 1, 1, 8, 8, 1)
    plain = cook_toom(4, 5, convention="wincnn")
    D = sympy.diag(1, 1, 1, 1, 1, 8, 8, 1)
    assert ct.AT == plain.AT * D and ct.G == D.inv() * plain.G and ct.BT == plain.BT
    assert verify(ct, ndim=2)


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
@pytest.mark.parametrize(
    ("m", "r", "points"),
    [(2, 3, None), (4, 3, None), (4, 5, None), (6, 3, None), (3, 2, None), (4, 3, "barabasz"),
     (4, 3, "onednn"), (3, 3, ("1/3", -2, 5, "-7/2"))],
)
def test_every_convention_is_a_diagonal_change_of_basis(convention, m, r, points):
    """``S BT``, ``D G`` and ``AT (S D)^-1`` with diagonal S, D: proved correct in every form."""
    ct = cook_toom(m, r, points, convention=convention)
    base = cook_toom(m, r, points, convention="wincnn")
    a = ct.alpha
    for i in range(a):  # row i of BT is row i of wincnn's times a sign
        ratios = {ct.BT[i, j] / base.BT[i, j] for j in range(a) if base.BT[i, j] != 0}
        assert len(ratios) == 1 and ratios.pop() in (1, -1)
        g_ratios = {ct.G[i, j] / base.G[i, j] for j in range(r) if base.G[i, j] != 0}
        assert len(g_ratios) == 1 and g_ratios.pop() > 0  # and of G times a positive scale
    for ndim in (1, 2):
        for form in ("correlation", "convolution"):
            assert verify(ct, form, ndim=ndim)


def test_conventions_differ_where_documented():
    lavin, wincnn = cook_toom(2, 3), cook_toom(2, 3, convention="wincnn")
    assert list(lavin.BT.row(3)) == [0, 1, 0, -1] and list(lavin.AT.col(3)) == [0, -1]
    assert list(wincnn.BT.row(3)) == [0, -1, 0, 1] and list(wincnn.AT.col(3)) == [0, 1]
    assert lavin.G == wincnn.G
    base = cook_toom(4, 3, convention="wincnn")
    for conv in CONVENTIONS:  # no fractional point: nnpack is wincnn; lavin's F(4, 3) too
        ct = cook_toom(4, 3, convention=conv)
        assert (ct.AT, ct.G, ct.BT) == (base.AT, base.G, base.BT)
    # with fractional points nnpack rescales, and lavin flips F(6, 3)'s infinity row
    assert cook_toom(6, 3, convention="nnpack").AT != cook_toom(6, 3, convention="wincnn").AT
    assert cook_toom(6, 3).BT.row(7) == -cook_toom(6, 3, convention="wincnn").BT.row(7)


@pytest.mark.parametrize("bad", ["Lavin", "", None, 2, "skimcaffe"])
def test_unknown_convention_is_refused(bad):
    with pytest.raises(ValueError, match="convention"):
        cook_toom(2, 3, convention=bad)


def test_onednn_f43_constants():
    ct = cook_toom(4, 3, "onednn")
    assert ct.points == (0, R(5, 8), R(-5, 8), R(3, 2), R(-3, 2))
    assert list(ct.BT.row(0)) == [R(225, 256), 0, R(-169, 64), 0, 1, 0]
    assert ct.G[0, 0] == R(256, 225)
    assert list(ct.G.row(1)) == [R(-2048, 2975), R(-256, 595), R(-32, 119)]
    # benchdnn's decimal constants are these rationals: 0.87890625 = 225/256, 2.640625 = 169/64
    assert float(ct.BT[0, 0]) == 0.87890625 and float(-ct.BT[0, 2]) == 2.640625
    assert verify(ct, ndim=2)


@pytest.mark.parametrize("points", ["lavin", "barabasz"])
@pytest.mark.parametrize("m", range(1, 7))
def test_verify_1d_every_size(m, points):
    for r in range(1, 6):
        if m + r - 2 > len(POINT_SETS[points]):
            continue
        ct = cook_toom(m, r, points)
        assert ct.AT.shape == (m, ct.alpha) and ct.G.shape == (ct.alpha, r)
        assert ct.BT.shape == (ct.alpha, ct.alpha)
        assert verify(ct) and verify(ct, "convolution")
        assert verify(cook_toom(m, r, points, fractions_in="BT"))


@pytest.mark.parametrize(
    ("m", "r", "points"),
    [(1, 1, None), (2, 3, None), (3, 2, None), (4, 3, None), (4, 3, "barabasz"),
     (4, 3, "onednn"), (2, 5, None), (6, 3, None)],
)
def test_verify_2d(m, r, points):
    ct = cook_toom(m, r, points)
    assert verify(ct, ndim=2) and verify(ct, "convolution", ndim=2)


@pytest.mark.parametrize(("m", "r"), [(1, 1), (2, 2), (2, 3), (3, 2), (4, 3), (6, 3), (3, 5)])
def test_residual_1d_is_zero_in_both_forms(m, r):
    ct = cook_toom(m, r)
    for form in ("correlation", "convolution"):
        res = residual(ct, form)
        assert res.is_zero_matrix
        assert res.shape == ((m, 1) if form == "correlation" else (ct.alpha, 1))


@pytest.mark.parametrize(("m", "r"), [(1, 1), (2, 2), (2, 3), (3, 2)])
def test_residual_2d_is_zero_and_agrees_with_verify(m, r):
    ct = cook_toom(m, r)
    for form in ("correlation", "convolution"):
        assert residual(ct, form, ndim=2).is_zero_matrix == verify(ct, form, ndim=2) is True


def test_wincnn_sign_variant_built_by_hand_passes():
    ct = CookToom(2, 3, (0, 1, -1), *(exact(F23[n]) for n in ("AT", "G", "BT")))
    assert ct.BT != cook_toom(2, 3).BT  # really the other variant of the default
    for ndim in (1, 2):
        assert verify(ct, ndim=ndim)
        for form in ("correlation", "convolution"):
            assert residual(ct, form, ndim=ndim).is_zero_matrix


@pytest.mark.parametrize("row", [0, 2, 3])
def test_flipping_one_bt_row_alone_fails(row):
    good = cook_toom(2, 3)
    BT = sympy.Matrix(good.BT)
    BT[row, :] = -BT[row, :]
    bad = CookToom(2, 3, good.points, good.AT, good.G, sympy.ImmutableMatrix(BT))
    for ndim in (1, 2):
        assert not verify(bad, ndim=ndim)
        assert not residual(bad, ndim=ndim).is_zero_matrix
    assert not residual(bad, "convolution").is_zero_matrix


def test_one_wrong_entry_fails_in_f63():
    good = cook_toom(6, 3)
    G = sympy.Matrix(good.G)
    G[5, 1] += R(1, 1000)
    bad = CookToom(6, 3, good.points, good.AT, sympy.ImmutableMatrix(G), good.BT)
    assert not verify(bad) and not verify(bad, ndim=2)
    assert not residual(bad).is_zero_matrix


def test_nested_is_the_kronecker_form_of_the_2d_algorithm():
    ct = cook_toom(2, 3)
    n2 = nested(ct)
    rng = np.random.default_rng(0)
    X = sympy.Matrix(4, 4, [R(int(v), 7) for v in rng.integers(-20, 20, 16)])
    vec = lambda M: M.reshape(M.rows * M.cols, 1)  # noqa: E731  row-major
    # vec(AT X A) = (AT (x) AT) vec(X), and likewise for BT
    assert n2.AT2 * vec(X) == vec(ct.AT * X * ct.AT.T)
    assert n2.BT2 * vec(X) == vec(ct.BT * X * ct.BT.T)
    g = X[:3, :3]
    assert n2.G2 * vec(g) == vec(ct.G * g * ct.G.T)


pool = st.sampled_from([R(p, q) for p in range(-4, 5) for q in (1, 2, 3)])


@given(m=st.integers(1, 4), r=st.integers(1, 4), data=st.data())
def test_any_distinct_points_give_a_correct_correlation(m, r, data):
    pts = data.draw(st.lists(pool, min_size=m + r - 2, max_size=m + r - 2, unique=True))
    ct = cook_toom(m, r, pts)
    assert verify(ct)
    # numeric oracle: numpy's own correlation
    rng = np.random.default_rng(len(pts))
    d, g = rng.standard_normal(ct.alpha), rng.standard_normal(r)
    AT, G, BT = (np.array(M.tolist(), dtype=float) for M in (ct.AT, ct.G, ct.BT))
    y = AT @ ((G @ g) * (BT @ d))
    # rounding bound of the float evaluation: a few ulps of the sum of absolute terms
    scale = np.abs(AT) @ ((np.abs(G) @ np.abs(g)) * (np.abs(BT) @ np.abs(d)))
    assert np.all(np.abs(y - np.correlate(d, g, "valid")) <= 8 * ct.alpha * 2.0**-52 * scale)


def test_point_spellings_are_read_exactly():
    onednn = POINT_SETS["onednn"]
    for spec in ([0, 0.625, -0.625, 1.5, -1.5],
                 ["0", "5/8", "-5/8", "3/2", "-3/2"],
                 [0, Fraction(5, 8), Fraction(-5, 8), Fraction(3, 2), Fraction(-3, 2)],
                 onednn):
        assert resolve_points(4, 3, spec) == onednn
        assert cook_toom(4, 3, spec).BT == cook_toom(4, 3, "onednn").BT
    assert resolve_points(2, 3, [0, 0.1, -0.1])[1] == R(1, 10)  # the decimal, not the binary


def test_named_sets_are_prefixes():
    assert resolve_points(2, 3) == (0, 1, -1)
    assert resolve_points(4, 3, "barabasz") == (0, -1, 1, R(1, 2), -2)
    assert resolve_points(6, 3) == (0, 1, -1, 2, -2, R(1, 2), R(-1, 2))
    assert resolve_points(1, 1) == ()


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((0, 3), {}, ValueError, "m must be >= 1"),
        ((2, 0), {}, ValueError, "r must be >= 1"),
        ((-1, 3), {}, ValueError, "m must be >= 1"),
        ((2.0, 3), {}, TypeError, "m must be an int"),
        ((2, "3"), {}, TypeError, "r must be an int"),
        ((True, 3), {}, TypeError, "m must be an int"),
        ((2, 3, [0, 1]), {}, ValueError, r"needs m \+ r - 2 = 3 finite points, got 2"),
        ((2, 3, [0, 1, 1]), {}, ValueError, "must be distinct"),
        ((2, 3, [0, 1, "1/1"]), {}, ValueError, "must be distinct"),
        ((2, 3, "chebyshev"), {}, ValueError, "unknown point set 'chebyshev'"),
        ((2, 3, "onednn"), {}, ValueError, r"fits only .*F\(2, 3\) needs 3"),
        ((6, 3, "onednn"), {}, ValueError, "fits only"),
        ((9, 3, "barabasz"), {}, ValueError, "has only 9 finite points"),
        ((2, 3, [0, 1, float("nan")]), {}, ValueError, "must be finite"),
        ((2, 3, [0, 1, "one"]), {}, ValueError, "cannot read interpolation point 'one'"),
        ((2, 3, [0, 1, True]), {}, TypeError, "must be numbers"),
        ((2, 3, [0, 1, None]), {}, TypeError, "got NoneType"),
        ((2, 3), {"fractions_in": "A"}, ValueError, "fractions_in must be 'G' or 'BT'"),
    ],
)
def test_bad_input_says_what_was_expected(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cook_toom(*args, **kwargs)


def test_bad_form_and_ndim():
    ct = cook_toom(2, 3)
    for fn in (verify, residual):
        with pytest.raises(ValueError, match="form must be 'correlation' or 'convolution'"):
            fn(ct, "fft")
        with pytest.raises(ValueError, match="ndim must be 1 or 2"):
            fn(ct, ndim=3)


def test_fractions_in_bt_moves_the_denominators():
    g_form, b_form = cook_toom(4, 3), cook_toom(4, 3, fractions_in="BT")
    assert all(v.q == 1 for v in b_form.G)  # integer points: G is a plain Vandermonde matrix
    assert any(v.q != 1 for v in g_form.G)
    assert g_form.AT == b_form.AT
    # the product that matters is the same: diag(G[:, k]) BT per filter tap
    for k in range(3):
        lhs = sympy.diag(*g_form.G[:, k]) * g_form.BT
        assert lhs == sympy.diag(*b_form.G[:, k]) * b_form.BT


def test_numpy_numbers_are_points_and_sizes():
    half = R(1, 2)
    assert resolve_points(2, 3, [np.float64(0.5), 1, -1]) == (half, 1, -1)
    assert resolve_points(2, 3, np.array([0.5, 1.0, -1.0])) == (half, 1, -1)
    assert resolve_points(2, 3, [np.float32(0.5), np.int64(1), -1]) == (half, 1, -1)
    assert cook_toom(np.int64(2), np.int64(3)).BT == cook_toom(2, 3).BT


@pytest.mark.parametrize("points, error, message", [
    (["1/0", 1, 2], ValueError, "as a rational"),
    (5, TypeError, "a name or a sequence"),
    (b"abc", TypeError, "a name or a sequence"),
    ({0: 1, 1: 1, 2: 1}, TypeError, "a name or a sequence"),
])
def test_bad_points_say_what_was_expected(points, error, message):
    with pytest.raises(error, match=message):
        resolve_points(2, 3, points)
