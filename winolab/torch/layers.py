"""``WinogradConv2d``: a convolution layer whose parameter is the Winograd-domain kernel U.

Li et al.'s "Winograd layer" and Liu et al.'s Winograd-ReLU layer. The parameter ``weight`` has
shape ``(out_channels, in_channels, alpha, alpha)``: it holds ``alpha^2`` free numbers per
channel pair, where a spatial kernel holds ``r^2``, so the layer is strictly more expressive than
the convolution it replaces, and a pruned U is in general not ``G g GT`` of any ``r x r`` kernel
(:meth:`WinogradConv2d.to_conv2d` returns the least-squares kernel and says how far off it is).

Because the parameter is an ordinary ``nn.Parameter`` named ``weight`` read in ``forward``,
``torch.nn.utils.prune`` (``l1_unstructured``, ``global_unstructured``, ``remove``) works on the
layer unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from winolab._validate import check_bool, check_m, check_padding
from winolab.derive import (
    DEFAULT_CONVENTION,
    Convention,
    PointSpec,
    check_convention,
    resolve_points,
)
from winolab.torch.functional import _matrices, filter_transform, winograd_domain_conv2d

__all__ = ["Conv2dProjection", "WinogradConv2d"]


class Conv2dProjection(NamedTuple):
    """Result of :meth:`WinogradConv2d.to_conv2d`.

    Attributes
    ----------
    conv : torch.nn.Conv2d
        The spatial layer with the least-squares kernel ``g = argmin ||G g GT - U||``.
    residual : float
        ``||U - G g GT|| / ||U||`` over the whole layer (0 when U came from a spatial kernel).
    """

    conv: nn.Conv2d
    residual: float


class WinogradConv2d(nn.Module):
    """Stride-1 convolution ``y = AT [sum_c U * V] A`` with Winograd-domain weights ``U``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int
        The spatial size ``r`` the layer stands in for; ``alpha = m + r - 1``.
    padding : int or (int, int)
    m : int
        Output tile size (2: F(2x2, 3x3) of Liu et al.; 4: F(4x4, 3x3) of Li et al., Yu et al.).
    relu_in_winograd : bool
        Liu et al.'s Winograd-ReLU: ``V = ReLU(BT d B)``; the input is the pre-activation.
    bias : bool
    convention : {"lavin", "wincnn", "nnpack"}, keyword-only
        Sign/scale convention of the Winograd matrices. The default, ``"lavin"``, is the one
        of Liu et al.'s code: a Winograd-ReLU layer (``relu_in_winograd=True``) computes what
        their layer computes only with it, because ``ReLU(BT d B)`` depends on the signs of
        the rows of ``BT``. Another convention gives another Winograd-ReLU layer; for a linear
        layer every convention computes the same function.
    points : str or sequence, optional
        Interpolation points (see :func:`winolab.derive.cook_toom`).

    Attributes
    ----------
    weight : nn.Parameter, shape (out_channels, in_channels, alpha, alpha)
        The Winograd-domain kernels U. Initialised as ``G g GT`` of a Kaiming-uniform ``g``
        (the initialisation of ``nn.Conv2d``), so a fresh layer is a convolution.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> conv = nn.Conv2d(2, 3, 3, padding=1).double()
    >>> layer = WinogradConv2d.from_conv2d(conv, m=4)
    >>> tuple(layer.weight.shape)
    (3, 2, 6, 6)
    >>> x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    >>> bool((layer(x) - conv(x)).abs().max() < 1e-12)
    True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int | tuple = 1,
        m: int = 2,
        relu_in_winograd: bool = False,
        bias: bool = True,
        points: PointSpec = None,
        device=None,
        dtype=None,
        *,
        convention: Convention = DEFAULT_CONVENTION,
    ) -> None:
        super().__init__()
        for name, v in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.padding = check_padding(padding)
        self.m = check_m(m)
        self.alpha = self.m + kernel_size - 1
        self.relu_in_winograd = check_bool(relu_in_winograd, "relu_in_winograd",
                                           "ReLU after the input transform")
        # resolved once: an exact, hashable tuple (also validates the points)
        self.points = resolve_points(self.m, kernel_size, points)
        self.convention = check_convention(convention)
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, self.alpha, self.alpha, **kw)
        )
        # bias is a flag here: a tensor or list of values goes in layer.bias after construction
        bias = check_bool(bias, "bias", "a learned bias per output channel")
        self.bias = nn.Parameter(torch.empty(out_channels, **kw)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``U = G g GT`` with ``g`` initialised as ``nn.Conv2d`` does (Kaiming uniform)."""
        r = self.kernel_size
        g = torch.empty(
            self.out_channels,
            self.in_channels,
            r,
            r,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        nn.init.kaiming_uniform_(g, a=math.sqrt(5))
        with torch.no_grad():
            self.weight.copy_(filter_transform(g, self.m, self.points,
                                               convention=self.convention))
            if self.bias is not None:
                bound = 1 / math.sqrt(self.in_channels * r * r)
                nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return winograd_domain_conv2d(
            x, self.weight, self.bias, self.padding, self.m, self.points, self.relu_in_winograd,
            convention=self.convention,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, m={self.m}, alpha={self.alpha}, "
            f"relu_in_winograd={self.relu_in_winograd}, bias={self.bias is not None}, "
            f"convention={self.convention!r}"
        )

    @classmethod
    def from_conv2d(
        cls,
        conv: nn.Conv2d,
        m: int = 2,
        relu_in_winograd: bool = False,
        points: PointSpec = None,
        *,
        convention: Convention = DEFAULT_CONVENTION,
    ) -> WinogradConv2d:
        """The Winograd layer computing what ``conv`` computes: ``U = G g GT``.

        ``conv`` must be a stride-1, dilation-1, ungrouped, zero-padded ``nn.Conv2d`` with a
        square kernel (Winograd's algorithm is a stride-1 algorithm).
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
        kh, kw = conv.kernel_size
        problems = []
        if kh != kw:
            problems.append(f"a square kernel (got {kh}x{kw})")
        if tuple(conv.stride) != (1, 1):
            problems.append(f"stride 1 (got {conv.stride})")
        if tuple(conv.dilation) != (1, 1):
            problems.append(f"dilation 1 (got {conv.dilation})")
        if conv.groups != 1:
            problems.append(f"groups=1 (got {conv.groups})")
        if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            problems.append(f"integer zero padding (got {conv.padding!r}, {conv.padding_mode})")
        if problems:
            raise ValueError("WinogradConv2d.from_conv2d needs " + ", ".join(problems))
        layer = cls(
            conv.in_channels,
            conv.out_channels,
            kh,
            tuple(conv.padding),
            m,
            relu_in_winograd,
            conv.bias is not None,
            points,
            device=conv.weight.device,
            dtype=conv.weight.dtype,
            convention=convention,
        )
        with torch.no_grad():
            # U = G g GT
            layer.weight.copy_(filter_transform(conv.weight.detach(), m, layer.points,
                                                convention=layer.convention))
            if conv.bias is not None:
                layer.bias.copy_(conv.bias.detach())
        return layer

    def to_conv2d(self) -> Conv2dProjection:
        """The nearest spatial ``nn.Conv2d`` (least squares) and the relative residual.

        Solves ``min_g ||(G kron G) vec(g) - vec(U)||`` for every channel pair; exact when U
        came from :meth:`from_conv2d`, approximate after Winograd-domain training or pruning.
        """
        r, a2 = self.kernel_size, self.alpha * self.alpha
        U = self.weight.detach()
        basis = (self.points, self.convention)
        G, _, _ = _matrices(self.m, r, basis, torch.float64, str(U.device))
        S = torch.kron(G, G)  # (alpha^2, r^2): vec(G g GT) = S vec(g)
        u = U.to(torch.float64).reshape(-1, a2).t()  # (alpha^2, K C)
        g = torch.linalg.lstsq(S, u).solution  # (r^2, K C)
        # residual = ||U - G g GT|| / ||U||
        res = torch.linalg.norm(S @ g - u) / torch.linalg.norm(u).clamp_min(1e-300)
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            r,
            padding=self.padding,
            bias=self.bias is not None,
            device=U.device,
            dtype=U.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(g.t().reshape(self.out_channels, self.in_channels, r, r))
            if self.bias is not None:
                conv.bias.copy_(self.bias.detach())
        return Conv2dProjection(conv, float(res))
