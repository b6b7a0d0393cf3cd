"""winolab.accuracy: the fp32 error bands of the literature, the golden file, the tolerance table.

Bands and orderings are those of notes-winograd-anchors.md section 6.3 (about 1.5x the ratios
measured there), against winolab's own pinned float32 direct baseline.
"""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from winolab import accuracy, testing
from winolab.accuracy import measure_fp32_error, measure_tolerance
from winolab.testing import TOLERANCES

GOLDEN = pathlib.Path(__file__).parents[1] / "results" / "fp32_error.json"
BAD_F63 = (0, 1, -1, 2, -2, 3, -3)


@pytest.fixture(scope="module")
def fp32():
    return {
        (m, str(p)): measure_fp32_error(m, points=p)
        for m, p in [(2, "lavin"), (4, "lavin"), (4, "barabasz"), (4, "onednn"),
                     (6, "lavin"), (6, BAD_F63), (8, "barabasz")]
    }


@pytest.mark.parametrize(
    ("m", "points", "band"),
    [(2, "lavin", 2.5), (4, "lavin", 15), (4, "barabasz", 10), (4, "onednn", 7),
     (6, "lavin", 30), (8, "barabasz", 500)],
)
def test_fp32_error_bands(fp32, m, points, band):
    e = fp32[m, points]
    assert e.dtype == "float32" and (e.channels, e.tiles, e.seed) == (64, 400, 0)
    assert 1e-8 < e.direct < 1e-6  # the float32 floor: a few ulps of float32
    assert e.ratio == pytest.approx(e.winograd / e.direct)
    assert 0.5 < e.ratio <= band


def test_fp32_error_ordering(fp32):
    # oneDNN's points beat Barabasz's, which beat Lavin's 0, +-1, +-2, for F(4, 3)
    assert fp32[4, "onednn"].winograd < fp32[4, "barabasz"].winograd < fp32[4, "lavin"].winograd
    # the error grows with the tile
    assert fp32[2, "lavin"].winograd < fp32[4, "lavin"].winograd < fp32[6, "lavin"].winograd
    # NNPACK's +-1/2 for F(6, 3) is far better than +-3 (andravin, NNPACK issue #8)
    assert fp32[6, str(BAD_F63)].winograd > 10 * fp32[6, "lavin"].winograd
    assert fp32[6, str(BAD_F63)].points == "0,1,-1,2,-2,3,-3"


def test_fp32_error_other_options():
    u = measure_fp32_error(2, channels=8, tiles=50, seed=1, distribution="uniform")
    assert u.distribution == "uniform" and 0.5 < u.ratio < 2.5
    e64 = measure_fp32_error(4, dtype=np.float64, tiles=50)
    assert e64.dtype == "float64" and e64.winograd < 1e-14
    with pytest.raises(ValueError, match="distribution must be 'normal' or 'uniform'"):
        measure_fp32_error(2, distribution="cauchy")


