"""The CIFAR-10 reproduction, read back from its recorded runs (``results/cifar10/*.json``).

Every number this module reports is computed from the run JSONs written by
``scripts/reproduce_cifar10.py`` (one file per step: dense baselines ``dense-<architecture>``,
sweep steps ``han-d60``, ``liu-d40``, ``li-d20``, Yu's ``yu-spatial`` and ``yu-winograd``) and
from the layer table of :mod:`winolab.counting`; nothing is typed in. The published numbers
beside them are in :data:`PUBLISHED`, with their source.

The module computes tables and figures (accuracy against density, the workshop paper's
Figure 2; per-layer activation density, its Figure 3) from the folder it is given; writing them
into a checkout (``results/README_table.md``, ``results/cifar10/summary.md``, the figures and
the blocks of ``README.md``) is ``scripts/update_results.py``'s job. The figures need
matplotlib (``pip install winolab[widgets]``).

>>> r = {"dense-spatial": _example(None, 0.80), "han-d60": _example(0.6, 0.795),
...      "han-d40": _example(0.4, 0.78)}
>>> sweep(r, "han")
[(1.0, 0.8), (0.6, 0.795), (0.4, 0.78)]
>>> prunable(r, "han")       # the lowest density within LOSS_TOLERANCE of the dense baseline
('han-d60', 0.6)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from winolab import counting
from winolab.methods import ARCHITECTURES, COUNTS, PRUNING_METHODS

__all__ = [
    "AT_PUBLISHED", "LOSS_TOLERANCE", "PUBLISHED", "SWEEPS", "YU_STEP", "Row", "load_results",
    "BENCH_BEGIN", "BENCH_END", "README_BEGIN", "README_END", "bench_block", "markdown_table",
    "readme_block",
    "multiply_count", "overall_activation_density", "plot_accuracy_vs_density",
    "plot_activation_densities", "prunable", "scale_note", "summary_rows", "sweep",
    "sweep_single_run",
]

# Accuracy loss against a method's own dense baseline that still counts as "prunable to".
# The papers use 0.1 points on 10,000 test images; on our 2,000 images the standard error of
# an accuracy near 55% (ours) is sqrt(0.55 * 0.45 / 2000) = 1.1 points, so 0.1 points would only
# measure noise.
LOSS_TOLERANCE = 0.01

# method (step prefix) -> (architecture, dense baseline step, label), from winolab.methods
SWEEPS: dict[str, tuple[str, str, str]] = {
    p.step: (p.architecture, ARCHITECTURES[p.architecture].baseline, p.label)
    for p in PRUNING_METHODS if p.sweep}  # fmt: skip

# the sweep steps at the published densities (Li et al. published none for this network)
AT_PUBLISHED = {"han": "han-d60", "liu": "liu-d40", "li": "li-d40"}

# Yu et al.'s Winograd stage, retrained at their learning rate (lr 1e-3 collapses: yu-winograd)
YU_STEP = "yu-winograd-lr1e-6"

# The published numbers: Liu et al.'s workshop paper and ICLR 2018, Yu et al. 2019
PUBLISHED = {
    "density_han": (0.60, "Liu et al. 2017 (workshop): conventional network, <0.1% loss"),
    "density_liu": (0.40, "Liu et al. 2017 (workshop): Winograd-ReLU network, <0.1% loss"),
    "activation_spatial": (0.369, "Liu et al. 2017 (workshop), overall, spatial"),
    "activation_winograd": (0.411, "Liu et al. 2017 (workshop), overall, Winograd domain"),
    # multiplies per image and the reduction against dense direct
    "mult_direct": (2.3e8, "Liu et al. 2017 (workshop)", 1.0),
    "mult_spatial_pruned": (5.0e7, "Liu et al. 2017 (workshop)", 4.6),
    "mult_winograd": (1.1e8, "Liu et al. 2017 (workshop)", 2.2),
    "mult_winograd_relu": (2.3e7, "Liu et al. 2017 (workshop); ICLR 2018: 10.4x", 10.2),
    "yu_sparsity": (0.63, "Yu et al. 2019, Winograd-domain weight sparsity, F(4x4, 3x3)"),
}


def _example(density, accuracy, arch="spatial"):
    """A minimal run result, for the examples."""
    config = {"architecture": arch, "densities": [] if density is None else [density]}
    return {"accuracy": accuracy, "config": config}


def load_results(folder: str | Path) -> dict[str, dict]:
    """The run JSONs of ``folder`` (``results/cifar10`` of a checkout) by step name (file
    stem), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder}: run scripts/reproduce_cifar10.py")
    out = {}
    for p in sorted(folder.glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"{p} is not a valid run JSON ({exc}): truncated or damaged; restore it with "
                f"`git checkout {p.name}` or rerun its step, or move it out of {folder}"
            ) from None
        if not isinstance(out[p.stem], dict):
            raise ValueError(f"{p} holds a {type(out[p.stem]).__name__}, not a run (an object)")
    return out


