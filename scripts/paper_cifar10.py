"""The paper-scale CIFAR-10 study, as chains of runs that each fit in one session.

VGG-nagadomi on all 50,000 training images of ``../shared/data/cifar10-jpeg.zip``, evaluated on
all 10,000 test images, with the fast recipe (batch 256, linear warm-up to the peak lr over the
first 15% of each phase's steps then linear decay to 0, updated every step; label smoothing 0.2;
flip + 4-pixel translation; ``--precision auto``, which is bf16 autocast where
``results/bench_train_step.json`` measured it to pay on this CPU).

The width is 0.5 by default, the study's stated fallback. Full width does not fit: a session
lasts three hours and its background jobs and ``~/.cache`` are gone afterwards (measured: the
run directories of one session were not there in the next), so a dense run and the sweep that
prunes it must finish inside one session; at full width 30 epochs of the fastest network take
3.1 hours on one core (1.91 s per step of 256 images, ``results/bench_train_step.json``).

One chain per network and seed, ``{spatial,winograd,winograd_relu}-s{0,1,2}``:

- ``dense-<arch>-s<seed>``: the dense baseline of Liu et al.'s Figure 1, 30 epochs at peak lr 0.2;
- ``{han,li,liu}-d{80,60,40,30,20,10}-s<seed>``: its pruning sweep (spatial/Han, Winograd-native/Li,
  Winograd-ReLU/Liu), each density pruned from the step before it and retrained for 3 epochs on
  its own short schedule (peak lr 0.02); seeds 1 and 2 stop at 40%, so the densities where the
  papers draw their conclusions (80%, 60% and 40%) have three seeds, each compared with its own
  seed's dense model;
- chain ``spatial-s1`` ends with ``yu-spatial-s1`` (structured spatial pruning to Winograd-domain
  densities 0.6 then 0.4, F(4x4, 3x3)) and ``yu-winograd-s1`` (the importance-factor Winograd
  stage to 0.37 at Yu et al.'s lr 1e-6, float32 since F(4x4)'s transforms are not exact in
  bfloat16).

Two single-thread chains run side by side (the Winograd-ReLU chains, twice as slow, run alone on
two threads)::

    python scripts/paper_cifar10.py plan                  # steps, chains and estimated hours
    python scripts/paper_cifar10.py chain spatial-s0 --commit &
    python scripts/paper_cifar10.py chain winograd-s0 --commit &
    python scripts/paper_cifar10.py status                # finished, started, pending

Run directories live in ``~/.cache/winolab/runs/paper-cifar10-w0.5/<step>`` (outside the
repository); every command is resumable while they last: rerun it and it continues from the
last checkpoint. A chain runs its steps in order, each as a ``python -m winolab train``
subprocess with ``--time-budget`` set to what is left of the chain's budget. A finished step's
``result.json`` is copied (atomically, never over an existing file) to
``results/cifar10-paper-w0.5/<step>.json`` in ``--repo`` (default: this checkout) with the
step's provenance, and committed there with ``--commit`` so that no finished run is lost. To
keep a long chain safe from edits to the working tree, run it from a ``git worktree`` of a fixed
commit with ``--repo`` pointing at the main checkout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.zip"
RUNS = Path("~/.cache/winolab/runs/paper-cifar10").expanduser()
REPO = ROOT  # the checkout that receives the results (--repo)
RESULTS = REPO / "results" / "cifar10-paper-w0.5"
# measured step times (one thread): full width, all variants; width 0.5, the recipe's variants
BENCHES = (ROOT / "results" / "bench_train_step.json",
           ROOT / "results" / "bench_train_step_w0.5.json")  # fmt: skip
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000

RECIPE = {
    "model": "vgg-nagadomi", "width": 0.5, "batch_size": 256, "lr_schedule": "linear",
    "warmup": 0.15, "label_smoothing": 0.2, "augment": True, "precision": "auto",
    "device": "cpu", "stats_images": 1000, "momentum": 0.9, "weight_decay": 5e-4,
}  # fmt: skip
DENSE = {"epochs": 30, "lr": 0.2}
RETRAIN = {"epochs": 0, "retrain_epochs": 3, "retrain_lr": 0.02}
SWEEP = (0.8, 0.6, 0.4, 0.3, 0.2, 0.1)
KEY_DENSITIES = (0.8, 0.6, 0.4)  # seeds 1 and 2 (the chain to 40%)
METHODS = (("han", "spatial", "spatial"), ("li", "winograd", "li"),
           ("liu", "winograd_relu", "liu"))  # fmt: skip


def plan() -> list[dict]:
    """The steps: ``{"name", "init", "chain", "config"}`` in the order each chain runs them."""
    steps = []
    for seed in (0, 1, 2):
        for method, arch, rule in METHODS:
            chain = f"{arch}-s{seed}"
            dense = f"dense-{arch}-s{seed}"
            steps.append({"name": dense, "init": None, "chain": chain,
                          "config": {"architecture": arch, "seed": seed, **DENSE}})  # fmt: skip
            prev = dense
            for i, d in enumerate(SWEEP if seed == 0 else KEY_DENSITIES):
                name = f"{method}-d{round(d * 100)}-s{seed}"
                # a chained step restarts its epoch count: another seed for its batch order,
                # so that it does not replay the epochs of the step it starts from
                steps.append({"name": name, "init": prev, "chain": chain, "config": {
                    "architecture": arch, "method": rule, "densities": (d,),
                    "seed": seed + 100 * (i + 1), **RETRAIN}})  # fmt: skip
                prev = name
    yu = {"architecture": "spatial", "method": "yu", "m": 4, **RETRAIN}
    steps.append({"name": "yu-spatial-s1", "init": "dense-spatial-s1", "chain": "spatial-s1",
                  "config": {**yu, "densities": (0.6, 0.4), "seed": 901}})  # fmt: skip
    steps.append({"name": "yu-winograd-s1", "init": "yu-spatial-s1", "chain": "spatial-s1",
                  "config": {**yu, "densities": (0.37,), "winograd_from": 0, "seed": 902,
                             "retrain_lr": 1e-6, "precision": "fp32"}})  # fmt: skip
    return steps


def _value(v) -> str:
    return ",".join(f"{x:g}" for x in v) if isinstance(v, tuple) else str(v)


def command(step: dict, runs: Path = RUNS, data: Path = DATA) -> list[str]:
    """The ``python -m winolab train`` arguments that start ``step``."""
    config = {**RECIPE, **step["config"]}
    args = ["train", "--data", str(data), "--output-dir", str(runs), "--run-name", step["name"]]
    if step["init"]:
        args += ["--init", str(runs / step["init"])]
    for key, value in config.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, _value(value)]
    return args


def step_seconds(benches: list[dict], arch: str, precision: str) -> float:
    """Seconds of one training step of ``arch`` at the recipe's batch and width (one thread),
    from the benchmark measured nearest the recipe's width that has this variant."""
    key = f"{arch}-{precision}-cl"
    have = [b for b in benches if key in b["median_step_s"]]
    bench = min(have, key=lambda b: abs(b.get("width", 1.0) - RECIPE["width"]))
    # per image at the measured batch; width w costs about w^2 (convolutions and FC layers)
    scale = (RECIPE["width"] / bench.get("width", 1.0)) ** 2
    return bench["median_step_s"][key] * RECIPE["batch_size"] / bench.get("batch", 128) * scale


