"""Exact Cook-Toom derivation of the Winograd matrices F(m, r) with sympy.

Winograd's minimal filtering algorithm F(m, r) computes ``m`` outputs of an ``r``-tap
correlation with ``alpha = m + r - 1`` multiplications::

    y = AT [ (G g) * (BT d) ]          (book: ch. 2)

where ``d`` is an input tile of ``alpha`` samples, ``g`` the ``r`` filter taps and ``*`` the
elementwise product. The matrices come from polynomial interpolation at ``alpha - 1`` finite
points plus the point at infinity (the "modified" Toom-Cook algorithm every library uses):

* ``V(k)`` is the ``alpha x k`` Vandermonde matrix, one row ``(1, p, ..., p^(k-1))`` per finite
  point ``p``, and the row ``(0, ..., 0, 1)`` for infinity (it picks the leading coefficient);
* ``f_i = prod_{k != i} (p_i - p_k)`` are the Lagrange denominators (``1`` for infinity);
* ``AT = V(m)^T``, ``G = diag(f)^-1 V(r)`` and ``BT = diag(f) (V(alpha)^-1)^T``.

With ``fractions_in="G"`` (the default, as in wincnn) the Lagrange fractions sit in ``G``, which
is applied to the weights offline, so ``AT`` and ``BT`` keep small integers where possible.
Everything here is exact: points are sympy Rationals, never floats.

The construction fixes the matrices only up to a diagonal change of basis of the Winograd
domain: for any invertible diagonal ``S`` and ``D``, the matrices ``AT (S D)^-1``, ``D G`` and
``S BT`` compute the same linear convolution. A *convention* picks one (see
:data:`CONVENTIONS`). For a linear layer the choice is invisible; once a ReLU acts on
``BT d B`` (Liu et al.'s Winograd-ReLU layer) a sign flip of a row of ``BT`` changes the
function, and once pruning thresholds compare entries of ``U = G g GT`` a scaled row of ``G``
changes which entries are kept, so there the convention is part of the model.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from numbers import Rational as _RationalABC
from typing import Literal

import sympy

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "POINT_SETS",
    "Convention",
    "CookToom",
    "Nested2D",
    "check_convention",
    "cook_toom",
    "nested",
    "residual",
    "resolve_points",
    "verify",
]

R = sympy.Rational

#: Named point sets, each the list of *finite* points in the order they are used (the point at
#: infinity is always added). A sequence set is cut to its first ``m + r - 2`` points; a fixed
#: set only fits the one size it was made for.
POINT_SETS: dict[str, tuple[sympy.Rational, ...]] = {
    # Lavin & Gray / wincnn / NNPACK: 0, +-1, +-2, +-1/2, then +-3, +-1/3, +-4, +-1/4, ...
    "lavin": (
        R(0), R(1), R(-1), R(2), R(-2), R(1, 2), R(-1, 2),
        R(3), R(-3), R(1, 3), R(-1, 3), R(4), R(-4), R(1, 4), R(-1, 4),
    ),
    # Barabasz, Anderson, Soodhalter & Gregg (2020), as tabulated in TVM's winograd_util.py.
    # The prefixes for F(2, 3)..F(5, 3) are their "best" sets in their order; for F(6, 3)..F(8, 3)
    # a prefix holds the same points in another order, which only permutes rows and columns.
    "barabasz": (R(0), R(-1), R(1), R(1, 2), R(-2), R(-1, 2), R(2), R(-1, 4), R(4)),
    # oneDNN's reference F(4, 3) (benchdnn ref_wino.cpp): exactly five finite points.
    "onednn": (R(0), R(5, 8), R(-5, 8), R(3, 2), R(-3, 2)),
}
_FIXED_SIZE_SETS = {"onednn"}

Convention = Literal["lavin", "wincnn", "nnpack"]

#: The sign and scale conventions of the derived matrices. All of them start from the
#: Lagrange construction above with ``BT``'s first row made to start positive (``BT[0, 0] > 0``;
#: wincnn instead makes the Lagrange denominator of row 0 positive, which agrees when the first
#: point is 0, as in every named point set).
CONVENTIONS: dict[str, str] = {
    "lavin": (
        "Lavin & Gray's printed matrices, which Liu et al.'s Winograd-ReLU code uses: the "
        "infinity row of BT (and the infinity column of AT) is negated where needed so that its "
        "first nonzero entry is positive. F(2, 3) gets BT[3] = [0, 1, 0, -1] and "
        "AT[:, 3] = [0, -1]; F(4, 3) equals wincnn's."
    ),
    "wincnn": (
        "andravin/wincnn's matrices: the infinity row of BT holds the coefficients of the monic "
        "polynomial prod_i (x - p_i), so F(2, 3) gets BT[3] = [0, -1, 0, 1] and AT[:, 3] = [0, 1]."
    ),
    "nnpack": (
        "wincnn's signs, with the AT column of every fractional point p = a/b scaled by "
        "b^(m - 1) so that AT is integral, and the matching row of G divided by the same "
        "factor: the F(4x4, 5x5) matrices of SkimCaffe and Yu et al. (from NNPACK), "
        "AT D and D^-1 G with D = diag(1, 1, 1, 1, 1, 8, 8, 1)."
    ),
}

#: The convention every function uses unless told otherwise: Liu et al.'s, so that
#: Winograd-ReLU layers compute what the authors' layers compute.
DEFAULT_CONVENTION: Convention = "lavin"

PointSpec = str | Sequence[int | str | Fraction | float | sympy.Rational] | None


@dataclass(frozen=True)
class CookToom:
    """Exact matrices of F(m, r): ``y = AT [(G g) * (BT d)]``.

    Attributes
    ----------
    m, r : int
        Output tile and filter size; ``alpha = m + r - 1`` is the input tile size.
    points : tuple of sympy.Rational
        The ``alpha - 1`` finite interpolation points (infinity is implicit).
    AT, G, BT : sympy.ImmutableMatrix
        ``(m, alpha)``, ``(alpha, r)`` and ``(alpha, alpha)`` exact matrices.
    convention : str
        The sign/scale convention (a key of :data:`CONVENTIONS`).
    """

    m: int
    r: int
    points: tuple[sympy.Rational, ...]
    AT: sympy.ImmutableMatrix
    G: sympy.ImmutableMatrix
    BT: sympy.ImmutableMatrix
    convention: str = DEFAULT_CONVENTION

    @property
    def alpha(self) -> int:
        """Input tile size ``m + r - 1``: the number of multiplications of F(m, r)."""
        return self.m + self.r - 1


@dataclass(frozen=True)
class Nested2D:
    """The 2-D transform F(m x m, r x r) as Kronecker products of the 1-D matrices.

    On row-major flattened tiles, ``vec(AT M A) = AT2 vec(M)``, ``vec(G g GT) = G2 vec(g)`` and
    ``vec(BT d B) = BT2 vec(d)``, with ``AT2 = AT (x) AT`` and so on.
    """

    base: CookToom
    AT2: sympy.ImmutableMatrix
    G2: sympy.ImmutableMatrix
    BT2: sympy.ImmutableMatrix


def _as_rational(p: object) -> sympy.Rational:
    if isinstance(p, bool):
        raise TypeError(f"interpolation points must be numbers, got {p!r}")
    if isinstance(p, sympy.Rational):
        return p
    if isinstance(p, int | _RationalABC):
        return R(int(p.numerator), int(p.denominator))
    if isinstance(p, numbers.Real):  # float, numpy floats
        f = float(p)
        if f != f or f in (float("inf"), float("-inf")):
            raise ValueError(f"interpolation points must be finite, got {p!r}")
        # The decimal the user typed (0.625 -> 5/8, 0.1 -> 1/10), not the binary float.
        return R(repr(f))
    if isinstance(p, str):
        try:
            return R(p)
        except (TypeError, ValueError, ZeroDivisionError, sympy.SympifyError) as exc:
            raise ValueError(f"cannot read interpolation point {p!r} as a rational") from exc
    raise TypeError(
        "interpolation points must be int, float, Fraction, str or sympy.Rational, got "
        f"{type(p).__name__}"
    )


def resolve_points(m: int, r: int, points: PointSpec = None) -> tuple[sympy.Rational, ...]:
    """The ``m + r - 2`` finite points for F(m, r) from a name, a sequence or ``None``.

    >>> resolve_points(2, 3)
    (0, 1, -1)
    >>> resolve_points(4, 3, "onednn")
    (0, 5/8, -5/8, 3/2, -3/2)
    """
    _check_sizes(m, r)
    need = m + r - 2
    if points is None:
        points = "lavin"
    if isinstance(points, str):
        if points not in POINT_SETS:
            raise ValueError(f"unknown point set {points!r}; expected one of {sorted(POINT_SETS)}")
        available = POINT_SETS[points]
        if points in _FIXED_SIZE_SETS and len(available) != need:
            raise ValueError(
                f"point set {points!r} has {len(available)} finite points and fits only "
                f"m + r - 2 = {len(available)} (F(4, 3)); F({m}, {r}) needs {need}"
            )
        if len(available) < need:
            raise ValueError(
                f"point set {points!r} has only {len(available)} finite points; "
                f"F({m}, {r}) needs m + r - 2 = {need}: pass your own points"
            )
        return tuple(available[:need])
    if isinstance(points, bytes | bytearray | dict) or not hasattr(points, "__iter__"):
        raise TypeError(f"points must be a name or a sequence of numbers, got "
                        f"{type(points).__name__} {points!r}")
    pts = tuple(_as_rational(p) for p in points)
    if len(pts) != need:
        raise ValueError(f"F({m}, {r}) needs m + r - 2 = {need} finite points, got {len(pts)}")
    if len(set(pts)) != len(pts):
        raise ValueError(f"interpolation points must be distinct, got {pts}")
    return pts


def _check_sizes(m: int, r: int) -> None:
    for name, v in (("m", m), ("r", r)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")


def _vandermonde(points: tuple[sympy.Rational, ...], k: int) -> sympy.Matrix:
    """``V(k)``: rows ``(1, p, ..., p^(k-1))`` per finite point, then ``(0, ..., 0, 1)``."""
    rows = [[p**j for j in range(k)] for p in points]
    rows.append([0] * (k - 1) + [1])
    return sympy.Matrix(rows)


def _lagrange_denominators(points: tuple[sympy.Rational, ...]) -> list[sympy.Rational]:
    # f_i = prod_{k != i} (p_i - p_k); the point at infinity has f = 1
    f = [
        sympy.prod([pi - pk for k, pk in enumerate(points) if k != i])
        for i, pi in enumerate(points)
    ]
    return [*f, R(1)]


def check_convention(convention: object) -> str:
    """The convention's name, or a ValueError listing the known ones.

    >>> check_convention("wincnn")
    'wincnn'
    """
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ValueError(
            f"unknown convention {convention!r}; expected one of {sorted(CONVENTIONS)}"
        )
    return convention


def _first_nonzero(row) -> sympy.Rational:
    return next(v for v in row if v != 0)


@lru_cache(maxsize=128)
def _cook_toom_cached(
    m: int, r: int, points: tuple, fractions_in: str, convention: str
) -> CookToom:
    alpha = m + r - 1
    f = _lagrange_denominators(points)
    D = sympy.diag(*f)
    # AT = V(m)^T: evaluate the product polynomial's m output coefficients
    AT = _vandermonde(points, m).T
    # G = D^-1 V(r): evaluate the filter polynomial at each point (scaled by 1/f_i)
    G = _vandermonde(points, r)
    # BT = D (V(alpha)^-1)^T: the Lagrange basis that interpolates back
    BT = (_vandermonde(points, alpha).inv()).T
    if fractions_in == "G":
        G, BT = D.inv() * G, D * BT
    # The first row of BT starts positive (see CONVENTIONS for the other rows).
    if BT[0, 0] < 0:
        BT[0, :] = -BT[0, :]
        G[0, :] = -G[0, :]
    if convention == "lavin" and _first_nonzero(BT[alpha - 1, :]) < 0:
        # S = diag(1, ..., 1, -1): BT -> S BT, AT -> AT S (S = S^-1)
        BT[alpha - 1, :] = -BT[alpha - 1, :]
        AT[:, alpha - 1] = -AT[:, alpha - 1]
    if convention == "nnpack":
        for i, p in enumerate(points):
            # D_ii = b^(m-1) for p = a/b: AT -> AT D, G -> D^-1 G
            scale = sympy.Integer(p.q) ** (m - 1)
            AT[:, i] = AT[:, i] * scale
            G[i, :] = G[i, :] / scale
    return CookToom(
        m=m,
        r=r,
        points=points,
        AT=sympy.ImmutableMatrix(AT),
        G=sympy.ImmutableMatrix(G),
        BT=sympy.ImmutableMatrix(BT),
        convention=convention,
    )


def cook_toom(
    m: int,
    r: int,
    points: PointSpec = None,
    fractions_in: Literal["G", "BT"] = "G",
    *,
    convention: Convention = DEFAULT_CONVENTION,
) -> CookToom:
    """Derive the exact F(m, r) matrices by the Cook-Toom / Lagrange construction.

    Parameters
    ----------
    m : int
        Number of outputs per tile, ``m >= 1``.
    r : int
        Number of filter taps, ``r >= 1``.
    points : str or sequence, optional
        ``None`` or ``"lavin"`` (0, 1, -1, 2, -2, 1/2, -1/2, ...), ``"barabasz"``, ``"onednn"``
        (F(4, 3) only), or ``m + r - 2`` distinct finite points (ints, Fractions, strings such
        as ``"5/8"``, sympy Rationals). Infinity is always the last point.
    fractions_in : {"G", "BT"}
        Which matrix carries the Lagrange denominators ``1/f_i`` (``"G"`` as in wincnn).
    convention : {"lavin", "wincnn", "nnpack"}
        Sign and scale convention (:data:`CONVENTIONS`); ``"lavin"`` by default, Lavin & Gray's
        printed matrices. Every convention computes the same linear convolution; they differ
        once a ReLU or a threshold acts in the Winograd domain.

    Returns
    -------
    CookToom
        Exact sympy matrices ``AT`` (m x alpha), ``G`` (alpha x r), ``BT`` (alpha x alpha).

    Examples
    --------
    >>> F23 = cook_toom(2, 3)
    >>> F23.BT.tolist()
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    >>> F23.AT.tolist()
    [[1, 1, 1, 0], [0, 1, -1, -1]]
    >>> F23.G.tolist()
    [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    >>> cook_toom(2, 3, convention="wincnn").BT[3, :].tolist()
    [[0, -1, 0, 1]]
    >>> cook_toom(4, 5, convention="nnpack").AT[:, 5].T.tolist()
    [[8, 4, 2, 1]]
    >>> cook_toom(4, 3, "onednn").BT[0, :].tolist()
    [[225/256, 0, -169/64, 0, 1, 0]]
    """
    if fractions_in not in ("G", "BT"):
        raise ValueError(f"fractions_in must be 'G' or 'BT', got {fractions_in!r}")
    convention = check_convention(convention)
    pts = resolve_points(m, r, points)
    return _cook_toom_cached(m, r, pts, fractions_in, convention)


def nested(ct: CookToom) -> Nested2D:
    """The 2-D matrices of F(m x m, r x r) as Kronecker products of the 1-D ones.

    Row-major ``vec`` satisfies ``vec(P X Q^T) = (P (x) Q) vec(X)``, so the nested 2-D algorithm
    ``AT [(G g GT) * (BT d B)] A`` is the 1-D algorithm with every matrix squared by ``(x)``.

    >>> n = nested(cook_toom(2, 3))
    >>> n.AT2.shape, n.G2.shape, n.BT2.shape
    ((4, 16), (16, 9), (16, 16))
    """
    kron = sympy.kronecker_product
    return Nested2D(
        base=ct,
        AT2=sympy.ImmutableMatrix(kron(ct.AT, ct.AT)),
        G2=sympy.ImmutableMatrix(kron(ct.G, ct.G)),
        BT2=sympy.ImmutableMatrix(kron(ct.BT, ct.BT)),
    )


def residual(
    ct: CookToom,
    form: Literal["correlation", "convolution"] = "correlation",
    ndim: Literal[1, 2] = 1,
) -> sympy.Matrix:
    """Symbolic difference between the Winograd algorithm and the direct formula.

    ``form="correlation"`` (the filter form used by CNNs): ``AT [(G g) * (BT d)]`` against
    ``y_i = sum_k d_{i+k} g_k`` for ``alpha`` inputs ``d``.
    ``form="convolution"`` (the transposed form, Toom-Cook polynomial multiplication):
    ``BT^T [(G g) * (AT^T x)]`` against ``y_k = sum_{i+j=k} x_i g_j`` for ``m`` inputs ``x``.
    ``ndim=2`` checks the nested 2-D algorithm built from :func:`nested`.

    The result expands to the zero matrix exactly when the algorithm is correct.

    >>> residual(cook_toom(2, 3)).is_zero_matrix
    True
    """
    m, r, a = ct.m, ct.r, ct.alpha
    if form not in ("correlation", "convolution"):
        raise ValueError(f"form must be 'correlation' or 'convolution', got {form!r}")
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    n_in = a if form == "correlation" else m
    if ndim == 1:
        g = sympy.Matrix(sympy.symbols(f"g0:{r}"))
        d = sympy.Matrix(sympy.symbols(f"d0:{n_in}"))
        Gm, Am, Bm = ct.G, ct.AT, ct.BT
        if form == "correlation":
            # y = AT [(G g) * (BT d)]
            wino = Am * (Gm * g).multiply_elementwise(Bm * d)
            direct = sympy.Matrix([sum(d[i + k] * g[k] for k in range(r)) for i in range(m)])
        else:
            # y = B [(G g) * (A x)]   (transposition principle: A = AT^T, B = BT^T)
            wino = Bm.T * (Gm * g).multiply_elementwise(Am.T * d)
            direct = sympy.Matrix(
                [sum(d[i] * g[k - i] for i in range(m) if 0 <= k - i < r) for k in range(a)]
            )
        return (wino - direct).expand()
    n2 = nested(ct)
    gs = sympy.Matrix(r, r, sympy.symbols(f"g0:{r * r}"))
    ds = sympy.Matrix(n_in, n_in, sympy.symbols(f"d0:{n_in * n_in}"))
    vec = lambda X: X.reshape(X.rows * X.cols, 1)  # noqa: E731  row-major
    if form == "correlation":
        # vec(Y) = (AT (x) AT) [ (G (x) G) vec(g) * (BT (x) BT) vec(d) ]
        wino = n2.AT2 * (n2.G2 * vec(gs)).multiply_elementwise(n2.BT2 * vec(ds))
        direct = sympy.Matrix(
            m, m,
            lambda i, j: sum(ds[i + k, j + l] * gs[k, l] for k in range(r) for l in range(r)),
        )
    else:
        wino = n2.BT2.T * (n2.G2 * vec(gs)).multiply_elementwise(n2.AT2.T * vec(ds))

        def conv(i: int, j: int) -> sympy.Expr:
            return sum(
                ds[p, q] * gs[i - p, j - q]
                for p in range(m) for q in range(m)
                if 0 <= i - p < r and 0 <= j - q < r
            )

        direct = sympy.Matrix(a, a, conv)
    return (wino - vec(direct)).expand()


def _coefficients(AT, G, BT) -> list:
    """For each filter tap k, the matrix ``AT diag(G[:, k]) BT``: how output i reads input j."""
    from sympy.polys.domains import QQ
    from sympy.polys.matrices import DomainMatrix

    at = DomainMatrix.from_Matrix(sympy.Matrix(AT)).convert_to(QQ)
    bt = DomainMatrix.from_Matrix(sympy.Matrix(BT)).convert_to(QQ)
    out = []
    for k in range(G.cols):
        scale = DomainMatrix.diag([QQ.convert(sympy.Rational(v)) for v in G[:, k]], QQ)
        out.append((at * scale * bt).to_Matrix())
    return out


def verify(
    ct: CookToom,
    form: Literal["correlation", "convolution"] = "correlation",
    ndim: Literal[1, 2] = 1,
) -> bool:
    """True when the Winograd algorithm equals the direct formula, proved exactly.

    Both sides are bilinear in the filter and the data, so they agree for all inputs exactly
    when they agree on every pair of basis vectors: output ``i`` must read input ``j`` through
    tap ``k`` with coefficient 1 if ``j = i + k`` (``form="correlation"``) and 0 otherwise; in
    the transposed ``form="convolution"``, input ``i`` must reach output ``j = i + k``. This is
    the same proof as expanding :func:`residual` to zero, in exact rational arithmetic, but
    fast enough for F(6x6, 3x3) in 2-D.

    >>> verify(cook_toom(4, 3), ndim=2)
    True
    """
    if form not in ("correlation", "convolution"):
        raise ValueError(f"form must be 'correlation' or 'convolution', got {form!r}")
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    if ndim == 1:
        AT, G, BT, taps = ct.AT, ct.G, ct.BT, [(k,) for k in range(ct.r)]
        m_out, n_in = ct.m, ct.alpha
    else:
        n2 = nested(ct)
        AT, G, BT = n2.AT2, n2.G2, n2.BT2
        taps = [(k, l) for k in range(ct.r) for l in range(ct.r)]
        m_out, n_in = ct.m, ct.alpha
    # coef[tap][i, j] = sum_t AT[i, t] G[t, tap] BT[t, j], the trilinear tensor of the algorithm
    coef = _coefficients(AT, G, BT)
    for tap, C in zip(taps, coef, strict=True):
        if form == "correlation":
            # y_i = sum_j C[i, j] d_j must read d_{i + tap}: C[i, j] = [j == i + tap]
            M, n_out, n_arg = C, m_out, n_in
        else:
            # the transposed algorithm y = BT^T [(G g) * (AT^T x)] has y_j = sum_i C[i, j] x_i,
            # and polynomial multiplication puts x_i g_tap into y_{i + tap}:
            # C^T[j, i] = [j == i + tap]
            M, n_out, n_arg = C.T, n_in, m_out
        for out_flat in range(M.rows):
            out = _unravel(out_flat, (n_out,) * ndim)
            for in_flat in range(M.cols):
                inp = _unravel(in_flat, (n_arg,) * ndim)
                if form == "correlation":
                    want = all(inp[a] == out[a] + tap[a] for a in range(ndim))
                else:
                    want = all(out[a] == inp[a] + tap[a] for a in range(ndim))
                if M[out_flat, in_flat] != int(want):
                    return False
    return True


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    idx = []
    for n in reversed(shape):
        idx.append(flat % n)
        flat //= n
    return tuple(reversed(idx))
