"""winolab.fill_in against independent oracles: brute-force counts, exact rationals, the
reference transforms, and the published densities (notes-papers.md §3.4,
notes-winograd-anchors.md §6.9-10)."""

from fractions import Fraction

import numpy as np
import pytest

from winolab import fill_in as fi
from winolab.derive import cook_toom, nested
from winolab.reference import filter_transform, input_transform

# --- density -------------------------------------------------------------------------------


def test_density_counts_nonzeros():
    a = np.array([[0.0, -0.0, 1e-300], [np.inf, 0.0, -2.0]])
    expected = sum(1 for v in a.ravel() if v != 0) / a.size
    assert fi.density(a) == expected == 0.5
    assert fi.density(np.array([True, False, False, False])) == 0.25
    assert isinstance(fi.density([1, 0]), float)


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), []])
def test_density_rejects_empty(bad):
    with pytest.raises(ValueError, match="empty"):
        fi.density(bad)


def test_density_rejects_non_numeric():
    with pytest.raises(TypeError, match="numeric"):
        fi.density(np.array(["a", "b"]))


# --- fill-in ---------------------------------------------------------------------------------


def random_pruned_kernels(seed, zeros=0.9, shape=(64, 64, 3, 3)):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape)
    return w * (rng.random(shape) >= zeros)


@pytest.mark.parametrize(("m", "published"), [(2, 0.32), (4, 0.40), (6, 0.45)])
@pytest.mark.parametrize("rule", ["rounding", "structural"])
def test_filter_fill_in_matches_published_demo(m, published, rule):
    # anchors §6.9: random 3x3 kernels with 90% spatial zeros
    assert abs(fi.filter_fill_in(random_pruned_kernels(0), m, rule=rule) - published) <= 0.02


def exact_U(g, m, points=None):
    """G g GT in exact rationals, for one kernel of small integers."""
    G = [[Fraction(int(v.p), int(v.q)) for v in row] for row in cook_toom(m, 3, points).G.tolist()]
    a = len(G)
    return [
        [
            sum(G[i][u] * int(g[u, v]) * G[j][v] for u in range(3) for v in range(3))
            for j in range(a)
        ]
        for i in range(a)
    ]


@pytest.mark.parametrize(("m", "points"), [(2, None), (4, None), (4, "onednn"), (6, None)])
def test_filter_fill_in_rounding_rule_counts_exact_zeros(m, points):
    # small integers cancel often; the rule must agree with exact arithmetic
    rng = np.random.default_rng(m)
    w = rng.integers(-2, 3, size=(6, 5, 3, 3)) * (rng.random((6, 5, 3, 3)) < 0.4)
    exact_nnz = sum(
        v != 0
        for k in range(6)
        for c in range(5)
        for row in exact_U(w[k, c], m, points)
        for v in row
    )
    alpha = m + 2
    got = fi.filter_fill_in(w.astype(float), m, points)
    assert got == exact_nnz / (6 * 5 * alpha * alpha)
    # and cancellations happened, so the structural count is larger
    assert fi.filter_fill_in(w.astype(float), m, points, rule="structural") > got


def test_filter_fill_in_structural_rule_ignores_cancellation():
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0] = [1.0, -1.0, 0.0]  # G row (1/2, 1/2, 1/2) cancels it
    U = filter_transform(w)
    # rows 0-2 of G (column 0 nonzero) times columns 0-2 of GT: 9 structural nonzeros, but
    # column 1 is (1/2)(1) + (1/2)(-1) = 0
    assert fi.filter_fill_in(w, rule="structural") == 9 / 16
    assert fi.filter_fill_in(w) == fi.density(U) == 6 / 16


@pytest.mark.parametrize("m", [2, 4])
def test_filter_fill_in_structural_equals_zeros_of_generic_values(m):
    w = random_pruned_kernels(5, zeros=0.7, shape=(8, 8, 3, 3))
    # replace every surviving tap by an unrelated generic value: no cancellations remain
    generic = np.where(w != 0, np.random.default_rng(6).uniform(1, 2, w.shape), 0.0)
    expected = fi.density(filter_transform(generic, m))
    assert fi.filter_fill_in(w, m, rule="structural") == expected


