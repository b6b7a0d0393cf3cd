"""Each pruning method hits its density, follows its paper's rule and keeps pruned weights zero."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from winolab import reference, sparsity  # noqa: E402
from winolab.testing import assert_conv_close  # noqa: E402
from winolab.torch.layers import WinogradConv2d  # noqa: E402
from winolab.torch.models import build_model, convert_to_winograd  # noqa: E402
from winolab.torch.pruning import LIU_SCHEDULE, make_pruner, prunable_layers  # noqa: E402

ARCH = {"spatial": "spatial", "liu": "winograd_relu", "li": "winograd", "yu": "spatial"}


def _net(method, seed=0, name="vgg-nagadomi"):
    torch.manual_seed(seed)
    return build_model(name, ARCH[method], width=0.125)


def _train(net, pruner, steps=3, seed=0):
    """SGD with momentum and weight decay: both move pruned weights unless masks are kept."""
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (4,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        pruner.before_step()
        opt.step()
        pruner.after_step()


def _zeros_kept(net, pruner):
    layers = prunable_layers(net)
    for name, mask in pruner.masks.items():
        w = layers[name].weight.detach()
        assert (w[~mask] == 0).all(), name


@pytest.mark.parametrize("method", ["spatial", "liu", "li"])
def test_top_k_methods_hit_the_density_and_keep_zeros(method):
    net = _net(method)
    pruner = make_pruner(net, method)
    reached = pruner.prune(0.4)
    for name, mod in prunable_layers(net).items():
        if name == "conv1":  # the first layer is excluded
            assert name not in reached and torch.count_nonzero(mod.weight) == mod.weight.numel()
            continue
        n = mod.weight.numel()
        assert reached[name] == int(n * 0.4) / n
    _train(net, pruner)
    _zeros_kept(net, pruner)
    assert pruner.densities() == reached


def test_liu_schedule_masks_only_shrink_and_match_the_oracle():
    net = _net("liu")
    pruner = make_pruner(net, "liu")
    old = None
    for d in LIU_SCHEDULE[:3]:
        U = {n: mod.weight.detach().numpy().copy() for n, mod in prunable_layers(net).items()}
        pruner.prune(d)
        for name, mask in pruner.masks.items():
            # Liu's prune_script.py: top int(size * density) of |w * old_mask|
            scores = np.abs(U[name]) * (1 if old is None else old[name].numpy())
            k = int(scores.size * d)
            want = np.zeros(scores.size, bool)
            want[np.argsort(-scores.ravel(), kind="stable")[:k]] = True
            assert np.array_equal(mask.numpy().ravel(), want)
            if old is not None:
                assert not (mask & ~old[name]).any()
        old = {n: mk.clone() for n, mk in pruner.masks.items()}
        _train(net, pruner, steps=1)
    with pytest.raises(ValueError, match="masks only shrink"):
        pruner.prune(0.9)


def test_li_rule_is_the_per_position_threshold():
    net = convert_to_winograd(_net("spatial"), m=4)
    pruner = make_pruner(net, "li", l1=0.0)
    pruner.prune(0.3)
    mod = net.conv4
    U = mod.weight.detach().numpy()
    scale = sparsity.position_threshold_scale(4, 3)
    scores = np.abs(U) / scale
    T = scores[~pruner.masks["conv4"].numpy()].max()  # the threshold that the density sets
    # everything above T survives: the native rule |U| > T * scale (before pruning)
    U_dense = np.where(pruner.masks["conv4"].numpy(), U, 1e-300)  # pruned ones are now 0
    assert np.array_equal(
        sparsity.prune_native(U_dense, T, m=4).mask, pruner.masks["conv4"].numpy()
    )


def test_li_l1_gradient_and_hard_threshold():
    net = _net("li", seed=1)
    pruner = make_pruner(net, "li", l1=1e-3, threshold=0.05)
    pruner.prune(0.5)
    x = torch.randn(2, 3, 32, 32)
    net(x).sum().backward()
    plain = net.conv3.weight.grad.clone()
    pruner.before_step()
    mask = pruner.masks["conv3"]
    want = (plain + 1e-3 * torch.sign(net.conv3.weight.detach())) * mask
    assert torch.equal(net.conv3.weight.grad, want)
    with torch.no_grad():
        net.conv3.weight.mul_(0.01)  # now many weights fall below the hard threshold
    pruner.after_step()
    assert pruner.densities()["conv3"] < 0.5
    _zeros_kept(net, pruner)


def test_yu_two_stages():
    net = _net("yu")
    pruner = make_pruner(net, "yu")
    reached = pruner.prune(0.5)
    assert pruner.stage == "spatial"
    for name, mod in prunable_layers(net).items():
        w = mod.weight.detach().double().numpy()
        target = 0.8 if name == "conv1" else 0.5  # Yu's fixed 20% sparsity for the first layer
        # the structured zeros carry over exactly: U = G g GT has the reported density
        U = reference.filter_transform(w, 4)
        assert np.count_nonzero(U) / U.size <= reached[name] <= target
        assert reached[name] > target - 0.05
    _train(net, pruner)
    _zeros_kept(net, pruner)
    net.eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        before = net.double()(x)
        pruner.to_winograd()
        after = net(x)
    assert_conv_close(after, before, m=4)
    assert all(isinstance(mod, WinogradConv2d) for mod in prunable_layers(net).values())
    net.float().train()
    reached2 = pruner.prune(0.4)
    assert pruner.stage == "winograd"
    for name, mod in prunable_layers(net).items():
        U = mod.weight.detach().numpy()
        if name != "conv1":
            assert reached2[name] == int(U.size * 0.4) / U.size
    # importance rule: the kept set is the top-k of |U| F_hat (on the new weights)
    mod = net.conv5
    U = mod.weight.detach().double().numpy()
    F_hat = sparsity.importance_factors(4, 3)
    kept = pruner.masks["conv5"].numpy()
    assert (np.abs(U) * F_hat)[kept].min() >= (np.abs(U) * F_hat)[~kept].max()
    # gradient scaled by 1 / F_hat^1.5
    net.zero_grad()
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    plain = mod.weight.grad.clone()
    pruner.before_step()
    want = plain * torch.tensor(F_hat**-1.5, dtype=plain.dtype) * pruner.masks["conv5"]
    assert torch.allclose(mod.weight.grad, want, rtol=1e-6, atol=0)
    _train(net, pruner)
    _zeros_kept(net, pruner)


@pytest.mark.parametrize("method", ["spatial", "liu", "li", "yu"])
def test_state_dict_round_trip(method):
    net = _net(method)
    pruner = make_pruner(net, method)
    pruner.prune(0.6)
    if method == "yu":
        pruner.to_winograd()
        pruner.prune(0.5)
    sd = pruner.state_dict()
    fresh = _net(method, seed=1)
    other = make_pruner(fresh, method)
    other.load_state_dict(copy.deepcopy(sd))  # yu: converts the spatial model first
    fresh.load_state_dict(net.state_dict())
    assert other.stage == pruner.stage
    assert set(other.masks) == set(pruner.masks)
    for n in pruner.masks:
        assert torch.equal(other.masks[n], pruner.masks[n])
    assert other.densities() == pruner.densities()
    with pytest.raises(ValueError, match="pruning"):
        make_pruner(_net("liu"), "liu" if method != "liu" else "li").load_state_dict(sd)


def test_wrong_model_or_method():
    with pytest.raises(ValueError, match="no layer to prune"):
        make_pruner(_net("spatial"), "liu")
    with pytest.raises(ValueError, match="no layer to prune"):
        make_pruner(_net("liu"), "spatial")
    with pytest.raises(ValueError, match="unknown pruning method"):
        make_pruner(_net("liu"), "random")
    pruner = make_pruner(_net("liu"), "liu")
    with pytest.raises(ValueError, match="density"):
        pruner.prune(1.5)


def test_liu_on_resnet_prunes_every_block_conv():
    torch.manual_seed(0)
    net = build_model("resnet18-liu", "winograd_relu", width=0.125)
    pruner = make_pruner(net, "liu")
    reached = pruner.prune(0.5)
    assert len(reached) == 16 and "res2a.conv1" in reached and "res2a.short" not in reached
