"""Winograd-domain convolution in PyTorch, with the backward written out (Liu et al.; Li et al.).

The layer computes, for every ``alpha x alpha`` input tile ``d`` (stride ``m``)::

    V = BT d B              (optionally V <- ReLU(V): Liu et al.'s Winograd-ReLU)
    M = sum_c U * V         (alpha^2 independent (tiles x C) @ (C x K) products)
    Y = AT M A              (m x m output tiles, overlap-free)

and the backward of :class:`_WinogradDomainConv` is the one of the papers' custom kernels
(Liu et al.'s Winograd-layer gradients; Li et al.'s Winograd layer)::

    dM = A dY AT                    (per tile)
    dU = sum_tiles dM * V           (a batched GEMM over the alpha^2 positions)
    dV = sum_k U * dM,  dV <- dV * 1[V > 0] with the Winograd ReLU
    dd = B dV BT, overlap-added over the tiles that share pixels

Layout: every Winograd-domain tensor is kept as ``(alpha^2, N * tiles, channels)`` so that the
multiply is one ``torch.bmm``, the transforms are one matrix product each with ``kron(BT, BT)``
or ``kron(AT, AT)``, and the tile copies move whole channel vectors (channels last). Scratch
buffers are recycled between steps (:func:`clear_workspace` frees them). Names and signatures
follow :mod:`winolab.reference`, whose float64 functions are the oracle for this module.
"""

from __future__ import annotations

import weakref
from functools import lru_cache

import numpy as np
import torch

from winolab._validate import check_bool, check_m, check_padding
from winolab.derive import (
    DEFAULT_CONVENTION,
    Convention,
    PointSpec,
    check_convention,
    resolve_points,
)
from winolab.transforms import tile_counts, transforms

__all__ = ["clear_workspace", "filter_transform", "input_transform", "winograd_domain_conv2d"]


@lru_cache(maxsize=128)
def _matrices(m: int, r: int, basis: tuple, dtype: torch.dtype, device: str):
    """``(G, kron(BT, BT), kron(AT, AT))`` as tensors, cached per dtype and device.

    ``basis`` is ``(points, convention)``: the resolved points and the sign/scale convention.

    The Kronecker products are formed in float64 from the exactly derived matrices and
    rounded once to ``dtype``.
    """
    pts, convention = basis
    t = transforms(m, r, pts, dtype=np.float64, convention=convention)
    G, BT, AT = (torch.tensor(a, dtype=torch.float64) for a in (t.G, t.BT, t.AT))
    # kron(BT, BT)[(i, j), (u, v)] = BT[i, u] BT[j, v], so vec(BT d B) = kron(BT, BT) vec(d)
    return tuple(
        a.to(dtype=dtype, device=device).contiguous()
        for a in (G, torch.kron(BT, BT), torch.kron(AT, AT))
    )


@lru_cache(maxsize=32)
def _autocast_dtype(m: int, r: int, basis: tuple, device_type: str) -> torch.dtype:
    """The dtype a Winograd layer computes in under ``torch.autocast`` on ``device_type``.

    The autocast dtype (bfloat16 on the CPU) when ``G``, ``kron(BT, BT)`` and
    ``kron(AT, AT)`` are exactly representable in it, as for F(2x2, 3x3) with Lavin's points;
    float32 otherwise, so that a rounded transform never changes the layer.
    """
    low = torch.get_autocast_dtype(device_type)
    exact = all(
        torch.equal(a, a.to(low).double()) for a in _matrices(m, r, basis, torch.float64, "cpu")
    )
    return low if exact else torch.float32


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


class _Workspace:
    """Reusable scratch tensors, so that every step does not page-fault fresh memory in.

    Large CPU allocations come straight from the OS and are returned on free; touching them
    again costs a page fault per 4 KiB, which at these sizes is a large part of a step. Buffers
    are handed out by ``(tag, shape, dtype, device)`` and given back when no longer needed;
    one that is never given back (a graph dropped before its backward) is simply freed.
    """

    def __init__(self, keep: int = 2):
        self.keep, self.free = keep, {}

    def get(self, tag: str, shape, like: torch.Tensor, zero: bool = False) -> torch.Tensor:
        key = (tag, tuple(shape), like.dtype, like.device)
        stack = self.free.get(key)
        if stack:
            return stack.pop()
        t = torch.empty(shape, dtype=like.dtype, device=like.device)
        return t.zero_() if zero else t

    def put(self, tag: str, t: torch.Tensor) -> None:
        stack = self.free.setdefault((tag, tuple(t.shape), t.dtype, t.device), [])
        if len(stack) < self.keep:
            stack.append(t)

    def clear(self) -> None:
        self.free.clear()


