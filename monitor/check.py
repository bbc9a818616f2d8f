"""One check cycle: fetch -> archive -> extract -> classify -> store -> publish.

Pages are fetched, archived and extracted concurrently (`concurrency` at a
time); only entries travel on, never bodies, so memory stays flat however many
pages are watched. Classification then looks at all pages together, and the
whole cycle is recorded in one database transaction, after the WARC file is
flushed to disk: a crash leaves whole cycles only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from monitor.archive import CycleWriter, PreviousCapture, read_capture
from monitor.classify import classify_cycle
from monitor.config import Config, PageConfig
from monitor.decoders import decode_payload
from monitor.errors import ConfigError, MonitorError
from monitor.extract import extract_entries, is_html
from monitor.fetch import Target, Validators, fetch_target, make_client
from monitor.lock import data_dir_lock
from monitor.models import (
    CaptureRef,
    Event,
    FetchResult,
    HttpExchange,
    PageObservation,
    PageState,
    format_time,
    utc_now,
)
from monitor.publish import feed_info, publish_feed
from monitor.store import PageMemory, Store

log = logging.getLogger("monitor")

Clock = Callable[[], datetime]
Progress = Callable[[str, int, int], None]  # (page name, done, total)
STOP_POLL_S = 0.1  # how often the fetch phase looks at run_check's `stop` event


class CycleCancelled(MonitorError):
    """run_check's `stop` was set while pages were being fetched: nothing was recorded."""


@dataclass(frozen=True)
class ArchivedExchange:
    """An exchange once archived: its headers and where it went, not its body."""

    exchange: HttpExchange
    ref: CaptureRef
    body_bytes: int
    previous: PreviousCapture | None


@dataclass(frozen=True)
class PageCheck:
    """One page's fetch, archive and extraction, ready to record and classify."""

    page: PageConfig
    result: FetchResult  # body dropped once extracted
    archived: tuple[ArchivedExchange, ...]
    observation: PageObservation  # capture_id filled in when recorded
    body_key: str | None  # identifies the body + selectors behind the entries
    fetch_updates: dict[str, Any]


@dataclass(frozen=True)
class CheckReport:
    """What a cycle did: its events and how each checked page fared."""

    check_id: int
    events: tuple[Event, ...]
    pages: tuple[PageState, ...]  # states after the cycle, of the checked pages
    checks: tuple[PageCheck, ...]
    duration_s: float
    feed_error: str | None = None

    @property
    def failed_pages(self) -> list[str]:
        return [p.name for p in self.pages if p.status in ("error", "gone")]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed_pages or self.feed_error else 0


def select_pages(config: Config, names: Sequence[str]) -> list[PageConfig]:
    """The configured pages to check: all of them, or the named ones (in config order)."""
    if not names:
        return list(config.pages)
    known = {p.name for p in config.pages}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"--page {unknown[0]!r}: no such page in {config.path} "
            f"(pages: {', '.join(sorted(known))})"
        )
    return [p for p in config.pages if p.name in names]


def run_check(
    config: Config,
    *,
    page_names: Sequence[str] = (),
    clock: Clock = utc_now,
    wait_s: float = 0.0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    purpose: str = "monitor check",
) -> CheckReport:
    """Run one whole cycle under the data directory's lock and return its report.

    Setting `stop` (from another thread) while pages are being fetched cancels the
    fetches and raises CycleCancelled before the transaction begins: nothing is recorded.
    """
    pages = select_pages(config, page_names)
    data_dir = config.monitor.data_dir
    with data_dir_lock(data_dir, wait_s=wait_s, purpose=purpose):
        store = Store(data_dir / "monitor.db")
        try:
            return _cycle(config, store, pages, clock, progress, stop)
        finally:
            store.close()


