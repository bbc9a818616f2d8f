"""What runs in a parse worker process (`parsing.py`): small imports, so a worker starts fast.

A worker imports this module and `monitor.extract` only (no asyncio, no config, no httpx):
the job carries the selectors as plain `Layout` values, the body as bytes.

Test hook: with the environment variable MONITOR_TEST_CRASH_ON set, a worker kills itself
with SIGSEGV when a body contains its value. Only workers read it (never the main process),
and no page can set it: it exists so tests can crash a real worker.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

from monitor.extract import Extraction, extract_page

CRASH_HOOK_ENV = "MONITOR_TEST_CRASH_ON"  # test hook: see the module docstring
PARENT_POLL_S = 1.0  # how often a worker checks that the process that started it lives


@dataclass(frozen=True)
class Layout:
    """One selector set, as extraction reads it (monitor.config.Selectors without config)."""

    item: str
    title: str | None
    link: str | None
    description: str | None
    next: str | None


@dataclass(frozen=True)
class ParseJob:
    """What crosses to a worker: one body and the layouts to read it with."""

    data: bytes
    content_type: str | None
    url: str
    layouts: tuple[Layout, ...]


def worker_setup(parent: int) -> None:
    """In each worker: signals are the parent's to handle; exit if the parent dies."""
    # Ctrl-C and systemd's SIGTERM reach the whole group: the parent stops the pool itself,
    # so a stopping cycle never sees its workers die under it as a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    # The pool's queues do not close when the parent is killed (-9): without this watch
    # a worker would wait on them forever, an orphan.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def ready() -> bool:
    """A worker is up (the first answer of a new pool)."""
    return True


def parse_job(job: ParseJob) -> Extraction:
    """Extract one body (raises what extraction raises)."""
    marker = os.environ.get(CRASH_HOOK_ENV)
    if marker and marker.encode("utf-8", "surrogateescape") in job.data:
        os.kill(os.getpid(), signal.SIGSEGV)  # test hook: see the module docstring
    return extract_page(job.data, content_type=job.content_type, base_url=job.url,
                        layouts=job.layouts)  # fmt: skip
