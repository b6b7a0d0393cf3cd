"""Run the CIFAR-10 reproduction at the reduced scale below, one run at a time.

Every step is a ``winolab.torch.train.run`` (the same as ``python -m winolab train``) in
``runs/cifar10/<step>``; a finished step's ``result.json`` is copied to
``results/cifar10/<step>.json`` with the scale and this script's command added. Pruning
sweeps are chains of steps, each starting from the model of the step before it (``init``), so
every density of a sweep gets its own result (per-layer weight and activation densities,
multiplication count). Re-running the script skips finished steps and resumes an interrupted
one from its checkpoint, so a killed run loses at most one epoch::

    nohup python scripts/reproduce_cifar10.py --commit > runs/reproduce.log 2>&1 &

Steps, in the order they run (the most important comparisons first):

- ``dense-{spatial,winograd_relu,winograd}``: dense baselines of Liu et al.'s Figure 1 (a, c, b),
  each trained in its own domain, F(2x2, 3x3); each runs just before its sweep;
- ``liu-d{80,60,40,20,10,5}``: the Winograd-ReLU network pruned in the Winograd domain (Liu et al.);
- ``han-d{80,60,40,20,10,5}``: the spatial network pruned in the spatial domain (Han et al.);
- ``yu-spatial``, ``yu-winograd``: Yu et al.'s structured spatial pruning from the dense
  spatial network (Winograd-domain densities 0.6 then 0.4, F(4x4, 3x3)), then the
  importance-factor Winograd stage to density 0.37 (their 63% sparsity step), retrained at
  lr 1e-3 (``yu-winograd``, which collapses) and at Yu et al.'s 1e-6 (``yu-winograd-lr1e-6``);
- ``li-d{80,60,40,20,10,5}``: the Winograd network pruned natively (Li et al.'s rule);
- ``control-<architecture>``: the dense baseline trained on, unpruned, for as many epochs at
  the retraining lr as its sweep had (the sweeps' accuracy gains are partly this training);
- ``{liu,han,li}-sweep``: each sweep again as one run (accuracy after every step in its
  history; densities and counts only at the end), whose retraining epochs are all different.

Torch runs single-threaded by default: on the shared 2-core machine two threads ran a
Winograd training step 18x slower than one (4.18 s against 0.23 s per batch of 64 at width
0.125, with the load average near 8).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from winolab.methods import BY_STEP

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.zip"
SWEEP = (0.8, 0.6, 0.4, 0.2, 0.1, 0.05)

# the reduced scale, the same for every architecture and method
SCALE = {
    "model": "vgg-nagadomi",
    "width": 0.25,
    "subset": 10_000,
    "test_subset": 2_000,
    "batch_size": 64,
    "seed": 0,
    "stats_images": 500,
    "device": "cpu",
    # the recipe of these runs, pinned now that TrainConfig's defaults are the fast recipe
    # (scripts/paper_cifar10.py): per-epoch multistep lr, no label smoothing, float32
    "lr_schedule": "multistep",
    "label_smoothing": 0.0,
    "precision": "fp32",
}
DENSE = {"epochs": 12, "lr": 0.05, "lr_milestones": (8, 11)}
RETRAIN = {"epochs": 0, "lr": 0.1, "retrain_epochs": 1, "retrain_lr": 0.01,
           "retrain_milestones": ()}  # fmt: skip


def plan() -> list[dict]:
    """The steps: ``{"name", "init" (a step name or None), "config" (TrainConfig fields)}``."""
    steps = []
    for method in ("liu", "han", "li"):
        arch, flag = BY_STEP[method].architecture, BY_STEP[method].flag
        prev = f"dense-{arch}"
        steps.append({"name": prev, "init": None, "config": {"architecture": arch, **DENSE}})
        for d in SWEEP:
            name = f"{method}-d{round(d * 100)}"
            steps.append({"name": name, "init": prev, "config": {
                "architecture": arch, "method": flag,
                "densities": (d,), **RETRAIN}})  # fmt: skip
            prev = name
        if method == "han":  # Yu et al. start from the dense spatial network too
            yu = {"architecture": "spatial", "method": "yu", "m": 4, **RETRAIN}
            steps.append({"name": "yu-spatial", "init": "dense-spatial",
                          "config": {**yu, "densities": (0.6, 0.4)}})  # fmt: skip
            steps.append({"name": "yu-winograd", "init": "yu-spatial",
                          "config": {**yu, "densities": (0.37,), "winograd_from": 0,
                                     "retrain_lr": 0.001}})  # fmt: skip
            # lr 1e-3 wrecked the Winograd-domain retraining (U-space steps are too large
            # for F(4x4, 3x3)); Yu et al. retrain this stage at 1e-6
            steps.append({"name": "yu-winograd-lr1e-6", "init": "yu-spatial",
                          "config": {**yu, "densities": (0.37,), "winograd_from": 0,
                                     "retrain_lr": 1e-6}})  # fmt: skip
    # the dense spatial run (already under way when this order was chosen) goes first
    steps.sort(key=lambda s: s["name"] != "dense-spatial")
    # control: as many more epochs at the retraining lr as a whole sweep, without pruning, to
    # separate what pruning costs from what the extra training gains
    for arch in ("winograd_relu", "spatial", "winograd"):
        steps.append({"name": f"control-{arch}", "init": f"dense-{arch}", "config": {
            "architecture": arch, "epochs": len(SWEEP) * RETRAIN["retrain_epochs"],
            "lr": RETRAIN["retrain_lr"], "lr_milestones": ()}})  # fmt: skip
    # each chained step restarts its epoch count, so it retrains on the same shuffled and
    # augmented epoch 0 as the step before; one run per sweep sees new epochs at every step
    for method in ("liu", "han", "li"):
        arch = BY_STEP[method].architecture
        steps.append({"name": f"{method}-sweep", "init": f"dense-{arch}", "config": {
            "architecture": arch, "method": BY_STEP[method].flag,
            "densities": SWEEP, **RETRAIN}})  # fmt: skip
    return steps


def scale_text() -> str:
    """The scale in words, stored in every result."""
    return (f"{SCALE['model']} at width {SCALE['width']:g}, trained on a class-balanced "
            f"{SCALE['subset']}-image subset of the CIFAR-10 training set and evaluated on a "
            f"class-balanced {SCALE['test_subset']}-image subset of the test set; "
            f"{DENSE['epochs']} dense epochs, {RETRAIN['retrain_epochs']} epochs of masked "
            f"retraining per pruning step; batch {SCALE['batch_size']}; CPU, single thread. "
            "Data: JPEG re-encoding of CIFAR-10 (shared/data/cifar10-jpeg.zip), not the "
            "official files")  # fmt: skip


def run_step(step: dict, runs: Path, results: Path, data: Path, commit: bool) -> Path:
    """Run (or resume, or just collect) one step; returns its results JSON."""
    from winolab.torch.train import TrainConfig, _atomic_write, run

    out = results / f"{step['name']}.json"
    if out.exists():
        return out
    run_dir = runs / step["name"]
    started = time.strftime("%H:%M:%S")
    if not (run_dir / "result.json").exists():
        if (run_dir / "checkpoint.pt").exists():
            print(f"[{started}] resume {step['name']}", flush=True)
            run(resume=run_dir, progress=False)
        else:  # a run killed before its first checkpoint restarts in its directory
            init = None if step["init"] is None else str(runs / step["init"])
            config = TrainConfig(data=str(data), output_dir=str(runs), run_name=step["name"],
                                 init=init, **SCALE, **step["config"])  # fmt: skip
            print(f"[{started}] start {step['name']}", flush=True)
            run(config, progress=False)
    result = json.loads((run_dir / "result.json").read_text())
    result["reproduction"] = {
        "step": step["name"],
        "init_step": step["init"],
        "scale": scale_text(),
        "script": "python scripts/reproduce_cifar10.py " + " ".join(map(shlex.quote,
                                                                       sys.argv[1:])),
    }
    results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1) + "\n"
    _atomic_write(out, lambda f: f.write(text.encode()), overwrite=False)
    print(f"[{time.strftime('%H:%M:%S')}] done {step['name']}: accuracy "
          f"{result['accuracy']:.4f}, {result['wall_time_s']:.0f} s", flush=True)
    # the summary table, README snippet and figures follow every new result
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import update_results

    readme = results.parent / "README_table.md"
    update_results.write_reduced(results, readme)
    update_results.write_readme()
    made = [out, readme, results / "summary.md", results / "accuracy_vs_density.png",
            results / "activation_density.png"]
    if commit:
        files = [str(f) for f in made]
        for _ in range(5):
            add = subprocess.run(["git", "-C", str(ROOT), "add", *files])
            done = add.returncode == 0 and subprocess.run(
                ["git", "-C", str(ROOT), "commit", "-q", "-m",
                 f"results: cifar10 {step['name']}", "--", *files]).returncode == 0
            if done:
                break
            time.sleep(2)  # another engineer's commit holds .git/index.lock
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "cifar10")
    p.add_argument("--results", type=Path, default=ROOT / "results" / "cifar10")
    p.add_argument("--only", nargs="*", help="step names to run (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--commit", action="store_true", help="git commit each result JSON")
    p.add_argument("--list", action="store_true", help="print the plan and exit")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny scale (128 images, 1 epoch per step) to check the plan runs")
    args = p.parse_args(argv)
    if args.smoke:
        SCALE.update(subset=128, test_subset=128, stats_images=64)
        DENSE.update(epochs=1, lr_milestones=())
        RETRAIN.update(retrain_epochs=1, retrain_milestones=())
    steps = [s for s in plan() if not args.only or s["name"] in args.only]
    if args.list:
        for s in steps:
            print(s["name"], "<-", s["init"], json.dumps(s["config"]))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    for step in steps:
        run_step(step, args.runs, args.results, args.data, args.commit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
