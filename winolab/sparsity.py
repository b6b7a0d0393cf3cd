"""The pruning rules of the three papers, in the spatial and the Winograd domain (book: ch. 6, 8).

Zeros do not survive the transforms (:mod:`winolab.fill_in`, book: ch. 5), and the three papers
answer this differently; each answer is a function here:

* Liu et al. 2018 prune ``U`` itself by magnitude (:func:`prune_magnitude`) and move the ReLU
  after the input transform (measured by :func:`winolab.fill_in.activation_density` with
  ``relu="winograd"``);
* Li et al. 2017 prune ``U`` with a threshold scaled per Winograd position
  (:func:`position_threshold_scale`, :func:`prune_native`);
* Yu et al. 2019 prune spatially in a pattern that carries into the Winograd domain
  (:func:`structured_spatial_mask`, built on :func:`winolab.fill_in.winograd_support`), then
  prune ``U`` weighted by an importance factor matrix (:func:`importance_factors`,
  :func:`prune_importance`).

A pruned ``U`` is in general no longer ``G g GT`` of any ``r x r`` kernel
(:func:`project_to_spatial` measures how far it is).

The fill-in measures ``density``, ``filter_fill_in``, ``activation_density`` and
``winograd_support`` used to live here and still import from ``winolab.sparsity`` (code written
against the old home, ``winolab.torch.pruning`` among it, names them); their home is
:mod:`winolab.fill_in`.

>>> p = prune_magnitude(np.arange(10.0), 0.3)
>>> p.values.tolist(), density(p.values)
([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.0, 8.0, 9.0], 0.3)
"""

from __future__ import annotations

from functools import lru_cache
from numbers import Real
from typing import NamedTuple

import numpy as np
import sympy

from winolab._validate import check_m, check_spatial_weights, check_winograd_weights
from winolab.derive import (
    DEFAULT_CONVENTION,
    Convention,
    PointSpec,
    check_convention,
    cook_toom,
    resolve_points,
)
from winolab.fill_in import _flat_support, density
from winolab.fill_in import activation_density as activation_density  # the old home's names
from winolab.fill_in import filter_fill_in as filter_fill_in
from winolab.fill_in import winograd_support as winograd_support
from winolab.transforms import transforms

__all__ = [
    "Projection",
    "Pruned",
    "importance_factors",
    "position_threshold_scale",
    "project_to_spatial",
    "prune_importance",
    "prune_magnitude",
    "prune_native",
    "structured_spatial_mask",
]


class Pruned(NamedTuple):
    """A pruned array and its mask: ``values = a * mask``, ``mask`` is True where kept."""

    values: np.ndarray
    mask: np.ndarray


class Projection(NamedTuple):
    """Least-squares spatial kernels ``w`` of some ``U`` and the relative residual per (k, c)."""

    w: np.ndarray
    residual: np.ndarray


def _check_density(d, name: str = "density") -> float:
    if isinstance(d, bool) or not isinstance(d, Real) or not 0.0 <= float(d) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1] (fraction kept), got {d!r}")
    return float(d)


def _top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> np.ndarray:
    """Boolean mask of the ``k`` largest scores; ties go to the lower C-order index."""
    flat = scores.ravel()
    if allowed is not None:
        n_allowed = int(np.count_nonzero(allowed))
        if k > n_allowed:
            raise ValueError(
                f"cannot keep {k} entries: the existing mask keeps only {n_allowed}, "
                f"and masks only shrink; ask for density <= {n_allowed / flat.size:.6g}"
            )
        # entries outside the mask rank after every entry inside it
        flat = np.where(allowed.ravel(), flat, -1.0)
    # a stable sort of -score keeps equal scores in index order
    order = np.argsort(-flat, kind="stable")
    keep = np.zeros(flat.size, dtype=bool)
    keep[order[:k]] = True
    return keep.reshape(scores.shape)


def _check_mask(mask, shape: tuple) -> np.ndarray | None:
    if mask is None:
        return None
    mk = np.asarray(mask)
    if mk.shape != shape:
        raise ValueError(f"mask must have the shape of the array, {shape}, got {mk.shape}")
    if mk.dtype != bool and not (mk.dtype.kind in "iuf" and np.isin(mk, (0, 1)).all()):
        raise TypeError(f"mask must be boolean (or 0/1), got dtype {mk.dtype}")
    return mk.astype(bool)


def _prune_by_score(a: np.ndarray, scores: np.ndarray, dens, mask) -> Pruned:
    dens = _check_density(dens)
    allowed = _check_mask(mask, a.shape)
    # Liu et al.'s rule: keep the int(size * density) largest scores
    keep = _top_k(scores, int(a.size * dens), allowed)
    return Pruned(np.where(keep, a, 0).astype(a.dtype), keep)


