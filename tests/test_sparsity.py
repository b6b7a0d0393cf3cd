"""winolab.sparsity's pruning rules against independent oracles: brute-force loops, exact
rationals, torch's pruning, the reference convolution, and the published numbers
(notes-papers.md §3.4, notes-winograd-anchors.md §6.9-10). Fill-in: test_fill_in.py."""

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from winolab import fill_in as fi
from winolab import sparsity as sp
from winolab.derive import cook_toom, nested
from winolab.reference import filter_transform, winograd_domain_conv2d
from winolab.testing import relative_error, tolerance

SETTINGS = settings(deadline=None, max_examples=60)


def top_k_oracle(scores, k, allowed=None):
    """The k largest scores, ties to the lower index, by Python's sort on (-score, index)."""
    flat = list(np.ravel(scores))
    ok = [True] * len(flat) if allowed is None else list(np.ravel(allowed))
    ranked = sorted((i for i in range(len(flat)) if ok[i]), key=lambda i: (-flat[i], i))
    keep = np.zeros(len(flat), dtype=bool)
    keep[ranked[:k]] = True
    return keep.reshape(np.shape(scores))


# --- prune_magnitude -------------------------------------------------------------------------

# small integer magnitudes make ties common, so the tie rule is exercised
tie_arrays = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
    elements=st.integers(-3, 3).map(float),
)


@SETTINGS
@given(a=tie_arrays, d=st.floats(0.0, 1.0))
def test_prune_magnitude_keeps_exact_top_k(a, d):
    p = sp.prune_magnitude(a, d)
    k = int(a.size * d)
    assert p.mask.dtype == bool and p.mask.shape == a.shape
    assert np.count_nonzero(p.mask) == k
    np.testing.assert_array_equal(p.mask, top_k_oracle(np.abs(a), k))
    np.testing.assert_array_equal(p.values, np.where(p.mask, a, 0.0))


@SETTINGS
@given(data=st.data(), a=tie_arrays)
def test_prune_magnitude_with_mask_only_shrinks(data, a):
    old = data.draw(hnp.arrays(bool, a.shape))
    n_old = int(old.sum())
    k = data.draw(st.integers(0, n_old))
    d = k / a.size
    p = sp.prune_magnitude(a, d, mask=old)
    k = int(a.size * d)  # what the rule keeps (k / size * size may round down)
    assert np.count_nonzero(p.mask) == k
    assert not (p.mask & ~old).any(), "a new mask must lie inside the old one"
    np.testing.assert_array_equal(p.mask, top_k_oracle(np.abs(a * old), k, allowed=old))


def test_prune_magnitude_truncates_like_liu():
    assert np.count_nonzero(sp.prune_magnitude(np.arange(1.0, 101.0), 0.29).mask) == 28


def test_prune_magnitude_tie_rule_is_index_order():
    a = np.array([[1.0, -2.0, 2.0], [2.0, 0.5, -2.0]])
    # four entries tie at |2|; the two with the lowest C-order index win
    assert sp.prune_magnitude(a, 2 / 6).mask.tolist() == [[False, True, True], [False] * 3]


def test_prune_magnitude_matches_torch_l1_unstructured():
    torch = pytest.importorskip("torch")
    from torch.nn.utils import prune

    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 4, 4, 4))  # tie-free
    for d in (0.7, 0.35, 0.1):
        layer = torch.nn.Linear(1, 1)
        layer.weight = torch.nn.Parameter(torch.from_numpy(a.copy()))
        n_prune = a.size - int(a.size * d)
        prune.l1_unstructured(layer, "weight", amount=n_prune)
        np.testing.assert_array_equal(
            sp.prune_magnitude(a, d).mask, layer.weight_mask.numpy().astype(bool)
        )


@pytest.mark.parametrize("d", [-0.1, 1.5, float("nan"), True, "0.5", None])
def test_prune_magnitude_rejects_bad_density(d):
    with pytest.raises(ValueError, match=r"density must be a number in \[0, 1\]"):
        sp.prune_magnitude(np.ones(4), d)


