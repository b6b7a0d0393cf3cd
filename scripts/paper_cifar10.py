"""The paper-scale CIFAR-10 study, as chains of runs that each fit in one session.

VGG-nagadomi on all 50,000 training images of ``../shared/data/cifar10-jpeg.zip``, evaluated on
all 10,000 test images, with the fast recipe (batch 256, linear warm-up to the peak lr over the
first 15% of each phase's steps then linear decay to 0, updated every step; label smoothing 0.2;
flip + 4-pixel translation; ``--precision auto``, which is bf16 autocast where
``results/bench_train_step.json`` measured it to pay on this CPU).

The width is 0.5 by default, the study's stated fallback. Full width does not fit: a session
lasts three hours and ends its background jobs, and at full width 30 epochs of the fastest
network take 3.1 hours on one core (1.91 s per step of 256 images,
``results/bench_train_step.json``), so every dense baseline would span sessions. At width 0.5
the spatial and Winograd chains fit a session; the Winograd-ReLU chains span two and continue
from their checkpoints, which have survived in ``~/.cache`` between sessions on the same machine
(on a fresh machine a chain restarts its unfinished step).

One chain per network and seed, ``{spatial,winograd,winograd_relu}-s{0,1,2}``:

- ``dense-<arch>-s<seed>``: the dense baseline of Liu et al.'s Figure 1, 30 epochs at peak lr 0.2;
- ``{han,li,liu}-d{80,60,40,30,20,10}-s<seed>``: its pruning sweep (spatial/Han, Winograd-native/Li,
  Winograd-ReLU/Liu), each density pruned from the step before it and retrained for 3 epochs on
  its own short schedule (peak lr 0.02); seeds 1 and 2 stop at 40%, so the densities where the
  papers draw their conclusions (80%, 60% and 40%) have three seeds, each compared with its own
  seed's dense model;
- chain ``spatial-s1`` ends with ``yu-spatial-s1`` (structured spatial pruning to Winograd-domain
  densities 0.6 then 0.4, F(4x4, 3x3)) and ``yu-winograd-s1`` (the importance-factor Winograd
  stage to 0.37 at Yu et al.'s lr 1e-6, float32 since F(4x4)'s transforms are not exact in
  bfloat16);
- chain ``winograd_relu_m4-s0``: ``dense-winograd_relu-m4-s0`` and ``liu-m4-d{80,60,40}-s0``,
  Winograd-ReLU with F(4x4, 3x3) (the papers' future work), the seed-0 sweep's seeds and
  retraining; its Winograd layers compute in float32 under autocast, so the plan's estimate
  (the F(2x2) network's float32 step time) is a rough one;
- chain ``spatial-s0`` ends with ``continued-spatial-s0`` (han-d80-s0's retraining, same batch
  order, nothing pruned: what the extra epochs alone change) and a per-layer pair,
  ``oneshot-d20-s0`` (every layer pruned to 20% at once) and ``sensitivity-d20-s0`` (each layer
  to the density :func:`winolab.torch.sensitivity.allocate` picks from
  ``results/sensitivity/cifar10-paper-w0.5-dense-spatial-s0.json`` at the same multiplies),
  both one prune of ``dense-spatial-s0`` with the same retraining and batch order.

Two single-thread chains run side by side (the Winograd-ReLU chains, twice as slow, run alone on
two threads)::

    python scripts/paper_cifar10.py plan                  # steps, chains and estimated hours
    python scripts/paper_cifar10.py chain spatial-s0 --commit &
    python scripts/paper_cifar10.py chain winograd-s0 --commit &
    python scripts/paper_cifar10.py status                # finished, started, pending

The chains, the run directories (``~/.cache/winolab/runs/paper-cifar10-w0.5/<step>``) and
the recording of results (``results/cifar10-paper-w0.5/<step>.json``) are
``scripts/paper_study.py``'s, which describes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_study  # noqa: E402
from paper_study import ROOT, SHARED_DATA, PerLayer, Study, Yu  # noqa: E402

STUDY = Study(
    name="cifar10",
    network="vgg-nagadomi",
    data=SHARED_DATA / "cifar10-jpeg.zip",
    scale="VGG-nagadomi, width {width}, all 50,000 training and 10,000 test images of the "
    "JPEG re-encoding of CIFAR-10 (../shared/data/cifar10-jpeg.zip); batch 256, linear "
    "warm-up over 15% to lr 0.2 and linear decay, label smoothing 0.2, flip + 4-pixel "
    "translation",
    # measured step times (one thread): full width, all variants; width 0.5, the recipe's
    benches=(
        ROOT / "results" / "bench_train_step.json",
        ROOT / "results" / "bench_train_step_w0.5.json",
        ROOT / "results" / "bench_train_step_w0.5_m4.json",
    ),  # fmt: skip
    sweeps=("han", "li", "liu"),
    # seed 0 sweeps to 10%; seeds 1 and 2 stop at 40%
    densities=((0.8, 0.6, 0.4, 0.3, 0.2, 0.1), (0.8, 0.6, 0.4), (0.8, 0.6, 0.4)),
    width=0.5,
    dense_epochs=30,
    dense_lr=0.2,
    retrain_epochs=3,
    retrain_lr=0.02,
    yu=Yu(seed=1, chain="spatial-s1", spatial=(0.6, 0.4), winograd=(0.37,)),
    per_layer=PerLayer(seed=0, chain="spatial-s0", average=0.2, sensitivity=ROOT / "results"
                       / "sensitivity" / "cifar10-paper-w0.5-dense-spatial-s0.json"),
    continued=(0,),
    m4=(0.8, 0.6, 0.4),
)


def plan() -> list[dict]:
    """The steps: ``{"name", "init", "chain", "config"}`` in the order each chain runs them."""
    return paper_study.plan(STUDY)


def main(argv=None) -> int:
    return paper_study.main(STUDY, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
