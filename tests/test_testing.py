"""winolab.testing: the fp32 error bands of the literature, the golden file, the tolerance table.

Bands and orderings are those of notes-winograd-anchors.md section 6.3 (about 1.5x the ratios
measured there), against winolab's own pinned float32 direct baseline.
"""

from __future__ import annotations

import json
import math
import pathlib
import re

import numpy as np
import pytest

from winolab import testing
from winolab.reference import direct_conv2d, winograd_conv2d
from winolab.testing import (
    TOLERANCES,
    assert_conv_close,
    measure_fp32_error,
    measure_tolerance,
    random_case,
    relative_error,
    tolerance,
)

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
    fresh = testing.write_fp32_error_json(tmp_path / "fp32.json", seed=golden["seed"])
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


def test_table_coverage_and_order():
    for pts in ("lavin", "barabasz"):
        for m in range(1, 7):
            for r in range(1, 6):
                for dt in ("float32", "float64"):
                    assert (m, pts, dt, r) in TOLERANCES
            for dt in ("float16",) * (m <= 4):
                assert tolerance(m, pts, dt) > tolerance(m, pts, "float32")
            assert tolerance(m, pts, "float32") > 1e3 * tolerance(m, pts, "float64")
    assert tolerance(4, "onednn") < tolerance(4, "barabasz") < tolerance(4, "lavin")
    assert all(0 < v < 0.1 for v in TOLERANCES.values())