_WORKSPACE = _Workspace()


def clear_workspace() -> None:
    """Free the scratch buffers that the Winograd layers keep between steps."""
    _WORKSPACE.clear()


def _transform_tiles(x: torch.Tensor, KB: torch.Tensor, m: int, alpha: int, geo) -> torch.Tensor:
    """``V = BT d B`` for every tile, as ``(alpha^2, N * tiles, C)`` (channels last).

    ``geo`` is :func:`_geometry`'s result. The caller owns the returned buffer (``"V"``).
    """
    N, C, H, W = x.shape
    _, _, th, tw, (pl, pr, pt, pb) = geo
    hp, wp = H + pt + pb, W + pl + pr
    # zero-padded image, channels last: a tag per padding keeps the zero border (the same
    # shape with another padding would put its image where this one has zeros)
    tag = f"xpad{pt},{pb},{pl},{pr}"
    xp = _WORKSPACE.get(tag, (N, hp, wp, C), x, zero=True)
    xp[:, pt : pt + H, pl : pl + W, :].copy_(x.permute(0, 2, 3, 1))
    # (N, th, tw, C, alpha, alpha) view of the overlapping tiles -> (alpha, alpha, N, th, tw, C)
    tiles = xp.unfold(1, alpha, m).unfold(2, alpha, m).permute(4, 5, 0, 1, 2, 3)
    d = _WORKSPACE.get("d", (alpha * alpha, N * th * tw * C), x)
    d.view(alpha, alpha, N, th, tw, C).copy_(tiles)  # the one im2col copy
    _WORKSPACE.put(tag, xp)
    V = _WORKSPACE.get("V", (alpha * alpha, N * th * tw, C), x)
    # V = BT d B for all tiles at once: vec(V) = kron(BT, BT) vec(d)
    torch.mm(KB, d, out=V.view(alpha * alpha, -1))
    _WORKSPACE.put("d", d)
    return V


