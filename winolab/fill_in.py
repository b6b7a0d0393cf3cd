"""Fill-in: how the transforms turn the zeros of ``g`` and ``d`` into nonzeros (book: ch. 5).

Zeros do not survive the transforms: a spatially pruned kernel ``g`` fills in when it becomes
``U = G g GT``, and a ReLU'd input ``d`` fills in when it becomes ``V = BT d B``. Here are the
measures: :func:`density`, the Winograd-domain density of spatial kernels
(:func:`filter_fill_in`) and of ReLU'd inputs (:func:`activation_density`, with the ReLU before
the transform or after it, as in Liu et al.'s Winograd-ReLU), and the pattern behind them
(:func:`winograd_support`). The pruning rules that answer fill-in are in :mod:`winolab.sparsity`.

**Which entries count as zero.** A transformed entry is a sum of products; it is *structurally*
zero when every term has a zero factor, and then float64 computes it as exactly ``0.0``. Data can
also cancel (``g = (1, -1, 0)`` against the row ``(1/2, 1/2, 1/2)`` of G), and then rounding may
leave a tiny nonzero. The ``"rounding"`` rule counts an entry as zero when it is within the
float64 rounding bound of zero, ``|U| <= 4 alpha eps (|G| |g| |G|^T)`` (likewise for ``V``):
structural zeros have a bound of 0, and an exact cancellation is always inside it.

>>> g = np.zeros((1, 1, 3, 3)); g[0, 0, 0] = (1.0, -1.0, 0.0)   # cancels against 1/2, 1/2
>>> filter_fill_in(g, m=2), filter_fill_in(g, m=2, rule="structural")
(0.375, 0.5625)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from winolab._validate import (
    check_data,
    check_m,
    check_padding,
    check_size,
    check_spatial_weights,
    output_size,
)
from winolab.derive import DEFAULT_CONVENTION, Convention, PointSpec, cook_toom, resolve_points
from winolab.reference import _filter_transform, _input_transform, _tiles
from winolab.transforms import transforms

__all__ = ["activation_density", "density", "filter_fill_in", "winograd_support"]


def density(a) -> float:
    """Fraction of nonzero entries of ``a``.

    >>> density([[1.0, 0.0], [0.0, 2.0]])
    0.5
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"density needs a numeric or boolean array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"density of an empty array is undefined (shape {arr.shape})")
    return float(np.count_nonzero(arr) / arr.size)


def _nonzero_beyond_rounding(v: np.ndarray, bound: np.ndarray, alpha: int) -> np.ndarray:
    # zero when |v| <= 4 alpha eps * (sum of |terms|): the float64 rounding bound of v
    return np.abs(v) > 4 * alpha * np.finfo(np.float64).eps * bound


@lru_cache(maxsize=64)
def _support(m: int, r: int, points: tuple) -> np.ndarray:
    G = cook_toom(m, r, points).G
    nz = np.array([[G[i, j] != 0 for j in range(r)] for i in range(G.rows)], dtype=bool)
    # S[a, b, u, v] = G[a, u] != 0 and G[b, v] != 0: the nonzero pattern of G (x) G
    S = nz[:, None, :, None] & nz[None, :, None, :]
    S.setflags(write=False)
    return S


def winograd_support(m: int = 4, r: int = 3, points: PointSpec = None) -> np.ndarray:
    """Which spatial taps each Winograd position depends on: the nonzero pattern of G (x) G.

    ``S[a, b, u, v]`` is True when ``U[a, b] = (G g GT)[a, b]`` has a term in ``g[u, v]``, read
    from the exact sympy G. Yu et al. call the taps of position ``t`` its set ``N_t``.

    >>> S = winograd_support(4, 3)
    >>> S.shape, int(S[0, 0].sum()), int(S[1, 1].sum()), int(S[0, 5].sum())
    ((6, 6, 3, 3), 1, 9, 1)
    """
    m = check_m(m)
    return _support(m, r, resolve_points(m, r, points)).copy()


def _flat_support(m: int, r: int, points: PointSpec) -> np.ndarray:
    alpha = m + r - 1
    return winograd_support(m, r, points).reshape(alpha * alpha, r * r)


