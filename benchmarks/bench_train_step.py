"""Training-step time of VGG-nagadomi: precision x memory layout, for the three architectures.

One SGD step (forward, cross-entropy, backward, momentum update, mask re-application for the
pruned variant) on random CIFAR-shaped data, for every variant ``ARCH-PRECISION-LAYOUT``:

- ``ARCH``: ``spatial`` (every conv an ``nn.Conv2d``), ``winograd`` (layers 2-8
  ``WinogradConv2d``, F(2x2, 3x3), or F(4x4, 3x3) with ``--m 4``; spatial ReLU) or
  ``winograd_relu`` (Liu et al.'s Winograd-ReLU network, pruned to 40% with the Liu pruner);
- ``PRECISION``: ``fp32``, or ``bf16`` (``torch.autocast("cpu", dtype=torch.bfloat16)``, the
  weights and the optimizer in float32, as :func:`winolab.torch.train.run` trains);
- ``LAYOUT``: ``nchw`` (the model and the input as constructed: what training did before the
  layout fix, where the Winograd layers return ``channels_last`` into NCHW BatchNorm) or ``cl``
  (model and input in ``torch.channels_last``, one layout end to end).

The models run interleaved, round after round, in one process, and ratios are taken per round
(same-round medians) against ``ARCH-fp32-nchw``, so that the load of a shared machine hits every
variant alike. Run ``python benchmarks/bench_train_step.py --help``; it prints one line per
round and the median ratios, and writes them with provenance (CPU model, ISA flags, threads,
load average) to ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from winolab.provenance import git_commit, load_average, utc_now
from winolab.torch.models import build_model
from winolab.torch.pruning import make_pruner
from winolab.torch.train import cpu_info

ARCHITECTURES = ("spatial", "winograd", "winograd_relu")
VARIANTS = tuple(
    f"{a}-{p}-{lay}" for a in ARCHITECTURES for p, lay in (("fp32", "nchw"), ("fp32", "cl"),
                                                          ("bf16", "cl"))
)  # fmt: skip


def _make(variant: str, width: float, seed: int, network: str = "vgg-nagadomi", m: int = 2):
    arch, precision, layout = variant.split("-")
    torch.manual_seed(seed)
    model = build_model(network, arch, width=width, m=m)
    if layout == "cl":
        model = model.to(memory_format=torch.channels_last)
    pruner = None
    if arch == "winograd_relu":
        pruner = make_pruner(model, "liu")
        pruner.prune(0.4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    return model.train(), opt, pruner, precision, layout


def _step(model, opt, pruner, precision, layout, x, y) -> float:
    t0 = time.perf_counter()
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    opt.zero_grad(set_to_none=True)
    amp = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    with amp:
        loss = nn.functional.cross_entropy(model(x), y, label_smoothing=0.2)
    loss.backward()
    if pruner is not None:
        pruner.before_step()
    opt.step()
    if pruner is not None:
        pruner.after_step()
    return time.perf_counter() - t0


def run(
    batch: int = 256,
    width: float = 1.0,
    rounds: int = 3,
    steps: int = 1,
    warmup: int = 1,
    seed: int = 0,
    variants=VARIANTS,
    log=print,
    network: str = "vgg-nagadomi",
    m: int = 2,
) -> dict:
    """Interleaved rounds; returns per-round medians (seconds) and same-round ratios."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    variants = tuple(variants)
    models = {v: _make(v, width, seed, network, m) for v in variants}
    for made in models.values():
        for _ in range(warmup):
            _step(*made, x, y)
    per_round = {v: [] for v in variants}
    for r in range(rounds):
        # rotate the order so that no variant always runs first in a round
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            per_round[v].append(statistics.median(_step(*models[v], x, y) for _ in range(steps)))
        log(
            f"round {r + 1}/{rounds}: "
            + "  ".join(f"{v} {per_round[v][-1] * 1e3:6.0f} ms" for v in variants)
        )
    # speed-up of each variant over its architecture's fp32 NCHW step, round by round
    ratios = {}
    for v in variants:
        base = v.split("-")[0] + "-fp32-nchw"
        if base in per_round and v != base:
            ratios[v] = [b / a for a, b in zip(per_round[v], per_round[base], strict=True)]
    return {
        "batch": batch,
        "width": width,
        "model": network,
        "m": m,
        "median_step_s": {v: statistics.median(t) for v, t in per_round.items()},
        "round_step_s": per_round,
        "median_speedup_vs_fp32_nchw": {v: statistics.median(r) for v, r in ratios.items()},
        "round_speedups": ratios,
    }


def _provenance(args) -> dict:
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": utc_now(),
        "commit": git_commit()["commit"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_info(),
        "cores": os.cpu_count(),
        "load_average_1_5_15": load_average(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument(
        "--model", default="vgg-nagadomi", help="network: vgg-nagadomi or convpool-cnn-c"
    )
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    p.add_argument("--m", type=int, default=2, choices=(2, 4),
                   help="F(m x m, 3 x 3) in the Winograd layers (F(4x4) computes in float32 "
                        "under bf16 autocast)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=1, help="timed steps per model per round")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated ARCH-PRECISION-LAYOUT"
    )
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = tuple(v for v in args.variants.split(",") if v)
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variants {bad}; choose from {', '.join(VARIANTS)}")
    load_before = load_average()
    result = run(args.batch, args.width, args.rounds, args.steps, args.warmup, args.seed,
                 variants, network=args.model, m=args.m)  # fmt: skip
    result["provenance"] = _provenance(args)
    result["provenance"]["load_average_before"] = load_before
    for v, r in result["median_speedup_vs_fp32_nchw"].items():
        print(
            f"{v}: {result['median_step_s'][v]:.2f} s/step, median same-round speed-up over "
            f"fp32 NCHW {r:.2f}x (rounds: "
            f"{', '.join(f'{x:.2f}' for x in result['round_speedups'][v])})"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
