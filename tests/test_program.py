"""The `monitor` process ends without Python's teardown, and nothing a user sees changes.

monitor/program.py skips the interpreter's teardown once the command has ended with an
exit status. These run a real process (`python -m monitor`, or monitor.program with a
stand-in command) and read what it printed and its exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import write_config
from servers import FaultServer, Respond

SELECT = {"item": ".row", "title": "h3", "link": "a", "description": "p"}


def _python(script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh Python, as the console script would run monitor.program."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=60, env=_buffered_env(),
    )  # fmt: skip


def _buffered_env() -> dict[str, str]:
    """The environment, with Python's standard streams buffered as they are by default."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _with_command(body: str, before: str = "") -> str:
    """A script that runs monitor.program.main with a stand-in for the command line: a
    function of `body`, as monitor.cli's main (imported by nothing else first)."""
    return (
        "import atexit, os, sys, threading, time, types\n"
        + textwrap.dedent(before)
        + "def command():\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "\ncli = types.ModuleType('monitor.cli')\n"
        + "cli.main = command\n"
        + "sys.modules['monitor.cli'] = cli\n"
        + "from monitor.program import main\n"
        + "main()\n"
    )


# An object that prints when Python's teardown frees it, kept by a module the command
# makes (what exists before the command starts is frozen: gc.freeze, never freed at exit).
TORN_DOWN = """
class TornDown:
    def __del__(self):
        print("torn down", flush=True)
"""
KEEP = """
sys.modules["holder"] = types.ModuleType("holder")
sys.modules["holder"].keep = TornDown()
"""


def test_a_check_prints_all_it_found_and_exits_as_before(tmp_path: Path) -> None:
    rows = "".join(f'<div class="row"><h3><a href="/p/{n}">Item {n}</a></h3><p>x</p></div>'
                   for n in range(400))  # fmt: skip
    with FaultServer() as server:
        server.set("/list", Respond(200, f"<html><body>{rows}</body></html>".encode()))
        config = write_config(
            tmp_path,
            [{"name": "list", "url": server.url("/list"), "role": "active", "select": SELECT}],
        )
        monitor = [sys.executable, "-m", "monitor", "--config", str(config)]
        first = _run([*monitor, "check", "--json"])
        entries = _run([*monitor, "entries", "--json"])
        server.set("/list", Respond(500, b"down"))
        failed = _run([*monitor, "check"])
    assert first.returncode == 0, first.stderr
    assert entries.returncode == 0, entries.stderr
    # every line of a long output reached the pipe, whole
    listed = [json.loads(line) for line in entries.stdout.splitlines()]
    assert sorted(e["title"] for e in listed) == sorted(f"Item {n}" for n in range(400))
    assert failed.returncode == 1  # a page failed: SPEC's exit status, not 0
    assert "500" in failed.stdout + failed.stderr


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_exit_statuses_are_those_of_sys_exit() -> None:
    for body, status, stderr in (
        ("sys.exit(3)", 3, ""),
        ("sys.exit(None)", 0, ""),
        ("pass", 0, ""),
        ("sys.exit('Error: a message')", 1, "Error: a message"),
        ("raise RuntimeError('a bug')", 1, "RuntimeError: a bug"),
    ):
        done = _python(_with_command(body))
        assert done.returncode == status, (body, done.stderr)
        assert stderr in done.stderr


def test_the_teardown_is_skipped_once_the_command_has_ended() -> None:
    done = _python(_with_command(KEEP + "print('done')\nsys.exit(0)", before=TORN_DOWN))
    assert done.returncode == 0
    assert done.stdout == "done\n"  # no "torn down": the process ended before the teardown


def test_python_exits_as_usual_when_the_command_raised() -> None:
    done = _python(_with_command(KEEP + "raise RuntimeError('a bug')", before=TORN_DOWN))
    assert done.returncode == 1
    assert "torn down" in done.stdout
    assert "RuntimeError: a bug" in done.stderr


def test_exit_hooks_registered_during_the_command_run() -> None:
    done = _python(_with_command("atexit.register(print, 'hook ran', flush=True)\nsys.exit(5)"))
    assert done.returncode == 5
    assert done.stdout == "hook ran\n"


def test_a_hook_registered_before_the_command_runs_and_python_exits_as_usual() -> None:
    """A sitecustomize or coverage's subprocess hook registered first: it must run after
    anything the command registers, so the process leaves its exit to Python."""
    before = TORN_DOWN + "atexit.register(print, 'early hook ran', flush=True)\n"
    done = _python(_with_command(KEEP + "sys.exit(4)", before=before))
    assert done.returncode == 4
    assert "early hook ran" in done.stdout
    assert "torn down" in done.stdout


def test_a_thread_still_running_is_waited_for() -> None:
    body = """
    def late():
        time.sleep(0.3)
        print("thread finished", flush=True)
    threading.Thread(target=late).start()
    sys.exit(2)
    """
    done = _python(_with_command(body))
    assert done.returncode == 2
    assert done.stdout == "thread finished\n"


def test_output_still_buffered_at_exit_is_written() -> None:
    done = _python(_with_command("sys.stdout.write('x' * 1000)\nsys.exit(0)"))
    assert done.returncode == 0
    assert done.stdout == "x" * 1000  # less than a buffer: still in it at exit


@pytest.mark.parametrize("code", [0, 1])
def test_a_reader_that_closed_the_pipe_gets_pythons_usual_exit(code: int) -> None:
    """Output still buffered at exit for a pipe whose reader has gone: Python's own exit
    reports it, with its status for that (120), as before."""
    body = f"sys.stdout.write('x' * 1000)\ntime.sleep(0.5)\nsys.exit({code})"
    done = subprocess.run(
        f"{sys.executable} -c {_shell_quote(_with_command(body))} | true; "
        'echo "status ${PIPESTATUS[0]}" >&2',
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
        env=_buffered_env(),
    )  # fmt: skip
    assert "BrokenPipeError" in done.stderr
    assert "status 120" in done.stderr


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