def test_prune_magnitude_rejects_bad_input_and_masks():
    with pytest.raises(TypeError, match="real numeric"):
        sp.prune_magnitude(np.array([1 + 2j]), 0.5)
    with pytest.raises(TypeError, match="real numeric"):
        sp.prune_magnitude(np.zeros(0), 0.5)
    with pytest.raises(ValueError, match="shape"):
        sp.prune_magnitude(np.ones(4), 0.5, mask=np.ones(3, dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        sp.prune_magnitude(np.ones(4), 0.5, mask=np.array([2, 0, 1, 1]))
    with pytest.raises(ValueError, match="NaN"):
        sp.prune_magnitude(np.array([1.0, np.nan]), 0.5)
    with pytest.raises(ValueError, match="masks only shrink"):
        sp.prune_magnitude(np.ones(4), 0.75, mask=np.array([True, False, True, False]))


# --- Yu et al. -------------------------------------------------------------------------------


def yu_mask_oracle(w, target, m):
    """Brute force: try every threshold, loop over kernels and positions, keep the best."""
    S = fi.winograd_support(m, 3)
    alpha = m + 2
    K, C = w.shape[:2]
    taps = [[np.argwhere(S[a, b]) for b in range(alpha)] for a in range(alpha)]
    peaks = sorted(
        {
            max(abs(w[k, c, u, v]) for u, v in taps[a][b])
            for k in range(K)
            for c in range(C)
            for a in range(alpha)
            for b in range(alpha)
        }
    )
    best = None
    for T in [-1.0, *peaks]:
        mask = np.ones(w.shape, dtype=bool)
        for k in range(K):
            for c in range(C):
                for a in range(alpha):
                    for b in range(alpha):
                        if max(abs(w[k, c, u, v]) for u, v in taps[a][b]) <= T:
                            for u, v in taps[a][b]:
                                mask[k, c, u, v] = False
        d = fi.density(filter_transform(w * mask, m))
        if d <= target and (best is None or d > best[0]):
            best = (d, mask)
    return best


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("target", [0.0, 0.3, 0.55, 0.8, 1.0])
def test_structured_spatial_mask_matches_brute_force(m, target):
    w = np.random.default_rng(7).standard_normal((3, 2, 3, 3))
    w[0, 1, 2] = 0.0  # a kernel that starts partly pruned
    mask = sp.structured_spatial_mask(w, target, m)
    d_best, mask_best = yu_mask_oracle(w, target, m)
    assert mask.dtype == bool and mask.shape == w.shape
    assert fi.density(filter_transform(w * mask, m)) == d_best <= target
    # among masks of equal density the smallest threshold (fewest taps cut) is the one returned
    np.testing.assert_array_equal(mask, mask_best)


def test_structured_spatial_mask_layer_reaches_target_closely():
    w = np.random.default_rng(8).standard_normal((32, 16, 3, 3))
    for target in (0.3, 0.5, 0.7):
        d = fi.filter_fill_in(w * sp.structured_spatial_mask(w, target), m=4)
        assert target - 0.01 <= d <= target


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), t1=st.floats(0, 1), t2=st.floats(0, 1))
def test_structured_spatial_mask_is_monotone_in_the_target(seed, t1, t2):
    lo, hi = sorted((t1, t2))
    w = np.random.default_rng(seed).standard_normal((4, 3, 3, 3))
    m_lo, m_hi = sp.structured_spatial_mask(w, lo), sp.structured_spatial_mask(w, hi)
    assert not (m_lo & ~m_hi).any(), "a lower target only removes more taps"
    assert fi.filter_fill_in(w * m_lo, 4) <= lo and fi.filter_fill_in(w * m_hi, 4) <= hi


def test_structured_spatial_mask_rejects_bad_input():
    with pytest.raises(ValueError, match="target_density"):
        sp.structured_spatial_mask(np.ones((1, 1, 3, 3)), 1.2)
    with pytest.raises(ValueError, match="square"):
        sp.structured_spatial_mask(np.ones((1, 1, 3, 2)), 0.5)


