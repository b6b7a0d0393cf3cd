"""Plot the speedup over torch against weight density from a bench_sparse.py JSON file.

    python benchmarks/plot_bench.py results/bench_sparse.json -o speedup.png

The book's kernels chapter imports :func:`plot_speedup` from here, so the figure in the book
and the one this script writes are drawn by the same code.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_rows(path) -> list[dict]:
    """The benchmark rows of a ``bench_sparse.py --json`` file."""
    return json.loads(Path(path).read_text())["rows"]


def plot_speedup(rows: list[dict], batches=(1, 64), axes=None):
    """One panel per batch size: speedup over the best torch layout against density.

    Returns the matplotlib figure. The dashed line is break-even (speedup 1).
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, len(batches), figsize=(5 * len(batches), 3.8),
                                 sharey=True, squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, batch in zip(axes, batches, strict=True):
        layers = dict.fromkeys(r["layer"] for r in rows if r["batch"] == batch)
        for layer in layers:
            pts = sorted((r["density"], r["speedup"]) for r in rows
                         if r["batch"] == batch and r["layer"] == layer)
            ax.plot(*zip(*pts, strict=True), marker="o", label=layer)
        ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_xlabel("Winograd-domain weight density")
        ax.set_title(f"batch {batch}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("speedup over torch conv2d")
    axes[-1].legend(fontsize="small")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("json", type=Path)
    p.add_argument("-o", "--out", type=Path, default=Path("speedup.png"))
    args = p.parse_args(argv)
    rows = load_rows(args.json)
    batches = sorted({r["batch"] for r in rows})
    plot_speedup(rows, batches).savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
