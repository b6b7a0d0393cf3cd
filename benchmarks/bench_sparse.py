"""Sparse Winograd (winolab.sparse, numba) against torch's dense conv2d, layer by layer.

For each 3x3 layer of VGG-nagadomi and two ResNet-18 layers, at batch 1 and 64, and Winograd-domain
weight densities 1.0 ... 0.05 (magnitude pruning of U = G w GT), it times

* winolab.sparse.winograd_domain_conv2d with the packed weights (F(m x m, 3x3), float32,
  ``--m 2`` or ``4``),
* the same kernel with the multiply skipped (the transforms alone: the "transform share"),
* torch.nn.functional.conv2d in NCHW and in channels_last (the faster one is "torch"),
* torch's bf16 conv2d (channels_last), labelled apart, where the CPU has native bf16,

in interleaved rounds in one process, and reports medians and the median of same-round ratios
(the machine is shared and noisy). Run ``python benchmarks/bench_sparse.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from winolab import sparse  # noqa: E402
from winolab.provenance import cpu_info, git_commit, load_1m, utc_now, vector_isa  # noqa: E402
from winolab.reference import filter_transform  # noqa: E402

DENSITIES = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)
RESNET_LAYERS = ("resnet18-liu", ("res4b_conv1", "res5b_conv1"))


def layers(quick: bool) -> list[tuple[str, int, int, int]]:
    """(name, C, K, H) of the benchmarked 3x3 layers (from winolab.counting's tables)."""
    from winolab.counting import get_network

    vgg = [la for la in get_network("vgg-nagadomi").layers if getattr(la, "kernel", 0) == 3]
    by_name = {la.name: la for la in get_network(RESNET_LAYERS[0]).layers}
    out = [(la.name, la.in_channels, la.out_channels, la.height) for la in vgg]
    for res in (by_name[n] for n in RESNET_LAYERS[1]):
        out.append((f"resnet18:{res.name}", res.in_channels, res.out_channels, res.height))
    if quick:
        out = [la for la in out if la[0] in ("conv2", "conv4", "conv6")]
    return out


def prune(U: np.ndarray, density: float) -> np.ndarray:
    """Magnitude pruning of U to ``density`` (winolab.sparsity when it is there)."""
    if density >= 1.0:
        return U
    try:
        from winolab.sparsity import prune_magnitude
    except ImportError:  # pragma: no cover - the sparsity module landing later
        keep = int(U.size * density)
        thr = np.sort(np.abs(U), axis=None)[-keep]
        return np.where(np.abs(U) >= thr, U, 0).astype(U.dtype)
    return prune_magnitude(U, density).values.astype(U.dtype)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = time.perf_counter


def timed(fn, reps: int) -> float:
    """Mean milliseconds of ``reps`` calls on the chosen clock.

    ``cpu`` (process CPU time) only makes sense single-threaded: it ignores the time the
    process waits for a core, which is what makes wall time noisy on a shared machine.
    """
    t = CLOCK()
    for _ in range(reps):
        fn()
    return (CLOCK() - t) * 1e3 / reps


def bench_layer(name, C, K, H, batch, densities, rounds, seed=0, m=2, bf16=False):
    import torch
    import torch.nn.functional as F  # noqa: N812

    rng = np.random.default_rng(seed)
    # activations after a ReLU, Kaiming-scaled weights
    x = np.maximum(rng.standard_normal((batch, C, H, H)), 0).astype(np.float32)
    w = (rng.standard_normal((K, C, 3, 3)) * np.sqrt(2.0 / (9 * C))).astype(np.float32)
    U = filter_transform(w, m=m).astype(np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    xcl, wcl = xt.to(memory_format=torch.channels_last), wt.to(memory_format=torch.channels_last)
    packed = {d: sparse.SparseWinogradWeights.from_dense(prune(U, d)) for d in densities}

    y_t = F.conv2d(xt, wt, padding=1).numpy()
    y_w, _ = sparse.winograd_domain_conv2d(x, packed[1.0] if 1.0 in packed else U, padding=1,
                                           m=m, backend="numba", return_multiplies=True)
    rel_err = float(np.linalg.norm(y_w - y_t) / np.linalg.norm(y_t))

    methods = {
        "torch_nchw": lambda: F.conv2d(xt, wt, padding=1),
        "torch_cl": lambda: F.conv2d(xcl, wcl, padding=1),
        "transforms": lambda: sparse._conv(x, packed[densities[0]], None, 1, m, None, False,
                                           "numba", False, do_mac=False),
    }
    if bf16:  # labelled apart: a user with native bf16 might pick it; fp32 is the headline
        xb, wb = xcl.bfloat16(), wcl.bfloat16()
        methods["torch_bf16"] = lambda: F.conv2d(xb, wb, padding=1)
    for d in densities:
        methods[d] = (lambda P: lambda: sparse.winograd_domain_conv2d(
            x, P, padding=1, m=m, backend="numba"))(packed[d])
    # warm up, and pick reps so that one sample takes >= ~20 ms
    reps = {}
    with torch.no_grad():
        for key, fn in methods.items():
            fn()
            reps[key] = max(1, min(50, int(20 / max(timed(fn, 1), 1e-3))))
        samples = {key: [] for key in methods}
        for _ in range(rounds):
            for key, fn in methods.items():
                samples[key].append(timed(fn, reps[key]))
    torch_best = [min(a, b) for a, b in
                  zip(samples["torch_nchw"], samples["torch_cl"], strict=True)]
    rows = []
    for d in densities:
        _, mults = sparse.winograd_domain_conv2d(x, packed[d], padding=1, m=m, backend="numba",
                                                 return_multiplies=True)
        ratios = [t / s for t, s in zip(torch_best, samples[d], strict=True)]
        ms = statistics.median(samples[d])
        extra = {}
        if bf16:
            extra = {"ms_torch_bf16": statistics.median(samples["torch_bf16"]),
                     "speedup_vs_bf16": statistics.median(
                         [t / s for t, s in zip(samples["torch_bf16"], samples[d], strict=True)])}
        rows.append({
            "layer": name, "C": C, "K": K, "H": H, "batch": batch, "density": d, "m": m,
            "nnz_density": packed[d].density,
            "ms_winolab": ms, "ms_winolab_min": min(samples[d]),
            "ms_torch": statistics.median(torch_best),
            "ms_torch_nchw": statistics.median(samples["torch_nchw"]),
            "ms_torch_cl": statistics.median(samples["torch_cl"]),
            "ms_transforms": statistics.median(samples["transforms"]),
            "transform_share": statistics.median(samples["transforms"]) / ms,
            "speedup": statistics.median(ratios),
            "multiplies": mults, "direct_multiplies": batch * H * H * C * K * 9,
            "rel_err_dense_vs_torch": rel_err, "rounds": rounds, **extra,
        })
    return rows


def break_even(rows: list[dict]) -> list[dict]:
    """Per (layer, batch): the density where the speedup curve crosses 1.

    Linear interpolation between the measured densities next to the crossing; ``None`` when
    winolab is slower at every density, ``1.0`` when it is faster even dense.
    """
    out = []
    for key in dict.fromkeys((r["layer"], r["batch"]) for r in rows):
        pts = sorted((r["density"], r["speedup"]) for r in rows if (r["layer"], r["batch"]) == key)
        d = None
        if pts[-1][1] >= 1:
            d = pts[-1][0]
        else:
            for (d0, s0), (d1, s1) in zip(pts, pts[1:], strict=False):
                if s0 >= 1 > s1:
                    d = d0 + (s0 - 1) / (s0 - s1) * (d1 - d0)
        out.append({"layer": key[0], "batch": key[1], "break_even_density": d})
    return out


def provenance(argv, load_start=None, m=2) -> dict:
    import numba
    import torch

    return {
        "command": " ".join(["python", "benchmarks/bench_sparse.py", *argv]),
        "commit": git_commit()["commit"] or "unknown", "date": utc_now(),
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__, "torch": torch.__version__,
        "threads_numba": numba.get_num_threads(), "threads_torch": torch.get_num_threads(),
        "clock": CLOCK.__name__, "m": m, "dtype": "float32",
        "data": "ReLU(randn) input, Kaiming randn weights, seed 0",
        "cpus": os.cpu_count(),
        "cpu_model": cpu_info()["model"], "isa": vector_isa(),
        # the machine is shared: the 1-minute load average when the run started and ended
        "load_average": {"start": load_start, "end": load_1m()},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 layers, 3 rounds, 3 densities")
    p.add_argument("--json", type=Path, help="write the rows and provenance here")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--layers", nargs="+", default=None, help="only these layer names")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for numba and torch alike (default: numba's default)")
    p.add_argument("--m", type=int, default=2, choices=(2, 4), help="F(m x m, 3 x 3)")
    p.add_argument("--densities", type=float, nargs="+", default=None,
                   help="only these weight densities (default: all, or 1.0 0.1 0.05 with --quick)")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                   help="also time torch's bf16 conv2d (auto: where the CPU has avx512_bf16 "
                        "or amx_bf16)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall time, or process CPU time (use with --threads 1)")
    args = p.parse_args(argv)
    load_start = load_1m()
    global CLOCK
    CLOCK = CLOCKS[args.clock]
    if args.threads:
        import numba
        import torch

        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    argv = sys.argv[1:] if argv is None else argv
    rounds = args.rounds or (3 if args.quick else 7)
    densities = (1.0, 0.1, 0.05) if args.quick else DENSITIES
    if args.densities:
        densities = tuple(args.densities)
    flags = vector_isa()
    bf16 = args.bf16 == "on" or (args.bf16 == "auto"
                                 and bool({"avx512_bf16", "amx_bf16"} & set(flags)))
    todo = [la for la in layers(args.quick) if args.layers is None or la[0] in args.layers]
    rows = []
    print(f"{'layer':>20} {'B':>3} {'dens':>5} {'winolab ms':>10} {'torch ms':>9} "
          f"{'speedup':>7} {'transf.':>7}")
    for batch in args.batches:
        for name, C, K, H in todo:
            for row in bench_layer(name, C, K, H, batch, densities, rounds, m=args.m,
                                   bf16=bf16):
                rows.append(row)
                print(f"{name:>20} {batch:>3} {row['density']:>5} {row['ms_winolab']:>10.3f} "
                      f"{row['ms_torch']:>9.3f} {row['speedup']:>7.2f} "
                      f"{row['transform_share']:>7.0%}"
                      + (f"  vs bf16 {row['speedup_vs_bf16']:.2f}" if bf16 else ""), flush=True)
    for b in break_even(rows):
        print(f"break-even density {b['layer']} batch {b['batch']}: {b['break_even_density']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        # written whole, then renamed: an interrupted run leaves an older file as it was
        tmp = args.json.with_name(args.json.name + ".tmp")
        prov = {**provenance(argv, load_start, args.m), "torch_bf16": bf16}
        tmp.write_text(json.dumps({"provenance": prov, "rows": rows,
                                   "break_even": break_even(rows)}, indent=1) + "\n")
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
