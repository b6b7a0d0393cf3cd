"""Checks of a convolution against the float64 oracle, for winolab's tests and for coursework.

Every float comparison in winolab (and in coursework) goes through :func:`assert_conv_close`,
a norm-wise check as in oneDNN's benchdnn: ``||actual - desired|| / ||desired|| <= bound``,
where the bound depends on the tile size ``m``, the filter size ``r``, the interpolation points
and the dtype the result was computed in, because Winograd's transforms amplify rounding.
The bounds are :data:`TOLERANCES`, measured by the accuracy study :mod:`winolab.accuracy` (its
docstring gives the protocol and what it does not cover). :func:`random_case` draws exercises.

Compare outputs of at least a few dozen values: a norm-wise relative error over a handful of
numbers blows up whenever they happen to cancel to nearly zero.

The study used to live here. Its public names (``SAFETY_FACTOR``, ``ErrorMeasurement``,
``FP32_ERROR_RUNS``, ``measure_fp32_error``, ``measure_tolerance``, ``measure_tolerances``,
``winograd_conv2d_in``, ``write_fp32_error_json``) still import from ``winolab.testing``, and
``python -m winolab.testing --tolerances`` / ``--fp32-error PATH`` still run it: the recorded
``results/fp32_error.json`` and code written against the old home name them.

>>> tolerance(2, dtype="float32") < tolerance(4, dtype="float32") < tolerance(6, dtype="float32")
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from winolab._validate import _nonneg_int, check_bool, check_m, check_size
from winolab.derive import POINT_SETS, PointSpec, resolve_points

__all__ = [
    "TOLERANCES",
    "ConvCase",
    "assert_conv_close",
    "random_case",
    "relative_error",
    "tolerance",
]

# (points, dtype, r) -> bounds for m = 1, ..., 6 (None: not covered). Printed by
# ``python -m winolab.accuracy --tolerances``; winolab.accuracy's docstring has the protocol.
_MEASURED: dict[tuple[str, str, int], tuple[float | None, ...]] = {
    ('lavin', 'float32', 1): (6.4e-07, 6.4e-07, 1.5e-06, 1.2e-06, 5.1e-06, 1.1e-05),
    ('lavin', 'float32', 2): (6.7e-07, 1.5e-06, 1.2e-06, 4.6e-06, 7.4e-06, 1.5e-05),
    ('lavin', 'float32', 3): (1.6e-06, 1.2e-06, 4.1e-06, 6.6e-06, 1.2e-05, 1.4e-05),
    ('lavin', 'float32', 4): (1.5e-06, 4.2e-06, 7.1e-06, 1.2e-05, 1.6e-05, 0.00018),
    ('lavin', 'float32', 5): (5.7e-06, 8.4e-06, 1.3e-05, 1.6e-05, 0.00022, 0.00082),
    ('lavin', 'float64', 1): (8.1e-16, 8.1e-16, 2.9e-15, 2.5e-15, 9.1e-15, 2.2e-14),
    ('lavin', 'float64', 2): (2.5e-15, 3.5e-15, 2.9e-15, 9.2e-15, 1.4e-14, 2.8e-14),
    ('lavin', 'float64', 3): (4.1e-15, 3.7e-15, 7.9e-15, 1.4e-14, 2.3e-14, 2.7e-14),
    ('lavin', 'float64', 4): (3.6e-15, 8.1e-15, 1.4e-14, 2.2e-14, 2.9e-14, 3.5e-13),
    ('lavin', 'float64', 5): (1.2e-14, 1.8e-14, 2.4e-14, 2.9e-14, 2.8e-13, 9.7e-13),
    ('lavin', 'float16', 3): (0.013, 0.0085, 0.036, 0.048, None, None),
    ('barabasz', 'float32', 1): (6.4e-07, 6.4e-07, 1.5e-06, 1.3e-06, 5e-06, 6.6e-06),
    ('barabasz', 'float32', 2): (6.7e-07, 1.4e-06, 1.2e-06, 4.9e-06, 5.9e-06, 1.6e-05),
    ('barabasz', 'float32', 3): (1.6e-06, 1.2e-06, 4.4e-06, 5e-06, 1.3e-05, 1.4e-05),
    ('barabasz', 'float32', 4): (1.5e-06, 4.4e-06, 5.4e-06, 1.3e-05, 1.6e-05, 0.00014),
    ('barabasz', 'float32', 5): (6.4e-06, 6e-06, 1.4e-05, 1.6e-05, 0.00015, 0.0002),
    ('barabasz', 'float64', 1): (8.1e-16, 8.1e-16, 2.9e-15, 2.5e-15, 8.8e-15, 1.2e-14),
    ('barabasz', 'float64', 2): (2.5e-15, 3.4e-15, 2.9e-15, 1e-14, 1.1e-14, 2.6e-14),
    ('barabasz', 'float64', 3): (4.2e-15, 3.7e-15, 8.3e-15, 9.6e-15, 2.2e-14, 2.7e-14),
    ('barabasz', 'float64', 4): (3.6e-15, 8.8e-15, 9.6e-15, 2.3e-14, 2.8e-14, 2.8e-13),
    ('barabasz', 'float64', 5): (1.3e-14, 1.2e-14, 2.5e-14, 2.9e-14, 2.5e-13, 3.8e-13),
    ('barabasz', 'float16', 3): (0.013, 0.0085, 0.034, 0.035, None, None),
    ('onednn', 'float32', 3): (None, None, None, 3.4e-06, None, None),
    ('onednn', 'float64', 3): (None, None, None, 7e-15, None, None),
    ('onednn', 'float16', 3): (None, None, None, 0.025, None, None),
}

#: Relative L2 bounds keyed by ``(m, points name, dtype name, r)``.
TOLERANCES: dict[tuple[int, str, str, int], float] = {
    (m, pts, dt, r): bound
    for (pts, dt, r), row in _MEASURED.items()
    for m, bound in enumerate(row, start=1)
    if bound is not None
}

_FLOATS = ("float16", "float32", "float64")


def _dtype_name(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype).removeprefix("torch.")  # torch.float32 and friends
    if name not in _FLOATS:
        raise TypeError(f"dtype must be one of {_FLOATS} (or the torch equivalent), got {dtype}")
    return name


def _points_name(m: int, r: int, points: PointSpec) -> str:
    """The name of a point set, also when it is given as the named set's points."""
    pts = resolve_points(m, r, points)  # bad sizes, unknown names and misfits raise here
    if points is None or isinstance(points, str):
        return points or "lavin"
    for name, named in POINT_SETS.items():
        # a prefix of a sequence set; the fixed set (onednn) only whole
        if tuple(named[: len(pts)]) == pts and (name != "onednn" or len(named) == len(pts)):
            return name
    return ",".join(str(p) for p in pts)


