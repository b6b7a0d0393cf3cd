"""Training, pruning and masked retraining runs, with exact resume and a JSON result.

A run is a list of phases: dense training for ``epochs`` epochs, then for every density of the
schedule a prune to that density followed by ``retrain_epochs`` epochs of masked retraining
(each phase with its own SGD optimizer and learning-rate schedule). Every epoch ends with a
checkpoint written atomically into the run directory; :func:`run` with ``resume=`` continues from
it. Batch order and augmentation depend only on ``(seed, epoch)``
(:class:`~winolab.torch.data.BatchLoader`) and the checkpoint holds the RNG states, so on one
device a resumed run reaches the same parameters as one that was never interrupted.

Training is fast where the machine allows and faithful everywhere: bf16 autocast
(``precision``, chosen by :func:`resolve_precision` and recorded), with evaluation, activation
statistics and inexact (F(4x4)) Winograd transforms in float32; one memory layout
(``channels_last``) end to end; the fast recipe by default (batch 256, linear warm-up over 15%
of each phase's steps to the peak lr, linear decay to 0, label smoothing 0.2). Every run file
is written atomically (temporary file, fsync, rename) and checked when read
(:func:`read_config`, :func:`read_checkpoint`); a run killed before its first checkpoint is
restarted by the same command, ``time_budget`` stops a session cleanly at a checkpoint, and
every accuracy is over the whole test set with its binomial standard error.

>>> cfg = TrainConfig(data="cifar10.zip", epochs=2, densities=(0.6, 0.4), retrain_epochs=3,
...                   method="liu", architecture="winograd_relu")
>>> [(p.name, p.epochs) for p in cfg.phases()]
[('train', 2), ('prune 0.6', 3), ('prune 0.4', 3)]
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from winolab import provenance
from winolab.methods import Architecture
from winolab.torch import data as _data

__all__ = [
    "Phase",
    "RunFileError",
    "TrainConfig",
    "cpu_info",
    "measured_bf16_speedup",
    "read_checkpoint",
    "read_config",
    "read_json",
    "resolve_precision",
    "run",
    "run_directory",
    "standard_error",
]

PruneMethod = Literal["none", "spatial", "li", "liu", "yu"]
Schedule = Literal["linear", "constant", "step", "multistep"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "bf16", "fp32"]

#: Values of the fields added after the first recorded runs, for a ``config.json`` without them
#: (those runs trained in float32 without label smoothing).
LEGACY_DEFAULTS = {"precision": "fp32", "label_smoothing": 0.0, "warmup": 0.15}


class RunFileError(ValueError):
    """A run file that cannot be read or written; the message names the file and the fix."""


class Phase(NamedTuple):
    """One stage of a run: ``density`` None trains densely, a number (or a per-layer mapping)
    prunes to it first."""

    name: str
    density: float | dict[str, float] | None
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
    batch_size: int = 256
    lr: float = 0.2
    lr_schedule: Schedule = "linear"
    warmup: float = 0.15
    lr_milestones: tuple[int, ...] = ()
    lr_step: int = 30
    lr_gamma: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    densities: tuple[float, ...] = ()
    layer_densities: dict[str, float] | None = None
    retrain_epochs: int = 0
    retrain_lr: float = 0.01
    retrain_milestones: tuple[int, ...] = ()
    winograd_from: int | None = None
    augment: bool = True
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "auto"
    init: str | None = None
    stats_images: int = 500
    output_dir: str = "runs"
    run_name: str | None = None

    def __post_init__(self):
        for name in ("data", "init", "output_dir"):  # paths are stored as text
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        for name, kind in [
            ("architecture", Architecture),
            ("method", PruneMethod),
            ("lr_schedule", Schedule),
            ("device", Device),
            ("precision", Precision),
        ]:
            if getattr(self, name) not in get_args(kind):
                raise ValueError(
                    f"{name} must be one of {get_args(kind)}, got {getattr(self, name)!r}"
                )
        for f in fields(self):
            value, kind = getattr(self, f.name), _FIELD_TYPES[f.name]
            if value is None and f.name in _OPTIONAL:
                continue
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{f.name} must be True or False, got {value!r}")
            if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{f.name} must be an integer, got {value!r}")
            if kind is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{f.name} must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if kind is dict and not isinstance(value, dict):
                raise ValueError(f"{f.name} must be a mapping, got {value!r}")
            if kind is str and not isinstance(value, str):
                raise ValueError(f"{f.name} must be a string, got {value!r}")
            if kind is tuple and not (
                isinstance(value, tuple)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            ):
                raise ValueError(f"{f.name} must be a tuple of numbers, got {value!r}")
        if any(not math.isfinite(d) for d in self.densities):
            raise ValueError(f"densities must be finite, got {self.densities}")
        for name, low, high in [("momentum", 0.0, 1.0), ("label_smoothing", 0.0, 1.0)]:
            if not low <= getattr(self, name) < high:
                raise ValueError(
                    f"{name} must be in [{low:g}, {high:g}), got {getattr(self, name)}"
                )
        if not 0.0 <= self.warmup <= 1.0:
            raise ValueError(
                f"warmup is a fraction of a phase's steps in [0, 1], got {self.warmup}"
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.lr_gamma <= 0:
            raise ValueError(f"lr_gamma must be positive, got {self.lr_gamma}")
        if self.width > 64:
            raise ValueError(f"width is a channel multiplier in (0, 64], got {self.width}")
        for name in ("epochs", "retrain_epochs", "stats_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "lr_step", "subset", "test_subset"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if any(not 0.0 < d <= 1.0 for d in self.densities):
            raise ValueError(f"densities are fractions in (0, 1], got {self.densities}")
        if self.layer_densities is not None:
            if self.densities:
                raise ValueError("give densities (a schedule, every layer alike) or "
                                 "layer_densities (one prune, each layer its own), not both")
            if not self.layer_densities or any(
                not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float)
                or not 0.0 < v <= 1.0 for k, v in self.layer_densities.items()):  # fmt: skip
                raise ValueError("layer_densities maps layer names to fractions in (0, 1], got "
                                 f"{self.layer_densities!r}")
        pruning = bool(self.densities) or self.layer_densities is not None
        if pruning and self.method == "none":
            raise ValueError("a prune schedule (densities) needs a method: spatial, li, liu or yu")
        if self.method != "none" and not pruning:
            raise ValueError(f"method {self.method!r} needs densities, e.g. densities=(0.6, 0.4)")
        if self.winograd_from is not None and (
            self.method != "yu" or not 0 <= self.winograd_from < len(self.densities)
        ):
            raise ValueError(
                "winograd_from is the index of a density of the schedule, for method 'yu' only"
            )
        for name in ("width", "lr", "retrain_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config of a ``config.json`` (lists become tuples again).

        Fields missing from it take :data:`LEGACY_DEFAULTS` (a config of an older version).
        """
        if not isinstance(d, dict):
            raise ValueError(f"a TrainConfig is a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        d = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k not in d}, **d}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def phases(self) -> list[Phase]:
        """Dense training (if ``epochs > 0`` or nothing else), then one phase per density."""
        dense = [Phase("train", None, self.epochs, self.lr, self.lr_milestones)]
        retrain = self.retrain_epochs, self.retrain_lr, self.retrain_milestones
        prune = [Phase(f"prune {d:g}", d, *retrain) for d in self.densities]
        if self.layer_densities is not None:
            prune = [Phase("prune per layer", dict(self.layer_densities), *retrain)]
        return dense + prune if self.epochs or not prune else prune


_FIELD_TYPES = {
    "data": str, "model": str, "architecture": str, "method": str, "width": float, "m": int,
    "batchnorm": bool, "subset": int, "test_subset": int, "epochs": int, "batch_size": int,
    "lr": float, "lr_schedule": str, "warmup": float, "lr_milestones": tuple, "lr_step": int,
    "lr_gamma": float, "momentum": float, "nesterov": bool, "weight_decay": float,
    "label_smoothing": float, "densities": tuple, "layer_densities": dict, "retrain_epochs": int,
    "retrain_lr": float, "retrain_milestones": tuple, "winograd_from": int, "augment": bool,
    "seed": int, "device": str, "precision": str, "init": str, "stats_images": int,
    "output_dir": str, "run_name": str,
}  # fmt: skip
_OPTIONAL = {"subset", "test_subset", "layer_densities", "winograd_from", "init", "run_name"}


def run_directory(config: TrainConfig) -> Path:
    """Claim and return the run directory of ``config``, locked for this process.

    The name is ``run_name`` or ``{model}-{architecture}-{method}-w{width}-s{seed}``. A fresh
    directory is created; one that exists is reused only when a run of the same config died in
    it before its first checkpoint (no ``checkpoint.pt``, no ``result.json``, its
    ``config.json`` absent or equal to ``config``, no live process holding it), so the same
    command restarts such a run. Otherwise an explicit ``run_name`` is refused (continue it
    with ``--resume``) and the default name gets a ``-2``, ``-3``, ... suffix. A directory
    with a ``result.json`` is never reused.
    """
    parent = Path(config.output_dir)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFileError(
            f"cannot create the output directory {parent}: {exc.strerror or exc}; choose a "
            f"writable --output-dir"
        ) from None
    base = config.run_name or (
        f"{config.model}-{config.architecture}-{config.method}-w{config.width:g}-s{config.seed}"
    )
    for n in range(1, 10_000):
        path = parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()  # atomic: fails if another run holds the name
            _lock(path)
            return path
        except FileExistsError:
            if _restartable(path, config):
                return path
            if config.run_name:
                state = (
                    "has finished (its result.json is final)"
                    if (path / "result.json").exists()
                    else f"holds a run; pass --resume {path} to continue it"
                )
                raise FileExistsError(
                    f"run directory {path} exists and {state}; or choose another --run-name"
                ) from None
        except OSError as exc:
            raise RunFileError(
                f"cannot create the run directory {path}: {exc.strerror or exc}; choose a "
                f"writable --output-dir"
            ) from None
    raise FileExistsError(f"no free run directory name under {parent}")


_LOCKS: dict[str, int] = {}
#: The run directory of the latest :func:`run` of this process (to say where to ``--resume``).
LAST_RUN_DIR: Path | None = None


def _lock(run_dir: Path) -> None:
    """Hold an exclusive lock on ``run_dir`` until :func:`_unlock` or the process ends."""
    import fcntl

    path = run_dir / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunFileError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable --output-dir"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise FileExistsError(
            f"run {run_dir} is in use by another live process; wait for it to finish or stop it"
        ) from None
    _LOCKS[str(run_dir)] = fd
    # a writer killed mid-write leaves only its temporary file: nothing reads it
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _unlock(run_dir: Path) -> None:
    fd = _LOCKS.pop(str(run_dir), None)
    if fd is not None:
        os.close(fd)