def _density(result: dict) -> float:
    """The target density of a run: the last of its schedule, 1.0 for a dense run."""
    d = result["config"]["densities"]
    return float(d[-1]) if d else 1.0


def sweep(results: dict[str, dict], method: str) -> list[tuple[float, float]]:
    """``(density, test accuracy)`` of the dense baseline and every step of a sweep."""
    if method not in SWEEPS:
        raise ValueError(f"unknown sweep {method!r}; expected one of {list(SWEEPS)}")
    _, dense, _ = SWEEPS[method]
    steps = [n for n in results if n.startswith(f"{method}-d")]
    points = [(_density(results[n]), results[n]["accuracy"]) for n in steps]
    head = [(1.0, results[dense]["accuracy"])] if dense in results else []
    return head + sorted(points, reverse=True)


def sweep_single_run(results: dict[str, dict], method: str) -> list[tuple[float, float]]:
    """``(density, test accuracy)`` of the dense baseline and every step of the one-run sweep
    ``<method>-sweep``, from its history (the last epoch of each ``prune <density>`` phase)."""
    _, dense, _ = SWEEPS[method]
    run = results.get(f"{method}-sweep")
    if run is None:
        return []
    last = {}
    for h in run["history"]:
        if h["phase"].startswith("prune "):
            last[float(h["phase"].split()[1])] = h["test_accuracy"]
    head = [(1.0, results[dense]["accuracy"])] if dense in results else []
    return head + sorted(last.items(), reverse=True)


def prunable(results, method: str, tolerance: float = LOSS_TOLERANCE, reference="dense"):
    """``(step, density)``: the lowest density whose accuracy is within ``tolerance`` of the
    dense baseline's (``reference="control"``: of the unpruned control trained as long as the
    sweep), or None if the sweep or its reference is missing or no step holds."""
    arch, dense, _ = SWEEPS[method]
    ref = {"dense": dense, "control": f"control-{arch}"}[reference]
    if ref not in results:
        return None
    floor = results[ref]["accuracy"] - tolerance
    ok = [(_density(r), n) for n, r in results.items()
          if n.startswith(f"{method}-d") and r["accuracy"] >= floor]
    if not ok:
        return None
    d, name = min(ok)
    return name, d


def _layer_size(layer: counting.ConvLayer, domain: str, m: int) -> int:
    """Input elements of a layer (full width): ``C H W``, or ``C tiles alpha^2``."""
    if domain == "spatial":
        return layer.in_channels * layer.height * layer.width
    alpha = m + layer.kernel - 1
    return layer.in_channels * layer.tiles(m) * alpha * alpha


def overall_activation_density(result: dict, domain: str) -> float:
    """Activation density of the pruned layers (2 to 8) as a whole: the per-layer densities
    weighted by each layer's input size in the paper's layer table."""
    net = counting.get_network(result["config"]["model"])
    m = result["multiplications"]["m"]
    layers = [la for la in net.layers if la.name in net.pruned]
    acts = result["activation_densities"]
    sizes = [_layer_size(la, domain, m) for la in layers]
    # sum_l d_l n_l / sum_l n_l
    return sum(acts[la.name][domain] * n for la, n in zip(layers, sizes, strict=True)) / sum(sizes)


