"""The CIFAR-10 study driver (``scripts/paper_cifar10.py``) without training: its plan, its
commands, its step-time estimate, its status and the rule that a recorded result is never
overwritten. Half-done chains resume from whatever script is on main, so the names, the commands
and the folders are pinned here literally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.zip"
RUNS = Path("/runs")  # a made-up run folder: commands only name it


p = load_script("paper_cifar10")
study = p.paper_study
STEPS = p.plan()
BY_NAME = {s["name"]: s for s in STEPS}


def _cmd(name: str, runs: Path = RUNS) -> list[str]:
    return study.command(p.STUDY, BY_NAME[name], runs)


def _flags(args: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs of a command (None for a switch)."""
    out, i = {}, 1
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[args[i]] = args[i + 1]
            i += 2
        else:
            out[args[i]] = None
            i += 1
    return out


def test_nine_chains_by_architecture_and_seed_and_one_of_f4x4():
    chains = list(dict.fromkeys(s["chain"] for s in STEPS))
    assert chains == [f"{a}-s{seed}" for seed in (0, 1, 2)
                      for a in ("spatial", "winograd", "winograd_relu")] + [
                          "winograd_relu_m4-s0"]  # fmt: skip


def test_step_names():
    expected = []
    for seed, densities in ((0, (80, 60, 40, 30, 20, 10)), (1, (80, 60, 40)), (2, (80, 60, 40))):
        for method, arch in (("han", "spatial"), ("li", "winograd"), ("liu", "winograd_relu")):
            expected += [f"dense-{arch}-s{seed}", *(f"{method}-d{d}-s{seed}" for d in densities)]
    expected += ["yu-spatial-s1", "yu-winograd-s1", "continued-spatial-s0",
                 "dense-winograd_relu-m4-s0", "liu-m4-d80-s0", "liu-m4-d60-s0", "liu-m4-d40-s0",
                 "oneshot-d20-s0", "sensitivity-d20-s0"]
    assert [s["name"] for s in STEPS] == expected


def test_every_init_precedes_its_step_in_the_same_chain():
    seen: dict[str, str] = {}
    for s in STEPS:
        if s["init"] is None:
            assert s["name"].startswith("dense-"), s
        else:
            assert seen.get(s["init"]) == s["chain"], s
        seen[s["name"]] = s["chain"]
    # the check can fail: a chain whose step starts from a step of another chain
    bad = [*STEPS, {"name": "x", "init": "dense-spatial-s0", "chain": "winograd-s0"}]
    seen = {}
    with pytest.raises(AssertionError):
        for s in bad:
            assert s["init"] is None or seen.get(s["init"]) == s["chain"]
            seen[s["name"]] = s["chain"]


def test_sweep_chains_prune_step_after_step():
    # seed 0 sweeps 0.8 .. 0.1, seeds 1 and 2 stop at 0.4, each step from the one before
    for seed, expected in ((0, (0.8, 0.6, 0.4, 0.3, 0.2, 0.1)), (1, (0.8, 0.6, 0.4)),
                           (2, (0.8, 0.6, 0.4))):  # fmt: skip
        for method, arch in (("han", "spatial"), ("li", "winograd"), ("liu", "winograd_relu")):
            sweep = [s for s in STEPS if s["name"].startswith(f"{method}-d")
                     and s["name"].endswith(f"-s{seed}")]  # fmt: skip
            assert [s["config"]["densities"] for s in sweep] == [(d,) for d in expected]
            assert [s["init"] for s in sweep] == [f"dense-{arch}-s{seed}"] + [
                s["name"] for s in sweep[:-1]
            ]


def test_every_command_has_the_recipe():
    recipe = {"--model": "vgg-nagadomi", "--width": "0.5", "--batch-size": "256",
              "--lr-schedule": "linear", "--warmup": "0.15", "--label-smoothing": "0.2",
              "--augment": None, "--device": "cpu", "--stats-images": "1000",
              "--momentum": "0.9", "--weight-decay": "0.0005"}  # fmt: skip
    for s in STEPS:
        args = _cmd(s["name"])
        flags = _flags(args)
        assert args[0] == "train"
        assert {k: flags.get(k, "missing") for k in recipe} == recipe, s["name"]
        # the data: the CIFAR-10 zip beside the checkout (../shared/data), not a home folder
        assert flags["--data"] == str(DATA), s["name"]
        assert Path(flags["--data"]).relative_to(ROOT.parent) == Path(
            "shared/data/cifar10-jpeg.zip"
        )
        assert flags["--output-dir"] == str(RUNS) and flags["--run-name"] == s["name"]
        assert flags.get("--init") == (str(RUNS / s["init"]) if s["init"] else None)
        expected = "fp32" if s["name"] == "yu-winograd-s1" else "auto"
        assert flags["--precision"] == expected, s["name"]