def _restartable(path: Path, config: TrainConfig) -> bool:
    """True (and locked) when ``path`` holds a run of ``config`` killed before any checkpoint."""
    if not path.is_dir() or any((path / f).exists() for f in ("checkpoint.pt", "result.json")):
        return False
    if (path / "config.json").exists():
        try:
            if json.loads((path / "config.json").read_text()) != _config_json(config):
                return False
        except (OSError, ValueError):
            return False  # damaged: never reused silently (a rename of config.json is atomic)
    try:
        _lock(path)
    except FileExistsError:
        return False
    if (path / "checkpoint.pt").exists():  # checkpointed between the test and the lock
        _unlock(path)
        return False
    return True


def _config_json(config: TrainConfig) -> dict:
    return json.loads(json.dumps(asdict(config)))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write, *, overwrite: bool = True) -> None:
    """Write ``path`` through ``write(binary file)``: temporary file, fsync, rename.

    A reader sees the old file or the new one, never a part. ``overwrite=False`` (results,
    configs) refuses to replace an existing file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic and fails if path exists
            tmp.unlink()
        _fsync_dir(path.parent)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise FileExistsError(f"{path} exists; a finished run file is never overwritten") from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunFileError(
            f"cannot write {path}: {exc.strerror or exc}; free disk space or choose a writable "
            f"--output-dir, then rerun the same command (or --resume {path.parent})"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json(path: Path, obj, *, overwrite: bool = False) -> None:
    text = json.dumps(obj, indent=2, default=float) + "\n"
    _atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def read_json(path: str | os.PathLike, fix: str = "") -> object:
    """The JSON of a run file, or a :class:`RunFileError` that names the file (and ``fix``)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist{': ' + fix if fix else ''}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"cannot read {path}: {exc}{'; ' + fix if fix else ''}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(
            f"{path} is not valid JSON ({exc}; {len(text)} bytes, truncated or damaged)"
            f"{'; ' + fix if fix else ''}"
        ) from None