def test_golden_file_matches_a_fresh_measurement(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    for key in ("command", "seed", "date", "numpy", "commit", "runs"):
        assert key in golden
    fresh = accuracy.write_fp32_error_json(tmp_path / "fp32.json", seed=golden["seed"])
    assert json.loads((tmp_path / "fp32.json").read_text())["runs"] == fresh["runs"]
    assert len(fresh["runs"]) == len(golden["runs"])
    # Same protocol and seed: equal up to how this numpy sums float32 (20% band).
    for want, got in zip(golden["runs"], fresh["runs"], strict=True):
        assert (got["m"], got["r"], got["points"]) == (want["m"], want["r"], want["points"])
        for field in ("winograd", "direct", "ratio"):
            assert got[field] == pytest.approx(want[field], rel=0.2), (want, field)


# A cross-section of the table: every point set and dtype, the largest and smallest tiles.
FRESH_KEYS = [
    (m, p, d, 3)
    for m in (1, 2, 4, 6) for p in ("lavin", "barabasz") for d in ("float32", "float64")
] + [(4, "onednn", d, 3) for d in ("float16", "float32", "float64")] + [
    (2, "lavin", "float16", 3), (4, "barabasz", "float16", 3), (3, "lavin", "float64", 1),
    (6, "lavin", "float32", 5), (5, "barabasz", "float32", 5), (2, "lavin", "float64", 4),
]


@pytest.mark.parametrize("key", FRESH_KEYS, ids=str)
def test_table_bounds_fresh_measurements_and_is_not_loose(key):
    m, points, dtype, r = key
    # seeds 0-2 made the table; these are new data
    fresh = [measure_tolerance(m, r, points, dtype, seeds=(s,)) for s in (11, 12)]
    bound = TOLERANCES[key]
    assert max(fresh) <= bound, (key, fresh, bound)
    assert bound <= 10 * max(fresh), (key, fresh, bound)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    # nothing to measure used to come back as a perfect 0 error
    ({"channels": 0}, ValueError, "channels must be >= 1, got 0"),
    ({"tiles": 0}, ValueError, "tiles must be >= 1, got 0"),
    ({"tiles": -1}, ValueError, "tiles must be >= 1, got -1"),
    ({"channels": 2.5}, TypeError, "channels must be an int, got float 2.5"),
    ({"seed": "a"}, TypeError, "seed must be an int, got str 'a'"),
    ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ({"dtype": np.int32}, TypeError, "dtype must be one of"),
    ({"distribution": "cauchy"}, ValueError, "distribution must be 'normal' or 'uniform'"),
])
def test_measure_fp32_error_refuses_empty_or_bad_measurements(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        measure_fp32_error(2, **kwargs)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"channels": ()}, ValueError, "channels must not be empty: there would be nothing"),
    ({"seeds": []}, ValueError, "seeds must not be empty"),
    ({"channels": (0,)}, ValueError, "channels must be >= 1, got 0"),
    ({"channels": 8}, TypeError, "channels must be a sequence of ints, got 8"),
    ({"seeds": "012"}, TypeError, "seeds must be a sequence of ints, got '012'"),
    ({"seeds": (0, -2)}, ValueError, "seeds must be >= 0, got -2"),
])
def test_measure_tolerance_refuses_empty_or_bad_protocols(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        measure_tolerance(2, **kwargs)


@pytest.mark.parametrize("factor", [0, 0.5, math.nan, math.inf, True, "4"])
def test_measure_tolerances_needs_a_safety_factor(factor):
    with pytest.raises(ValueError, match="factor must be a finite number >= 1"):
        accuracy.measure_tolerances(factor)
    with pytest.raises(ValueError, match="seeds must not be empty"):
        accuracy.measure_tolerances(seeds=())


def test_winograd_conv2d_in_checks_like_the_reference():
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        accuracy.winograd_conv2d_in(x.astype(int), w)
    with pytest.raises(ValueError, match="w has 1 input channels but x has 2"):
        accuracy.winograd_conv2d_in(np.ones((1, 2, 4, 4)), w)
    with pytest.raises(TypeError, match="padding must be an int, got str"):
        accuracy.winograd_conv2d_in(x, w, padding="same")
    with pytest.raises(ValueError, match="output would be empty"):
        accuracy.winograd_conv2d_in(x[..., :2, :2], w)
    with pytest.raises(TypeError, match="dtype must be one of"):
        accuracy.winograd_conv2d_in(x, w, dtype=np.int64)


def test_old_home_still_gives_the_study():
    # winolab.testing held the study before; its names and entry point still work from there
    for name in accuracy.__all__:
        assert getattr(testing, name) is getattr(accuracy, name)
    from winolab.testing import measure_fp32_error as old

    assert old is measure_fp32_error
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        testing.nope  # noqa: B018


@pytest.mark.parametrize("module", ["winolab.accuracy", "winolab.testing"])
def test_entry_points_run_the_study(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert f"usage: python -m {module}" in out and "--fp32-error" in out and "--tolerances" in out
