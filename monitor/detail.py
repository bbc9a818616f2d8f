"""The entry-page phase ([pages.detail]): fetch the entries' own pages that are due.

Runs after a `check` cycle (same lock, its own transaction) and as the daemon's second
job. In one direction, like the cycle: read the entries and their pages' memory, plan
what is due (`linkcheck.py`, pure), fetch each due page with the cycle's politeness
(conditional request, `max_bytes`, user agent, `HostLimits` per host), archive every
exchange, read what the answer means, then write everything in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from msgspec import Struct
from msgspec.structs import replace

from monitor.archive import CycleWriter
from monitor.check import queued_deliveries
from monitor.config import Config, PageConfig
from monitor.errors import CycleCancelled
from monitor.extract import is_html
from monitor.fetch import Target, Validators, fetch_target, make_client
from monitor.linkcheck import DueLink, LinkVerdict, PageSigns, judge_link, plan_links, read_link
from monitor.listing import archive_fetch
from monitor.lock import data_dir_lock
from monitor.models import Event, FetchResult, utc_now
from monitor.observe import maybe_cut_short
from monitor.parseguard import guarded_extract_page, guarded_extract_text
from monitor.paths import warc_dir
from monitor.politeness import HostLimits
from monitor.store import LastResponse, Store, open_store
from monitor.store.detail_rows import DetailRecord, LinkCheck

if TYPE_CHECKING:
    from monitor.notify.outbox import DeliveryReport

log = logging.getLogger("monitor")
Clock = Callable[[], datetime]
T = TypeVar("T")
STOP_POLL_S = 0.1


class DetailReport(Struct, frozen=True):
    """What an entry-page phase did: its check id (None: nothing was due), events, counts."""

    check_id: int | None
    events: tuple[Event, ...]
    checked: int
    gone: int  # of those checked, how many answered gone this time
    errors: int
    notify: DeliveryReport | None = None  # the link events' notifications, sent after commit


NOTHING = DetailReport(None, (), 0, 0, 0)


def detail_pages(config: Config, pages: Sequence[PageConfig] | None = None) -> list[PageConfig]:
    """The pages (all configured, or `pages`) whose entries' own pages are checked."""
    return [p for p in (config.pages if pages is None else pages) if p.detail is not None]


def run_detail(
    config: Config,
    *,
    clock: Clock = utc_now,
    wait_s: float = 0.0,
    stop: threading.Event | None = None,
    purpose: str = "monitor run (entry pages)",
) -> DetailReport:
    """The entry pages due now, under the data directory's lock (the daemon's job)."""
    if not detail_pages(config):
        return NOTHING
    with data_dir_lock(config.monitor.data_dir, wait_s=wait_s, purpose=purpose):
        store = open_store(config, write=True)
        try:
            return check_entry_pages(config, store, detail_pages(config), clock, stop)
        finally:
            store.close()


def check_entry_pages(
    config: Config,
    store: Store,
    pages: Sequence[PageConfig],
    clock: Clock,
    stop: threading.Event | None = None,
    *,
    digest_joins: datetime | None = None,
    deliver: bool = True,
) -> DetailReport:
    """Fetch, judge and record the due entry pages of `pages`; the caller holds the lock.

    After a `check` cycle, `digest_joins` is the cycle's time (a digest target's link
    events join that cycle's message) and the caller delivers (`deliver=False`).
    """
    pages = detail_pages(config, pages)
    if not pages:
        return NOTHING
    started_at = clock()
    state = store.read_detail_state([p.name for p in pages])  # 1. read
    plan = plan_links(pages, state.candidates, state.memories, started_at)
    checks: list[LinkCheck] = []
    warc_file = None
    if plan.due:
        writer = CycleWriter(warc_dir(config), uuid.uuid4().hex[:8], started_at,
                             max_bytes=config.monitor.warc_max_bytes)  # fmt: skip
        try:  # 2. fetch, archive, judge
            work = _fetch_all(config, plan.due, dict(state.last_responses), writer, clock)
            checks = asyncio.run(_unless_stopped(work, stop))
        finally:
            writer.close()  # fsync the WARC before the database points at it
        warc_file = writer.path.name if writer.path else None
    finished_at = clock()
    record = DetailRecord(  # 3. write, in one transaction, with the notifications
        started_at=started_at,
        finished_at=finished_at,
        pages=tuple(p.name for p in pages),
        checks=tuple(checks),
        memories=plan.memories,
        warc_file=warc_file,
        deliveries=queued_deliveries(
            config, [e for c in checks for e in c.events], finished_at, digest_joins
        ),
    )
    recorded = store.record_detail(record)
    notified = None
    if record.deliveries and deliver:  # 4. after the commit, as a cycle does
        from monitor.notify.deliver import deliver_outbox

        notified = deliver_outbox(config, store.outbox(), now=clock(), stop=stop)
    return DetailReport(
        check_id=recorded.check_id,
        events=recorded.events,
        checked=len(checks),
        gone=sum(1 for c in checks if c.outcome == "gone"),
        errors=sum(1 for c in checks if c.outcome == "error"),
        notify=notified,
    )


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: threading.Event | None) -> T:
    """`work`'s result, or CycleCancelled once `stop` is set (a thread's event: polled)."""
    task = asyncio.ensure_future(work)
    while stop is not None and not stop.is_set():
        done, _ = await asyncio.wait({task}, timeout=STOP_POLL_S)
        if done:
            return task.result()
    if stop is None:
        return await task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise CycleCancelled("stopped while fetching entry pages: none of them was recorded")


