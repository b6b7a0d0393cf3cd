"""WinogradConv2d: equals conv2d when built from one, projects back, and torch prune works."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

from winolab import reference, sparsity  # noqa: E402
from winolab.testing import assert_conv_close, tolerance  # noqa: E402
from winolab.torch.layers import WinogradConv2d  # noqa: E402


def _conv(C=3, K=4, padding=1, bias=True, seed=0):
    torch.manual_seed(seed)
    return nn.Conv2d(C, K, 3, padding=padding, bias=bias).double()


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("padding", [0, 1, (0, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_from_conv2d_forward_equals_conv2d(m, padding, bias):
    conv = _conv(padding=padding, bias=bias)
    layer = WinogradConv2d.from_conv2d(conv, m=m)
    x = torch.randn(2, 3, 9, 7, dtype=torch.float64)
    assert_conv_close(layer(x), conv(x), m=m)
    assert layer.weight.shape == (4, 3, m + 2, m + 2)
    assert (layer.bias is None) == (not bias)


def test_float32_layer_within_tolerance():
    conv = _conv().float()
    layer = WinogradConv2d.from_conv2d(conv, m=4)
    x = torch.randn(2, 3, 12, 12)
    want = reference.direct_conv2d(
        x.double().numpy(),
        conv.weight.detach().double().numpy(),
        conv.bias.detach().double().numpy(),
        padding=1,
    )
    assert_conv_close(layer(x), want, m=4)


def test_winograd_relu_layer_matches_reference():
    layer = WinogradConv2d(3, 5, m=2, relu_in_winograd=True, dtype=torch.float64)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    U, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    want = reference.winograd_domain_conv2d(x.numpy(), U, b, 1, 2, relu=True)
    assert_conv_close(layer(x), want, m=2)


@pytest.mark.parametrize("convention", ["lavin", "wincnn"])
def test_winograd_relu_layer_follows_its_convention(convention):
    torch.manual_seed(3)
    layer = WinogradConv2d(3, 4, m=2, relu_in_winograd=True, dtype=torch.float64,
                           convention=convention)
    assert layer.convention == convention and f"convention={convention!r}" in repr(layer)
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64)
    U, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    want = reference.winograd_domain_conv2d(x.numpy(), U, b, 1, 2, relu=True,
                                            convention=convention)
    assert_conv_close(layer(x), want, m=2)
    other = "wincnn" if convention == "lavin" else "lavin"
    wrong = reference.winograd_domain_conv2d(x.numpy(), U, b, 1, 2, relu=True, convention=other)
    assert np.abs(layer(x).detach().numpy() - wrong).max() > 0.1


def test_default_layer_is_liu_et_al_convention():
    assert WinogradConv2d(2, 2, relu_in_winograd=True).convention == "lavin"
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    lin = {c: WinogradConv2d.from_conv2d(conv, convention=c) for c in ("lavin", "wincnn")}
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    assert_conv_close(lin["lavin"](x), lin["wincnn"](x).detach().numpy(), m=2)
    # the least-squares projection back to space is the same kernel under either basis
    for layer in lin.values():
        proj = layer.to_conv2d()
        assert proj.residual < 1e-12
        np.testing.assert_allclose(proj.conv.weight.detach(), conv.weight.detach(), atol=1e-12)
    with pytest.raises(ValueError, match="convention"):
        WinogradConv2d(2, 2, convention="liu")


def test_fresh_layer_is_a_convolution():
    layer = WinogradConv2d(4, 6, m=4, dtype=torch.float64)
    proj = layer.to_conv2d()
    assert proj.residual < tolerance(4, dtype=np.float64)


@pytest.mark.parametrize("m", [2, 4])
def test_to_conv2d_round_trip_and_residual(m):
    conv = _conv(C=2, K=3)
    layer = WinogradConv2d.from_conv2d(conv, m=m)
    back, residual = layer.to_conv2d()
    assert residual < tolerance(m, dtype=np.float64)
    assert_conv_close(back.weight, conv.weight, m=m)
    assert_conv_close(back.bias, conv.bias, m=m)
    # after Winograd-domain pruning U is no longer G g GT: the residual is the oracle's
    prune.l1_unstructured(layer, "weight", 0.5)
    prune.remove(layer, "weight")
    back, residual = layer.to_conv2d()
    oracle = sparsity.project_to_spatial(layer.weight.detach().numpy(), m)
    U = layer.weight.detach().numpy()
    fit = reference.filter_transform(oracle.w, m)
    assert residual > 0.01
    assert abs(residual - np.linalg.norm(U - fit) / np.linalg.norm(U)) < 1e-12
    assert_conv_close(back.weight, oracle.w, m=m)


@pytest.mark.parametrize(
    "kw, what",
    [
        ({"stride": 2}, "stride"),
        ({"dilation": 2}, "dilation"),
        ({"groups": 2}, "groups"),
        ({"padding_mode": "reflect"}, "padding"),
    ],
)
def test_from_conv2d_rejects_what_winograd_cannot_do(kw, what):
    conv = nn.Conv2d(4, 4, 3, **{"padding": 1, **kw})
    with pytest.raises(ValueError, match=what):
        WinogradConv2d.from_conv2d(conv)


def test_from_conv2d_rejects_rectangular_and_non_conv():
    with pytest.raises(ValueError, match="square"):
        WinogradConv2d.from_conv2d(nn.Conv2d(2, 2, (3, 1)))
    with pytest.raises(TypeError, match="Conv2d"):
        WinogradConv2d.from_conv2d(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="in_channels"):
        WinogradConv2d(0, 2)


# torch.nn.utils.prune on the layer, unchanged (anchors §6.12)


def test_l1_unstructured_reparametrises_weight():
    layer = WinogradConv2d.from_conv2d(_conv(C=4, K=4))
    n = layer.weight.numel()
    prune.l1_unstructured(layer, "weight", 0.5)
    assert {"weight_orig", "weight_mask"} <= set(layer.state_dict())
    assert int(torch.count_nonzero(layer.weight)) == n - n // 2
    prune.l1_unstructured(layer, "weight", 0.5)  # half of the remaining
    assert int(torch.count_nonzero(layer.weight)) == n // 4
    before = int(torch.count_nonzero(layer.weight))
    prune.l1_unstructured(layer, "weight", amount=3)
    assert int(torch.count_nonzero(layer.weight)) == before - 3
    # the forward uses the masked U
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    want = reference.winograd_domain_conv2d(
        x.numpy(), layer.weight.detach().numpy(), layer.bias.detach().numpy(), 1, 2
    )
    assert_conv_close(layer(x), want, m=2)
    # gradients of pruned entries are zero
    layer(x).sum().backward()
    assert (layer.weight_orig.grad[layer.weight_mask == 0] == 0).all()
    kept = layer.weight.detach().clone()
    prune.remove(layer, "weight")
    assert set(layer.state_dict()) == {"weight", "bias"}
    assert torch.equal(layer.weight.detach(), kept)


def test_global_unstructured_hits_the_global_count():
    a = WinogradConv2d.from_conv2d(_conv(C=3, K=4, seed=1))
    b = WinogradConv2d.from_conv2d(_conv(C=4, K=2, seed=2))
    total = a.weight.numel() + b.weight.numel()
    prune.global_unstructured(
        [(a, "weight"), (b, "weight")], pruning_method=prune.L1Unstructured, amount=0.6
    )
    kept = int(torch.count_nonzero(a.weight)) + int(torch.count_nonzero(b.weight))
    assert kept == total - round(0.6 * total)


def test_liu_top_k_rule_matches_torch_l1_on_tie_free_data():
    # Liu's gen_prune_mask keeps the top int(size * density) by |w|; torch prunes round(amount)
    layer = WinogradConv2d.from_conv2d(_conv(C=4, K=4, seed=3))
    U = layer.weight.detach().numpy().copy()
    n = U.size
    keep = sparsity.prune_magnitude(U, 0.3).mask
    prune.l1_unstructured(layer, "weight", amount=n - int(n * 0.3))
    assert np.array_equal(layer.weight_mask.numpy().astype(bool), keep)


def test_extra_repr_and_state_dict_shape():
    layer = WinogradConv2d(2, 3, m=4, relu_in_winograd=True, bias=False)
    assert "alpha=6" in repr(layer) and "relu_in_winograd=True" in repr(layer)
    assert set(layer.state_dict()) == {"weight"}


@pytest.mark.parametrize("bad", ["no", "spatial", 0.5, 1, None])
def test_flags_must_be_booleans(bad):
    # "no" used to be truthy: a Winograd-ReLU layer nobody asked for
    with pytest.raises(TypeError, match=f"relu_in_winograd must be True or False .*got {bad!r}"):
        WinogradConv2d(2, 3, relu_in_winograd=bad)
    with pytest.raises(TypeError, match="relu_in_winograd must be True or False"):
        WinogradConv2d.from_conv2d(_conv(C=2, K=3), relu_in_winograd=bad)
    with pytest.raises(TypeError, match=r"bias must be True or False \(a learned bias"):
        WinogradConv2d(2, 3, bias=bad)


def test_a_list_or_tensor_as_bias_is_refused():
    # bias is a flag, as in nn.Conv2d; values go into layer.bias afterwards
    with pytest.raises(TypeError, match=r"bias must be True or False .*got \[1.0, 2.0, 3.0\]"):
        WinogradConv2d(2, 3, bias=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="bias must be True or False"):
        WinogradConv2d(2, 3, bias=torch.ones(3))
    assert WinogradConv2d(2, 3, bias=np.False_).bias is None
