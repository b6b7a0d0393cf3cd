"""Pruners refuse bad options and damaged states with messages that say what was expected.

(The behaviour of the pruning methods is tested in test_torch_pruning.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from winolab.torch.models import build_model  # noqa: E402
from winolab.torch.pruning import make_pruner  # noqa: E402


@pytest.fixture(scope="module")
def wino():
    return build_model("vgg-nagadomi", "winograd_relu", width=0.125)


@pytest.fixture(scope="module")
def spatial():
    return build_model("vgg-nagadomi", "spatial", width=0.125)


@pytest.mark.parametrize(("state", "exc", "match"), [
    ({}, ValueError, r"a pruner state is a dict with \['method', 'stage', 'masks'\] .*"
                     r"got the keys \[\]"),
    ({"method": "liu"}, ValueError, r"got the keys \['method'\]"),
    (None, TypeError, "a pruner state is a dict .*got NoneType"),
    ({"method": "liu", "stage": "pruned", "masks": [1]}, TypeError,
     "masks must be a dict of module name -> bool torch.Tensor, got list"),
    ({"method": "liu", "stage": "pruned", "masks": {"conv2": np.ones((8, 8, 4, 4))}},
     TypeError, "the mask for 'conv2' must be a torch.Tensor, got ndarray"),
    ({"method": "liu", "stage": "sparse", "masks": {}}, ValueError,
     r"stage 'sparse' is not a stage of 'liu' pruning: expected one of \['dense', 'pruned'\]"),
    ({"method": "spatial", "stage": "pruned", "masks": {}}, ValueError,
     "state is for 'spatial' pruning, this pruner is 'liu'"),
])
def test_load_state_dict_refuses_damaged_states(wino, state, exc, match):
    pruner = make_pruner(wino, "liu")
    with pytest.raises(exc, match=match):
        pruner.load_state_dict(state)
    assert pruner.masks == {} and pruner.stage == "dense", "a refused state changes nothing"


def test_yu_checks_the_state_before_converting(spatial):
    pruner = make_pruner(spatial, "yu")
    with pytest.raises(ValueError, match="a pruner state is a dict"):
        pruner.load_state_dict({"stage": "winograd"})
    with pytest.raises(ValueError, match="stage 'pruned' is not a stage of 'yu' pruning"):
        pruner.load_state_dict({"method": "yu", "stage": "pruned", "masks": {}})
    assert pruner.stage == "dense"


def test_a_saved_state_still_loads(wino):
    pruner = make_pruner(wino, "liu")
    pruner.prune(0.5)
    other = make_pruner(build_model("vgg-nagadomi", "winograd_relu", width=0.125), "liu")
    other.load_state_dict(pruner.state_dict())
    assert other.stage == "pruned" and set(other.masks) == set(pruner.masks)


@pytest.mark.parametrize(("method", "options", "exc", "match"), [
    ("liu", {"include_first": "no"}, TypeError,
     r"include_first must be True or False \(prune the first layer too\), got 'no'"),
    ("liu", {"m": 0}, ValueError, r"m \(output tile size\) must be >= 1, got 0"),
    ("li", {"l1": "x"}, ValueError, r"l1 \(the L1 coefficient\) must be a finite number >= 0"),
    ("li", {"l1": float("nan")}, ValueError, "l1 .* must be a finite number >= 0, got nan"),
    ("li", {"threshold": -1}, ValueError, "threshold .* must be a finite number >= 0, got -1"),
])
def test_pruner_options_on_winograd_models(wino, method, options, exc, match):
    with pytest.raises(exc, match=match):
        make_pruner(wino, method, **options)


@pytest.mark.parametrize(("options", "match"), [
    ({"first_density": 2}, r"first_density must be a density in \[0, 1\] or None, got 2"),
    ({"first_density": -0.1}, "first_density .* must be a finite number >= 0"),
    ({"exponent": float("nan")}, r"exponent \(the power of F_hat\) must be a finite number"),
    ({"m": 0}, r"m \(output tile size\) must be >= 1, got 0"),
])
def test_yu_options(spatial, options, match):
    with pytest.raises(ValueError, match=match):
        make_pruner(spatial, "yu", **options)
    assert make_pruner(spatial, "yu", first_density=None).first_density is None
