"""Training, pruning and masked retraining runs, with exact resume and a JSON result.

A run is a list of phases: dense training for ``epochs`` epochs, then for every density of the
schedule a prune to that density followed by ``retrain_epochs`` epochs of masked retraining
(each phase with its own SGD optimizer and learning-rate schedule). Every epoch ends with a
checkpoint written atomically into the run directory; :func:`run` with ``resume=`` continues from
it. Batch order and augmentation depend only on ``(seed, epoch)``
(:class:`~winolab.torch.data.BatchLoader`) and the checkpoint holds the RNG states, so on one
device a resumed run reaches the same parameters as one that was never interrupted.

>>> cfg = TrainConfig(data="cifar10.zip", epochs=2, densities=(0.6, 0.4), retrain_epochs=3,
...                   method="liu", architecture="winograd_relu")
>>> [(p.name, p.epochs) for p in cfg.phases()]
[('train', 2), ('prune 0.6', 3), ('prune 0.4', 3)]
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from winolab.torch import data as _data

__all__ = ["Phase", "TrainConfig", "run", "run_directory"]

Architecture = Literal["spatial", "winograd", "winograd_relu"]
PruneMethod = Literal["none", "spatial", "li", "liu", "yu"]
Schedule = Literal["constant", "step", "multistep"]
Device = Literal["auto", "cpu", "cuda"]


class Phase(NamedTuple):
    """One stage of a run: ``density`` None trains densely, a number prunes to it first."""

    name: str
    density: float | None
    epochs: int
    lr: float
    milestones: tuple[int, ...]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; saved as ``config.json`` in its directory.

    The help text of every field is in :data:`winolab.torch.cli.HELP`
    (``python -m winolab train --help``).
    """

    data: str
    model: str = "vgg-nagadomi"
    architecture: Architecture = "spatial"
    method: PruneMethod = "none"
    width: float = 1.0
    m: int = 2
    batchnorm: bool = True
    subset: int | None = None
    test_subset: int | None = None
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    lr_schedule: Schedule = "multistep"
    lr_milestones: tuple[int, ...] = ()
    lr_step: int = 30
    lr_gamma: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    densities: tuple[float, ...] = ()
    retrain_epochs: int = 0
    retrain_lr: float = 0.01
    retrain_milestones: tuple[int, ...] = ()
    winograd_from: int | None = None
    augment: bool = True
    seed: int = 0
    device: Device = "auto"
    init: str | None = None
    stats_images: int = 500
    output_dir: str = "runs"
    run_name: str | None = None

    def __post_init__(self):
        for name, kind in [
            ("architecture", Architecture),
            ("method", PruneMethod),
            ("lr_schedule", Schedule),
            ("device", Device),
        ]:
            if getattr(self, name) not in get_args(kind):
                raise ValueError(
                    f"{name} must be one of {get_args(kind)}, got {getattr(self, name)!r}"
                )
        for name in ("epochs", "retrain_epochs", "stats_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "lr_step", "subset", "test_subset"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if any(not 0.0 < d <= 1.0 for d in self.densities):
            raise ValueError(f"densities are fractions in (0, 1], got {self.densities}")
        if self.densities and self.method == "none":
            raise ValueError("a prune schedule (densities) needs a method: spatial, li, liu or yu")
        if self.method != "none" and not self.densities:
            raise ValueError(f"method {self.method!r} needs densities, e.g. densities=(0.6, 0.4)")
        if self.winograd_from is not None and (
            self.method != "yu" or not 0 <= self.winograd_from < len(self.densities)
        ):
            raise ValueError(
                "winograd_from is the index of a density of the schedule, for method 'yu' only"
            )
        if self.width <= 0 or self.lr <= 0 or self.retrain_lr <= 0:
            raise ValueError("width, lr and retrain_lr must be positive")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config of a ``config.json`` (lists become tuples again)."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def phases(self) -> list[Phase]:
        """Dense training (if ``epochs > 0`` or nothing else), then one phase per density."""
        dense = [Phase("train", None, self.epochs, self.lr, self.lr_milestones)]
        prune = [
            Phase(f"prune {d:g}", d, self.retrain_epochs, self.retrain_lr, self.retrain_milestones)
            for d in self.densities
        ]
        return dense + prune if self.epochs or not prune else prune


def run_directory(config: TrainConfig) -> Path:
    """Create and return a fresh run directory; an existing one is never reused.

    An explicit ``run_name`` that exists is refused; the default name
    ``{model}-{architecture}-{method}-w{width}-s{seed}`` gets a ``-2``, ``-3``, ... suffix.
    """
    parent = Path(config.output_dir)
    parent.mkdir(parents=True, exist_ok=True)
    base = config.run_name or (
        f"{config.model}-{config.architecture}-{config.method}-w{config.width:g}-s{config.seed}"
    )
    for n in range(1, 10_000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()  # atomic: fails if another run holds the name
            return path
        except FileExistsError:
            if config.run_name:
                raise FileExistsError(
                    f"run directory {path} exists; pass --resume {path} to continue it or "
                    f"choose another --run-name"
                ) from None
    raise FileExistsError(f"no free run directory name under {parent}")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (legacy global RNG, saved for exact resume)
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _git_commit() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "-uno"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return {"commit": head, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _optimizer(model, config: TrainConfig, phase: Phase):
    opt = torch.optim.SGD(
        model.parameters(),
        lr=phase.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    if config.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, config.lr_step, config.lr_gamma)
    else:  # "constant" is a multistep schedule without milestones
        ms = list(phase.milestones) if config.lr_schedule == "multistep" else []
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, ms, config.lr_gamma)
    return opt, sched


@torch.no_grad()
def evaluate(model, loader) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of ``model`` over ``loader``'s epoch 0."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in loader.epoch(0):
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return correct / n, loss / n


def _build(config: TrainConfig, num_classes: int, init: str | None):
    """The model; from ``init``'s weights if given (a spatial one converted for ``winograd``)."""
    from winolab.torch.models import build_model, convert_to_winograd

    architecture, blob = config.architecture, None
    if init:
        path = Path(init) / "checkpoint.pt" if Path(init).is_dir() else Path(init)
        if not path.is_file():
            raise FileNotFoundError(f"init checkpoint not found: {path}")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        architecture = blob["config"]["architecture"]
        if architecture not in (config.architecture, "spatial") or (
            architecture == "spatial" and config.architecture == "winograd_relu"
        ):
            raise ValueError(
                f"cannot start a {config.architecture!r} run from the {architecture!r} model "
                f"of {path}; a spatial model converts to 'winograd' only"
            )
    model = build_model(config.model, architecture, num_classes, config.width, config.m,
                        config.batchnorm)  # fmt: skip
    if blob is not None:
        model.load_state_dict(blob["model"])
    if architecture != config.architecture:
        # U = G g GT: the converted network computes what the spatial one did
        convert_to_winograd(model, config.m)
    return model


def _load_data(config: TrainConfig, device):
    train = _data.load_dataset(config.data, "train").subset(config.subset, config.seed)
    test = _data.load_dataset(config.data, "test").subset(config.test_subset, config.seed)
    mean, std = train.channel_stats()
    make = _data.BatchLoader  # the same normalisation (training-set statistics) for both
    train_loader = make(
        train,
        config.batch_size,
        mean,
        std,
        shuffle=True,
        augment=config.augment,
        seed=config.seed,
        device=device,
    )
    test_loader = make(test, config.batch_size, mean, std, device=device)
    return train, test, train_loader, test_loader


def run(
    config: TrainConfig | None = None,
    *,
    resume: str | os.PathLike | None = None,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> dict | None:
    """Train (and prune, and retrain) as ``config`` says, or resume the run in ``resume``.

    Parameters
    ----------
    config : TrainConfig
        The run; ignored (read from ``config.json``) when resuming.
    resume : path, optional
        A run directory with a ``checkpoint.pt`` to continue from.
    stop_after_steps : int, optional
        Checkpoint and return None before optimizer step ``stop_after_steps + 1`` of the whole
        run, as if killed there (time-boxed runs, tests of resume).
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    dict or None
        The result, also written to ``result.json`` in the run directory; None if stopped.
    """
    from tqdm.auto import tqdm

    start_time = time.perf_counter()
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"no checkpoint to resume from: {run_dir / 'checkpoint.pt'}")
        if (run_dir / "result.json").exists():
            raise FileExistsError(f"run {run_dir} has finished; its result.json is final")
        config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    elif config is None:
        raise TypeError("run() needs a TrainConfig or resume=<run directory>")
    else:
        ckpt = None
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if config.device == "auto"
        else config.device
    )
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)  # noqa: NPY002
    random.seed(config.seed)
    train, test, train_loader, test_loader = _load_data(config, device)
    model = _build(config, len(train.classes), None if ckpt else config.init).to(device)
    pruner = None
    if config.method != "none":
        from winolab.torch.pruning import make_pruner

        pruner = make_pruner(model, config.method, m=config.m)
    if resume is None:  # claimed only now that data and model are known to work
        run_dir = run_directory(config)
        with open(run_dir / "config.json", "x") as f:
            json.dump(asdict(config), f, indent=2)
    state = {
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "phase": -1,
        "history": [],
        "elapsed": 0.0,
        "sums": [0.0, 0, 0],
    }
    if ckpt is not None:
        if pruner is not None:
            pruner.load_state_dict(ckpt["pruner"])
        model.load_state_dict(ckpt["model"])
        state = ckpt["state"]
        _set_rng_state(ckpt["rng"])
    # the code of every session of the run (start, then each resume)
    state["git"] = [*state.get("git", []), _git_commit()]

    def save(opt, sched):
        blob = {
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "pruner": pruner and pruner.state_dict(),
            "rng": _rng_state(),
            "state": {**state, "elapsed": state["elapsed"] + time.perf_counter() - start_time},
        }
        _atomic_write(run_dir / "checkpoint.pt", lambda p: torch.save(blob, p))

    first = 0
    for index, phase in enumerate(config.phases()):
        last = first + phase.epochs
        if state["phase"] > index or (state["phase"] == index and state["epoch"] >= last):
            first = last
            continue
        if state["phase"] == index:  # resumed inside this phase
            opt, sched = _optimizer(model, config, phase)
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
        else:
            if phase.density is not None:
                if config.winograd_from == index - (len(config.phases()) - len(config.densities)):
                    pruner.to_winograd()  # Yu et al.'s stage 2: new parameters U = G g GT
                pruner.prune(phase.density)
            opt, sched = _optimizer(model, config, phase)
            state.update(phase=index, epoch=first, batch=0)
            if not phase.epochs:
                save(opt, sched)
        for epoch in range(state["epoch"], last):
            model.train()
            batches = tqdm(
                train_loader.epoch(epoch, state["batch"]),
                total=len(train_loader),
                initial=state["batch"],
                disable=not progress,
                leave=False,
                desc=f"{phase.name} epoch {epoch + 1}/{last}",
            )
            for x, y in batches:
                if stop_after_steps is not None and state["step"] >= stop_after_steps:
                    batches.close()
                    save(opt, sched)
                    return None
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if phase.density is not None:
                    pruner.before_step()
                opt.step()
                if phase.density is not None:
                    pruner.after_step()
                state["batch"] += 1
                state["step"] += 1
                sums = state["sums"]
                sums[0] += loss.item() * len(y)
                sums[1] += (logits.argmax(1) == y).sum().item()
                sums[2] += len(y)
                batches.set_postfix(loss=f"{loss.item():.3f}")
            accuracy, test_loss = evaluate(model, test_loader)
            lr = opt.param_groups[0]["lr"]
            sched.step()
            loss_sum, correct, seen = state["sums"]
            record = {
                "epoch": epoch + 1,
                "phase": phase.name,
                "lr": lr,
                "train_loss": loss_sum / seen,
                "train_accuracy": correct / seen,
                "test_loss": test_loss,
                "test_accuracy": accuracy,
            }
            if progress:
                tqdm.write(json.dumps(record))
            state["history"].append(record)
            state.update(epoch=epoch + 1, batch=0, sums=[0.0, 0, 0])
            save(opt, sched)
        first = last
    return _finish(config, run_dir, model, pruner, test_loader, train, test, state, start_time)


