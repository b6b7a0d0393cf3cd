"""Input checks shared by every convolution in winolab.

Each check says what was expected, so that bad input never reaches numpy's broadcasting and
comes back as a wrong answer or an unreadable trace.
"""

from __future__ import annotations

import math
import numbers
import os

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
            f"U has alpha = {U.shape[2]}, but alpha = m + r - 1 >= m = {m}: for m = {m} and an "
            f"r x r filter, U must be (K, C, {m} + r - 1, {m} + r - 1), e.g. "
            f"(K, C, {m + 2}, {m + 2}) for r = 3"
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


def check_bool(v, name: str, meaning: str = "") -> bool:
    """``v`` as a bool (numpy's too); ``"no"``, ``0.5``, ``None`` or ``1`` are mistakes.

    ``meaning`` goes into the message in parentheses, e.g. what ``True`` switches on.

    >>> check_bool(np.True_, "bias")
    True
    >>> check_bool("no", "bias")
    Traceback (most recent call last):
    ...
    TypeError: bias must be True or False, got 'no'
    """
    if not isinstance(v, (bool, np.bool_)):
        why = f" ({meaning})" if meaning else ""
        raise TypeError(f"{name} must be True or False{why}, got {v!r}")
    return bool(v)


def check_relu(relu) -> bool:
    """``relu`` as a bool: anything else (a string such as "spatial") is a mistake."""
    return check_bool(relu, "relu", "ReLU after the input transform")


def output_size(x_shape, kernel: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
    """Stride-1 output size; raises if it would be empty or could not be allocated.

    Every caller allocates at least one output channel ``(N, 1, h_out, w_out)`` or a padded
    input at least that large, so that much is checked here (:func:`check_buffers`).
    """
    H, W = x_shape[2], x_shape[3]
    h_out = H + 2 * padding[0] - kernel[0] + 1
    w_out = W + 2 * padding[1] - kernel[1] + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(
            f"output would be empty: input {H}x{W} with padding {padding} is smaller than "
            f"the {kernel[0]}x{kernel[1]} kernel"
        )
    check_buffers({"one output channel": (x_shape[0], 1, h_out, w_out)})
    return h_out, w_out


#: Buffers above this many bytes are refused before numpy tries to allocate them. ``None``
#: (the default): the memory the machine has available at the time of the call.
MAX_BUFFER_BYTES: int | None = None

# with the default limit, smaller requests are not checked at all (no cost in the common case)
_CHECK_ABOVE = 2**28


class BufferTooLargeError(ValueError, MemoryError):
    """The buffers some inputs need exceed the memory available; the message says how much."""


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_buffers(buffers: dict[str, tuple[int, ...]], itemsize: int = 8) -> None:
    """Refuse, with the sizes, buffers that together exceed :data:`MAX_BUFFER_BYTES`.

    ``buffers`` maps a name to a shape of ``itemsize``-byte numbers; the sum is a lower bound
    of what the computation needs (numpy's temporaries come on top).

    >>> check_buffers({"padded x": (1, 1, 2000004, 2000004)})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    winolab._validate.BufferTooLargeError: these inputs need at least 2.98e+04 GiB ...
    """
    sizes = {k: math.prod(int(n) for n in shape) * itemsize for k, shape in buffers.items()}
    total = sum(sizes.values())
    if MAX_BUFFER_BYTES is None and total <= _CHECK_ABOVE:
        return
    limit = MAX_BUFFER_BYTES if MAX_BUFFER_BYTES is not None else _available_bytes()
    if limit is None or total <= limit:
        return
    where = ("the limit winolab._validate.MAX_BUFFER_BYTES" if MAX_BUFFER_BYTES is not None
             else "the memory available")
    parts = "; ".join(f"{k} {tuple(int(n) for n in shape)}: {_gib(sizes[k])}"
                      for k, shape in buffers.items())
    raise BufferTooLargeError(
        f"these inputs need at least {_gib(total)} ({total} bytes) for their buffers ({parts}), "
        f"more than {where}, {_gib(limit)}: use a smaller batch, image, padding, kernel or "
        f"channel count"
    )


def check_conv_memory(x_shape, w_shape, padding: tuple[int, int], m: int | None = None) -> None:
    """The float64 buffers of a direct (``m`` None) or Winograd convolution, checked.

    Direct: the padded input, its ``kh x kw`` windows (einsum copies them) and the output.
    Winograd (``w_shape`` is U's ``(K, C, alpha, alpha)``): the padded input, the input tiles
    ``V``, their products ``M`` and the output.

    >>> check_conv_memory((1, 1, 1024, 1024), (1, 1, 512, 512), (511, 511))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    winolab._validate.BufferTooLargeError: these inputs need at least 4.6e+03 GiB ...
    """
    N, C, H, W = x_shape
    K, _, kh, kw = w_shape
    # a Winograd U is alpha x alpha for an r x r kernel, r = alpha - m + 1
    rh, rw = (kh, kw) if m is None else (kh - m + 1, kw - m + 1)
    h_out, w_out = H + 2 * padding[0] - rh + 1, W + 2 * padding[1] - rw + 1
    buffers = {"padded x": (N, C, H + 2 * padding[0], W + 2 * padding[1])}
    if m is None:
        buffers["windows"] = (N, C, h_out, w_out, kh, kw)
    else:
        th, tw = -(-h_out // m), -(-w_out // m)
        buffers["V"] = (N, C, th, tw, kh, kw)
        buffers["M"] = (N, K, th, tw, kh, kw)
    buffers["y"] = (N, K, h_out, w_out)
    check_buffers(buffers)