@pytest.mark.parametrize(
    ("m", "r", "f2"), [(4, 3, [42, 136, 136, 850, 850, 42]), (2, 3, [2, 4, 4, 2])]
)
def test_importance_factors_published_values(m, r, f2):
    F = sp.importance_factors(m, r, normalise=False)
    np.testing.assert_array_equal(np.diag(F), f2)  # F_ii = f_i^2, exactly
    Fhat = sp.importance_factors(m, r)
    assert Fhat.min() == 1.0 and Fhat.max() == max(f2) / min(f2)


# Yu et al.'s stored tables (jiecaoyu/winograd, WinogradPruning/utils/para.py)
YU_F43 = np.array([
    [42.0, 75.57777451, 75.57777451, 188.94443628, 188.94443628, 42.0],
    [75.57777451, 136.0, 136.0, 340.0, 340.0, 75.57777451],
    [75.57777451, 136.0, 136.0, 340.0, 340.0, 75.57777451],
    [188.94443628, 340.0, 340.0, 850.0, 850.0, 188.94443628],
    [188.94443628, 340.0, 340.0, 850.0, 850.0, 188.94443628],
    [42.0, 75.57777451, 75.57777451, 188.94443628, 188.94443628, 42.0],
])  # fmt: skip
YU_F45_DIAG = [57.125, 160.5, 160.5, 1115.625, 1115.625, 4462.5, 4462.5, 57.125]


def test_importance_factors_match_yu_tables():
    F = sp.importance_factors(4, 3, normalise=False)
    assert (F[0, 0], F[1, 1], F[1, 3], F[3, 3]) == (42.0, 136.0, 340.0, 850.0)
    np.testing.assert_allclose(F, YU_F43, rtol=1e-9)  # the table has 10 digits
    # Yu's F(4x4, 5x5) puts a factor 8 into the AT columns of the points +-1/2 (and 1/8 into
    # G); F scales with AT's columns, so it matches ours after that rescaling
    s = np.array([1, 1, 1, 1, 1, 8, 8, 1.0])
    F45 = sp.importance_factors(4, 5, normalise=False) * np.outer(s, s)
    np.testing.assert_allclose(np.diag(F45), YU_F45_DIAG, rtol=1e-12)
    np.testing.assert_allclose((F45[0, 5], F45[3, 5]), (504.89633837, 2231.25), rtol=1e-9)


def importance_oracle(m, r):
    """F_ij^2 = sum of squared coefficients from input pixels to outputs through U_ij alone,
    read off the reference Winograd layer one basis input at a time."""
    alpha = m + r - 1
    F2 = np.zeros((alpha, alpha))
    for i in range(alpha):
        for j in range(alpha):
            U = np.zeros((1, 1, alpha, alpha))
            U[0, 0, i, j] = 1.0
            for p in range(alpha * alpha):
                x = np.zeros((1, 1, alpha * alpha))
                x[0, 0, p] = 1.0
                y = winograd_domain_conv2d(x.reshape(1, 1, alpha, alpha), U, m=m)
                F2[i, j] += np.sum(y**2)
    return np.sqrt(F2)


@pytest.mark.parametrize(("m", "r"), [(2, 3), (4, 3), (3, 2)])
def test_importance_factors_equal_coefficient_norms_of_the_layer(m, r):
    np.testing.assert_allclose(
        sp.importance_factors(m, r, normalise=False),
        importance_oracle(m, r),
        rtol=tolerance(m, dtype=np.float64, r=r),
    )


def test_prune_importance_is_top_k_of_weighted_magnitude():
    rng = np.random.default_rng(9)
    U = rng.standard_normal((4, 3, 6, 6))
    Fhat = importance_oracle(4, 3)
    Fhat /= Fhat.min()
    for d in (0.1, 0.37, 0.9):
        p = sp.prune_importance(U, d, m=4)
        np.testing.assert_array_equal(p.mask, top_k_oracle(np.abs(U) * Fhat, int(U.size * d)))
        np.testing.assert_array_equal(p.values, np.where(p.mask, U, 0.0))
    old = p.mask
    q = sp.prune_importance(U, 0.2, m=4, mask=old)
    assert not (q.mask & ~old).any() and q.mask.sum() == int(U.size * 0.2)


