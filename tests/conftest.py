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
