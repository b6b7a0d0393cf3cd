"""Shared pytest setup: hypothesis profiles.

``ci`` (the default) derandomizes hypothesis, so a run is repeatable and a failure reproduces
from the test's name alone; ``dev`` (``HYPOTHESIS_PROFILE=dev pytest``) explores new examples
each run. Neither has a deadline: the machines that run the suite are shared and slow.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
