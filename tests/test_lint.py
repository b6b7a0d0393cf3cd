"""The code base passes ruff with the project's configuration (pyproject.toml).

The test runs ``python -m ruff`` with the interpreter that runs the tests, so the ruff that
``requirements.txt`` installed into this environment is the one that judges, whatever else is
on ``PATH``; the pre-commit hook (``.pre-commit-config.yaml``) runs the same command.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "ruff", "check", "--no-cache", "."]


def test_ruff_clean():
    done = subprocess.run(COMMAND, cwd=ROOT, capture_output=True, text=True)
    if "No module named ruff" in done.stderr:
        pytest.fail("ruff is missing from this environment: pip install -r requirements.txt")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_sees_a_lint_error(tmp_path):
    # negative control: the same command fails on a file with an unused import
    (tmp_path / "bad.py").write_text("import os\n")
    done = subprocess.run([*COMMAND[:-1], "--isolated", str(tmp_path / "bad.py")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "F401" in done.stdout, done.stdout + done.stderr


def test_pre_commit_runs_the_same_ruff():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [h for repo in config["repos"] for h in repo["hooks"]]
    ruff = [h for h in hooks if h["id"] == "ruff"]
    assert len(ruff) == 1 and ruff[0]["entry"].startswith("python -m ruff check"), hooks
