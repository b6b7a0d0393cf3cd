"""The fp32 accuracy study: how much Winograd's transforms amplify rounding (book: ch. 3).

Two measurements, both against the float64 oracle :func:`winolab.reference.direct_conv2d`:
:func:`measure_fp32_error` is Barabasz et al.'s single-tile protocol, recorded in
``results/fp32_error.json`` (``python -m winolab.accuracy --fp32-error PATH``), and
:func:`measure_tolerance` is the protocol behind :data:`winolab.testing.TOLERANCES`, the table
:func:`winolab.testing.assert_conv_close` checks against (``python -m winolab.accuracy
--tolerances`` re-measures it and prints rows ready to paste). ``python -m winolab.testing``
with the same options forwards here.

How :data:`~winolab.testing.TOLERANCES` was measured (:func:`measure_tolerances` recomputes it)
-----------------------------------------------------------------------------------------------
For every key ``(m, points, dtype, r)``, :func:`measure_tolerance` runs 9 full convolutions:
seeds 0, 1, 2 times input channels C = 1, 8, 64, with N(0, 1) data ``x`` of shape
``(2, C, 13, 11)`` (odd sizes, so the last tiles are cropped), weights ``(4, C, r, r)`` and
padding ``r // 2``. The data and weights are rounded to the dtype, and the Winograd convolution
is computed entirely in it (:func:`winograd_conv2d_in`: ``U = G g GT``, ``V = BT d B``,
``M = sum_c U * V`` summed one channel after the other, the worst order for rounding, and
``Y = AT M A``); the error is the relative L2 distance to the direct convolution of the float64
data. The bound is ``SAFETY_FACTOR = 4`` times the worst of the 9 errors, rounded up to two
significant digits. ``tests/test_accuracy.py`` re-measures with other seeds: the table must
bound the new errors and be no more than 10 times looser than them. Not covered: C far above 64
summed naively, data far from zero-mean Gaussian scale, F(m >= 5) in float16 (2-3% error is no
check at all; F(8, 3) in float16 has a relative error above 1, see :func:`measure_fp32_error`),
and tiny outputs (see :mod:`winolab.testing`; the measured ones have 1144 values).

>>> from winolab.testing import TOLERANCES
>>> measure_tolerance(2) <= TOLERANCES[2, "lavin", "float32", 3]
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from winolab._validate import (
    _nonneg_int,
    check_data,
    check_m,
    check_padding,
    check_size,
    check_spatial_weights,
    output_size,
)
from winolab.derive import PointSpec
from winolab.reference import _filter_transform, _input_transform, _output_transform, _tiles
from winolab.testing import _FLOATS, _dtype_name, _points_name, relative_error
from winolab.transforms import _untile, transforms

__all__ = [
    "FP32_ERROR_RUNS",
    "SAFETY_FACTOR",
    "ErrorMeasurement",
    "measure_fp32_error",
    "measure_tolerance",
    "measure_tolerances",
    "winograd_conv2d_in",
    "write_fp32_error_json",
]

SAFETY_FACTOR = 4.0


def winograd_conv2d_in(x, w, padding=0, m=2, points: PointSpec = None, dtype=np.float32):
    """Winograd convolution computed entirely in ``dtype``, channels summed one at a time.

    The measurement subject for :data:`~winolab.testing.TOLERANCES`; inputs are checked as in
    reference.py.

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
    """Recompute :data:`~winolab.testing.TOLERANCES`: ``factor`` times the worst error, 2 digits."""
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
    from dataclasses import asdict

    from winolab.provenance import git_commit

    commit = git_commit()["commit"] or "unknown"
    doc = {
        "command": f"python -m winolab.accuracy --fp32-error {path}",
        "protocol": "winolab.accuracy.measure_fp32_error: N(0,1), C=64, 400 tiles, float32",
        "seed": seed,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numpy": np.__version__,
        "commit": commit,
        "runs": [asdict(measure_fp32_error(m, r, p, seed=seed)) for m, r, p in FP32_ERROR_RUNS],
    }
    pathlib.Path(path).write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _main(argv=None, prog: str = "python -m winolab.accuracy") -> None:
    import argparse

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--fp32-error", metavar="PATH", help="write the fp32 error golden file")
    parser.add_argument("--tolerances", action="store_true", help="re-measure TOLERANCES")
    args = parser.parse_args(argv)
    if args.fp32_error:
        for run in write_fp32_error_json(args.fp32_error)["runs"]:
            print(f"F({run['m']},{run['r']}) {run['points']:>18}: ratio {run['ratio']:.3g}")
    if args.tolerances:  # in the layout of testing._MEASURED, ready to paste
        rows: dict = {}
        for (m, pts, dt, r), bound in measure_tolerances().items():
            rows.setdefault((pts, dt, r), [None] * 6)[m - 1] = bound
        for key, row in rows.items():
            print(f"    {key!r}: ({', '.join('None' if v is None else f'{v:.2g}' for v in row)}),")


if __name__ == "__main__":
    _main()
