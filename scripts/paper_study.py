"""The driver of the paper-scale studies: a study as chains of runs that each fit in one session.

A :class:`Study` says which network trains on which data, at which width and for how long, and
which pruning sweeps follow its dense baselines; ``scripts/paper_cifar10.py`` and
``scripts/paper_cifar100.py`` are two instances with the same three commands::

    python scripts/paper_<study>.py plan        # steps, chains, estimated hours vs the budget
    python scripts/paper_<study>.py chain spatial-s0 --commit &
    python scripts/paper_<study>.py status      # recorded, finished, started, pending

Every run uses the fast recipe (batch 256, linear warm-up to the peak lr over the first 15% of
each phase's steps then linear decay to 0, updated every step; label smoothing 0.2; flip +
4-pixel translation; ``--precision auto``, which is bf16 autocast where
``results/bench_train_step.json`` measured it to pay on this CPU), on all training images, and
is evaluated on all test images.

One chain per architecture and seed, ``<architecture>-s<seed>``:

- ``dense-<architecture>-s<seed>``: the dense baseline (Liu et al.'s Figure 1);
- ``<method>-d<percent>-s<seed>``: its pruning sweep, each density pruned from the step before
  it and retrained on its own short schedule;
- optionally ``yu-spatial-s<seed>`` (structured spatial pruning to Winograd-domain densities,
  F(4x4, 3x3)) and ``yu-winograd-s<seed>`` (the importance-factor Winograd stage at Yu et al.'s
  lr 1e-6, float32 since F(4x4)'s transforms are not exact in bfloat16), from the spatial dense
  model of their seed, at the end of the chain the study names.

Run directories live in ``~/.cache/winolab/runs/paper-<study>-w<width>/<step>`` (outside the
repository); every command is resumable while they last: rerun it and it continues from the
last checkpoint. A chain runs its steps in order, each as a ``python -m winolab train``
subprocess with ``--time-budget`` set to what is left of the chain's budget; a step whose
``--init`` belongs to another chain waits (the chain stops) until that chain has finished it. A
step whose ``--init`` is recorded but whose run directory this machine no longer has (a fresh
machine, a cleared cache) first rebuilds it: the chain reruns the recorded step with the same
command and seed into its run directory, prints the rebuilt accuracy next to the recorded one,
and never re-records it; the step trained from it says so in its record. A
finished step's ``result.json`` is copied (atomically, never over an existing file) to
``results/<study>-paper-w<width>/<step>.json`` in ``--repo`` (default: this checkout) with the
step's provenance, and committed there with ``--commit`` so that no finished run is lost. To
keep a long chain safe from edits to the working tree, run it from a ``git worktree`` of a fixed
commit with ``--repo`` pointing at the main checkout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from winolab.methods import BY_STEP

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
RUNS = Path("~/.cache/winolab/runs").expanduser()

#: the fast recipe of every run (the network and the width come from the study)
RECIPE = {
    "batch_size": 256, "lr_schedule": "linear", "warmup": 0.15, "label_smoothing": 0.2,
    "augment": True, "precision": "auto", "device": "cpu", "stats_images": 1000,
    "momentum": 0.9, "weight_decay": 5e-4,
}  # fmt: skip


@dataclass(frozen=True)
class Yu:
    """Yu et al.'s two stages from ``dense-spatial-s<seed>``, at the end of ``chain``."""

    seed: int
    chain: str
    spatial: tuple[float, ...]  # Winograd-domain densities of the structured spatial prunes
    winograd: tuple[float, ...]  # densities of the Winograd-domain stage
    lr: float = 1e-6


@dataclass(frozen=True)
class PerLayer:
    """Sensitivity-chosen per-layer densities against one uniform density at equal cost.

    Two one-shot prunes of ``dense-spatial-s<seed>`` (Han's rule, the study's retraining, the
    same batch order), at the end of ``chain``: ``oneshot-d<average>`` prunes every layer to
    ``average``; ``sensitivity-d<average>`` gives each layer the density
    :func:`winolab.torch.sensitivity.allocate` picks from the recorded ``sensitivity`` table so
    that the layers' dense multiplies, weighted by density, average ``average`` too.
    """

    seed: int
    chain: str
    average: float
    sensitivity: Path  # a JSON of scripts/sensitivity.py

    def layer_densities(self, network: str) -> dict[str, float]:
        from winolab import counting
        from winolab.torch.sensitivity import Sensitivity, allocate

        sens = Sensitivity.from_dict(json.loads(self.sensitivity.read_text()))
        return allocate(sens, counting.get_network(network).pruned_multiplies, self.average)


