"""The papers' pruning methods as pruners that own masks and adjust gradients during training.

Every pruner is used the same way (the training loop of :mod:`winolab.torch.train` does this)::

    pruner = make_pruner(model, "liu")
    pruner.prune(0.7)                      # masks; pruned weights become exactly zero
    for x, y in batches:
        loss_fn(model(x), y).backward()
        pruner.before_step()               # gradient rules (masking, L1, importance scaling)
        optimizer.step()
        pruner.after_step()                # re-apply the masks: pruned weights stay zero

The rules themselves are the numpy functions of :mod:`winolab.sparsity` (one ranking per layer):

- ``"spatial"`` (Han et al. 2015): magnitude top-k on the spatial 3x3 kernels;
- ``"li"`` (Li et al. 2017): Winograd-domain threshold scaled per position,
  ``|U| > T / ||row of (A kron A)||``, with T per layer set by the density; an L1 term on U
  during retraining (SkimCaffe's ``regularization_type: "L1"``);
- ``"liu"`` (Liu et al. 2018): Winograd-domain magnitude top-k, the same density in every layer,
  the first layer excluded, masks only shrink along the schedule 0.7 -> 0.6 -> 0.5 -> 0.4 -> ...;
- ``"yu"`` (Yu et al. 2019): structured spatial masks that carry into the Winograd domain,
  then (after :meth:`YuPruner.to_winograd`) importance-factor pruning ``|U| F_hat`` with the
  gradient scaled by ``1 / F_hat^1.5``.

Masks are keyed by module name (``"conv2"``, ``"res3a.conv1"``); the first convolution of the
model is left out except where a method says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from winolab import methods, sparsity
from winolab._validate import check_bool, check_m
from winolab.torch.layers import WinogradConv2d

__all__ = ["LIU_SCHEDULE", "METHODS", "Pruner", "YuPruner", "make_pruner", "prunable_layers"]

LIU_SCHEDULE: tuple[float, ...] = (0.7, 0.6, 0.5, 0.4, 0.35)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The Winograd-able layers in model order: ``WinogradConv2d`` and stride-1 square
    ``nn.Conv2d`` with ``r > 1`` (1x1 convolutions and FC layers are never pruned here)."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, WinogradConv2d):
            out[name] = mod
        elif (
            isinstance(mod, nn.Conv2d)
            and mod.kernel_size[0] == mod.kernel_size[1] > 1
            and tuple(mod.stride) == (1, 1)
            and mod.groups == 1
        ):
            out[name] = mod
    return out


def _first_conv(model: nn.Module) -> str | None:
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | WinogradConv2d):
            return name
    return None


class Pruner:
    """Masks for some layers' ``weight`` and the gradient rules of one method.

    Subclasses set :attr:`method` and override :meth:`_targets`, :meth:`_mask` and
    :meth:`_adjust_grad`. Use :func:`make_pruner` to build one.
    """

    method = "base"

    def __init__(self, model: nn.Module, m: int | None = None, include_first: bool = False):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        m = None if m is None else check_m(m)
        include_first = check_bool(include_first, "include_first", "prune the first layer too")
        self.model, self.m, self.include_first = model, m, include_first
        self.masks: dict[str, torch.Tensor] = {}
        self.stage = "dense"
        if not self._targets():
            raise ValueError(
                f"{self.method!r} pruning found no layer to prune in this model ({self._needs})"
            )

    _needs = "it needs 3x3 convolutions"

    # -- which layers, and the rule --------------------------------------------------------

    def _kind_ok(self, mod: nn.Module) -> bool:
        return True

    def _targets(self) -> dict[str, nn.Module]:
        first = _first_conv(self.model)
        return {
            n: mod
            for n, mod in prunable_layers(self.model).items()
            if self._kind_ok(mod) and (self.include_first or n != first)
        }

    def _mask(self, name: str, mod: nn.Module, density: float, old) -> np.ndarray:
        raise NotImplementedError

    def _adjust_grad(self, name: str, mod: nn.Module) -> None:
        pass

    # -- the public protocol ---------------------------------------------------------------

    def prune(self, density: float | Mapping[str, float]) -> dict[str, float]:
        """Prune every target layer to ``density`` (fraction kept), or each layer to its own
        density (a mapping that names every target layer, e.g. chosen by
        :mod:`winolab.torch.sensitivity`); returns the densities reached."""
        targets = self._targets()
        per_layer = density if isinstance(density, Mapping) else dict.fromkeys(targets, density)
        if set(per_layer) != set(targets):
            raise ValueError(f"per-layer densities must name exactly the target layers "
                             f"{list(targets)}; missing {sorted(set(targets) - set(per_layer))}"
                             f", unknown {sorted(set(per_layer) - set(targets))}")  # fmt: skip
        for d in per_layer.values():
            if isinstance(d, bool) or not isinstance(d, int | float) or not (0.0 <= d <= 1.0):
                raise ValueError(f"density must be a number in [0, 1] (fraction kept), got {d!r}")
        for name, mod in targets.items():
            old = self.masks.get(name)
            old_np = None if old is None else old.cpu().numpy()
            keep = self._mask(name, mod, self._layer_density(name, per_layer[name]), old_np)
            self.masks[name] = torch.as_tensor(keep, device=mod.weight.device)
        self.stage = "pruned"
        self.after_step()
        return self.densities()

    def _layer_density(self, name: str, density: float) -> float:
        return density

    def before_step(self) -> None:
        """Gradient rules; call after ``backward()`` and before ``optimizer.step()``."""
        for name, mod in self._targets().items():
            if mod.weight.grad is None:
                continue
            self._adjust_grad(name, mod)
            if name in self.masks:
                mod.weight.grad.mul_(self._checked_mask(name, mod))

    @torch.no_grad()
    def after_step(self) -> None:
        """Re-apply the masks (momentum and weight decay move pruned weights off zero)."""
        for name, mod in self._targets().items():
            if name in self.masks:
                mod.weight.mul_(self._checked_mask(name, mod))

    def densities(self) -> dict[str, float]:
        """Weight density (fraction nonzero) of every target layer, by module name."""
        return {
            n: float(torch.count_nonzero(mod.weight).item() / mod.weight.numel())
            for n, mod in self._targets().items()
        }

    def state_dict(self) -> dict[str, Any]:
        """Method, stage and masks (CPU tensors), for checkpoints."""
        return {
            "method": self.method,
            "stage": self.stage,
            "masks": {n: mk.detach().cpu().clone() for n, mk in self.masks.items()},
        }

    _stages: tuple[str, ...] = ("dense", "pruned")

    def _check_state(self, sd) -> None:
        """A state from :meth:`state_dict`, or an error that says what is missing."""
        keys = ("method", "stage", "masks")
        if not isinstance(sd, dict):
            raise TypeError(f"a pruner state is a dict with {list(keys)} (from "
                            f"Pruner.state_dict()), got {type(sd).__name__}")
        if any(k not in sd for k in keys):
            raise ValueError(f"a pruner state is a dict with {list(keys)} (from "
                             f"Pruner.state_dict()), got the keys {sorted(sd)}")
        if sd["method"] == self.method and sd["stage"] not in self._stages:
            raise ValueError(f"stage {sd['stage']!r} is not a stage of {self.method!r} pruning: "
                             f"expected one of {list(self._stages)}")
        if not isinstance(sd["masks"], dict):
            raise TypeError(f"masks must be a dict of module name -> bool torch.Tensor, got "
                            f"{type(sd['masks']).__name__}")
        for name, mk in sd["masks"].items():
            if not isinstance(mk, torch.Tensor):
                raise TypeError(f"the mask for {name!r} must be a torch.Tensor, got "
                                f"{type(mk).__name__}")

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (on the model's current devices)."""
        self._check_state(sd)
        if sd.get("method") != self.method:
            raise ValueError(
                f"state is for {sd.get('method')!r} pruning, this pruner is {self.method!r}"
            )
        targets = self._targets()
        masks = {}
        for name, mk in sd["masks"].items():
            if name not in targets:
                raise ValueError(f"mask for {name!r}, which is not a target layer of this model")
            if tuple(mk.shape) != tuple(targets[name].weight.shape):
                raise ValueError(
                    f"mask for {name!r} has shape {tuple(mk.shape)}, the weight "
                    f"{tuple(targets[name].weight.shape)}"
                )
            masks[name] = mk.to(device=targets[name].weight.device, dtype=torch.bool)
        self.masks, self.stage = masks, sd["stage"]

    def _checked_mask(self, name: str, mod: nn.Module) -> torch.Tensor:
        """The mask as 0/1 in the weight's dtype (multiplying by a bool tensor converts it
        on every call), cached until the mask changes."""
        mk = self.masks[name]
        if mk.shape != mod.weight.shape:
            raise RuntimeError(
                f"the mask of {name!r} has shape {tuple(mk.shape)} but the "
                f"weight has {tuple(mod.weight.shape)}: was the model changed?"
            )
        cache = self.__dict__.setdefault("_float_masks", {})
        hit = cache.get(name)
        if hit is None or hit[0] is not mk or hit[1].dtype != mod.weight.dtype:
            hit = cache[name] = (mk, mk.to(mod.weight.dtype))
        return hit[1]

    @staticmethod
    def _weight(mod: nn.Module) -> np.ndarray:
        return mod.weight.detach().cpu().to(torch.float64).numpy()


