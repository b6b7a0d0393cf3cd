"""The CIFAR-100 study driver (``scripts/paper_cifar100.py``) without training: its plan, its
commands, its folders and its step-time estimate. Half-done chains resume from whatever script
is on main, so the names, the commands and the folders are pinned here literally."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script
from test_paper_cifar10 import _flags

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar100-png.zip"
RUNS = Path("/runs")  # a made-up run folder: commands only name it


p = load_script("paper_cifar100")
study = p.paper_study
STEPS = p.plan()
BY_NAME = {s["name"]: s for s in STEPS}


def _cmd(name: str) -> list[str]:
    return study.command(p.STUDY, BY_NAME[name], RUNS)


def test_step_names_two_sweeps_and_a_winograd_baseline():
    expected = []
    for seed, densities in ((0, (80, 60, 40, 30, 20, 10)), (1, (80, 60, 40)), (2, (80, 60, 40))):
        expected += [f"dense-spatial-s{seed}", *(f"han-d{d}-s{seed}" for d in densities),
                     f"dense-winograd-s{seed}", f"dense-winograd_relu-s{seed}",
                     *(f"liu-d{d}-s{seed}" for d in densities)]  # fmt: skip
    expected += ["yu-spatial-s1", "yu-winograd-s1", "continued-spatial-s0"]
    assert [s["name"] for s in STEPS] == expected
    assert list(dict.fromkeys(s["chain"] for s in STEPS)) == [
        f"{a}-s{seed}" for seed in (0, 1, 2) for a in ("spatial", "winograd", "winograd_relu")
    ]


def test_every_init_precedes_its_step_in_the_same_chain():
    seen: dict[str, str] = {}
    for s in STEPS:
        assert s["init"] is None if s["name"].startswith("dense-") else (
            seen.get(s["init"]) == s["chain"]), s  # fmt: skip
        seen[s["name"]] = s["chain"]


def test_commands_are_pinned():
    recipe = ["--model", "convpool-cnn-c", "--width", "0.25", "--batch-size", "256",
              "--lr-schedule", "linear", "--warmup", "0.15", "--label-smoothing", "0.2",
              "--augment", "--precision", "auto", "--device", "cpu", "--stats-images", "1000",
              "--momentum", "0.9", "--weight-decay", "0.0005"]  # fmt: skip
    head = ["train", "--data", str(DATA), "--output-dir", "/runs", "--run-name"]
    assert _cmd("dense-winograd-s1") == [
        *head, "dense-winograd-s1", *recipe,
        "--architecture", "winograd", "--seed", "1", "--epochs", "30", "--lr", "0.2",
    ]  # fmt: skip
    assert _cmd("liu-d60-s2") == [
        *head, "liu-d60-s2", "--init", "/runs/liu-d80-s2", *recipe,
        "--architecture", "winograd_relu", "--method", "liu", "--densities", "0.6",
        "--seed", "202", "--epochs", "0", "--retrain-epochs", "3", "--retrain-lr", "0.02",
    ]  # fmt: skip
    yu = _flags(_cmd("yu-winograd-s1"))
    assert yu["--init"] == "/runs/yu-spatial-s1" and yu["--densities"] == "0.5"
    assert yu["--precision"] == "fp32" and yu["--m"] == "4" and yu["--retrain-lr"] == "1e-06"
    assert _flags(_cmd("yu-spatial-s1"))["--densities"] == "0.7"
    assert BY_NAME["yu-spatial-s1"]["init"] == "dense-spatial-s1"
    # the data: the CIFAR-100 zip beside the checkout (../shared/data)
    assert Path(DATA).relative_to(ROOT.parent) == Path("shared/data/cifar100-png.zip")


def test_folders_are_the_studys_own():
    home = Path("~").expanduser()
    assert p.STUDY.runs() == home / ".cache/winolab/runs/paper-cifar100-w0.25"
    assert p.STUDY.results() == ROOT / "results" / "cifar100-paper-w0.25"


def test_plan_estimates_from_convpool_benchmarks(capsys):
    benches = [json.loads(b.read_text()) for b in p.STUDY.benches]
    assert {b["model"] for b in benches} == {"convpool-cnn-c"}
    assert 0.25 in {b["width"] for b in benches}
    hours = study.chain_hours(p.STUDY, STEPS, benches)
    # the Winograd-ReLU chain costs the most; seeds 1-2 sweep less than seed 0
    assert hours["winograd_relu-s0"] > max(hours["spatial-s0"], hours["winograd-s0"]) > 0.5
    assert hours["winograd_relu-s1"] < hours["winograd_relu-s0"]
    assert hours["winograd-s1"] == hours["winograd-s0"]  # a dense baseline only
    assert p.main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "convpool-cnn-c, width 0.25" in out
    assert "--output-dir " + str(p.STUDY.runs()) in out


def test_record_names_the_cifar100_scale(tmp_path):
    runs = tmp_path / "runs"
    step = BY_NAME["liu-d40-s0"]
    (runs / step["name"]).mkdir(parents=True)
    (runs / step["name"] / "result.json").write_text(json.dumps({"accuracy": 0.5}))
    out = study.record(p.STUDY, step, runs, tmp_path, commit=False)
    assert out == tmp_path / "results" / "cifar100-paper-w0.25" / "liu-d40-s0.json"
    scale = json.loads(out.read_text())["reproduction"]["scale"]
    assert scale.startswith("ConvPool-CNN-C, width 0.25, all 50,000")
    assert "../shared/data/cifar100-png.zip" in scale