def test_commands_are_pinned():
    # a chain resumes next session with this script: a started step must get the same command
    recipe = ["--model", "vgg-nagadomi", "--width", "0.5", "--batch-size", "256",
              "--lr-schedule", "linear", "--warmup", "0.15", "--label-smoothing", "0.2",
              "--augment", "--precision", "auto", "--device", "cpu", "--stats-images", "1000",
              "--momentum", "0.9", "--weight-decay", "0.0005"]  # fmt: skip
    head = ["train", "--data", str(DATA), "--output-dir", "/runs", "--run-name"]
    assert _cmd("dense-winograd_relu-s2") == [
        *head, "dense-winograd_relu-s2", *recipe,
        "--architecture", "winograd_relu", "--seed", "2", "--epochs", "30", "--lr", "0.2",
    ]  # fmt: skip
    assert _cmd("li-d30-s0") == [
        *head, "li-d30-s0", "--init", "/runs/li-d40-s0", *recipe,
        "--architecture", "winograd", "--method", "li", "--densities", "0.3", "--seed", "400",
        "--epochs", "0", "--retrain-epochs", "3", "--retrain-lr", "0.02",
    ]  # fmt: skip
    fp32 = [x if x != "auto" else "fp32" for x in recipe]
    assert _cmd("yu-winograd-s1") == [
        *head, "yu-winograd-s1", "--init", "/runs/yu-spatial-s1", *fp32,
        "--architecture", "spatial", "--method", "yu", "--m", "4", "--epochs", "0",
        "--retrain-epochs", "3", "--retrain-lr", "1e-06", "--densities", "0.37",
        "--winograd-from", "0", "--seed", "902",
    ]  # fmt: skip
    assert _flags(_cmd("yu-spatial-s1"))["--densities"] == "0.6,0.4"
    oneshot = [*head, "oneshot-d20-s0", "--init", "/runs/dense-spatial-s0", *recipe,
               "--architecture", "spatial", "--method", "spatial", "--seed", "903",
               "--epochs", "0", "--retrain-epochs", "3", "--retrain-lr", "0.02"]  # fmt: skip
    assert _cmd("oneshot-d20-s0") == [*oneshot, "--densities", "0.2"]
    # han-d80-s0's retraining (seed 100: its batch order) with nothing pruned
    assert _cmd("continued-spatial-s0") == [
        *head, "continued-spatial-s0", "--init", "/runs/dense-spatial-s0", *recipe,
        "--architecture", "spatial", "--method", "spatial", "--densities", "1", "--seed", "100",
        "--epochs", "0", "--retrain-epochs", "3", "--retrain-lr", "0.02",
    ]  # fmt: skip
    assert _flags(_cmd("han-d80-s0"))["--seed"] == "100"
    assert _cmd("liu-m4-d60-s0") == [
        *head, "liu-m4-d60-s0", "--init", "/runs/liu-m4-d80-s0", *recipe,
        "--architecture", "winograd_relu", "--m", "4", "--method", "liu", "--densities", "0.6",
        "--seed", "200", "--epochs", "0", "--retrain-epochs", "3", "--retrain-lr", "0.02",
    ]  # fmt: skip
    assert _flags(_cmd("liu-d60-s0"))["--seed"] == "200"  # the F(2x2) sweep's batch order
    assert _flags(_cmd("dense-winograd_relu-m4-s0"))["--m"] == "4"
    per_layer = "conv2=0.3,conv3=0.3,conv4=0.2,conv5=0.3,conv6=0.1,conv7=0.2,conv8=0.1"
    assert _cmd("sensitivity-d20-s0") == [
        *[x if x != "oneshot-d20-s0" else "sensitivity-d20-s0" for x in oneshot],
        "--layer-densities", per_layer,
    ]  # fmt: skip


def test_per_layer_densities_cost_what_the_uniform_density_costs():
    # the allocation spends the uniform prune's multiplies (weighted by density) and no more
    from winolab import counting

    net = counting.get_network("vgg-nagadomi")
    cost = net.pruned_multiplies
    chosen = BY_NAME["sensitivity-d20-s0"]["config"]["layer_densities"]
    assert set(chosen) == set(net.pruned)
    spent = sum(cost[n] * d for n, d in chosen.items()) / sum(cost.values())
    assert spent == pytest.approx(0.2, abs=0.02) and spent <= 0.2 + 1e-12