def test_prune_importance_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        sp.prune_importance(np.ones((1, 1, 6, 5)), 0.5)
    with pytest.raises(ValueError, match=r"\(K, C, alpha, alpha\)"):
        sp.prune_importance(np.ones((6, 6)), 0.5)
    with pytest.raises(ValueError, match=r"density must be"):
        sp.prune_importance(np.ones((1, 1, 6, 6)), 2.0)


# --- Li et al. -------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "r"), [(2, 3), (4, 3), (4, 5)])
def test_position_threshold_scale_is_inverse_row_norm_of_A_kron_A(m, r):
    AT = cook_toom(m, r).AT
    AkA = sympy.kronecker_product(AT.T, AT.T)  # (alpha^2, m^2)
    expected = [1 / sympy.sqrt(sum(v**2 for v in AkA.row(t))) for t in range(AkA.rows)]
    alpha = m + r - 1
    np.testing.assert_allclose(
        sp.position_threshold_scale(m, r).ravel(),
        np.array([float(v) for v in expected]),
        rtol=tolerance(m, dtype=np.float64, r=r),
    )
    assert sp.position_threshold_scale(m, r).shape == (alpha, alpha)


def test_prune_native_brute_force_and_inclusive_threshold():
    rng = np.random.default_rng(10)
    U = rng.standard_normal((3, 2, 6, 6)) * 0.3
    scale = sp.position_threshold_scale(4, 3)
    U[0, 0, 2, 3] = 0.1 * scale[2, 3]  # exactly at the threshold: pruned (SkimCaffe's <=)
    p = sp.prune_native(U, 0.1, m=4)
    for k, c, a, b in np.ndindex(U.shape):
        kept = abs(U[k, c, a, b]) > 0.1 * scale[a, b]
        assert p.mask[k, c, a, b] == kept
        assert p.values[k, c, a, b] == (U[k, c, a, b] if kept else 0.0)
    assert not p.mask[0, 0, 2, 3]
    assert sp.prune_native(U, 0.0, m=4).mask.all()


@pytest.mark.parametrize("t", [-1.0, float("inf"), float("nan"), True, "0.1"])
def test_prune_native_rejects_bad_threshold(t):
    with pytest.raises(ValueError, match="threshold"):
        sp.prune_native(np.ones((1, 1, 6, 6)), t)


# --- projection back to r x r ----------------------------------------------------------------


@pytest.mark.parametrize(("m", "points"), [(2, None), (4, None), (4, "onednn"), (6, None)])
def test_projection_round_trips_spatial_kernels(m, points):
    g = np.random.default_rng(m).standard_normal((4, 3, 3, 3))
    p = sp.project_to_spatial(filter_transform(g, m, points), m, points)
    assert relative_error(p.w, g) <= tolerance(m, points, dtype=np.float64)
    assert p.residual.shape == (4, 3)
    assert p.residual.max() <= tolerance(m, points, dtype=np.float64)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_G_kron_G_has_full_column_rank(m):
    G2 = nested(cook_toom(m, 3)).G2
    assert G2.rank() == 9