def tolerance(
    m: int = 2, points: PointSpec = None, dtype=np.float32, r: int = 3
) -> float:
    """The measured relative L2 bound for F(m x m, r x r) computed in ``dtype``.

    >>> tolerance(2, dtype="float32") < 1e-5 < tolerance(4, dtype="float16")
    True
    """
    key = (m, _points_name(m, r, points), _dtype_name(dtype), r)
    if key not in TOLERANCES:
        covered = sorted(k for k in TOLERANCES if k[1:3] == key[1:3])
        raise ValueError(
            f"no measured tolerance for (m, points, dtype, r) = {key}; measure one with "
            f"winolab.accuracy.measure_tolerance(m, r, points, dtype). Covered for "
            f"{key[1]!r} in {key[2]}: {[(k[0], k[3]) for k in covered] or 'nothing'} as (m, r)"
        )
    return TOLERANCES[key]


def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def relative_error(actual, desired) -> float:
    """Norm-wise relative error ``||actual - desired|| / ||desired||`` in float64.

    >>> relative_error([3.0, 4.0], [3.0, 4.5]) == 0.5 / math.hypot(3.0, 4.5)
    True
    """
    a, d = _to_numpy(actual), _to_numpy(desired)
    for name, v in (("actual", a), ("desired", d)):
        if v.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {v.dtype}")
    if a.shape != d.shape:
        raise ValueError(f"actual has shape {a.shape} but desired has shape {d.shape}: "
                         "expected the same shape")
    a, d = a.astype(np.float64), d.astype(np.float64)
    scale = np.linalg.norm(d)
    diff = np.linalg.norm(a - d)
    # an all-zero desired: only an all-zero actual is close
    return float(diff / scale) if scale > 0 else (0.0 if diff == 0 else math.inf)


