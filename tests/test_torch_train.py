"""The training CLI on tiny data: resume reaches the uninterrupted state; runs are kept."""

from __future__ import annotations

import dataclasses
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from winolab.__main__ import build_parser, main  # noqa: E402
from winolab.torch import train  # noqa: E402
from winolab.torch.cli import HELP, config_from_args  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread(torch_one_thread):
    pass


def _args(tiny_cifar10, out, *extra):
    return [
        "train", "--data", str(tiny_cifar10), "--output-dir", str(out), "--width", "0.0625",
        "--batch-size", "16", "--epochs", "2", "--lr", "0.05", "--lr-milestones", "1",
        "--lr-schedule", "multistep", "--label-smoothing", "0", "--precision", "fp32",
        "--architecture", "winograd_relu", "--method", "liu", "--densities", "0.5,0.3",
        "--retrain-epochs", "1", "--retrain-lr", "0.01", "--stats-images", "8",
        "--device", "cpu", "--no-progress", *extra,
    ]  # fmt: skip


def _checkpoint(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)


def _assert_same_state(a, b):
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]
    assert a["state"]["history"] == b["state"]["history"]
    assert a["state"]["step"] == b["state"]["step"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_cifar10, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(_args(tiny_cifar10, out, "--run-name", "full")) == 0
    return out / "full"


def test_uninterrupted_run_writes_a_full_result(uninterrupted):
    result = json.loads((uninterrupted / "result.json").read_text())
    assert [h["phase"] for h in result["history"]] == ["train", "train", "prune 0.5", "prune 0.3"]
    assert [h["lr"] for h in result["history"]] == [0.05, pytest.approx(0.005), 0.01, 0.01]
    assert result["steps"] == 4 * 3  # 4 epochs of ceil(48 / 16) batches
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["config"] == json.loads((uninterrupted / "config.json").read_text())
    assert "official CIFAR-10" in result["data"]["train"] and result["data"]["train_images"] == 48
    assert result["git"].keys() == {"commit", "dirty"} and result["wall_time_s"] > 0
    assert result["git_sessions"] == [result["git"]]
    assert result["command"].startswith("python -m winolab train --data ")
    assert result["multiplications"] is not None and result["activation_densities"]
    # Liu et al.: every Winograd layer but the first holds the last density of the schedule
    pruned = result["pruner_densities"]
    assert sorted(pruned) == [f"conv{i}" for i in range(2, 9)]
    assert all(abs(d - 0.3) < 0.01 for d in pruned.values()), pruned
    assert result["weight_densities"]["conv1"] == 1.0
    assert {k: result["weight_densities"][k] for k in pruned} == pruned
    assert result["multiplications"]["method"] == "winograd_relu"
    assert result["multiplications"]["reduction"] > 1


def test_stopped_twice_and_resumed_equals_uninterrupted(tiny_cifar10, tmp_path, uninterrupted):
    # stop mid-epoch 1, then mid-epoch 3 (a retraining phase), then run to the end
    assert main(_args(tiny_cifar10, tmp_path, "--run-name", "r", "--stop-after-steps", "2")) == 0
    run_dir = tmp_path / "r"
    assert _checkpoint(run_dir)["state"]["step"] == 2 and not (run_dir / "result.json").exists()
    state = _checkpoint(run_dir)["state"]  # the loop's named state saves the same dict
    again = train._LoopState.from_state(state).to_state()
    assert list(again) == list(state) and repr(again) == repr(state)
    assert (
        main(["train", "--resume", str(run_dir), "--stop-after-steps", "8", "--no-progress"]) == 0
    )
    assert _checkpoint(run_dir)["state"]["phase"] == 1
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    _assert_same_state(_checkpoint(run_dir), _checkpoint(uninterrupted))
    a = json.loads((run_dir / "result.json").read_text())
    b = json.loads((uninterrupted / "result.json").read_text())
    assert len(a["git_sessions"]) == 3
    assert a["accuracy"] == b["accuracy"] and a["weight_densities"] == b["weight_densities"]


@pytest.mark.parametrize("arch", ["spatial", "winograd"])
def test_yu_resumes_after_its_switch_to_the_winograd_domain(tiny_cifar10, tmp_path, arch):
    # Yu et al.'s stage 2 replaces the 3x3 convolutions (the first too) by Winograd layers
    # mid-run: a resume past the switch must rebuild them before loading masks and weights
    yu = [x if x not in ("winograd_relu", "liu") else {"winograd_relu": arch, "liu": "yu"}[x]
          for x in _args(tiny_cifar10, tmp_path)]  # fmt: skip
    yu += ["--winograd-from", "1"]
    assert main([*yu, "--run-name", "full"]) == 0
    # 2 dense epochs, then prune 0.5 (spatial) and 0.3 (Winograd), 3 steps each: step 10 is
    # inside the Winograd phase
    assert main([*yu, "--run-name", "r", "--stop-after-steps", "10"]) == 0
    run_dir = tmp_path / "r"
    assert _checkpoint(run_dir)["pruner"]["stage"] == "winograd"
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    _assert_same_state(_checkpoint(run_dir), _checkpoint(tmp_path / "full"))


def test_crash_without_checkpoint_resumes_from_the_last_epoch(
    tiny_cifar10, tmp_path, uninterrupted, monkeypatch
):
    # a crash at the end of epoch 3, before its checkpoint: epoch 3 is redone on resume
    calls = {"n": 0}
    evaluate = train.evaluate

    def crash_on_third(model, loader):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected crash")
        return evaluate(model, loader)

    monkeypatch.setattr(train, "evaluate", crash_on_third)
    with pytest.raises(RuntimeError, match="injected crash"):
        main(_args(tiny_cifar10, tmp_path, "--run-name", "c"))
    assert _checkpoint(tmp_path / "c")["state"]["epoch"] == 2
    monkeypatch.setattr(train, "evaluate", evaluate)
    assert main(["train", "--resume", str(tmp_path / "c"), "--no-progress"]) == 0
    _assert_same_state(_checkpoint(tmp_path / "c"), _checkpoint(uninterrupted))


def test_runs_are_never_overwritten(tiny_cifar10, tmp_path, uninterrupted, capsys):
    before = {p.name: p.read_bytes() for p in uninterrupted.iterdir()}
    out = uninterrupted.parent
    # an explicit name that exists is refused, a finished run cannot be resumed
    assert main(_args(tiny_cifar10, out, "--run-name", "full", "--stop-after-steps", "1")) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["train", "--resume", str(uninterrupted), "--no-progress"]) == 2
    assert "finished" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in uninterrupted.iterdir()} == before
    # the default name gets a suffix instead
    for _ in range(2):
        assert main(_args(tiny_cifar10, tmp_path, "--stop-after-steps", "1")) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["vgg-nagadomi-winograd_relu-liu-w0.0625-s0",
                     "vgg-nagadomi-winograd_relu-liu-w0.0625-s0-2"]  # fmt: skip


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere.zip"), "--output-dir", str(tmp_path),
                 "--no-progress"]) == 2  # fmt: skip
    assert "nowhere.zip" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "a failed start leaves no run directory behind"
    assert main(["train", "--resume", str(tmp_path / "no-run")]) == 2
    assert "no run directory" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs densities"):
        train.TrainConfig(data="x", method="liu")
    with pytest.raises(ValueError, match="architecture must be one of"):
        train.TrainConfig(data="x", architecture="fft")
    with pytest.raises(ValueError, match="densities are fractions"):
        train.TrainConfig(data="x", method="liu", densities=(0.5, 1.5))


