"""The paper-scale study: its runs by method, density and seed, each pruned model set against
its own seed's dense model, with the standard errors that say what the test set can resolve.

The runs are the JSONs of ``results/cifar10-paper-w0.5/`` (``scripts/paper_cifar10.py``), named
``dense-<architecture>-s<seed>`` and ``<method>-d<percent>-s<seed>``. Every accuracy was measured
on all 10,000 test images, so its standard error is ``sqrt(a (1 - a) / 10000)``, about 0.3 points
near 90%. The change of a pruned model against its own dense model has the standard error
``sqrt(se_pruned^2 + se_dense^2)`` (about 0.45 points; an upper bound, since both models see the
same images), and a density *holds accuracy* when the measured change is no lower than minus
``Z`` of those standard errors, i.e. when a loss is not resolved at about 95% confidence. The
lowest density that holds is the lowest one where it and every higher density hold for every
seed measured there.

    >>> parse_name("liu-d40-s2")
    ('liu', 'winograd_relu', 0.4, 2)
    >>> parse_name("dense-winograd-s0")
    ('dense', 'winograd', 1.0, 0)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from winolab import counting
from winolab import results as _results

__all__ = ["AT_PUBLISHED", "METHODS", "STUDY", "Z", "Change", "changes", "dense_accuracies",
           "first_seed", "load_study", "lowest_holding", "mean_change", "parse_name",
           "plot_accuracy", "plot_activation_densities", "readme_block", "summary_table",
           "write_readme"]  # fmt: skip

STUDY = _results.ROOT / "results" / "cifar10-paper-w0.5"

#: method -> (architecture, label) of the three sweeps of Liu et al.'s Figure 1
METHODS = {method: (arch, label) for method, (arch, _, label) in _results.SWEEPS.items()}
ARCHITECTURES = tuple(arch for arch, _ in METHODS.values())

#: the densities where the workshop paper draws its conclusions (Li et al. published none for
#: this network; their sweep is compared at Liu et al.'s density)
AT_PUBLISHED = {"han": 0.6, "li": 0.4, "liu": 0.4}

#: standard errors of the change that a loss must exceed to count as resolved
Z = 2.0

_NAME = re.compile(r"^(?:dense-(?P<arch>[a-z_]+)|(?P<method>[a-z]+)-d(?P<pct>\d+))-s(?P<seed>\d+)$")


def parse_name(name: str) -> tuple[str, str, float, int]:
    """``(method, architecture, density, seed)`` of a step name; method ``"dense"`` for a
    dense baseline. Raises ValueError for a name outside the study's two patterns."""
    hit = _NAME.match(name)
    if hit is None or (hit["arch"] and hit["arch"] not in ARCHITECTURES) or (
        hit["method"] and hit["method"] not in METHODS
    ):
        raise ValueError(
            f"{name!r} is not a study step: expected dense-<{'|'.join(ARCHITECTURES)}>-s<seed> "
            f"or <{'|'.join(METHODS)}>-d<percent>-s<seed>"
        )
    if hit["arch"]:
        return "dense", hit["arch"], 1.0, int(hit["seed"])
    method = hit["method"]
    return method, METHODS[method][0], int(hit["pct"]) / 100, int(hit["seed"])


def load_study(folder: str | Path = STUDY) -> dict[str, dict]:
    """The study's runs by step name; the other JSONs of the folder (the Yu steps) are kept too.
    An empty dict when nothing has been recorded yet."""
    folder = Path(folder)
    return _results.load_results(folder) if folder.is_dir() else {}


def _se(result: dict) -> float:
    a, n = result["accuracy"], result["data"]["test_images"]
    return math.sqrt(a * (1 - a) / n)


@dataclass(frozen=True)
class Change:
    """A pruned run against its own seed's dense model (accuracies as fractions)."""

    step: str
    density: float
    seed: int
    accuracy: float
    se: float
    dense_accuracy: float
    dense_se: float

    @property
    def change(self) -> float:
        return self.accuracy - self.dense_accuracy

    @property
    def change_se(self) -> float:
        return math.hypot(self.se, self.dense_se)

    @property
    def holds(self) -> bool:
        """No loss resolved: the change is above ``-Z`` standard errors."""
        return self.change >= -Z * self.change_se