def assert_conv_close(
    actual, desired, m: int = 2, points: PointSpec = None, dtype=None, r: int = 3,
    err_msg: str = "",
) -> None:
    """Assert ``||actual - desired|| / ||desired|| <= tolerance(m, points, dtype, r)``.

    ``dtype`` is the precision ``actual`` was computed in (default: ``actual``'s dtype);
    ``desired`` should be the float64 oracle (:mod:`winolab.reference`).

    >>> from winolab.reference import direct_conv2d, winograd_conv2d
    >>> c = random_case(0)
    >>> y = winograd_conv2d(c.x.astype("float32"), c.w.astype("float32"), m=c.m)
    >>> assert_conv_close(y.astype("float32"), direct_conv2d(c.x, c.w), m=c.m)
    """
    a, d = _to_numpy(actual), _to_numpy(desired)
    if dtype is None:
        dtype = a.dtype if a.dtype.kind == "f" else None
        if dtype is None:
            raise TypeError(f"actual has dtype {a.dtype}; pass dtype= (the compute precision)")
    bound = tolerance(m, points, dtype, r)
    key = (m, _points_name(m, r, points), _dtype_name(dtype), r)
    prefix = f"{err_msg}\n" if err_msg else ""
    if a.shape != d.shape:
        raise AssertionError(f"{prefix}shapes differ: actual {a.shape}, desired {d.shape}")
    if not np.isfinite(a).all():
        raise AssertionError(f"{prefix}actual contains NaN or inf ({key})")
    err = relative_error(a, d)
    if not err <= bound:
        raise AssertionError(
            f"{prefix}relative L2 error {err:.3g} exceeds the measured tolerance {bound:.3g} "
            f"for (m, points, dtype, r) = {key}"
        )


@dataclass(frozen=True)
class ConvCase:
    """A random convolution problem: data, weights, bias, padding and a Winograd tile size."""

    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray | None
    padding: tuple[int, int]
    m: int
    points: str

    @property
    def r(self) -> int:
        """Filter size."""
        return self.w.shape[-1]

    def reference(self) -> np.ndarray:
        """The float64 oracle :func:`winolab.reference.direct_conv2d` for this case."""
        from winolab.reference import direct_conv2d

        return direct_conv2d(self.x, self.w, self.bias, self.padding)


def random_case(
    seed: int = 0, *, m: int | None = None, r: int = 3, points: str = "lavin",
    max_channels: int = 8, max_size: int = 12, bias: bool = True, dtype=np.float64,
) -> ConvCase:
    """A reproducible random convolution for exercises: sizes, padding and values from ``seed``.

    >>> c = random_case(3)
    >>> c.x.shape, c.w.shape, c.padding, c.m
    ((1, 2, 12, 10), (2, 2, 3, 3), (0, 1), 4)
    """
    seed = _nonneg_int(seed, "seed")
    r = check_size(r, "r (filter size)")
    max_channels = check_size(max_channels, "max_channels")
    max_size = check_size(max_size, "max_size")
    bias = check_bool(bias, "bias", "draw a bias vector")
    dtype = np.dtype(_dtype_name(dtype))
    rng = np.random.default_rng(seed)
    if m is None:
        m = int(rng.choice([2, 4]))
    m = check_m(m)
    N = int(rng.integers(1, 3))
    C, K = (int(v) for v in rng.integers(1, max_channels + 1, 2))
    padding = tuple(int(p) for p in rng.integers(0, r // 2 + 1, 2))
    if max_size < r:
        raise ValueError(f"max_size must be >= r = {r}, got {max_size}")
    # at least 4 x 4 outputs where max_size allows: see the module docstring on tiny outputs
    H, W = (int(v) for v in rng.integers(min(r + 3, max_size), max_size + 1, 2))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = (rng.standard_normal((K, C, r, r)) / math.sqrt(C * r * r)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    resolve_points(m, r, points)
    return ConvCase(x=x, w=w, bias=b, padding=padding, m=m, points=points)


# The study's names from their old home, loaded on use: winolab.accuracy imports this module.
_MOVED_TO_ACCURACY = (
    "SAFETY_FACTOR", "ErrorMeasurement", "FP32_ERROR_RUNS", "measure_fp32_error",
    "measure_tolerance", "measure_tolerances", "winograd_conv2d_in", "write_fp32_error_json",
)


def __getattr__(name: str):
    if name in _MOVED_TO_ACCURACY:
        from winolab import accuracy

        return getattr(accuracy, name)
    raise AttributeError(f"module 'winolab.testing' has no attribute {name!r}")


if __name__ == "__main__":  # the documented entry point of the study, kept
    from winolab.accuracy import _main

    _main(prog="python -m winolab.testing")
