"""The oracle: direct and Winograd convolution in plain, readable float64 numpy.

Read this file top to bottom with the book open beside it. Every function computes in float64
whatever dtype comes in, and every faster path in winolab is tested against its twin here.

Conventions (as in PyTorch): data ``x`` is ``(N, C, H, W)``, spatial weights ``w`` are
``(K, C, r, r)``, Winograd-domain weights ``U`` are ``(K, C, alpha, alpha)`` with
``alpha = m + r - 1``, and "conv2d" is the cross-correlation that
``torch.nn.functional.conv2d`` computes. Only stride 1, dilation 1 and groups 1 exist here:
Winograd's algorithm is a stride-1 algorithm. A strided or dilated convolution is a sum of
stride-1 convolutions of decimated inputs (the decimation trick, book: ch. 4).
"""

from __future__ import annotations

import numpy as np

from winolab._validate import (
    _floating,
    check_bias,
    check_conv_memory,
    check_data,
    check_m,
    check_padding,
    check_relu,
    check_size,
    check_spatial_weights,
    check_winograd_weights,
    output_size,
)
from winolab.derive import DEFAULT_CONVENTION, Convention, PointSpec
from winolab.transforms import WinogradTransforms, _tile, _untile, transforms

__all__ = [
    "direct_conv2d",
    "filter_transform",
    "input_transform",
    "output_transform",
    "winograd_conv2d",
    "winograd_domain_conv2d",
]


