"""The `monitor` process: what a whole run of the command does at its start and its end,
that a program importing the package must not have done to it.

`python -m monitor` and the `monitor` console script start here. Tests that run the
command in-process call `monitor.cli` and keep Python's usual start and exit.

A one-off `monitor check` of ten pages is mostly start-up and teardown: it loads ~350
modules, then Python frees them one by one. Two of those costs are Python's own, not the
work's (callgrind, a ten-page changed cycle of bench/server.py's pages, 853 M in all):
- the interpreter's teardown collects and clears every module, ~60 M instructions
  (7%), to free memory the operating system takes back at exit anyway. It is skipped,
  as Instagram's servers skip it, once everything that Python runs at exit has run;
- the cyclic collector walks the command line's modules again and again while they load,
  though nothing they build is garbage. It is paused while they load, and what they
  built is then frozen (`gc.freeze`): later collections no longer walk it (~15 M).

Skipping the teardown loses nothing. Every command closes what it writes before it
returns: the archive, the database, the feed, daemon.json. Nothing Python does at exit
is skipped either. This module registers its exit hook first, and hooks run in reverse
order, so it runs last: after Python has waited for every non-daemon thread and run
every other exit hook (logging's flush, weakref finalizers, multiprocessing's). It
flushes the standard streams, then ends the process with the command's exit status.

Python's own exit runs unchanged when a hook was registered before this one could be (a
sitecustomize, coverage's subprocess hook: it must run after ours), when the command did
not end with an exit status (an uncaught exception, Ctrl-C), or when a standard stream
will not flush (a reader that closed the pipe).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

# The command's exit status, once it has ended with one; None until then.
_status: int | None = None


def main() -> None:
    """Console-script entry point: run the command, then end the process without teardown."""
    global _status
    if _no_exit_hooks_yet():
        atexit.register(_end_without_teardown)  # the first hook registered runs last
    gc.disable()
    try:
        from monitor.cli import main as run_command
    finally:
        gc.enable()
    gc.freeze()  # the modules live until exit: no collection need walk them again
    try:
        run_command()
    except SystemExit as stop:
        _status = exit_status(stop.code)
        raise
    _status = 0


def exit_status(code: object) -> int:
    """The process's exit status for `sys.exit(code)`, as Python computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    return 1  # Python prints any other code to stderr, and exits 1


def _no_exit_hooks_yet() -> bool:
    # CPython's count of registered hooks; elsewhere, assume there may be some
    count = getattr(atexit, "_ncallbacks", None)
    return count is not None and count() == 0


def _end_without_teardown() -> None:
    if _status is None:
        return
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return  # Python's exit reports it, with its usual status
    os._exit(_status)