def multiply_count(result: dict) -> counting.MultiplyCount:
    """The papers' multiplication count of a run, from its per-layer densities."""
    mult = result["multiplications"]
    method, m = mult["method"], mult["m"]
    net = counting.get_network(result["config"]["model"])
    wd = {n: result["weight_densities"].get(n, 1.0) for n in net.pruned}
    key = COUNTS[method].domain
    ad = {n: result["activation_densities"][n][key] for n in net.pruned}
    if not COUNTS[method].sparse_activations:
        ad = 1.0
    return counting.count_multiplies(net, method, m, wd, ad)


@dataclass(frozen=True)
class Row:
    """One line of the summary: what, the published value, ours, and where ours comes from."""

    quantity: str
    published: float | None
    measured: float | None
    unit: str  # "%", "x", "mult", "acc" (an accuracy), "pt" (an accuracy change)
    source: str
    published_x: float | None = None  # for multiplies: the reduction against dense direct
    measured_x: float | None = None

    def cell(self, value: float | None, x: float | None = None) -> str:
        """``value`` as the table prints it (``x``: a reduction shown beside a count)."""
        if value is None:
            return "—"
        if self.unit == "mult":
            e = math.floor(math.log10(value))
            text = f"{value / 10**e:.1f}e{e}"
            return text if x is None else f"{text} ({x:.1f}x)"
        return {"%": f"{100 * value:.1f}%", "acc": f"{100 * value:.2f}%",
                "pt": f"{100 * value:+.2f} pt", "x": f"{value:.1f}x"}[self.unit]


def summary_rows(results: dict[str, dict], tolerance: float = LOSS_TOLERANCE) -> list[Row]:
    """The table: published against measured, for every quantity the issue names.

    The activation densities and multiplies are taken at the published densities (the spatial
    network at 60%, Winograd-ReLU at 40%; Li's native pruning at 40% for comparison), so that
    they sit beside the published numbers like for like; the last rows give the reductions at
    the lowest density of each sweep within ``tolerance`` of its dense baseline.
    """
    P = {k: v[0] for k, v in PUBLISHED.items()}
    net = counting.get_network("vgg-nagadomi")
    rows = []
    for arch, dense, _ in SWEEPS.values():
        if dense in results:
            rows.append(Row(f"dense accuracy, {arch}", None, results[dense]["accuracy"], "acc",
                            dense))
    for arch, _, _ in SWEEPS.values():
        if f"control-{arch}" in results:
            rows.append(Row(f"control accuracy (dense, trained as long as the sweep), {arch}",
                            None, results[f"control-{arch}"]["accuracy"], "acc",
                            f"control-{arch}"))
    chosen = {}
    for method, (_, _, label) in SWEEPS.items():
        pick = chosen[method] = prunable(results, method, tolerance)
        rows.append(Row(f"lowest density within {100 * tolerance:g} pt of dense, {label}",
                        P.get(f"density_{method}"), pick and pick[1], "%",
                        pick[0] if pick else "none"))
    for method, (_, _, label) in SWEEPS.items():
        pick = prunable(results, method, tolerance, "control")
        rows.append(Row(f"lowest density within {100 * tolerance:g} pt of control, {label}",
                        None, pick and pick[1], "%",
                        pick[0] if pick else "none"))
    at = AT_PUBLISHED
    for method in ("han", "liu"):
        # the published claim: at this density the loss is under 0.1 points
        arch, dense, _ = SWEEPS[method]
        step = at[method]
        if dense in results and step in results:
            rows.append(Row(f"accuracy change at {step[-2:]}% density, {arch} (published: "
                            f"loss < 0.1 pt)", None,
                            results[step]["accuracy"] - results[dense]["accuracy"], "pt",
                            step))
    for dom, method in (("spatial", "han"), ("winograd", "liu")):
        step = at[method] if at[method] in results else "none"
        value = overall_activation_density(results[step], dom) if step != "none" else None
        rows.append(Row(f"overall activation density, {dom} ({method})",
                        P[f"activation_{dom}"], value, "%", step))
    direct = counting.count_multiplies(net, "direct")
    rows.append(Row("multiplies, dense direct", P["mult_direct"], direct.total, "mult",
                    "layer table", 1.0, 1.0))
    wino = counting.count_multiplies(net, "winograd", 2)
    for method, what, key in (("han", "pruned spatial + sparse activations",
                               "mult_spatial_pruned"),
                              (None, "dense Winograd F(2x2,3x3)", "mult_winograd"),
                              ("liu", "Winograd-ReLU pruned", "mult_winograd_relu"),
                              ("li", "Winograd native pruned", None)):
        if method is None:
            c, step = wino, "layer table"
        else:
            step = at[method] if at[method] in results else "none"
            c = multiply_count(results[step]) if step != "none" else None
        rows.append(Row(f"multiplies, {what}", P.get(key), c and c.total, "mult", step,
                        PUBLISHED[key][2] if key else None, c and c.reduction))
    for method, (arch, _, _) in SWEEPS.items():
        pick = chosen[method]
        c = multiply_count(results[pick[0]]) if pick else None
        rows.append(Row(f"reduction at the lowest density within {100 * tolerance:g} pt of "
                        f"dense, {arch}", None, c and c.reduction, "x",
                        pick[0] if pick else "none"))
    if YU_STEP in results:
        yu = results[YU_STEP]
        dens = [yu["weight_densities"][n] for n in net.pruned]
        rows.append(Row("Yu: Winograd-domain weight sparsity, layers 2-8", P["yu_sparsity"],
                        1 - sum(dens) / len(dens), "%", YU_STEP))
        if "dense-spatial" in results:
            rows.append(Row("Yu: accuracy change vs dense spatial", None,
                            yu["accuracy"] - results["dense-spatial"]["accuracy"], "pt",
                            YU_STEP))
    return rows


