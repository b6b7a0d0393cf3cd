"""winolab._validate: booleans are booleans, and buffers too large to allocate say their size.

The size checks run before numpy allocates anything, so these tests allocate almost nothing:
the inputs are small and only the padding, the kernel or the limit makes the buffers large.
"""

from __future__ import annotations

import numpy as np
import pytest

from winolab import _validate, reference, sparse, sparsity
from winolab._validate import (
    BufferTooLargeError,
    check_bool,
    check_buffers,
    check_conv_memory,
    check_relu,
)


@pytest.mark.parametrize("bad", ["spatial", "no", 0.5, 1, 0, None, np.float64(1.0), [True]])
def test_check_bool_refuses_what_is_not_a_bool(bad):
    with pytest.raises(TypeError, match=r"flag must be True or False \(what it does\), got"):
        check_bool(bad, "flag", "what it does")
    with pytest.raises(TypeError, match="relu must be True or False"):
        check_relu(bad)


@pytest.mark.parametrize(("v", "want"), [(True, True), (False, False), (np.True_, True),
                                         (np.False_, False)])
def test_check_bool_accepts_python_and_numpy_bools(v, want):
    out = check_bool(v, "flag")
    assert out is want


@pytest.mark.parametrize("relu", ["spatial", 0.5])
def test_relu_flag_of_the_numpy_api(relu):
    x, U = np.ones((1, 1, 4, 4)), np.ones((1, 1, 4, 4))
    with pytest.raises(TypeError, match=f"relu must be True or False .*got {relu!r}"):
        reference.winograd_domain_conv2d(x, U, relu=relu)
    with pytest.raises(TypeError, match=f"relu must be True or False .*got {relu!r}"):
        sparse.winograd_domain_conv2d(x, U, relu=relu, backend="numpy")


def test_padding_1e5_says_the_size_needed(monkeypatch):
    # the case: padding 10**5 on a 4x4 image pads to 200004 x 200004 (298 GiB)
    monkeypatch.setattr(_validate, "MAX_BUFFER_BYTES", 64 * 2**30)
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    for call in (lambda: reference.direct_conv2d(x, w, padding=10**5),
                 lambda: reference.winograd_conv2d(x, w, padding=10**5),
                 lambda: reference.input_transform(x, padding=10**5),
                 lambda: sparse.winograd_conv2d(x, w, padding=10**5, backend="numpy"),
                 lambda: sparsity.activation_density(x, padding=10**5)):
        with pytest.raises(BufferTooLargeError, match=r"need at least 298 GiB .*"
                           r"\(1, 1, 200002, 200002\).*MAX_BUFFER_BYTES, 64 GiB"):
            call()


def test_default_limit_is_the_memory_available():
    # 30 TiB: more than any machine has, so the default limit refuses it everywhere
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    with pytest.raises(BufferTooLargeError, match="more than the memory available") as info:
        reference.direct_conv2d(x, w, padding=10**6)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)


def test_an_intermediate_of_2_31_elements_from_small_inputs():
    # 8 MiB of input, 0.5 MiB of kernel, but the 256 x 256 windows of the 767 x 767 output
    # are 767**2 * 256**2 = 3.9e10 > 2**31 elements (287 GiB): refused before numpy tries
    x, w = np.zeros((1, 1, 512, 512)), np.zeros((1, 1, 256, 256))
    with pytest.raises(BufferTooLargeError,
                       match=r"287 GiB .*windows \(1, 1, 767, 767, 256, 256\): 287 GiB"):
        reference.direct_conv2d(x, w, padding=255)


def test_the_winograd_estimate_counts_tiles_and_products(monkeypatch):
    # N=2, C=3, K=5, 9x9 input, padding 1, F(2, 3): 5x5 tiles of 4x4
    monkeypatch.setattr(_validate, "MAX_BUFFER_BYTES", 1000)
    want = 8 * (2 * 3 * 11 * 11 + 2 * 3 * 25 * 16 + 2 * 5 * 25 * 16 + 2 * 5 * 9 * 9)
    with pytest.raises(BufferTooLargeError, match=rf"\({want} bytes\).*V \(2, 3, 5, 5, 4, 4\)"):
        check_conv_memory((2, 3, 9, 9), (5, 3, 4, 4), (1, 1), m=2)
    monkeypatch.setattr(_validate, "MAX_BUFFER_BYTES", want)
    check_conv_memory((2, 3, 9, 9), (5, 3, 4, 4), (1, 1), m=2)  # exactly at the limit: fine
    x, U = np.ones((2, 3, 9, 9)), np.ones((5, 3, 4, 4))
    monkeypatch.setattr(_validate, "MAX_BUFFER_BYTES", want - 1)
    with pytest.raises(BufferTooLargeError, match=rf"\({want} bytes\)"):
        reference.winograd_domain_conv2d(x, U, padding=1, m=2)


def test_ordinary_sizes_pass_and_are_not_checked_below_the_floor(monkeypatch):
    calls = []
    monkeypatch.setattr(_validate, "_available_bytes", lambda: calls.append(1) or 0)
    check_buffers({"y": (2, 64, 32, 32)})
    x, w = np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3))
    np.testing.assert_allclose(reference.winograd_conv2d(x, w, padding=1),
                               reference.direct_conv2d(x, w, padding=1), rtol=1e-12)
    assert calls == [], "small buffers must not even read the memory available"
