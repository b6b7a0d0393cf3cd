"""The paper-scale CIFAR-100 study, as chains of runs that each fit in one session.

ConvPool-CNN-C (Springenberg et al., as replicated by Yu et al.: seven 3x3 convolutions, two 1x1,
global average pooling) on all 50,000 training images of ``../shared/data/cifar100-png.zip``
(the 100 fine labels), evaluated on all 10,000 test images, with the CIFAR-10 study's fast
recipe (batch 256, linear warm-up to the peak lr over the first 15% of each phase's steps then
linear decay to 0, updated every step; label smoothing 0.2; flip + 4-pixel translation;
``--precision auto``).

The width is 0.25 (24 and 48 channels where the paper has 96 and 192). The reason is time:
measured at one thread beside other runs (``results/bench_train_step_convpool_w*.json``), a
Winograd-ReLU training step of 256 images takes 3.1 s at width 0.5 (load 2-3), so 30 dense
epochs of 196 steps take about 5 hours, two sessions for one baseline, where width 0.25 takes
2.1 s at a higher load (2.9: three processes on the two cores) and a quarter of the multiplies
(the CIFAR-10 study shares the same two cores). A multiply reduction is a ratio
of counts in which every layer but the first convolution and the 1x1 classifier scales by the
same width^2, so the comparison with Liu et al.'s 6.8x hardly depends on the width; the
accuracies are those of a network with a sixteenth of the paper's multiplies.

One chain per network and seed, ``{spatial,winograd,winograd_relu}-s{0,1,2}``:

- ``dense-<arch>-s<seed>``: the dense baselines of Liu et al.'s Figure 1, 30 epochs at peak lr 0.2;
- ``{han,liu}-d{80,60,40,30,20,10}-s<seed>``: the spatial/Han and the Winograd-ReLU/Liu sweeps,
  each density pruned from the step before it and retrained for 3 epochs on its own short
  schedule (peak lr 0.02); seeds 1 and 2 stop at 40%. The dense Winograd network is a baseline
  only (the issue asks for no Winograd-native sweep on CIFAR-100);
- chain ``spatial-s1`` ends with Yu et al.'s two stages: ``yu-spatial-s1`` (structured spatial
  pruning to a Winograd-domain density of 0.7, their 30% spatial sparsity, F(4x4, 3x3)) and
  ``yu-winograd-s1`` (the importance-factor Winograd stage to 0.5, their published 50%
  Winograd-domain sparsity, at lr 1e-6 in float32);
- chain ``spatial-s0`` ends with ``continued-spatial-s0``: han-d80-s0's retraining (same batch
  order) with nothing pruned. At this width and length the network underfits, so the retraining
  epochs alone may raise accuracy; this step measures by how much.

::

    python scripts/paper_cifar100.py plan                  # steps, chains and estimated hours
    python scripts/paper_cifar100.py chain spatial-s0 --commit &
    python scripts/paper_cifar100.py status                # recorded, finished, started, pending

The chains, the run directories (``~/.cache/winolab/runs/paper-cifar100-w0.25/<step>``) and the
recording of results (``results/cifar100-paper-w0.25/<step>.json``) are
``scripts/paper_study.py``'s, which describes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paper_study  # noqa: E402
from paper_study import ROOT, SHARED_DATA, Study, Yu  # noqa: E402

STUDY = Study(
    name="cifar100",
    network="convpool-cnn-c",
    data=SHARED_DATA / "cifar100-png.zip",
    scale="ConvPool-CNN-C, width {width}, all 50,000 training and 10,000 test images of "
    "CIFAR-100 as lossless PNG (../shared/data/cifar100-png.zip, fine labels); batch 256, "
    "linear warm-up over 15% to lr 0.2 and linear decay, label smoothing 0.2, flip + 4-pixel "
    "translation",
    # measured step times of ConvPool-CNN-C (one thread, beside another run)
    benches=(
        ROOT / "results" / "bench_train_step_convpool_w0.25.json",
        ROOT / "results" / "bench_train_step_convpool_w0.5.json",
    ),  # fmt: skip
    sweeps=("han", "liu"),
    # seed 0 sweeps to 10%; seeds 1 and 2 stop at 40%
    densities=((0.8, 0.6, 0.4, 0.3, 0.2, 0.1), (0.8, 0.6, 0.4), (0.8, 0.6, 0.4)),
    width=0.25,
    dense_epochs=30,
    dense_lr=0.2,
    retrain_epochs=3,
    retrain_lr=0.02,
    yu=Yu(seed=1, chain="spatial-s1", spatial=(0.7,), winograd=(0.5,)),
    continued=(0,),
)


def plan() -> list[dict]:
    """The steps: ``{"name", "init", "chain", "config"}`` in the order each chain runs them."""
    return paper_study.plan(STUDY)


def main(argv=None) -> int:
    return paper_study.main(STUDY, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
