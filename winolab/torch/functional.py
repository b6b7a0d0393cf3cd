"""Winograd-domain convolution in PyTorch, with the backward written out (Liu et al.; Li et al.).

The layer computes, for every ``alpha x alpha`` input tile ``d`` (stride ``m``)::

    V = BT d B              (optionally V <- ReLU(V): Liu et al.'s Winograd-ReLU)
    M = sum_c U * V         (alpha^2 independent (K x C) @ (C x tiles) products)
    Y = AT M A              (m x m output tiles, overlap-free)

and the backward of :class:`_WinogradDomainConv` is the one of the papers' custom kernels
(notes-papers.md, 1.3 and 2.2)::

    dM = A dY AT                    (per tile)
    dU = sum_tiles dM * V           (a batched GEMM over the alpha^2 positions)
    dV = sum_k U * dM,  dV <- dV * 1[V > 0] with the Winograd ReLU
    dd = B dV BT, overlap-added over the tiles that share pixels

Layout: every Winograd-domain tensor is kept as ``(alpha^2, channels, N * tiles)`` so that the
multiply is one ``torch.bmm`` and the transforms are one matrix product each with
``kron(BT, BT)`` or ``kron(AT, AT)``. Names and signatures follow :mod:`winolab.reference`, whose
float64 functions are the oracle for this module.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from winolab._validate import check_m, check_padding
from winolab.derive import PointSpec, resolve_points
from winolab.transforms import tile_counts, transforms

__all__ = ["filter_transform", "input_transform", "winograd_domain_conv2d"]


@lru_cache(maxsize=128)
def _matrices(m: int, r: int, pts: tuple, dtype: torch.dtype, device: str):
    """``(G, kron(BT, BT), kron(AT, AT))`` as tensors, cached per dtype and device."""
    np_dtype = {torch.float64: np.float64, torch.float32: np.float32,
                torch.float16: np.float16, torch.bfloat16: np.float32}[dtype]
    t = transforms(m, r, pts, dtype=np_dtype)
    G, BT, AT = (torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)
                 for a in (t.G, t.BT, t.AT))
    # kron(BT, BT)[(i, j), (u, v)] = BT[i, u] BT[j, v], so vec(BT d B) = kron(BT, BT) vec(d)
    return G, torch.kron(BT, BT).contiguous(), torch.kron(AT, AT).contiguous()


def _check_tensor(a, name: str, ndim: int, shape_text: str) -> None:
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(a).__name__}")
    if not a.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_text}, got {tuple(a.shape)}")


def _geometry(x_shape, r: int, m: int, ph: int, pw: int):
    """Output size, tile counts and the padding that makes the tiles cover the output."""
    H, W = x_shape[2], x_shape[3]
    h_out, w_out = H + 2 * ph - r + 1, W + 2 * pw - r + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"output would be empty: input {H}x{W} with padding ({ph}, {pw}) is smaller than "
            f"the {r}x{r} kernel"
        )
    th, tw = tile_counts(h_out, w_out, m)
    alpha = m + r - 1
    # zero-extend bottom/right so that th x tw tiles of stride m fit: (t - 1) m + alpha rows
    extra_h = (th - 1) * m + alpha - (H + 2 * ph)
    extra_w = (tw - 1) * m + alpha - (W + 2 * pw)
    return h_out, w_out, th, tw, (pw, pw + extra_w, ph, ph + extra_h)


def _transform_tiles(x: torch.Tensor, KB: torch.Tensor, m: int, alpha: int, pad) -> torch.Tensor:
    """``V = BT d B`` for every tile, as ``(alpha^2, C, N * tiles)``."""
    N, C = x.shape[:2]
    xp = F.pad(x, pad)
    # (N, C, th, tw, alpha, alpha): overlapping tiles, stride m (a view)
    d = xp.unfold(2, alpha, m).unfold(3, alpha, m)
    th, tw = d.shape[2], d.shape[3]
    # (alpha, alpha, C, N, th, tw) -> (alpha^2, C * N * tiles): the one im2col copy
    d = d.permute(4, 5, 1, 0, 2, 3).reshape(alpha * alpha, C * N * th * tw)
    # V = BT d B, all tiles at once: vec(V) = kron(BT, BT) vec(d)
    return (KB @ d).view(alpha * alpha, C, N * th * tw)


class _WinogradDomainConv(torch.autograd.Function):
    """``y = AT [sum_c U * V] A`` with ``V = BT d B`` (or ``ReLU(BT d B)``), explicit backward."""

    @staticmethod
    def forward(ctx, x, U, bias, m, r, pts, ph, pw, relu):
        N, C, H, W = x.shape
        K, alpha = U.shape[0], U.shape[2]
        _, KB, KA = _matrices(m, r, pts, x.dtype, str(x.device))
        h_out, w_out, th, tw, pad = _geometry(x.shape, r, m, ph, pw)
        V = _transform_tiles(x, KB, m, alpha, pad)  # (alpha^2, C, N * tiles)
        if relu:
            V.clamp_(min=0)
        # (K, C, alpha, alpha) -> (alpha^2, K, C): one K x C matrix per Winograd position
        Ut = U.permute(2, 3, 0, 1).reshape(alpha * alpha, K, C)
        # M = sum_c U * V: alpha^2 GEMMs (K x C) @ (C x N tiles)
        M = torch.bmm(Ut, V)
        # Y = AT M A for every tile: vec(Y) = kron(AT, AT) vec(M)
        Y = (KA @ M.view(alpha * alpha, K * N * th * tw)).view(m, m, K, N, th, tw)
        # (m, m, K, N, th, tw) -> (N, K, th, m, tw, m) -> (N, K, th m, tw m), crop the overhang
        y = Y.permute(3, 2, 4, 0, 5, 1).reshape(N, K, th * m, tw * m)[:, :, :h_out, :w_out]
        if bias is not None:
            y = y + bias.view(1, K, 1, 1)
        elif th * m != h_out or tw * m != w_out:
            y = y.contiguous()
        ctx.save_for_backward(V, Ut)
        ctx.geometry = (x.shape, m, r, pts, pad, th, tw, relu, bias is not None)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        V, Ut = ctx.saved_tensors
        (N, C, H, W), m, r, pts, pad, th, tw, relu, has_bias = ctx.geometry
        a2, K = Ut.shape[0], Ut.shape[1]
        alpha = m + r - 1
        _, KB, KA = _matrices(m, r, pts, gy.dtype, str(gy.device))
        gx = gU = gb = None
        # zero-extend dY over the cropped overhang: (N, K, th m, tw m)
        gy_full = F.pad(gy, (0, tw * m - gy.shape[3], 0, th * m - gy.shape[2]))
        # (N, K, th, m, tw, m) -> (m, m, K, N, th, tw) -> (m^2, K * N * tiles)
        gY = gy_full.view(N, K, th, m, tw, m).permute(3, 5, 1, 0, 2, 4).reshape(m * m, -1)
        # dM = A dY AT for every tile: vec(dM) = kron(AT, AT)^T vec(dY)
        gM = (KA.t() @ gY).view(a2, K, N * th * tw)
        if ctx.needs_input_grad[1]:
            # dU = sum over images and tiles of dM * V (one GEMM per position)
            gU = torch.bmm(gM, V.transpose(1, 2)).view(alpha, alpha, K, C).permute(2, 3, 0, 1)
        if ctx.needs_input_grad[0]:
            # dV = sum_k U * dM; the Winograd ReLU passes the gradient where V > 0
            gV = torch.bmm(Ut.transpose(1, 2), gM)  # (alpha^2, C, N * tiles)
            if relu:
                gV.mul_(V > 0)
            # dd = B dV BT for every tile: vec(dd) = kron(BT, BT)^T vec(dV)
            gd = (KB.t() @ gV.view(a2, C * N * th * tw)).view(alpha, alpha, C, N, th * tw)
            # (N, C alpha^2, tiles), then overlap-add the tiles into the padded image
            gd = gd.permute(3, 2, 0, 1, 4).reshape(N, C * a2, th * tw)
            hp, wp = H + pad[2] + pad[3], W + pad[0] + pad[1]
            gxp = F.fold(gd, (hp, wp), kernel_size=alpha, stride=m)
            gx = gxp[:, :, pad[2]:pad[2] + H, pad[0]:pad[0] + W]
        if has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gU, gb, None, None, None, None, None, None


def winograd_domain_conv2d(
    x: torch.Tensor,
    U: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int | tuple = 0,
    m: int = 2,
    points: PointSpec = None,
    relu: bool = False,
) -> torch.Tensor:
    """The Winograd layer ``y = AT [sum_c U * V] A`` with ``V = BT d B``, differentiable.

    Torch twin of :func:`winolab.reference.winograd_domain_conv2d` (same signature): the
    weights ``U`` live in the Winograd domain (Li et al.), and ``relu=True`` gives Liu et al.'s
    Winograd-ReLU layer ``y = AT [sum_c U * ReLU(BT d B)] A``. The backward is explicit.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
    U : Tensor, shape (K, C, alpha, alpha)
        Winograd-domain filters, ``alpha = m + r - 1``; any U, not only ``G g GT``.
    bias : Tensor, shape (K,), optional
    padding : int or (int, int)
    m : int
        Output tile size: 2 gives F(2x2, 3x3) for ``alpha = 4``, 4 gives F(4x4, 3x3) for 6.
    points : str or sequence, optional
        Interpolation points (see :func:`winolab.derive.cook_toom`).
    relu : bool
        Apply ReLU to the transformed input tiles.

    Returns
    -------
    Tensor, shape (N, K, H + 2 ph - r + 1, W + 2 pw - r + 1), dtype of ``x``.

    Examples
    --------
    >>> x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    >>> U = filter_transform(torch.ones(1, 1, 3, 3, dtype=torch.float64))
    >>> winograd_domain_conv2d(x, U)[0, 0]
    tensor([[9., 9.],
            [9., 9.]], dtype=torch.float64)
    """
    _check_tensor(x, "x", 4, "(N, C, H, W)")
    _check_tensor(U, "U", 4, "(K, C, alpha, alpha)")
    m = check_m(m)
    ph, pw = check_padding(padding)
    K, C, alpha, alpha2 = U.shape
    if alpha != alpha2:
        raise ValueError(f"U must be square in its last two axes (alpha, alpha), got {U.shape}")
    if C != x.shape[1]:
        raise ValueError(
            f"U has {C} input channels but x has {x.shape[1]}: U must be (K, C, alpha, alpha) "
            f"with C = x.shape[1]"
        )
    if alpha < m:
        raise ValueError(f"U has alpha = {alpha} but alpha = m + r - 1 >= m = {m}")
    if U.dtype != x.dtype or U.device != x.device:
        raise TypeError(f"U ({U.dtype}, {U.device}) and x ({x.dtype}, {x.device}) must match")
    if bias is not None and tuple(bias.shape) != (K,):
        raise ValueError(f"bias must have shape ({K},) (one per output channel), got "
                         f"{tuple(bias.shape)}")
    r = alpha - m + 1
    pts = resolve_points(m, r, points)
    return _WinogradDomainConv.apply(x, U, bias, m, r, pts, ph, pw, bool(relu))


def filter_transform(w: torch.Tensor, m: int = 2, points: PointSpec = None) -> torch.Tensor:
    """Winograd-domain filters ``U = G g GT`` of spatial filters ``w`` (K, C, r, r).

    Torch twin of :func:`winolab.reference.filter_transform`; differentiable.

    >>> filter_transform(torch.ones(1, 1, 3, 3))[0, 0, 1, 1].item()
    2.25
    """
    _check_tensor(w, "w", 4, "(K, C, r, r)")
    if w.shape[2] != w.shape[3]:
        raise ValueError(f"Winograd convolution needs square r x r kernels, got {w.shape[2:]}")
    m = check_m(m)
    r = w.shape[-1]
    G, _, _ = _matrices(m, r, resolve_points(m, r, points), w.dtype, str(w.device))
    # U = G g GT
    return torch.einsum("au,kcuv,bv->kcab", G, w, G)


def input_transform(
    x: torch.Tensor, r: int = 3, m: int = 2, padding: int | tuple = 0, points: PointSpec = None
) -> torch.Tensor:
    """Transformed input tiles ``V = BT d B``, shape ``(N, C, tiles_h, tiles_w, alpha, alpha)``.

    Torch twin of :func:`winolab.reference.input_transform`.

    >>> V = input_transform(torch.ones(1, 1, 4, 4, dtype=torch.float64), r=3, m=2)
    >>> tuple(V.shape), V[0, 0, 0, 0, 1, 1].item()
    ((1, 1, 1, 1, 4, 4), 4.0)
    """
    _check_tensor(x, "x", 4, "(N, C, H, W)")
    m = check_m(m)
    ph, pw = check_padding(padding)
    alpha = m + r - 1
    _, KB, _ = _matrices(m, r, resolve_points(m, r, points), x.dtype, str(x.device))
    _, _, th, tw, pad = _geometry(x.shape, r, m, ph, pw)
    N, C = x.shape[:2]
    V = _transform_tiles(x, KB, m, alpha, pad)  # (alpha^2, C, N * tiles)
    return V.view(alpha, alpha, C, N, th, tw).permute(3, 2, 4, 5, 0, 1)