def markdown_table(rows: list[Row]) -> str:
    """The rows as a markdown table (published, measured, run it comes from)."""
    out = ["| quantity | published | measured | from |", "|---|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r.quantity} | {r.cell(r.published, r.published_x)} | "
                   f"{r.cell(r.measured, r.measured_x)} | {r.source} |")
    return "\n".join(out) + "\n"


def _fig(ncols=1, figsize=(5.5, 3.6)):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the result figures need matplotlib: pip install winolab[widgets]"
                          ) from exc
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(1, ncols)


def plot_accuracy_vs_density(results: dict[str, dict]):
    """Test accuracy against weight density for the three sweeps (workshop paper, Fig. 2)."""
    fig, ax = _fig(figsize=(6.0, 4.8))
    for method, (_, _, label) in SWEEPS.items():
        pts = sweep(results, method)
        if pts:
            d, a = zip(*pts, strict=True)
            ax.plot([100 * x for x in d], [100 * y for y in a], "o-", label=label)
    for i, method in enumerate(SWEEPS):
        pts = sweep_single_run(results, method)
        if pts:
            d, a = zip(*pts, strict=True)
            ax.plot([100 * x for x in d], [100 * y for y in a], "x:", color=f"C{i}",
                    label=f"{method}, the same sweep as one run")
    for i, (arch, _, _) in enumerate(SWEEPS.values()):
        if f"control-{arch}" in results:
            ax.axhline(100 * results[f"control-{arch}"]["accuracy"], ls="--", lw=1,
                       color=f"C{i}", label=f"unpruned control, {arch}")
    yu = [n for n in ("yu-spatial", YU_STEP) if n in results]
    if yu:
        ax.plot([100 * _density(results[n]) for n in yu], [100 * results[n]["accuracy"]
                for n in yu], "s:", label="Yu et al. (Winograd-domain density, F(4x4,3x3))")
    ax.invert_xaxis()
    ax.set(xlabel="weight density of layers 2-8 (%)", ylabel="test accuracy (%)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax.grid(alpha=0.3)
    return fig


def plot_activation_densities(results: dict[str, dict]):
    """Per-layer input density of the pruned spatial network at 60% and the pruned
    Winograd-ReLU network at 40% (workshop paper, Fig. 3)."""
    fig, ax = _fig()
    net = counting.get_network("vgg-nagadomi")
    names = list(net.pruned)
    for i, (dom, method) in enumerate((("spatial", "han"), ("winograd", "liu"))):
        step = AT_PUBLISHED[method]
        if step not in results:
            continue
        acts = results[step]["activation_densities"]
        x = [j + (i - 0.5) * 0.4 for j in range(len(names))]
        bars = ax.bar(x, [100 * acts[n][dom] for n in names], width=0.4,
                      label=f"{dom} ({step})")
        ax.axhline(100 * PUBLISHED[f"activation_{dom}"][0], ls="--", lw=1,
                   color=bars.patches[0].get_facecolor(), label=f"{dom}, published overall")
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="activation density (%)", ylim=(0, 100))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


