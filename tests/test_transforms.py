"""winolab.transforms: correctly rounded cached matrices, tiling and untiling."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import winolab
from winolab.derive import cook_toom
from winolab.transforms import WinogradTransforms, tile, tile_counts, transforms, untile


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(
    ("m", "r", "points"),
    [(2, 3, None), (4, 3, None), (4, 3, "onednn"), (6, 3, "barabasz"), (6, 5, None), (3, 2, None)],
)
def test_float_matrices_are_the_exact_ones_correctly_rounded(m, r, points, dtype):
    t = transforms(m, r, points, dtype)
    ct = cook_toom(m, r, points)
    for name in ("AT", "G", "BT"):
        got = getattr(t, name)
        want = getattr(ct, name)
        assert got.dtype == dtype and got.shape == want.shape
        for v, e in zip(got.ravel(), want, strict=True):
            ex = Fraction(int(e.p), int(e.q))
            # within half an ulp of the exact rational, in exact arithmetic
            half_ulp = Fraction(float(np.spacing(np.abs(v)))) / 2
            assert abs(Fraction(float(v)) - ex) <= half_ulp, (name, v, ex)


def test_exact_small_entries_are_exact():
    t = transforms(4, 3)
    np.testing.assert_array_equal(
        t.BT[0], [4, 0, -5, 0, 1, 0]
    )
    assert t.G[3, 0] == 1 / 24 and t.points == ("0", "1", "-1", "2", "-2")
    assert t.alpha == 6 and (t.m, t.r) == (4, 3)


def test_cached_and_read_only():
    t = transforms(4, 3)
    assert transforms(4, 3) is t
    assert transforms(4, 3, "lavin") is t
    assert transforms(4, 3, [0, 1, -1, 2, -2], np.float64) is t
    assert winolab.transforms.transforms(4, 3) is t  # a function of the module, not the module
    assert transforms(4, 3, dtype=np.float32) is not t
    for name in ("AT", "G", "BT"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(t, name)[0, 0] = 7.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.m = 2
    assert isinstance(t, WinogradTransforms)


@pytest.mark.parametrize("dtype", [np.int64, "int32", bool, np.complex128, "U3"])
def test_non_floating_dtypes_are_refused(dtype):
    with pytest.raises(TypeError, match="floating dtype"):
        transforms(2, 3, dtype=dtype)


def test_bad_sizes_propagate_from_derive():
    with pytest.raises(ValueError, match="m must be >= 1"):
        transforms(0, 3)
    with pytest.raises(ValueError, match="unknown point set"):
        transforms(2, 3, "nope")


@given(
    m=st.integers(1, 6), r=st.integers(1, 5), H=st.integers(1, 17), W=st.integers(1, 17),
    N=st.integers(1, 2), C=st.integers(1, 3),
)
def test_tile_matches_a_naive_slice_loop(m, r, H, W, N, C):
    H, W = H + r - 1, W + r - 1  # an already padded input, valid output H x W >= 1
    x = np.arange(N * C * H * W, dtype=float).reshape(N, C, H, W) + 1
    d = tile(x, m, r)
    a = m + r - 1
    th, tw = -(-(H - r + 1) // m), -(-(W - r + 1) // m)
    assert d.shape == (N, C, th, tw, a, a)
    assert tile_counts(H - r + 1, W - r + 1, m) == (th, tw)
    assert not d.flags.writeable
    # zero-extend the bottom and right as far as the last tile reaches
    big = np.zeros((N, C, (th - 1) * m + a, (tw - 1) * m + a))
    big[:, :, :H, :W] = x
    for i in range(th):
        for j in range(tw):
            want = big[:, :, i * m:i * m + a, j * m:j * m + a]
            np.testing.assert_array_equal(d[:, :, i, j], want)


def test_tile_is_a_view_when_no_extension_is_needed():
    x = np.zeros((1, 1, 6, 6))  # F(2, 3): 4x4 output in 2x2 tiles, exactly
    assert np.shares_memory(tile(x, 2, 3), x)


@given(
    m=st.integers(1, 6), h=st.integers(1, 15), w=st.integers(1, 15), K=st.integers(1, 3),
)
def test_untile_inverts_cutting_an_output_into_tiles(m, h, w, K):
    rng = np.random.default_rng(h * 100 + w)
    y = rng.standard_normal((2, K, h, w))
    th, tw = tile_counts(h, w, m)
    big = np.zeros((2, K, th * m, tw * m))
    big[:, :, :h, :w] = y
    # Y[n, k, i, j] is the m x m block at rows i*m.., columns j*m..
    Y = np.empty((2, K, th, tw, m, m))
    for i in range(th):
        for j in range(tw):
            Y[:, :, i, j] = big[:, :, i * m:(i + 1) * m, j * m:(j + 1) * m]
    out = untile(Y, h, w)
    assert out.shape == (2, K, h, w)
    np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize(("h", "w", "m", "want"), [(1, 1, 4, (1, 1)), (32, 31, 4, (8, 8)),
                                                  (9, 10, 2, (5, 5)), (7, 13, 6, (2, 3))])
def test_tile_counts(h, w, m, want):
    assert tile_counts(h, w, m) == want


def test_tiling_helpers_check_their_arguments():
    with pytest.raises(ValueError, match="m \\(output tile size\\) must be >= 1"):
        tile_counts(4, 4, 0)
    with pytest.raises(ValueError, match="h_out must be >= 1"):
        tile_counts(-5, 4, 2)
    with pytest.raises(ValueError, match="smaller than the 3 x 3 filter"):
        tile(np.zeros((1, 1, 2, 2)), 2, 3)
    with pytest.raises(ValueError, match="shape \\(N, C, H, W\\)"):
        tile(np.zeros((1, 6, 6)), 2, 3)
    with pytest.raises(ValueError, match="does not fit 2 x 2 tiles"):
        untile(np.zeros((1, 1, 2, 2, 2, 2)), 9, 9)