def changes(runs: dict[str, dict], method: str) -> list[Change]:
    """Every recorded step of ``method``'s sweep whose seed has a dense model, by density
    (highest first) and seed."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}")
    out = []
    for name, r in runs.items():
        try:
            meth, arch, d, seed = parse_name(name)
        except ValueError:
            continue
        dense = runs.get(f"dense-{arch}-s{seed}")
        if meth == method and dense is not None:
            out.append(Change(name, d, seed, r["accuracy"], _se(r), dense["accuracy"],
                              _se(dense)))  # fmt: skip
    return sorted(out, key=lambda c: (-c.density, c.seed))


def lowest_holding(runs: dict[str, dict], method: str) -> float | None:
    """The lowest density where it and every higher recorded density hold accuracy for every
    seed measured there; None when the first density fails or nothing is recorded."""
    cs = changes(runs, method)
    lowest = None
    for d in sorted({c.density for c in cs}, reverse=True):
        if not all(c.holds for c in cs if c.density == d):
            break
        lowest = d
    return lowest


def _mean_se(values: list[tuple[float, float]]) -> tuple[float, float, int]:
    # (mean, SE, n) of (value, test-set SE) pairs: the seeds' spread for n >= 2
    n = len(values)
    mean = sum(v for v, _ in values) / n
    if n == 1:
        return mean, values[0][1], 1
    sd = math.sqrt(sum((v - mean) ** 2 for v, _ in values) / (n - 1))
    return mean, sd / math.sqrt(n), n


def mean_change(runs: dict[str, dict], method: str, density: float):
    """``(mean change, its standard error, seeds)`` over the seeds recorded at ``density``; the
    standard error is the seeds' spread over sqrt(n) for n >= 2, else the test-set one."""
    cs = [c for c in changes(runs, method) if math.isclose(c.density, density)]
    return _mean_se([(c.change, c.change_se) for c in cs]) if cs else None


def dense_accuracies(runs: dict[str, dict]) -> dict[str, list[tuple[int, float, float]]]:
    """architecture -> ``[(seed, accuracy, standard error), ...]`` of its dense baselines."""
    out: dict[str, list] = {arch: [] for arch in ARCHITECTURES}
    for name, r in sorted(runs.items()):
        try:
            meth, arch, _, seed = parse_name(name)
        except ValueError:
            continue
        if meth == "dense":
            out[arch].append((seed, r["accuracy"], _se(r)))
    return out


def _step(method: str, density: float, seed: int) -> str:
    return f"{method}-d{round(100 * density)}-s{seed}"


def first_seed(runs: dict[str, dict], method: str, density: float) -> str | None:
    """The name of the lowest-seed recorded step of ``method`` at ``density``, or None."""
    seeds = sorted(c.seed for c in changes(runs, method) if math.isclose(c.density, density))
    return _step(method, density, seeds[0]) if seeds else None


def _pm(value: float, se: float, n: int, unit: str = "%") -> str:
    spread = "test-set SE" if n == 1 else f"SE over {n} seeds"
    if unit == "pt":
        return f"{100 * value:+.2f} ± {100 * se:.2f} pt ({spread})"
    return f"{100 * value:.2f} ± {100 * se:.2f}% ({spread})"


