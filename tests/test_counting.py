"""Multiplication counts against hand counts, the published numbers and a brute-force counter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winolab import reference
from winolab.counting import (
    METHODS,
    NETWORKS,
    WORKSHOP_DENSITIES,
    ConvLayer,
    Densities,
    FCLayer,
    Network,
    compare_methods,
    count_multiplies,
    exact_winograd_multiplies,
    get_network,
)


def sig2(x: float) -> str:
    """Round to two significant figures, as the papers print their numbers."""
    return f"{x:.2g}"


def conv_rows(network: Network) -> dict[str, ConvLayer]:
    return {la.name: la for la in network.layers if isinstance(la, ConvLayer)}


# --- layer tables against hand counts (notes-papers.md §1.6) ----------------------------------


def test_vgg_nagadomi_per_layer_hand_counts():
    convs = conv_rows(get_network("vgg-nagadomi"))
    # H_out W_out C K 9, counted by hand from the architecture (32x32 input, pools after 2, 4, 8)
    hand = {"conv1": 32 * 32 * 3 * 64 * 9, "conv2": 32 * 32 * 64 * 64 * 9,
            "conv3": 16 * 16 * 64 * 128 * 9, "conv4": 16 * 16 * 128 * 128 * 9,
            "conv5": 8 * 8 * 128 * 256 * 9, "conv6": 8 * 8 * 256 * 256 * 9,
            "conv7": 8 * 8 * 256 * 256 * 9, "conv8": 8 * 8 * 256 * 256 * 9}
    assert {n: la.direct_multiplies for n, la in convs.items()} == hand
    # the notes' rounded per-layer figures, in millions
    notes = [1.77, 37.75, 18.87, 37.75, 18.87, 37.75, 37.75, 37.75]
    assert [round(la.direct_multiplies / 1e6, 2) for la in convs.values()] == notes
    assert round(sum(notes), 1) == round(sum(hand.values()) / 1e6, 1) == 228.3


def test_vgg_nagadomi_totals():
    net = get_network("vgg-nagadomi")
    direct, wino = count_multiplies(net, "direct"), count_multiplies(net, "winograd")
    fc = sum(r.multiplies for r in direct.layers if r.name.startswith("fc"))
    assert fc == 4096 * 1024 + 1024 * 1024 + 1024 * 10
    assert round(fc / 1e6, 2) == 5.25
    assert round((direct.total - fc) / 1e6, 1) == 228.3
    assert round((wino.total - fc) / 1e6, 1) == 101.4
    assert net.pruned == tuple(f"conv{i}" for i in range(2, 9))


def test_convpool_cnn_c_hand_counts():
    net = get_network("convpool-cnn-c")
    convs = conv_rows(net)
    notes = {"conv1": 2.65, "conv2": 84.9, "conv3": 84.9, "conv4": 42.5, "conv5": 84.9,
             "conv6": 84.9, "conv7": 11.9}
    got = {n: round(convs[n].direct_multiplies / 1e6, 1 if n != "conv1" else 2) for n in notes}
    assert got == notes
    # conv7 is valid: 8x8 in, 6x6 out
    assert (convs["conv7"].out_height, convs["conv7"].out_width) == (6, 6)
    assert convs["conv7"].direct_multiplies == 6 * 6 * 192 * 192 * 9
    three = [la for la in convs.values() if la.winograd]
    assert len(three) == 7 and all(la.kernel == 3 for la in three)
    assert round(sum(la.direct_multiplies for la in three) / 1e6, 1) == 396.8
    assert round(sum(la.winograd_multiplies(2) for la in three) / 1e6, 1) == 176.4
    ones = [la for la in convs.values() if not la.winograd]
    assert sum(la.direct_multiplies for la in ones) == 6 * 6 * 192 * (192 + 100)
    assert round(sum(la.direct_multiplies for la in ones) / 1e6, 1) == 2.0


def test_resnet18_liu_counts():
    net = get_network("resnet18-liu")
    convs = conv_rows(net)
    three = [la for la in convs.values() if la.winograd]
    assert len(three) == 16 and {la.height for la in three} == {56, 28, 14}
    assert [la.height for la in three[-4:]] == [14] * 4  # res5 stays at 14x14
    conv1 = convs["conv1"]
    assert (conv1.out_height, conv1.direct_multiplies) == (112, 112 * 112 * 3 * 64 * 49)
    assert round(sum(la.direct_multiplies for la in three) / 1e6) == 2890
    # notes: 1 284 M (truncated) and 1.28 G; the count is 1 284.5 M
    assert f"{sum(la.winograd_multiplies(2) for la in three) / 1e9:.2f}" == "1.28"
    other = count_multiplies(net, "direct").total - sum(la.direct_multiplies for la in three)
    assert round(other / 1e6) == 170
    assert len(net.pruned) == 16  # conv1, shortcuts and FC stay dense


def test_geometry_matches_reference_tiling_and_direct_conv():
    """Output sizes and tiles from the layer table equal what the float64 oracle produces."""
    rng = np.random.default_rng(0)
    for H, W, p, m in [(7, 5, 1, 2), (8, 8, 0, 4), (9, 6, 1, 4), (6, 11, 2, 3)]:
        la = ConvLayer("t", 2, 3, 3, H, W, p)
        x, w = rng.standard_normal((1, 2, H, W)), rng.standard_normal((3, 2, 3, 3))
        y = reference.direct_conv2d(x, w, padding=p)
        assert y.shape[2:] == (la.out_height, la.out_width)
        assert la.direct_multiplies == y[0].size * 2 * 9
        V = reference.input_transform(x, r=3, m=m, padding=p)
        assert la.tiles(m) == V.shape[2] * V.shape[3]
        U = reference.filter_transform(w, m)
        # dense count: every (k, c, tile, s) product; V of a padded edge can hold exact zeros
        assert la.winograd_multiplies(m) == exact_winograd_multiplies(U, np.ones_like(V))
        assert la.winograd_multiplies(m) >= exact_winograd_multiplies(U, V)


def test_strided_geometry_matches_torch():
    torch = pytest.importorskip("torch")
    conv1 = conv_rows(get_network("resnet18-liu"))["conv1"]
    y = torch.nn.functional.conv2d(torch.zeros(1, 1, 224, 224), torch.zeros(1, 1, 7, 7),
                                   stride=2, padding=3)
    assert tuple(y.shape[2:]) == (conv1.out_height, conv1.out_width)


# --- Winograd counts: divisible, not divisible, m = 4 ----------------------------------------


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_reduction_when_divisible(m):
    alpha = m + 2
    for la in conv_rows(get_network("vgg-nagadomi")).values():
        assert la.out_height % m == 0
        # r^2 m^2 direct products per tile become alpha^2: 2.25x for m = 2, 4x for m = 4
        assert la.direct_multiplies * alpha**2 == la.winograd_multiplies(m) * 9 * m**2
    if m == 4:
        net = get_network("vgg-nagadomi")
        conv = [la for la in net.layers if isinstance(la, ConvLayer)]
        assert sum(la.direct_multiplies for la in conv) == 4 * sum(
            la.winograd_multiplies(4) for la in conv)


def test_winograd_tiles_when_not_divisible():
    # 7x7 output with m = 2 needs 4x4 tiles covering 8x8: the edge tiles are partly wasted
    la = ConvLayer("odd", 1, 1, 3, 7, 7, padding=1)
    assert la.tiles(2) == 16 and la.winograd_multiplies(2) == 16 * 16
    assert la.winograd_multiplies(2) * 9 * 4 > la.direct_multiplies * 16
    # ConvPool-CNN-C conv7 (6x6 output) at m = 4: 2x2 tiles of 4 = 8x8, only 2.25x, not 4x
    conv7 = conv_rows(get_network("convpool-cnn-c"))["conv7"]
    assert conv7.tiles(4) == 4
    assert conv7.direct_multiplies / conv7.winograd_multiplies(4) == 6 * 6 * 9 / (4 * 36)
    assert conv7.direct_multiplies / conv7.winograd_multiplies(2) == 9 / 4


# --- the model: workshop reproduction and method rules --------------------------------------


def test_workshop_vgg_nagadomi_reproduction():
    c = compare_methods("vgg-nagadomi", 2, WORKSHOP_DENSITIES)
    assert list(c) == list(METHODS)
    # published (Liu et al. 2017 workshop): 2.3e8, 1.1e8 (2.2x), 2.3e7 (10.2x)
    assert sig2(c["direct"].total) == "2.3e+08"
    assert sig2(c["winograd"].total) == "1.1e+08" and sig2(c["winograd"].reduction) == "2.2"
    assert sig2(c["winograd_relu"].total) == "2.3e+07"
    # the notes' hand computation: 22.6 M, 10.3x
    assert round(c["winograd_relu"].total / 1e6, 1) == 22.6
    assert round(c["winograd_relu"].reduction, 1) == 10.3
    # spatial baseline: 5.7e7 with one overall density, not the published 5.0e7 (docstring)
    assert sig2(c["spatial_pruned"].total) == "5.7e+07"
    assert round(c["spatial_pruned"].reduction, 1) == 4.1
    # ... while the pruned layers 2-8 alone give 5.0e7, 4.6x below the direct 3x3 layers
    net = get_network("vgg-nagadomi")
    pruned = sum(r.multiplies for r in c["spatial_pruned"].layers if r.name in net.pruned)
    conv3x3 = sum(la.direct_multiplies for la in conv_rows(net).values())
    assert sig2(pruned) == "5e+07" and round(conv3x3 / pruned, 1) == 4.6


def test_first_and_fc_layers_stay_dense():
    c = compare_methods("vgg-nagadomi")
    first = conv_rows(get_network("vgg-nagadomi"))["conv1"]
    for method, count in c.items():
        rows = {r.name: r for r in count.layers}
        assert rows["fc1"].multiplies == 4096 * 1024
        wino = method.startswith("winograd")
        expect = first.winograd_multiplies(2) if wino else first.direct_multiplies
        assert rows["conv1"].multiplies == expect
        assert (rows["conv1"].weight_density, rows["conv1"].activation_density) == (1.0, 1.0)
    # a pruned layer: dense count x d_w x d_a
    conv2 = conv_rows(get_network("vgg-nagadomi"))["conv2"]
    relu = {r.name: r for r in c["winograd_relu"].layers}["conv2"]
    assert relu.multiplies == conv2.winograd_multiplies(2) * 0.40 * 0.411
    spatial = {r.name: r for r in c["spatial_pruned"].layers}["conv2"]
    assert spatial.multiplies == conv2.direct_multiplies * 0.60 * 0.369


def test_per_layer_densities():
    net = get_network("vgg-nagadomi")
    scalar = count_multiplies(net, "winograd_relu", 2, 0.4, 0.5)
    as_list = count_multiplies(net, "winograd_relu", 2, [0.4] * 7, (0.5,) * 7)
    assert scalar == as_list
    dw = {name: (i + 1) / 10 for i, name in enumerate(net.pruned)}
    c = count_multiplies(net, "winograd_native", 2, dw)
    convs = conv_rows(net)
    for r in c.layers:
        if r.name in dw:
            assert r.weight_density == dw[r.name]
            assert r.multiplies == convs[r.name].winograd_multiplies(2) * dw[r.name]
    d = Densities(weight=dw, activation=0.5, spatial_weight=list(dw.values()))
    assert compare_methods(net, 2, d)["winograd_native"] == c


def test_zero_density_reduction_is_infinite():
    net = Network("toy", "-", (ConvLayer("c", 2, 2, 3, 4, 4, 1),), "test")
    assert count_multiplies(net, "winograd_relu", 2, 0.0, 0.5).reduction == math.inf
    assert count_multiplies(net, "direct").reduction == 1.0


# --- exact counter ---------------------------------------------------------------------------


def brute_force_multiplies(U, V) -> int:
    K, C, a, _ = U.shape
    N, _, th, tw, _, _ = V.shape
    n = 0
    for k in range(K):
        for c in range(C):
            for s1 in range(a):
                for s2 in range(a):
                    if U[k, c, s1, s2] == 0:
                        continue
                    for i in range(N):
                        for ti in range(th):
                            for tj in range(tw):
                                n += V[i, c, ti, tj, s1, s2] != 0
    return int(n)


@settings(deadline=None, max_examples=30)
@given(K=st.integers(1, 4), C=st.integers(1, 3), a=st.integers(1, 6), N=st.integers(1, 2),
       th=st.integers(1, 3), tw=st.integers(1, 3), seed=st.integers(0, 2**32 - 1),
       pu=st.floats(0, 1), pv=st.floats(0, 1))
def test_exact_counter_matches_brute_force(K, C, a, N, th, tw, seed, pu, pv):
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((K, C, a, a)) * (rng.random((K, C, a, a)) < pu)
    V = rng.standard_normal((N, C, th, tw, a, a)) * (rng.random((N, C, th, tw, a, a)) < pv)
    assert exact_winograd_multiplies(U, V) == brute_force_multiplies(U, V)
    assert exact_winograd_multiplies(U, n_tiles=N * th * tw) == brute_force_multiplies(
        U, np.ones_like(V))


def test_model_equals_exact_count_with_dense_activations():
    """Winograd-native pruning: the density model is exact when only the weights are sparse."""
    rng = np.random.default_rng(1)
    la = ConvLayer("c", 5, 6, 3, 9, 7, padding=1)
    net = Network("toy", "-", (la,), "test")
    N, m = 2, 2
    x = rng.standard_normal((N, 5, 9, 7))
    U = reference.filter_transform(rng.standard_normal((6, 5, 3, 3)), m)
    U[rng.random(U.shape) < 0.6] = 0.0
    V = reference.input_transform(x, m=m, padding=1)  # dense: no ReLU
    assert np.count_nonzero(V) == V.size
    d = np.count_nonzero(U) / U.size
    model = count_multiplies(net, "winograd_native", m, d).total * N
    assert round(model) == exact_winograd_multiplies(U, V)


@pytest.mark.parametrize("seed", range(4))
def test_model_equals_exact_count_in_expectation(seed):
    """Independent Bernoulli masks: exact count = sum_(c,s) a_cs b_cs with a ~ Bin(K, p),
    b ~ Bin(T, q) independent, so its mean is the model K p T q C alpha^2 and its variance
    sum_(c,s) E[a^2] E[b^2] - (E a E b)^2 with E[a^2] = K p (1 - p) + (K p)^2."""
    rng = np.random.default_rng(seed)
    la = ConvLayer("c", 8, 16, 3, 12, 12, padding=1)
    net = Network("toy", "-", (la,), "test")
    m, p, q = 2, 0.4, 0.411
    K, C, alpha, T = 16, 8, 4, la.tiles(m)
    U = rng.random((K, C, alpha, alpha)) < p
    V = rng.random((1, C, 6, 6, alpha, alpha)) < q
    exact = exact_winograd_multiplies(U, V)
    model = count_multiplies(net, "winograd_relu", m, p, q).total
    ea2, eb2 = K * p * (1 - p) + (K * p) ** 2, T * q * (1 - q) + (T * q) ** 2
    sigma = math.sqrt(C * alpha**2 * (ea2 * eb2 - (K * p * T * q) ** 2))
    assert abs(exact - model) <= 4.5 * sigma, (exact, model, sigma)
    # and the bound is tight enough to catch a model that forgets the activation density
    assert abs(exact - model / q) > 4.5 * sigma


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), True, "0.4", None])
def test_density_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"density in \[0, 1\]"):
        count_multiplies("vgg-nagadomi", "winograd_relu", 2, bad, 0.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown network 'alexnet'.*vgg-nagadomi"):
        get_network("alexnet")
    with pytest.raises(ValueError, match="unknown network"):
        count_multiplies("resnet50")
    with pytest.raises(ValueError, match="unknown method 'sparse'"):
        count_multiplies("vgg-nagadomi", "sparse")
    with pytest.raises(ValueError, match="expected 7 densities, one per pruned layer"):
        count_multiplies("vgg-nagadomi", "winograd_native", 2, [0.4] * 8)
    with pytest.raises(ValueError, match="exactly the pruned layers"):
        count_multiplies("vgg-nagadomi", "winograd_native", 2, {"conv1": 0.4})
    with pytest.raises(ValueError, match="dense weights and activations"):
        count_multiplies("vgg-nagadomi", "direct", 2, 0.4)
    with pytest.raises(ValueError, match="dense activations"):
        count_multiplies("vgg-nagadomi", "winograd_native", 2, 0.4, 0.5)
    with pytest.raises(ValueError, match="m .output tile size. must be >= 1"):
        count_multiplies("vgg-nagadomi", "winograd", 0)
    with pytest.raises(ValueError, match="needs stride 1"):
        ConvLayer("c", 3, 64, 3, 32, 32, 1, stride=2)
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        ConvLayer("c", 3, 64, 3, 32, 32, -1)
    with pytest.raises(ValueError, match="does not fit"):
        ConvLayer("c", 3, 64, 5, 3, 3)
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        ConvLayer("c", 0, 64, 3, 8, 8)
    with pytest.raises(ValueError, match="out_features must be a positive int"):
        FCLayer("fc", 10, 0)


def test_exact_counter_bad_input():
    U, V = np.ones((2, 3, 4, 4)), np.ones((1, 3, 2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"U must have shape \(K, C, alpha, alpha\)"):
        exact_winograd_multiplies(np.ones((2, 3, 4)), V)
    with pytest.raises(ValueError, match=r"V must have shape .*\(N, 3, th, tw, 4, 4\)"):
        exact_winograd_multiplies(U, np.ones((1, 2, 2, 2, 4, 4)))
    with pytest.raises(ValueError, match="give V .* or n_tiles"):
        exact_winograd_multiplies(U)
    with pytest.raises(ValueError, match="n_tiles = 5 disagrees"):
        exact_winograd_multiplies(U, V, n_tiles=5)
    assert exact_winograd_multiplies(U, V, n_tiles=4) == 2 * 3 * 16 * 4
    with pytest.raises(ValueError, match="n_tiles must be a positive int"):
        exact_winograd_multiplies(U, n_tiles=0)


def test_networks_registry():
    assert sorted(NETWORKS) == ["convpool-cnn-c", "resnet18-liu", "vgg-nagadomi"]
    for net in NETWORKS.values():
        names = [la.name for la in net.layers]
        assert len(set(names)) == len(names)
        assert sum(isinstance(la, ConvLayer) and la.first for la in net.layers) == 1


@pytest.mark.parametrize(("U", "V", "match"), [
    # strings used to be counted: np.count_nonzero treats every non-empty string as nonzero
    (np.array([[[["a"]]]]), None, "U must be a real numeric or bool array .*got dtype <U1"),
    (np.ones((1, 1, 4, 4)), np.full((1, 1, 1, 1, 4, 4), "a"), "V must be a real numeric"),
    (None, None, "U must be a real numeric or bool array .*dtype object"),
    (np.ones((1, 1, 2, 2), dtype=complex), None, "got dtype complex128"),
    ([[1.0], [1.0, 2.0]], None, "U must be a numeric array, got a ragged list"),
])
def test_exact_counter_refuses_what_has_no_zeros_to_count(U, V, match):
    with pytest.raises(TypeError, match=match):
        exact_winograd_multiplies(U, V, n_tiles=None if V is not None else 3)


def test_exact_counter_takes_masks():
    mask = np.zeros((2, 1, 4, 4), dtype=bool)
    mask[0, 0, :2] = True
    assert exact_winograd_multiplies(mask, n_tiles=5) == 8 * 5


def test_network_layers_are_layers():
    conv = ConvLayer("c", 1, 1, 3, 4, 4)
    with pytest.raises(TypeError, match=r"net: layer 1 is 'conv2' \(str\); expected a ConvLayer"):
        Network("net", "d", (conv, "conv2"), "s")
    with pytest.raises(TypeError, match="net: layers must be a sequence of ConvLayer and FCLayer"):
        Network("net", "d", None, "s")
    with pytest.raises(TypeError, match="net: layers must be a sequence"):
        Network("net", "d", conv, "s")
    with pytest.raises(ValueError, match=r"layer names must be unique .*repeated: \['c'\]"):
        Network("net", "d", (conv, conv), "s")
    net = Network("net", "d", [conv, FCLayer("fc", 4, 2)], "s")  # a list becomes a tuple
    assert isinstance(net.layers, tuple) and hash(net)
    assert count_multiplies(net, "direct").total == 4 * 9 + 8


def test_count_needs_a_network_and_densities():
    with pytest.raises(TypeError, match="network must be a Network or one of .*got int"):
        count_multiplies(5)
    with pytest.raises(TypeError, match="densities must be a Densities, got dict"):
        compare_methods("vgg-nagadomi", densities={"weight": 0.4})


@pytest.mark.parametrize("field", ["winograd", "first"])
@pytest.mark.parametrize("bad", ["no", 0, None])
def test_conv_layer_flags_are_booleans(field, bad):
    with pytest.raises(TypeError, match=f"c: {field} must be True or False .*got {bad!r}"):
        ConvLayer("c", 3, 8, 3, 8, 8, **{field: bad})