def read_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The :class:`TrainConfig` of ``run_dir/config.json``, validated."""
    path = Path(run_dir) / "config.json"
    fix = (
        f"the run cannot be resumed without it; rerun the original command with another "
        f"--run-name, or delete {Path(run_dir)}"
    )
    try:
        return TrainConfig.from_dict(read_json(path, fix))
    except RunFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise RunFileError(f"{path} is not a valid run config: {exc}; {fix}") from None


_CHECKPOINT_KEYS = {"config", "model", "optimizer", "scheduler", "pruner", "rng", "state"}


def read_checkpoint(run_dir: str | os.PathLike, config: TrainConfig | None = None) -> dict:
    """The ``checkpoint.pt`` of ``run_dir``, checked to be whole and to belong to ``config``."""
    path = Path(run_dir) / "checkpoint.pt"
    fix = (
        f"delete it to restart the run from its beginning with --resume {Path(run_dir)} "
        f"(config.json is kept), or restore it from a copy"
    )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise RunFileError(f"{path} does not exist") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise RunFileError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); it is truncated or "
            f"damaged: {fix}"
        ) from None
    if not isinstance(blob, dict) or not _CHECKPOINT_KEYS <= set(blob):
        raise RunFileError(f"{path} is not a winolab checkpoint (keys missing): {fix}")
    try:
        same = config is None or TrainConfig.from_dict(dict(blob["config"])) == config
    except (TypeError, ValueError):
        same = False
    if not same:
        raise RunFileError(
            f"{path} belongs to another config than {Path(run_dir) / 'config.json'}: {fix}"
        )
    return blob


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


# the ISA flags of the training records (sessions, environment, bench_train_step.json): those
# that decide bfloat16 speed, provenance.ISA_FLAGS without "fma", as every recorded run has
# them, so that the sessions of a resumed run all have the same fields
_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_info() -> dict:
    """CPU model and the ISA flags that decide bfloat16 speed (:func:`winolab.provenance.cpu_info`
    of the flags that training records carry)."""
    return provenance.cpu_info(_ISA_FLAGS)


ROOT = Path(__file__).resolve().parents[2]
BENCH_TRAIN_STEP = ROOT / "results" / "bench_train_step.json"


def measured_bf16_speedup(architecture: str, info: dict | None = None) -> float | None:
    """bf16 + channels_last over fp32 + channels_last step time, from the recorded benchmark.

    The median same-round ratio of ``results/bench_train_step.json`` for ``architecture``
    when that file was measured on a CPU of the same model and ISA flags
    (:func:`winolab.provenance.same_cpu`: a record of fewer flags matches); None otherwise.
    """
    info = info or cpu_info()
    try:
        bench = json.loads(BENCH_TRAIN_STEP.read_text())
        cpu = bench["provenance"]["cpu"]
        if not provenance.same_cpu(cpu, info):
            return None
        rounds = bench["round_step_s"]
        fp32, bf16 = rounds[f"{architecture}-fp32-cl"], rounds[f"{architecture}-bf16-cl"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(np.median([a / b for a, b in zip(fp32, bf16, strict=True)]))


def resolve_precision(precision: str, architecture: str, device: torch.device) -> tuple[str, str]:
    """``(precision, reason)``: what ``--precision auto`` trains in here, and why.

    bf16 autocast needs a CPU with native bfloat16 (AMX-BF16 or AVX512-BF16). With AMX it is
    bf16 (1.75x-3.9x faster training steps were measured on an AMX Xeon); with AVX512-BF16
    only, bf16 where ``benchmarks/bench_train_step.py`` measured it faster by more than 5% on
    this CPU model for this architecture (:func:`measured_bf16_speedup`), float32 otherwise.
    """
    if precision != "auto":
        return precision, "asked for"
    if device.type != "cpu":
        return "fp32", "auto: bf16 autocast is chosen on CPUs only"
    info = cpu_info()
    if info["isa"]["amx_bf16"]:
        return "bf16", f"auto: {info['model']} has AMX-BF16"
    if not info["isa"]["avx512_bf16"]:
        return "fp32", f"auto: {info['model']} has no native bfloat16"
    speedup = measured_bf16_speedup(architecture, info)
    if speedup is None:
        return "fp32", (
            f"auto: {info['model']} has AVX512-BF16 without AMX and no bench_train_step "
            f"measurement for this CPU; run benchmarks/bench_train_step.py --json "
            f"results/bench_train_step.json to measure it"
        )
    choice = "bf16" if speedup > 1.05 else "fp32"
    return choice, (
        f"auto: {info['model']} (AVX512-BF16, no AMX); a bf16 training step of "
        f"{architecture} measured {speedup:.2f}x as fast as fp32 (channels_last both) in "
        f"results/bench_train_step.json"
    )


def _portable(path: str | os.PathLike | None) -> str | None:
    """``path`` relative to the repository, or as ``../shared/...`` or ``~/...``, if it can be."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    p = Path(os.path.normpath(p))
    for base, prefix in ((ROOT / ".." / "shared", "../shared"), (ROOT, ""), (Path.home(), "~")):
        base = Path(os.path.normpath(base.resolve()))
        if p == base or base in p.parents:
            rel = p.relative_to(base).as_posix()
            return f"{prefix}/{rel}" if prefix else rel
    return str(p)


