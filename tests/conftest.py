"""Shared pytest setup: hypothesis profiles, and no silent skips in CI.

``ci`` (the default) derandomizes hypothesis, so a run is repeatable and a failure reproduces
from the test's name alone; ``dev`` (``HYPOTHESIS_PROFILE=dev pytest``) explores new examples
each run. Neither has a deadline: the machines that run the suite are shared and slow.

With ``CI=true`` (``.ci/run`` sets it) a skipped test or module is a failure: CI installs every
extra, so a skip there (numba, torch, scipy, the recorded runs, the built book missing) would
hide a path that was meant to be tested. Locally, skips stay skips.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


STRICT = os.environ.get("CI", "").lower() == "true"


def _fail_skip(report) -> None:
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which must run everything: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models gain nothing from threads, and on a busy machine threads spin-wait."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_cifar10(tmp_path_factory):
    """An extracted CIFAR-10 python archive with 48 training and 16 test images."""
    import pickle

    import numpy as np

    root = tmp_path_factory.mktemp("data") / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(0)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    for name, n in [(f"data_batch_{i}", 48 // 5 + (i == 1) * 3) for i in range(1, 6)] + [
        ("test_batch", 16)
    ]:
        labels = rng.integers(0, 10, n)
        # class-dependent brightness, so there is something to learn
        images = rng.integers(0, 128, (n, 3072)) + 12 * labels[:, None]
        batch = {b"data": images.astype(np.uint8), b"labels": labels.tolist()}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def load_script(name: str):
    """``scripts/<name>.py`` of this checkout as a module (the scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
