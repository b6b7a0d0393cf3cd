"""``python -m winolab train``: the command line of :func:`winolab.torch.train.run`.

Every field of :class:`~winolab.torch.train.TrainConfig` is an option (``lr_milestones`` is
``--lr-milestones``), documented from :data:`HELP`; ``--resume``, ``--stop-after-steps``,
``--time-budget`` and ``--no-progress`` control the run without being part of its config.

>>> import argparse
>>> sub = argparse.ArgumentParser(prog="winolab").add_subparsers()
>>> parser = add_train_parser(sub)
>>> args = parser.parse_args(["--data", "d.zip", "--method", "liu", "--densities", "0.6,0.4"])
>>> config_from_args(args).densities
(0.6, 0.4)
>>> Path(config_from_args(args).data).is_absolute()
True
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from winolab import methods
from winolab.torch.train import RunFileError, TrainConfig, run

__all__ = ["HELP", "add_train_parser", "config_from_args", "format_layer_map", "train_command"]


def _either(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


HELP = {
    "data": "dataset: cifar-10/100-python.tar.gz (or its extracted folder), a zip of "
    "{train,test}/{class}/*.jpg such as ../shared/data/cifar10-jpeg.zip, or an ImageNet-style "
    "folder root/{train,test}/{class}/*; required unless --resume",
    "model": "network: vgg-nagadomi, convpool-cnn-c or resnet18-liu",
    "architecture": _either([f"{a.name} ({a.what})" for a in methods.ARCHITECTURES.values()]),
    "method": "pruning rule for the prune phases: "
    + _either(["none"] + [f"{p.flag} ({p.paper})" for p in methods.PRUNING_METHODS]),
    "width": "channel-width multiplier for reduced runs",
    "m": "Winograd output tile size m of F(m x m, 3 x 3)",
    "batchnorm": "BatchNorm after each convolution",
    "subset": "train on a fixed, seeded, class-balanced subset of this many images",
    "test_subset": "evaluate on a class-balanced subset of this many test images, the same "
    "for every seed (default: the whole test set, as every recorded accuracy should be)",
    "epochs": "epochs of dense training before any pruning (0 to start from --init)",
    "batch_size": "mini-batch size",
    "lr": "peak (linear) or initial learning rate of dense training",
    "lr_schedule": "learning-rate schedule of every phase: linear (updated every step: linear "
    "warm-up from 0 to the phase's lr over the first --warmup of its steps, then linear decay "
    "to 0 at its last step), or, stepped once per epoch, constant, step (x gamma every "
    "--lr-step epochs) or multistep (x gamma at each milestone)",
    "warmup": "linear schedule: fraction of each phase's steps spent warming up",
    "lr_milestones": "comma-separated epochs of dense training where the lr is multiplied by "
    "gamma (multistep)",
    "lr_step": "epochs between lr drops (step schedule)",
    "lr_gamma": "factor of each lr drop",
    "momentum": "SGD momentum",
    "nesterov": "Nesterov momentum",
    "weight_decay": "L2 weight decay",
    "label_smoothing": "label smoothing of the training cross-entropy (0 for none; the test "
    "loss is always without)",
    "densities": "prune schedule: comma-separated target densities (fraction of weights kept), "
    "each pruned to and then retrained for --retrain-epochs, e.g. 0.8,0.6,0.4",
    "layer_densities": "instead of --densities: one prune with a density per layer, "
    "comma-separated name=density pairs naming every pruned layer, e.g. "
    "conv2=0.6,conv3=0.8,... (chosen by scripts/sensitivity.py)",
    "retrain_epochs": "epochs of masked retraining after each prune",
    "retrain_lr": "initial learning rate of each retraining phase",
    "retrain_milestones": "comma-separated epochs (within a retraining phase) of lr drops "
    "(multistep)",
    "winograd_from": "method yu only: the 0-based index of the first density of the schedule "
    "that prunes in the Winograd domain; before it the 3x3 convolutions are converted to "
    "Winograd layers (U = G g GT, Yu et al.'s stage 2); the densities before it are "
    "structured spatial prunes",
    "augment": "random crop with 4-pixel zero padding and horizontal flips while training",
    "seed": "seed of initialisation, subsets, batch order and augmentation",
    "device": "auto (CUDA when present, else CPU), cpu or cuda",
    "precision": "training precision: bf16 (torch.autocast bfloat16, float32 weights; "
    "evaluation, activation statistics and F(4x4) Winograd layers stay float32), fp32, or auto: "
    "bf16 on a CPU with AMX-BF16, or with AVX512-BF16 where results/bench_train_step.json "
    "measured it faster on this CPU model, else fp32. The choice and its reason are recorded",
    "init": "start from the model of this checkpoint.pt or run directory (prune + retrain a "
    "trained network). Epochs count from 0 again, so with the same --seed the batches and "
    "augmentation repeat those of the run it starts from: give another --seed, or prune in "
    "one run with --densities",
    "stats_images": "test images used to measure activation densities for the result",
    "output_dir": "parent folder of the run directories",
    "run_name": "run directory name; default {model}-{architecture}-{method}-w{width}-s{seed} "
    "with -2, -3, ... appended when taken. An existing run is never overwritten",
}


def _tuple_of(kind):
    def parse(text: str):
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, got {text!r}"
            ) from None

    return parse


def _layer_map(text: str) -> dict[str, float]:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, eq, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            raise argparse.ArgumentTypeError(
                f"expected comma-separated name=density pairs, got {item!r} in {text!r}")
    return out


def format_layer_map(densities: dict[str, float]) -> str:
    """``--layer-densities`` text of a mapping; :func:`_layer_map` reads it back exactly."""
    return ",".join(f"{k}={v!r}" for k, v in densities.items())


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand (options from :class:`TrainConfig`) to ``subparsers``."""
    p = subparsers.add_parser(
        "train",
        help="train, prune and retrain a network in PyTorch",
        description="Train a network densely, then prune it to each density of a schedule "
        "with masked retraining. Writes config.json, a checkpoint after every epoch and "
        "result.json (accuracy, per-layer weight and activation densities, multiplication "
        "count, config, git commit, data description, wall time) into a new run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag, hint = "--" + f.name.replace("_", "-"), hints[f.name]
        default = None if f.default is MISSING else f.default
        kw = {"default": default, "help": HELP[f.name], "dest": f.name}
        args = typing.get_args(hint)
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is typing.Literal:
            kw["choices"] = args
        elif typing.get_origin(hint) is tuple:
            kw["type"], kw["metavar"] = _tuple_of(args[0]), "LIST"
        elif any(typing.get_origin(a) is dict for a in args):
            kw["type"], kw["metavar"] = _layer_map, "NAME=D,..."
        else:
            kw["type"] = next(a for a in (*args, hint) if a in (int, float, str))
        p.add_argument(flag, **kw)
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the run in RUN_DIR from its last checkpoint, with its saved "
        "config (the options above are then ignored)",
    )
    p.add_argument(
        "--stop-after-steps",
        type=int,
        default=None,
        metavar="N",
        help="checkpoint and stop after N optimizer steps of the run (resume later)",
    )
    p.add_argument(
        "--time-budget",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="wall-clock budget of this session: checkpoint and stop before a step that would "
        "pass it (continue with --resume RUN_DIR; the result equals an uninterrupted run's)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tqdm progress bars and one JSON line per epoch on stderr",
    )
    p.set_defaults(func=train_command)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` that the parsed options describe.

    ``--data`` and ``--init`` become absolute paths, so that ``--resume`` works from anywhere.
    """
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    for name in ("data", "init"):
        if values[name] is not None:
            values[name] = str(Path(values[name]).absolute())
    return TrainConfig(**values)


def train_command(args: argparse.Namespace) -> int:
    """Handler of ``winolab train``: run, print the result's summary, return the exit status."""
    try:
        if args.resume is None:
            if args.data is None:
                raise ValueError("--data is required (or --resume RUN_DIR)")
            result = run(
                config_from_args(args),
                stop_after_steps=args.stop_after_steps,
                time_budget=args.time_budget,
                progress=args.progress,
            )
        else:
            result = run(
                resume=args.resume,
                stop_after_steps=args.stop_after_steps,
                time_budget=args.time_budget,
                progress=args.progress,
            )
    except (ValueError, OSError, RunFileError, FloatingPointError) as exc:
        print(f"winolab train: error: {exc}", file=sys.stderr)
        return 2
    if result is None:
        from winolab.torch import train as _train

        print(
            f"stopped at a checkpoint; continue with --resume {_train.LAST_RUN_DIR}",
            file=sys.stderr,
        )
        return 0
    summary = {k: result[k] for k in ("run_dir", "accuracy", "wall_time_s", "steps")}
    print(json.dumps(summary))
    return 0
