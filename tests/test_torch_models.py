"""The networks against the papers' layer tables; activation statistics and counts."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from winolab import counting, reference  # noqa: E402
from winolab.testing import assert_conv_close  # noqa: E402
from winolab.torch.layers import WinogradConv2d  # noqa: E402
from winolab.torch.models import (  # noqa: E402
    ARCHITECTURES,
    MODELS,
    build_model,
    convert_to_winograd,
    table_name,
)
from winolab.torch.stats import (  # noqa: E402
    activation_densities,
    multiplication_count,
    weight_densities,
)


def _convs(model):
    return {
        table_name(n): mod
        for n, mod in model.named_modules()
        if isinstance(mod, nn.Conv2d | WinogradConv2d)
    }


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_builds_and_runs(name, arch):
    torch.manual_seed(0)
    net = build_model(name, arch, width=0.125)
    y = net(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, MODELS[name])
    y.sum().backward()
    assert net.network_name == name and net.architecture == arch and net.m == 2
    wino = [mod for mod in net.modules() if isinstance(mod, WinogradConv2d)]
    table = counting.get_network(name)
    n_pruned = len(table.pruned)
    assert len(wino) == (0 if arch == "spatial" else n_pruned)
    # Winograd-ReLU from layer 2 on: exactly the Winograd layers, and no others
    assert all(mod.relu_in_winograd == (arch == "winograd_relu") for mod in wino)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_channels_and_sizes_match_the_layer_tables(name):
    net = build_model(name, "spatial")
    table = {la.name: la for la in counting.get_network(name).layers}
    convs = _convs(net)
    assert set(convs) == {n for n, la in table.items() if isinstance(la, counting.ConvLayer)}
    seen = {}
    hooks = [
        mod.register_forward_pre_hook(
            lambda mod, args, n=n: seen.setdefault(n, tuple(args[0].shape[2:])) and None
        )
        for n, mod in convs.items()
    ]
    size = 224 if name == "resnet18-liu" else 32
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    for n, mod in convs.items():
        la = table[n]
        assert (mod.in_channels, mod.out_channels) == (la.in_channels, la.out_channels), n
        assert seen[n] == (la.height, la.width), n
    fcs = [mod for mod in net.modules() if isinstance(mod, nn.Linear)]
    table_fcs = [la for la in table.values() if isinstance(la, counting.FCLayer)]
    if name != "convpool-cnn-c":
        assert [(f.in_features, f.out_features) for f in fcs] == [
            (la.in_features, la.out_features) for la in table_fcs
        ]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("m", [2, 4])
def test_converted_model_computes_the_same_function(name, m):
    torch.manual_seed(1)
    net = build_model(name, "spatial", width=0.125).double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        want = net(x)
        convert_to_winograd(net, m=m)
        got = net(x)
    assert net.architecture == "winograd"
    assert sum(isinstance(mod, WinogradConv2d) for mod in net.modules()) == len(
        counting.get_network(name).pruned
    )
    assert_conv_close(got, want, m=m)


def test_winograd_relu_architecture_differs_from_spatial_relu():
    # same weights, ReLU moved into the Winograd domain: a different network (negative control)
    torch.manual_seed(2)
    a = build_model("vgg-nagadomi", "winograd", width=0.125).eval()
    b = build_model("vgg-nagadomi", "winograd_relu", width=0.125).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max() > 1e-4


def test_width_scales_channels_and_fc():
    net = build_model("vgg-nagadomi", width=0.5, num_classes=7)
    assert net.conv8.out_channels == 128 and net.fc1.in_features == 128 * 16
    assert net.fc1.out_features == 512 and net.fc3.out_features == 7


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"name": "alexnet"}, "unknown model"),
        ({"architecture": "sparse"}, "unknown architecture"),
        ({"width": 0}, "width"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_arguments(kw, match):
    args = {"name": "vgg-nagadomi", **kw}
    with pytest.raises(ValueError, match=match):
        build_model(**args)


# activation statistics


def test_activation_densities_match_numpy_oracle():
    torch.manual_seed(3)
    net = build_model("vgg-nagadomi", "winograd_relu", width=0.125).double()
    xs = [torch.randn(2, 3, 32, 32, dtype=torch.float64) for _ in range(2)]
    got = activation_densities(net, [(x, None) for x in xs])
    inputs = {}
    hooks = [
        mod.register_forward_pre_hook(
            lambda mod, args, n=n: inputs.setdefault(n, []).append(args[0].numpy().copy())
        )
        for n, mod in _convs(net).items()
    ]
    net.eval()
    with torch.no_grad():
        for x in xs:
            net(x)
    for h in hooks:
        h.remove()
    for n, batches in inputs.items():
        x = np.concatenate(batches)
        mod = _convs(net)[n]
        V = reference.input_transform(x, 3, 2, 1)
        if getattr(mod, "relu_in_winograd", False):
            V = np.maximum(V, 0)
        assert got[n]["spatial"] == np.count_nonzero(x) / x.size
        assert abs(got[n]["winograd"] - np.count_nonzero(V) / V.size) < 1e-3
    # Winograd-ReLU makes the transformed tiles sparse; the first layer sees the dense image
    assert got["conv1"]["spatial"] == 1.0
    assert all(0.2 < got[f"conv{i}"]["winograd"] < 0.8 for i in range(2, 9))


def test_spatial_network_activations_are_sparse_but_transformed_ones_dense():
    torch.manual_seed(4)
    net = build_model("vgg-nagadomi", "spatial", width=0.125)
    d = activation_densities(net, [torch.randn(2, 3, 32, 32)])
    # after a ReLU about half is zero (a 2x2 max-pool keeps ~1 - 0.5^4 of it nonzero) ...
    assert all(d[f"conv{i}"]["spatial"] < 0.7 for i in (2, 4, 6, 7, 8))
    # ... but BT d B fills the zeros in (anchors §6.9: ~0.94 for F(2x2, 3x3)); at 8x8 the
    # zero padding is a large part of the tiles, so only the ordering holds there
    assert d["conv2"]["winograd"] > 0.9
    assert all(d[f"conv{i}"]["winograd"] > d[f"conv{i}"]["spatial"] for i in range(2, 9))
    with pytest.raises(ValueError, match="empty"):
        activation_densities(net, [])


def test_multiplication_count_feeds_counting():
    net = build_model("vgg-nagadomi", "winograd_relu", width=0.125)
    dense = multiplication_count(net)
    assert dense.total == counting.count_multiplies("vgg-nagadomi", "winograd", 2).total
    wd = {f"conv{i}": 0.4 for i in range(2, 9)}
    ad = {n: {"spatial": 0.3, "winograd": 0.411} for n in ["conv1", *wd]}
    c = multiplication_count(net, ad, wd)
    want = counting.count_multiplies("vgg-nagadomi", "winograd_relu", 2, 0.4, 0.411)
    assert c.total == want.total and c.method == "winograd_relu"
    spatial = build_model("vgg-nagadomi", "spatial", width=0.125)
    c = multiplication_count(spatial, ad, {f"conv{i}": 0.6 for i in range(2, 9)})
    assert c.total == counting.count_multiplies("vgg-nagadomi", "spatial_pruned", 2, 0.6, 0.3).total
    assert weight_densities(spatial)["conv2"] == 1.0
    net.network_name = None
    with pytest.raises(ValueError, match="network_name"):
        multiplication_count(net)


def test_resnet18_shortcuts_are_wired_as_in_liu_et_al_code():
    """res2a: BN -> ReLU -> 1x1 -> BN; res3a, res4a, res5a: ReLU -> 1x1 -> BN."""
    net = build_model("resnet18-liu", "winograd_relu", width=0.125).double().eval()
    assert isinstance(net.res2a.short_bn0, nn.BatchNorm2d)
    for name in ("res3a", "res4a", "res5a"):
        block = getattr(net, name)
        assert isinstance(block.short_bn0, nn.Identity), name
        assert isinstance(block.short_bn1, nn.BatchNorm2d)
        assert getattr(net, name[:-1] + "b").short is None
    # the shortcut really reads ReLU(x), not ReLU(BN(x)): give BN a visible effect
    block = net.res3a
    with torch.no_grad():
        block.bn0.running_mean.fill_(5.0)  # would change the shortcut if it passed through bn0
    x = torch.randn(1, block.short.in_channels, 8, 8, dtype=torch.float64)
    want = block.short_bn1(block.short(torch.relu(x)))
    branch = block.bn2(block.conv2(block.bn1(block.conv1(block.bn0(x)))))
    torch.testing.assert_close(block(x), want + branch)


def test_models_carry_the_convention_to_every_winograd_layer():
    net = build_model("vgg-nagadomi", "winograd_relu", width=0.125, convention="wincnn")
    layers = [mod for mod in net.modules() if isinstance(mod, WinogradConv2d)]
    assert layers and {mod.convention for mod in layers} == {"wincnn"}
    assert net.convention == "wincnn"
    assert {mod.convention for mod in build_model("vgg-nagadomi", "winograd", width=0.125)
            .modules() if isinstance(mod, WinogradConv2d)} == {"lavin"}
    conv = convert_to_winograd(build_model("vgg-nagadomi", width=0.125), m=4,
                               convention="nnpack")
    assert {mod.convention for mod in conv.modules() if isinstance(mod, WinogradConv2d)} == {
        "nnpack"}
    with pytest.raises(ValueError, match="convention"):
        build_model("vgg-nagadomi", "winograd_relu", convention="Lavin")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize(("m", "exc", "match"), [
    (0, ValueError, r"m \(output tile size\) must be >= 1, got 0"),
    ("x", TypeError, r"m \(output tile size\) must be an int, got str 'x'"),
    (2.0, TypeError, r"m \(output tile size\) must be an int, got float"),
])
def test_build_model_checks_m_for_every_architecture(architecture, m, exc, match):
    # "spatial" has no Winograd layer, but it records model.m, which the pruners read
    with pytest.raises(exc, match=match):
        build_model("vgg-nagadomi", architecture, width=0.125, m=m)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"batchnorm": "no"}, TypeError, r"batchnorm must be True or False \(BatchNorm"),
    ({"width": float("inf")}, ValueError, "width must be a finite positive number, got inf"),
    ({"width": float("nan")}, ValueError, "width must be a finite positive number, got nan"),
    ({"width": 0}, ValueError, "width must be a finite positive number, got 0"),
])
def test_build_model_other_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        build_model("vgg-nagadomi", **kwargs)


def test_convert_to_winograd_checks_its_options():
    net = build_model("vgg-nagadomi", width=0.125)
    with pytest.raises(TypeError, match=r"relu_in_winograd must be True or False \(ReLU"):
        convert_to_winograd(net, relu_in_winograd="no")
    with pytest.raises(TypeError, match="skip_first must be True or False"):
        convert_to_winograd(net, skip_first=0)
    with pytest.raises(ValueError, match=r"m \(output tile size\) must be >= 1"):
        convert_to_winograd(net, m=0)
    assert not any(isinstance(mod, WinogradConv2d) for mod in net.modules()), "nothing changed"


@pytest.mark.parametrize(("name", "size", "match"), [
    ("vgg-nagadomi", 16, r"vgg-nagadomi expects 32x32 images \(32 to 39 pixels a side\), "
                         r"got 16x16"),
    ("vgg-nagadomi", 64, "vgg-nagadomi expects 32x32 images .*got 64x64"),
    ("convpool-cnn-c", 8, r"convpool-cnn-c expects 32x32 images \(at least 9 pixels"),
])
def test_a_model_fed_the_wrong_image_size_says_what_it_expects(name, size, match):
    net = build_model(name, "winograd_relu", width=0.125).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=match):
        net(torch.zeros(1, 3, size, size))


def test_image_size_bounds_are_exactly_what_runs():
    # the bounds of the check are the sizes the layers take: one inside runs, one outside fails
    with torch.no_grad():
        vgg = build_model("vgg-nagadomi", width=0.125).eval()
        assert vgg(torch.zeros(1, 3, 39, 32)).shape == (1, 10)
        with pytest.raises(ValueError, match="got 40x32"):
            vgg(torch.zeros(1, 3, 40, 32))
        convpool = build_model("convpool-cnn-c", width=0.125).eval()
        assert convpool(torch.zeros(1, 3, 9, 9)).shape == (1, 100)
        for mod in vgg.modules():
            mod._forward_pre_hooks.clear()
        with pytest.raises(RuntimeError, match="cannot be multiplied"):
            vgg(torch.zeros(1, 3, 40, 32))  # without the check: torch's shape error
    with pytest.raises(ValueError, match=r"expects a batch of images \(N, 3, 32, 32\), "
                                         r"got \(3, 32, 32\)"):
        vgg_checked = build_model("vgg-nagadomi", width=0.125)
        vgg_checked(torch.zeros(3, 32, 32))
