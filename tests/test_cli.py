"""``python -m winolab``: the argparse dispatcher and the ``count`` command."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from winolab.__main__ import main
from winolab.counting import count_multiplies, get_network

# VGG-nagadomi, counted by hand (notes-papers.md §1.5-1.6): 3x3 convs 228.26 M direct,
# 101.45 M dense F(2x2,3x3), first layer 1.77 M direct / 0.79 M Winograd, FC 5.25 M
VGG_CONV_DIRECT = sum(h * h * c * k * 9 for h, c, k in [
    (32, 3, 64), (32, 64, 64), (16, 64, 128), (16, 128, 128), (8, 128, 256),
    (8, 256, 256), (8, 256, 256), (8, 256, 256)])
VGG_FIRST = 32 * 32 * 3 * 64 * 9
VGG_FC = 4096 * 1024 + 1024 * 1024 + 1024 * 10


def run_json(capsys, *args) -> dict:
    assert main(["count", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_count_table_vgg_nagadomi(capsys):
    assert main(["count", "vgg-nagadomi"]) == 0
    out = capsys.readouterr().out
    for name in [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2", "fc3"]:
        assert f"\n{name} " in out
    assert "weight_density=0.4 (workshop)" in out and "activation_density=0.411 (workshop)" in out
    assert "spatial_weight_density=0.6 (workshop)" in out
    assert "spatial_activation_density=0.369 (workshop)" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("layer")).split()
    assert header[-5:] == ["direct", "spatial_pruned", "winograd", "winograd_native",
                           "winograd_relu"]
    totals = next(line for line in lines if line.startswith("total")).split()[1:]
    direct, spatial, wino, native, relu = (float(v) for v in totals)
    assert direct == round((VGG_CONV_DIRECT + VGG_FC) / 1e6, 2)
    assert wino == round((VGG_CONV_DIRECT * 4 / 9 + VGG_FC) / 1e6, 2)
    # Winograd-ReLU: first layer dense Winograd, layers 2-8 x 0.40 x 0.411, FC dense
    expect = ((VGG_CONV_DIRECT - VGG_FIRST) * 4 / 9 * 0.40 * 0.411 + VGG_FIRST * 4 / 9 + VGG_FC)
    assert relu == round(expect / 1e6, 2) == 22.59
    reductions = next(line for line in lines if line.startswith("reduction")).split()[1:]
    assert reductions[0] == "1.00x" and reductions[-1] == "10.34x"


def test_count_json_matches_library(capsys):
    doc = run_json(capsys, "convpool-cnn-c")
    assert doc["network"] == "convpool-cnn-c" and doc["m"] == 2
    assert doc["densities"] == {"weight": 0.4, "activation": 0.411, "spatial_weight": 0.6,
                                "spatial_activation": 0.369}
    assert sorted(doc["workshop_defaults"]) == sorted(doc["densities"])
    # direct: 396.8 M in the 3x3 convs + 2.0 M in the 1x1 convs (notes §1.6)
    assert round(doc["methods"]["direct"]["total"] / 1e6, 1) == 396.8 + 2.0
    assert round((doc["methods"]["winograd"]["total"] - 2018304) / 1e6, 1) == 176.4
    assert [row["name"] for row in doc["methods"]["winograd_relu"]["layers"]] == [
        f"conv{i}" for i in range(1, 10)]


def test_count_options_reach_the_model(capsys):
    doc = run_json(capsys, "vgg-nagadomi", "--weight-density", "0.5",
                   "--activation-density", "0.25", "--spatial-weight-density", "0.75",
                   "--spatial-activation-density", "0.5")
    assert doc["workshop_defaults"] == []
    convs = VGG_CONV_DIRECT - VGG_FIRST
    relu = doc["methods"]["winograd_relu"]["total"]
    assert relu == pytest.approx(convs * 4 / 9 * 0.125 + VGG_FIRST * 4 / 9 + VGG_FC, rel=1e-15)
    spatial = doc["methods"]["spatial_pruned"]["total"]
    assert spatial == pytest.approx(convs * 0.375 + VGG_FIRST + VGG_FC, rel=1e-15)
    native = doc["methods"]["winograd_native"]["total"]
    assert native == pytest.approx(convs * 4 / 9 * 0.5 + VGG_FIRST * 4 / 9 + VGG_FC, rel=1e-15)


def test_count_m4_and_per_layer_densities(capsys):
    doc = run_json(capsys, "vgg-nagadomi", "--m", "4")
    # every VGG map is divisible by 4: F(4x4,3x3) does 4x fewer products than direct
    assert doc["methods"]["winograd"]["total"] == VGG_CONV_DIRECT / 4 + VGG_FC
    per_layer = ",".join(["1", "0.5", "0.5", "0.5", "0.5", "0.5", "0.25"])
    doc = run_json(capsys, "vgg-nagadomi", "--weight-density", per_layer)
    rows = {r["name"]: r for r in doc["methods"]["winograd_native"]["layers"]}
    assert rows["conv2"]["weight_density"] == 1.0 and rows["conv8"]["weight_density"] == 0.25
    assert rows["conv8"]["multiplies"] == 8 * 8 * 256 * 256 * 4 * 0.25
    assert doc["workshop_defaults"] == ["activation", "spatial_activation", "spatial_weight"]


@pytest.mark.parametrize("network", ["convpool-cnn-c", "resnet18-liu"])
def test_count_other_networks(capsys, network):
    assert main(["count", network]) == 0
    out = capsys.readouterr().out
    for layer in get_network(network).layers:
        assert f"\n{layer.name} " in out
    total = next(line for line in out.splitlines() if line.startswith("total")).split()[1]
    assert float(total) == round(count_multiplies(network, "direct").total / 1e6, 2)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "count" in out and "train" in out and "winolab[torch]" in out
    with pytest.raises(SystemExit) as exc:
        main(["count", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for option in ["--m", "--weight-density", "--activation-density", "--spatial-weight-density",
                   "--spatial-activation-density", "--json"]:
        assert option in out
    for default in ["0.4, workshop", "0.411, workshop", "0.6, workshop", "0.369, workshop"]:
        assert f"(default: {default})" in out
    for network in ["vgg-nagadomi", "convpool-cnn-c", "resnet18-liu"]:
        assert network in out


@pytest.mark.parametrize("argv, message", [
    (["count", "alexnet"], "invalid choice: 'alexnet'"),
    (["count", "vgg-nagadomi", "--weight-density", "1.5"], "fraction in [0, 1], got 1.5"),
    (["count", "vgg-nagadomi", "--activation-density", "-0.1"], "fraction in [0, 1]"),
    (["count", "vgg-nagadomi", "--spatial-weight-density", "lots"], "expected a number"),
    (["count", "vgg-nagadomi", "--m", "two"], "invalid int value"),
    ([], "required: COMMAND"),
])
def test_bad_arguments_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["count", "vgg-nagadomi", "--weight-density", "0.4,0.5"], "expected 7 densities"),
    (["count", "vgg-nagadomi", "--m", "0"], "must be >= 1"),
])
def test_bad_values_return_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("winolab count: error:") and message in err


def test_train_without_torch_cli_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "winolab.torch.cli", None)  # import raises ImportError
    assert main(["train"]) == 2
    assert "pip install winolab[torch]" in capsys.readouterr().err


def test_train_is_dispatched_to_torch_cli(monkeypatch):
    def add_train_parser(subparsers):
        p = subparsers.add_parser("train")
        p.add_argument("--epochs", type=int)
        p.set_defaults(func=lambda args: args.epochs)

    module = types.ModuleType("winolab.torch.cli")
    module.add_train_parser = add_train_parser
    monkeypatch.setitem(sys.modules, "winolab.torch.cli", module)
    assert main(["train", "--epochs", "7"]) == 7


def test_python_m_winolab_count_loads_no_extras():
    code = ("import sys; from winolab.__main__ import main; rc = main(['count', 'resnet18-liu']); "
            "extras = {'torch', 'numba', 'matplotlib', 'ipywidgets'} & set(sys.modules); "
            "assert rc == 0 and not extras, extras")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "winolab", "count", "vgg-nagadomi", "--json"],
                          check=True, capture_output=True, text=True)
    doc = json.loads(done.stdout)
    assert doc["methods"]["direct"]["total"] == VGG_CONV_DIRECT + VGG_FC


def test_table_shows_layer_geometry(capsys):
    assert main(["count", "resnet18-liu"]) == 0
    out = capsys.readouterr().out
    # conv1 7x7 stride 2 on 224x224 -> 112x112; res5 stays at 14x14; 1x1 shortcuts
    assert "\nconv1       3->64 7x7/2 112x112 " in out
    assert "\nres5b_conv2 512->512 3x3 14x14 " in out
    assert "\nres5a_short 256->512 1x1 14x14 " in out