@dataclass(frozen=True)
class Study:
    """One paper-scale study: what trains, on what, and which sweeps follow."""

    name: str  # results/<name>-paper-w<width>/, runs paper-<name>-w<width>
    network: str
    data: Path
    scale: str  # how a recorded result describes the runs; ``{width}`` is filled in
    benches: tuple[Path, ...]  # measured step times (one thread) of this network
    sweeps: tuple[str, ...]  # step prefixes of winolab.methods.PRUNING_METHODS: han, li, liu
    densities: tuple[tuple[float, ...], ...]  # seed i sweeps densities[i]
    architectures: tuple[str, ...] = ("spatial", "winograd", "winograd_relu")
    width: float = 0.5
    dense_epochs: int = 30
    dense_lr: float = 0.2
    retrain_epochs: int = 3
    retrain_lr: float = 0.02
    yu: Yu | None = None
    per_layer: PerLayer | None = None
    continued: tuple[int, ...] = ()  # seeds whose dense spatial model also retrains unpruned
    m4: tuple[float, ...] = ()  # Liu sweep of an F(4x4, 3x3) Winograd-ReLU network, seed 0
    train_images: int = 50_000
    test_images: int = 10_000

    @property
    def script(self) -> str:
        return f"scripts/paper_{self.name}.py"

    def results(self, repo: Path = ROOT) -> Path:
        return repo / "results" / f"{self.name}-paper-w{self.width:g}"

    def runs(self) -> Path:
        return RUNS / f"paper-{self.name}-w{self.width:g}"

    def recipe(self) -> dict:
        return {"model": self.network, "width": self.width, **RECIPE}


def plan(study: Study) -> list[dict]:
    """The steps: ``{"name", "init", "chain", "config"}`` in the order each chain runs them."""
    steps = []
    rows = [BY_STEP[prefix] for prefix in study.sweeps]
    sweeps = {row.architecture: (row.step, row.flag) for row in rows}
    retrain = {"epochs": 0, "retrain_epochs": study.retrain_epochs,
               "retrain_lr": study.retrain_lr}  # fmt: skip
    for seed, densities in enumerate(study.densities):
        for arch in study.architectures:
            chain = f"{arch}-s{seed}"
            dense = f"dense-{arch}-s{seed}"
            steps.append({"name": dense, "init": None, "chain": chain, "config": {
                "architecture": arch, "seed": seed, "epochs": study.dense_epochs,
                "lr": study.dense_lr}})  # fmt: skip
            if arch not in sweeps:
                continue
            method, rule = sweeps[arch]
            prev = dense
            for i, d in enumerate(densities):
                name = f"{method}-d{round(d * 100)}-s{seed}"
                # a chained step restarts its epoch count: another seed for its batch order,
                # so that it does not replay the epochs of the step it starts from
                steps.append({"name": name, "init": prev, "chain": chain, "config": {
                    "architecture": arch, "method": rule, "densities": (d,),
                    "seed": seed + 100 * (i + 1), **retrain}})  # fmt: skip
                prev = name
    if study.yu is not None:
        yu, s = study.yu, study.yu.seed
        base = {"architecture": "spatial", "method": "yu", "m": 4, **retrain}
        steps.append({"name": f"yu-spatial-s{s}", "init": f"dense-spatial-s{s}",
                      "chain": yu.chain,
                      "config": {**base, "densities": yu.spatial, "seed": 901}})  # fmt: skip
        steps.append({"name": f"yu-winograd-s{s}", "init": f"yu-spatial-s{s}", "chain": yu.chain,
                      "config": {**base, "densities": yu.winograd, "winograd_from": 0,
                                 "seed": 902, "retrain_lr": yu.lr,
                                 "precision": "fp32"}})  # fmt: skip
    for seed in study.continued:
        # the retraining of han-d80 (same seed, same batch order) with nothing pruned: what
        # the extra epochs alone change
        steps.append({"name": f"continued-spatial-s{seed}", "init": f"dense-spatial-s{seed}",
                      "chain": f"spatial-s{seed}", "config": {
                          "architecture": "spatial", "method": "spatial", "densities": (1.0,),
                          "seed": seed + 100, **retrain}})  # fmt: skip
    if study.m4:
        # Winograd-ReLU with F(4x4, 3x3), the papers' future work: its own dense model and a
        # Liu sweep with the F(2x2) sweep's seeds (the same batch orders)
        chain, base = "winograd_relu_m4-s0", {"architecture": "winograd_relu", "m": 4}
        prev = "dense-winograd_relu-m4-s0"
        steps.append({"name": prev, "init": None, "chain": chain, "config": {
            **base, "seed": 0, "epochs": study.dense_epochs, "lr": study.dense_lr}})  # fmt: skip
        for i, d in enumerate(study.m4):
            name = f"liu-m4-d{round(d * 100)}-s0"
            steps.append({"name": name, "init": prev, "chain": chain, "config": {
                **base, "method": "liu", "densities": (d,), "seed": 100 * (i + 1), **retrain}})
            prev = name
    if study.per_layer is not None:
        pl, pct = study.per_layer, round(100 * study.per_layer.average)
        base = {"architecture": "spatial", "method": "spatial", "seed": 903, **retrain}
        for name, prune in ((f"oneshot-d{pct}-s{pl.seed}", {"densities": (pl.average,)}),
                            (f"sensitivity-d{pct}-s{pl.seed}",
                             {"layer_densities": pl.layer_densities(study.network)})):
            steps.append({"name": name, "init": f"dense-spatial-s{pl.seed}", "chain": pl.chain,
                          "config": {**base, **prune}})  # fmt: skip
    return steps