def _cycle(
    config: Config,
    store: Store,
    pages: list[PageConfig],
    clock: Clock,
    progress: Progress | None,
    stop: threading.Event | None = None,
) -> CheckReport:
    started = time.monotonic()
    started_at = clock()
    data_dir = config.monitor.data_dir
    writer = CycleWriter(data_dir / "warc", uuid.uuid4().hex[:8], started_at)
    try:
        checks = asyncio.run(_check_pages(config, store, pages, writer, progress, stop))
    finally:
        writer.close()  # fsync the WARC before the database points at it
    warc_file = writer.path.name if writer.path else None

    now = clock()
    with store.cycle():
        check_id = store.insert_check(started_at, [p.name for p in pages])
        observations = {}
        for page_check in checks:
            capture_id = _record_captures(store, check_id, page_check)
            observations[page_check.page.name] = replace(
                page_check.observation, capture_id=capture_id
            )
        result = classify_cycle(
            store.known_entries,  # loaded only if some page's entries changed
            store.page_states(config.pages),
            observations,
            now=now,
            confirm_checks=config.monitor.confirm_checks,
            anomaly_ratio=config.monitor.anomaly_ratio,
            new_id=lambda: str(uuid.uuid4()),
        )
        updates = {}
        checked = {c.page.name: c for c in checks}
        for page in result.pages:
            if page.name not in checked:
                continue
            update = dict(checked[page.name].fetch_updates)
            update["last_capture_id"] = observations[page.name].capture_id
            if page.name in result.accepted_pages:
                update["accepted_key"] = checked[page.name].body_key
            elif page.name in result.cleared_pages:
                update["accepted_key"] = None
            if page.status == "ok":
                update["last_ok_at"] = update["last_checked_at"]
            updates[page.name] = update
        store.record_cycle(check_id, result, config.pages, updates, now=now, warc_file=warc_file)

    feed_error = _publish(config, store, now)
    return CheckReport(
        check_id=check_id,
        events=result.events,
        pages=tuple(p for p in result.pages if p.name in checked),
        checks=tuple(checks),
        duration_s=time.monotonic() - started,
        feed_error=feed_error,
    )


async def _check_pages(
    config: Config,
    store: Store,
    pages: list[PageConfig],
    writer: CycleWriter,
    progress: Progress | None,
    stop: threading.Event | None = None,
) -> list[PageCheck]:
    settings = config.monitor
    limit = asyncio.Semaphore(settings.concurrency)
    done = 0

    async def one(page: PageConfig) -> PageCheck:
        nonlocal done
        async with limit:
            memory = store.page_memory(page.name)
            validators = None
            if memory.accepted_key and (memory.etag or memory.last_modified):
                validators = Validators(memory.etag, memory.last_modified)
            target = Target(page.url, page.name, validators)
            result = await fetch_target(client, target, settings)
        page_check = _process(page, result, writer, store, memory, settings.max_bytes)
        done += 1
        if progress:
            progress(page.name, done, len(pages))
        return page_check

    async with make_client(settings) as client:
        fetching = asyncio.gather(*(one(p) for p in pages))
        if stop is None:
            return list(await fetching)
        return list(await _unless_stopped(fetching, stop))


async def _unless_stopped(
    work: asyncio.Future[list[PageCheck]], stop: threading.Event
) -> list[PageCheck]:
    """`work`'s result, or CycleCancelled once `stop` is set (a thread's event: polled)."""
    while not stop.is_set():
        done, _ = await asyncio.wait({work}, timeout=STOP_POLL_S)
        if done:
            return work.result()
    work.cancel()  # cancels every page's fetch; the WARC file so far is orphaned, harmless
    with contextlib.suppress(asyncio.CancelledError):
        await work
    raise CycleCancelled("stopped while fetching the pages: nothing of this cycle was recorded")


def _process(
    page: PageConfig,
    result: FetchResult,
    writer: CycleWriter,
    store: Store,
    memory: PageMemory,
    max_bytes: int,
) -> PageCheck:
    """Archive every exchange of a fetch, then turn it into an observation."""
    archived = []
    for exchange in result.exchanges:
        previous = store.previous_capture(exchange.url)
        ref = writer.write_exchange(exchange, previous)  # StoreError names the file
        archived.append(
            ArchivedExchange(replace(exchange, raw_body=b""), ref, len(exchange.raw_body), previous)
        )
    updates: dict[str, Any] = {
        "last_checked_at": format_time(result.started_at),
        "last_detail": result.error or (f"HTTP {result.status}" if result.status else None),
    }
    observation, body_key = _observe(page, result, store, memory, max_bytes)
    if result.status is not None and 200 <= result.status < 300 and result.error is None:
        # The validators and the key of the same body: a later 304 means "this body".
        updates["etag"] = result.etag
        updates["last_modified"] = result.last_modified
        updates["body_key"] = body_key
    if observation.outcome == "error":
        updates["last_detail"] = observation.detail
    slim = replace(result, body=None, exchanges=())
    return PageCheck(page, slim, tuple(archived), observation, body_key, updates)


