"""Where listing bodies are parsed: in the event loop's thread, or in a small process pool.

Extraction (Lexbor, C code) holds the core it runs on, so a cycle of many pages parses its
bodies in worker processes (`workerpool.py` runs them, `parse_worker.py` is what they run),
fed as each body arrives, while the event loop goes on fetching and archiving on the other
core. The pool is worth its start (a fresh interpreter importing selectolax per worker,
~0.1-0.2 s of CPU and ~17 MB each) only for a cycle
of more than POOL_MIN_PAGES pages with many bodies still to parse: the first
POOL_START_BODIES are parsed in process, and the pool starts only if, at the rate bodies
came so far (bodies per page answered), at least POOL_MIN_EXPECTED more are to come. So a
first check of 1,000 pages parses on both cores (~10% less wall here), while one of 200
pages (as fast without, 8 MB less), a cycle of 304s, or of 10% changed pages (100 bodies
of 1,000 pages: no faster with a pool, +15 MB), starts none.
Bodies are parsed in process until a worker has answered, so none waits for the start.
A body of more than DEPTH_GATE tags never goes to the pool: `parseguard.py` parses it in a
child of its own under a deadline, in a thread, so the event loop goes on fetching.

A crash of the parser (a segfault in C kills the worker and the parse it ran; that one and
every body still queued fail with `BrokenExecutor`) is not the end of the cycle: the pool is
replaced, and each of those bodies is parsed again alone in a one-worker quarantine pool, so
only the body that crashes it again becomes an error ("the parser crashed on this page").
With the test hook MONITOR_TEST_CRASH_ON set (`parse_worker.py`), a pooled cycle starts its
pool at the first body and every body waits for it, so the hook's body is sure to reach a
worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, Future
from types import TracebackType
from typing import TYPE_CHECKING

from monitor.config import PageConfig
from monitor.extract import Extraction
from monitor.models import PageObservation
from monitor.observe import Body
from monitor.parse_worker import CRASH_HOOK_ENV, Layout, ParseJob, as_layout, parse_job, ready
from monitor.parseguard import guarded_extract_page, may_parse_slowly

if TYPE_CHECKING:  # imported when a pool starts: no small cycle should pay for it
    from monitor.workerpool import WorkerPool

log = logging.getLogger("monitor")

POOL_MIN_PAGES = 16  # a cycle of more pages than this may parse in worker processes,
POOL_START_BODIES = 32  # once it has parsed this many bodies in process (~0.1 s of CPU)
# and expects at least this many more: a 10%-changed cycle of 1,000 pages (~100 bodies,
# no faster with a pool) must not reach it on an unlucky first sample (33 bodies in the
# first 240 pages answered: 104 expected), nor a first check of 200 pages (~167: even on
# wall with a pool since extraction got ~35% cheaper, and 63 MB against 55), a first check
# of 1,000 pages must (~970: 10.2-11.5 s against 12.0-12.4 s without)
POOL_MIN_EXPECTED = 400


def parse_workers() -> int:
    """Worker processes: one per core but one, left to the event loop (at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class Parser:
    """Parses listing bodies for one cycle: in process, or in worker processes."""

    def __init__(self, *, pool: bool, pages: int = 0, workers: int | None = None) -> None:
        self.pool = pool
        self.pages = pages  # in the cycle: with those answered, how many bodies are to come
        self.workers = workers or parse_workers()
        self.wait_for_pool = bool(os.environ.get(CRASH_HOOK_ENV))  # test hook: see above
        self._main: WorkerPool | None = None
        self._ready: Future[bool] | None = None  # the main pool's first answer
        self._quarantine: WorkerPool | None = None
        self._alone = asyncio.Lock()  # quarantine parses run one at a time
        self._closed = False
        self._parsed = 0  # bodies this cycle, in process or not
        self._answered = 0  # pages whose check is over (a 304 included)

    async def extract(self, page: PageConfig, body: Body) -> Extraction | PageObservation:
        """The page's entries with the first layout that fits, or an error observation."""
        self._parsed += 1
        if may_parse_slowly(body.data):
            # in a child process under a deadline (parseguard.py), which the pool has not;
            # the event loop goes on fetching meanwhile
            return await asyncio.to_thread(extract_listing_page, page, body)
        starting = self.wait_for_pool or self._main is not None or self._worth_a_pool()
        pool = self._main_pool() if self.pool and starting and not self._closed else None
        if pool is None:
            return extract_listing_page(page, body)
        job = ParseJob(body.data, body.content_type, body.url, _layouts(page))
        try:
            return await _run(pool, job, page, body)
        except BrokenExecutor:  # a worker died
            self._drop_main(pool)  # the first coroutine to see it replaces the pool
        async with self._alone:  # which body crashed it? each in flight is tried alone
            return await self._alone_in_quarantine(job, page, body)

    def page_done(self) -> None:
        """One page of the cycle is checked (its bodies parsed, or a 304)."""
        self._answered += 1

    def _worth_a_pool(self) -> bool:
        return worth_a_pool(parsed=self._parsed, answered=self._answered, pages=self.pages)

    async def _alone_in_quarantine(
        self, job: ParseJob, page: PageConfig, body: Body
    ) -> Extraction | PageObservation:
        if self._quarantine is None:
            self._quarantine = _start(1)
        pool = self._quarantine
        try:
            return await _run(pool, job, page, body)
        except BrokenExecutor:  # a worker died
            self._quarantine = None
            _shutdown(pool)
            log.error("the parser crashed on %s (page %s)", body.url, page.name)
            detail = f"{body.url}: the parser crashed on this page"
            return PageObservation(page.name, "error", detail=detail)

    def _main_pool(self) -> WorkerPool | None:
        """The pool to send a body to; None: parse in process (it is starting, or cannot)."""
        if self._main is None:
            try:
                self._main = _start(self.workers)
                self._ready = self._main.submit(ready)
            except OSError as error:  # no processes here: parse in process, as small cycles do
                log.warning("cannot start parse workers, parsing in process: %s", error)
                self.pool = False
                return None
        assert self._ready is not None
        if self.wait_for_pool:
            return self._main
        if not self._ready.done():
            return None
        if self._ready.exception() is not None:  # died starting: a body's fault it is not
            log.warning("parse workers failed to start, parsing in process")
            self.pool = False
            self._drop_main(self._main)
            return None
        return self._main

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

    def _drop_main(self, broken: WorkerPool) -> None:
        if self._main is broken:
            self._main = self._ready = None
            _shutdown(broken)


def extract_listing_page(page: PageConfig, body: Body) -> Extraction | PageObservation:
    """The page's entries with the first layout that fits, or an error observation; a big
    body is parsed in a child process under a deadline (parseguard.py)."""
    try:
        return guarded_extract_page(
            body.data, content_type=body.content_type, base_url=body.url, layouts=page.all_layouts
        )
    except Exception as error:  # a bug in extraction must not stop the other pages
        return extraction_failed(page, body, error)


def extraction_failed(page: PageConfig, body: Body, error: Exception) -> PageObservation:
    """The error observation of a body whose extraction raised (logged with its traceback)."""
    log.error("extracting %s failed", body.url, exc_info=error)
    return PageObservation(page.name, "error", detail=f"{body.url}: cannot extract: {error}")


def worth_a_pool(*, parsed: int, answered: int, pages: int) -> bool:
    """Enough bodies parsed in process, and enough still expected at the rate so far."""
    if parsed <= POOL_START_BODIES:
        return False
    per_page = parsed / max(answered, 1)
    return (pages - answered) * per_page >= POOL_MIN_EXPECTED


def _layouts(page: PageConfig) -> tuple[Layout, ...]:
    """The page's selector sets as plain values (a worker imports no config)."""
    return tuple(as_layout(s) for s in page.all_layouts)


def parser_for(pages: Sequence[PageConfig]) -> Parser:
    """The cycle's parser: worker processes for more than POOL_MIN_PAGES pages."""
    return Parser(pool=len(pages) > POOL_MIN_PAGES, pages=len(pages))


async def _run(
    pool: WorkerPool, job: ParseJob, page: PageConfig, body: Body
) -> Extraction | PageObservation:
    """Parse `job` in `pool`; BrokenExecutor passes through, any other error is the page's."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(pool, parse_job, job)
    except BrokenExecutor:  # a worker died
        raise
    except Exception as error:  # a bug in extraction must not stop the other pages
        return extraction_failed(page, body, error)


def _start(workers: int) -> WorkerPool:
    from monitor.workerpool import WorkerPool

    # Fresh interpreters, not forks: forking a process with threads running (the daemon's)
    # can copy a held lock.
    return WorkerPool(workers)


def _shutdown(pool: WorkerPool) -> None:
    pool.shutdown(wait=True, cancel_futures=True)
