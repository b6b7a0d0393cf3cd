"""This core's limits for the sparse Winograd kernel: peak float32 FMA rate and the read
bandwidth of L1, L2, L3 and memory, each measured with a streaming numba kernel.

``python benchmarks/roofline.py [--json PATH]`` (one thread, process CPU time, best of rounds).
The kernels chapter compares the kernel's multiply rate and transform traffic with these.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from winolab.provenance import cpu_info, load_1m, vector_isa  # noqa: E402


@njit(fastmath={"contract"}, cache=True)  # FMAs, but no reassociation folding the chain
def _fma_chain(x, reps):
    # 16 multiply-adds in a chain per element, on eight slices of x at once (x stays in L1):
    # enough independent vector FMAs in flight to cover the FMA latency, no memory traffic
    a, b = np.float32(0.999), np.float32(0.001)
    n = x.size // 8
    for _ in range(reps):
        for i in range(n):
            v0, v1, v2, v3 = x[i], x[i + n], x[i + 2 * n], x[i + 3 * n]
            v4, v5, v6, v7 = x[i + 4 * n], x[i + 5 * n], x[i + 6 * n], x[i + 7 * n]
            for _ in range(16):
                v0, v1, v2, v3 = v0 * a + b, v1 * a + b, v2 * a + b, v3 * a + b
                v4, v5, v6, v7 = v4 * a + b, v5 * a + b, v6 * a + b, v7 * a + b
            x[i], x[i + n], x[i + 2 * n], x[i + 3 * n] = v0, v1, v2, v3
            x[i + 4 * n], x[i + 5 * n], x[i + 6 * n], x[i + 7 * n] = v4, v5, v6, v7
    return x


@njit(fastmath=True, cache=True)
def _read(x, reps):
    # sum of x, reps times: a read stream from whichever level holds x
    s = np.float32(0)
    for _ in range(reps):
        for i in range(x.size):
            s += x[i]
    return s


def _best(fn, rounds=5):
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def measure() -> dict:
    numba.set_num_threads(1)
    out = {"fma_gflops": None, "read_gbytes_s": {}}
    x = np.ones(2048, dtype=np.float32)  # 8 KB
    reps = 20000
    t = _best(lambda: _fma_chain(x, reps))
    out["fma_gmac_s"] = x.size * 16 * reps / t / 1e9  # multiply-adds per second
    out["fma_gflops"] = 2 * out["fma_gmac_s"]
    for label, nbytes in (("L1 (16 KB)", 16 << 10), ("L2 (512 KB)", 512 << 10),
                          ("L3 (8 MB)", 8 << 20), ("memory (256 MB)", 256 << 20)):
        y = np.ones(nbytes // 4, dtype=np.float32)
        reps = max(1, (2 << 30) // nbytes)
        t = _best(lambda y=y, reps=reps: _read(y, reps), rounds=3)
        out["read_gbytes_s"][label] = nbytes * reps / t / 1e9
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    load0 = load_1m()
    res = measure()
    res["provenance"] = {
        "command": " ".join(["python", "benchmarks/roofline.py", *(argv or sys.argv[1:])]),
        "cpu_model": cpu_info()["model"], "isa": vector_isa(), "threads": 1,
        "clock": "process_time",
        "numba": numba.__version__,
        "load_average": {"start": load0, "end": load_1m()},
    }
    print(f"FMA: {res['fma_gmac_s']:.1f} G multiply-adds/s ({res['fma_gflops']:.0f} GFLOP/s)")
    for k, v in res["read_gbytes_s"].items():
        print(f"read {k}: {v:.1f} GB/s")
    if load0 is not None:
        print(f"load average {load0:.2f} -> {load_1m():.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