def _nonneg_number(v, name: str, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < float("inf"):
        raise ValueError(f"{name} ({what}) must be a finite number >= 0, got {v!r}")
    return float(v)


class SpatialPruner(Pruner):
    """Han et al.: keep the ``int(size * density)`` largest ``|w|`` of each spatial kernel
    tensor (:func:`winolab.sparsity.prune_magnitude`); masked retraining."""

    method = "spatial"
    _needs = "it prunes spatial nn.Conv2d layers; build the model with architecture='spatial'"

    def _kind_ok(self, mod):
        return isinstance(mod, nn.Conv2d)

    def _mask(self, name, mod, density, old):
        return sparsity.prune_magnitude(self._weight(mod), density).mask


class LiuPruner(Pruner):
    """Liu et al.: Winograd-domain magnitude top-k per layer, one density for all layers,
    first layer excluded; the new mask ranks only the weights the old mask kept."""

    method = "liu"
    _needs = "it prunes WinogradConv2d layers; use architecture='winograd_relu'"

    def _kind_ok(self, mod):
        return isinstance(mod, WinogradConv2d)

    def _mask(self, name, mod, density, old):
        # Liu's prune_script.py --existing_mask: masks only shrink
        return sparsity.prune_magnitude(self._weight(mod), density, mask=old).mask


class LiPruner(Pruner):
    """Li et al.: native Winograd-domain pruning with a per-position threshold, then L1.

    ``prune(density)`` zeroes ``|U| <= T * scale``
    (:func:`~winolab.sparsity.position_threshold_scale`), with the per-layer T that keeps
    ``int(size * density)`` weights: the top-k of ``|U| / scale``.
    :meth:`~winolab.torch.pruning.Pruner.before_step` adds the L1 subgradient ``l1 * sign(U)``
    (SkimCaffe's ``regularization_type: "L1"``, default 5e-5); with ``threshold`` set,
    :meth:`after_step` also hard-thresholds ``|U| <= threshold * scale``
    after every update (SkimCaffe's solver), which only shrinks the masks.
    """

    method = "li"
    _needs = "it prunes WinogradConv2d layers; convert a spatial model with convert_to_winograd"

    def __init__(
        self, model, m=None, include_first=False, l1: float = 5e-5, threshold: float | None = None
    ):
        super().__init__(model, m, include_first)
        self.l1 = _nonneg_number(l1, "l1", "the L1 coefficient")
        self.threshold = None if threshold is None else _nonneg_number(
            threshold, "threshold", "the hard threshold T, or None")

    def _kind_ok(self, mod):
        return isinstance(mod, WinogradConv2d)

    def _scale(self, mod) -> torch.Tensor:
        s = sparsity.position_threshold_scale(
            mod.m, mod.kernel_size, mod.points, convention=mod.convention)
        return torch.as_tensor(s, dtype=mod.weight.dtype, device=mod.weight.device)

    def _mask(self, name, mod, density, old):
        scale = sparsity.position_threshold_scale(
            mod.m, mod.kernel_size, mod.points, convention=mod.convention)
        # |U| > T scale  <=>  |U| / scale > T: one threshold per layer = top-k of |U| / scale
        return sparsity.prune_magnitude(np.abs(self._weight(mod)) / scale, density, old).mask

    def _adjust_grad(self, name, mod):
        if self.l1:
            # d/dU of l1 * ||U||_1
            mod.weight.grad.add_(torch.sign(mod.weight.detach()), alpha=self.l1)

    @torch.no_grad()
    def after_step(self):
        if self.threshold is not None and self.stage == "pruned":
            for name, mod in self._targets().items():
                keep = mod.weight.abs() > self.threshold * self._scale(mod)
                self.masks[name] = self.masks.get(name, keep) & keep
        super().after_step()


class YuPruner(Pruner):
    """Yu et al.'s spatial-Winograd pruning, in two stages.

    1. ``"spatial"``: on a spatial model, :meth:`prune` sets structured masks
       (:func:`winolab.sparsity.structured_spatial_mask`, tile ``m``, default 4) whose zeros
       make whole Winograd positions exactly zero; retrain in the spatial domain.
    2. :meth:`to_winograd` converts the model in place (``U = G g GT``; the structural zeros
       stay zero and the new masks start as ``U != 0``); then :meth:`prune` keeps the largest
       ``|U| * F_hat`` (:func:`winolab.sparsity.prune_importance`) and
       :meth:`~winolab.torch.pruning.Pruner.before_step` divides the gradient by
       ``F_hat ** 1.5``.

    The first layer gets the fixed density ``first_density`` (Yu's CIFAR scripts: 20%
    sparsity, 0.8); ``None`` leaves it dense.
    """

    method = "yu"
    _stages = ("dense", "spatial", "winograd")

    def __init__(
        self,
        model,
        m=None,
        include_first=True,
        first_density: float | None = 0.8,
        exponent: float = 1.5,
    ):
        super().__init__(model, 4 if m is None else m, include_first)
        if first_density is not None and not (
                _nonneg_number(first_density, "first_density", "a density or None") <= 1):
            raise ValueError(f"first_density must be a density in [0, 1] or None, got "
                             f"{first_density!r}")
        self.first_density = first_density
        self.exponent = _nonneg_number(exponent, "exponent", "the power of F_hat")
        self._first = _first_conv(model)
        has_wino = any(isinstance(mod, WinogradConv2d) for mod in self._targets().values())
        self.stage = "winograd" if has_wino else "dense"

    def _targets(self):
        targets = super()._targets()
        if getattr(self, "first_density", 0.8) is None:
            targets.pop(_first_conv(self.model), None)
        return targets

    def _layer_density(self, name, density):
        return self.first_density if name == self._first else density

    def _mask(self, name, mod, density, old):
        if isinstance(mod, WinogradConv2d):
            if old is not None:
                # the structural zeros of stage 1 stay: at most the density the mask allows
                density = min(density, int(old.sum()) / old.size)
            return sparsity.prune_importance(
                self._weight(mod), density, mod.m, mod.points, mask=old,
                convention=mod.convention,
            ).mask
        keep = sparsity.structured_spatial_mask(self._weight(mod), density, self.m)
        return keep if old is None else keep & old

    def prune(self, density):
        stage = "winograd" if self.stage == "winograd" else "spatial"
        out = super().prune(density)
        self.stage = stage
        return out

    def densities(self):
        """Winograd-domain weight density of every target layer (of ``G g GT`` in stage 1,
        counting the zeros the structure forces)."""
        out = {}
        for n, mod in self._targets().items():
            if isinstance(mod, WinogradConv2d):
                out[n] = float(torch.count_nonzero(mod.weight).item() / mod.weight.numel())
            else:
                out[n] = sparsity.filter_fill_in(self._weight(mod), self.m, rule="structural")
        return out

    def _fhat(self, mod) -> torch.Tensor:
        F = sparsity.importance_factors(mod.m, mod.kernel_size, mod.points,
                                        convention=mod.convention)
        # grad <- grad / F_hat ** 1.5   (Yu's grad_compute.py)
        return torch.as_tensor(F**-self.exponent, dtype=mod.weight.dtype, device=mod.weight.device)

    def _adjust_grad(self, name, mod):
        if isinstance(mod, WinogradConv2d):
            mod.weight.grad.mul_(self._fhat(mod))

    def load_state_dict(self, sd):
        """As :meth:`Pruner.load_state_dict`; a stage-2 state converts a spatial model first
        (so on resume: build the model, load the pruner state, then the model's state)."""
        self._check_state(sd)
        # a Winograd-architecture model keeps its first layer spatial until the switch
        if sd.get("stage") == "winograd" and not all(
            isinstance(mod, WinogradConv2d) for mod in self._targets().values()
        ):
            self.to_winograd()
        super().load_state_dict(sd)

    def to_winograd(self) -> nn.Module:
        """Stage 2: replace the 3x3 convolutions by ``WinogradConv2d`` (tile ``m``), in place.

        Build the optimizer again afterwards: the parameters are new.
        """
        from winolab.torch.models import convert_to_winograd

        convert_to_winograd(self.model, self.m, skip_first=False)
        self.masks = {n: (mod.weight.detach() != 0) for n, mod in self._targets().items()}
        self.stage = "winograd"
        return self.model


_PRUNERS = {c.method: c for c in (SpatialPruner, LiPruner, LiuPruner, YuPruner)}
#: ``--method`` name -> pruner, in the order of :data:`winolab.methods.PRUNING_METHODS`
METHODS: dict[str, type[Pruner]] = {p.flag: _PRUNERS[p.flag] for p in methods.PRUNING_METHODS}


def make_pruner(model: nn.Module, method: str, m: int | None = None, **options) -> Pruner:
    """A pruner of ``method`` for ``model``.

    Parameters
    ----------
    model : nn.Module
        Spatial (``"spatial"``, ``"yu"`` stage 1) or with ``WinogradConv2d`` layers
        (``"li"``, ``"liu"``, ``"yu"`` stage 2).
    method : {"spatial", "li", "liu", "yu"}
    m : int, optional
        Tile of Yu's structured spatial masks and of :meth:`YuPruner.to_winograd` (default 4);
        the Winograd layers carry their own ``m``.
    **options
        ``include_first`` (every method; default False, True for ``"yu"``), ``l1`` and
        ``threshold`` (``"li"``), ``first_density`` and ``exponent`` (``"yu"``).

    Examples
    --------
    >>> from winolab.torch.models import build_model
    >>> net = build_model("vgg-nagadomi", "winograd_relu", width=0.125)
    >>> pruner = make_pruner(net, "liu")
    >>> reached = pruner.prune(0.4)
    >>> sorted(reached)[:2], reached["conv2"]    # int(8 * 8 * 16 * 0.4) = 409 of 1024 kept
    (['conv2', 'conv3'], 0.3994140625)
    """
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; expected one of {list(METHODS)}")
    return METHODS[method](model, m, **options)
