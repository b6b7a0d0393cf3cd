"""Fast sparse Winograd convolution: the twins of :mod:`winolab.reference`, in the input dtype.

Pruned Winograd-domain weights ``U`` are packed once into :class:`SparseWinogradWeights`, one
CSR matrix (K x C) per Winograd position, and reused across calls. The public functions
validate, convert and plan, then call the numba kernel in :mod:`winolab._kernels`
(``backend="numba"``), or a vectorised numpy path (``backend="numpy"``, dense batched matmul
over the alpha^2 positions). ``backend="auto"`` takes numba when it is installed and otherwise
falls back to numpy with one warning. float32 stays float32, float64 stays float64 (float16
computes in float32); the reference computes everything in float64.

Data layout of one kernel task (book: kernels chapter): ``V[s, c, t]`` with ``s = a*alpha + b``
and the task's tiles ``t`` contiguous; the multiply is, per ``s``, a sparse (K x C) times dense
(C x T) product.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from winolab._validate import (
    check_bias,
    check_data,
    check_m,
    check_padding,
    check_relu,
    check_spatial_weights,
    check_winograd_weights,
    output_size,
)
from winolab.derive import DEFAULT_CONVENTION, Convention, PointSpec
from winolab.reference import _filter_transform, _input_transform, _output_transform, _tiles
from winolab.transforms import _untile, tile_counts, transforms

__all__ = ["SparseWinogradWeights", "plan_tasks", "winograd_conv2d", "winograd_domain_conv2d"]

Backend = Literal["auto", "numba", "numpy"]
_FALLBACK_WARNED = False
_WORK: dict[str, np.ndarray] = {}
_TARGET_TILES = 256  # tiles per kernel task (see plan_tasks)


@dataclass(frozen=True, eq=False)  # arrays inside: compare with to_dense()
class SparseWinogradWeights:
    """Winograd-domain weights ``U`` (K, C, alpha, alpha) packed as CSR, one per position.

    Row ``(s, k)`` of position ``s = a * alpha + b`` holds the nonzero ``U[k, c, a, b]`` for
    ``c`` in ``indices[indptr[s, k]:indptr[s, k + 1]]`` (ascending), values alongside.
    Build it once with :meth:`from_dense` and pass it as ``U`` to
    :func:`winograd_domain_conv2d`.

    Attributes
    ----------
    indptr : numpy.ndarray, int64, shape (alpha**2, K + 1)
        Offsets into ``indices``/``values``; ``indptr[s, K] == indptr[s + 1, 0]``.
    indices : numpy.ndarray, int32, shape (nnz,)
        Input channel of each stored value.
    values : numpy.ndarray, float32 or float64, shape (nnz,)
    shape : tuple of int
        ``(K, C, alpha, alpha)``.

    Examples
    --------
    >>> U = np.zeros((2, 3, 4, 4)); U[1, 2, 0, 3] = 5.0; U[0, 0, 1, 1] = -1.0
    >>> P = SparseWinogradWeights.from_dense(U)
    >>> P.nnz, P.density, bool((P.to_dense() == U).all())
    (2, 0.020833333333333332, True)
    """

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    shape: tuple[int, int, int, int]

    def __post_init__(self):
        # the kernel reads without bounds checks: a container that lies would read garbage
        shape = tuple(int(n) for n in np.asarray(self.shape).ravel())
        if len(shape) != 4 or shape[2] != shape[3] or min(shape) < 1:
            raise ValueError(f"shape must be (K, C, alpha, alpha) with positive sizes, got "
                             f"{self.shape}")
        K, C, alpha, _ = shape
        indptr, indices, values = (np.asarray(a) for a in (self.indptr, self.indices,
                                                            self.values))
        if indptr.shape != (alpha * alpha, K + 1) or indptr.dtype.kind not in "iu":
            raise ValueError(f"indptr must be integers of shape {(alpha * alpha, K + 1)}, got "
                             f"{indptr.dtype} {indptr.shape}")
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise ValueError(f"indices must be a 1-d integer array, got {indices.dtype} "
                             f"{indices.shape}")
        if values.ndim != 1 or values.dtype not in (np.float32, np.float64):
            raise ValueError(f"values must be a 1-d float32 or float64 array, got "
                             f"{values.dtype} {values.shape}")
        if values.size != indices.size:
            raise ValueError(f"values ({values.size}) and indices ({indices.size}) must have "
                             "the same length")
        flat = indptr.ravel()
        if (flat.size and (flat[0] != 0 or flat[-1] != values.size or np.any(np.diff(flat) < 0)
                           or np.any(indptr[1:, 0] != indptr[:-1, -1]))):
            raise ValueError(f"indptr must run from 0 to nnz = {values.size} without going "
                             "back, each position starting where the one before it ends")
        if indices.size and (indices.min() < 0 or indices.max() >= C):
            raise ValueError(f"indices must lie in [0, {C}) (the input channels), got "
                             f"[{indices.min()}, {indices.max()}]")
        if not np.isfinite(values).all():
            raise ValueError("values contains NaN or inf")
        if indices.size > 1:
            # within a row (s, k) channels strictly ascend: a repeated channel would be summed
            # by the numba kernel and overwritten by to_dense(), so the backends would disagree
            starts = np.zeros(indices.size + 1, dtype=bool)
            starts[flat] = True
            step = np.diff(indices.astype(np.int64))
            bad = np.flatnonzero((step <= 0) & ~starts[1:indices.size])
            if bad.size:
                p = int(bad[0]) + 1
                row = int(np.searchsorted(flat, p, side="right")) - 1
                s, k = divmod(row, K + 1)
                what = "repeats" if step[p - 1] == 0 else "is out of ascending order at"
                raise ValueError(f"indices of row (s={s}, k={k}) {what} channel "
                                 f"{int(indices[p])}: each row must list distinct channels in "
                                 "ascending order (build it with from_dense)")
        object.__setattr__(self, "shape", shape)

    @classmethod
    def from_dense(cls, U, mask=None, dtype=None) -> SparseWinogradWeights:
        """Pack the nonzeros of ``U`` (where ``mask`` is True, if given) in ``dtype``.

        ``dtype`` defaults to U's float32/float64 (anything else becomes float64). Zeros are
        never stored, even under the mask, so that counted multiplies are real ones.
        """
        U = check_winograd_weights(U, np.shape(U)[1] if np.ndim(U) == 4 else 0, 1, dtype=None)
        if dtype is None:
            dtype = U.dtype if U.dtype in (np.float32, np.float64) else np.float64
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        K, C, alpha, _ = U.shape
        # (S, K, C): position-major, as the kernel reads it
        Us = U.transpose(2, 3, 0, 1).reshape(alpha * alpha, K, C)
        keep = Us != 0
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != U.shape or mask.dtype != bool:
                raise ValueError(f"mask must be a bool array of shape {U.shape}, got "
                                 f"{mask.dtype} {mask.shape}")
            keep &= mask.transpose(2, 3, 0, 1).reshape(alpha * alpha, K, C)
        row_nnz = keep.sum(axis=2).ravel()  # rows (s, k) in order
        starts = np.concatenate(([0], np.cumsum(row_nnz))).astype(np.int64)
        S = alpha * alpha
        indptr = np.stack([starts[s * K:s * K + K + 1] for s in range(S)])
        _, _, c = np.nonzero(keep)
        return cls(indptr=indptr, indices=c.astype(np.int32),
                   values=np.ascontiguousarray(Us[keep], dtype=dtype), shape=U.shape)

    @property
    def nnz(self) -> int:
        """Number of stored nonzeros."""
        return int(self.values.size)

    @property
    def density(self) -> float:
        """Fraction of ``U``'s entries that are stored."""
        return self.nnz / float(np.prod(self.shape))

    def to_dense(self) -> np.ndarray:
        """Unpack into ``U`` of shape ``(K, C, alpha, alpha)`` in the stored dtype."""
        K, C, alpha, _ = self.shape
        row_nnz = np.diff(self.indptr, axis=1).ravel()
        rows = np.repeat(np.arange(alpha * alpha * K), row_nnz)
        Us = np.zeros((alpha * alpha, K, C), dtype=self.values.dtype)
        Us[rows // K, rows % K, self.indices] = self.values
        return Us.reshape(alpha, alpha, K, C).transpose(2, 3, 0, 1).copy()

    def astype(self, dtype) -> SparseWinogradWeights:
        """The same weights with values in ``dtype`` (no copy if it already is)."""
        if self.values.dtype == np.dtype(dtype):
            return self
        with np.errstate(over="ignore"):
            values = self.values.astype(dtype)
        if not np.isfinite(values).all():
            raise ValueError(f"U has values beyond the range of {np.dtype(dtype)}: pass x in "
                             "float64 to compute in float64")
        return SparseWinogradWeights(self.indptr, self.indices, values, self.shape)


def plan_tasks(N: int, th: int, tw: int, K: int, threads: int,
               target_tiles: int = 256, min_tiles: int = 32) -> np.ndarray:
    """Split a layer into kernel tasks ``(n0, n1, i0, i1, k0, k1)``, one per row.

    A task holds about ``target_tiles`` tiles: several images where maps are small, a range
    of tile rows where they are large. With fewer tasks than ``threads`` (batch 1), images and
    rows are split further down to ``min_tiles`` tiles, then output channels are split (each
    such task repeats the cheap input transform of its tiles).

    >>> plan_tasks(64, 4, 4, 256, threads=2).shape   # 8x8 maps: 16 images per task
    (4, 6)
    >>> plan_tasks(1, 4, 4, 256, threads=2)[:, 4:].tolist()   # batch 1: split K
    [[0, 128], [128, 256]]
    """
    for name, v in (("N", N), ("th", th), ("tw", tw), ("K", K), ("threads", threads),
                    ("target_tiles", target_tiles), ("min_tiles", min_tiles)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    per_image = th * tw
    if per_image >= target_tiles:
        ib, rows = 1, max(1, min(th, target_tiles // tw))
    else:
        ib, rows = max(1, min(N, target_tiles // per_image)), th

    def count(ib, rows):
        return -(-N // ib) * -(-th // rows)

    while count(ib, rows) < threads and ib * rows * tw > min_tiles and (ib > 1 or rows > 1):
        if ib > 1:
            ib = -(-ib // 2)
        else:
            rows = -(-rows // 2)
    kchunks = min(K, -(-threads // count(ib, rows)))
    kb = -(-K // kchunks)
    out = [(n, min(N, n + ib), i, min(th, i + rows), k, min(K, k + kb))
           for n in range(0, N, ib) for i in range(0, th, rows) for k in range(0, K, kb)]
    return np.array(out, dtype=np.int64)


def _kernels(backend: Backend):
    """The numba kernel module, or None to use numpy (warning once for ``auto``)."""
    global _FALLBACK_WARNED
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend == "numpy":
        return None
    try:
        kernels = importlib.import_module("winolab._kernels")
    except ImportError as exc:
        if backend == "numba":
            raise ImportError("backend='numba' needs numba: pip install winolab[fast]") from exc
        if not _FALLBACK_WARNED:
            _FALLBACK_WARNED = True
            warnings.warn("numba is not installed, winolab.sparse falls back to a slower numpy "
                          "path: pip install winolab[fast]", RuntimeWarning, stacklevel=3)
        return None
    return kernels


def winograd_domain_conv2d(
    x: np.ndarray,
    U: np.ndarray | SparseWinogradWeights,
    bias: np.ndarray | None = None,
    padding: int | tuple = 0,
    m: int = 2,
    points: PointSpec = None,
    relu: bool = False,
    *,
    backend: Backend = "auto",
    return_multiplies: bool = False,
    convention: Convention = DEFAULT_CONVENTION,
):
    """Fast twin of :func:`winolab.reference.winograd_domain_conv2d`, sparse in ``U``.

    ``y = AT [ sum_c U * V ] A`` with ``V = BT d B`` (or ``ReLU(BT d B)`` when ``relu``),
    computed in x's dtype. Only the nonzeros of ``U`` are multiplied (numba backend).

    Parameters
    ----------
    x : array, shape (N, C, H, W), float32 or float64 (float16 computes in float32)
    U : array (K, C, alpha, alpha) or SparseWinogradWeights
        Winograd-domain weights; pack them once with :meth:`SparseWinogradWeights.from_dense`
        to reuse across calls.
    bias, padding, m, points, relu, convention
        As in the reference: the default convention is Liu et al.'s, which a Winograd-ReLU
        layer (``relu=True``) depends on.
    backend : {"auto", "numba", "numpy"}
    return_multiplies : bool
        Also return the number of multiplications in ``sum_c U * V`` that were performed:
        ``nnz(U) * tiles`` for numba (equal to
        :func:`winolab.counting.exact_winograd_multiplies` with ``n_tiles``), all
        ``K * C * alpha**2 * tiles`` for the dense numpy path.

    Returns
    -------
    y : numpy.ndarray, shape (N, K, h_out, w_out), x's dtype
    multiplies : int, only if ``return_multiplies``

    Examples
    --------
    >>> from winolab import reference
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    >>> U = reference.filter_transform(rng.standard_normal((4, 8, 3, 3)))
    >>> U[np.abs(U) < 1.0] = 0      # prune in the Winograd domain
    >>> y, mults = winograd_domain_conv2d(x, U, padding=1, return_multiplies=True)
    >>> y.dtype, mults, int(np.count_nonzero(U)) * 2 * 5 * 5    # nnz(U) x tiles
    (dtype('float32'), 6400, 6400)
    >>> d = reference.winograd_domain_conv2d(x, U, padding=1)
    >>> bool(np.linalg.norm(y - d) / np.linalg.norm(d) < 1e-6)
    True
    """
    return _conv(x, U, bias, padding, m, points, relu, backend, return_multiplies,
                 convention=convention)


def winograd_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    padding: int | tuple = 0,
    m: int = 2,
    points: PointSpec = None,
    *,
    backend: Backend = "auto",
    return_multiplies: bool = False,
    convention: Convention = DEFAULT_CONVENTION,
):
    """Fast twin of :func:`winolab.reference.winograd_conv2d`: ``U = G w GT``, then the layer.

    Dense ``w`` gives a dense ``U``, so this is the dense baseline; the gains come from
    pruning ``U`` (see :func:`winograd_domain_conv2d`).

    >>> from winolab import reference
    >>> rng = np.random.default_rng(1)
    >>> x, w = rng.standard_normal((1, 3, 6, 6)), rng.standard_normal((2, 3, 3, 3))
    >>> y = winograd_conv2d(x, w, padding=1, m=4)
    >>> bool(np.abs(y - reference.direct_conv2d(x, w, padding=1)).max() < 1e-12)
    True
    """
    w = check_spatial_weights(w, None)
    # U = G g GT in float64, as the reference computes it
    U = _filter_transform(w, transforms(check_m(m), w.shape[-1], points, convention=convention).G)
    return _conv(x, U, bias, padding, m, points, False, backend, return_multiplies,
                 convention=convention)


def _conv(x, U, bias, padding, m, points, relu, backend, return_multiplies, do_mac=True,
          convention=DEFAULT_CONVENTION):
    x = check_data(x, dtype=None)
    # 8 bytes or more (float64, longdouble, either byte order) computes in float64
    dt = np.float64 if x.dtype.itemsize >= 8 else np.float32
    x = np.ascontiguousarray(x, dtype=dt)
    relu = check_relu(relu)
    m = check_m(m)
    if not isinstance(U, SparseWinogradWeights):
        U = check_winograd_weights(U, x.shape[1], m, dtype=None)
        U = SparseWinogradWeights.from_dense(U)  # cast below, with a range check
    elif U.shape[1] != x.shape[1] or U.shape[2] < m:
        raise ValueError(f"packed U has shape {U.shape}: expected (K, {x.shape[1]}, alpha, "
                         f"alpha) with alpha >= m = {m}")
    U = U.astype(dt)
    K, C, alpha, _ = U.shape
    r = alpha - m + 1
    ph, pw = check_padding(padding)
    h_out, w_out = output_size(x.shape, (r, r), (ph, pw))
    bias = check_bias(bias, K, dtype=dt)
    t = transforms(m, r, points, dtype=dt, convention=convention)
    th, tw = tile_counts(h_out, w_out, m)
    kern = _kernels(backend)
    if x.shape[0] == 0:  # an empty batch: nothing to plan
        y = np.zeros((0, K, h_out, w_out), dtype=dt)
        return (y, 0) if return_multiplies else y
    if kern is None:
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            y = _numpy_path(x, U.to_dense(), (ph, pw), t, relu, (h_out, w_out))
        mults = K * C * alpha * alpha * x.shape[0] * th * tw
        if bias is not None:
            y += bias[None, :, None, None]
    else:
        import numba

        tasks = plan_tasks(x.shape[0], th, tw, K, numba.get_num_threads(), _TARGET_TILES)
        y = np.empty((x.shape[0], K, h_out, w_out), dtype=dt)
        counts = np.zeros(len(tasks), dtype=np.int64)
        b = np.zeros(K, dtype=dt) if bias is None else bias
        # the kernel's tiles per task, pitched: tw + (alpha - 1) // m columns per tile row
        T = (tasks[:, 1] - tasks[:, 0]) * (tasks[:, 3] - tasks[:, 2]) * (tw + (alpha - 1) // m)
        size = int((alpha * alpha * T * (C + tasks[:, 5] - tasks[:, 4])).max())
        work = _workspace(numba.get_num_threads(), size, dt)
        kern.winograd_sparse(x, ph, pw, t.BT, t.AT, U.indptr, U.indices, U.values, b,
                             bool(relu), tasks, tw, y, counts, do_mac, work)
        mults = int(counts.sum())
    if not np.isfinite(y).all():
        # x, U and bias are finite (checked above): only an overflow gets here
        raise OverflowError(f"the Winograd transforms overflowed {np.dtype(dt).name} (largest "
                            f"|x| = {float(np.abs(x).max()):.3g}): scale the input down or pass "
                            "it in float64")
    return (y, mults) if return_multiplies else y


def _workspace(threads: int, size: int, dtype) -> np.ndarray:
    """Kernel scratch ``(threads, >= size)``, kept between calls (kernels hold the GIL)."""
    key = np.dtype(dtype).str
    work = _WORK.get(key)
    if work is None or work.shape[0] < threads or work.shape[1] < size:
        work = np.zeros((threads, size), dtype=dtype)  # finite even where never written
        _WORK[key] = work
    return work


def _numpy_path(x, U, pad, t, relu, out_shape):
    """Dense Winograd in numpy, in x's dtype: one batched matmul over the alpha^2 positions."""
    d = _tiles(x, pad, t.m, t.r)  # (N, C, th, tw, alpha, alpha)
    N, C, th, tw, alpha, _ = d.shape
    K = U.shape[0]
    # V = BT d B, laid out (alpha*alpha, C, N*th*tw)
    V = _input_transform(d, t.BT).transpose(4, 5, 1, 0, 2, 3).reshape(alpha * alpha, C, -1)
    if relu:
        np.maximum(V, 0, out=V)
    # M[s] = U[s] V[s]   (K x C times C x tiles, per position s)
    M = np.matmul(U.transpose(2, 3, 0, 1).reshape(alpha * alpha, K, C), V)
    # (alpha, alpha, K, N, th, tw) -> (N, K, th, tw, alpha, alpha), a view
    M = M.reshape(alpha, alpha, K, N, th, tw).transpose(3, 2, 4, 5, 0, 1)
    # Y = AT M A, cropped to the output
    return np.ascontiguousarray(_untile(_output_transform(M, t.AT), *out_shape))