def direct_conv2d(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None, padding: int | tuple = 0
) -> np.ndarray:
    """Stride-1 cross-correlation, exactly what ``torch.nn.functional.conv2d`` computes.

    ``y[n, k, i, j] = bias[k] + sum_{c, u, v} x_pad[n, c, i + u, j + v] * w[k, c, u, v]``

    Parameters
    ----------
    x : array, shape (N, C, H, W)
        Input batch, any floating dtype; computed in float64.
    w : array, shape (K, C, kh, kw)
        Filters (rectangular allowed here; the Winograd functions need square ones).
    bias : array, shape (K,), optional
    padding : int or (int, int)
        Zeros added on each side of H and W. No stride, dilation or groups (see module doc).

    Returns
    -------
    numpy.ndarray, float64, shape (N, K, H + 2 ph - kh + 1, W + 2 pw - kw + 1)

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> direct_conv2d(x, np.ones((1, 1, 3, 3)))[0, 0]
    array([[45., 54.],
           [81., 90.]])
    """
    x = check_data(x)
    w = check_spatial_weights(w, x.shape[1], square=False)
    ph, pw = check_padding(padding)
    K, C, kh, kw = w.shape
    h_out, w_out = output_size(x.shape, (kh, kw), (ph, pw))
    check_conv_memory(x.shape, w.shape, (ph, pw))
    bias = check_bias(bias, K)
    xp = _pad(x, (ph, pw))
    # (N, C, h_out, w_out, kh, kw): every kh x kw window of every channel
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    y = np.einsum("ncijuv,kcuv->nkij", windows, w, optimize=True)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def filter_transform(
    w: np.ndarray,
    m: int = 2,
    points: PointSpec = None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """Winograd-domain filters ``U = G g GT`` for every (k, c), shape ``(K, C, alpha, alpha)``.

    >>> U = filter_transform(np.ones((1, 1, 3, 3)))
    >>> U[0, 0]
    array([[1.  , 1.5 , 0.5 , 1.  ],
           [1.5 , 2.25, 0.75, 1.5 ],
           [0.5 , 0.75, 0.25, 0.5 ],
           [1.  , 1.5 , 0.5 , 1.  ]])
    """
    w = check_spatial_weights(w, None)
    t = transforms(check_m(m), w.shape[-1], points, convention=convention)
    return _filter_transform(w, t.G)


def input_transform(
    x: np.ndarray,
    r: int = 3,
    m: int = 2,
    padding: int | tuple = 0,
    points: PointSpec = None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """Transformed input tiles ``V = BT d B``, shape ``(N, C, tiles_h, tiles_w, alpha, alpha)``.

    ``d`` runs over the overlapping ``alpha x alpha`` tiles (stride ``m``) of the zero-padded
    input; tiles that hang over the bottom or right edge see zeros. ``r`` comes before ``m``
    here for backward compatibility (the torch twin takes the same order); pass both by name.

    >>> V = input_transform(np.ones((1, 1, 4, 4)), r=3, m=2)
    >>> V.shape, V[0, 0, 0, 0, 1, 1]
    ((1, 1, 1, 1, 4, 4), np.float64(4.0))
    """
    x = check_data(x)
    m = check_m(m)
    r = check_size(r, "r (filter size)")
    ph, pw = check_padding(padding)
    output_size(x.shape, (r, r), (ph, pw))
    t = transforms(m, r, points, convention=convention)
    return _input_transform(_tiles(x, (ph, pw), m, r), t.BT)


def output_transform(
    M: np.ndarray,
    out_shape: tuple[int, int],
    m: int = 2,
    points: PointSpec = None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """Output tiles ``Y = AT M A`` assembled into ``(N, K, h_out, w_out)``.

    ``M`` is ``(N, K, tiles_h, tiles_w, alpha, alpha)``; the filter size is
    ``r = alpha - m + 1``; ``out_shape`` crops the tiles that overhang the output.
    """
    M = _floating(M, "M")
    if M.ndim != 6 or M.shape[-1] != M.shape[-2]:
        raise ValueError(
            f"M must have shape (N, K, tiles_h, tiles_w, alpha, alpha), got {M.shape}"
        )
    m = check_m(m)
    alpha = M.shape[-1]
    r = alpha - m + 1
    if r < 1:
        raise ValueError(f"M has alpha = {alpha} but m = {m} needs alpha >= m")
    try:
        h_out, w_out = (check_size(n, "out_shape") for n in out_shape)
    except TypeError as exc:
        raise TypeError(f"out_shape must be two ints (h_out, w_out), got {out_shape!r}") from exc
    th, tw = M.shape[2], M.shape[3]
    if not ((th - 1) * m < h_out <= th * m and (tw - 1) * m < w_out <= tw * m):
        raise ValueError(f"out_shape {tuple(out_shape)} does not fit {th} x {tw} tiles of "
                         f"m = {m}: expected ({(th - 1) * m + 1}..{th * m}, "
                         f"{(tw - 1) * m + 1}..{tw * m})")
    t = transforms(m, r, points, convention=convention)
    return _untile(_output_transform(M, t.AT), h_out, w_out)


def winograd_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    padding: int | tuple = 0,
    m: int = 2,
    points: PointSpec = None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """Convolution by Winograd's F(m x m, r x r): ``Y = AT [sum_c (G g GT) * (BT d B)] A``.

    Same result as :func:`direct_conv2d` up to rounding, for any H, W (the last tiles are
    zero-extended and cropped) and any square ``r x r`` kernel.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    w : array, shape (K, C, r, r)
    bias : array, shape (K,), optional
    padding : int or (int, int)
    m : int
        Output tile size; ``alpha = m + r - 1``.
    points : str or sequence, optional
        Interpolation points (see :func:`winolab.derive.cook_toom`).
    convention : {"lavin", "wincnn", "nnpack"}
        Sign/scale convention of the matrices; a linear layer gives the same result with each.

    No stride, dilation or groups: see the module docstring for the decimation trick.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.standard_normal((1, 2, 7, 7)), rng.standard_normal((3, 2, 3, 3))
    >>> y = winograd_conv2d(x, w, padding=1, m=4)
    >>> bool(np.abs(y - direct_conv2d(x, w, padding=1)).max() < 1e-12)
    True
    """
    x = check_data(x)
    w = check_spatial_weights(w, x.shape[1])
    t = transforms(check_m(m), w.shape[-1], points, convention=convention)
    U = _filter_transform(w, t.G)
    pad, out_shape, bias = _check_layer(x, U.shape, bias, padding, t.m)
    return _winograd_layer(x, U, bias, pad, out_shape, t, relu=False)


def winograd_domain_conv2d(
    x: np.ndarray,
    U: np.ndarray,
    bias: np.ndarray | None = None,
    padding: int | tuple = 0,
    m: int = 2,
    points: PointSpec = None,
    relu: bool = False,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> np.ndarray:
    """The Winograd layer: weights live in the Winograd domain (Li et al.; Liu et al.).

    ``y = AT [ sum_c U * V ] A``, with ``V = BT d B``, or with ``relu=True`` Liu et al.'s
    Winograd-ReLU layer ``y = AT [ sum_c U * ReLU(BT d B) ] A``: ReLU after the input transform.

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    U : array, shape (K, C, alpha, alpha)
        Winograd-domain filters; the filter size is ``r = alpha - m + 1``. Any ``U`` is
        allowed, not only ``G g GT`` of some ``r x r`` kernel (a pruned U is not one).
    bias : array, shape (K,), optional
    padding : int or (int, int)
    m : int
        Output tile size.
    points : str or sequence, optional
    relu : bool
        Apply ReLU to the transformed input tiles (Liu et al.'s Winograd-ReLU).
    convention : {"lavin", "wincnn", "nnpack"}
        Sign/scale convention of ``AT``, ``G``, ``BT``. ``U`` must come from the same
        convention. The default, ``"lavin"``, is the one of Liu et al.'s code: with
        ``relu=True`` the convention is part of the model, because ``ReLU(BT d B)`` keeps other
        entries when a row of ``BT`` changes sign (book: ch. 7). Choosing another one for a
        Winograd-ReLU layer gives a different layer, not a different basis for the same one.

    Examples
    --------
    >>> x = np.ones((1, 1, 4, 4))
    >>> U = filter_transform(np.ones((1, 1, 3, 3)))
    >>> winograd_domain_conv2d(x, U)[0, 0]
    array([[9., 9.],
           [9., 9.]])
    """
    x = check_data(x)
    m = check_m(m)
    relu = check_relu(relu)
    U = check_winograd_weights(U, x.shape[1], m)
    pad, out_shape, bias = _check_layer(x, U.shape, bias, padding, m)
    t = transforms(m, U.shape[-1] - m + 1, points, convention=convention)
    return _winograd_layer(x, U, bias, pad, out_shape, t, relu)


def _check_layer(x, U_shape, bias, padding, m: int):
    """Padding, output size and bias of a Winograd layer on checked ``x`` and ``U``."""
    r = U_shape[-1] - m + 1
    ph, pw = check_padding(padding)
    out_shape = output_size(x.shape, (r, r), (ph, pw))
    check_conv_memory(x.shape, U_shape, (ph, pw), m)
    return (ph, pw), out_shape, check_bias(bias, U_shape[0])


# The stages below take checked float arrays and the matrices themselves: every public function
# above validates its arguments once and then only calls these (so do sparse.py, testing.py and
# sparsity.py). They keep any float dtype and any leading axes.


def _pad(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _tiles(x: np.ndarray, padding: tuple[int, int], m: int, r: int) -> np.ndarray:
    """The input tiles ``d`` of the zero-padded ``x``: (N, C, tiles_h, tiles_w, alpha, alpha)."""
    return _tile(_pad(x, padding), m, r)


def _filter_transform(g: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``U = G g GT`` over the last two axes of ``g`` (..., r, r) -> (..., alpha, alpha)."""
    # U = G g GT   (book: ch. 4)
    return np.einsum("au,...uv,bv->...ab", G, g, G)


def _input_transform(d: np.ndarray, BT: np.ndarray, optimize: bool = True) -> np.ndarray:
    """``V = BT d B`` over the last two axes of the tiles ``d`` (..., alpha, alpha).

    ``optimize=False`` sums each entry in one loop, in numpy's order (testing.py measures that).
    """
    # V = BT d B   (book: ch. 4)
    return np.einsum("au,...uv,bv->...ab", BT, d, BT, optimize=optimize)


def _output_transform(M: np.ndarray, AT: np.ndarray, optimize: bool = True) -> np.ndarray:
    """``Y = AT M A`` over the last two axes of ``M`` (..., alpha, alpha) -> (..., m, m)."""
    # Y = AT M A   (book: ch. 4)
    return np.einsum("ia,...ab,jb->...ij", AT, M, AT, optimize=optimize)


def _winograd_layer(
    x: np.ndarray, U: np.ndarray, bias: np.ndarray | None, padding: tuple[int, int],
    out_shape: tuple[int, int], t: WinogradTransforms, relu: bool,
) -> np.ndarray:
    """``y = AT [sum_c U * V] A + bias`` on checked inputs, ``V = BT d B`` or its ReLU."""
    # (N, C, tiles_h, tiles_w, alpha, alpha)
    V = _input_transform(_tiles(x, padding, t.m, t.r), t.BT)
    if relu:
        V = np.maximum(V, 0.0)
    # M = sum_c U * V   (the only multiplications: alpha^2 per tile per (k, c))
    M = np.einsum("kcab,ncijab->nkijab", U, V, optimize=True)
    y = _untile(_output_transform(M, t.AT), *out_shape)
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y
