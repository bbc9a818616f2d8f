"""Parses that could run for minutes: in a child process, killed at a deadline.

Lexbor builds a page's tree in time quadratic in its nesting, and nothing in it bounds
the nesting (Blink and WebKit stop nesting at 512 levels; servo/html5ever#788 is the same
problem in another parser). `extract/limits.py` cuts the deep nesting it can see before
the parse, but it reads tags with a regular expression and a simple model of which end
tag closes what, and a page built to fool it nests as deep as its size allows: end tags
inside comments (`<div><!--</div>-->` repeated: 878 KB took 5.7 s), or end tags that the
HTML5 algorithm ignores (`<span><div></span>` repeated: 439 KB took 2.7 s). The cost grows
with the square of the size, so one watched page could hold a check for minutes.

A page of at most DEPTH_GATE tags costs at most ~0.6 s however it nests, and is parsed
where it is. A bigger one (a listing of ~1,000 entries or more) is parsed in a fresh
interpreter, as the parse workers are (`workerpool.py`), which is killed at DEADLINE_S:
that page's extraction then fails with "parsing took longer than 60 s", which the callers
report as they report any failed extraction (a `page-error`, an entry page's error, a
message from `try`). Its price, on such pages only: the child's start, ~0.1-0.2 s of CPU.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from monitor.extract import Extraction, extract_page, extract_text
from monitor.extract.limits import DEPTH_GATE
from monitor.parse_worker import ParseJob, as_layout, parse_job, text_job

log = logging.getLogger("monitor")

DEADLINE_S = 60.0
DEADLINE_ENV = "MONITOR_PARSE_DEADLINE_S"  # tests set a shorter one

Result = TypeVar("Result")


class ParseTimeout(Exception):
    """A page's parse outlived the deadline (its child process was killed)."""


def deadline_s() -> float:
    return float(os.environ.get(DEADLINE_ENV) or DEADLINE_S)


def may_parse_slowly(body: bytes) -> bool:
    """More tags than a parse is bounded for (every tag has a `<`, and so has some text)."""
    return body.count(b"<") > DEPTH_GATE


def guarded_extract_page(
    body: bytes, *, content_type: str | None, base_url: str, layouts: Sequence[Any]
) -> Extraction:
    """`extract.extract_page`, in a child process under the deadline when the body is big."""
    if not may_parse_slowly(body):
        return extract_page(body, content_type=content_type, base_url=base_url, layouts=layouts)
    job = ParseJob(body, content_type, base_url, tuple(as_layout(s) for s in layouts))
    return _in_child(parse_job, job)


def guarded_extract_text(body: bytes, *, content_type: str | None, selector: str | None) -> str:
    """`extract.extract_text`, in a child process under the deadline when the body is big."""
    if not may_parse_slowly(body):
        return extract_text(body, content_type=content_type, selector=selector)
    return _in_child(text_job, body, content_type, selector)


def _in_child(function: Callable[..., Result], *args: Any) -> Result:
    """function(*args) in a one-worker pool. Raises ParseTimeout past the deadline and
    RuntimeError when the parser crashed; where no process can start, runs it here."""
    from monitor.workerpool import WorkerPool

    try:
        pool = WorkerPool(1, stop_wait_s=0.0)  # at shutdown, a job still running is killed
    except OSError as error:
        log.warning("cannot start a parse worker, parsing in process: %s", error)
        return function(*args)
    limit = deadline_s()
    try:
        result: Result = pool.submit(function, *args).result(timeout=limit)
        return result
    except concurrent.futures.TimeoutError:
        raise ParseTimeout(f"parsing took longer than {limit:g} s") from None
    except concurrent.futures.BrokenExecutor:
        raise RuntimeError("the parser crashed on this page") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
