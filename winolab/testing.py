"""Measured tolerances and helpers for checking a convolution against the float64 oracle.

Every float comparison in winolab (and in coursework) goes through :func:`assert_conv_close`,
a norm-wise check as in oneDNN's benchdnn: ``||actual - desired|| / ||desired|| <= bound``,
where the bound depends on the tile size ``m``, the filter size ``r``, the interpolation points
and the dtype the result was computed in, because Winograd's transforms amplify rounding.

How :data:`TOLERANCES` was measured (:func:`measure_tolerances` recomputes it)
-----------------------------------------------------------------------------------
For every key ``(m, points, dtype, r)``, :func:`measure_tolerance` runs 9 full convolutions:
seeds 0, 1, 2 times input channels C = 1, 8, 64, with N(0, 1) data ``x`` of shape
``(2, C, 13, 11)`` (odd sizes, so the last tiles are cropped), weights ``(4, C, r, r)`` and
padding ``r // 2``. The data and weights are rounded to the dtype, and the Winograd convolution
is computed entirely in it (``U = G g GT``, ``V = BT d B``, ``M = sum_c U * V`` summed one
channel after the other, the worst order for rounding, and ``Y = AT M A``); the error is the
relative L2 distance to :func:`winolab.reference.direct_conv2d` on the float64 data. The bound
is ``SAFETY_FACTOR = 4`` times the worst of the 9 errors, rounded up to two significant digits.
``tests/test_testing.py`` re-measures with other seeds: the table must bound the new errors and
be no more than 10 times looser than them. Not covered: C far above 64 summed naively, data far
from zero-mean Gaussian scale, F(m >= 5) in float16 (2-3% error is no check at all; F(8, 3) in
float16 has a relative error above 1, see :func:`measure_fp32_error`), and tiny outputs:
a norm-wise relative error over a handful of numbers blows up whenever they happen to cancel to
nearly zero, so compare outputs of at least a few dozen values (the measured ones have 1144).

>>> tolerance(2, dtype="float32") < tolerance(4, dtype="float32") < tolerance(6, dtype="float32")
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from winolab._validate import (
    _nonneg_int,
    check_bool,
    check_data,
    check_m,
    check_padding,
    check_size,
    check_spatial_weights,
    output_size,
)
from winolab.derive import POINT_SETS, PointSpec, resolve_points
from winolab.reference import _filter_transform, _input_transform, _output_transform, _tiles
from winolab.transforms import _untile, transforms

__all__ = [
    "SAFETY_FACTOR",
    "TOLERANCES",
    "ConvCase",
    "ErrorMeasurement",
    "assert_conv_close",
    "measure_fp32_error",
    "measure_tolerance",
    "measure_tolerances",
    "random_case",
    "relative_error",
    "tolerance",
    "winograd_conv2d_in",
]

SAFETY_FACTOR = 4.0

# (points, dtype, r) -> bounds for m = 1, ..., 6 (None: not covered). Printed by
# ``python -m winolab.testing --tolerances``; see the module docstring for the protocol.
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
            f"winolab.testing.measure_tolerance(m, r, points, dtype). Covered for "
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


def winograd_conv2d_in(x, w, padding=0, m=2, points: PointSpec = None, dtype=np.float32):
    """Winograd convolution computed entirely in ``dtype``, channels summed one at a time.

    The measurement subject for :data:`TOLERANCES`; inputs are checked as in reference.py.

    >>> x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    >>> winograd_conv2d_in(x, w, m=2, dtype="float16")[0, 0]
    array([[9., 9.],
           [9., 9.]], dtype=float16)
    """
    dt = np.dtype(_dtype_name(dtype))
    x = check_data(x, dtype=None)
    w = check_spatial_weights(w, x.shape[1], dtype=None)
    K, C, r, _ = w.shape
    t = transforms(check_m(m), r, points, dt)
    pad = check_padding(padding)
    out_shape = output_size(x.shape, (r, r), pad)
    # U = G g GT   (K, C, alpha, alpha)
    U = _filter_transform(w.astype(dt), t.G)
    # V = BT d B   (N, C, tiles_h, tiles_w, alpha, alpha), one loop per entry as measured
    V = _input_transform(_tiles(x.astype(dt), pad, t.m, r), t.BT, optimize=False)
    # M = sum_c U * V, accumulated in dtype channel by channel
    M = np.zeros((x.shape[0], K, *V.shape[2:]), dtype=dt)
    for c in range(C):
        M += U[None, :, c, None, None] * V[:, c, None]
    # Y = AT M A
    return _untile(_output_transform(M, t.AT, optimize=False), *out_shape)


def measure_tolerance(
    m: int, r: int = 3, points: PointSpec = None, dtype=np.float32,
    seeds=(0, 1, 2), channels=(1, 8, 64),
) -> float:
    """Worst relative L2 error of :func:`winograd_conv2d_in` over seeds x channel counts.

    >>> measure_tolerance(2, dtype="float64") < 1e-14
    True
    """
    from winolab.reference import direct_conv2d

    seeds = _int_tuple(seeds, "seeds", _nonneg_int)
    channels = _int_tuple(channels, "channels", check_size)
    worst = 0.0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for C in channels:
            x = rng.standard_normal((2, C, 13, 11))
            w = rng.standard_normal((4, C, r, r)) / math.sqrt(C * r * r)
            y = winograd_conv2d_in(x, w, r // 2, m, points, dtype)
            worst = max(worst, relative_error(y, direct_conv2d(x, w, padding=r // 2)))
    return worst


def _int_tuple(values, name: str, check) -> tuple[int, ...]:
    """A non-empty sequence of ints, each passed through ``check``: an empty one measures
    nothing, and the worst error of nothing would read as a perfect 0."""
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of ints, got {values!r}")
    out = tuple(check(v, name) for v in values)
    if not out:
        raise ValueError(f"{name} must not be empty: there would be nothing to measure")
    return out


def _round_up(v: float, digits: int = 2) -> float:
    e = math.floor(math.log10(v)) - digits + 1
    return math.ceil(v / 10.0**e) * 10.0**e


def _table_keys() -> list[tuple[int, str, str, int]]:
    keys = []
    for pts in ("lavin", "barabasz"):
        for dt in ("float32", "float64"):
            keys += [(m, pts, dt, r) for r in range(1, 6) for m in range(1, 7)]
        keys += [(m, pts, "float16", 3) for m in range(1, 5)]
    keys += [(4, "onednn", dt, 3) for dt in _FLOATS]
    return keys


def measure_tolerances(factor: float = SAFETY_FACTOR, seeds=(0, 1, 2)) -> dict:
    """Recompute :data:`TOLERANCES`: ``factor`` times the worst measured error, 2 digits."""
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not (
            math.isfinite(factor) and factor >= 1):
        raise ValueError(f"factor must be a finite number >= 1 (a safety factor), got {factor!r}")
    _int_tuple(seeds, "seeds", _nonneg_int)
    return {
        (m, pts, dt, r): _round_up(factor * measure_tolerance(m, r, pts, dt, seeds))
        for (m, pts, dt, r) in _table_keys()
    }


@dataclass(frozen=True)
class ErrorMeasurement:
    """Relative L2 errors of F(m x m, r x r) and of a direct convolution, both in ``dtype``.

    ``winograd`` and ``direct`` are ``||y - y_ref|| / ||y_ref||`` against a float64 direct
    reference; ``ratio = winograd / direct`` is how much the transforms amplify rounding
    (``inf`` in float64, where the direct convolution is the reference itself).
    """

    m: int
    r: int
    points: str
    dtype: str
    winograd: float
    direct: float
    ratio: float
    channels: int
    tiles: int
    seed: int
    distribution: str


def measure_fp32_error(
    m: int, r: int = 3, points: PointSpec = None, channels: int = 64, tiles: int = 400,
    seed: int = 0, dtype=np.float32, distribution: str = "normal",
) -> ErrorMeasurement:
    """Single-tile error of F(m x m, r x r) in ``dtype``, the protocol of Barabasz et al.

    ``tiles`` independent problems, each an ``alpha x alpha`` data tile ``d`` with ``channels``
    channels and one ``r x r`` kernel per channel, producing one ``m x m`` output tile.

    >>> e = measure_fp32_error(4, points="onednn")
    >>> bool(1 < e.ratio < 7), e.points
    (True, 'onednn')
    """
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
    # no channel or no tile would measure nothing and report a perfect 0 error
    channels, tiles = check_size(channels, "channels"), check_size(tiles, "tiles")
    seed = _nonneg_int(seed, "seed")
    dt = np.dtype(_dtype_name(dtype))
    t = transforms(m, r, points, dt)
    a = t.alpha
    rng = np.random.default_rng(seed)
    draw = rng.standard_normal if distribution == "normal" else (
        lambda shape: rng.uniform(-1.0, 1.0, shape))
    d, g = draw((tiles, channels, a, a)), draw((tiles, channels, r, r))
    # (T, C, m, m, r, r): the r x r window under each output of the tile
    win64 = np.lib.stride_tricks.sliding_window_view(d, (r, r), axis=(2, 3))
    y_ref = np.einsum("tcijuv,tcuv->tij", win64, g)
    dd, gd = d.astype(dt), g.astype(dt)
    win = np.lib.stride_tricks.sliding_window_view(dd, (r, r), axis=(2, 3))
    y_direct = np.einsum("tcijuv,tcuv->tij", win, gd)
    # U = G g GT,  V = BT d B,  M = sum_c U * V,  y = AT M A, all in dtype
    U, V = _filter_transform(gd, t.G), _input_transform(dd, t.BT, optimize=False)
    M = np.einsum("tcab,tcab->tab", U, V)
    y = _output_transform(M, t.AT, optimize=False)
    wino, direct = relative_error(y, y_ref), relative_error(y_direct, y_ref)
    return ErrorMeasurement(
        m=m, r=r, points=_points_name(m, r, points), dtype=dt.name, winograd=wino,
        direct=direct, ratio=wino / direct if direct > 0 else math.inf, channels=channels,
        tiles=tiles, seed=seed, distribution=distribution,
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


#: The runs of the golden file ``results/fp32_error.json``: (m, r, points).
FP32_ERROR_RUNS = (
    (2, 3, "lavin"), (4, 3, "lavin"), (4, 3, "barabasz"), (4, 3, "onednn"),
    (6, 3, "lavin"), (6, 3, (0, 1, -1, 2, -2, 3, -3)), (8, 3, "barabasz"),
)


def write_fp32_error_json(path, seed: int = 0) -> dict:
    """Measure :data:`FP32_ERROR_RUNS` and write them with provenance to ``path`` (JSON)."""
    import datetime
    import json
    import pathlib
    import subprocess
    from dataclasses import asdict

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=pathlib.Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    doc = {
        "command": f"python -m winolab.testing --fp32-error {path}",
        "protocol": "winolab.testing.measure_fp32_error: N(0,1), C=64, 400 tiles, float32",
        "seed": seed,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numpy": np.__version__,
        "commit": commit,
        "runs": [asdict(measure_fp32_error(m, r, p, seed=seed)) for m, r, p in FP32_ERROR_RUNS],
    }
    pathlib.Path(path).write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m winolab.testing")
    parser.add_argument("--fp32-error", metavar="PATH", help="write the fp32 error golden file")
    parser.add_argument("--tolerances", action="store_true", help="re-measure TOLERANCES")
    args = parser.parse_args(argv)
    if args.fp32_error:
        for run in write_fp32_error_json(args.fp32_error)["runs"]:
            print(f"F({run['m']},{run['r']}) {run['points']:>18}: ratio {run['ratio']:.3g}")
    if args.tolerances:  # in the layout of _MEASURED, ready to paste
        rows: dict = {}
        for (m, pts, dt, r), bound in measure_tolerances().items():
            rows.setdefault((pts, dt, r), [None] * 6)[m - 1] = bound
        for key, row in rows.items():
            print(f"    {key!r}: ({', '.join('None' if v is None else f'{v:.2g}' for v in row)}),")


if __name__ == "__main__":
    _main()
