"""Activation densities over an evaluation set, and the papers' multiplication count.

:func:`activation_densities` hooks every Winograd-able layer (3x3 stride-1 convolutions and
``WinogradConv2d``) and counts, over all the batches,

- ``"spatial"``: the nonzeros of the layer's input ``x`` (after the spatial ReLU, if any): the
  ``d_a`` of the conventional network pruned in the spatial domain;
- ``"winograd"``: the nonzeros of what the layer multiplies in the Winograd domain, the
  transformed tiles ``V = BT d B``, or ``ReLU(BT d B)`` in a Winograd-ReLU layer: Liu et al.'s
  ``d_a'`` (padding and the zero-extended edge tiles included, as a kernel would see them).

:func:`multiplication_count` feeds these and the weight densities to
:func:`winolab.counting.count_multiplies`, under the paper's layer table of the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from winolab import counting
from winolab.methods import ARCHITECTURES, COUNTS
from winolab.torch.functional import input_transform
from winolab.torch.layers import WinogradConv2d
from winolab.torch.models import table_name
from winolab.torch.pruning import prunable_layers

__all__ = ["activation_densities", "multiplication_count", "weight_densities"]


def _winograd_input(mod: nn.Module, x: torch.Tensor, m: int) -> torch.Tensor:
    """What the layer (or its F(m x m, r x r) twin) multiplies: ``V`` or ``ReLU(V)``."""
    if isinstance(mod, WinogradConv2d):
        V = input_transform(x, mod.kernel_size, mod.m, mod.padding, mod.points,
                            convention=mod.convention)
        return V.clamp(min=0) if mod.relu_in_winograd else V
    return input_transform(x, mod.kernel_size[0], m, tuple(mod.padding))


@torch.no_grad()
def activation_densities(
    model: nn.Module, batches: Iterable, m: int = 2, max_batches: int | None = None
) -> dict[str, dict[str, float]]:
    """Per-layer input densities, spatial and Winograd-domain, over ``batches``.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode (restored afterwards), without gradients.
    batches : iterable
        Of input tensors ``x`` or of ``(x, label)`` pairs.
    m : int
        Tile of the Winograd transform for spatial layers (a ``WinogradConv2d`` uses its own).
    max_batches : int, optional
        Stop after this many batches.

    Returns
    -------
    dict
        ``{module name: {"spatial": float, "winograd": float}}`` in model order.

    Examples
    --------
    >>> from winolab.torch.models import build_model
    >>> net = build_model("vgg-nagadomi", "winograd_relu", width=0.125)
    >>> d = activation_densities(net, [torch.randn(2, 3, 32, 32)])
    >>> d["conv1"]["spatial"], d["conv2"]["winograd"] < 0.8
    (1.0, True)
    """
    layers = prunable_layers(model)
    counts = {n: [0, 0, 0, 0] for n in layers}  # nnz(x), numel(x), nnz(V), numel(V)
    handles = []
    for name, mod in layers.items():

        def hook(mod, args, name=name):
            x = args[0]
            V = _winograd_input(mod, x, m)
            c = counts[name]
            c[0] += int(torch.count_nonzero(x))
            c[1] += x.numel()
            c[2] += int(torch.count_nonzero(V))
            c[3] += V.numel()

        handles.append(mod.register_forward_pre_hook(hook))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for i, batch in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            x = batch[0] if isinstance(batch, tuple | list) else batch
            model(x.to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not any(c[1] for c in counts.values()):
        raise ValueError("activation_densities saw no batch: batches was empty")
    return {n: {"spatial": c[0] / c[1], "winograd": c[2] / c[3]} for n, c in counts.items()}


def weight_densities(model: nn.Module) -> dict[str, float]:
    """Density of every Winograd-able layer's ``weight`` (U for a ``WinogradConv2d``)."""
    return {
        n: float(torch.count_nonzero(mod.weight).item() / mod.weight.numel())
        for n, mod in prunable_layers(model).items()
    }


_measured_weight_densities = weight_densities  # the parameter below shadows the name


def multiplication_count(
    model: nn.Module,
    activation_densities: Mapping[str, Mapping[str, float]] | None = None,
    weight_densities: Mapping[str, float] | None = None,
    method: counting.Method | None = None,
    m: int | None = None,
) -> counting.MultiplyCount:
    """Products per image under the papers' model, with this model's densities.

    The count uses the paper's layer table for ``model.network_name`` (full width, the
    paper's input size) and the densities measured on this model for the layers the table
    prunes (every Winograd layer but the first): ``d_w x d_a`` per layer.

    Parameters
    ----------
    model : nn.Module
        Built by :func:`winolab.torch.models.build_model` (it carries ``network_name``,
        ``architecture`` and ``m``).
    activation_densities : dict, optional
        From :func:`activation_densities`; dense (1.0) if omitted.
    weight_densities : dict, optional
        By module name; measured from the model's weights if omitted.
    method : str, optional
        A :data:`winolab.counting.METHODS` entry; by default the architecture's pruned count
        (:data:`winolab.methods.ARCHITECTURES`): ``"spatial_pruned"``, ``"winograd_native"``
        or ``"winograd_relu"``.
    m : int, optional
        Tile of the Winograd count; defaults to ``model.m``.

    Examples
    --------
    >>> from winolab.torch.models import build_model
    >>> net = build_model("vgg-nagadomi", "winograd_relu", width=0.125)
    >>> c = multiplication_count(net, weight_densities={f"conv{i}": 0.4 for i in range(2, 9)},
    ...                          activation_densities={f"conv{i}": {"winograd": 0.411}
    ...                                                for i in range(2, 9)})
    >>> print(f"{c.total:.3g} ({c.reduction:.1f}x fewer than direct)")
    2.26e+07 (10.3x fewer than direct)
    """
    name = getattr(model, "network_name", None)
    if name is None:
        raise ValueError(
            "model has no network_name: build it with winolab.torch.build_model, "
            "or set model.network_name to a winolab.counting.NETWORKS key"
        )
    network = counting.get_network(name)
    if method is None:
        method = ARCHITECTURES[getattr(model, "architecture", "spatial")].pruned
    m = getattr(model, "m", 2) if m is None else m
    if weight_densities is None:
        weight_densities = _measured_weight_densities(model)
    if method not in COUNTS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(COUNTS)}")
    key = COUNTS[method].domain
    wd = {table_name(n): float(v) for n, v in weight_densities.items()}
    ad = {table_name(n): float(v[key]) for n, v in (activation_densities or {}).items()}
    dense_w, dense_a = not COUNTS[method].sparse_weights, not COUNTS[method].sparse_activations
    # the table's pruned layers; a layer missing from the measurements counts as dense
    w = {n: 1.0 if dense_w else wd.get(n, 1.0) for n in network.pruned}
    a = {n: 1.0 if dense_a else ad.get(n, 1.0) for n in network.pruned}
    return counting.count_multiplies(network, method, m, w, a)