def test_folders():
    home = Path("~").expanduser()
    assert p.STUDY.runs() == home / ".cache/winolab/runs/paper-cifar10-w0.5"
    assert p.STUDY.results() == ROOT / "results" / "cifar10-paper-w0.5"
    assert p.STUDY.results(Path("/elsewhere")) == Path("/elsewhere/results/cifar10-paper-w0.5")


def _bench(width, seconds, model=None, batch=256, m=None):
    b = {"width": width, "batch": batch, "median_step_s": seconds}
    if model:
        b["model"] = model
    if m:
        b["m"] = m
    return b


def test_step_time_from_the_nearest_width():
    benches = [_bench(1.0, {"spatial-bf16-cl": 4.0}), _bench(0.5, {"spatial-bf16-cl": 1.5}),
               _bench(0.25, {"spatial-bf16-cl": 0.2})]  # fmt: skip
    assert study.step_seconds(p.STUDY, benches, "spatial", "bf16") == pytest.approx(1.5)
    # nearest width that has the variant, scaled by width^2 and to the recipe's batch
    benches = [_bench(1.0, {"spatial-fp32-cl": 4.0}, batch=128),
               _bench(0.5, {"spatial-bf16-cl": 1.5})]  # fmt: skip
    assert study.step_seconds(p.STUDY, benches, "spatial", "fp32") == pytest.approx(2.0)
    # another network's benchmark does not count, however near its width
    benches = [_bench(1.0, {"spatial-bf16-cl": 4.0}),
               _bench(0.5, {"spatial-bf16-cl": 9.0}, model="convpool-cnn-c")]  # fmt: skip
    assert study.step_seconds(p.STUDY, benches, "spatial", "bf16") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no benchmark"):
        study.step_seconds(p.STUDY, benches, "winograd", "bf16")
    # F(4x4) steps from an F(4x4) benchmark where there is one (a record without "m" is F(2x2))
    benches = [_bench(0.5, {"winograd_relu-fp32-cl": 2.0}),
               _bench(0.5, {"winograd_relu-fp32-cl": 3.0}, m=4)]  # fmt: skip
    assert study.step_seconds(p.STUDY, benches, "winograd_relu", "fp32", m=4) == 3.0
    assert study.step_seconds(p.STUDY, benches, "winograd_relu", "fp32") == 2.0
    assert study.step_seconds(p.STUDY, benches[:1], "winograd_relu", "fp32", m=4) == 2.0


def test_plan_estimates_from_the_recorded_benchmarks(capsys):
    benches = [json.loads(b.read_text()) for b in p.STUDY.benches]
    hours = study.chain_hours(p.STUDY, STEPS, benches)
    assert list(hours) == list(dict.fromkeys(s["chain"] for s in STEPS))
    # every chain trains a dense model (more than half an hour); seeds 1-2 sweep to 40% only,
    # so they cost less than seed 0's sweep to 10%; F(4x4) computes in float32, F(2x2) in bf16
    assert min(hours.values()) > 0.5
    for arch in ("spatial", "winograd", "winograd_relu"):
        assert hours[f"{arch}-s1"] < hours[f"{arch}-s0"], arch
    assert hours["winograd_relu_m4-s0"] > hours["winograd_relu-s1"]
    # a budget just short of the longest chain: that one does not fit, the shortest does
    budget = 3600 * (max(hours.values()) + min(hours.values())) / 2
    assert p.main(["plan", "--budget", f"{budget:.0f}"]) == 0
    out = capsys.readouterr().out
    for chain in hours:
        assert f"chain {chain}: " in out
    assert f"fits in a budget of {budget / 3600:.2f} h" in out and "does NOT fit" in out
    assert "--output-dir " + str(p.STUDY.runs()) in out


