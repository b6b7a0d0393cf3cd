"""Input checks shared by every convolution in winolab.

Each check says what was expected, so that bad input never reaches numpy's broadcasting and
comes back as a wrong answer or an unreadable trace.
"""

from __future__ import annotations

import numbers

import numpy as np


def _floating(a, name: str, dtype=np.float64) -> np.ndarray:
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numeric array, got {type(a).__name__}") from exc
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{name} must have a floating dtype (float16/32/64), got {arr.dtype}; "
            f"convert it first, e.g. {name}.astype(numpy.float64)"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr if dtype is None else arr.astype(dtype, copy=False)


def check_data(x, dtype=np.float64) -> np.ndarray:
    """``x`` as a finite float array of shape (N, C, H, W)."""
    x = _floating(x, "x", dtype)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {x.ndim} dimensions {x.shape}")
    return x


def check_spatial_weights(w, channels: int | None, square: bool = True, dtype=np.float64):
    """``w`` as a finite float array of shape (K, C, r, r) matching ``channels``."""
    w = _floating(w, "w", dtype)
    if w.ndim != 4:
        raise ValueError(f"w must have shape (K, C, r, r), got {w.ndim} dimensions {w.shape}")
    if square and w.shape[2] != w.shape[3]:
        raise ValueError(f"Winograd convolution needs square r x r kernels, got {w.shape[2:]}")
    if min(w.shape) < 1:
        raise ValueError(f"w must not be empty, got shape {w.shape}")
    if channels is not None and w.shape[1] != channels:
        raise ValueError(
            f"w has {w.shape[1]} input channels but x has {channels}: "
            f"w must be (K, C, r, r) with C = x.shape[1]"
        )
    return w


def check_winograd_weights(U, channels: int, m: int, dtype=np.float64) -> np.ndarray:
    """``U`` as a finite float array of shape (K, C, alpha, alpha) with ``alpha >= m``."""
    U = _floating(U, "U", dtype)
    if U.ndim != 4:
        raise ValueError(
            f"U must have shape (K, C, alpha, alpha), got {U.ndim} dimensions {U.shape}"
        )
    if U.shape[2] != U.shape[3]:
        raise ValueError(f"U must be square in its last two axes (alpha, alpha), got {U.shape}")
    if min(U.shape) < 1:
        raise ValueError(f"U must not be empty, got shape {U.shape}")
    if U.shape[1] != channels:
        raise ValueError(
            f"U has {U.shape[1]} input channels but x has {channels}: "
            f"U must be (K, C, alpha, alpha) with C = x.shape[1]"
        )
    if U.shape[2] < m:
        raise ValueError(
            f"U has alpha = {U.shape[2]}, but alpha = m + r - 1 >= m = {m}: "
            f"for m = {m} and r = 3, U must be (K, C, {m + 2}, {m + 2})"
        )
    return U


def check_bias(bias, K: int, dtype=np.float64) -> np.ndarray | None:
    """``bias`` as None or a finite float vector of length K."""
    if bias is None:
        return None
    b = _floating(bias, "bias", dtype)
    if b.shape != (K,):
        raise ValueError(f"bias must have shape ({K},) (one per output channel), got {b.shape}")
    return b


def _nonneg_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return int(v)


def check_padding(padding) -> tuple[int, int]:
    """``padding`` as ``(ph, pw)`` from an int or a pair of non-negative ints."""
    if isinstance(padding, tuple | list):
        if len(padding) != 2:
            raise ValueError(f"padding must be an int or a pair (ph, pw), got {padding!r}")
        return _nonneg_int(padding[0], "padding"), _nonneg_int(padding[1], "padding")
    p = _nonneg_int(padding, "padding")
    return p, p


def check_m(m) -> int:
    """The output tile size as an int ``>= 1``."""
    return check_size(m, "m (output tile size)")


def check_size(v, name: str) -> int:
    """A positive int (numpy integers too), or a TypeError/ValueError naming ``name``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return int(v)


def check_relu(relu) -> bool:
    """``relu`` as a bool: anything else (a string such as "spatial") is a mistake."""
    if not isinstance(relu, (bool, np.bool_)):
        raise TypeError(f"relu must be True or False (ReLU after the input transform), got "
                        f"{relu!r}")
    return bool(relu)


def output_size(x_shape, kernel: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
    """Stride-1 output size; raises if it would be empty."""
    H, W = x_shape[2], x_shape[3]
    h_out = H + 2 * padding[0] - kernel[0] + 1
    w_out = W + 2 * padding[1] - kernel[1] + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"output would be empty: input {H}x{W} with padding {padding} is smaller than "
            f"the {kernel[0]}x{kernel[1]} kernel"
        )
    return h_out, w_out