def test_projection_matches_exact_least_squares_and_pruning_leaves_a_residual():
    m = 2
    U = filter_transform(np.random.default_rng(11).standard_normal((2, 2, 3, 3)), m)
    pruned = sp.prune_magnitude(U, 0.4).values
    p = sp.project_to_spatial(pruned, m)
    assert (p.residual > 0.05).all(), "a pruned U is not G g GT of any 3x3 g"
    S = nested(cook_toom(m, 3)).G2
    for k, c in np.ndindex(2, 2):
        u = sympy.Matrix([sympy.Rational(v) for v in pruned[k, c].ravel()])  # exact floats
        g = (S.T * S).inv() * S.T * u  # normal equations, exactly
        exact_res = float(sympy.sqrt(((u - S * g).T * (u - S * g))[0]) / sympy.sqrt((u.T * u)[0]))
        tol = tolerance(m, dtype=np.float64)
        assert relative_error(p.w[k, c].ravel(), np.array([float(v) for v in g])) <= tol
        assert abs(p.residual[k, c] - exact_res) <= tol * exact_res
    # the residual is what the reference filter transform of w leaves
    back = filter_transform(p.w, m)
    res = np.linalg.norm((pruned - back).reshape(4, -1), axis=1)
    res /= np.linalg.norm(pruned.reshape(4, -1), axis=1)
    np.testing.assert_allclose(p.residual.ravel(), res, rtol=tolerance(m, dtype=np.float64))


def test_projection_of_zero_kernel():
    p = sp.project_to_spatial(np.zeros((1, 2, 6, 6)), m=4)
    assert (p.w == 0).all() and (p.residual == 0).all()


def test_projection_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        sp.project_to_spatial(np.ones((1, 1, 4, 4)), m=6)
    with pytest.raises(TypeError, match="floating"):
        sp.project_to_spatial(np.ones((1, 1, 4, 4), dtype=np.int32))
    with pytest.raises(TypeError, match="numeric"):
        sp.project_to_spatial([[1.0], [1.0, 2.0]])
    with pytest.raises(TypeError, match="m"):
        sp.project_to_spatial(np.ones((1, 1, 4, 4)), m=2.0)


def test_prune_magnitude_ranks_the_most_negative_integer_first():
    # abs(-128) overflows in int8; the ranking must still see magnitude 128
    p = sp.prune_magnitude(np.array([-128, 5, 1, 2], np.int8), 0.25)
    assert p.mask.tolist() == [True, False, False, False]


def test_importance_factors_of_5x5_layers_follow_the_scaled_convention():
    """Yu et al.'s F(4x4, 5x5) (SkimCaffe's matrices, convention "nnpack") has AT D and
    D^-1 G with D = diag(1, 1, 1, 1, 1, 8, 8, 1): F scales by d_i d_j, the score |U| F does not,
    so the same kernels are pruned the same way while F and U differ by those factors."""
    d = np.array([1, 1, 1, 1, 1, 8, 8, 1], dtype=float)
    F_plain = sp.importance_factors(4, 5, normalise=False, convention="wincnn")
    F_yu = sp.importance_factors(4, 5, normalise=False, convention="nnpack")
    np.testing.assert_allclose(F_yu, F_plain * np.outer(d, d), rtol=1e-14)
    assert not np.allclose(F_yu, F_plain)
    # signs do not enter F: Liu et al.'s default equals wincnn's
    np.testing.assert_array_equal(sp.importance_factors(4, 5, normalise=False), F_plain)
    w = np.random.default_rng(3).standard_normal((3, 2, 5, 5))
    U_yu = filter_transform(w, 4, convention="nnpack")
    U = filter_transform(w, 4, convention="wincnn")
    np.testing.assert_allclose(U_yu * np.outer(d, d), U, rtol=1e-12, atol=1e-12)
    keep_yu = sp.prune_importance(U_yu, 0.3, m=4, convention="nnpack").mask
    keep = sp.prune_importance(U, 0.3, m=4, convention="wincnn").mask
    np.testing.assert_array_equal(keep_yu, keep)
    # mixing conventions (U in one, F in the other) prunes other weights
    assert not np.array_equal(sp.prune_importance(U_yu, 0.3, m=4, convention="wincnn").mask, keep)
    # Li et al.'s per-position thresholds scale by 1 / (d_a d_b) the same way
    np.testing.assert_allclose(
        sp.position_threshold_scale(4, 5, convention="nnpack") * np.outer(d, d),
        sp.position_threshold_scale(4, 5, convention="wincnn"), rtol=1e-14,
    )
