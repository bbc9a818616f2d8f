"""Where listing bodies are parsed: in the event loop's thread, or in a small process pool.

Extraction (Lexbor, C code) holds the core it runs on, so a cycle that parses many bodies
parses them in worker processes, fed as each body arrives, while the event loop goes on
fetching and archiving on the other core. The pool is worth its start (a fresh interpreter
importing selectolax per worker) only for a cycle with many pages: smaller ones parse in
process. Workers start lazily, at the first body to parse, so a cycle of 304s starts none.

A crash of the parser (a segfault in C kills the worker, and every parse in flight with it:
`BrokenProcessPool`) is not the end of the cycle: the pool is replaced, and each body that
was in flight is parsed again alone in a one-worker quarantine pool, so only the body that
crashes it again becomes an error ("the parser crashed on this page").

Test hook: with the environment variable MONITOR_TEST_CRASH_ON set, a worker kills itself
with SIGSEGV when a body contains its value. Only workers read it (never the main process),
and no page can set it: it exists so tests can crash a real worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from types import TracebackType

from monitor.config import PageConfig, Selectors
from monitor.extract import Extraction, extract_page
from monitor.models import PageObservation
from monitor.observe import Body, extract_listing_page, extraction_failed

log = logging.getLogger("monitor")

POOL_MIN_PAGES = 16  # a cycle of more pages than this parses in worker processes
CRASH_HOOK_ENV = "MONITOR_TEST_CRASH_ON"  # test hook: see the module docstring
PARENT_POLL_S = 1.0  # how often a worker checks that the process that started it lives


@dataclass(frozen=True)
class ParseJob:
    """What crosses to a worker: one body and the layouts to read it with (no page config)."""

    data: bytes
    content_type: str | None
    url: str
    layouts: tuple[Selectors, ...]


def parse_workers() -> int:
    """Worker processes: one per core but one, left to the event loop (at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class Parser:
    """Parses listing bodies for one cycle: in process, or in worker processes."""

    def __init__(self, *, pool: bool, workers: int | None = None) -> None:
        self.pool = pool
        self.workers = workers or parse_workers()
        self._main: ProcessPoolExecutor | None = None
        self._quarantine: ProcessPoolExecutor | None = None
        self._alone = asyncio.Lock()  # quarantine parses run one at a time
        self._closed = False

    async def extract(self, page: PageConfig, body: Body) -> Extraction | PageObservation:
        """The page's entries with the first layout that fits, or an error observation."""
        if not self.pool or self._closed:
            return extract_listing_page(page, body)
        job = ParseJob(body.data, body.content_type, body.url, page.all_layouts)
        pool = self._main_pool()
        try:
            return await _run(pool, job, page, body)
        except BrokenProcessPool:
            self._drop_main(pool)  # the first coroutine to see it replaces the pool
        async with self._alone:  # which body crashed it? each in flight is tried alone
            pool = self._quarantine_pool()
            try:
                return await _run(pool, job, page, body)
            except BrokenProcessPool:
                self._quarantine = None
                _shutdown(pool)
                log.error("the parser crashed on %s (page %s)", body.url, page.name)
                detail = f"{body.url}: the parser crashed on this page"
                return PageObservation(page.name, "error", detail=detail)

    def close(self) -> None:
        """Stop every worker and wait for them to exit: no process outlives the cycle."""
        self._closed = True
        for pool in (self._main, self._quarantine):
            if pool is not None:
                _shutdown(pool)
        self._main = self._quarantine = None

    async def __aenter__(self) -> Parser:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _main_pool(self) -> ProcessPoolExecutor:
        if self._main is None:
            self._main = _start(self.workers)
        return self._main

    def _quarantine_pool(self) -> ProcessPoolExecutor:
        if self._quarantine is None:
            self._quarantine = _start(1)
        return self._quarantine

    def _drop_main(self, broken: ProcessPoolExecutor) -> None:
        if self._main is broken:
            self._main = None
            _shutdown(broken)


def parser_for(pages: Sequence[PageConfig]) -> Parser:
    """The cycle's parser: worker processes for more than POOL_MIN_PAGES pages."""
    return Parser(pool=len(pages) > POOL_MIN_PAGES)


async def _run(
    pool: ProcessPoolExecutor, job: ParseJob, page: PageConfig, body: Body
) -> Extraction | PageObservation:
    """Parse `job` in `pool`; BrokenProcessPool passes through, any other error is the page's."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(pool, parse_job, job)
    except BrokenProcessPool:
        raise
    except Exception as error:  # a bug in extraction must not stop the other pages
        return extraction_failed(page, body, error)


def _start(workers: int) -> ProcessPoolExecutor:
    # spawn: forking a process with threads running (the daemon's) can copy a held lock.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_worker_setup,
        initargs=(os.getpid(),),
    )


def _shutdown(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)


def _worker_setup(parent: int) -> None:
    """In each worker: Ctrl-C is the parent's to handle; exit if the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    # The pool's queues do not close when the parent is killed (-9): without this watch
    # a worker would wait on them forever, an orphan.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def parse_job(job: ParseJob) -> Extraction:
    """In a worker: extract one body (raises what extraction raises)."""
    marker = os.environ.get(CRASH_HOOK_ENV)
    if marker and marker.encode("utf-8", "surrogateescape") in job.data:
        os.kill(os.getpid(), signal.SIGSEGV)  # test hook: see the module docstring
    return extract_page(job.data, content_type=job.content_type, base_url=job.url,
                        layouts=job.layouts)  # fmt: skip
