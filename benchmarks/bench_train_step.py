"""Training-step time of VGG-nagadomi with Winograd-domain layers against ``nn.Conv2d``.

One SGD step (forward, cross-entropy, backward, momentum update, mask re-application for the
pruned variant) at batch 128 on random CIFAR-shaped data, for

- ``conv2d``: the spatial network (``build_model(..., "spatial")``: every conv an ``nn.Conv2d``);
- ``conv2d_channels_last``: the same in ``torch.channels_last`` memory format (often faster);
- ``winograd``: layers 2-8 ``WinogradConv2d`` (F(2x2, 3x3)), spatial ReLU;
- ``winograd_relu``: Liu et al.'s Winograd-ReLU network, pruned to 40% with the Liu pruner.

The models run interleaved, round after round, in one process, and the ratio is taken per
round (same-round medians), so that the load of a shared machine hits every model alike.
Run ``python benchmarks/bench_train_step.py --help``; it prints one line per round and the
median ratios, and writes them with provenance to ``--json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from winolab.torch.models import build_model
from winolab.torch.pruning import make_pruner

VARIANTS = ("conv2d", "conv2d_channels_last", "winograd", "winograd_relu")


def _make(variant: str, width: float, seed: int):
    torch.manual_seed(seed)
    arch = "spatial" if variant.startswith("conv2d") else variant
    model = build_model("vgg-nagadomi", arch, width=width)
    if variant == "conv2d_channels_last":
        model = model.to(memory_format=torch.channels_last)
    pruner = None
    if variant == "winograd_relu":
        pruner = make_pruner(model, "liu")
        pruner.prune(0.4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    return model.train(), opt, pruner


def _step(model, opt, pruner, x, y) -> float:
    t0 = time.perf_counter()
    if next(model.parameters()).is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    if pruner is not None:
        pruner.before_step()
    opt.step()
    if pruner is not None:
        pruner.after_step()
    return time.perf_counter() - t0


def run(
    batch: int = 128,
    width: float = 1.0,
    rounds: int = 7,
    steps: int = 2,
    warmup: int = 1,
    seed: int = 0,
    variants=VARIANTS,
    log=print,
) -> dict:
    """Interleaved rounds; returns per-round medians (seconds) and same-round ratios."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    models = {v: _make(v, width, seed) for v in variants}
    for model, opt, pruner in models.values():
        for _ in range(warmup):
            _step(model, opt, pruner, x, y)
    per_round = {v: [] for v in variants}
    for r in range(rounds):
        # rotate the order so that no variant always runs first in a round
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            model, opt, pruner = models[v]
            per_round[v].append(
                statistics.median(_step(model, opt, pruner, x, y) for _ in range(steps))
            )
        log(
            f"round {r + 1}/{rounds}: "
            + "  ".join(f"{v} {per_round[v][-1] * 1e3:7.0f} ms" for v in variants)
        )
    # against the faster of the two nn.Conv2d layouts, round by round
    conv = [
        min(ts)
        for ts in zip(*(per_round[v] for v in variants if v.startswith("conv2d")), strict=True)
    ]
    ratios = {
        v: [a / b for a, b in zip(per_round[v], conv, strict=True)]
        for v in variants
        if not v.startswith("conv2d")
    }
    nchw = {
        v: statistics.median(a / b for a, b in zip(per_round[v], per_round["conv2d"], strict=True))
        for v in ratios
    }
    return {
        "median_step_s": {v: statistics.median(t) for v, t in per_round.items()},
        "round_step_s": per_round,
        "median_ratio_vs_best_conv2d": {v: statistics.median(r) for v, r in ratios.items()},
        "median_ratio_vs_conv2d_nchw": nchw,
        "round_ratios": ratios,
    }


def _provenance(args) -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1_5_15": os.getloadavg(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=2, help="timed steps per model per round")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args.batch, args.width, args.rounds, args.steps, args.warmup, args.seed)
    result["provenance"] = _provenance(args)
    for v, r in result["median_ratio_vs_best_conv2d"].items():
        print(
            f"{v}: median same-round step ratio vs the faster nn.Conv2d = {r:.2f}x "
            f"(rounds: {', '.join(f'{x:.2f}' for x in result['round_ratios'][v])}); "
            f"vs NCHW nn.Conv2d {result['median_ratio_vs_conv2d_nchw'][v]:.2f}x"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