def _observe(
    page: PageConfig, result: FetchResult, store: Store, memory: PageMemory, max_bytes: int
) -> tuple[PageObservation, str | None]:
    """What the fetch means for the page's entries (the fast path skips extraction)."""
    name = page.name
    if result.error is not None:
        return PageObservation(name, "error", detail=result.error), None
    if result.gone:
        return PageObservation(
            name, "gone", detail=f"{result.final_url}: HTTP {result.status}"
        ), None
    body, content_type = result.body, result.content_type
    if result.not_modified:
        if memory.body_key is not None and memory.body_key == memory.accepted_key:
            return PageObservation(name, "unchanged"), memory.accepted_key  # no read, no parse
        try:
            reloaded = _reload_body(store, result, max_bytes)
        except MonitorError as error:
            detail = f"{result.final_url}: HTTP 304, but its archived body is unreadable: {error}"
            return PageObservation(name, "error", detail=detail), None
        if reloaded is None:
            detail = f"{result.final_url}: HTTP 304 but no earlier body is archived"
            return PageObservation(name, "error", detail=detail), None
        body, content_type = reloaded
    assert body is not None
    if not is_html(content_type, body):
        detail = f"{result.final_url}: not HTML ({content_type or 'no Content-Type'})"
        return PageObservation(name, "error", detail=detail), None
    if not result.not_modified and _maybe_cut_short(result, body):
        detail = (
            f"{result.final_url}: the body may be cut short: no Content-Length, and the "
            "connection closed before </html>"
        )
        return PageObservation(name, "error", detail=detail), None
    key = body_key(body, content_type, result.final_url, page)
    if key == memory.accepted_key:
        return PageObservation(name, "unchanged"), key
    try:
        entries = extract_entries(
            body, base_url=result.final_url, select=page.select, content_type=content_type
        )
    except Exception as error:  # a bug in extraction must not stop the other pages
        log.exception("extracting %s failed", result.final_url)
        return PageObservation(
            name, "error", detail=f"{result.final_url}: cannot extract: {error}"
        ), None
    return PageObservation(name, "ok", entries=tuple(entries)), key


def _maybe_cut_short(result: FetchResult, body: bytes) -> bool:
    """True when a page's HTML never ends and nothing else says the body was whole.

    A response with neither a Content-Length nor chunked framing (nor a compression with
    its own end mark) ends when the server closes the connection, so a connection lost
    mid-body looks complete: accepting half a page would remove the other half's entries.
    """
    if not result.exchanges:
        return False
    headers = {k.lower(): v.lower() for k, v in result.exchanges[-1].response_headers}
    if "content-length" in headers or "chunked" in headers.get("transfer-encoding", ""):
        return False
    if headers.get("content-encoding", "identity").strip() not in ("", "identity"):
        return False
    text = body.lower()
    return b"<html" in text and b"</html" not in text


def _reload_body(
    store: Store, result: FetchResult, max_bytes: int
) -> tuple[bytes, str | None] | None:
    """The archived body a 304 refers to, decoded, with its Content-Type."""
    previous = store.previous_capture(result.final_url)
    if previous is None:
        return None
    capture_id = store.capture_by_record(previous.record_id)
    capture = store.capture(capture_id) if capture_id is not None else None
    if capture is None or capture.warc_file is None or capture.warc_offset is None:
        return None
    data_dir = store.path.parent
    record = read_capture(data_dir / "warc", capture.warc_file, capture.warc_offset)
    return decode_payload(record.headers, record.raw_payload, max_bytes), capture.content_type


def body_key(body: bytes, content_type: str | None, final_url: str, page: PageConfig) -> str:
    """Identifies what extraction depends on: the body, its type, its URL and the selectors."""
    digest = hashlib.sha256(body)
    for part in (content_type or "", final_url, repr(page.select)):
        digest.update(b"\0" + part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _record_captures(store: Store, check_id: int, page_check: PageCheck) -> int:
    """Insert a capture row per archived exchange (or one for a fetch with no answer)."""
    result = page_check.result
    if not page_check.archived:
        return store.insert_capture(
            check_id, result, None, None, body_bytes=None, final=True, original_capture_id=None
        )
    capture_id = 0
    last = len(page_check.archived) - 1
    for i, item in enumerate(page_check.archived):
        original = None
        if item.ref.record_type == "revisit" and item.ref.refers_to:
            original = store.capture_by_record(item.ref.refers_to)
        capture_id = store.insert_capture(
            check_id,
            result,
            item.exchange,
            item.ref,
            body_bytes=item.body_bytes,
            final=i == last,
            original_capture_id=original,
        )
    return capture_id


def _publish(config: Config, store: Store, now: datetime) -> str | None:
    """Rewrite the feed file if one is configured; a failure is reported, not raised."""
    if config.feed.path is None:
        return None
    try:
        events = store.events(limit=config.feed.max_entries)
        publish_feed(
            config.feed.path,
            events,
            feed_info(config),
            max_entries=config.feed.max_entries,
            now=now,
        )
    except MonitorError as error:
        return str(error)
    return None
