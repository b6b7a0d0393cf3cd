"""With CI=true a skip is a failure (tests/conftest.py), so CI cannot pass by skipping."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("ci, code", [("true", 1), ("", 0)])
def test_skip_fails_only_in_ci(tmp_path, ci, code):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\ndef test_skipped():\n    pytest.skip('an extra is missing')\n")
    env = dict(os.environ, CI=ci)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-c", os.devnull, str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == code, done.stdout + done.stderr
    if ci:
        assert "skipped in CI" in done.stdout