def _portable_config(config: TrainConfig) -> dict:
    d = asdict(config)
    for name in ("data", "init", "output_dir"):
        d[name] = _portable(d[name])
    return d


def _optimizer(model, config: TrainConfig, phase: Phase, steps_per_epoch: int):
    """SGD and the phase's schedule; ``linear`` is stepped after every optimizer step."""
    opt = torch.optim.SGD(
        model.parameters(),
        lr=phase.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    if config.lr_schedule == "linear":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, _LinearWarmupDecay(phase.epochs * steps_per_epoch, config.warmup)
        )
    elif config.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, config.lr_step, config.lr_gamma)
    else:  # "constant" is a multistep schedule without milestones
        ms = list(phase.milestones) if config.lr_schedule == "multistep" else []
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, ms, config.lr_gamma)
    return opt, sched


class _LinearWarmupDecay:
    """lr factor of step ``s`` (0-based) of ``total``: ``(s + 1) / W`` for ``s < W``, then
    ``(total - s) / (total - W)``, with ``W = round(warmup * total)`` warm-up steps.

    >>> f = _LinearWarmupDecay(10, 0.2)
    >>> [round(f(s), 3) for s in range(10)]
    [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    """

    def __init__(self, total: int, warmup: float):
        self.total, self.warm = max(1, total), round(warmup * max(1, total))

    def __call__(self, step: int) -> float:
        if step < self.warm:
            return (step + 1) / self.warm
        return max(0.0, (self.total - step) / max(1, self.total - self.warm))


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


