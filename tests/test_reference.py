"""winolab.reference, the oracle, against independent oracles: scipy, torch, exact sympy, loops.

Every float comparison goes through winolab.testing's measured float64 tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from winolab.derive import cook_toom
from winolab.reference import (
    direct_conv2d,
    filter_transform,
    input_transform,
    output_transform,
    winograd_conv2d,
    winograd_domain_conv2d,
)
from winolab.testing import assert_conv_close, relative_error, tolerance

F64 = np.float64
# direct vs direct in float64: the smallest float64 bound in the table (F(2x2, 3x3))
DIRECT64 = tolerance(2, dtype=F64)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def exact_float(M) -> np.ndarray:
    """A sympy matrix as float64, independently of winolab.transforms."""
    return np.array([[float(v) for v in row] for row in M.tolist()])


@pytest.mark.parametrize(
    ("N", "C", "K", "H", "W", "kh", "kw", "padding"),
    [(1, 1, 1, 5, 5, 3, 3, 0), (2, 3, 4, 7, 6, 3, 3, 1), (1, 2, 3, 8, 9, 2, 4, (1, 2)),
     (2, 2, 2, 6, 5, 5, 5, 2), (1, 3, 2, 4, 4, 1, 1, 0)],
)
def test_direct_matches_scipy_correlate2d(N, C, K, H, W, kh, kw, padding):
    signal = pytest.importorskip("scipy.signal")
    x, w, b = rand(N, C, H, W, seed=1), rand(K, C, kh, kw, seed=2), rand(K, seed=3)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    want = np.stack([
        np.stack([sum(signal.correlate2d(xp[n, c], w[k, c], mode="valid") for c in range(C))
                  + b[k] for k in range(K)])
        for n in range(N)
    ])
    got = direct_conv2d(x, w, b, padding)
    assert got.dtype == F64 and got.shape == want.shape
    assert relative_error(got, want) <= DIRECT64


@pytest.mark.parametrize("padding", [0, 1, (2, 0)])
@pytest.mark.parametrize("bias", [False, True])
def test_direct_matches_torch_conv2d(padding, bias):
    torch = pytest.importorskip("torch")
    x, w = rand(2, 3, 9, 7, seed=4), rand(4, 3, 3, 3, seed=5)
    b = rand(4, seed=6) if bias else None
    want = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
        padding=padding,
    ).numpy()
    got = direct_conv2d(x, w, b, padding)
    assert got.shape == want.shape
    assert relative_error(got, want) <= DIRECT64


def test_direct_worked_example_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0], w[0, 0, 1, 1] = 1.0, -1.0  # y[i, j] = x[i, j] - x[i+1, j+1] = -5
    np.testing.assert_array_equal(direct_conv2d(x, w), np.full((1, 1, 3, 3), -5.0))


conv_cases = st.fixed_dictionaries({
    "m": st.integers(1, 6),
    "r": st.integers(1, 5),
    "N": st.integers(1, 2),
    "C": st.integers(1, 3),
    "K": st.integers(2, 3),
    "H": st.integers(0, 9),
    "W": st.integers(0, 9),
    "padding": st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))),
    "bias": st.booleans(),
    "points": st.sampled_from(["lavin", "barabasz"]),
    "seed": st.integers(0, 2**16),
})


def make(case):
    r, pad = case["r"], case["padding"]
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    # at least a 2 x 2 output: a norm-wise relative error of one or two numbers can blow up
    # by cancellation (see winolab.testing); grow from there
    H, W = max(1, r + 1 - 2 * ph) + case["H"], max(1, r + 1 - 2 * pw) + case["W"]
    x = rand(case["N"], case["C"], H, W, seed=case["seed"])
    w = rand(case["K"], case["C"], r, r, seed=case["seed"] + 1)
    b = rand(case["K"], seed=case["seed"] + 2) if case["bias"] else None
    return x, w, b


@given(case=conv_cases)
def test_winograd_equals_direct(case):
    x, w, b = make(case)
    m, r, points, pad = case["m"], case["r"], case["points"], case["padding"]
    want = direct_conv2d(x, w, b, pad)
    got = winograd_conv2d(x, w, b, pad, m, points)
    assert got.dtype == F64
    assert_conv_close(got, want, m, points, F64, r)
    # the Winograd layer with U = G g GT is the same layer
    U = filter_transform(w, m, points)
    assert U.shape == (*w.shape[:2], m + r - 1, m + r - 1)
    assert_conv_close(winograd_domain_conv2d(x, U, b, pad, m, points), want, m, points, F64, r)


@given(case=conv_cases)
def test_input_and_output_transforms_compose(case):
    x, w, b = make(case)
    m, r, points, pad = case["m"], case["r"], case["points"], case["padding"]
    want = direct_conv2d(x, w, None, pad)
    V = input_transform(x, r, m, pad, points)
    U = filter_transform(w, m, points)
    # M = sum_c U * V
    M = np.einsum("kcab,ncijab->nkijab", U, V)
    got = output_transform(M, want.shape[2:], m, points)
    assert_conv_close(got, want, m, points, F64, r)


@pytest.mark.parametrize(("m", "r", "points"), [(2, 3, None), (4, 3, "onednn"), (6, 3, None),
                                                (3, 5, "barabasz")])
def test_transforms_of_one_tile_match_exact_sympy(m, r, points):
    ct = cook_toom(m, r, points)
    a = ct.alpha
    rng = np.random.default_rng(7)
    g, d = rng.integers(-9, 10, (r, r)), rng.integers(-9, 10, (a, a))
    # U = G g GT and V = BT d B in exact rationals
    U_exact = ct.G * sympy.Matrix(g) * ct.G.T
    V_exact = ct.BT * sympy.Matrix(d) * ct.BT.T
    U = filter_transform(g[None, None].astype(float), m, points)[0, 0]
    V = input_transform(d[None, None].astype(float), r, m, 0, points)[0, 0, 0, 0]
    assert relative_error(U, exact_float(U_exact)) <= tolerance(m, points, F64, r)
    assert relative_error(V, exact_float(V_exact)) <= tolerance(m, points, F64, r)
    # Y = AT M A on the exact product is the valid correlation, exactly
    Y = ct.AT * U_exact.multiply_elementwise(V_exact) * ct.AT.T
    want = direct_conv2d(d[None, None].astype(float), g[None, None].astype(float))[0, 0]
    np.testing.assert_array_equal(exact_float(Y), want)  # integers, exact in float64


def naive_winograd_relu(x, U, m, padding):
    """y = AT [sum_c U * ReLU(BT d B)] A, one tile at a time, from the exact matrices."""
    K, C, a, _ = U.shape
    r = a - m + 1
    ct = cook_toom(m, r)
    AT, BT = exact_float(ct.AT), exact_float(ct.BT)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    N, _, H, W = xp.shape
    h_out, w_out = H - r + 1, W - r + 1
    th, tw = -(-h_out // m), -(-w_out // m)
    big = np.zeros((N, C, (th - 1) * m + a, (tw - 1) * m + a))
    big[:, :, :H, :W] = xp
    y = np.zeros((N, K, th * m, tw * m))
    for n in range(N):
        for i in range(th):
            for j in range(tw):
                for k in range(K):
                    M = np.zeros((a, a))
                    for c in range(C):
                        d = big[n, c, i * m:i * m + a, j * m:j * m + a]
                        M += U[k, c] * np.maximum(BT @ d @ BT.T, 0.0)
                    y[n, k, i * m:(i + 1) * m, j * m:(j + 1) * m] = AT @ M @ AT.T
    return y[:, :, :h_out, :w_out]


@pytest.mark.parametrize(("m", "H", "W", "padding"), [(2, 8, 8, 1), (2, 7, 5, 0), (4, 9, 6, 1)])
def test_winograd_relu_matches_naive_loop_and_is_not_spatial_relu(m, H, W, padding):
    x = rand(2, 3, H, W, seed=8)
    U = rand(4, 3, m + 2, m + 2, seed=9)  # a free Winograd-domain weight, not G g GT
    got = winograd_domain_conv2d(x, U, None, padding, m, relu=True)
    want = naive_winograd_relu(x, U, m, padding)
    assert_conv_close(got, want, m, None, F64, 3)
    # negative control: ReLU does not commute with BT, so this is not conv(ReLU(x))
    spatial = winograd_domain_conv2d(np.maximum(x, 0.0), U, None, padding, m)
    assert relative_error(spatial, want) > 0.05
    with pytest.raises(AssertionError, match="exceeds the measured tolerance"):
        assert_conv_close(spatial, want, m, None, F64, 3)


# Lavin & Gray's printed F(2x2, 3x3), which Liu et al.'s Winograd-ReLU kernels use; typed in
# here so that this oracle does not go through winolab.derive.
LIU_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
LIU_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def liu_winograd_relu_forward(x, U, padding):
    """Liu et al.'s Winograd-ReLU forward pass, written from the published matrices alone.

    Zero-pad, cut the padded input into 4 x 4 tiles at stride 2 (the last ones zero-extended),
    V = ReLU(BT d B), M = sum_c U[k, c] * V, y = AT M A, crop to the valid output.
    """
    N, C, H, W = x.shape
    K = U.shape[0]
    xp = np.zeros((N, C, H + 2 * padding + 2, W + 2 * padding + 2))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    h_out, w_out = H + 2 * padding - 2, W + 2 * padding - 2
    y = np.zeros((N, K, h_out + 1, w_out + 1))
    for n in range(N):
        for ti in range(0, h_out, 2):
            for tj in range(0, w_out, 2):
                V = [np.maximum(LIU_BT @ xp[n, c, ti:ti + 4, tj:tj + 4] @ LIU_BT.T, 0)
                     for c in range(C)]
                for k in range(K):
                    M = sum(U[k, c] * V[c] for c in range(C))
                    y[n, k, ti:ti + 2, tj:tj + 2] = LIU_AT @ M @ LIU_AT.T
    return y[:, :, :h_out, :w_out]


@pytest.mark.parametrize(("H", "W", "padding"), [(8, 8, 1), (7, 7, 1), (6, 9, 0), (5, 4, 1)])
def test_winograd_relu_is_liu_et_al_forward_pass(H, W, padding):
    x = rand(2, 3, H, W, seed=21)
    U = rand(4, 3, 4, 4, seed=22)
    want = liu_winograd_relu_forward(x, U, padding)
    got = winograd_domain_conv2d(x, U, None, padding, 2, relu=True)  # the default convention
    assert_conv_close(got, want, 2, None, F64, 3)
    got = winograd_domain_conv2d(x, U, None, padding, 2, relu=True, convention="lavin")
    assert_conv_close(got, want, 2, None, F64, 3)


def test_conventions_agree_for_linear_layers_and_differ_under_relu():
    x, w = rand(2, 3, 8, 8, seed=23), rand(4, 3, 3, 3, seed=24)
    lin = {c: winograd_conv2d(x, w, None, 1, 2, convention=c) for c in ("lavin", "wincnn")}
    assert_conv_close(lin["lavin"], lin["wincnn"], 2, None, F64, 3)
    # the same spatial kernel under each convention, with the ReLU in the Winograd domain
    relu = {
        c: winograd_domain_conv2d(x, filter_transform(w, 2, convention=c), None, 1, 2,
                                  relu=True, convention=c)
        for c in ("lavin", "wincnn")
    }
    assert relative_error(relu["wincnn"], relu["lavin"]) > 0.05
    # where they differ: the entries of V with exactly one index 3 change sign
    Vl = input_transform(x, 3, 2, 1)
    Vw = input_transform(x, 3, 2, 1, convention="wincnn")
    one3 = np.zeros((4, 4), bool)
    one3[3, :3] = one3[:3, 3] = True
    np.testing.assert_array_equal(Vw[..., one3], -Vl[..., one3])
    np.testing.assert_array_equal(Vw[..., ~one3], Vl[..., ~one3])
    # and no U makes the wincnn layer equal to Liu's on these inputs: the ReLU keeps the
    # positive part of different numbers, so the Winograd-domain outputs differ in support
    assert not np.array_equal(np.maximum(Vl, 0) > 0, np.maximum(Vw, 0) > 0)


def test_float32_and_float16_inputs_give_float64_outputs():
    x, w = rand(1, 2, 6, 6).astype(np.float32), rand(3, 2, 3, 3).astype(np.float16)
    U = filter_transform(w)
    outs = [direct_conv2d(x, w), winograd_conv2d(x, w, m=4), U,
            winograd_domain_conv2d(x, U.astype(np.float32), bias=np.ones(3, np.float32)),
            input_transform(x), output_transform(np.ones((1, 1, 1, 1, 4, 4), np.float32), (2, 2))]
    assert all(o.dtype == F64 for o in outs)
    want = direct_conv2d(x.astype(F64), w.astype(F64))
    assert_conv_close(winograd_conv2d(x, w, m=4), want, 4, None, F64)


X = rand(1, 2, 6, 6)
W = rand(3, 2, 3, 3)
U4 = rand(3, 2, 4, 4)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: direct_conv2d(X[0], W), ValueError, r"x must have shape \(N, C, H, W\)"),
        (lambda: winograd_conv2d(X, W[0]), ValueError, r"w must have shape \(K, C, r, r\)"),
        (lambda: direct_conv2d(X, rand(3, 5, 3, 3)), ValueError,
         "w has 5 input channels but x has 2"),
        (lambda: winograd_conv2d(X, rand(3, 1, 3, 3)), ValueError,
         "w has 1 input channels but x has 2"),
        (lambda: winograd_domain_conv2d(X, rand(3, 4, 4, 4)), ValueError,
         "U has 4 input channels but x has 2"),
        (lambda: winograd_domain_conv2d(X, rand(3, 2, 3, 3), m=4), ValueError,
         "U has alpha = 3, but alpha = m"),
        (lambda: winograd_domain_conv2d(X, rand(3, 2, 4, 5)), ValueError,
         r"U must be square .*\(alpha, alpha\)"),
        (lambda: winograd_domain_conv2d(X, U4[0]), ValueError,
         r"U must have shape \(K, C, alpha, alpha\)"),
        (lambda: winograd_conv2d(X, rand(3, 2, 3, 2)), ValueError, "square r x r kernels"),
        (lambda: filter_transform(rand(3, 2, 2, 3)), ValueError, "square r x r kernels"),
        (lambda: winograd_conv2d(X, W, m=0), ValueError, r"m \(output tile size\) must be >= 1"),
        (lambda: winograd_domain_conv2d(X, U4, m=-1), ValueError, "must be >= 1"),
        (lambda: winograd_conv2d(X, W, m=2.0), TypeError, r"m \(output tile size\) must be an int"),
        (lambda: winograd_conv2d(X, W, m=True), TypeError, "must be an int"),
        (lambda: direct_conv2d(X, W, padding=-1), ValueError, "padding must be >= 0"),
        (lambda: winograd_conv2d(X, W, padding=(1, -2)), ValueError, "padding must be >= 0"),
        (lambda: winograd_conv2d(X, W, padding=1.5), TypeError, "padding must be an int"),
        (lambda: direct_conv2d(X, W, padding="same"), TypeError, "padding must be an int"),
        (lambda: direct_conv2d(X, W, padding=(1, 1, 1)), ValueError, r"a pair \(ph, pw\)"),
        (lambda: direct_conv2d(X, rand(3, 2, 7, 7)), ValueError, "output would be empty"),
        (lambda: winograd_conv2d(X[..., :2], W), ValueError, "output would be empty"),
        (lambda: input_transform(X, r=9), ValueError, "output would be empty"),
        (lambda: direct_conv2d(X.astype(int), W), TypeError, "x must have a floating dtype"),
        (lambda: winograd_conv2d(X, W > 0), TypeError, "w must have a floating dtype"),
        (lambda: winograd_domain_conv2d(X, U4.astype(np.int32)), TypeError,
         "U must have a floating dtype"),
        (lambda: direct_conv2d(X, W, bias=np.arange(3)), TypeError,
         "bias must have a floating dtype"),
        (lambda: direct_conv2d(np.where(X > 1, np.nan, X), W), ValueError,
         "x contains NaN or inf"),
        (lambda: winograd_conv2d(X, np.where(W > 1, np.inf, W)), ValueError,
         "w contains NaN or inf"),
        (lambda: winograd_domain_conv2d(X, np.full_like(U4, np.nan)), ValueError,
         "U contains NaN or inf"),
        (lambda: direct_conv2d(X, W, bias=np.array([0.0, np.nan, 0.0])), ValueError,
         "bias contains NaN"),
        (lambda: direct_conv2d(X, W, bias=np.zeros(4)), ValueError,
         r"bias must have shape \(3,\)"),
        (lambda: winograd_conv2d(X, W, bias=np.zeros((3, 1))), ValueError,
         r"bias must have shape \(3,\)"),
        (lambda: winograd_domain_conv2d(X, U4, bias=np.zeros(2)), ValueError,
         r"bias must have shape \(3,\)"),
        (lambda: direct_conv2d(X, np.zeros((0, 2, 3, 3))), ValueError, "must not be empty"),
        (lambda: direct_conv2d([[1.0], [2.0, 3.0]], W), TypeError, "x must be a numeric array"),
        (lambda: output_transform(np.zeros((1, 1, 4, 4)), (2, 2)), ValueError,
         r"M must have shape \(N, K, tiles_h, tiles_w, alpha, alpha\)"),
        (lambda: output_transform(np.zeros((1, 1, 1, 1, 2, 2)), (2, 2), m=4), ValueError,
         "needs alpha >= m"),
        (lambda: winograd_conv2d(X, W, points="nope"), ValueError, "unknown point set"),
        (lambda: winograd_conv2d(X, W, m=2, points="onednn"), ValueError, "fits only"),
    ],
)
def test_bad_input_says_what_was_expected(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_output_transform_checks_out_shape_and_values():
    M = np.ones((1, 1, 2, 2, 4, 4))
    assert output_transform(M, (4, 3)).shape == (1, 1, 4, 3)
    for bad in [(5, 5), (2, 4), (0, 4)]:
        with pytest.raises(ValueError, match="out_shape|must be >= 1"):
            output_transform(M, bad)
    with pytest.raises(TypeError, match="two ints"):
        output_transform(M, ("4", 4))
    M[0, 0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        output_transform(M, (4, 4))


def test_relu_and_r_are_checked():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6))
    with pytest.raises(TypeError, match="relu must be True or False"):
        winograd_domain_conv2d(x, np.ones((1, 2, 4, 4)), relu="spatial")
    with pytest.raises(TypeError, match="r \\(filter size\\) must be an int"):
        input_transform(x, r="3")
