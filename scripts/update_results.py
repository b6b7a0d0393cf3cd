"""Regenerate every file of this checkout that is computed from the recorded results.

- ``results/README_table.md``, ``results/cifar10/summary.md`` and the reduced-scale study's two
  figures (``results/cifar10/*.png``), from ``results/cifar10/*.json``;
- the generated blocks of ``README.md``: the reduced-scale table, the speed table of
  ``results/bench_sparse_cpu1.json`` and the paper-scale tables of both studies
  (``results/cifar10-paper-w0.5/``, ``results/cifar100-paper-w0.25/``).

The package computes the tables and figures (``winolab.results``, ``winolab.study``); this
script is the one place that knows where they live in the checkout and writes them::

    python scripts/update_results.py            # everything
    python scripts/update_results.py --readme   # only README.md's blocks
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REDUCED = ROOT / "results" / "cifar10"


def replace_block(path: Path, block: str) -> None:
    """Rewrite only the generated block of ``path`` whose first and last lines ``block`` has."""
    begin, end = block.splitlines()[0], block.splitlines()[-1]
    text = path.read_text()
    if begin not in text or end not in text:
        raise ValueError(f"{path} has no generated block: expected a line {begin!r} "
                         f"and, after it, a line {end!r}")  # fmt: skip
    head, rest = text.split(begin, 1)
    new = head + block + rest.split(end, 1)[1]
    if new != text:
        path.write_text(new)


def write_reduced(folder: Path = REDUCED, table: Path = ROOT / "results" / "README_table.md"
                  ) -> str:  # fmt: skip
    """The reduced-scale study's full table, ``summary.md`` (with every step) and figures, from
    the JSONs of ``folder``; returns the table."""
    from winolab import results as res

    runs = res.load_results(folder)
    text = res.markdown_table(res.summary_rows(runs))
    note = res.scale_note(runs)
    Path(table).write_text(text + "\n" + note)
    steps = ["| run | starts from | density | accuracy | multiplies | counted as | reduction |",
             "|---|---|---:|---:|---:|---|---:|"]  # fmt: skip
    for name in sorted(runs, key=lambda n: (n.split("-")[0], -res._density(runs[n]), n)):
        r, c = runs[name], res.multiply_count(runs[name])
        init = r.get("reproduction", {}).get("init_step") or "scratch"
        steps.append(f"| {name} | {init} | {100 * res._density(r):.0f}% | "
                     f"{100 * r['accuracy']:.2f}% | {c.total:.3g} | {c.method}, m={c.m} | "
                     f"{c.reduction:.1f}x |")  # fmt: skip
    (folder / "summary.md").write_text(text + "\n" + "\n".join(steps) + "\n\n" + note)
    for fig, name in ((res.plot_accuracy_vs_density(runs), "accuracy_vs_density.png"),
                      (res.plot_activation_densities(runs), "activation_density.png")):
        fig.savefig(folder / name, dpi=100)
    return text


def readme_blocks(root: Path = ROOT) -> list[str]:
    """README.md's generated blocks, computed from the results under ``root``."""
    from winolab import results as res
    from winolab import study

    blocks = [res.readme_block(res.load_results(root / "results" / "cifar10"))]
    bench = root / "results" / "bench_sparse_cpu1.json"
    if bench.is_file():
        blocks.append(res.bench_block(json.loads(bench.read_text())))
    blocks += [study.readme_block(study.load_study(root / p.folder), p) for p in study.PAPERS]
    return blocks


def write_readme(readme: Path = README, root: Path = ROOT) -> list[str]:
    """Rewrite every generated block of ``readme``; returns the blocks."""
    blocks = readme_blocks(root)
    for block in blocks:
        replace_block(Path(readme), block)
    return blocks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readme", action="store_true", help="only rewrite README.md's blocks")
    args = p.parse_args(argv)
    if not args.readme:
        write_reduced()
    for block in write_readme():
        print(block.splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
