"""The pruning methods, architectures and multiplication counts: every name of each, once.

The same method has a name in each vocabulary of the package. Han et al.'s spatial pruning is
the step prefix ``han`` of the recorded runs (``han-d60``, against ``dense-spatial``), the
``--method spatial`` of ``python -m winolab train`` and of
:func:`winolab.torch.pruning.make_pruner`; it prunes the ``spatial`` architecture in the spatial
domain, and a pruned spatial network counts its multiplies as ``spatial_pruned``
(:mod:`winolab.counting`: sparse weights and sparse activations). The tables below hold those
names; ``winolab.counting.METHODS``, ``winolab.results.SWEEPS``, ``winolab.torch.pruning.METHODS``,
``winolab.torch.models.ARCHITECTURES`` and the training CLI's choices are views of them. Adding
a method is one row of :data:`PRUNING_METHODS` (the recipe is in CONTRIBUTING.md).

>>> han = BY_STEP["han"]
>>> han.flag, han.architecture, han.domains, han.counts
('spatial', 'spatial', ('spatial',), ('spatial_pruned',))
>>> BY_FLAG["yu"].domains, BY_FLAG["yu"].counts    # structured spatial, then Winograd-domain
(('spatial', 'winograd'), ('spatial_pruned', 'winograd_native'))
>>> a = ARCHITECTURES["winograd_relu"]
>>> a.dense, a.pruned, COUNTS[a.pruned].sparse_activations
('winograd', 'winograd_relu', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "ARCHITECTURES", "BY_FLAG", "BY_STEP", "COUNTS", "PRUNING_METHODS", "Architecture",
    "ArchitectureInfo", "Count", "CountMethod", "Domain", "PruningMethod",
]

Domain = Literal["spatial", "winograd"]
Architecture = Literal["spatial", "winograd", "winograd_relu"]
CountMethod = Literal["direct", "spatial_pruned", "winograd", "winograd_native", "winograd_relu"]


@dataclass(frozen=True)
class Count:
    """A method of :func:`winolab.counting.count_multiplies`: the domain its products are in
    (direct convolution, or the elementwise products of Winograd tiles) and its sparse operands
    (weights; input activations, ``x`` or ``ReLU(BT d B)``)."""

    name: CountMethod
    domain: Domain
    sparse_weights: bool
    sparse_activations: bool
    what: str


@dataclass(frozen=True)
class ArchitectureInfo:
    """A network architecture of Liu et al.'s Figure 1 and how its multiplies are counted,
    dense and pruned."""

    name: Architecture
    dense: CountMethod
    pruned: CountMethod
    what: str

    @property
    def domain(self) -> Domain:
        """Where its 3x3 layers multiply (and a pruner of it prunes)."""
        return COUNTS[self.dense].domain

    @property
    def baseline(self) -> str:
        """The step name of its dense run in ``results/``: ``dense-<architecture>``."""
        return f"dense-{self.name}"


@dataclass(frozen=True)
class PruningMethod:
    """A pruning method in every vocabulary: ``step`` (run names ``<step>-d<percent>``),
    ``flag`` (``--method``, ``make_pruner``), ``stages`` (the architecture of each pruning stage;
    the first is the one it starts from), and whether ``results/`` records it as a density
    ``sweep`` against its dense baseline."""

    step: str
    flag: str
    stages: tuple[Architecture, ...]
    paper: str
    label: str
    sweep: bool = True

    @property
    def architecture(self) -> Architecture:
        """The architecture of its run (``--architecture``) and of its dense baseline."""
        return self.stages[0]

    @property
    def domains(self) -> tuple[Domain, ...]:
        """The domain each stage prunes in."""
        return tuple(ARCHITECTURES[a].domain for a in self.stages)

    @property
    def counts(self) -> tuple[CountMethod, ...]:
        """The :mod:`winolab.counting` method of its pruned model after each stage."""
        return tuple(ARCHITECTURES[a].pruned for a in self.stages)


COUNTS: dict[CountMethod, Count] = {c.name: c for c in (
    Count("direct", "spatial", False, False, "dense direct convolution"),
    Count("spatial_pruned", "spatial", True, True,
          "direct with spatial weight and input-activation sparsity (Han et al.)"),
    Count("winograd", "winograd", False, False, "dense Winograd F(m x m, r x r) (Lavin & Gray)"),
    Count("winograd_native", "winograd", True, False,
          "Winograd-domain weight sparsity, dense activations (Li et al.)"),
    Count("winograd_relu", "winograd", True, True,
          "Winograd-domain weight and ReLU(BT d B) sparsity (Liu et al.)"),
)}  # fmt: skip

ARCHITECTURES: dict[Architecture, ArchitectureInfo] = {a.name: a for a in (
    ArchitectureInfo("spatial", "direct", "spatial_pruned", "conv + ReLU"),
    ArchitectureInfo("winograd", "winograd", "winograd_native",
                     "Winograd-domain layer + spatial ReLU"),
    ArchitectureInfo("winograd_relu", "winograd", "winograd_relu",
                     "ReLU on the transformed input tiles, Liu et al."),
)}  # fmt: skip

PRUNING_METHODS: tuple[PruningMethod, ...] = (
    PruningMethod("han", "spatial", ("spatial",), "Han et al.",
                  "spatial conv, pruned spatially (Han et al.)"),
    PruningMethod("li", "li", ("winograd",), "Li et al.",
                  "Winograd layer, native pruning (Li et al.)"),
    PruningMethod("liu", "liu", ("winograd_relu",), "Liu et al.",
                  "Winograd-ReLU, pruned (Liu et al.)"),
    PruningMethod("yu", "yu", ("spatial", "winograd"), "Yu et al.",
                  "structured spatial, then Winograd-domain pruning (Yu et al.)", sweep=False),
)
BY_STEP: dict[str, PruningMethod] = {p.step: p for p in PRUNING_METHODS}
BY_FLAG: dict[str, PruningMethod] = {p.flag: p for p in PRUNING_METHODS}

if (tuple(COUNTS), tuple(ARCHITECTURES)) != (get_args(CountMethod), get_args(Architecture)):
    raise RuntimeError("winolab.methods: the tables and their Literal types disagree")
