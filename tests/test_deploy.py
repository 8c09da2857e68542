"""The deployment files stay valid for the installed Prefect and Ray (offline checks)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess


def test_deploy_files_pass_their_own_validators():
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "deploy/check.py"], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "deploy/: ok" in run.stdout