def test_status_on_empty_folders_says_pending(tmp_path, capsys):
    assert p.main(["status", "--repo", str(tmp_path), "--runs", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(STEPS)
    assert all(line.split()[-1] == "pending" for line in lines), lines


def test_status_sees_started_finished_and_recorded(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "dense-spatial-s0").mkdir(parents=True)
    (runs / "dense-spatial-s0" / "result.json").write_text("{}")
    (runs / "han-d80-s0").mkdir()
    (runs / "han-d80-s0" / "checkpoint.pt").write_bytes(b"")
    results = p.STUDY.results(tmp_path)
    results.mkdir(parents=True)
    (results / "dense-winograd-s0.json").write_text("{}")
    assert p.main(["status", "--repo", str(tmp_path), "--runs", str(runs)]) == 0
    states = {line.split()[1]: line.split()[2] for line in capsys.readouterr().out.splitlines()}
    assert states["dense-spatial-s0"] == "finished"
    assert states["han-d80-s0"] == "started"
    assert states["dense-winograd-s0"] == "recorded"
    assert states["han-d60-s0"] == "pending"


def test_record_copies_a_result_and_never_overwrites(tmp_path):
    runs = tmp_path / "runs"
    step = BY_NAME["han-d60-s0"]
    (runs / step["name"]).mkdir(parents=True)
    (runs / step["name"] / "result.json").write_text(json.dumps({"test_accuracy": 0.9}))
    out = study.record(p.STUDY, step, runs, tmp_path, commit=False)
    assert out == tmp_path / "results" / "cifar10-paper-w0.5" / "han-d60-s0.json"
    first = json.loads(out.read_text())
    assert first["test_accuracy"] == 0.9
    assert first["reproduction"]["step"] == "han-d60-s0"
    assert first["reproduction"]["init_step"] == "han-d80-s0"
    assert first["reproduction"]["chain"] == "spatial-s0"
    assert first["reproduction"]["scale"].startswith("VGG-nagadomi, width 0.5, all 50,000")
    assert "../shared/data/cifar10-jpeg.zip" in first["reproduction"]["scale"]
    # a rerun after a crash finds another result.json in the run folder: the record stays
    (runs / step["name"] / "result.json").write_text(json.dumps({"test_accuracy": 0.1}))
    assert study.record(p.STUDY, step, runs, tmp_path, commit=False) == out
    assert json.loads(out.read_text()) == first


def test_a_chain_rebuilds_recorded_run_directories_the_machine_lost(tmp_path, monkeypatch, capsys):
    # dense and liu-d80 are recorded but this machine has no run directories (a fresh machine):
    # the chain reruns both for their checkpoints, records neither again, then trains the rest
    runs, results = tmp_path / "runs", p.STUDY.results(tmp_path)
    results.mkdir(parents=True)
    recorded = {}
    for name in ("dense-winograd_relu-s1", "liu-d80-s1"):
        recorded[name] = {"accuracy": 0.8, "date": "2026-12-01T00:00:00"}
        (results / f"{name}.json").write_text(json.dumps(recorded[name]))
    ran = []

    def fake_train(argv, env):
        name = argv[argv.index("--run-name") + 1]
        init = argv[argv.index("--init") + 1] if "--init" in argv else None
        assert init is None or (Path(init) / "result.json").exists(), (name, init)
        ran.append(name)
        (runs / name).mkdir(parents=True)
        (runs / name / "result.json").write_text(json.dumps(
            {"accuracy": 0.75, "date": f"2026-12-04T0{len(ran)}:00:00"}))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(study.subprocess, "run", fake_train)
    assert p.main(["status", "--repo", str(tmp_path), "--runs", str(runs)]) == 0
    status = capsys.readouterr().out
    assert status.count("its chain reruns it first") == 2, status
    assert p.main(["chain", "winograd_relu-s1", "--repo", str(tmp_path), "--runs", str(runs),
                   "--data", str(tmp_path / "data.zip")]) == 0  # fmt: skip
    assert ran == ["dense-winograd_relu-s1", "liu-d80-s1", "liu-d60-s1", "liu-d40-s1"]
    out = capsys.readouterr().out
    assert "liu-d80-s1: rebuilt its run directory; accuracy 0.75 (recorded 0.8)" in out
    for name, record in recorded.items():  # the records stay as they were
        assert json.loads((results / f"{name}.json").read_text()) == record
    d60 = json.loads((results / "liu-d60-s1.json").read_text())
    assert d60["reproduction"]["init_rebuilt"] == {
        "date": "2026-12-04T02:00:00", "accuracy": 0.75,
        "recorded_date": "2026-12-01T00:00:00", "recorded_accuracy": 0.8}  # fmt: skip
    assert "init_rebuilt" not in json.loads((results / "liu-d40-s1.json").read_text())[
        "reproduction"]
    # run again: everything is recorded or on disk, nothing runs
    ran.clear()
    assert p.main(["chain", "winograd_relu-s1", "--repo", str(tmp_path), "--runs", str(runs),
                   "--data", str(tmp_path / "data.zip")]) == 0  # fmt: skip
    assert ran == []