def estimate(step: dict, bench: list[dict]) -> float:
    """Seconds: steps x measured step time, plus one fp32 test-set pass per epoch (a forward
    pass taken as a third of an fp32 training step)."""
    import torch

    from winolab.torch.train import resolve_precision

    cfg = {**RECIPE, **step["config"]}
    arch = cfg["architecture"]
    precision = cfg["precision"]
    if precision == "auto":
        precision = resolve_precision("auto", arch, torch.device("cpu"))[0]
    if cfg.get("m", 2) == 4:
        precision = "fp32"  # the F(4x4, 3x3) layers compute in float32 under autocast
    epochs = cfg["epochs"] + cfg.get("retrain_epochs", 0) * len(cfg.get("densities", ()))
    steps = epochs * math.ceil(TRAIN_IMAGES / cfg["batch_size"])
    evals = epochs * TEST_IMAGES / cfg["batch_size"] * step_seconds(bench, arch, "fp32") / 3
    return steps * step_seconds(bench, arch, precision) + evals


def _state(name: str, runs: Path) -> str:
    run_dir = runs / name
    if (RESULTS / f"{name}.json").exists():
        return "recorded"
    if (run_dir / "result.json").exists():
        return "finished"
    if (run_dir / "checkpoint.pt").exists():
        return "started"
    return "pending"


def print_plan(steps: list[dict], benches: list[dict], budget: float) -> None:
    for bench in benches:
        prov = bench.get("provenance", {})
        print(f"step times: width {bench.get('width', 1.0):g}, batch {bench.get('batch')}, "
              f"{prov.get('cpu', {}).get('model')}, {prov.get('threads')} thread, load "
              f"{prov.get('load_average_1_5_15', ['?'])[0]:.1f}, {prov.get('date')}")  # fmt: skip
    total = {}
    for s in steps:
        sec = estimate(s, benches)
        total[s["chain"]] = total.get(s["chain"], 0.0) + sec
        print(
            f"  {s['chain']:<16} {s['name']:<22} {sec / 3600:5.2f} h  <- {s['init'] or 'scratch'}"
        )
    for chain, sec in total.items():
        fits = "fits" if sec <= budget else "does NOT fit"
        print(f"chain {chain}: {sec / 3600:.2f} h, {fits} in a budget of {budget / 3600:.2f} h")
    print(f"all: {sum(total.values()) / 3600:.1f} core-hours (one thread per chain, alone)")


