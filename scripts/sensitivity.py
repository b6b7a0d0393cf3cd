"""Per-layer pruning sensitivity of a finished training run, recorded as JSON.

Each prunable layer of the run's model is pruned alone (the run's own pruning rule: spatial for
a spatial network, Li et al.'s for a Winograd one, Liu et al.'s for a Winograd-ReLU one) to
each density, with no retraining, and the accuracy is measured on a fixed class-balanced set of
*training* images (the test set stays untouched for the final evaluation). The per-layer
densities :func:`winolab.torch.sensitivity.choose_densities` picks at each tolerance are
recorded beside the table::

    python scripts/sensitivity.py ~/.cache/winolab/runs/paper-cifar10-w0.5/dense-spatial-s0 \\
        --json results/sensitivity/cifar10-paper-w0.5-dense-spatial-s0.json

An existing JSON is never overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a run directory with checkpoint.pt and config.json")
    p.add_argument("--json", type=Path, required=True, help="where to write (never overwritten)")
    p.add_argument("--images", type=int, default=2000, help="training images measured on")
    p.add_argument("--densities", default="0.8,0.6,0.4,0.3,0.2,0.1")
    p.add_argument("--tolerances", default="0.005,0.01,0.02",
                   help="accuracy losses (fractions) to choose per-layer densities at")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.json.exists():
        p.error(f"{args.json} exists; it is never overwritten (move it away first)")

    import torch

    from winolab import methods, provenance
    from winolab.torch import data as _data
    from winolab.torch import train
    from winolab.torch.sensitivity import choose_densities, layer_sensitivity

    torch.set_num_threads(args.threads)
    config = train.read_config(args.run)
    full = _data.load_dataset(config.data, "train")
    held = full.subset(args.images, seed=12_345)
    mean, std = full.subset(config.subset, config.seed).channel_stats()  # as in training
    loader = _data.BatchLoader(held, 250, mean, std)
    batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in loader.epoch(0)]
    model = train._build(config, len(full.classes), str(args.run))  # its checkpoint's weights
    # the run's own rule: the sweep method that prunes its architecture
    method = next(r.flag for r in methods.PRUNING_METHODS
                  if r.sweep and r.architecture == config.architecture)  # fmt: skip
    densities = tuple(float(d) for d in args.densities.split(","))
    start = time.monotonic()
    sens = layer_sensitivity(model, method, batches, densities)
    chosen = {t: choose_densities(sens, float(t)) for t in args.tolerances.split(",")}
    out = {
        "run": str(train._portable(args.run)), "model": config.model, "width": config.width,
        "architecture": config.architecture, "data": train._portable(config.data),
        "held_out": f"{args.images} class-balanced training images (subset seed 12345), "
                    "not augmented; fp32",
        **sens.as_dict(), "chosen": chosen,
        "command": "python scripts/sensitivity.py " + " ".join(
            str(train._portable(a)) if Path(a).exists() else a for a in sys.argv[1:]),
        "wall_time_s": time.monotonic() - start,
        "environment": provenance.environment(torch=torch.__version__, threads=args.threads),
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    train._write_json(args.json, out, overwrite=False)
    print(json.dumps({"baseline": sens.baseline, "chosen": chosen}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
