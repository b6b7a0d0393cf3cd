"""Command line: ``python -m winolab COMMAND`` (also installed as ``winolab``).

Commands
--------
count
    Multiplication counts of a network under the papers' model (:mod:`winolab.counting`).
train
    Lives in ``winolab/torch/cli.py`` as ``add_train_parser(subparsers)``, imported only when
    ``train`` is the command, so that ``count`` never loads PyTorch. The parser it adds must
    ``set_defaults(func=...)`` with a callable ``(args) -> int`` exit status, as ``count`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from winolab import counting
from winolab.methods import COUNTS

_DENSITY_OPTIONS = {  # option -> (Densities field, what it is)
    "weight_density": ("weight", "Winograd-domain weight density d_w'"),
    "activation_density": ("activation", "Winograd-domain activation density d_a' of "
                           "ReLU(BT d B)"),
    "spatial_weight_density": ("spatial_weight", "spatial weight density d_w"),
    "spatial_activation_density": ("spatial_activation", "spatial input-activation density "
                                   "d_a"),
}


def _readers(field: str) -> str:
    """The counting methods that read a Densities field (those with that operand sparse)."""
    (domain, operand), = [k for k, f in counting.DENSITY_FIELDS.items() if f == field]
    return ", ".join(k for k, c in COUNTS.items()
                     if c.domain == domain and getattr(c, f"sparse_{operand}s"))


def _density(text: str) -> float | list[float]:
    """One density in [0, 1], or a comma-separated list of them, one per pruned layer."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    for v in values:
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"a density is a fraction in [0, 1], got {v}")
    return values[0] if len(values) == 1 else values


def add_count_parser(subparsers) -> None:
    """The ``count`` subcommand."""
    w = counting.WORKSHOP_DENSITIES
    p = subparsers.add_parser(
        "count", help="multiplication counts of a network under the papers' model",
        description="Products per image (one forward pass) of a network, per layer, for five "
        "methods: dense direct, spatially pruned with sparse input activations, dense "
        "Winograd, Winograd-native pruning (Li et al.) and Winograd-ReLU pruning (Liu et al.). "
        "Only elementwise products count; the first layer, 1x1 convs and FC layers stay dense. "
        "Density defaults are Liu et al.'s ICLR 2017 workshop values, measured on VGG-nagadomi "
        "only. A density is one number for every pruned layer or a comma-separated list, one "
        "per pruned layer (Winograd convs but the first), in order.")
    p.add_argument("network", choices=sorted(counting.NETWORKS),
                   help="layer table: %(choices)s")
    p.add_argument("--m", type=int, default=2,
                   help="Winograd output tile size m, F(m x m, 3 x 3) (default: %(default)s)")
    for option, (field, what) in _DENSITY_OPTIONS.items():
        p.add_argument(f"--{option.replace('_', '-')}", type=_density, default=None,
                       metavar="D", help=f"{what} ({_readers(field)}) (default: "
                       f"{getattr(w, field)}, workshop)")
    p.add_argument("--json", action="store_true",
                   help="print the counts as JSON instead of a table")
    p.set_defaults(func=_cli_count)


def _cli_count(args: argparse.Namespace) -> int:
    network = counting.get_network(args.network)
    chosen = {f: getattr(args, o) for o, (f, _) in _DENSITY_OPTIONS.items()}
    defaults = {f: getattr(counting.WORKSHOP_DENSITIES, f) for f in chosen}
    densities = counting.Densities(
        **{f: defaults[f] if v is None else v for f, v in chosen.items()})
    try:
        results = counting.compare_methods(network, args.m, densities)
    except (TypeError, ValueError) as exc:
        print(f"winolab count: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        doc = {
            "network": network.name, "dataset": network.dataset, "source": network.source,
            "m": args.m, "densities": asdict(densities),
            "workshop_defaults": sorted(f for f, v in chosen.items() if v is None),
            "methods": {k: {"total": c.total, "reduction": c.reduction,
                            "layers": [asdict(la) for la in c.layers]}
                        for k, c in results.items()},
        }
        print(json.dumps(doc, indent=2))
    else:
        workshop = {f for f, v in chosen.items() if v is None}
        print(format_table(network, results, densities, workshop))
    return 0


def _shape(layer) -> str:
    if isinstance(layer, counting.FCLayer):
        return f"FC {layer.in_features}->{layer.out_features}"
    k, s = layer.kernel, f"/{layer.stride}" if layer.stride > 1 else ""
    return (f"{layer.in_channels}->{layer.out_channels} {k}x{k}{s} "
            f"{layer.out_height}x{layer.out_width}")


def format_table(network, results, densities, workshop_fields=()) -> str:
    """The per-layer table (millions of products per image), totals and reductions."""
    m = next(iter(results.values())).m
    methods = list(results)

    def fmt(d):
        return ",".join(f"{v:g}" for v in d) if isinstance(d, list | tuple) else f"{d:g}"

    dens = [f"{name}={fmt(getattr(densities, f))}{' (workshop)' if f in workshop_fields else ''}"
            for name, (f, _) in _DENSITY_OPTIONS.items()]
    lines = [
        f"{network.name} ({network.dataset}): multiplies per image, millions; Winograd tile "
        f"m={m}",
        "densities: " + ", ".join(dens[:2]),
        "           " + ", ".join(dens[2:]),
        "(workshop = Liu et al., ICLR 2017 workshop, measured on VGG-nagadomi)",
        "",
        f"{'layer':<12}{'C->K r x r, out':<22}" + "".join(f"{k:>16}" for k in methods),
    ]
    for i, layer in enumerate(network.layers):
        cells = "".join(f"{results[k].layers[i].multiplies / 1e6:>16.2f}" for k in methods)
        lines.append(f"{layer.name:<12}{_shape(layer):<22}{cells}")
    lines.append(f"{'total':<34}" + "".join(f"{results[k].total / 1e6:>16.2f}" for k in methods))
    lines.append(f"{'':<34}" + "".join(f"{results[k].total:>16.2e}" for k in methods))
    lines.append(f"{'reduction':<34}"
                 + "".join(f"{results[k].reduction:>15.2f}x" for k in methods))
    return "\n".join(lines)


def build_parser(train: bool = False) -> argparse.ArgumentParser:
    """The ``winolab`` parser; ``train=True`` imports the PyTorch ``train`` subcommand."""
    parser = argparse.ArgumentParser(
        prog="winolab", description="Sparse Winograd convolution: counts and reproductions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_count_parser(sub)
    if train:
        from winolab.torch.cli import add_train_parser  # PyTorch loads only here

        add_train_parser(sub)
    else:
        sub.add_parser("train", help="train and prune a network in PyTorch (needs "
                       "`pip install winolab[torch]`; see `winolab train --help`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(train=argv[:1] == ["train"])
    except ImportError as exc:
        print(f"winolab train: unavailable ({exc}); it needs PyTorch: "
              f"pip install winolab[torch]", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