@torch.no_grad()
def evaluate(model, loader) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of ``model`` over ``loader``'s epoch 0, in fp32."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in loader.epoch(0):
        logits = model(_channels_last(x)).float()
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return correct / n, loss / n


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of an accuracy over ``n`` images.

    >>> round(standard_error(0.9, 10_000), 4)
    0.003
    """
    return math.sqrt(accuracy * (1.0 - accuracy) / n)


def _build(config: TrainConfig, num_classes: int, init: str | None):
    """The model; from ``init``'s weights if given (a spatial one converted for ``winograd``)."""
    from winolab.torch.models import build_model, convert_to_winograd

    architecture, blob = config.architecture, None
    if init:
        run_dir = Path(init) if Path(init).is_dir() else Path(init).parent
        if not (run_dir / "checkpoint.pt").is_file() and not Path(init).is_file():
            raise FileNotFoundError(f"init checkpoint not found: {init}")
        if Path(init).is_file() and Path(init).name != "checkpoint.pt":
            try:
                blob = torch.load(init, map_location="cpu", weights_only=False)
            except Exception as exc:
                raise RunFileError(f"{init} cannot be read as a checkpoint ({exc})") from None
        else:
            blob = read_checkpoint(run_dir)
        architecture = blob["config"]["architecture"]
        if architecture not in (config.architecture, "spatial") or (
            architecture == "spatial" and config.architecture == "winograd_relu"
        ):
            raise ValueError(
                f"cannot start a {config.architecture!r} run from the {architecture!r} model "
                f"of {init}; a spatial model converts to 'winograd' only"
            )
    model = build_model(config.model, architecture, num_classes, config.width, config.m,
                        config.batchnorm)  # fmt: skip
    if blob is not None:
        model.load_state_dict(blob["model"])
    if architecture != config.architecture:
        # U = G g GT: the converted network computes what the spatial one did
        convert_to_winograd(model, config.m)
    # one memory layout end to end: the Winograd layers compute in channels_last
    return model.to(memory_format=torch.channels_last)