def summary_table(runs: dict[str, dict]) -> str:
    """The study's published-against-measured table, as markdown.

    Accuracies carry their standard errors; the activation densities and multiplies are those
    of the lowest seed's model at the published density (``AT_PUBLISHED``), counted on the
    paper's full-width layer table with the densities measured on our width-0.5 model
    (``winolab.results.multiply_count``). A quantity whose runs are not recorded yet reads
    "not run yet".
    """
    P = {k: v[0] for k, v in _results.PUBLISHED.items()}
    todo = "not run yet"
    rows = [("quantity", "published", "measured", "from")]
    for arch, accs in dense_accuracies(runs).items():
        cell = _pm(*_mean_se([(a, se) for _, a, se in accs])) if accs else todo
        src = f"dense-{arch}-s{','.join(str(s) for s, _, _ in accs)}" if accs else "—"
        rows.append((f"dense accuracy, {arch}", "—", cell, src))
    for method, (_, label) in METHODS.items():
        d = AT_PUBLISHED[method]
        mc = mean_change(runs, method, d)
        pub = "loss < 0.1 pt" if method != "li" else "—"
        rows.append((f"accuracy change at {100 * d:.0f}% density, {label}", pub,
                     _pm(*mc, unit="pt") if mc else todo, f"{method}-d{100 * d:.0f}-*"))
    for method, (_, label) in METHODS.items():
        low = lowest_holding(runs, method)
        pub = P.get(f"density_{method}")
        seeds = sorted({c.seed for c in changes(runs, method)})
        cell = (todo if not seeds else "none" if low is None else
                f"{100 * low:.0f}% (seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))})")
        rows.append((f"lowest density holding accuracy, {label}",
                     "—" if pub is None else f"{100 * pub:.0f}%", cell, "the rule above"))
    for dom, method in (("spatial", "han"), ("winograd", "liu")):
        step = first_seed(runs, method, AT_PUBLISHED[method])
        value = _results.overall_activation_density(runs[step], dom) if step else None
        rows.append((f"overall activation density, {dom} domain ({method})",
                     f"{100 * P[f'activation_{dom}']:.1f}%",
                     todo if value is None else f"{100 * value:.1f}%", step or "—"))
    net = counting.get_network("vgg-nagadomi")
    direct = counting.count_multiplies(net, "direct")

    def mult(c):
        return f"{c.total:.2g} ({c.reduction:.1f}x)"

    def pub(key):
        v, _, x = _results.PUBLISHED[key]
        return f"{v:.2g} ({x:.1f}x)"

    rows.append(("multiplies, dense direct", pub("mult_direct"), mult(direct), "layer table"))
    rows.append(("multiplies, dense Winograd F(2x2,3x3)", pub("mult_winograd"),
                 mult(counting.count_multiplies(net, "winograd", 2)), "layer table"))
    for method, key in (("han", "mult_spatial_pruned"), ("liu", "mult_winograd_relu"),
                        ("li", None)):
        d = AT_PUBLISHED[method]
        step = first_seed(runs, method, d)
        rows.append((f"multiplies at {100 * d:.0f}%, {METHODS[method][1]}",
                     pub(key) if key else "—",
                     mult(_results.multiply_count(runs[step])) if step else todo,
                     step or "—"))
    for method, (_, label) in METHODS.items():
        low = lowest_holding(runs, method)
        step = first_seed(runs, method, low) if low is not None else None
        rows.append((f"reduction at the lowest density holding accuracy, {label}",
                     "—",
                     f"{_results.multiply_count(runs[step]).reduction:.1f}x" if step else todo,
                     step or "—"))
    yu = runs.get("yu-winograd-s1")
    if yu is not None:
        dens = [yu["weight_densities"][n] for n in net.pruned]
        rows.append(("Yu: Winograd-domain weight sparsity, layers 2-8",
                     f"{100 * P['yu_sparsity']:.0f}%", f"{100 * (1 - sum(dens) / len(dens)):.1f}%",
                     "yu-winograd-s1"))
        if "dense-spatial-s1" in runs:
            ch = yu["accuracy"] - runs["dense-spatial-s1"]["accuracy"]
            se = math.hypot(_se(yu), _se(runs["dense-spatial-s1"]))
            rows.append(("Yu: accuracy change vs its dense spatial model", "—",
                         _pm(ch, se, 1, "pt"), "yu-winograd-s1"))
    out = [f"| {' | '.join(rows[0])} |", "|---|---:|---:|---|"]
    out += [f"| {' | '.join(r)} |" for r in rows[1:]]
    return "\n".join(out) + "\n"


