"""The code stays ruff-clean, and the Django-free engine stays type-checked (mypy on realtime/)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_is_clean():
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_the_engine():
    result = run("mypy", "realtime")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_engine_does_not_import_django():
    found = subprocess.run(["grep", "-rlE", r"^\s*(from|import) django", "realtime"], cwd=ROOT, check=False,
                           capture_output=True, text=True)
    assert found.stdout == "", found.stdout