def filter_fill_in(
    w, m: int = 2, points: PointSpec = None, rule: Literal["rounding", "structural"] = "rounding"
) -> float:
    """Winograd-domain density of spatial kernels ``w``: the density of ``U = G g GT``.

    Parameters
    ----------
    w : array, shape (K, C, r, r)
        Spatial kernels, typically pruned.
    m : int
        Output tile size of F(m x m, r x r).
    points : str or sequence, optional
    rule : {"rounding", "structural"}
        ``"rounding"``: ``U`` is computed in float64 and an entry is zero when
        ``|U| <= 4 alpha eps (|G| |g| |G|^T)`` (see the module docstring), so exact
        cancellations count as zero. ``"structural"``: zero exactly when every tap it depends
        on (:func:`winograd_support`) is zero, whatever the values.

    Examples
    --------
    >>> w = np.zeros((1, 1, 3, 3)); w[0, 0, 1, 1] = 1.0   # one tap in nine
    >>> filter_fill_in(w, m=2), filter_fill_in(w, m=4)
    (0.25, 0.4444444444444444)
    """
    w = check_spatial_weights(w, None)
    m = check_m(m)
    K, C, r, _ = w.shape
    alpha = m + r - 1
    if rule == "structural":
        S = _flat_support(m, r, points).astype(np.float64)
        taps = (w != 0).reshape(K * C, r * r).astype(np.float64)
        # number of nonzero taps each U_t depends on, per kernel
        return density(taps @ S.T)
    if rule != "rounding":
        raise ValueError(f"rule must be 'rounding' or 'structural', got {rule!r}")
    G = transforms(m, r, points).G
    # U = G g GT, and its rounding bound |G| |g| |G|^T
    U, bound = _filter_transform(w, G), _filter_transform(np.abs(w), np.abs(G))
    return density(_nonzero_beyond_rounding(U, bound, alpha))


def activation_density(
    x,
    r: int = 3,
    m: int = 2,
    padding: int | tuple = 1,
    points: PointSpec = None,
    relu: Literal["spatial", "winograd"] = "spatial",
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> float:
    """Density of the transformed input tiles with the ReLU before or after ``BT d B``.

    ``relu="spatial"``: ``V = BT ReLU(d) B``, the conventional network, where the zeros of the
    ReLU fill in. ``relu="winograd"``: ``ReLU(BT d B)``, Liu et al.'s Winograd-ReLU. Entries
    within the float64 rounding bound of zero count as zero (module docstring).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
        Pre-activation input (the ReLU is applied here).
    r, m : int
        Filter and output tile size, in the order of :func:`winolab.reference.input_transform`;
        tiles are ``alpha = m + r - 1`` wide, stride ``m``.
    padding : int or (int, int)
        Zero padding of the convolution; padded zeros are part of the tiles.
    points : str or sequence, optional
    relu : {"spatial", "winograd"}
    convention : {"lavin", "wincnn", "nnpack"}
        With ``relu="winograd"`` the density depends on the signs of BT's rows; the default
        is Liu et al.'s convention.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((2, 4, 16, 16))
    >>> round(activation_density(x, relu="spatial"), 2)
    0.9
    >>> round(activation_density(x, relu="winograd"), 3)
    0.5
    >>> round(activation_density(x, relu="winograd", convention="wincnn"), 3)
    0.494
    """
    if relu not in ("spatial", "winograd"):
        raise ValueError(f"relu must be 'spatial' or 'winograd', got {relu!r}")
    x = check_data(x)
    m, r = check_m(m), check_size(r, "r (filter size)")
    pad = check_padding(padding)
    output_size(x.shape, (r, r), pad)
    BT = transforms(m, r, points, convention=convention).BT
    alpha = m + r - 1
    if relu == "spatial":
        x = np.maximum(x, 0.0)  # ReLU(0) = 0: the same before or after the zero padding
    d = _tiles(x, pad, m, r)  # (N, C, tiles_h, tiles_w, alpha, alpha)
    # V = BT d B, and its rounding bound |BT| |d| |B|
    V, bound = _input_transform(d, BT), _input_transform(np.abs(d), np.abs(BT))
    if relu == "winograd":
        # ReLU(V): only entries above the rounding bound are surely positive
        return density(V > 4 * alpha * np.finfo(np.float64).eps * bound)
    return density(_nonzero_beyond_rounding(V, bound, alpha))