def _finish(config, run_dir, model, pruner, test_loader, train, test, state, start_time) -> dict:
    from winolab.torch import stats

    accuracy, test_loss = evaluate(model, test_loader)
    batches = []
    for x, _ in test_loader.epoch(0):
        batches.append(x)
        if sum(len(b) for b in batches) >= config.stats_images:
            break
    activations = stats.activation_densities(model, batches, m=config.m) if batches else None
    count = stats.multiplication_count(model, activations, m=config.m)
    multiplications = {
        "network": count.network, "method": count.method, "m": count.m, "total": count.total,
        "direct_total": count.direct_total, "reduction": count.reduction,
        "model": "the paper's full-width layer table with the densities measured on this model",
        "layers": [asdict(la) for la in count.layers],
    }  # fmt: skip
    result = {
        "command": "python -m winolab train " + " ".join(_cli_args(config)),
        "config": asdict(config),
        "run_dir": str(run_dir),
        "accuracy": accuracy,
        "test_loss": test_loss,
        "history": state["history"],
        "weight_densities": stats.weight_densities(model),
        "pruner_densities": pruner.densities() if pruner is not None else None,
        "activation_densities": activations,
        "multiplications": multiplications,
        "data": {
            "path": str(config.data),
            "train": train.description,
            "test": test.description,
            "train_images": len(train),
            "test_images": len(test),
            "classes": list(train.classes),
        },
        "git": state["git"][0],
        "git_sessions": state["git"],
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(next(model.parameters()).device),
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
        },
        "steps": state["step"],
        "wall_time_s": state["elapsed"] + time.perf_counter() - start_time,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with open(run_dir / "result.json", "x") as f:  # a result is never overwritten
        json.dump(result, f, indent=2, default=float)
    return result


def _cli_args(config: TrainConfig) -> list[str]:
    """The command-line options that reproduce ``config`` (non-default fields only)."""
    out = []
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name != "data" and value == f.default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif isinstance(value, tuple):
            out += [flag, ",".join(f"{v:g}" for v in value)]
        else:
            out += [flag, str(value)]
    return out