def test_tolerance_keys():
    assert tolerance() == TOLERANCES[2, "lavin", "float32", 3]
    assert tolerance(4, [0, 1, -1, 2, -2]) == tolerance(4, "lavin")  # the points, spelled out
    assert tolerance(4, ["0", "-1", "1", "1/2", "-2"]) == tolerance(4, "barabasz")
    assert tolerance(4, [0, 0.625, -0.625, 1.5, -1.5]) == tolerance(4, "onednn")
    assert tolerance(2, dtype="float64") == tolerance(2, dtype=np.dtype("float64"))
    torch = pytest.importorskip("torch")
    assert tolerance(2, dtype=torch.float32) == tolerance(2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"m": 6, "dtype": "float16"}, ValueError,
         r"no measured tolerance .*\(6, 'lavin', 'float16', 3\).*measure_tolerance"),
        ({"m": 7}, ValueError, "no measured tolerance"),
        ({"m": 4, "points": [0, 1, -1, 3, -3]}, ValueError, r"'0,1,-1,3,-3'"),
        ({"m": 2, "points": [0, "5/8", "-5/8"]}, ValueError, r"'0,5/8,-5/8'"),  # not onednn
        ({"m": 2, "points": "onednn"}, ValueError, "fits only"),
        ({"m": 2, "points": "nope"}, ValueError, "unknown point set"),
        ({"dtype": "int32"}, TypeError, "dtype must be one of"),
        ({"dtype": "complex128"}, TypeError, "dtype must be one of"),
        ({"m": 0}, ValueError, "m must be >= 1"),
    ],
)
def test_tolerance_refuses_what_was_not_measured(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        tolerance(**kwargs)


def test_assert_conv_close_passes_and_fails_with_a_useful_message():
    c = random_case(5, m=4, max_size=16)
    want = direct_conv2d(c.x, c.w, c.bias, c.padding)
    y32 = winograd_conv2d(c.x.astype(np.float32), c.w.astype(np.float32), c.bias, c.padding,
                          m=4).astype(np.float32)
    assert_conv_close(y32, want, m=4)
    bound = tolerance(4)
    # negative control: push the error to 3x the bound, along a random direction
    noise = np.random.default_rng(0).standard_normal(want.shape)
    bad = want + 3 * bound * np.linalg.norm(want) * noise / np.linalg.norm(noise)
    with pytest.raises(AssertionError) as info:
        assert_conv_close(bad, want, m=4, dtype=np.float32, err_msg="layer conv3")
    msg = str(info.value)
    assert msg.startswith("layer conv3\n")
    err = float(re.search(r"relative L2 error (\S+) exceeds", msg).group(1))
    assert err == pytest.approx(3 * bound, rel=0.01)
    assert f"tolerance {bound:.3g}" in msg and "(4, 'lavin', 'float32', 3)" in msg
    # the same error is within the looser float16 bound
    assert_conv_close(bad, want, m=4, dtype=np.float16)


def test_assert_conv_close_other_failures():
    want = np.ones((1, 2, 3, 3))
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_conv_close(np.ones((1, 2, 3, 4)), want, dtype=np.float64)
    with pytest.raises(AssertionError, match="NaN or inf"):
        assert_conv_close(np.full_like(want, np.nan), want)
    with pytest.raises(TypeError, match="pass dtype="):
        assert_conv_close(want.astype(int), want)
    assert_conv_close(want.astype(int), want, dtype=np.float64)  # exact integers: fine
    zero = np.zeros_like(want)
    assert_conv_close(zero, zero)
    with pytest.raises(AssertionError, match="relative L2 error inf"):
        assert_conv_close(zero + 1e-30, zero)


def test_assert_conv_close_takes_torch_tensors():
    torch = pytest.importorskip("torch")
    c = random_case(2)
    want = c.reference()
    y = torch.nn.functional.conv2d(
        torch.from_numpy(c.x).float(), torch.from_numpy(c.w).float(),
        torch.from_numpy(c.bias).float(), padding=c.padding,
    )
    assert_conv_close(y, want, m=2)  # a direct conv is within any Winograd bound
    assert_conv_close(y, torch.from_numpy(want), m=2)


def test_relative_error_is_the_norm_ratio():
    a, d = np.array([1.0, 2.0, 2.0]), np.array([1.0, 2.0, 4.0])
    assert relative_error(a, d) == pytest.approx(2 / math.sqrt(21), rel=1e-15)
    assert relative_error(d, d) == 0.0


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_are_reproducible_and_valid(seed):
    c = random_case(seed)
    again = random_case(seed)
    np.testing.assert_array_equal(c.x, again.x)
    np.testing.assert_array_equal(c.w, again.w)
    assert c.padding == again.padding and c.m == again.m and c.m in (2, 4) and c.r == 3
    assert c.x.shape[1] == c.w.shape[1] and c.bias.shape == (c.w.shape[0],)
    want = c.reference()
    ph, pw = (c.padding, c.padding) if isinstance(c.padding, int) else c.padding
    assert want.shape == (c.x.shape[0], c.w.shape[0], c.x.shape[2] + 2 * ph - c.r + 1,
                          c.x.shape[3] + 2 * pw - c.r + 1)
    assert_conv_close(winograd_conv2d(c.x, c.w, c.bias, c.padding, c.m, c.points), want,
                      c.m, c.points, np.float64)


def test_random_case_options():
    a, b = random_case(0), random_case(1)
    assert a.x.shape != b.x.shape or not np.array_equal(a.x, b.x)
    c = random_case(3, m=6, r=5, points="barabasz", bias=False, dtype=np.float32,
                    max_channels=2, max_size=7)
    assert c.bias is None and c.x.dtype == np.float32 and c.w.shape[1:] == (c.x.shape[1], 5, 5)
    assert c.m == 6 and c.x.shape[1] <= 2 and max(c.x.shape[2:]) <= 7
    with pytest.raises(ValueError, match="fits only"):
        random_case(0, m=2, points="onednn")
    with pytest.raises(ValueError, match="max_size must be >= r = 5"):
        random_case(0, r=5, max_size=4)


@pytest.mark.parametrize("actual, desired", [
    ([1.0, 2.0, 3.0], [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]),  # would broadcast to 0.0
    (1.0, np.ones((4, 4))),
])
def test_relative_error_rejects_shape_mismatch(actual, desired):
    with pytest.raises(ValueError, match="expected the same shape"):
        relative_error(actual, desired)


def test_relative_error_rejects_non_numeric():
    with pytest.raises(TypeError, match="real numeric array"):
        relative_error(None, [1.0])
    with pytest.raises(TypeError, match="real numeric array"):
        relative_error([1j], [1.0])


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
        testing.measure_tolerances(factor)
    with pytest.raises(ValueError, match="seeds must not be empty"):
        testing.measure_tolerances(seeds=())


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"max_channels": 0}, ValueError, "max_channels must be >= 1, got 0"),
    ({"r": -1}, ValueError, r"r \(filter size\) must be >= 1, got -1"),
    ({"r": 0}, ValueError, r"r \(filter size\) must be >= 1, got 0"),
    ({"r": 2.5}, TypeError, r"r \(filter size\) must be an int, got float 2.5"),
    ({"m": 0}, ValueError, r"m \(output tile size\) must be >= 1, got 0"),
    ({"max_size": 0}, ValueError, "max_size must be >= 1, got 0"),
    ({"bias": "no"}, TypeError, r"bias must be True or False \(draw a bias vector\)"),
    ({"dtype": int}, TypeError, "dtype must be one of"),
])
def test_random_case_refuses_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        random_case(0, **kwargs)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        random_case(-1)


def test_winograd_conv2d_in_checks_like_the_reference():
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        testing.winograd_conv2d_in(x.astype(int), w)
    with pytest.raises(ValueError, match="w has 1 input channels but x has 2"):
        testing.winograd_conv2d_in(np.ones((1, 2, 4, 4)), w)
    with pytest.raises(TypeError, match="padding must be an int, got str"):
        testing.winograd_conv2d_in(x, w, padding="same")
    with pytest.raises(ValueError, match="output would be empty"):
        testing.winograd_conv2d_in(x[..., :2, :2], w)
    with pytest.raises(TypeError, match="dtype must be one of"):
        testing.winograd_conv2d_in(x, w, dtype=np.int64)