def _load_data(config: TrainConfig, device):
    train = _data.load_dataset(config.data, "train").subset(config.subset, config.seed)
    # the same test images for every seed (all of them unless test_subset is given)
    test = _data.load_dataset(config.data, "test").subset(config.test_subset, 0)
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
    time_budget: float | None = None,
    progress: bool = True,
) -> dict | None:
    """Train (and prune, and retrain) as ``config`` says, or resume the run in ``resume``.

    Parameters
    ----------
    config : TrainConfig
        The run; ignored (read from ``config.json``) when resuming.
    resume : path, optional
        A run directory to continue from its ``checkpoint.pt`` (or to start again from its
        ``config.json`` when it died before the first checkpoint).
    stop_after_steps : int, optional
        Checkpoint and return None before optimizer step ``stop_after_steps + 1`` of the whole
        run, as if killed there (time-boxed runs, tests of resume).
    time_budget : float, optional
        Wall-clock seconds for this session: before each step, if the time spent so far plus
        the last step's and the last evaluation's time would pass it, checkpoint and return
        None (at least one step is taken per session, so repeated sessions always finish).
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    dict or None
        The result, also written to ``result.json`` in the run directory; None if stopped.
    """
    start_time = time.perf_counter()
    if stop_after_steps is not None and (
        isinstance(stop_after_steps, bool)
        or not isinstance(stop_after_steps, int)
        or stop_after_steps < 0
    ):
        raise ValueError(f"stop_after_steps must be an integer >= 0, got {stop_after_steps!r}")
    if time_budget is not None and not (
        isinstance(time_budget, (int, float)) and math.isfinite(time_budget) and time_budget > 0
    ):
        raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    ckpt, run_dir = None, None
    if resume is not None:
        run_dir = Path(resume)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"no run directory {run_dir} to resume")
        if (run_dir / "result.json").exists():
            raise FileExistsError(f"run {run_dir} has finished; its result.json is final")
        if not (run_dir / "config.json").exists():
            raise FileNotFoundError(
                f"{run_dir / 'config.json'} does not exist: the run died before writing it; "
                f"rerun its original command, which restarts it in {run_dir}"
            )
        config = read_config(run_dir)
        _lock(run_dir)
    elif config is None:
        raise TypeError("run() needs a TrainConfig or resume=<run directory>")
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    try:
        if run_dir is not None and (run_dir / "checkpoint.pt").exists():
            ckpt = read_checkpoint(run_dir, config)
        return _run(config, run_dir, ckpt, stop_after_steps, time_budget, progress, start_time)
    finally:
        for held in list(_LOCKS):
            _unlock(Path(held))


