"""The paper-scale study (``results/cifar10-paper-w0.5/``) and the rule that reads it.

The rule is checked on runs made up here, where the answer is known; every recorded run JSON is
checked for the scale the study claims (width 0.5, all 50,000 / 10,000 images), for
provenance, and its standard error and multiplication count are recomputed from its own fields
and the layer table of :mod:`winolab.counting`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from winolab import counting, methods, study

ROOT = Path(__file__).resolve().parents[1]
RUNS = study.load_study(ROOT / study.STUDY)
VGG = counting.get_network("vgg-nagadomi")
RUNS100 = study.load_study(ROOT / study.CIFAR100.folder)
# every recorded run of both studies, with what its study claims about it
RECORDED = [(study.CIFAR10, n) for n in sorted(RUNS)] + [(study.CIFAR100, n) for n in
                                                         sorted(RUNS100)]  # fmt: skip
SCALE = {"CIFAR-10": ("vgg-nagadomi", 0.5, "JPEG re-encoding of CIFAR-10"),
         "CIFAR-100": ("convpool-cnn-c", 0.25, "CIFAR-100 as lossless PNG")}  # fmt: skip


def _recorded(paper, name):
    return (RUNS if paper is study.CIFAR10 else RUNS100)[name]


def _ids(cases):
    return [f"{paper.tag or 'cifar10'}-{name}" for paper, name in cases]
MULT_METHOD = {arch: info.pruned for arch, info in methods.ARCHITECTURES.items()}


def _run(accuracy: float, n: int = 10_000) -> dict:
    return {"accuracy": accuracy, "data": {"test_images": n}}


def _se(a: float, n: int = 10_000) -> float:
    return math.sqrt(a * (1 - a) / n)


# --------------------------------------------------------------------------------- the names
@pytest.mark.parametrize(("name", "parsed"), [
    ("dense-spatial-s0", ("dense", "spatial", 1.0, 0)),
    ("dense-winograd_relu-s2", ("dense", "winograd_relu", 1.0, 2)),
    ("han-d80-s0", ("han", "spatial", 0.8, 0)),
    ("li-d10-s1", ("li", "winograd", 0.1, 1)),
    ("liu-d40-s2", ("liu", "winograd_relu", 0.4, 2)),
])  # fmt: skip
def test_parse_name(name, parsed):
    assert study.parse_name(name) == parsed


@pytest.mark.parametrize("name", ["dense-direct-s0", "yu-winograd-s1", "han-d80", "han-80-s0",
                                  "foo-d40-s0", "dense-spatial-s0.json"])
def test_parse_name_rejects_other_names(name):
    with pytest.raises(ValueError, match="is not a study step"):
        study.parse_name(name)


# ---------------------------------------------------------------------------------- the rule
def test_a_change_holds_down_to_z_standard_errors():
    dense = 0.88
    se = math.hypot(_se(dense), _se(dense))  # about 0.46 points
    edge = dense - study.Z * se
    runs = {"dense-spatial-s0": _run(dense), "han-d60-s0": _run(edge + 1e-4),
            "han-d40-s0": _run(edge - 2e-3)}
    (c60, c40) = study.changes(runs, "han")
    assert (c60.density, c40.density) == (0.6, 0.4)
    # the pruned model's own SE is a little larger at the lower accuracy
    assert c60.change_se == pytest.approx(math.hypot(_se(edge + 1e-4), _se(dense)))
    assert c60.holds and not c40.holds
    assert study.lowest_holding(runs, "han") == 0.6


def test_every_higher_density_must_hold():
    runs = {"dense-winograd_relu-s0": _run(0.88), "liu-d80-s0": _run(0.86),  # -2 pt: fails
            "liu-d60-s0": _run(0.88), "liu-d40-s0": _run(0.88)}
    assert [c.holds for c in study.changes(runs, "liu")] == [False, True, True]
    assert study.lowest_holding(runs, "liu") is None


def test_every_seed_must_hold():
    runs = {"dense-winograd-s0": _run(0.87), "dense-winograd-s1": _run(0.86),
            "li-d60-s0": _run(0.87), "li-d60-s1": _run(0.86),
            "li-d40-s0": _run(0.87), "li-d40-s1": _run(0.84)}  # seed 1 loses 2 points
    assert study.lowest_holding(runs, "li") == 0.6
    del runs["li-d40-s1"]
    assert study.lowest_holding(runs, "li") == 0.4


def test_each_pruned_model_is_compared_with_its_own_seed():
    # seed 1's dense model is 3 points above seed 0's; against seed 0 its pruned model holds
    runs = {"dense-spatial-s0": _run(0.85), "dense-spatial-s1": _run(0.88),
            "han-d60-s1": _run(0.85), "han-d60-s2": _run(0.85)}  # seed 2 has no dense model
    (c,) = study.changes(runs, "han")
    assert (c.seed, c.dense_accuracy) == (1, 0.88)
    assert not c.holds


def test_mean_change_over_seeds():
    runs = {"dense-spatial-s0": _run(0.88), "dense-spatial-s1": _run(0.87),
            "han-d40-s0": _run(0.87), "han-d40-s1": _run(0.87)}
    mean, se, n = study.mean_change(runs, "han", 0.4)
    # changes -1 and 0 points: mean -0.5, sample sd 0.707, SE 0.5 points
    assert (mean, se, n) == (pytest.approx(-0.005), pytest.approx(0.005), 2)
    one = study.mean_change({k: v for k, v in runs.items() if k.endswith("s0")}, "han", 0.4)
    assert one == (pytest.approx(-0.01), pytest.approx(math.hypot(_se(0.87), _se(0.88))), 1)
    assert study.mean_change(runs, "han", 0.2) is None


def test_yu_claim_against_the_dense_model_of_its_seed():
    layers = [f"conv{i}" for i in range(2, 9)]
    yu = {**_run(0.875), "weight_densities": {n: 0.37 for n in layers}}
    runs = {"dense-spatial-s1": _run(0.88), "yu-winograd-s1": yu}
    (line,) = [c for c in study.claims(runs) if "Yu et al." in c]
    se = 100 * math.hypot(_se(0.875), _se(0.88))
    assert line.startswith("*Yu et al.'s two stages reach 63% Winograd-domain weight sparsity")
    assert f"63.0% with a change of -0.50 ± {se:.2f} pt" in line and "**consistent**" in line
    runs["yu-winograd-s1"] = {**yu, "accuracy": 0.86}  # -2 pt, about 4 standard errors
    assert "**refuted at this scale**" in next(c for c in study.claims(runs) if "Yu et" in c)
    del runs["dense-spatial-s1"]
    assert any(c.endswith("without losing accuracy* (published; the loss they allow is not "
                          "stated): not run yet.") for c in study.claims(runs))  # fmt: skip


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'yu'"):
        study.changes({}, "yu")


def test_claims_verdicts_on_made_up_runs():
    runs = {"dense-spatial-s0": _run(0.88), "han-d60-s0": _run(0.875),  # -0.5 pt: holds
            "dense-winograd-s0": _run(0.87), "li-d60-s0": _run(0.87), "li-d40-s0": _run(0.85),
            "dense-winograd_relu-s0": _run(0.86), "liu-d60-s0": _run(0.86),
            "liu-d40-s0": _run(0.84)}  # -2 pt at 40%: resolved
    # without the published counts and densities, which need full run records
    paper = dataclasses.replace(study.CIFAR10, published={})
    text = "\n".join(study.claims(runs, paper))
    assert "keeps its accuracy at 60% density* (published: loss < 0.1 pt): change -0.50" in text
    assert "**consistent**" in text and "**refuted at this scale**: the loss is resolved" in text
    # both hold to 60% and fail at 40%
    assert ("lowest holding density 60% (Winograd-ReLU) against 60% (native); **not resolved**"
            in text)
    # dense Winograd-ReLU 2 points below dense spatial, standard error ~0.5 pt: resolved
    se = 100 * math.hypot(_se(0.88), _se(0.86))
    assert (f"-2.00 ± {se:.2f} pt against the dense spatial network (1 seed against 1); **a loss "
            "is resolved**") in text
    near = {**runs, "dense-winograd_relu-s0": _run(0.875)}  # -0.5 pt: within 2 standard errors
    assert "-0.50 ± 0.46 pt against the dense spatial network (1 seed against 1); **no gap is "\
        "resolved**" in "\n".join(study.claims(near, paper))
    runs["liu-d40-s0"] = _run(0.86)  # now Winograd-ReLU holds to 40%, native to 60%
    assert "**confirmed**: Winograd-ReLU holds to a lower density" in "\n".join(
        study.claims(runs, paper))


def test_a_lowest_density_is_settled_by_a_failure_below_it_or_the_end_of_the_sweep():
    runs = {"dense-spatial-s0": _run(0.88), "han-d80-s0": _run(0.88), "han-d60-s0": _run(0.88)}
    assert study.lowest_holding(runs, "han") == 0.6 and not study.settled(runs, "han")
    runs["han-d40-s0"] = _run(0.85)  # fails: 60% is final
    assert study.settled(runs, "han")
    del runs["han-d40-s0"]
    runs.update({f"han-d{d}-s0": _run(0.88) for d in (40, 30, 20, 10)})  # the sweep's end
    assert study.lowest_holding(runs, "han") == 0.1 and study.settled(runs, "han")
    assert not study.settled({}, "han")
    assert study.settled({"dense-spatial-s0": _run(0.88), "han-d80-s0": _run(0.80)}, "han")


def test_an_unsettled_sweep_leaves_the_comparison_open():
    paper = dataclasses.replace(study.CIFAR10, published={})
    runs = {"dense-winograd-s0": _run(0.87), "li-d60-s0": _run(0.87), "li-d40-s0": _run(0.87),
            "dense-winograd_relu-s0": _run(0.86), "liu-d60-s0": _run(0.86)}
    # Li holds to 40% so far, Liu to 60% so far: either may still fall
    assert "**not resolved yet**" in "\n".join(study.claims(runs, paper))
    runs["liu-d40-s0"] = _run(0.83)  # Liu settles at 60%, above Li's 40%: Li can only go lower
    assert "**refuted at this scale**" in "\n".join(study.claims(runs, paper))


def test_claims_before_any_run():
    for paper, n in ((study.CIFAR10, 7), (study.CIFAR100, 2)):
        lines = study.claims({}, paper)
        assert len(lines) == n and all(line.endswith("not run yet.") for line in lines)


def test_empty_study(tmp_path):
    runs = study.load_study(tmp_path / "not-there")
    assert runs == {}
    assert study.lowest_holding(runs, "han") is None
    table = study.summary_table(runs)
    # every measured cell but the two counted from the layer table alone
    measured = [row.split(" | ")[2] for row in table.splitlines()[2:]]
    assert measured.count("not run yet") == len(measured) - 2
    study.plot_accuracy(runs)
    study.plot_activation_densities(runs)


# ------------------------------------------------------------------------- the recorded runs
def test_the_study_has_runs():
    assert RUNS, f"no run JSONs in {study.STUDY}"
    assert any(n.startswith("dense-") for n in RUNS)


@pytest.mark.parametrize(("paper", "name"), RECORDED, ids=_ids(RECORDED))
def test_recorded_run_scale_and_provenance(paper, name):
    r = _recorded(paper, name)
    model, width, data = SCALE[paper.title]
    assert r["reproduction"]["step"] == name
    assert r["config"]["model"] == model and r["config"]["width"] == width
    assert (r["data"]["train_images"], r["data"]["test_images"]) == (50_000, 10_000)
    assert r["config"]["subset"] is None and r["config"]["test_subset"] is None
    assert data in r["data"]["train"]
    # paths relative to the repository (or ~), never this machine's
    for text in (r["command"], r["data"]["path"], r["config"]["data"], r["run_dir"]):
        assert not re.search(r"(^|\s)/(work|root|home|tmp)/", text), text
    assert len(r["git"]["commit"]) == 40
    env = r["environment"]
    for key in ("cpu", "isa", "precision", "threads", "load_average_1_5_15", "torch", "date"):
        assert key in env, key
    assert env["precision"] == r["precision"] in ("bf16", "fp32")


@pytest.mark.parametrize(("paper", "name"), RECORDED, ids=_ids(RECORDED))
def test_recorded_accuracy_and_its_standard_error(paper, name):
    r = _recorded(paper, name)
    a = r["accuracy"]
    assert a * 10_000 == pytest.approx(round(a * 10_000))  # a count of the 10,000 images
    assert r["accuracy_se"] == pytest.approx(_se(a), rel=1e-9)
    assert abs(r["history"][-1]["test_accuracy"] - a) <= 1e-4


@pytest.mark.parametrize(("paper", "name"), [c for c in RECORDED if not c[1].startswith("yu-")],
                         ids=_ids([c for c in RECORDED if not c[1].startswith("yu-")]))
def test_recorded_densities_and_multiplies(paper, name):
    r = _recorded(paper, name)
    cfg = r["config"]
    # the density each layer was pruned to: the step's own (its name says it for a sweep
    # step), one per layer for a per-layer step, 1.0 for a dense one
    per_layer = cfg.get("layer_densities") or {}
    uniform = cfg["densities"][-1] if cfg["densities"] else 1.0
    try:
        method, arch, density, _ = study.parse_name(name)
        assert density == uniform and not per_layer
    except ValueError:  # a side step (continued-*, oneshot-*, sensitivity-*, *-m4-*)
        method = "dense" if not cfg["densities"] and not per_layer else cfg["method"]
        arch = cfg["architecture"]
    net = counting.get_network(paper.network)
    assert cfg["architecture"] == arch
    for layer in net.pruned:
        assert r["weight_densities"][layer] == pytest.approx(per_layer.get(layer, uniform),
                                                             abs=2e-3)  # fmt: skip
    assert r["weight_densities"]["conv1"] == 1.0
    mult = r["multiplications"]
    if method == "dense":
        return
    assert mult["method"] == MULT_METHOD[arch]
    key = "spatial" if arch == "spatial" else "winograd"
    total = 0.0
    for la in net.layers:
        if isinstance(la, counting.ConvLayer) and la.name in net.pruned:
            n = la.direct_multiplies if key == "spatial" else la.winograd_multiplies(mult["m"])
            da = 1.0 if arch == "winograd" else r["activation_densities"][la.name][key]
            total += n * r["weight_densities"][la.name] * da
        elif isinstance(la, counting.ConvLayer) and la.winograd and key == "winograd":
            total += la.winograd_multiplies(mult["m"])
        else:
            total += la.direct_multiplies
    assert mult["total"] == pytest.approx(total, rel=1e-12)


def test_summary_table_reads_the_runs():
    table = study.summary_table(RUNS)
    for arch, accs in study.dense_accuracies(RUNS).items():
        if len(accs) == 1:
            (_, a, se), = accs
            assert f"| dense accuracy, {arch} | — | {100 * a:.2f} ± {100 * se:.2f}%" in table
    for method in study.METHODS:
        low = study.lowest_holding(RUNS, method)
        if low is not None:
            so_far = "" if study.settled(RUNS, method) else " so far"
            assert f"{100 * low:.0f}%{so_far} (seed" in table
    study.plot_accuracy(RUNS)
    study.plot_activation_densities(RUNS)
    assert len(study.claims(RUNS)) >= 6


def test_project_readme_block_is_regenerated_from_the_runs():
    text = (ROOT / "README.md").read_text()
    block = study.readme_block(RUNS)
    assert block in text, "README.md is stale: run python scripts/update_results.py"


def test_project_readme_cifar100_block_is_regenerated_from_its_runs():
    text = (ROOT / "README.md").read_text()
    assert study.readme_block(RUNS100, study.CIFAR100) in text, (
        "README.md is stale: run python scripts/update_results.py")


def test_cifar100_table_sets_two_sweeps_against_its_own_published_numbers():
    table = study.summary_table({}, study.CIFAR100)
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ")[1:] for r in table.splitlines()[2:]}
    assert not [q for q in rows if "Li et al." in q]  # no Winograd-native sweep on CIFAR-100
    liu = "reduction at the lowest density holding accuracy, Winograd-ReLU, pruned (Liu et al.)"
    assert rows[liu][:2] == ["6.8x", "not run yet"]
    # ConvPool-CNN-C's layer table (32x32 input): 396.8 M in its 3x3 layers, 2.0 M in its 1x1
    net = counting.get_network("convpool-cnn-c")
    direct = counting.count_multiplies(net, "direct").total
    three = sum(la.direct_multiplies for la in net.layers if la.winograd)
    assert (round(three / 1e5), round((direct - three) / 1e5)) == (3968, 20)
    assert rows["multiplies, dense direct"][1] == f"{direct:.2g} (1.0x)"
    for method in ("han", "liu"):  # each quantity of a sweep has its row
        label = study.METHODS[method][1]
        for what in ("accuracy change at", "lowest density holding", "multiplies at",
                     "reduction at the lowest density"):  # fmt: skip
            assert [q for q in rows if q.startswith(what) and q.endswith(label)], (what, label)
    # CIFAR-10's markers are not CIFAR-100's: the two README blocks cannot swallow each other
    b10, e10 = study.CIFAR10.readme_markers
    b100, e100 = study.CIFAR100.readme_markers
    assert b10 not in b100 and e10 not in e100 and b100 not in b10 and e100 not in e10


def test_readme_block_of_an_empty_study_replaces_the_old_one(tmp_path):
    from conftest import load_script

    update = load_script("update_results")
    readme = tmp_path / "README.md"
    readme.write_text("# no block here\n")
    block = study.readme_block(study.load_study(tmp_path / "empty"))
    with pytest.raises(ValueError, match="has no generated block"):
        update.replace_block(readme, block)
    readme.write_text(f"top\n{study.README_BEGIN}\nOLD-CONTENT\n{study.README_END}\nbottom\n")
    update.replace_block(readme, block)
    text = readme.read_text()
    assert text.startswith("top\n") and text.endswith("bottom\n") and "OLD-CONTENT" not in text
    assert "no runs recorded yet. 0 runs recorded" in text


def test_side_table_sets_runs_against_a_dense_model():
    runs = {k: RUNS[k] for k in ("dense-spatial-s0", "han-d20-s0")}
    table = study.side_table(runs, {"han-d20-s0": "Han to 20%", "oneshot-d5-s0": "made up"},
                             "dense-spatial-s0")  # fmt: skip
    han, dense = runs["han-d20-s0"], runs["dense-spatial-s0"]
    change = 100 * (han["accuracy"] - dense["accuracy"])
    se = 100 * math.hypot(han["accuracy_se"], dense["accuracy_se"])
    row = next(line for line in table.splitlines() if line.startswith("| han-d20-s0"))
    assert f"{100 * han['accuracy']:.2f} ± {100 * han['accuracy_se']:.2f}%" in row
    assert f"{change:+.2f} ± {se:.2f} pt" in row and "| 20.0% |" in row
    assert f"({han['multiplications']['reduction']:.1f}x)" in row
    assert "| oneshot-d5-s0 | made up | not run yet |" in table