README_BEGIN = "<!-- reproduced-results: generated by python scripts/update_results.py -->"
README_END = "<!-- end of reproduced-results -->"
BENCH_BEGIN = "<!-- speed: generated by python scripts/update_results.py -->"
BENCH_END = "<!-- end of speed -->"


def readme_block(results: dict[str, dict]) -> str:
    """The project README's short table: only the rows with a published number beside ours."""
    rows = [r for r in summary_rows(results) if r.published is not None]
    return f"{README_BEGIN}\n{markdown_table(rows)}\n{scale_note(results)}{README_END}"


def bench_block(bench: dict, density: float = 0.1) -> str:
    """The README's speed table from a ``benchmarks/bench_sparse.py --json`` file.

    Per layer: the median speedup over torch's faster layout at ``density`` for batch 1 and
    64, the transform share at batch 64, and the break-even density at batch 64 (1.0 where
    winolab is faster even dense).
    """
    rows = [r for r in bench["rows"] if r["density"] == density]
    if not rows:
        raise ValueError(f"the benchmark has no rows at density {density}: expected one of "
                         f"{sorted({r['density'] for r in bench['rows']})}")
    by = {(r["layer"], r["batch"]): r for r in rows}
    even = {(b["layer"], b["batch"]): b["break_even_density"]
            for b in bench.get("break_even", [])}
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    out = ["| layer | C -> K, H | speedup, batch 1 | speedup, batch 64 | transform share, "
           "batch 64 | break-even density, batch 64 |", "|---|---|---:|---:|---:|---:|"]

    def cell(key, field, fmt):
        r = by.get(key)
        return "—" if r is None or r.get(field) is None else fmt.format(r[field])

    for name in layers:
        r = by.get((name, 64)) or by.get((name, 1))
        be = even.get((name, 64))
        out.append(f"| {name} | {r['C']} -> {r['K']}, {r['H']} | "
                   f"{cell((name, 1), 'speedup', '{:.2f}x')} | "
                   f"{cell((name, 64), 'speedup', '{:.2f}x')} | "
                   f"{cell((name, 64), 'transform_share', '{:.0%}')} | "
                   f"{'slower at all' if be is None else f'{be:.2f}'} |")
    prov = bench["provenance"]
    note = (f"Winograd-domain weight density {density}, F(2x2, 3x3), float32, against the faster "
            f"of torch's NCHW and channels_last conv2d in the same run (medians of "
            f"{rows[0].get('rounds', '?')} interleaved rounds); {prov.get('threads_numba')} "
            f"thread(s), clock {prov.get('clock')}, commit {prov.get('commit', '?')[:7]}, "
            f"{_load(prov)}`{prov.get('command')}`.\n")
    return f"{BENCH_BEGIN}\n" + "\n".join(out) + f"\n\n{note}{BENCH_END}"


def _load(prov: dict) -> str:
    load = prov.get("load_average")
    if not load or load.get("start") is None:
        return ""
    return (f"load average {load['start']:.1f} at the start and {load['end']:.1f} at the end "
            f"on {prov.get('cpus', '?')} CPUs, ")


def scale_note(results: dict[str, dict]) -> str:
    """The reduced-scale study's scale, as the note under its tables."""
    scale = next((r["reproduction"]["scale"] for r in results.values()
                  if "reproduction" in r), "unknown")
    return (f"VGG-nagadomi on CIFAR-10, measured at reduced scale: {scale}. Multiplies use the "
            "papers' full-width layer table with the densities we measured "
            "(`winolab.counting`); generated by `python scripts/update_results.py`.\n")