def test_layer_densities_prune_each_layer_to_its_own_density(tiny_cifar10, tmp_path):
    # one prune with a density per layer, given on the command line as name=density pairs
    layers = ["conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "conv8"]
    want = dict(zip(layers, (0.9, 0.5, 0.25, 0.5, 0.75, 0.5, 0.125), strict=True))
    args = [a for a in _args(tiny_cifar10, tmp_path) if a != "liu"]
    i = args.index("--densities")
    args[i:i + 2] = ["--layer-densities", ",".join(f"{k}={v}" for k, v in want.items())]
    args[args.index("--architecture") + 1] = "spatial"
    args[args.index("--method"):args.index("--method")] = ["--method", "spatial"]
    del args[args.index("--method", args.index("--method") + 1)]
    assert main([*args, "--run-name", "per-layer"]) == 0
    result = json.loads((tmp_path / "per-layer" / "result.json").read_text())
    assert [h["phase"] for h in result["history"]] == ["train", "train", "prune per layer"]
    assert result["config"]["layer_densities"] == want
    for name, d in want.items():  # the masks keep round(d * weights) of each layer
        assert result["weight_densities"][name] == pytest.approx(d, abs=0.01), name
    config = train.TrainConfig.from_dict(result["config"])
    assert config.layer_densities == want
    with pytest.raises(ValueError, match="not both"):
        dataclasses.replace(config, densities=(0.5,))
    with pytest.raises(ValueError, match="maps layer names to fractions"):
        dataclasses.replace(config, layer_densities={"conv2": 1.5})
    with pytest.raises(ValueError, match="must be a mapping"):
        dataclasses.replace(config, layer_densities=[("conv2", 0.5)])
    with pytest.raises(SystemExit):
        build_parser(train=True).parse_args(["train", "--layer-densities", "conv2:0.5"])


def test_help_documents_every_option():
    parser = build_parser(train=True)
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    text = " ".join(sub.format_help().split())
    fields = [f.name for f in dataclasses.fields(train.TrainConfig)]
    assert set(HELP) == set(fields)
    for name in fields:
        assert f"--{name.replace('_', '-')}" in text
        assert " ".join(HELP[name].split())[:40] in text
    for flag in ("--resume", "--stop-after-steps", "--time-budget", "--no-progress"):
        assert flag in text


def test_config_round_trips_through_json_and_command_line():
    config = train.TrainConfig(data="/data/d.zip", method="yu", densities=(0.7, 0.5), width=0.5,
                               nesterov=False, lr_milestones=(3, 6))  # fmt: skip
    assert train.TrainConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config
    parser = build_parser(train=True)
    args = parser.parse_args(["train", *train._cli_args(config)])
    assert config_from_args(args) == config
    per_layer = train.TrainConfig(data="/data/d.zip", method="spatial",
                                  layer_densities={"conv2": 0.6, "conv8": 1 / 3})  # fmt: skip
    assert config_from_args(parser.parse_args(["train", *train._cli_args(per_layer)])) == per_layer


@pytest.mark.parametrize("architecture", ["spatial", "winograd", "winograd_relu"])
def test_one_memory_layout_end_to_end(architecture):
    # the training model and input are channels_last; so is every 4-d activation, forward
    # and backward (the Winograd layers compute in channels_last)
    config = train.TrainConfig(data="x", architecture=architecture, width=0.125)
    model = train._build(config, 10, None)
    seen = []

    def hook(module, args, out):
        if out.dim() == 4:
            seen.append(out.is_contiguous(memory_format=torch.channels_last))

    for module in model.children():
        module.register_forward_hook(hook)
    x = train._channels_last(torch.randn(4, 3, 32, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x).float().sum()
    loss.backward()
    assert len(seen) >= 20 and all(seen), seen
    for p in model.parameters():
        if p.dim() == 4 and p.shape[-1] == 3:
            assert p.grad.is_contiguous(memory_format=torch.channels_last)


def test_precision_is_chosen_from_the_cpu_and_the_measurement(tmp_path, monkeypatch):
    cpu = torch.device("cpu")
    assert train.resolve_precision("fp32", "spatial", cpu) == ("fp32", "asked for")
    assert train.resolve_precision("bf16", "spatial", cpu) == ("bf16", "asked for")
    info = train.cpu_info()
    precision, reason = train.resolve_precision("auto", "winograd_relu", cpu)
    assert precision in ("bf16", "fp32") and info["model"] in reason
    if not (info["isa"]["avx512_bf16"] or info["isa"]["amx_bf16"]):
        assert precision == "fp32"
    # a benchmark of this CPU decides where there is AVX512-BF16 without AMX
    bench = {
        "provenance": {"cpu": info},
        "round_step_s": {"spatial-fp32-cl": [2.0, 2.2, 1.8], "spatial-bf16-cl": [1.0, 1.0, 1.2]},
    }
    monkeypatch.setattr(train, "BENCH_TRAIN_STEP", tmp_path / "bench.json")
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    assert train.measured_bf16_speedup("spatial", info) == pytest.approx(2.0)
    assert train.measured_bf16_speedup("winograd", info) is None  # not measured
    other = {**info, "model": "another CPU"}
    assert train.measured_bf16_speedup("spatial", other) is None
    # a record made before "fma" joined the flags still counts for this CPU
    older = {"model": info["model"], "isa": {f: v for f, v in info["isa"].items() if f != "fma"}}
    (tmp_path / "bench.json").write_text(json.dumps({**bench, "provenance": {"cpu": older}}))
    assert train.measured_bf16_speedup("spatial", info) == pytest.approx(2.0)
    flipped = {**info, "isa": {**info["isa"], "avx2": not info["isa"]["avx2"]}}
    assert train.measured_bf16_speedup("spatial", flipped) is None


def test_cpu_info_keeps_the_flags_of_the_recorded_runs():
    from winolab import provenance

    info = train.cpu_info()
    assert list(info["isa"]) == ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile",
                                 "amx_bf16", "amx_int8"]  # fmt: skip
    full = provenance.cpu_info()
    assert info["model"] == full["model"] and provenance.same_cpu(info, full)
    assert all(full["isa"][f] == v for f, v in info["isa"].items())


def test_recorded_paths_are_relative_to_the_repository():
    root = train.ROOT
    assert train._portable(root / "results" / "x.json") == "results/x.json"
    assert train._portable(root / ".." / "shared" / "data" / "c.zip") == "../shared/data/c.zip"
    home = train.Path.home() / ".cache" / "winolab" / "runs"
    assert train._portable(home) == "~/.cache/winolab/runs"
    assert train._portable("relative/d.zip") == "relative/d.zip"


def test_result_records_the_full_test_set_with_a_standard_error(uninterrupted):
    result = json.loads((uninterrupted / "result.json").read_text())
    n = result["data"]["test_images"]
    assert n == 16  # every test image of the tiny set
    p = result["accuracy"]
    assert result["accuracy_se"] == pytest.approx((p * (1 - p) / n) ** 0.5)
    env = result["environment"]
    for key in ("cpu", "isa", "precision", "threads", "load_average_1_5_15", "memory_format"):
        assert key in env, key
    assert result["precision"] == env["precision"] == "fp32"
