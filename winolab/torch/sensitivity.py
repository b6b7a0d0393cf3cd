"""Per-layer pruning sensitivity: what each layer alone costs when pruned, and per-layer
densities chosen from it (Han et al. 2015 chose their per-layer rates this way).

The papers reproduced here prune every layer but the first to one density. A layer that is
cheap to prune (wide, late, redundant) then waits on the most sensitive one. Sensitivity
analysis prunes one layer at a time, with no retraining, and measures the model's accuracy
on held-out images; :func:`choose_densities` then gives each layer the lowest density at which
its loss stays within a tolerance. Measure it on images the final test does not use (training
images here), or the chosen rates are fitted to the test set.

>>> from winolab.torch.models import build_model
>>> _ = torch.manual_seed(0)
>>> net = build_model("vgg-nagadomi", "spatial", width=0.125)
>>> x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
>>> s = layer_sensitivity(net, "spatial", [(x, y)], densities=(0.5, 0.1))
>>> list(s.accuracy)[:2], s.densities, s.images
(['conv2', 'conv3'], (0.5, 0.1), 8)
>>> sorted(choose_densities(s, tolerance=1.0).values())[0]   # anything holds within 100 pt
0.1
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from winolab.torch.pruning import make_pruner

__all__ = ["DENSITIES", "Sensitivity", "allocate", "choose_densities", "layer_sensitivity"]

#: the densities of the papers' sweeps
DENSITIES = (0.8, 0.6, 0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class Sensitivity:
    """Accuracy of a model with one layer pruned at a time (no retraining)."""

    method: str
    baseline: float  # accuracy with no layer pruned
    densities: tuple[float, ...]  # highest first
    accuracy: dict[str, tuple[float, ...]]  # layer -> accuracy at each density
    images: int

    def loss(self, layer: str) -> tuple[float, ...]:
        """Accuracy lost (a fraction; positive is worse) at each density, pruning ``layer``."""
        return tuple(self.baseline - a for a in self.accuracy[layer])

    @classmethod
    def from_dict(cls, d: dict) -> Sensitivity:
        """The table of :meth:`as_dict` (or of a ``scripts/sensitivity.py`` JSON) again."""
        return cls(d["method"], d["baseline"], tuple(d["densities"]),
                   {k: tuple(v) for k, v in d["accuracy"].items()}, d["images"])  # fmt: skip

    def as_dict(self) -> dict:
        return {"method": self.method, "baseline": self.baseline,
                "densities": list(self.densities), "images": self.images,
                "accuracy": {k: list(v) for k, v in self.accuracy.items()}}  # fmt: skip


@torch.no_grad()
def _accuracy(model: nn.Module, batches: Iterable) -> tuple[float, int]:
    model.eval()
    correct = n = 0
    for x, y in batches:
        correct += (model(x).argmax(1) == y).sum().item()
        n += len(y)
    return correct / n, n


def layer_sensitivity(model: nn.Module, method: str, batches: Iterable,
                      densities: tuple[float, ...] = DENSITIES,
                      accuracy: Callable | None = None) -> Sensitivity:  # fmt: skip
    """Prune each target layer of ``method`` alone to each density and measure the accuracy.

    Parameters
    ----------
    model : nn.Module
        A dense model (a pruned one's masks are not kept); it is restored afterwards.
    method : {"spatial", "li", "liu"}
        The pruning rule (:func:`winolab.torch.pruning.make_pruner`); its target layers are the
        layers analysed.
    batches : iterable of (x, y)
        Held-out images and labels, taken once and reused for every measurement.
    densities : tuple of float
        Fractions kept, each in (0, 1].
    accuracy : callable, optional
        ``accuracy(model, batches) -> (accuracy, images)``; the default runs ``model.eval()``
        and counts top-1 hits.
    """
    dens = tuple(densities)
    if not dens or any(isinstance(d, bool) or not isinstance(d, int | float) or not 0 < d <= 1
                       for d in dens):  # fmt: skip
        raise ValueError(f"densities must be numbers in (0, 1], got {densities!r}")
    if method == "yu":
        raise ValueError("Yu et al.'s two-stage method has no single-layer rule to analyse: "
                         "use 'spatial', 'li' or 'liu'")  # fmt: skip
    measure = accuracy or _accuracy
    batches = list(batches)
    state = copy.deepcopy(model.state_dict())
    layers = list(make_pruner(model, method).densities())
    baseline, images = measure(model, batches)
    if images == 0:
        raise ValueError("no images to measure the accuracy on")
    table: dict[str, tuple[float, ...]] = {}
    try:
        for layer in layers:
            row = []
            for d in dens:
                make_pruner(model, method).prune({n: d if n == layer else 1.0 for n in layers})
                row.append(measure(model, batches)[0])
                model.load_state_dict(state)
            table[layer] = tuple(row)
    finally:
        model.load_state_dict(state)
    return Sensitivity(method, baseline, dens, table, images)


def choose_densities(sens: Sensitivity, tolerance: float) -> dict[str, float]:
    """Per layer, the lowest measured density whose accuracy loss (that layer alone pruned)
    is at most ``tolerance`` (a fraction: 0.005 is half a point), with every higher density
    within it too; 1.0 for a layer whose first density already loses more."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not (
            0 <= tolerance < math.inf):  # fmt: skip
        raise ValueError(f"tolerance must be a finite fraction >= 0, got {tolerance!r}")
    order = sorted(range(len(sens.densities)), key=lambda i: -sens.densities[i])
    out = {}
    for layer in sens.accuracy:
        lost = sens.loss(layer)
        chosen = 1.0
        for i in order:
            if lost[i] > tolerance:
                break
            chosen = sens.densities[i]
        out[layer] = chosen
    return out


