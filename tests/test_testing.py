"""winolab.testing: the tolerance table's keys and coverage, assert_conv_close, random_case.

The measurements behind the table (and the fp32 error study) are tested in test_accuracy.py.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from winolab.reference import direct_conv2d, winograd_conv2d
from winolab.testing import (
    TOLERANCES,
    assert_conv_close,
    random_case,
    relative_error,
    tolerance,
)


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