async def _fetch_all(
    config: Config,
    due: Sequence[DueLink],
    last_responses: dict[str, LastResponse],
    writer: CycleWriter,
    clock: Clock,
) -> list[LinkCheck]:
    settings = config.monitor
    limit = asyncio.Semaphore(settings.concurrency)
    hosts = HostLimits()
    listing_urls = [p.url for p in config.pages]
    now = clock()

    async def one(link: DueLink) -> LinkCheck:
        async with limit:
            result = await fetch_target(client, _target(link), settings, limits=hosts, clock=clock)
        captures = archive_fetch(writer, result, last_responses)
        verdict = _verdict(link, result, listing_urls)
        memory, events = judge_link(link, verdict, now=now, confirm_checks=settings.confirm_checks,
                                    new_id=lambda: str(uuid.uuid4()))  # fmt: skip
        if verdict.outcome == "ok" and result.status is not None and 200 <= result.status < 300:
            # validators of a real page only: a 304 must never confirm a soft 404 or a block
            memory = replace(memory, etag=result.etag, last_modified=result.last_modified)
        return LinkCheck(memory, verdict.outcome, tuple(captures), events)

    async with make_client(settings) as client:
        return list(await asyncio.gather(*(one(link) for link in due)))


def _target(link: DueLink) -> Target:
    """A conditional request when the last good answer left validators (and its text, if read)."""
    memory = link.memory
    validators = None
    has_text = link.detail.content is None or memory.content is not None
    if (memory.etag or memory.last_modified) and has_text:
        validators = Validators(memory.etag, memory.last_modified)
    return Target(link.candidate.link, link.candidate.page, validators)


def _verdict(link: DueLink, result: FetchResult, listing_urls: Sequence[str]) -> LinkVerdict:
    """What the answer means; its body is read here (signs, `content`) and let go."""
    signs = None
    body, status = result.body, result.status
    if result.error is None and body is not None and status is not None and 200 <= status < 300:
        if is_html(result.content_type, body):
            if maybe_cut_short(result, body):
                detail = f"{result.final_url}: the body may be cut short (no Content-Length)"
                return LinkVerdict("error", detail)
            try:
                signs = _signs(body, result, link.detail.content)
            except Exception as error:  # a bug in extraction must not stop the other pages
                log.exception("reading %s failed", result.final_url)
                return LinkVerdict("error", f"{result.final_url}: cannot read: {error}")
    return read_link(
        requested_url=link.candidate.link, final_url=result.final_url, status=status,
        error=result.error, signs=signs, listing_urls=listing_urls,
    )  # fmt: skip


def _signs(body: bytes, result: FetchResult, selector: str | None) -> PageSigns:
    page = guarded_extract_page(body, content_type=result.content_type,
                                base_url=result.final_url, layouts=[])  # fmt: skip
    content = None
    if selector:
        content = guarded_extract_text(body, content_type=result.content_type, selector=selector)
    return PageSigns(page.title, page.heading, page.text, content)


__all__ = ["DetailReport", "check_entry_pages", "detail_pages", "run_detail"]