class _WinogradDomainConv(torch.autograd.Function):
    """``y = AT [sum_c U * V] A`` with ``V = BT d B`` (or ``ReLU(BT d B)``), explicit backward.

    Winograd-domain tensors are ``(alpha^2, N * tiles, channels)``; the output and the input
    gradient come back in ``torch.channels_last`` memory format, which BatchNorm, ReLU and
    max-pooling keep, so that the next Winograd layer reads its tiles channel-contiguously.
    """

    @staticmethod
    def forward(ctx, x, U, bias, m, r, basis, ph, pw, relu):
        N, C, H, W = x.shape
        K, alpha = U.shape[0], U.shape[2]
        a2 = alpha * alpha
        _, KB, KA = _matrices(m, r, basis, x.dtype, str(x.device))
        geo = _geometry(x.shape, r, m, ph, pw)
        h_out, w_out, th, tw, _ = geo
        NT = N * th * tw
        V = _transform_tiles(x, KB, m, alpha, geo)  # (alpha^2, N tiles, C)
        if relu:
            V.clamp_(min=0)
        # (K, C, alpha, alpha) -> (alpha^2, C, K): one C x K matrix per Winograd position
        Ut = U.permute(2, 3, 1, 0).reshape(a2, C, K).contiguous()  # (a view without it)
        # M = sum_c U * V: alpha^2 GEMMs (N tiles x C) @ (C x K)
        M = _WORKSPACE.get("M", (a2, NT, K), x)
        torch.bmm(V, Ut, out=M)
        # Y = AT M A for every tile: vec(Y) = kron(AT, AT) vec(M)
        Yt = _WORKSPACE.get("Y", (m * m, NT * K), x)
        torch.mm(KA, M.view(a2, -1), out=Yt)
        _WORKSPACE.put("M", M)
        # (m, m, N, th, tw, K) -> (N, th, m, tw, m, K): NHWC output, crop the overhang
        Yt6 = Yt.view(m, m, N, th, tw, K).permute(2, 3, 0, 4, 1, 5)
        y = torch.empty(N, h_out, w_out, K, dtype=x.dtype, device=x.device)
        if th * m == h_out and tw * m == w_out:
            y.view(N, th, m, tw, m, K).copy_(Yt6)
        else:
            y.copy_(Yt6.reshape(N, th * m, tw * m, K)[:, :h_out, :w_out])
        _WORKSPACE.put("Y", Yt)
        if bias is not None:
            y.add_(bias)
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(V, Ut)
            # V goes back to the workspace when the graph is freed (not after the backward:
            # retain_graph=True may run the backward again)
            weakref.finalize(ctx, _WORKSPACE.put, "V", V)
        else:
            _WORKSPACE.put("V", V)
        ctx.geometry = (x.shape, m, r, basis, geo, relu, bias is not None)
        return y.permute(0, 3, 1, 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        V, Ut = ctx.saved_tensors
        (N, C, H, W), m, r, basis, geo, relu, has_bias = ctx.geometry
        h_out, w_out, th, tw, (pl, pr, pt, pb) = geo
        a2, K = Ut.shape[0], Ut.shape[2]
        alpha, NT = m + r - 1, N * th * tw
        _, KB, KA = _matrices(m, r, basis, gy.dtype, str(gy.device))
        gx = gU = gb = None
        # dY as (m, m, N, th, tw, K), zero-extended over the cropped overhang
        gYt = _WORKSPACE.get("gY", (m * m, NT * K), gy)
        gY6 = gYt.view(m, m, N, th, tw, K).permute(2, 3, 0, 4, 1, 5)  # (N, th, m, tw, m, K)
        gy_nhwc = gy.permute(0, 2, 3, 1)
        if th * m == h_out and tw * m == w_out:
            gY6.copy_(gy_nhwc.view(N, th, m, tw, m, K))
        else:
            # the tag keeps the zero border (the overhang) of this buffer intact
            ext = _WORKSPACE.get(f"gyext{h_out},{w_out}", (N, th * m, tw * m, K), gy, zero=True)
            ext[:, :h_out, :w_out].copy_(gy_nhwc)
            gY6.copy_(ext.view(N, th, m, tw, m, K))
            _WORKSPACE.put(f"gyext{h_out},{w_out}", ext)
        # dM = A dY AT for every tile: vec(dM) = kron(AT, AT)^T vec(dY)
        gM = _WORKSPACE.get("gM", (a2, NT, K), gy)
        torch.mm(KA.t(), gYt, out=gM.view(a2, -1))
        _WORKSPACE.put("gY", gYt)
        if ctx.needs_input_grad[1]:
            # dU = sum over images and tiles of V * dM (one GEMM per position)
            gUt = torch.bmm(V.transpose(1, 2), gM)  # (alpha^2, C, K)
            gU = gUt.view(alpha, alpha, C, K).permute(3, 2, 0, 1).contiguous()
        if ctx.needs_input_grad[0]:
            # dV = sum_k U * dM; the Winograd ReLU passes the gradient where V > 0
            gV = _WORKSPACE.get("V", (a2, NT, C), gy)
            # (alpha^2, K, C), contiguous: bmm copies a transposed operand batch by batch
            UtT = Ut.transpose(1, 2).contiguous()
            torch.bmm(gM, UtT, out=gV)
            if relu:
                # dV <- dV * 1[V > 0], in place, in one fused pass (ReLU's own backward)
                torch.ops.aten.threshold_backward.grad_input(gV, V, 0, grad_input=gV)
            # dd = B dV BT for every tile: vec(dd) = kron(BT, BT)^T vec(dV)
            gd = _WORKSPACE.get("d", (a2, NT * C), gy)
            torch.mm(KB.t(), gV.view(a2, -1), out=gd)
            _WORKSPACE.put("V", gV)
            gx = _overlap_add(gd.view(alpha, alpha, N, th, tw, C), m, (H, W), (pt, pl))
            _WORKSPACE.put("d", gd)
        _WORKSPACE.put("gM", gM)
        if has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gU, gb, None, None, None, None, None, None


def _overlap_add(gd: torch.Tensor, m: int, size, offset) -> torch.Tensor:
    """Sum the ``(alpha, alpha, N, th, tw, C)`` tile gradients into the image they overlap.

    Tile ``(p, q)`` covers rows ``p m .. p m + alpha - 1``: cut it into ``m x m`` blocks; block
    ``(bu, bv)`` of every tile lands on the image block ``(p + bu, q + bv)``, so the sum is
    ``ceil(alpha / m)^2`` shifted, non-overlapping adds. They run on the image split into its
    ``m x m`` phases, ``(m, m, N, blocks_h, blocks_w, C)``, where every add moves whole runs of
    ``tw * C`` values (in the image layout the runs are ``C`` long, and short bfloat16 runs
    made these adds most of a backward); ``m^2`` strided copies then put the phases back into
    an ``(N, H, W, C)`` tensor, returned as a contiguous ``channels_last`` NCHW view (a strided
    gradient costs BatchNorm's backward ~10x).
    """
    alpha, _, N, th, tw, C = gd.shape
    nb = -(-alpha // m)
    hb, wb = th + nb - 1, tw + nb - 1
    ph = _WORKSPACE.get("gxph", (m, m, N, hb, wb, C), gd)
    # block (0, 0) of every tile covers phase blocks [0, th) x [0, tw): copy it, zero the rest
    ph[:, :, :, th:].zero_()
    ph[:, :, :, :th, tw:].zero_()
    ph[:, :, :, :th, :tw].copy_(gd[:m, :m])
    for bu in range(nb):
        lu = min(m, alpha - bu * m)
        for bv in range(nb):
            lv = min(m, alpha - bv * m)
            if bu or bv:
                ph[:lu, :lv, :, bu : bu + th, bv : bv + tw].add_(
                    gd[bu * m : bu * m + lu, bv * m : bv * m + lv])
    # image pixel (y, x) is padded pixel (y + pt, x + pl): phase ((y + pt) % m, (x + pl) % m)
    H, W = size
    gx = torch.empty(N, H, W, C, dtype=gd.dtype, device=gd.device)
    for i in range(m):
        y0 = (i - offset[0]) % m
        p0, nh = (y0 + offset[0]) // m, len(range(y0, H, m))
        for j in range(m):
            x0 = (j - offset[1]) % m
            q0, nw = (x0 + offset[1]) // m, len(range(x0, W, m))
            gx[:, y0::m, x0::m].copy_(ph[i, j, :, p0 : p0 + nh, q0 : q0 + nw])
    _WORKSPACE.put("gxph", ph)
    return gx.permute(0, 3, 1, 2)  # NCHW view in channels_last memory


def winograd_domain_conv2d(
    x: torch.Tensor,
    U: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int | tuple = 0,
    m: int = 2,
    points: PointSpec = None,
    relu: bool = False,
    *,
    convention: Convention = DEFAULT_CONVENTION,
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
    convention : {"lavin", "wincnn", "nnpack"}
        Sign/scale convention of the matrices (:data:`winolab.derive.CONVENTIONS`). The
        default is Liu et al.'s; with ``relu=True`` another convention is another layer.

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
    if bias is not None:
        _check_tensor(bias, "bias", 1, f"({K},) (one per output channel)")
        if tuple(bias.shape) != (K,):
            raise ValueError(
                f"bias must have shape ({K},) (one per output channel), got {tuple(bias.shape)}"
            )
    relu = check_bool(relu, "relu", "ReLU after the input transform")
    r = alpha - m + 1
    basis = (resolve_points(m, r, points), check_convention(convention))
    if U.device == x.device and torch.is_autocast_enabled(x.device.type):
        # under torch.autocast: the autocast dtype where the transforms are exact in it
        # (F(2x2, 3x3)); float32 otherwise (F(4x4, 3x3) in bfloat16 errs by ~3%)
        dtype = _autocast_dtype(m, r, basis, x.device.type)
        x, U = x.to(dtype), U.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    if U.dtype != x.dtype or U.device != x.device:
        raise TypeError(f"U ({U.dtype}, {U.device}) and x ({x.dtype}, {x.device}) must match")
    if bias is not None and (bias.dtype != x.dtype or bias.device != x.device):
        raise TypeError(f"bias ({bias.dtype}, {bias.device}) and x ({x.dtype}, {x.device}) "
                        "must match")
    return _WinogradDomainConv.apply(x, U, bias, m, r, basis, ph, pw, relu)


def filter_transform(
    w: torch.Tensor,
    m: int = 2,
    points: PointSpec = None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> torch.Tensor:
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
    basis = (resolve_points(m, r, points), check_convention(convention))
    G, _, _ = _matrices(m, r, basis, w.dtype, str(w.device))
    # U = G g GT
    return torch.einsum("au,kcuv,bv->kcab", G, w, G)


def input_transform(
    x: torch.Tensor,
    r: int = 3,
    m: int = 2,
    padding: int | tuple = 0,
    points: PointSpec = None,
    *,
    convention: Convention = DEFAULT_CONVENTION,
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
    basis = (resolve_points(m, r, points), check_convention(convention))
    _, KB, _ = _matrices(m, r, basis, x.dtype, str(x.device))
    geo = _geometry(x.shape, r, m, ph, pw)
    th, tw = geo[2], geo[3]
    N, C = x.shape[:2]
    buf = _transform_tiles(x, KB, m, alpha, geo)  # (alpha^2, N * tiles, C)
    V = buf.clone()
    _WORKSPACE.put("V", buf)
    return V.view(alpha, alpha, N, th, tw, C).permute(2, 5, 3, 4, 0, 1)