def allocate(sens: Sensitivity, cost: Mapping[str, float], average: float) -> dict[str, float]:
    """Per-layer densities with the least summed sensitivity loss at a cost budget.

    Each layer takes one of its measured densities (or 1.0, unpruned) so that the
    ``cost``-weighted mean density is at most ``average``; ``cost[layer]`` is what the layer
    costs dense (its multiplies, or its weights). Of all such choices the one with the least
    sum of the layers' single-layer losses is returned, found exactly (dynamic programming
    over the Pareto front of summed cost and loss); the sum is a first-order guess at the
    loss of pruning the layers together. A budget below every layer at its lowest density is
    refused.

    >>> s = Sensitivity("spatial", 0.9, (0.5, 0.1), {"a": (0.9, 0.5), "b": (0.8, 0.7)}, 100)
    >>> allocate(s, {"a": 1, "b": 1}, 0.3)   # b loses 0.1 at 0.5, a 0.4 at 0.1: prune b more
    {'a': 0.5, 'b': 0.1}
    """
    layers = list(sens.accuracy)
    if set(cost) != set(layers):
        raise ValueError(f"cost must name exactly the analysed layers {layers}, got {sorted(cost)}")
    for name in layers:
        c = cost[name]
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < math.inf:
            raise ValueError(f"cost of {name} must be a positive number, got {c!r}")
    if isinstance(average, bool) or not isinstance(average, int | float) or not 0 < average <= 1:
        raise ValueError(f"average is a density in (0, 1], got {average!r}")
    total = sum(cost.values())
    floor = sum(cost[n] * min(sens.densities) for n in layers) / total
    if average < floor - 1e-12:
        raise ValueError(f"average {average:g} is below {floor:g}, every layer at its lowest "
                         f"measured density {min(sens.densities):g}")  # fmt: skip
    budget = average * total * (1 + 1e-12)
    front = [(0.0, 0.0, ())]  # (cost so far, loss so far, densities so far)
    for name in layers:
        options = [(1.0, 0.0), *zip(sens.densities, sens.loss(name), strict=True)]
        grown = sorted((c + cost[name] * d, lo + loss, (*ch, d))
                       for c, lo, ch in front for d, loss in options
                       if c + cost[name] * d <= budget)  # fmt: skip
        front, best = [], math.inf
        for item in grown:  # keep the points no cheaper choice beats on loss
            if item[1] < best:
                front.append(item)
                best = item[1]
    return dict(zip(layers, min(front, key=lambda item: (item[1], item[0]))[2], strict=True))
