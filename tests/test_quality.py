"""Lint and types run inside pytest, so the README's one test command covers them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return [found]


def test_ruff_is_clean():
    """ruff (E, F, I, B, UP) finds nothing in the package, the tests and the benchmarks."""
    result = subprocess.run(
        [*_tool("ruff"), "check", "monitor", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    """mypy --strict passes on the whole package (pyproject.toml: [tool.mypy] strict)."""
    result = subprocess.run(
        [*_tool("mypy"), "monitor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