def prune_magnitude(a, density: float, mask=None) -> Pruned:
    """Keep the ``int(a.size * density)`` entries of largest ``|a|``, zero the rest.

    This is Liu et al.'s pruning (``prune_script.py``): one ranking over the whole array (a
    layer); like Liu's code it truncates the float ``a.size * density``, so ``0.29`` of 100
    entries keeps 28 (``0.29 * 100 == 28.999999999999996``). Ties are broken deterministically:
    a stable sort of ``-|a|`` keeps equal magnitudes in C (row-major) index order, so the
    earlier index is kept. With ``mask`` (Liu's ``--existing_mask``) only entries inside the
    mask are ranked, so masks only shrink.

    Parameters
    ----------
    a : array
        Numeric array of any shape (spatial ``w``, Winograd-domain ``U``, ...).
    density : float in [0, 1]
        Fraction of entries to keep.
    mask : bool array of ``a``'s shape, optional
        Existing mask; raises if it keeps fewer than ``int(a.size * density)`` entries.

    Returns
    -------
    Pruned
        ``values`` (``a`` with pruned entries zeroed, same dtype) and boolean ``mask``.

    Examples
    --------
    >>> p = prune_magnitude(np.array([0.5, -3.0, 1.0, 2.0]), 0.5)
    >>> p.values, p.mask
    (array([ 0., -3.,  0.,  2.]), array([False,  True, False,  True]))
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise TypeError(f"a must be a non-empty real numeric array, got {arr.dtype} {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("a contains NaN, which has no magnitude to rank")
    # float64 first: abs of the most negative integer overflows in its own dtype
    return _prune_by_score(arr, np.abs(arr.astype(np.float64)), density, mask)


def structured_spatial_mask(
    w, target_density: float, m: int = 4, points: PointSpec = None
) -> np.ndarray:
    """Yu et al.'s structured spatial mask: spatial zeros that carry into the Winograd domain.

    For every kernel ``g`` and Winograd position ``t`` with taps ``N_t``
    (:func:`~winolab.fill_in.winograd_support`): if ``max_{j in N_t} |g_j| <= T``, zero every
    tap in ``N_t``, which makes ``U_t`` exactly zero. The mask keeps the taps no position
    zeroed. One threshold ``T`` serves the whole array (a layer), found by bisection over the
    finitely many values at which the result changes (the maxima ``max_{N_t} |g_j|``): the
    returned mask has the largest structural Winograd density
    (``filter_fill_in(w * mask, m, rule="structural")``) that is ``<= target_density``. The
    search is exact; the density can fall short of the target by one step of that staircase
    (Yu's code bisects on a continuous T with tolerance 1e-4 instead).

    Parameters
    ----------
    w : array, shape (K, C, r, r)
    target_density : float in [0, 1]
        Wanted fraction of nonzero entries of ``U = G (g * mask) GT``.
    m : int
        Output tile size (Yu et al. use F(4x4, 3x3)).
    points : str or sequence, optional

    Returns
    -------
    numpy.ndarray of bool, shape (K, C, r, r)
        True where the tap is kept.

    Examples
    --------
    >>> w = np.random.default_rng(0).standard_normal((8, 8, 3, 3))
    >>> mask = structured_spatial_mask(w, 0.5, m=4)
    >>> round(filter_fill_in(w * mask, m=4), 3), round(density(mask), 3)
    (0.493, 0.292)
    """
    target = _check_density(target_density, "target_density")
    w = check_spatial_weights(w, None)
    m = check_m(m)
    K, C, r, _ = w.shape
    S = _flat_support(m, r, points)  # (alpha^2, r^2)
    g = np.abs(w).reshape(K * C, r * r)
    # peak[kc, t] = max_{j in N_t} |g_j|   (every row of G has a nonzero, so N_t is not empty)
    peak = np.stack([g[:, S[t]].max(axis=1) for t in range(S.shape[0])], axis=1)
    # 0/1 matrix products count taps exactly in float64 (and run on BLAS)
    S01, nz_taps = S.astype(np.float64), (g != 0)

    def mask_for(T: float) -> np.ndarray:
        # zeroed[kc, j]: some position t with peak <= T has j in N_t
        return (peak <= T).astype(np.float64) @ S01 == 0

    def wino_density(keep: np.ndarray) -> float:
        return density((keep & nz_taps).astype(np.float64) @ S01.T)

    candidates = np.unique(peak)  # thresholds where the mask changes, ascending
    if wino_density(mask_for(-1.0)) <= target:
        return np.ones(w.shape, dtype=bool)
    # density(T) does not increase with T; find the first candidate reaching the target
    lo, hi = 0, len(candidates) - 1  # T = max(peak) zeroes everything, density 0
    while lo < hi:
        mid = (lo + hi) // 2
        if wino_density(mask_for(candidates[mid])) <= target:
            hi = mid
        else:
            lo = mid + 1
    return mask_for(candidates[lo]).reshape(w.shape)


@lru_cache(maxsize=64)
def _importance_exact(
    m: int, r: int, points: tuple, normalise: bool, convention: str
) -> np.ndarray:
    ct = cook_toom(m, r, points, convention=convention)
    # f_i^2 = ||row i of BT||^2 ||column i of AT||^2, exact rationals
    f2 = [
        sum(v**2 for v in ct.BT.row(i)) * sum(v**2 for v in ct.AT.col(i)) for i in range(ct.alpha)
    ]
    # F = f f^T, F_ij = sqrt(f_i^2 f_j^2), rounded once from the exact value
    F = [[sympy.sqrt(a * b) for b in f2] for a in f2]
    if normalise:
        low = min(min(row) for row in F)
        F = [[v / low for v in row] for row in F]
    out = np.array([[float(v) for v in row] for row in F])
    out.setflags(write=False)
    return out


def importance_factors(
    m: int = 4,
    r: int = 3,
    points: PointSpec = None,
    normalise: bool = True,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """Yu et al.'s importance factor matrix ``F = f f^T``, ``f_i = ||row_i(BT)|| ||col_i(AT)||``.

    ``F_ij^2`` is the sum of the squared coefficients with which ``U_ij`` links every input
    pixel to every output pixel of ``Y = AT [U * (BT d B)] A``: how much one Winograd-domain
    weight matters. Computed exactly from the sympy matrices (``fractions_in="G"``, the
    convention of the papers) and rounded once. ``normalise=True`` divides by ``min F``, as
    Yu's code does. F depends on how the scale is split between AT, G and BT (signs do not
    matter): every convention matches Yu's stored F(4x4, 3x3) table; for F(4x4, 5x5) his
    matrices carry a factor 8 in the AT columns of the points +-1/2, which scales those rows
    and columns of F by 8: ``convention="nnpack"`` gives his F, the default does not.

    >>> F = importance_factors(4, 3, normalise=False)
    >>> F[0, 0], F[1, 1], F[1, 3], F[3, 3]
    (np.float64(42.0), np.float64(136.0), np.float64(340.0), np.float64(850.0))
    >>> float(importance_factors(2, 3).max())
    2.0
    >>> F5 = importance_factors(4, 5, normalise=False, convention="nnpack")
    >>> float(F5[5, 5] / importance_factors(4, 5, normalise=False)[5, 5])
    64.0
    """
    m = check_m(m)
    pts = resolve_points(m, r, points)
    return _importance_exact(m, r, pts, bool(normalise), check_convention(convention)).copy()


def _winograd_weights(U, m: int) -> tuple[np.ndarray, int]:
    try:
        channels = np.shape(U)[1]
    except (ValueError, IndexError):
        channels = -1  # ragged or too few dimensions: the check below says what is wrong
    m = check_m(m)
    U = check_winograd_weights(U, channels, m)
    return U, U.shape[-1] - m + 1


def prune_importance(
    U,
    density: float,
    m: int = 4,
    points: PointSpec = None,
    mask=None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> Pruned:
    """Yu et al.'s Winograd-domain pruning: keep the largest ``|U| * F_hat``.

    Pruning ``|U_ij| F_hat_ij < T`` with one threshold per layer is keeping the
    ``int(U.size * density)`` largest scores ``|U| * F_hat`` (:func:`importance_factors`,
    normalised), ties broken as in :func:`prune_magnitude`.

    Parameters
    ----------
    U : array, shape (K, C, alpha, alpha)
    density : float in [0, 1]
    m : int
        Output tile size; ``r = alpha - m + 1``.
    points : str or sequence, optional
    mask : bool array of U's shape, optional
        Existing mask (masks only shrink).
    convention : {"lavin", "wincnn", "nnpack"}
        The convention ``U`` was computed in (:func:`importance_factors`); ``"nnpack"`` is
        Yu et al.'s for 5x5 kernels.

    Examples
    --------
    >>> U = np.ones((1, 1, 6, 6))    # equal magnitudes: the importance factor decides
    >>> np.argwhere(prune_importance(U, 4 / 36, m=4).mask[0, 0]).tolist()
    [[3, 3], [3, 4], [4, 3], [4, 4]]
    """
    U, r = _winograd_weights(U, m)
    F_hat = importance_factors(m, r, points, convention=convention)
    return _prune_by_score(U, np.abs(U) * F_hat, density, mask)


def position_threshold_scale(
    m: int = 4, r: int = 3, points: PointSpec = None, *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """Li et al.'s per-position threshold factor ``1 / ||row t of (A (x) A)||``.

    Shape (alpha, alpha). ``A = AT^T`` is ``alpha x m``; row ``t = (a, b)`` of ``A (x) A``
    holds the weights with which ``M[a, b]`` reaches the ``m x m`` outputs, and its norm is
    ``||AT[:, a]|| ||AT[:, b]||``.
    Positions that reach the output strongly get a smaller threshold. Source: SkimCaffe
    (``WinogradAKronA::getNormRowsInv`` in ``include/caffe/util/winograd.hpp``, used by
    ``sgd_solver.cpp`` when ``winograd_adjust_threshold=1``).

    >>> position_threshold_scale(2, 3)
    array([[1.        , 0.70710678, 0.70710678, 1.        ],
           [0.70710678, 0.5       , 0.5       , 0.70710678],
           [0.70710678, 0.5       , 0.5       , 0.70710678],
           [1.        , 0.70710678, 0.70710678, 1.        ]])
    """
    m = check_m(m)
    AT = transforms(m, r, points, convention=convention).AT
    col = np.linalg.norm(AT, axis=0)  # ||AT[:, a]||
    return 1.0 / np.outer(col, col)


def prune_native(
    U, threshold: float, m: int = 4, points: PointSpec = None, *,
    convention: Convention = DEFAULT_CONVENTION,
) -> Pruned:
    """Li et al.'s hard threshold in the Winograd domain, scaled per position.

    ``U[k, c, a, b]`` is zeroed when ``|U| <= threshold * scale[a, b]`` with ``scale`` from
    :func:`position_threshold_scale` (SkimCaffe's ``sgd_solver.cpp``, ``regularization_type:
    "L1"`` with ``winograd_adjust_threshold: 1``; the gradient-dependent variant,
    ``max_threshold_factor >= 2``, is a training-time rule and not here).

    Examples
    --------
    >>> U = np.full((1, 1, 4, 4), 0.8)
    >>> prune_native(U, 1.0, m=2).mask[0, 0].astype(int)
    array([[0, 1, 1, 0],
           [1, 1, 1, 1],
           [1, 1, 1, 1],
           [0, 1, 1, 0]])
    """
    U, r = _winograd_weights(U, m)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, Real)
        or not (0.0 <= float(threshold) < np.inf)
    ):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    # zero where |U| <= thre0 * scale_t   (SkimCaffe's inclusive test)
    scale = position_threshold_scale(m, r, points, convention=convention)
    keep = np.abs(U) > float(threshold) * scale
    return Pruned(np.where(keep, U, 0.0), keep)


def project_to_spatial(
    U, m: int = 2, points: PointSpec = None, *, convention: Convention = DEFAULT_CONVENTION
) -> Projection:
    """The spatial kernels closest to ``U``: ``g' = argmin ||U - G g' GT||_F`` per (k, c).

    ``G (x) G`` (``alpha^2 x r^2``) has full column rank ``r^2``, so the least-squares solution
    is unique and ``U = G g GT`` comes back as ``g``. A pruned ``U`` is in general not of that
    form: ``residual = ||U - G g' GT||_F / ||U||_F`` (0 for an all-zero kernel) is then > 0.

    Returns
    -------
    Projection
        ``w`` of shape (K, C, r, r) and ``residual`` of shape (K, C).

    Examples
    --------
    >>> U = np.zeros((1, 1, 4, 4)); U[0, 0, 1, 1] = 1.0   # one Winograd weight
    >>> p = project_to_spatial(U, m=2)
    >>> round(float(p.residual[0, 0]), 4)
    0.6614
    """
    U, r = _winograd_weights(U, m)
    K, C, alpha, _ = U.shape
    G = transforms(m, r, points, convention=convention).G
    S = np.kron(G, G)  # vec(G g GT) = (G (x) G) vec(g), row-major vec
    u = U.reshape(K * C, alpha * alpha).T
    g = np.linalg.lstsq(S, u, rcond=None)[0]
    w = g.T.reshape(K, C, r, r)
    diff = np.linalg.norm((u - S @ g).T, axis=1).reshape(K, C)
    norm = np.linalg.norm(u.T, axis=1).reshape(K, C)
    residual = np.divide(diff, norm, out=np.zeros_like(diff), where=norm > 0)
    return Projection(w, residual)