def test_filter_fill_in_rejects_bad_input():
    with pytest.raises(ValueError, match="rule"):
        fi.filter_fill_in(np.ones((1, 1, 3, 3)), rule="exact")
    with pytest.raises(ValueError, match=r"\(K, C, r, r\)"):
        fi.filter_fill_in(np.ones((3, 3)))
    with pytest.raises(TypeError, match="floating"):
        fi.filter_fill_in(np.ones((1, 1, 3, 3), dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        fi.filter_fill_in(np.full((1, 1, 3, 3), np.nan))


@pytest.mark.parametrize(("m", "published"), [(2, 0.94), (4, 1.00)])
def test_activation_density_spatial_relu_published(m, published):
    x = np.random.default_rng(1).standard_normal((4, 16, 32, 32))
    assert abs(fi.activation_density(x, m=m, relu="spatial") - published) <= 0.02


@pytest.mark.parametrize("m", [2, 4, 6])
def test_activation_density_winograd_relu_is_half(m):
    x = np.random.default_rng(2).standard_normal((4, 16, 32, 32))
    assert abs(fi.activation_density(x, m=m, relu="winograd") - 0.50) <= 0.02


@pytest.mark.parametrize(("m", "padding"), [(2, 1), (4, 0), (4, (1, 2))])
def test_activation_density_exact_on_integer_images(m, padding):
    # integer pixels (like uint8 images) and the integer BT of F(2,3), F(4,3) make the float64
    # transform exact, so the reference's plain float zeros are the exact zeros
    x = np.random.default_rng(m).integers(-3, 4, size=(2, 3, 9, 11)).astype(float)
    V = input_transform(np.maximum(x, 0), 3, m, padding)
    assert fi.activation_density(x, m=m, padding=padding) == np.count_nonzero(V) / V.size
    V = input_transform(x, 3, m, padding)
    assert fi.activation_density(x, m=m, padding=padding, relu="winograd") == (
        np.count_nonzero(V > 0) / V.size
    )


def test_activation_density_rounding_rule_counts_exact_zeros():
    # points with thirds: BT has 8/3, 11/3, ... so float64 rounds, yet the rule must find the
    # entries that are zero in exact arithmetic
    pts = ("0", "1", "-1", "1/3", "-3")
    BT = [[Fraction(int(v.p), int(v.q)) for v in row] for row in cook_toom(4, 3, pts).BT.tolist()]
    x = np.random.default_rng(12).integers(-2, 3, size=(1, 2, 8, 8)).astype(float)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for relu in ("spatial", "winograd"):
        d_all = np.maximum(xp, 0) if relu == "spatial" else xp
        nnz = total = 0
        for c in range(2):
            for i0 in range(0, 10 - 6 + 1, 4):  # 8x8 output with padding 1: 2 x 2 tiles
                for j0 in range(0, 10 - 6 + 1, 4):
                    d = [[int(v) for v in row] for row in d_all[0, c, i0 : i0 + 6, j0 : j0 + 6]]
                    for a in range(6):
                        for b in range(6):
                            v = sum(
                                BT[a][u] * d[u][q] * BT[b][q] for u in range(6) for q in range(6)
                            )
                            nnz += v > 0 if relu == "winograd" else v != 0
                            total += 1
        assert fi.activation_density(x, m=4, points=pts, relu=relu) == nnz / total


def test_activation_density_rejects_bad_input():
    x = np.ones((1, 1, 4, 4))
    with pytest.raises(ValueError, match="relu"):
        fi.activation_density(x, relu="before")
    with pytest.raises(ValueError, match="empty"):
        fi.activation_density(x, r=7, padding=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fi.activation_density(np.ones((4, 4)))


# --- the support of G (x) G -----------------------------------------------------------------


@pytest.mark.parametrize(("m", "r", "points"), [(2, 3, None), (4, 3, None), (4, 3, "onednn")])
def test_winograd_support_is_the_pattern_of_G_kron_G(m, r, points):
    G2 = nested(cook_toom(m, r, points)).G2
    expected = np.array([[v != 0 for v in row] for row in G2.tolist()])
    alpha = m + r - 1
    S = fi.winograd_support(m, r, points)
    np.testing.assert_array_equal(S.reshape(alpha * alpha, r * r), expected)


def test_winograd_support_f43_rows():
    S = fi.winograd_support(4, 3)
    # rows 0 and 5 of G have one nonzero, rows 1-4 three (notes-papers.md §3.3)
    per_row = S[:, 0].sum(axis=(1, 2))  # G row 0 has one tap, so (a, 0) has as many as row a
    assert per_row.tolist() == [1, 3, 3, 3, 3, 1]


def test_winograd_relu_activation_density_depends_on_the_convention():
    x = np.random.default_rng(4).standard_normal((2, 3, 12, 12)) + 0.3
    lavin = fi.activation_density(x, relu="winograd")
    wincnn = fi.activation_density(x, relu="winograd", convention="wincnn")
    assert lavin == fi.activation_density(x, relu="winograd", convention="lavin")
    assert abs(lavin - wincnn) > 0.005
    # with the ReLU in space the basis does not matter
    assert fi.activation_density(x, relu="spatial") == fi.activation_density(
        x, relu="spatial", convention="wincnn")


def test_old_home_still_gives_the_measures():
    # winolab.sparsity held them before; its pruning rules use density and the support
    from winolab import sparsity

    for name in fi.__all__:
        assert getattr(sparsity, name) is getattr(fi, name)
