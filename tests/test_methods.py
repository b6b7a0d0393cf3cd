"""The one table of pruning methods, architectures and counts (``winolab.methods``), and the
views of it that the other modules keep under their old names."""

from __future__ import annotations

from typing import get_args

import pytest
from conftest import load_script

from winolab import counting, methods, results
from winolab.methods import ARCHITECTURES, BY_FLAG, BY_STEP, COUNTS, PRUNING_METHODS


def test_the_names_on_disk_and_on_the_command_line_stay():
    # recorded runs, checkpoints and resumed training jobs use these names: they never change
    assert [(p.step, p.flag, p.stages, p.sweep) for p in PRUNING_METHODS] == [
        ("han", "spatial", ("spatial",), True), ("li", "li", ("winograd",), True),
        ("liu", "liu", ("winograd_relu",), True), ("yu", "yu", ("spatial", "winograd"), False)]
    assert {a: (i.dense, i.pruned, i.baseline) for a, i in ARCHITECTURES.items()} == {
        "spatial": ("direct", "spatial_pruned", "dense-spatial"),
        "winograd": ("winograd", "winograd_native", "dense-winograd"),
        "winograd_relu": ("winograd", "winograd_relu", "dense-winograd_relu")}
    assert {k: (c.domain, c.sparse_weights, c.sparse_activations) for k, c in COUNTS.items()} == {
        "direct": ("spatial", False, False), "spatial_pruned": ("spatial", True, True),
        "winograd": ("winograd", False, False), "winograd_native": ("winograd", True, False),
        "winograd_relu": ("winograd", True, True)}


def test_the_table_is_consistent():
    assert tuple(COUNTS) == get_args(methods.CountMethod)
    assert tuple(ARCHITECTURES) == get_args(methods.Architecture)
    assert len(BY_STEP) == len(BY_FLAG) == len(PRUNING_METHODS)  # unique in each vocabulary
    for a in ARCHITECTURES.values():
        dense, pruned = COUNTS[a.dense], COUNTS[a.pruned]
        assert not dense.sparse_weights and not dense.sparse_activations
        assert pruned.sparse_weights and pruned.domain == dense.domain == a.domain
    for p in PRUNING_METHODS:
        assert set(p.stages) <= set(ARCHITECTURES) and p.paper in p.label
        assert p.domains == tuple(ARCHITECTURES[a].domain for a in p.stages)


@pytest.mark.parametrize("name", list(COUNTS))
def test_counting_follows_the_rows_sparse_operands(name):
    c, net = COUNTS[name], counting.get_network("vgg-nagadomi")
    dense = counting.count_multiplies(net, name, 2).total
    for operand, sparse in (("weight", c.sparse_weights), ("activation", c.sparse_activations)):
        kw = {f"{operand}_density": 0.5}
        if sparse:  # every pruned layer does half the products
            pruned = sum(la.multiplies for la in counting.count_multiplies(net, name, 2).layers
                         if la.name in net.pruned)
            assert counting.count_multiplies(net, name, 2, **kw).total == pytest.approx(
                dense - pruned / 2)
        else:
            with pytest.raises(ValueError, match="dense"):
                counting.count_multiplies(net, name, 2, **kw)
    direct = counting.count_multiplies(net, "direct").total
    assert (dense < direct) == (c.domain == "winograd")


def test_the_old_names_are_views_of_the_table():
    assert counting.METHODS == tuple(COUNTS)
    assert results.SWEEPS == {"han": ("spatial", "dense-spatial", BY_STEP["han"].label),
                              "li": ("winograd", "dense-winograd", BY_STEP["li"].label),
                              "liu": ("winograd_relu", "dense-winograd_relu",
                                      BY_STEP["liu"].label)}


def test_the_reproduction_plan_uses_the_table():
    steps = load_script("reproduce_cifar10").plan()
    seen = set()
    for s in steps:
        prefix = s["name"].split("-")[0]
        if prefix in BY_STEP:
            p = BY_STEP[prefix]
            assert (s["config"]["architecture"], s["config"]["method"]) == (p.architecture,
                                                                            p.flag)
            seen.add(prefix)
    assert seen == set(BY_STEP)


def test_torch_views_of_the_table():
    pytest.importorskip("torch")
    from winolab.torch import cli, models, pruning, train

    assert list(pruning.METHODS) == list(BY_FLAG)
    assert all(cls.method == flag for flag, cls in pruning.METHODS.items())
    assert models.ARCHITECTURES == tuple(ARCHITECTURES)
    assert train.Architecture is models.Architecture is methods.Architecture
    # the training CLI's --method choices: "none" and every flag (train.PruneMethod)
    assert get_args(train.PruneMethod) == ("none", *BY_FLAG)
    import argparse

    parser = cli.add_train_parser(argparse.ArgumentParser().add_subparsers())
    choices = {a.dest: a.choices for a in parser._actions if a.choices}
    assert tuple(choices["method"]) == ("none", *BY_FLAG)
    assert tuple(choices["architecture"]) == tuple(ARCHITECTURES)
    assert all(f"{p.flag} ({p.paper})" in cli.HELP["method"] for p in PRUNING_METHODS)


def test_counts_of_a_model_follow_its_architecture():
    pytest.importorskip("torch")
    from winolab.torch.models import build_model
    from winolab.torch.stats import multiplication_count

    for arch, info in ARCHITECTURES.items():
        net = build_model("vgg-nagadomi", arch, width=0.125)
        assert multiplication_count(net).method == info.pruned
    with pytest.raises(ValueError, match="unknown method"):
        multiplication_count(net, method="sparse")
