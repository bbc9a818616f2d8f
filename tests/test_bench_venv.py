"""bench/'s measured processes run as an installed monitor does: its dependencies, no test tools.

The bench compares monitor with urlwatch in its own venv; a measured process that could
import the project's test tools would pay for them where an installed monitor does not
(httpx imports its command line client, pygments and all, when pygments is there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench  # noqa: E402  (bench/ is scripts, not a package)

PROBE = """
import importlib.util, json
import monitor.cli, monitor.check, bs4
print(json.dumps({name: importlib.util.find_spec(name) is not None
                  for name in ("pygments", "pytest", "hypothesis", "celery")}))
"""


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    return bench._runtime_venv(tmp_path_factory.mktemp("bench"))


def _run(python: str, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([python, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_the_measured_venv_runs_monitor_and_the_parse_floor_without_test_tools(venv_python):
    run = _run(venv_python, PROBE)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        '{"pygments": false, "pytest": false, "hypothesis": false, "celery": false}'
    )


def test_the_measured_venv_imports_monitor_from_the_code_measured(venv_python, tmp_path):
    run = _run(venv_python, "import monitor; print(monitor.__file__)")
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).parent == ROOT / "monitor"


def test_building_the_venv_again_keeps_it_working(venv_python, tmp_path):
    again = bench._runtime_venv(Path(venv_python).parent.parent.parent)
    assert again == venv_python
    run = _run(again, PROBE)
    assert run.returncode == 0, run.stderr