def _value(v) -> str:
    if isinstance(v, dict):
        from winolab.torch.cli import format_layer_map

        return format_layer_map(v)
    return ",".join(f"{x:g}" for x in v) if isinstance(v, tuple) else str(v)


def command(study: Study, step: dict, runs: Path, data: Path | None = None) -> list[str]:
    """The ``python -m winolab train`` arguments that start ``step``."""
    config = {**study.recipe(), **step["config"]}
    args = ["train", "--data", str(data or study.data), "--output-dir", str(runs),
            "--run-name", step["name"]]  # fmt: skip
    if step["init"]:
        args += ["--init", str(runs / step["init"])]
    for key, value in config.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, _value(value)]
    return args


def step_seconds(study: Study, benches: list[dict], arch: str, precision: str,
                 m: int = 2) -> float:  # fmt: skip
    """Seconds of one training step of ``arch`` at the recipe's batch and the study's width
    (one thread), from the benchmark of the study's network measured nearest that width that
    has this variant, with F(m x m, 3 x 3) layers where one was measured (else F(2x2, 3x3)'s)."""
    key = f"{arch}-{precision}-cl"
    have = [
        b
        for b in benches
        if key in b["median_step_s"] and b.get("model", "vgg-nagadomi") == study.network
    ]
    have = [b for b in have if b.get("m", 2) == m] or [b for b in have if b.get("m", 2) == 2]
    if not have:
        raise ValueError(f"no benchmark of {study.network} measured {key}")
    bench = min(have, key=lambda b: abs(b.get("width", 1.0) - study.width))
    # per image at the measured batch; width w costs about w^2 (convolutions and FC layers)
    scale = (study.width / bench.get("width", 1.0)) ** 2
    return bench["median_step_s"][key] * RECIPE["batch_size"] / bench.get("batch", 128) * scale


def estimate(study: Study, step: dict, benches: list[dict]) -> float:
    """Seconds: steps x measured step time, plus one fp32 test-set pass per epoch (a forward
    pass taken as a third of an fp32 training step, or of a training step at the run's
    precision where fp32 was not measured)."""
    import torch

    from winolab.torch.train import resolve_precision

    cfg = {**study.recipe(), **step["config"]}
    arch = cfg["architecture"]
    precision = cfg["precision"]
    if precision == "auto":
        precision = resolve_precision("auto", arch, torch.device("cpu"))[0]
    m = cfg.get("m", 2)
    if m == 4 and not any(b.get("m", 2) == 4 for b in benches):
        # no F(4x4) benchmark: its layers compute in float32 under autocast, so F(2x2)'s
        # float32 step stands in
        precision = "fp32"
    prunes = len(cfg.get("densities", ())) + ("layer_densities" in cfg)
    epochs = cfg["epochs"] + cfg.get("retrain_epochs", 0) * prunes
    steps = epochs * math.ceil(study.train_images / cfg["batch_size"])
    train = step_seconds(study, benches, arch, precision, m)
    try:
        fp32 = step_seconds(study, benches, arch, "fp32", m)
    except ValueError:  # fp32 not measured for this variant: the training step stands in
        fp32 = train
    evals = epochs * study.test_images / cfg["batch_size"] * fp32 / 3
    return steps * train + evals


