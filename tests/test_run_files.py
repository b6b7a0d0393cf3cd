"""Run files survive kills: SIGKILL at chosen points of real subprocesses, then restart/resume.

Every kill is a real ``SIGKILL`` of a ``python -m winolab train`` process, sent by the process
itself at a chosen point of a run-file write (before it, with half a temporary file written,
with the whole temporary file written but not yet renamed). The run is then restarted by the
same command or continued with ``--resume``, and must end with the result of a run that was
never interrupted (same seed, same machine, one thread). Also: damaged run files, a full disk,
a read-only output directory and non-finite hyperparameters get clear errors.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from winolab.__main__ import main  # noqa: E402
from winolab.torch import train  # noqa: E402

# the child: ``python -c CHILD train ...``; WINOLAB_KILL="FILE:N:HOW" kills it at the N-th
# write of FILE, HOW = before (nothing written), half (half a temporary file), full (the whole
# temporary file, not renamed)
CHILD = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)
from winolab.torch import train
kill = os.environ.get("WINOLAB_KILL")
if kill:
    name, nth, how = kill.split(":")
    seen = [0]
    real = train._atomic_write
    def atomic_write(path, write, **kw):
        if path.name == name:
            seen[0] += 1
            if seen[0] == int(nth):
                if how != "before":
                    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                    with open(tmp, "wb") as f:
                        write(f)
                    if how == "half":
                        os.truncate(tmp, os.path.getsize(tmp) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        return real(path, write, **kw)
    train._atomic_write = atomic_write
from winolab.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module", autouse=True)
def _one_thread(torch_one_thread):
    pass


def _args(tiny_cifar10, out, name="r", *extra):
    # the recipe in miniature: per-step warm-up/decay, label smoothing, bf16 autocast
    return [
        "train", "--data", str(tiny_cifar10), "--output-dir", str(out), "--run-name", name,
        "--width", "0.0625", "--batch-size", "16", "--epochs", "2", "--lr", "0.05",
        "--architecture", "winograd_relu", "--method", "liu", "--densities", "0.5",
        "--retrain-epochs", "1", "--retrain-lr", "0.01", "--stats-images", "8",
        "--precision", "bf16", "--device", "cpu", "--no-progress", *extra,
    ]  # fmt: skip


def _child(args, kill=None, limit_bytes=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WINOLAB_KILL", None)
    if kill:
        env["WINOLAB_KILL"] = kill

    def limits():
        if limit_bytes is not None:  # a full disk: writes past it fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limits,
    )


def _final(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    keys = ("accuracy", "accuracy_se", "test_loss", "history", "weight_densities",
            "pruner_densities", "activation_densities", "steps", "precision")  # fmt: skip
    model = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    return {k: result[k] for k in keys}, model


def _assert_same(run_dir, reference):
    got, model = _final(run_dir)
    want, want_model = reference
    assert got == want
    assert model.keys() == want_model.keys()
    for key in model:
        assert torch.equal(model[key], want_model[key]), key


@pytest.fixture(scope="module")
def reference(tiny_cifar10, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    done = _child(_args(tiny_cifar10, out, "full"))
    assert done.returncode == 0, done.stderr
    return _final(out / "full")


def test_reference_run_records_the_recipe(reference, tiny_cifar10, tmp_path):
    result, _ = reference
    assert result["precision"] == "bf16" and result["steps"] == 3 * 3
    assert result["accuracy_se"] == pytest.approx(
        (result["accuracy"] * (1 - result["accuracy"]) / 16) ** 0.5
    )
    # per-step linear schedule of the dense phase: 6 steps, round(0.15 * 6) = 1 warm-up step;
    # the lr of each epoch's last step (steps 2 and 5, 0-based): 0.05 * (6 - s) / 5
    lrs = [h["lr"] for h in result["history"]]
    assert lrs[:2] == [pytest.approx(0.05 * 4 / 5), pytest.approx(0.05 * 1 / 5)]
    # retraining: 3 steps, round(0.45) = 0 warm-up steps, the last at (3 - 2) / 3 of its lr
    assert lrs[2] == pytest.approx(0.01 * 1 / 3)
    assert all(h["test_accuracy_se"] >= 0 for h in result["history"])


@pytest.mark.parametrize(
    ("kill", "then"),
    [
        ("config.json:1:before", "same command"),
        ("config.json:1:half", "same command"),
        ("checkpoint.pt:1:half", "same command"),
        ("checkpoint.pt:1:full", "resume"),
        ("checkpoint.pt:2:half", "resume"),
        ("result.json:1:half", "resume"),
    ],
)
def test_sigkill_then_restart_or_resume_ends_like_an_uninterrupted_run(
    tiny_cifar10, tmp_path, reference, kill, then, capsys
):
    killed = _child(_args(tiny_cifar10, tmp_path), kill=kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = tmp_path / "r"
    assert not (run_dir / "result.json").exists()
    if kill.startswith("config.json"):
        # no config: --resume cannot know the run, and says to rerun the command
        assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
        assert "rerun its original command" in capsys.readouterr().err
    args = _args(tiny_cifar10, tmp_path) if then == "same command" else [
        "train", "--resume", str(run_dir), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert not list(run_dir.glob(".*.tmp")), "a killed writer's temporary file is cleaned up"
    _assert_same(run_dir, reference)
    # finished: neither the same command nor --resume touches it again
    before = (run_dir / "result.json").read_bytes()
    assert main(_args(tiny_cifar10, tmp_path)) == 2
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    assert "final" in capsys.readouterr().err
    assert (run_dir / "result.json").read_bytes() == before


def test_time_budget_sessions_end_like_an_uninterrupted_run(tiny_cifar10, tmp_path, reference):
    # a budget that is always spent: every session takes one step, then checkpoints
    assert main(_args(tiny_cifar10, tmp_path, "r", "--time-budget", "1e-9")) == 0
    run_dir, sessions = tmp_path / "r", 1
    while not (run_dir / "result.json").exists():
        assert main(["train", "--resume", str(run_dir), "--time-budget", "1e-9",
                     "--no-progress"]) == 0  # fmt: skip
        sessions += 1
        assert sessions < 20
    assert sessions == 9  # one per step; the last one also writes the result
    _assert_same(run_dir, reference)
    result = json.loads((run_dir / "result.json").read_text())
    assert len(result["git_sessions"]) == len(result["sessions"]) == sessions


def test_full_disk_at_the_first_checkpoint_is_a_clear_error_and_restarts(
    tiny_cifar10, tmp_path, reference
):
    full = _child(_args(tiny_cifar10, tmp_path), limit_bytes=32 * 1024)
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    assert "checkpoint.pt" in full.stderr and "free disk space" in full.stderr
    assert (tmp_path / "r" / "config.json").is_file()
    assert main(_args(tiny_cifar10, tmp_path)) == 0  # space again: the same command restarts
    _assert_same(tmp_path / "r", reference)


def test_unwritable_output_directory_is_a_clear_error(tiny_cifar10, tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere chmod allows none: use a read-only mount
        out = "/sys/winolab-runs"
    else:
        (tmp_path / "ro").mkdir(mode=0o555)
        out = str(tmp_path / "ro" / "runs")
    args = _args(tiny_cifar10, tmp_path)
    args[args.index("--output-dir") + 1] = out
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "winolab-runs" in err or "ro/runs" in err
    assert "--output-dir" in err and "Traceback" not in err


def test_damaged_run_files_name_the_file_and_the_fix(tiny_cifar10, tmp_path, reference, capsys):
    assert main(_args(tiny_cifar10, tmp_path, "r", "--stop-after-steps", "4")) == 0
    run_dir = tmp_path / "r"
    resume = ["train", "--resume", str(run_dir), "--no-progress"]
    config = (run_dir / "config.json").read_bytes()
    for damaged in (config[: len(config) // 2], b"[1, 2]", b'{"data": 3}'):
        (run_dir / "config.json").write_bytes(damaged)
        assert main(resume) == 2
        err = capsys.readouterr().err
        assert "config.json" in err and "Traceback" not in err
    (run_dir / "config.json").write_bytes(config)
    ckpt = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(ckpt[: len(ckpt) // 2])
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "delete it" in err
    # the fix it names: without the checkpoint, --resume starts the run from its beginning
    (run_dir / "checkpoint.pt").unlink()
    assert main(resume) == 0
    _assert_same(run_dir, reference)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--lr", "nan"), ("--lr", "inf"), ("--lr", "-1"), ("--momentum", "nan"),
        ("--momentum", "1.5"), ("--weight-decay", "nan"), ("--weight-decay", "-1"),
        ("--lr-gamma", "nan"), ("--lr-gamma", "0"), ("--width", "inf"), ("--width", "nan"),
        ("--retrain-lr", "inf"), ("--label-smoothing", "nan"), ("--label-smoothing", "1"),
        ("--warmup", "2"), ("--densities", "nan"),
    ],
)  # fmt: skip
def test_non_finite_or_out_of_range_hyperparameters_are_refused(
    tiny_cifar10, tmp_path, capsys, flag, value
):
    assert main([*_args(tiny_cifar10, tmp_path), flag, value]) == 2
    err = capsys.readouterr().err
    assert flag.lstrip("-").replace("-", "_") in err and "Traceback" not in err
    assert not (tmp_path / "r").exists(), "a refused config claims no run directory"


def test_time_budget_must_be_positive(tiny_cifar10, tmp_path, capsys):
    for bad in ("0", "-5", "nan", "inf", "soon"):
        with pytest.raises(SystemExit):
            main([*_args(tiny_cifar10, tmp_path), "--time-budget", bad])
        assert "positive number of seconds" in capsys.readouterr().err


def test_config_types_are_checked():
    for field, value in [("batchnorm", "yes"), ("epochs", 2.5), ("seed", True), ("lr", "0.1")]:
        with pytest.raises(ValueError, match=field):
            train.TrainConfig(data="x", **{field: value})
    assert train.TrainConfig(data=train.Path("/d/c.zip")).data == "/d/c.zip"


def test_old_configs_read_with_their_recipe():
    # a config.json of the first recorded runs has no precision or label smoothing
    old = json.loads(json.dumps(train._config_json(train.TrainConfig(data="x"))))
    for key in train.LEGACY_DEFAULTS:
        del old[key]
    config = train.TrainConfig.from_dict(old)
    assert config.precision == "fp32" and config.label_smoothing == 0.0
