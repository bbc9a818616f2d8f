"""What runs in a parse worker process (`parsing.py`): small imports, so a worker starts fast.

A worker imports this module and `monitor.extract` only (no asyncio, no config, no httpx,
no multiprocessing): the job carries the selectors as plain `Layout` values, the body as
bytes. `serve` is its loop: frames of pickles on stdin and stdout (`workerpool.py`).

Test hook: with the environment variable MONITOR_TEST_CRASH_ON set, a worker kills itself
with SIGSEGV when a body contains its value. Only workers read it (never the main process),
and no page can set it: it exists so tests can crash a real worker.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import threading
import time

from msgspec import Struct

from monitor.extract import Extraction, extract_page, extract_text

TYPE_CHECKING = False  # typing's, without importing typing: a parse worker never needs it
if TYPE_CHECKING:
    from typing import IO, Any

CRASH_HOOK_ENV = "MONITOR_TEST_CRASH_ON"  # test hook: see the module docstring
PARENT_POLL_S = 1.0  # how often a worker checks that the process that started it lives
FRAME = struct.Struct("!Q")  # each pickle on the pipes is preceded by its length


class Layout(Struct, frozen=True):
    """One selector set, as extraction reads it (monitor.config.Selectors without config)."""

    item: str
    title: str | None
    link: str | None
    description: str | None
    next: str | None


def as_layout(select: Any) -> Layout:
    """A selector set (monitor.config.Selectors) as the plain value a worker reads."""
    return Layout(select.item, select.title, select.link, select.description, select.next)


class ParseJob(Struct, frozen=True):
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


def text_job(data: bytes, content_type: str | None, selector: str | None) -> str:
    """An entry page's text (extract_text), for a worker: its jobs take no keywords."""
    return extract_text(data, content_type=content_type, selector=selector)


def serve() -> None:
    """A worker's life: answer each job from stdin on stdout until stdin closes.

    The parent's pid is argv[1]. The protocol has stdout to itself: anything else that
    would print there (a library, C code) goes to stderr instead.
    """
    import pickle  # here: the main process imports this module for in-process parses too

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker_setup(int(sys.argv[1]))
    jobs = sys.stdin.buffer
    while (frame := receive_frame(jobs)) is not None:
        try:
            fn, args = pickle.loads(frame)
            answer: tuple[bool, Any] = (True, fn(*args))
        except Exception as error:  # the job's failure is its answer, not the worker's end
            answer = (False, error)
        try:
            payload = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # an answer that cannot cross: say what it was
            payload = pickle.dumps((False, RuntimeError(f"unpicklable answer: {error!r}")))
        send_frame(answers, payload)


def send_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(FRAME.pack(len(payload)) + payload)
    stream.flush()


def receive_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's payload; None at a clean end of stream; EOFError if cut short."""
    header = stream.read(FRAME.size)
    if not header:
        return None
    if len(header) < FRAME.size:
        raise EOFError("a frame cut short")
    (size,) = FRAME.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("a frame cut short")
    return payload
