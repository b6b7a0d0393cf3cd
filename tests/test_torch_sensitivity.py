"""Per-layer pruning sensitivity and per-layer densities: a pruner takes a density per layer;
the analysis prunes exactly one layer at a time and restores the model; the choice follows its
rule on tables made up here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from winolab.torch.models import build_model  # noqa: E402
from winolab.torch.pruning import make_pruner  # noqa: E402
from winolab.torch.sensitivity import (  # noqa: E402
    Sensitivity,
    allocate,
    choose_densities,
    layer_sensitivity,
)


def _net(arch="spatial"):
    torch.manual_seed(0)
    return build_model("vgg-nagadomi", arch, width=0.125)


@pytest.mark.parametrize(("arch", "method"), [("spatial", "spatial"), ("winograd_relu", "liu"),
                                              ("winograd", "li")])
def test_a_pruner_takes_one_density_per_layer(arch, method):
    net = _net(arch)
    layers = list(make_pruner(net, method).densities())
    want = {n: (0.25 if i % 2 else 0.75) for i, n in enumerate(layers)}
    reached = make_pruner(net, method).prune(want)
    for n in layers:
        assert reached[n] == pytest.approx(want[n], abs=0.01), n


def test_per_layer_densities_must_name_every_target_layer():
    net = _net()
    pruner = make_pruner(net, "spatial")
    layers = list(pruner.densities())
    with pytest.raises(ValueError, match=r"missing \['conv8'\]"):
        pruner.prune(dict.fromkeys(layers[:-1], 0.5))
    with pytest.raises(ValueError, match=r"unknown \['conv1'\]"):
        pruner.prune({**dict.fromkeys(layers, 0.5), "conv1": 0.5})
    with pytest.raises(ValueError, match="number in \\[0, 1\\]"):
        pruner.prune({**dict.fromkeys(layers, 0.5), "conv2": 1.5})
    with pytest.raises(ValueError, match="number in \\[0, 1\\]"):
        pruner.prune("0.5")


def test_sensitivity_prunes_one_layer_at_a_time_and_restores_the_model():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    seen = []

    def accuracy(model, batches):
        # record which layers are pruned at each measurement
        dens = {n: float((m.weight == 0).float().mean()) for n, m in model.named_modules()
                if n.startswith("conv")}  # fmt: skip
        seen.append(sorted(n for n, z in dens.items() if z > 0.3))
        return 0.5, 16

    s = layer_sensitivity(net, "spatial", [(x, y)], densities=(0.6, 0.2), accuracy=accuracy)
    layers = [f"conv{i}" for i in range(2, 9)]
    assert list(s.accuracy) == layers and s.images == 16 and s.baseline == 0.5
    # the baseline with nothing pruned, then every layer alone at each density
    assert seen == [[]] + [[n] for n in layers for _ in (0.6, 0.2)]
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_sensitivity_measures_real_accuracy():
    net = _net()
    x, y = torch.randn(32, 3, 32, 32), torch.arange(32) % 10
    s = layer_sensitivity(net, "spatial", [(x, y)], densities=(1.0, 0.05))
    for layer, (dense, sparse) in s.accuracy.items():
        assert dense == s.baseline, layer  # density 1.0 prunes nothing
        assert 0 <= sparse <= 1


def test_bad_arguments():
    net = _net()
    with pytest.raises(ValueError, match=r"densities must be numbers in \(0, 1\]"):
        layer_sensitivity(net, "spatial", [], densities=(0.5, 0))
    with pytest.raises(ValueError, match="two-stage"):
        layer_sensitivity(net, "yu", [])
    with pytest.raises(ValueError, match="no images"):
        layer_sensitivity(net, "spatial", [], densities=(0.5,), accuracy=lambda m, b: (0.0, 0))
    with pytest.raises(ValueError, match="tolerance"):
        choose_densities(Sensitivity("spatial", 0.9, (0.5,), {}, 1), -0.1)


def test_choose_densities_stops_at_the_first_density_that_loses_too_much():
    s = Sensitivity("spatial", 0.90, (0.8, 0.6, 0.4, 0.2), {
        "conv2": (0.90, 0.899, 0.89, 0.80),   # within 0.5 pt down to 60%, 1 pt at 40%
        "conv3": (0.90, 0.90, 0.90, 0.899),   # prunable to 20%
        "conv4": (0.88, 0.90, 0.90, 0.90),    # the first density already loses 2 pt
        "conv5": (0.90, 0.85, 0.90, 0.90),    # a loss at 60% stops it, whatever lies below
    }, 100)  # fmt: skip
    assert choose_densities(s, 0.005) == {"conv2": 0.6, "conv3": 0.2, "conv4": 1.0,
                                          "conv5": 0.8}
    assert choose_densities(s, 0.2) == dict.fromkeys(s.accuracy, 0.2)
    assert s.loss("conv4")[0] == pytest.approx(0.02)
    assert s.as_dict()["accuracy"]["conv3"] == [0.90, 0.90, 0.90, 0.899]


def _spend(cost, choice):
    return sum(cost[n] * d for n, d in choice.items()) / sum(cost.values())


def _lost(s, choice):
    return sum(0.0 if d == 1.0 else s.loss(n)[s.densities.index(d)] for n, d in choice.items())


def test_allocate_is_the_best_choice_within_the_budget():
    # checked against brute force over every combination of measured densities (and 1.0)
    import itertools

    rng = np.random.default_rng(0)
    dens = (0.8, 0.6, 0.4, 0.2)
    for trial in range(20):
        layers = [f"conv{i}" for i in range(2, 2 + int(rng.integers(1, 5)))]
        acc = {n: tuple(0.9 - np.sort(rng.uniform(-0.01, 0.3, len(dens)))) for n in layers}
        s = Sensitivity("spatial", 0.9, dens, acc, 100)
        cost = {n: float(rng.choice([1, 2, 4])) for n in layers}
        average = float(rng.uniform(0.2, 1.0))
        chosen = allocate(s, cost, average)
        choices = [dict(zip(layers, c, strict=True))
                   for c in itertools.product((1.0, *dens), repeat=len(layers))]  # fmt: skip
        best = min(_lost(s, c) for c in choices if _spend(cost, c) <= average + 1e-12)
        assert _spend(cost, chosen) <= average + 1e-12, trial
        assert _lost(s, chosen) == pytest.approx(best), trial
    with pytest.raises(ValueError, match="below 0.2"):
        allocate(s, cost, 0.1)
    with pytest.raises(ValueError, match="name exactly"):
        allocate(s, {"conv9": 1.0}, 0.5)
    with pytest.raises(ValueError, match="positive number"):
        allocate(s, dict.fromkeys(layers, 0.0), 0.5)
    with pytest.raises(ValueError, match=r"density in \(0, 1\]"):
        allocate(s, cost, 1.5)


RECORDED = sorted((Path(__file__).resolve().parents[1] / "results" / "sensitivity").glob("*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_choices_follow_from_the_recorded_table(path):
    r = json.loads(path.read_text())
    s = Sensitivity.from_dict(r)
    for tol, chosen in r["chosen"].items():
        assert choose_densities(s, float(tol)) == chosen, tol
    # accuracies are counts of the held-out images; the run and data paths are portable
    for a in (s.baseline, *(x for row in s.accuracy.values() for x in row)):
        assert a * s.images == pytest.approx(round(a * s.images))
    assert not r["run"].startswith(("/work", "/root", "/home", "/tmp")), r["run"]
    assert r["environment"]["commit"] and r["environment"]["threads"] >= 1