def state(name: str, runs: Path, results: Path) -> str:
    """``recorded``, ``finished``, ``started`` or ``pending``."""
    run_dir = runs / name
    if (results / f"{name}.json").exists():
        return "recorded"
    if (run_dir / "result.json").exists():
        return "finished"
    if (run_dir / "checkpoint.pt").exists():
        return "started"
    return "pending"


def to_run(steps: list[dict], chain: str, runs: Path, results: Path) -> list[tuple[dict, bool]]:
    """``(step, rebuild)`` pairs of what ``chain`` still runs, in order: its steps not recorded
    yet and, before them, every recorded step whose run directory a later one starts from and
    this machine no longer has (``rebuild``: rerun for its checkpoint, not recorded again)."""
    mine = [s for s in steps if s["chain"] == chain]
    by_name = {s["name"]: s for s in mine}
    names = {s["name"] for s in mine if state(s["name"], runs, results) != "recorded"}
    stack = list(names)
    while stack:
        init = by_name[stack.pop()]["init"]
        if (init in by_name and init not in names
                and not (runs / init / "result.json").exists()):  # fmt: skip
            names.add(init)
            stack.append(init)
    return [(s, state(s["name"], runs, results) == "recorded") for s in mine
            if s["name"] in names]  # fmt: skip


def chain_hours(study: Study, steps: list[dict], benches: list[dict]) -> dict[str, float]:
    """Estimated hours of each chain, in the order the plan names them."""
    total: dict[str, float] = {}
    for s in steps:
        total[s["chain"]] = total.get(s["chain"], 0.0) + estimate(study, s, benches) / 3600
    return total


def print_plan(study: Study, steps: list[dict], benches: list[dict], budget: float) -> None:
    for bench in benches:
        prov = bench.get("provenance", {})
        print(f"step times: {bench.get('model', 'vgg-nagadomi')}, width "
              f"{bench.get('width', 1.0):g}, batch {bench.get('batch')}, "
              f"{prov.get('cpu', {}).get('model')}, {prov.get('threads')} thread, load "
              f"{prov.get('load_average_1_5_15', ['?'])[0]:.1f}, {prov.get('date')}")  # fmt: skip
    for s in steps:
        sec = estimate(study, s, benches)
        print(
            f"  {s['chain']:<16} {s['name']:<22} {sec / 3600:5.2f} h  <- {s['init'] or 'scratch'}"
        )
    total = chain_hours(study, steps, benches)
    for chain, hours in total.items():
        fits = "fits" if hours * 3600 <= budget else "does NOT fit"
        print(f"chain {chain}: {hours:.2f} h, {fits} in a budget of {budget / 3600:.2f} h")
    print(f"all: {sum(total.values()):.1f} core-hours (one thread per chain, alone)")


def record(study: Study, step: dict, runs: Path, repo: Path, commit: bool) -> Path:
    """Copy a finished step's result into the study's results folder (never overwriting)."""
    from winolab.torch.train import _write_json, read_json

    results = study.results(repo)
    out = results / f"{step['name']}.json"
    if out.exists():
        return out
    result = read_json(runs / step["name"] / "result.json")
    result["reproduction"] = {
        "step": step["name"], "init_step": step["init"], "chain": step["chain"],
        "scale": study.scale.format(width=f"{study.width:g}"),
        "script": f"python {study.script} " + " ".join(map(shlex.quote, sys.argv[1:])),
    }  # fmt: skip
    rebuilt = _rebuilt(step["init"], runs, results) if step["init"] else None
    if rebuilt:  # trained from a rerun of its recorded init, not from the recorded run itself
        result["reproduction"]["init_rebuilt"] = rebuilt
    results.mkdir(parents=True, exist_ok=True)
    _write_json(out, result, overwrite=False)
    if commit:
        message = f"results: {study.name}-paper {step['name']}"
        for _ in range(5):
            git = ["git", "-C", str(repo)]
            if (subprocess.run([*git, "add", str(out)]).returncode == 0
                    and subprocess.run([*git, "commit", "-q", "-m", message, "--",
                                        str(out)]).returncode == 0):  # fmt: skip
                break
            time.sleep(2)  # another commit holds .git/index.lock
    return out


