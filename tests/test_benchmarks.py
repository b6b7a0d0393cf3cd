"""The benchmark scripts run and write what their readers expect: the tiniest real run of
``benchmarks/bench_sparse.py`` and ``benchmarks/bench_train_step.py``, in process. No times
are asserted (this machine is shared); the counts, the error against torch and the
provenance fields are."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from winolab.testing import tolerance

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("torch")
pytest.importorskip("numba")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def keep_threads():
    # the scripts set numba's and torch's thread counts for the whole process
    import numba
    import torch

    n, t = numba.get_num_threads(), torch.get_num_threads()
    yield
    numba.set_num_threads(n)
    torch.set_num_threads(t)


def test_bench_sparse_quick_row_and_provenance(tmp_path, keep_threads, capsys):
    out = tmp_path / "bench.json"
    args = ["--quick", "--layers", "conv6", "--batches", "1", "--rounds", "1", "--densities",
            "0.1", "--threads", "1", "--json", str(out)]  # fmt: skip
    assert _load("bench_sparse").main(args) == 0
    assert "conv6" in capsys.readouterr().out
    rec = json.loads(out.read_text())
    (row,) = rec["rows"]
    assert (row["layer"], row["C"], row["K"], row["H"], row["batch"], row["m"]) == (
        "conv6", 256, 256, 8, 1, 2)
    # the kernel's own count: every nonzero of U times the 4 x 4 tiles of one 8 x 8 map
    nnz = round(row["nnz_density"] * 256 * 256 * 16)
    assert row["multiplies"] == nnz * 16
    assert abs(row["nnz_density"] - 0.1) < 1e-3
    assert row["direct_multiplies"] == 256 * 256 * 9 * 64
    # two float32 convolutions, each within its bound of the exact one
    assert row["rel_err_dense_vs_torch"] <= 2 * tolerance(2, dtype="float32")
    assert row["ms_winolab"] > 0 and row["ms_torch"] > 0 and row["speedup"] > 0
    prov = rec["provenance"]
    assert (prov["m"], prov["threads_numba"], prov["threads_torch"]) == (2, 1, 1)
    assert prov["clock"] == "perf_counter" and prov["dtype"] == "float32"
    assert prov["cpu_model"] and set(prov["load_average"]) == {"start", "end"}
    assert prov["command"].startswith("python benchmarks/bench_sparse.py --quick")


def test_bench_train_step_writes_steps_speedups_and_provenance(tmp_path, keep_threads):
    out = tmp_path / "step.json"
    variants = "spatial-fp32-nchw,spatial-fp32-cl,winograd_relu-fp32-nchw,winograd_relu-bf16-cl"
    args = ["--width", "0.125", "--batch", "4", "--rounds", "2", "--warmup", "0",
            "--variants", variants, "--json", str(out)]  # fmt: skip
    assert _load("bench_train_step").main(args) == 0
    rec = json.loads(out.read_text())
    assert (rec["batch"], rec["width"], rec["model"], rec["m"]) == (4, 0.125, "vgg-nagadomi", 2)
    assert set(rec["median_step_s"]) == set(variants.split(","))
    assert all(len(v) == 2 and min(v) > 0 for v in rec["round_step_s"].values())
    # speed-ups against the same architecture's fp32 NCHW step, round by round
    assert set(rec["round_speedups"]) == {"spatial-fp32-cl", "winograd_relu-bf16-cl"}
    for v, ratios in rec["round_speedups"].items():
        base = rec["round_step_s"][v.split("-")[0] + "-fp32-nchw"]
        steps = rec["round_step_s"][v]
        assert ratios == pytest.approx([b / a for a, b in zip(steps, base, strict=True)])
    prov = rec["provenance"]
    assert prov["threads"] == 1 and prov["cpu"]["model"] and "isa" in prov["cpu"]
    assert len(prov["load_average_1_5_15"]) == 3