def plot_accuracy(runs: dict[str, dict]):
    """Left: test accuracy against weight density, every seed with its test-set standard error
    (the dense model at 100%). Right: each pruned model's change against its own seed's dense
    model, with bars of ``Z`` standard errors: a bar that stays above zero's line holds."""
    fig, (left, right) = _results._fig(ncols=2, figsize=(10.0, 4.4))
    dense = {(arch, s): (a, se) for arch, accs in dense_accuracies(runs).items()
             for s, a, se in accs}
    for i, (method, (arch, label)) in enumerate(METHODS.items()):
        cs = changes(runs, method)
        seeds = sorted({s for a, s in dense if a == arch} | {c.seed for c in cs})
        for j, seed in enumerate(seeds):
            pts = [(1.0, *dense[arch, seed])] if (arch, seed) in dense else []
            pts += [(c.density, c.accuracy, c.se) for c in cs if c.seed == seed]
            if not pts:
                continue
            x, y, e = zip(*pts, strict=True)
            shift = (j - (len(seeds) - 1) / 2) * 0.6 + (i - 1) * 1.8
            left.errorbar([100 * v + shift for v in x], [100 * v for v in y],
                          [100 * v for v in e], fmt="o-" if seed == 0 else "s:", ms=4,
                          color=f"C{i}", capsize=2, label=f"{label}, seed {seed}")
        if cs:
            shift = [(c.seed - 1) * 0.6 + (i - 1) * 1.8 for c in cs]
            right.errorbar([100 * c.density + s for c, s in zip(cs, shift, strict=True)],
                           [100 * c.change for c in cs],
                           [100 * Z * c.change_se for c in cs], fmt="o", ms=4,
                           color=f"C{i}", capsize=2, label=method)
    right.axhline(0, color="k", lw=0.8)
    for ax, ylabel in ((left, "test accuracy (%)"),
                       (right, f"change vs own dense model (pt, bars: {Z:g} SE)")):
        ax.invert_xaxis()
        ax.set(xlabel="weight density of layers 2-8 (%)", ylabel=ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def plot_activation_densities(runs: dict[str, dict]):
    """Per-layer input density at the published densities: the pruned spatial network in the
    spatial domain and, after the input transform, in the Winograd domain (the fill-in), and
    the pruned Winograd-ReLU network in the Winograd domain (workshop paper, Fig. 3)."""
    fig, ax = _results._fig(figsize=(7.0, 3.8))
    names = list(counting.get_network("vgg-nagadomi").pruned)
    bars = [("han", "spatial", "spatial network, spatial domain"),
            ("han", "winograd", "spatial network, Winograd domain (B^T d B)"),
            ("liu", "winograd", "Winograd-ReLU network, Winograd domain")]
    width = 0.8 / len(bars)
    for i, (method, dom, label) in enumerate(bars):
        step = first_seed(runs, method, AT_PUBLISHED[method])
        if step is None:
            continue
        acts = runs[step]["activation_densities"]
        x = [j + (i - 1) * width for j in range(len(names))]
        ax.bar(x, [100 * acts[n][dom] for n in names], width=width, color=f"C{i}",
               label=f"{label} ({step})")
    for dom, ls in (("spatial", "--"), ("winograd", ":")):
        ax.axhline(100 * _results.PUBLISHED[f"activation_{dom}"][0], ls=ls, lw=1, color="k",
                   label=f"published overall, {dom}")
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="activation density (%)", ylim=(0, 100))
    ax.legend(fontsize=7, loc="upper right")
    return fig


README_BEGIN = "<!-- paper-study: generated by python -m winolab.study -->"
README_END = "<!-- end of paper-study -->"


def readme_block(runs: dict[str, dict]) -> str:
    """The project README's table of the paper-scale study, with its scale and size."""
    first = runs[min(runs)] if runs else None
    scale = first["reproduction"]["scale"] if first else "no runs recorded yet"
    hours = sum(r["wall_time_s"] for r in runs.values()) / 3600
    note = (f"{scale}. {len(runs)} runs recorded, {hours:.1f} core-hours; accuracies on all "
            f"10,000 test images with their standard errors; a density holds accuracy when "
            f"the change against its own seed's dense model is above -{Z:g} standard errors. "
            "Multiplies use the papers' full-width layer table with the densities measured on "
            "our models; generated by `python -m winolab.study`.\n")
    return f"{README_BEGIN}\n{summary_table(runs)}\n{note}{README_END}"


def write_readme(readme: str | Path = _results.ROOT / "README.md",
                 folder: str | Path = STUDY) -> str:
    """Rewrite the study's block of ``readme`` from the runs in ``folder``; returns the block."""
    block = readme_block(load_study(folder))
    _results._replace_readme_block(Path(readme), block)
    return block


if __name__ == "__main__":
    print(write_readme())