def _rebuilt(name: str, runs: Path, results: Path) -> dict | None:
    """How the run directory of recorded step ``name`` differs from its record, if it was
    rebuilt (another date); None when it is the recorded run or either file is missing."""
    from winolab.torch.train import read_json

    try:
        run, recorded = read_json(runs / name / "result.json"), read_json(results / f"{name}.json")
    except (OSError, ValueError):
        return None
    if run.get("date") == recorded.get("date"):
        return None
    return {"date": run.get("date"), "accuracy": run.get("accuracy"),
            "recorded_date": recorded.get("date"),
            "recorded_accuracy": recorded.get("accuracy")}  # fmt: skip


def run_chain(study: Study, steps: list[dict], chain: str, budget: float, runs: Path,
              data: Path, repo: Path, commit: bool, threads: int) -> int:  # fmt: skip
    """Run the chain's steps in order within ``budget`` seconds; 0 when stopped or done."""
    start = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    results = study.results(repo)
    for step, rebuild in to_run(steps, chain, runs, results):
        if not rebuild and (runs / step["name"] / "result.json").exists():
            record(study, step, runs, repo, commit)
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
                else command(study, step, runs, data))  # fmt: skip
        args += ["--time-budget", f"{left:.0f}", "--no-progress"]
        print(f"[{time.strftime('%H:%M:%S')}] {' '.join(map(shlex.quote, args))}", flush=True)
        done = subprocess.run([sys.executable, "-m", "winolab", *args], env=env)
        if done.returncode != 0:
            return done.returncode
        if not (run_dir / "result.json").exists():
            print("budget spent; rerun the same command to continue", flush=True)
            return 0
        if rebuild:
            r = _rebuilt(step["name"], runs, results) or {}
            print(f"{step['name']}: rebuilt its run directory; accuracy {r.get('accuracy')} "
                  f"(recorded {r.get('recorded_accuracy')}); the record stays", flush=True)
            continue
        record(study, step, runs, repo, commit)
    return 0


def main(study: Study, argv=None, description: str | None = None) -> int:
    """The ``plan``, ``status`` and ``chain`` commands of ``study``."""
    p = argparse.ArgumentParser(description=description or f"The paper-scale {study.name} study")
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("plan", help="print the steps, chains and estimated times")
    sub.add_parser("status", help="print each step's state")
    c = sub.add_parser("chain", help="run (or continue) one chain of steps within a budget")
    c.add_argument("chain", choices=sorted({s["chain"] for s in plan(study)}))
    c.add_argument("--commit", action="store_true", help="git commit each recorded result")
    c.add_argument("--threads", type=int, default=1)
    for q in sub.choices.values():
        q.add_argument("--budget", type=float, default=8400.0,
                       help="seconds per session (default 2 h 20 min)")  # fmt: skip
        q.add_argument("--runs", type=Path, default=None,
                       help=f"run directories (default {study.runs()})")  # fmt: skip
        q.add_argument("--width", type=float, default=study.width,
                       help=f"channel width (default {study.width:g})")  # fmt: skip
        q.add_argument("--repo", type=Path, default=ROOT,
                       help="the checkout that receives and commits the results")  # fmt: skip
        q.add_argument("--data", type=Path, default=study.data)
    args = p.parse_args(argv)
    study = dataclasses.replace(study, width=args.width)
    repo = args.repo.resolve()
    runs = args.runs if args.runs is not None else study.runs()
    steps = plan(study)
    if args.what == "plan":
        print_plan(study, steps, [json.loads(b.read_text()) for b in study.benches], args.budget)
        for s in steps[:1]:
            print("first command:", "python -m winolab", " ".join(command(study, s, runs)))
        return 0
    if args.what == "status":
        results = study.results(repo)
        rebuilds = {s["name"] for c in dict.fromkeys(s["chain"] for s in steps)
                    for s, rebuild in to_run(steps, c, runs, results) if rebuild}  # fmt: skip
        for s in steps:
            note = " (its run directory is gone: its chain reruns it first)" * (
                s["name"] in rebuilds)
            print(f"{s['chain']}  {s['name']:<22} {state(s['name'], runs, results)}{note}")
        return 0
    return run_chain(study, steps, args.chain, args.budget, runs, args.data, repo, args.commit,
                     args.threads)  # fmt: skip