@dataclass
class _LoopState:
    """Where a run stands: the ``state`` of ``checkpoint.pt``, with names instead of indices.

    ``epoch`` counts the epochs done over all phases, ``batch`` the batches done of the next
    one, ``step`` the optimizer steps of the run; ``phase`` is the index in
    ``config.phases()`` of the phase begun last (-1 before the first). ``loss_sum``,
    ``correct`` and ``seen`` add up the epoch so far (saved as ``sums``). ``elapsed`` is the
    wall time of the earlier sessions; ``git`` and ``sessions`` have one entry per session.
    Keys it does not know are kept in ``extra`` and saved again.

    >>> s = _LoopState(step=3, loss_sum=6.5, correct=2, seen=4).to_state()
    >>> s["sums"], list(s)[:7]
    ([6.5, 2, 4], ['epoch', 'batch', 'step', 'phase', 'history', 'elapsed', 'sums'])
    >>> _LoopState.from_state(s).to_state() == s
    True
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    phase: int = -1
    history: list = field(default_factory=list)
    elapsed: float = 0.0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    precision: str | None = None  # chosen once per run: a resumed run keeps it
    precision_reason: str | None = None
    git: list = field(default_factory=list)
    sessions: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: dict) -> _LoopState:
        rest = dict(state)
        loss_sum, correct, seen = rest.pop("sums")
        known = {f.name for f in fields(cls)} - {"loss_sum", "correct", "seen", "extra"}
        named = {k: rest.pop(k) for k in list(rest) if k in known}
        return cls(**named, loss_sum=loss_sum, correct=correct, seen=seen, extra=rest)

    def to_state(self, elapsed: float | None = None) -> dict:
        """The checkpoint's ``state`` dict; ``elapsed`` replaces the earlier sessions' time."""
        state = {
            "epoch": self.epoch, "batch": self.batch, "step": self.step, "phase": self.phase,
            "history": self.history, "elapsed": self.elapsed if elapsed is None else elapsed,
            "sums": [self.loss_sum, self.correct, self.seen],
        }  # fmt: skip
        if self.precision is not None:
            state.update(precision=self.precision, precision_reason=self.precision_reason)
        return {**state, "git": self.git, "sessions": self.sessions, **self.extra}

    def done(self, index: int, last: int) -> bool:
        """Whether phase ``index``, ending before run epoch ``last``, is over."""
        return self.phase > index or (self.phase == index and self.epoch >= last)

    def add(self, loss: float, correct: int, seen: int) -> None:
        self.loss_sum, self.correct, self.seen = (
            self.loss_sum + loss, self.correct + correct, self.seen + seen,
        )  # fmt: skip

    def end_epoch(self, record: dict) -> None:
        self.history.append(record)
        self.epoch, self.batch = self.epoch + 1, 0
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0


@dataclass
class _Session:
    """What one session of a run trains with, and when it has to stop (nothing of it is saved)."""

    config: TrainConfig
    run_dir: Path
    model: torch.nn.Module
    pruner: object
    amp: object  # a context manager factory: bf16 autocast or nullcontext
    progress: bool
    start_time: float
    stop_after_steps: int | None
    time_budget: float | None
    steps: int = 0  # optimizer steps of this session
    last_step: float = 0.0  # seconds of the last step and of the last evaluation
    last_eval: float = 0.0
    step_lr: float | None = None  # the learning rate of the last step

    def stop_now(self, loop: _LoopState) -> bool:
        if self.stop_after_steps is not None and loop.step >= self.stop_after_steps:
            return True
        return (
            self.time_budget is not None
            and self.steps > 0
            and time.perf_counter() - self.start_time + self.last_step + self.last_eval
            > self.time_budget
        )

    def save(self, loop: _LoopState, opt, sched) -> None:
        blob = {
            "config": asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "pruner": self.pruner and self.pruner.state_dict(),
            "rng": _rng_state(),
            "state": loop.to_state(loop.elapsed + time.perf_counter() - self.start_time),
        }
        buffer = io.BytesIO()  # serialised first: a failed write is then an OSError
        torch.save(blob, buffer)
        _atomic_write(self.run_dir / "checkpoint.pt", lambda f: f.write(buffer.getbuffer()))


def _run(config, run_dir, ckpt, stop_after_steps, time_budget, progress, start_time):
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
    if run_dir is None:  # claimed only now that data and model are known to work
        run_dir = run_directory(config)
    global LAST_RUN_DIR
    LAST_RUN_DIR = run_dir
    if not (run_dir / "config.json").exists():
        _write_json(run_dir / "config.json", asdict(config))
    loop = _LoopState()
    if ckpt is not None:
        if pruner is not None:
            pruner.load_state_dict(ckpt["pruner"])
        model.load_state_dict(ckpt["model"])
        loop = _LoopState.from_state(ckpt["state"])
        _set_rng_state(ckpt["rng"])
    if loop.precision is None:
        loop.precision, loop.precision_reason = resolve_precision(
            config.precision, config.architecture, device
        )
    amp = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if loop.precision == "bf16"
        else contextlib.nullcontext
    )
    # the code and the machine of every session of the run (start, then each resume)
    loop.git = [*loop.git, provenance.git_commit()]
    loop.sessions = [*loop.sessions, _environment(device, loop.precision)]
    session = _Session(config, run_dir, model, pruner, amp, progress, start_time,
                       stop_after_steps, time_budget)  # fmt: skip
    phases = config.phases()
    # the index of the first prune phase (they follow the dense one)
    first_pruned = len(phases) - sum(p.density is not None for p in phases)
    last = 0  # the run epoch each phase ends before
    for index, phase in enumerate(phases):
        first, last = last, last + phase.epochs
        if loop.done(index, last):
            continue
        if loop.phase == index:  # resumed inside this phase
            opt, sched = _optimizer(model, config, phase, len(train_loader))
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
        else:
            if phase.density is not None:
                if config.winograd_from == index - first_pruned:
                    pruner.to_winograd()  # Yu et al.'s stage 2: new parameters U = G g GT
                pruner.prune(phase.density)
            opt, sched = _optimizer(model, config, phase, len(train_loader))
            loop.phase, loop.epoch, loop.batch = index, first, 0
            if not phase.epochs:
                session.save(loop, opt, sched)
        for epoch in range(loop.epoch, last):
            if not _train_epoch(session, loop, phase, opt, sched, train_loader, test_loader,
                                len(test), f"{phase.name} epoch {epoch + 1}/{last}"):  # fmt: skip
                return None
    return _finish(config, run_dir, model, pruner, test_loader, train, test, loop, start_time)


def _train_epoch(session, loop, phase, opt, sched, train_loader, test_loader, n_test,
                 desc) -> bool:  # fmt: skip
    """Train the rest of epoch ``loop.epoch`` (from batch ``loop.batch``), evaluate, checkpoint.

    Returns False if the session had to stop first (checkpointed before the next step).
    """
    from tqdm.auto import tqdm

    config, model, pruner = session.config, session.model, session.pruner
    per_step = config.lr_schedule == "linear"
    model.train()
    batches = tqdm(
        train_loader.epoch(loop.epoch, loop.batch),
        total=len(train_loader),
        initial=loop.batch,
        disable=not session.progress,
        leave=False,
        desc=desc,
    )
    for x, y in batches:
        if session.stop_now(loop):
            batches.close()
            session.save(loop, opt, sched)
            return False
        t0 = time.perf_counter()
        with session.amp():
            logits = model(_channels_last(x))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training diverged at step {loop.step + 1} of {session.run_dir} (loss "
                f"{loss.item()}); rerun with a lower --lr (the last checkpoint is kept)"
            )
        session.step_lr = opt.param_groups[0]["lr"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if phase.density is not None:
            pruner.before_step()
        opt.step()
        if phase.density is not None:
            pruner.after_step()
        if per_step:
            sched.step()
        loop.batch += 1
        loop.step += 1
        session.steps += 1
        loop.add(loss.item() * len(y), (logits.argmax(1) == y).sum().item(), len(y))
        batches.set_postfix(loss=f"{loss.item():.3f}")
        session.last_step = time.perf_counter() - t0
    t0 = time.perf_counter()
    accuracy, test_loss = evaluate(model, test_loader)
    session.last_eval = time.perf_counter() - t0
    if not per_step:
        sched.step()
    record = {
        "epoch": loop.epoch + 1,
        "phase": phase.name,
        "lr": session.step_lr,  # of the epoch's last step
        "train_loss": loop.loss_sum / loop.seen,
        "train_accuracy": loop.correct / loop.seen,
        "test_loss": test_loss,
        "test_accuracy": accuracy,
        "test_accuracy_se": standard_error(accuracy, n_test),
    }
    if session.progress:
        tqdm.write(json.dumps(record))
    loop.end_epoch(record)
    session.save(loop, opt, sched)
    return True


def _environment(device, precision: str) -> dict:
    info = cpu_info()
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cpu": info["model"],
        "isa": info["isa"],
        "precision": precision,
        "memory_format": "channels_last",
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "load_average_1_5_15": provenance.load_average(),
        "machine": platform.machine(),
        "date": provenance.utc_now(),
    }


def _finish(config, run_dir, model, pruner, test_loader, train, test, loop, start_time) -> dict:
    from winolab.torch import stats

    accuracy, test_loss = evaluate(model, test_loader)  # float32, all test images
    batches = []
    for x, _ in test_loader.epoch(0):
        batches.append(_channels_last(x))
        if sum(len(b) for b in batches) >= config.stats_images:
            break
    # float32 (no autocast here): activation densities are counted exactly
    activations = stats.activation_densities(model, batches, m=config.m) if batches else None
    count = stats.multiplication_count(model, activations, m=config.m)
    multiplications = {
        "network": count.network, "method": count.method, "m": count.m, "total": count.total,
        "direct_total": count.direct_total, "reduction": count.reduction,
        "model": "the paper's full-width layer table with the densities measured on this model",
        "layers": [asdict(la) for la in count.layers],
    }  # fmt: skip
    environment = _environment(next(model.parameters()).device, loop.precision)
    result = {
        "command": "python -m winolab train " + " ".join(_cli_args(config, portable=True)),
        "config": _portable_config(config),
        "run_dir": _portable(run_dir.absolute()),
        "accuracy": accuracy,
        "accuracy_se": standard_error(accuracy, len(test)),
        "test_loss": test_loss,
        "precision": loop.precision,
        "precision_reason": loop.precision_reason,
        "history": loop.history,
        "weight_densities": stats.weight_densities(model),
        "pruner_densities": pruner.densities() if pruner is not None else None,
        "activation_densities": activations,
        "multiplications": multiplications,
        "data": {
            "path": _portable(config.data),
            "train": train.description,
            "test": test.description,
            "train_images": len(train),
            "test_images": len(test),
            "classes": list(train.classes),
        },
        "git": loop.git[0],
        "git_sessions": loop.git,
        "environment": environment,
        "sessions": loop.sessions,
        "steps": loop.step,
        "wall_time_s": loop.elapsed + time.perf_counter() - start_time,
        "date": provenance.utc_now(),
    }
    _write_json(run_dir / "result.json", result, overwrite=False)  # never overwritten
    return result


def _cli_args(config: TrainConfig, portable: bool = False) -> list[str]:
    """The command-line options that reproduce ``config`` (non-default fields only).

    ``portable=True`` writes paths relative to the repository (or ``../shared``, ``~``).
    """
    out = []
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name != "data" and value == f.default:
            continue
        if portable and f.name in ("data", "init", "output_dir"):
            value = _portable(value)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{f.name.replace('_', '-')}")
        elif isinstance(value, tuple):
            out += [flag, ",".join(f"{v:g}" for v in value)]
        elif isinstance(value, dict):
            from winolab.torch.cli import format_layer_map  # cli imports this module

            out += [flag, format_layer_map(value)]
        else:
            out += [flag, str(value)]
    return out
