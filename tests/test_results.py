"""The recorded CIFAR-10 runs and the table made from them.

Every number of ``results/README_table.md`` is recomputed here from the run JSONs and
:mod:`winolab.counting` without going through :mod:`winolab.results`' own arithmetic, and every
JSON's multiplication count is recomputed from its per-layer densities.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import load_script

from winolab import counting, methods, results

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "results" / "cifar10"
README = ROOT / "results" / "README_table.md"
RUNS = results.load_results(FOLDER) if FOLDER.is_dir() else {}
BENCH_JSON = ROOT / "results" / "bench_sparse_cpu1.json"
update = load_script("update_results")
VGG = counting.get_network("vgg-nagadomi")

needs_runs = pytest.mark.skipif(not RUNS, reason="no recorded runs in results/cifar10")


# ------------------------------------------------------------------------------- the JSONs
@needs_runs
@pytest.mark.parametrize("name", sorted(RUNS))
def test_provenance(name):
    r = RUNS[name]
    for key in ("command", "config", "data", "git", "date", "wall_time_s", "accuracy",
                "history", "weight_densities", "activation_densities", "multiplications"):
        assert key in r, key
    assert r["reproduction"]["step"] == name
    assert "JPEG re-encoding of CIFAR-10" in r["reproduction"]["scale"]
    assert "JPEG re-encoding of CIFAR-10" in r["data"]["train"]
    assert r["config"]["model"] == "vgg-nagadomi"
    assert len(r["git"]["commit"]) == 40
    # the same scale for every run
    first = next(iter(RUNS.values()))["config"]
    for key in ("width", "subset", "test_subset", "batch_size", "seed"):
        assert r["config"][key] == first[key], key
    assert r["data"]["test_images"] == r["config"]["test_subset"]


@needs_runs
@pytest.mark.parametrize("name", sorted(RUNS))
def test_final_accuracy_is_last_epoch(name):
    r = RUNS[name]
    n = r["data"]["test_images"]
    # evaluated twice on the same model and data: the last epoch and the final report
    assert abs(r["history"][-1]["test_accuracy"] - r["accuracy"]) <= 1 / n
    assert r["accuracy"] * n == pytest.approx(round(r["accuracy"] * n))


@needs_runs
@pytest.mark.parametrize("name", sorted(RUNS))
def test_multiplication_count_recomputes(name):
    r = RUNS[name]
    mult = r["multiplications"]
    key = methods.COUNTS[mult["method"]].domain
    total = 0.0
    for la in VGG.layers:
        if isinstance(la, counting.ConvLayer) and la.name in VGG.pruned:
            n = la.direct_multiplies if key == "spatial" else la.winograd_multiplies(mult["m"])
            dw = r["weight_densities"][la.name]
            da = r["activation_densities"][la.name][key] if (
                methods.COUNTS[mult["method"]].sparse_activations) else 1.0
            total += n * dw * da
        elif isinstance(la, counting.ConvLayer) and key == "winograd":
            total += la.winograd_multiplies(mult["m"])  # first layer: dense Winograd
        else:
            total += la.direct_multiplies
    assert mult["total"] == pytest.approx(total, rel=1e-12)
    assert mult["direct_total"] == sum(la.direct_multiplies for la in VGG.layers)


@needs_runs
@pytest.mark.parametrize("name", sorted(n for n in RUNS if re.match(r"(han|li|liu)-d", n)))
def test_sweep_steps_reach_their_density(name):
    r = RUNS[name]
    target = r["config"]["densities"][-1]
    for layer in VGG.pruned:
        # int(size * density) weights kept per layer
        assert r["weight_densities"][layer] == pytest.approx(target, abs=2e-3)
    assert r["weight_densities"]["conv1"] == 1.0  # the first layer is not pruned


# ------------------------------------------------------------------------------- the table
def _parse(cell: str):
    """``(value, reduction)`` of a table cell; None for a dash."""
    cell = cell.strip()
    if cell == "—":
        return None, None
    m = re.fullmatch(r"(\d+\.\d)e(\d+)(?: \((\d+\.\d)x\))?", cell)
    if m:
        return float(f"{m[1]}e{m[2]}"), m[3] and float(m[3])
    m = re.fullmatch(r"([-+]?\d+\.\d+) ?(%|x|pt)", cell)
    assert m, cell
    return float(m[1]) / (1 if m[2] == "x" else 100), None


def _table() -> dict[str, tuple]:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("quantity", "---"):
            rows[cells[0]] = (_parse(cells[1]), _parse(cells[2]), cells[3])
    return rows


def _close(parsed, value, unit_step):
    assert parsed is not None and value is not None
    assert abs(parsed - value) <= unit_step / 2 + 1e-12, (parsed, value)


def _lowest_density(method, tolerance, reference="dense"):
    arch = methods.BY_STEP[method].architecture
    ref = f"{reference}-{arch}"
    if ref not in RUNS:
        return None
    floor = RUNS[ref]["accuracy"] - tolerance
    ok = [r["config"]["densities"][-1] for n, r in RUNS.items()
          if n.startswith(f"{method}-d") and r["accuracy"] >= floor]
    return min(ok) if ok else None


@needs_runs
def test_table_is_regenerated_from_the_runs():
    text = README.read_text()
    assert text.startswith(results.markdown_table(results.summary_rows(RUNS)))


@needs_runs
def test_every_table_number_recomputes():
    table = _table()
    seen = 0
    for quantity, (_, (val, val_x), source) in table.items():
        if quantity.startswith(("dense accuracy", "control accuracy")):
            assert source.startswith(quantity.split()[0]) and source.endswith(
                quantity.rsplit(", ", 1)[1])
            _close(val, RUNS[source]["accuracy"], 1e-4)
        elif quantity.startswith("accuracy change at"):
            dense = results.SWEEPS[source.split("-")[0]][1]
            assert source.endswith(re.search(r"at (\d+)% density", quantity)[1])
            _close(val, RUNS[source]["accuracy"] - RUNS[dense]["accuracy"], 1e-4)
        elif quantity.startswith("lowest density"):
            method = re.search(r"\((Han|Li|Liu) et al", quantity)[1].lower()
            tol = float(re.search(r"within ([\d.]+) pt", quantity)[1]) / 100
            reference = re.search(r"pt of (dense|control)", quantity)[1]
            d = _lowest_density(method, tol, reference)
            assert (val is None) == (d is None)
            if d is not None:
                _close(val, d, 1e-3)
                assert RUNS[source]["config"]["densities"][-1] == d
        elif source == "none":  # no step of that sweep held its accuracy (or none ran)
            assert val is None
        elif quantity.startswith("overall activation density"):
            assert source in ("han-d60", "liu-d40")  # the published densities
            domain = "spatial" if "spatial" in quantity else "winograd"
            r = RUNS[source]
            num = den = 0.0
            for la in VGG.layers:
                if la.name in VGG.pruned:
                    # input elements: C H W, or C x tiles x 4 x 4 for F(2x2, 3x3)
                    n = la.in_channels * (la.height * la.width if domain == "spatial"
                                          else -(-la.height // 2) * -(-la.width // 2) * 16)
                    num += r["activation_densities"][la.name][domain] * n
                    den += n
            _close(val, num / den, 1e-3)
        elif quantity.startswith("reduction at the lowest density"):
            arch = quantity.rsplit(", ", 1)[1]
            (method,) = [m for m, (a, _, _) in results.SWEEPS.items() if a == arch]
            tol = float(re.search(r"within ([\d.]+) pt", quantity)[1]) / 100
            d = _lowest_density(method, tol)
            assert RUNS[source]["config"]["densities"][-1] == d
            direct = counting.count_multiplies(VGG, "direct").total
            _close(val, direct / RUNS[source]["multiplications"]["total"], 0.1)
        elif quantity.startswith("multiplies"):
            direct = counting.count_multiplies(VGG, "direct").total
            if source == "layer table":
                method = "direct" if "direct" in quantity else "winograd"
                total = counting.count_multiplies(VGG, method, 2).total
            else:
                total = RUNS[source]["multiplications"]["total"]
            exponent = len(str(int(total))) - 1
            _close(val, total, 0.1 * 10**exponent)
            _close(val_x, direct / total, 0.1)
        elif quantity.startswith("Yu: Winograd-domain weight sparsity"):
            dens = [RUNS[source]["weight_densities"][n] for n in VGG.pruned]
            _close(val, 1 - sum(dens) / len(dens), 1e-3)
            assert RUNS[source]["multiplications"]["m"] == 4
        elif quantity.startswith("Yu: accuracy change"):
            _close(val, RUNS[source]["accuracy"] - RUNS["dense-spatial"]["accuracy"], 1e-4)
        else:
            pytest.fail(f"table row not checked: {quantity}")
        seen += 1
    assert seen == len(table) >= 6


@needs_runs
def test_published_column_is_the_papers():
    table = _table()
    assert table["multiplies, dense direct"][0] == (2.3e8, 1.0)
    assert table["multiplies, pruned spatial + sparse activations"][0] == (5.0e7, 4.6)
    assert table["multiplies, dense Winograd F(2x2,3x3)"][0] == (1.1e8, 2.2)
    assert table["multiplies, Winograd-ReLU pruned"][0] == (2.3e7, 10.2)
    assert table["overall activation density, spatial (han)"][0][0] == pytest.approx(0.369)
    assert table["overall activation density, winograd (liu)"][0][0] == pytest.approx(0.411)


# ------------------------------------------------------------------------------- the logic
def _fake(density, accuracy, arch="spatial"):
    return {"accuracy": accuracy, "config": {"architecture": arch,
                                             "densities": [] if density is None else [density]}}


def test_prunable_picks_lowest_density_within_tolerance():
    r = {"dense-spatial": _fake(None, 0.80), "han-d80": _fake(0.8, 0.81),
         "han-d60": _fake(0.6, 0.7901), "han-d40": _fake(0.4, 0.7899),
         "han-d20": _fake(0.2, 0.71)}
    assert results.prunable(r, "han", 0.01) == ("han-d60", 0.6)
    assert results.prunable(r, "han", 0.1) == ("han-d20", 0.2)
    assert results.prunable(r, "han", 0.0) == ("han-d80", 0.8)
    assert results.sweep(r, "han")[0] == (1.0, 0.80)
    assert [d for d, _ in results.sweep(r, "han")] == [1.0, 0.8, 0.6, 0.4, 0.2]


def test_prunable_without_baseline_or_passing_step():
    assert results.prunable({"han-d80": _fake(0.8, 0.9)}, "han") is None
    r = {"dense-spatial": _fake(None, 0.80), "han-d80": _fake(0.8, 0.5)}
    assert results.prunable(r, "han") is None
    with pytest.raises(ValueError, match="unknown sweep"):
        results.sweep(r, "nope")


def test_cells():
    row = results.Row("q", None, None, "mult", "s")
    assert row.cell(2.335e8, 1.0) == "2.3e8 (1.0x)"
    assert row.cell(None) == "—"
    assert results.Row("q", None, None, "%", "s").cell(0.3691) == "36.9%"


@needs_runs
@pytest.mark.parametrize("method", ["han", "li", "liu"])
def test_single_run_sweep(method):
    run = RUNS.get(f"{method}-sweep")
    if run is None:
        pytest.skip("no one-run sweep recorded")
    pts = results.sweep_single_run(RUNS, method)
    densities = run["config"]["densities"]
    assert [d for d, _ in pts[1:]] == sorted(densities, reverse=True)
    # one retraining epoch per step: history entry i is the step to densities[i]
    for h, d in zip(run["history"], densities, strict=True):
        assert h["phase"] == f"prune {d:g}"
        assert (d, h["test_accuracy"]) in pts
    assert pts[-1][1] == pytest.approx(run["accuracy"], abs=1 / run["data"]["test_images"])
    for layer in VGG.pruned:
        assert run["weight_densities"][layer] == pytest.approx(densities[-1], abs=2e-3)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="reproduce_cifar10"):
        results.load_results(tmp_path / "nothing")


@pytest.mark.parametrize("text", ['{"accuracy": 0.9, "hist', "", "[1, 2]"])
def test_damaged_run_json_names_the_file(tmp_path, text):
    (tmp_path / "good.json").write_text('{"accuracy": 0.5}')
    (tmp_path / "dense-spatial.json").write_text(text)
    with pytest.raises(ValueError, match=r"dense-spatial\.json"):
        results.load_results(tmp_path)


@needs_runs
def test_figures():
    pytest.importorskip("matplotlib")
    fig = results.plot_accuracy_vs_density(RUNS)
    labels = {label for _, _, label in results.SWEEPS.values()}
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() in labels]
    for line in lines:
        # density falls along each sweep, starting at the dense baseline
        assert list(line.get_xdata())[0] == 100.0
    assert len(lines) == sum(bool(results.sweep(RUNS, m)) for m in results.SWEEPS)
    results.plot_activation_densities(RUNS)


def test_summary_json_roundtrip(tmp_path):
    # scripts/update_results.py over a copy of the runs regenerates the same table
    if not RUNS:
        pytest.skip("no recorded runs")
    pytest.importorskip("matplotlib")
    for name, r in RUNS.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    table = update.write_reduced(tmp_path, tmp_path / "README_table.md")
    assert table == results.markdown_table(results.summary_rows(RUNS))
    assert (tmp_path / "README_table.md").read_text().startswith(table)
    assert (tmp_path / "accuracy_vs_density.png").stat().st_size > 1000
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{results.README_BEGIN}\nstale\n{results.README_END}\n\nkept\n"
                      f"{results.BENCH_BEGIN}\n{results.BENCH_END}\n")
    bench = results.bench_block(json.loads(BENCH_JSON.read_text()))
    for block in (results.readme_block(RUNS), bench):
        update.replace_block(readme, block)
    assert readme.read_text() == f"# x\n\n{results.readme_block(RUNS)}\n\nkept\n{bench}\n"


@needs_runs
def test_project_readme_block_is_regenerated_from_the_runs():
    # the README's short table is exactly what scripts/update_results.py writes, and holds
    # only the rows that have a published number
    block = results.readme_block(RUNS)
    assert block in (ROOT / "README.md").read_text(), "run python scripts/update_results.py"
    rows = [line.split(" | ") for line in block.splitlines() if line.startswith("| ")][1:]
    assert len(rows) >= 8
    assert all(cells[1] != "—" for cells in rows)


def test_project_readme_without_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no block\n")
    with pytest.raises(ValueError, match="no generated block"):
        update.replace_block(readme, "x")
    assert readme.read_text() == "# no block\n"


def test_bench_block_rejects_a_density_it_has_not_measured():
    bench = json.loads(BENCH_JSON.read_text())
    with pytest.raises(ValueError, match="no rows at density 0.42"):
        results.bench_block(bench, density=0.42)
