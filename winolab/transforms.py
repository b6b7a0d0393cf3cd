"""Float Winograd matrices (cached), and tiling of images into overlapping Winograd tiles.

The exact matrices come from :mod:`winolab.derive`; here they are rounded once to the
requested dtype (from exact rationals, so float32 matrices are correctly rounded) and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from winolab._validate import check_m, check_size
from winolab.derive import (
    DEFAULT_CONVENTION,
    Convention,
    PointSpec,
    check_convention,
    cook_toom,
    resolve_points,
)

__all__ = ["WinogradTransforms", "tile", "tile_counts", "transforms", "untile"]


@dataclass(frozen=True)
class WinogradTransforms:
    """Float matrices of F(m x m, r x r): ``Y = AT [(G g GT) * (BT d B)] A``.

    Attributes
    ----------
    AT, G, BT : numpy.ndarray
        Read-only arrays of shape ``(m, alpha)``, ``(alpha, r)``, ``(alpha, alpha)``.
    m, r : int
        Output tile size and filter size.
    points : tuple of str
        The finite interpolation points as exact fractions (``"1/2"``), infinity implicit.
    convention : str
        The sign/scale convention (:data:`winolab.derive.CONVENTIONS`).
    """

    AT: np.ndarray
    G: np.ndarray
    BT: np.ndarray
    m: int
    r: int
    points: tuple[str, ...]
    convention: str = DEFAULT_CONVENTION

    @property
    def alpha(self) -> int:
        """Input tile size ``m + r - 1``."""
        return self.m + self.r - 1


def transforms(
    m: int = 2,
    r: int = 3,
    points: PointSpec = None,
    dtype: np.dtype | type = np.float64,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> WinogradTransforms:
    """The Winograd matrices of F(m, r) as floats, derived exactly and cached.

    Parameters
    ----------
    m, r : int
        Output tile size and filter size.
    points : str or sequence, optional
        Interpolation points, as in :func:`winolab.derive.cook_toom`.
    dtype : numpy floating dtype
        ``float64`` (default), ``float32`` or ``float16``.
    convention : {"lavin", "wincnn", "nnpack"}
        Sign/scale convention, as in :func:`winolab.derive.cook_toom`.

    Examples
    --------
    >>> t = transforms(2, 3)
    >>> t.G
    array([[ 1. ,  0. ,  0. ],
           [ 0.5,  0.5,  0.5],
           [ 0.5, -0.5,  0.5],
           [ 0. ,  0. ,  1. ]])
    >>> transforms(4, 3, "onednn", dtype="float32").BT[0, 0]
    np.float32(0.87890625)
    """
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating dtype (float16/32/64), got {dt}")
    convention = check_convention(convention)
    pts = resolve_points(m, r, points)
    return _transforms_cached(m, r, pts, dt.str, convention)


@lru_cache(maxsize=64)
def _transforms_cached(
    m: int, r: int, pts: tuple, dt: str, convention: str
) -> WinogradTransforms:
    ct = cook_toom(m, r, pts, convention=convention)

    def to_float(M) -> np.ndarray:
        # float(Rational) rounds once, correctly, to float64; then cast
        a = np.array([[float(v) for v in row] for row in M.tolist()], dtype=np.float64)
        a = a.astype(dt)
        a.setflags(write=False)
        return a

    return WinogradTransforms(
        AT=to_float(ct.AT), G=to_float(ct.G), BT=to_float(ct.BT), m=m, r=r,
        points=tuple(str(p) for p in pts), convention=convention,
    )


def tile_counts(h_out: int, w_out: int, m: int) -> tuple[int, int]:
    """Number of m x m output tiles covering an ``h_out x w_out`` output (last tiles cropped).

    >>> tile_counts(32, 31, 4)
    (8, 8)
    """
    h_out, w_out = check_size(h_out, "h_out"), check_size(w_out, "w_out")
    m = check_m(m)
    return -(-h_out // m), -(-w_out // m)


def tile(x: np.ndarray, m: int, r: int) -> np.ndarray:
    """Cut a padded image batch into overlapping ``alpha x alpha`` input tiles, stride ``m``.

    ``x`` is ``(N, C, H, W)`` and already holds the convolution padding; the valid output is
    ``(H - r + 1) x (W - r + 1)``. The bottom and right are zero-extended so that the tiles cover
    it, and :func:`untile` crops the extra outputs. Returns a read-only strided view of shape
    ``(N, C, tiles_h, tiles_w, alpha, alpha)``.

    >>> tile(np.zeros((1, 1, 6, 6)), m=2, r=3).shape
    (1, 1, 2, 2, 4, 4)
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.ndim} dimensions {x.shape}")
    m, r = check_m(m), check_size(r, "r (filter size)")
    H, W = x.shape[2:]
    if H < r or W < r:
        raise ValueError(f"x of {H} x {W} is smaller than the {r} x {r} filter: no output")
    return _tile(x, m, r)


def _tile(x: np.ndarray, m: int, r: int) -> np.ndarray:
    """:func:`tile` without the checks: ``x`` is ``(N, C, H, W)`` with ``H, W >= r``."""
    N, C, H, W = x.shape
    alpha = m + r - 1
    th, tw = -(-(H - r + 1) // m), -(-(W - r + 1) // m)
    need_h, need_w = (th - 1) * m + alpha, (tw - 1) * m + alpha
    if need_h > H or need_w > W:
        x = np.pad(x, ((0, 0), (0, 0), (0, need_h - H), (0, need_w - W)))
    sN, sC, sH, sW = x.strides
    # (N, C, tiles_h, tiles_w, alpha, alpha): tile (i, j) starts at row i*m, column j*m
    return np.lib.stride_tricks.as_strided(
        x, shape=(N, C, th, tw, alpha, alpha),
        strides=(sN, sC, sH * m, sW * m, sH, sW), writeable=False,
    )


def untile(Y: np.ndarray, h_out: int, w_out: int) -> np.ndarray:
    """Assemble ``(N, K, tiles_h, tiles_w, m, m)`` output tiles into ``(N, K, h_out, w_out)``.

    >>> untile(np.ones((1, 1, 2, 2, 2, 2)), 3, 3).shape
    (1, 1, 3, 3)
    """
    Y = np.asarray(Y)
    if Y.ndim != 6 or Y.shape[-1] != Y.shape[-2]:
        raise ValueError(f"Y must have shape (N, K, tiles_h, tiles_w, m, m), got {Y.shape}")
    N, K, th, tw, m, _ = Y.shape
    h_out, w_out = check_size(h_out, "h_out"), check_size(w_out, "w_out")
    if not ((th - 1) * m < h_out <= th * m and (tw - 1) * m < w_out <= tw * m):
        raise ValueError(f"({h_out}, {w_out}) does not fit {th} x {tw} tiles of m = {m}: "
                         f"expected ({(th - 1) * m + 1}..{th * m}, {(tw - 1) * m + 1}..{tw * m})")
    return _untile(Y, h_out, w_out)


def _untile(Y: np.ndarray, h_out: int, w_out: int) -> np.ndarray:
    """:func:`untile` without the checks: the tiles cover ``h_out x w_out``, overhang included."""
    N, K, th, tw, m, _ = Y.shape
    # (N, K, tiles_h, m, tiles_w, m) -> (N, K, tiles_h*m, tiles_w*m), then crop the overhang
    y = Y.transpose(0, 1, 2, 4, 3, 5).reshape(N, K, th * m, tw * m)
    return y[:, :, :h_out, :w_out]