def record(step: dict, runs: Path, commit: bool) -> Path:
    """Copy a finished step's result into ``results/cifar10-paper`` (never overwriting)."""
    from winolab.torch.train import _write_json, read_json

    out = RESULTS / f"{step['name']}.json"
    if out.exists():
        return out
    result = read_json(runs / step["name"] / "result.json")
    result["reproduction"] = {
        "step": step["name"], "init_step": step["init"], "chain": step["chain"],
        "scale": f"VGG-nagadomi, width {RECIPE['width']:g}, all 50,000 training and 10,000 "
                 "test images of the "
                 "JPEG re-encoding of CIFAR-10 (../shared/data/cifar10-jpeg.zip); batch 256, "
                 "linear warm-up over 15% to lr 0.2 and linear decay, label smoothing 0.2, "
                 "flip + 4-pixel translation",
        "script": "python scripts/paper_cifar10.py " + " ".join(map(shlex.quote, sys.argv[1:])),
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    _write_json(out, result, overwrite=False)
    if commit:
        for _ in range(5):
            add = subprocess.run(["git", "-C", str(REPO), "add", str(out)])
            if (
                add.returncode == 0
                and subprocess.run(
                    [
                        "git",
                        "-C",
                        str(REPO),
                        "commit",
                        "-q",
                        "-m",
                        f"results: cifar10-paper {step['name']}",
                        "--",
                        str(out),
                    ]  # fmt: skip
                ).returncode
                == 0
            ):
                break
            time.sleep(2)  # another commit holds .git/index.lock
    return out


def run_chain(steps: list[dict], chain: str, budget: float, runs: Path, data: Path,
              commit: bool, threads: int) -> int:  # fmt: skip
    """Run the chain's steps in order within ``budget`` seconds; 0 when stopped or done."""
    start = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for step in (s for s in steps if s["chain"] == chain):
        if _state(step["name"], runs) == "recorded":
            continue
        if (runs / step["name"] / "result.json").exists():
            record(step, runs, commit)
            continue
        if step["init"] and not (runs / step["init"] / "result.json").exists():
            print(f"{step['name']}: waits for {step['init']} (another chain)", flush=True)
            return 0
        left = budget - (time.monotonic() - start)
        if left < 60:
            print(f"budget spent; rerun the same command to continue with {step['name']}")
            return 0
        run_dir = runs / step["name"]
        args = (["train", "--resume", str(run_dir)] if (run_dir / "config.json").exists()
                else command(step, runs, data))  # fmt: skip
        args += ["--time-budget", f"{left:.0f}", "--no-progress"]
        print(f"[{time.strftime('%H:%M:%S')}] {' '.join(map(shlex.quote, args))}", flush=True)
        done = subprocess.run([sys.executable, "-m", "winolab", *args], env=env)
        if done.returncode != 0:
            return done.returncode
        if not (run_dir / "result.json").exists():
            print("budget spent; rerun the same command to continue", flush=True)
            return 0
        record(step, runs, commit)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("plan", help="print the steps, chains and estimated times")
    sub.add_parser("status", help="print each step's state")
    c = sub.add_parser("chain", help="run (or continue) one chain of steps within a budget")
    c.add_argument("chain", choices=sorted({s["chain"] for s in plan()}))
    c.add_argument("--commit", action="store_true", help="git commit each recorded result")
    c.add_argument("--threads", type=int, default=1)
    for q in sub.choices.values():
        q.add_argument("--budget", type=float, default=8400.0,
                       help="seconds per session (default 2 h 20 min)")  # fmt: skip
        q.add_argument(
            "--runs",
            type=Path,
            default=None,
            help=f"run directories (default {RUNS}-w<width>)",
        )
        q.add_argument(
            "--width",
            type=float,
            default=RECIPE["width"],
            help="channel width (default 0.5: full width does not fit a session)",
        )
        q.add_argument(
            "--repo",
            type=Path,
            default=ROOT,
            help="the checkout that receives and commits the results",
        )
        q.add_argument("--data", type=Path, default=DATA)
    args = p.parse_args(argv)
    global REPO, RESULTS
    RECIPE["width"] = args.width
    REPO = args.repo.resolve()
    RESULTS = REPO / "results" / f"cifar10-paper-w{args.width:g}"
    if args.runs is None:
        args.runs = RUNS.with_name(f"{RUNS.name}-w{args.width:g}")
    steps = plan()
    if args.what == "plan":
        print_plan(steps, [json.loads(b.read_text()) for b in BENCHES], args.budget)
        for s in steps[:1]:
            print("first command:", "python -m winolab", " ".join(command(s, args.runs)))
        return 0
    if args.what == "status":
        for s in steps:
            print(f"{s['chain']}  {s['name']:<22} {_state(s['name'], args.runs)}")
        return 0
    return run_chain(steps, args.chain, args.budget, args.runs, args.data, args.commit,
                     args.threads)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
