"""winolab.sparse against its float64 twins in winolab.reference (and direct_conv2d)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from winolab import reference, sparse
from winolab.counting import exact_winograd_multiplies
from winolab.sparsity import prune_magnitude
from winolab.testing import assert_conv_close, relative_error
from winolab.transforms import tile_counts

pytest.importorskip("numba")

BACKENDS = ("numba", "numpy")


def _case(seed, N, C, K, H, W, m, density, r=3, dtype=np.float32, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C, r, r)) / np.sqrt(C * r * r)
    U = prune_magnitude(reference.filter_transform(w, m), density).values.astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    return x, U, b


@settings(deadline=None, max_examples=30)
@given(
    seed=st.integers(0, 2**16),
    N=st.integers(1, 3), C=st.integers(1, 9), K=st.integers(1, 9),
    H=st.integers(3, 13), W=st.integers(3, 13),
    m=st.sampled_from([1, 2, 3, 4]),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    density=st.sampled_from([1.0, 0.5, 0.2, 0.05]),
    relu=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
    backend=st.sampled_from(BACKENDS),
)
def test_winograd_domain_conv2d_matches_reference(seed, N, C, K, H, W, m, padding, density,
                                                  relu, dtype, backend):
    # the padded input must hold the 3x3 filter (H, W >= 3 ensure it; a wider range needs this)
    assume(min(H + 2 * padding[0], W + 2 * padding[1]) >= 3)
    x, U, b = _case(seed, N, C, K, H, W, m, density, dtype=dtype)
    y = sparse.winograd_domain_conv2d(x, U, b, padding, m, relu=relu, backend=backend)
    # the oracle sees exactly the rounded inputs the fast path saw
    d = reference.winograd_domain_conv2d(x, U, b, padding, m, relu=relu)
    assert y.dtype == dtype
    if np.linalg.norm(d) > 0:
        assert_conv_close(y, d, m=m, err_msg=f"{backend} m={m} relu={relu}")
    else:
        assert not y.any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("m", "points", "r"),
                         [(2, None, 3), (4, None, 3), (4, "barabasz", 3), (4, "onednn", 3),
                          (2, None, 5), (3, None, 2)])
def test_winograd_conv2d_matches_direct(backend, m, points, r):
    rng = np.random.default_rng(m + r)
    x = rng.standard_normal((2, 5, 11, 9))
    w = rng.standard_normal((4, 5, r, r)) / np.sqrt(5 * r * r)
    b = rng.standard_normal(4)
    d = reference.direct_conv2d(x, w, b, padding=1)
    for dtype in (np.float32, np.float64):
        xd, wd, bd = x.astype(dtype), w.astype(dtype), b.astype(dtype)
        y = sparse.winograd_conv2d(xd, wd, bd, 1, m, points, backend=backend)
        assert y.dtype == dtype
        assert_conv_close(y, reference.direct_conv2d(xd, wd, bd, padding=1), m=m,
                          points=points, r=r)
    assert_conv_close(y, d, m=m, points=points, r=r)


@pytest.mark.parametrize(("N", "H", "C", "K"), [(1, 8, 16, 40), (1, 32, 4, 4), (20, 8, 3, 5)])
def test_task_splits_match_reference(N, H, C, K):
    # batch 1 splits output channels or tile rows; small maps block several images per task
    x, U, b = _case(0, N, C, K, H, H, 2, 0.3)
    y = sparse.winograd_domain_conv2d(x, U, b, 1, backend="numba")
    assert_conv_close(y, reference.winograd_domain_conv2d(x, U, b, 1))


@pytest.mark.parametrize("m", [2, 4])
def test_tasks_of_a_few_tile_rows_match_reference(monkeypatch, m):
    # tasks of about 8 tiles: each starts at its own tile row i0 > 0 and the last one holds
    # the cropped rows, so the output gather map is built per task (pitched and gathered)
    monkeypatch.setattr(sparse, "_TARGET_TILES", 8)
    for N, H, W in [(2, 4 * m + 3, 4 * m + 1), (3, 2 * m + 1, 5 * m + 2), (1, 6 * m + 1, m + 1)]:
        assert len(sparse.plan_tasks(N, -(-H // m), -(-W // m), 3, 1, 8)) > N
        x, U, b = _case(H + W, N, 3, 3, H, W, m, 0.5, dtype=np.float64)
        y = sparse.winograd_domain_conv2d(x, U, b, 1, m, backend="numba")
        assert_conv_close(y, reference.winograd_domain_conv2d(x, U, b, 1, m), m=m,
                          dtype=np.float64, err_msg=f"N={N} H={H} W={W}")


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_pitched_tiles_every_width_and_padding(m, padding):
    # the kernel pitches a task's tiles tw + 1 columns per tile row (garbage columns, never
    # scattered) where tw >= 4, else gathers them: every width modulo m, one tile column,
    # one image, several images per task
    for N, H, W in [(1, 3, 3), (3, 3, 4), (2, 5, 3 + m), (1, 4, 2 * m + 1), (3, 6, 2 * m + 3),
                    (2, 4, 4 * m + 5), (1, 5, 4 * m + 2)]:  # the last two: tw >= 4, pitched
        for relu in (False, True):
            x, U, b = _case(N + W, N, 3, 2, H, W, m, 0.5, dtype=np.float64)
            y = sparse.winograd_domain_conv2d(x, U, b, padding, m, relu=relu, backend="numba")
            assert_conv_close(y, reference.winograd_domain_conv2d(x, U, b, padding, m, relu=relu),
                              m=m, dtype=np.float64, err_msg=f"N={N} H={H} W={W} relu={relu}")


@settings(deadline=None, max_examples=40)
@given(N=st.integers(1, 70), th=st.integers(1, 20), tw=st.integers(1, 20),
       K=st.integers(1, 300), threads=st.integers(1, 8))
def test_plan_tasks_covers_every_tile_and_channel_once(N, th, tw, K, threads):
    tasks = sparse.plan_tasks(N, th, tw, K, threads)
    seen = np.zeros((N, th, K), dtype=int)
    for n0, n1, i0, i1, k0, k1 in tasks:
        assert n0 < n1 and i0 < i1 and k0 < k1
        seen[n0:n1, i0:i1, k0:k1] += 1
    assert (seen == 1).all()


def test_dtypes():
    x, U, _ = _case(1, 1, 3, 2, 6, 6, 2, 0.5, dtype=np.float64)
    y16 = sparse.winograd_domain_conv2d(x.astype(np.float16), U, backend="numba")
    assert y16.dtype == np.float32
    y = sparse.winograd_domain_conv2d(x.astype(np.float32), U.astype(np.float32))
    assert y.dtype == np.float32


def test_container_round_trip():
    rng = np.random.default_rng(3)
    U = prune_magnitude(rng.standard_normal((5, 7, 4, 4)), 0.3).values
    P = sparse.SparseWinogradWeights.from_dense(U)
    assert P.nnz == np.count_nonzero(U) == int(U.size * 0.3)
    assert P.density == pytest.approx(0.3, abs=1 / U.size)
    assert P.indptr.shape == (16, 6) and P.indptr[-1, -1] == P.nnz
    np.testing.assert_array_equal(P.to_dense(), U)
    # row (s, k) holds U[k, :, a, b]'s nonzero channels in order
    s, k = 6, 3
    cols = P.indices[P.indptr[s, k]:P.indptr[s, k + 1]]
    np.testing.assert_array_equal(cols, np.flatnonzero(U[k, :, 1, 2]))
    # a mask keeps a subset; explicit zeros under the mask are not stored
    mask = np.zeros(U.shape, bool)
    mask[:2] = True
    Pm = sparse.SparseWinogradWeights.from_dense(U, mask=mask)
    np.testing.assert_array_equal(Pm.to_dense(), np.where(mask, U, 0))
    assert Pm.nnz == np.count_nonzero(U[:2])
    P32 = P.astype(np.float32)
    assert P32.values.dtype == np.float32 and P32.to_dense().dtype == np.float32
    assert P.astype(np.float64) is P


def test_container_is_reused_and_equals_dense_call():
    x, U, b = _case(4, 2, 6, 5, 9, 9, 4, 0.2)
    P = sparse.SparseWinogradWeights.from_dense(U)
    y1 = sparse.winograd_domain_conv2d(x, P, b, 1, m=4, backend="numba")
    y2 = sparse.winograd_domain_conv2d(x, U, b, 1, m=4, backend="numba")
    np.testing.assert_array_equal(y1, y2)
    assert_conv_close(y1, reference.winograd_domain_conv2d(x, U, b, 1, m=4), m=4)


@pytest.mark.parametrize("N", [1, 4])
@pytest.mark.parametrize("m", [2, 4])
def test_counted_multiplies_equal_the_model(N, m):
    x, U, b = _case(5, N, 6, 7, 10, 9, m, 0.2)
    th, tw = tile_counts(10, 9, m)
    y, mults = sparse.winograd_domain_conv2d(x, U, b, 1, m, backend="numba",
                                             return_multiplies=True)
    assert mults == exact_winograd_multiplies(U, n_tiles=N * th * tw)
    _, dense = sparse.winograd_domain_conv2d(x, U, b, 1, m, backend="numpy",
                                             return_multiplies=True)
    assert dense == exact_winograd_multiplies(np.ones_like(U), n_tiles=N * th * tw)


def test_bad_input_raises():
    x, U, _ = _case(6, 1, 3, 2, 6, 6, 2, 0.5)
    with pytest.raises(ValueError, match="backend"):
        sparse.winograd_domain_conv2d(x, U, backend="cuda")
    with pytest.raises(TypeError, match="floating"):
        sparse.winograd_domain_conv2d(x.astype(int), U)
    with pytest.raises(ValueError, match="input channels"):
        sparse.winograd_domain_conv2d(x[:, :2], U)
    with pytest.raises(ValueError, match="packed U"):
        sparse.winograd_domain_conv2d(x[:, :2], sparse.SparseWinogradWeights.from_dense(U))
    with pytest.raises(ValueError, match="mask"):
        sparse.SparseWinogradWeights.from_dense(U, mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="empty"):
        sparse.winograd_domain_conv2d(x[..., :2, :2], U, padding=0)
    with pytest.raises(ValueError, match="bias"):
        sparse.winograd_domain_conv2d(x, U, bias=np.ones(3))


def test_without_numba(monkeypatch):
    x, U, b = _case(7, 1, 3, 2, 6, 6, 2, 0.5)
    monkeypatch.setitem(sys.modules, "winolab._kernels", None)  # import now fails
    monkeypatch.setattr(sparse, "_FALLBACK_WARNED", False)
    with pytest.raises(ImportError, match=r"winolab\[fast\]"):
        sparse.winograd_domain_conv2d(x, U, backend="numba")
    with pytest.warns(RuntimeWarning, match=r"winolab\[fast\]"):
        y = sparse.winograd_domain_conv2d(x, U, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only one warning per process
        sparse.winograd_domain_conv2d(x, U, b)
    assert_conv_close(y, reference.winograd_domain_conv2d(x, U, b))


_NOJIT_SCRIPT = textwrap.dedent("""
    import numpy as np
    from winolab import reference, sparse
    from winolab.testing import assert_conv_close
    rng = np.random.default_rng(0)
    for m, relu, dtype, N, K in [(2, False, np.float32, 1, 3), (4, True, np.float64, 2, 2),
                                   (2, True, np.float64, 2, 2), (4, False, np.float32, 1, 3)]:
        x = rng.standard_normal((N, 2, 5, 6)).astype(dtype)
        U = reference.filter_transform(rng.standard_normal((K, 2, 3, 3)), m).astype(dtype)
        U[np.abs(U) < 0.5] = 0
        b = rng.standard_normal(K).astype(dtype)
        y, mults = sparse.winograd_domain_conv2d(x, U, b, 1, m, relu=relu, backend="numba",
                                                 return_multiplies=True)
        assert_conv_close(y, reference.winograd_domain_conv2d(x, U, b, 1, m, relu=relu), m=m)
        tiles = N * (-(-5 // m)) * (-(-6 // m))
        assert mults == np.count_nonzero(U) * tiles, mults
    print("ok")
""")


def test_kernels_as_plain_python():
    # NUMBA_DISABLE_JIT=1 runs _kernels.py as Python: coverage and a check of the loops alone
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _NOJIT_SCRIPT], env=env, cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------------- review: bad input
def _small(rng=None):
    rng = rng or np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 6, 6))
    return x, reference.filter_transform(rng.standard_normal((4, 3, 3, 3)))


def test_any_eight_byte_float_computes_in_float64():
    x, U = _small()
    y = sparse.winograd_domain_conv2d(x.astype(">f8"), U)
    assert y.dtype == np.float64
    assert_conv_close(y, reference.winograd_domain_conv2d(x, U), dtype=np.float64)


@pytest.mark.parametrize("relu", ["spatial", "winograd", 1, None])
def test_relu_must_be_a_bool(relu):
    x, U = _small()
    with pytest.raises(TypeError, match="relu must be True or False"):
        sparse.winograd_domain_conv2d(x, U, relu=relu)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_empty_batch(backend):
    x, U = _small()
    y, n = sparse.winograd_domain_conv2d(x[:0], U, backend=backend, return_multiplies=True)
    assert y.shape == (0, 4, 4, 4) and n == 0


def test_packed_weights_are_checked():
    _, U = _small()
    P = sparse.SparseWinogradWeights.from_dense(U)
    bad = {
        "indices must lie in": (P.indptr, P.indices + 1000, P.values, P.shape),
        "indptr must be integers": (P.indptr[:, :2], P.indices, P.values, P.shape),
        "shape must be": (P.indptr, P.indices, P.values, (4, 3, 4)),
        "same length": (P.indptr, P.indices[:-1], P.values, P.shape),
        "without going back": (P.indptr[::-1].copy(), P.indices, P.values, P.shape),
        "NaN or inf": (P.indptr, P.indices, np.full_like(P.values, np.nan), P.shape),
    }
    for message, args in bad.items():
        with pytest.raises(ValueError, match=message):
            sparse.SparseWinogradWeights(*args)
    with pytest.raises(TypeError, match="float32 or float64"):
        sparse.SparseWinogradWeights.from_dense(U, dtype=np.int64)


def test_weights_beyond_float32_are_refused_for_float32_input():
    x, U = _small()
    with pytest.raises(ValueError, match="beyond the range of float32"):
        sparse.winograd_domain_conv2d(x.astype(np.float32), U * 1e300)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("convention", ["lavin", "wincnn"])
def test_winograd_relu_follows_the_convention_of_its_reference_twin(backend, convention):
    """Both sign conventions of F(2, 3): the fast layer equals its twin under each, and the
    default is the reference's default (Liu et al.'s), not wincnn's."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    U = rng.standard_normal((4, 3, 4, 4))
    y = sparse.winograd_domain_conv2d(x, U, None, 1, 2, relu=True, backend=backend,
                                      convention=convention)
    want = reference.winograd_domain_conv2d(x, U, None, 1, 2, relu=True, convention=convention)
    assert_conv_close(y, want, m=2)
    other = "wincnn" if convention == "lavin" else "lavin"
    assert relative_error(
        y, reference.winograd_domain_conv2d(x, U, None, 1, 2, relu=True, convention=other)
    ) > 0.05
    default = sparse.winograd_domain_conv2d(x, U, None, 1, 2, relu=True, backend=backend)
    np.testing.assert_array_equal(
        default,
        sparse.winograd_domain_conv2d(x, U, None, 1, 2, relu=True, backend=backend,
                                      convention="lavin"),
    )


# ------------------------------------------------------------ issue 15: silently wrong inputs
def test_packed_weights_with_a_repeated_channel_are_refused():
    # a repeated channel in one row made the numba and numpy backends disagree
    U = np.zeros((2, 3, 4, 4))
    U[1, 1, 0, 3], U[1, 2, 0, 3], U[0, 0, 1, 1] = 2.0, 5.0, -1.0
    P = sparse.SparseWinogradWeights.from_dense(U)
    assert P.indices.tolist() == [1, 2, 0]
    dup = P.indices.copy()
    dup[1] = dup[0]
    with pytest.raises(ValueError, match=r"row \(s=3, k=1\) repeats channel 1"):
        sparse.SparseWinogradWeights(P.indptr, dup, P.values, P.shape)
    swapped = P.indices[[1, 0, 2]]
    with pytest.raises(ValueError, match="out of ascending order"):
        sparse.SparseWinogradWeights(P.indptr, swapped, P.values, P.shape)
    # the same channel in consecutive rows is fine
    U2 = np.zeros((2, 3, 4, 4))
    U2[0, 2, 0, 0], U2[1, 2, 0, 0], U2[0, 2, 0, 1] = 1.0, 2.0, 3.0
    P2 = sparse.SparseWinogradWeights.from_dense(U2)
    assert (P2.to_dense() == U2).all()


@pytest.mark.parametrize("bad", [{"threads": 0}, {"threads": -1}, {"threads": 1.5},
                                 {"threads": True}, {"N": 0}, {"target_tiles": 0}])
def test_plan_tasks_refuses_non_positive_sizes(bad):
    args = dict(N=2, th=4, tw=4, K=8, threads=2) | bad
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        sparse.plan_tasks(**args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m", [2, 4])
def test_float32_overflow_inside_the_transforms_raises(backend, m):
    # finite float32 input whose transform overflows: an error, never inf/nan output
    x = np.full((1, 2, 6, 6), 3e38, dtype=np.float32)
    U = np.ones((2, 2, m + 2, m + 2))
    with pytest.raises(OverflowError, match="overflowed float32"):
        sparse.winograd_domain_conv2d(x, U, padding=1, m=m, backend=backend)
    # the same data in float64 is fine and finite
    y = sparse.winograd_domain_conv2d(x.astype(np.float64), U, padding=1, m=m, backend=backend)
    assert np.isfinite(y).all()
