"""One check cycle, in one direction: read state -> fetch -> decide -> write -> publish.

1. read: each page's memory and the last responses, from the store, before anything else;
2. fetch: every page concurrently (`concurrency` at a time), each archived and observed as
   its body arrives (`listing.py`); only observations travel on, never bodies;
3. decide: classification looks at all pages together (pure: `classify.py`);
4. write: the WARC file is flushed to disk, then the whole cycle is one transaction;
5. entry pages: those due ([pages.detail], `detail.py`), in their own transaction;
6. publish: the feed file, then notifications: queued in the transaction with the events
   (`plan_deliveries`), sent after the commit within a time budget (`notify/deliver.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from msgspec import Struct
from msgspec.structs import replace

from monitor.archive import CycleWriter
from monitor.classify import classify_cycle
from monitor.config import Config, PageConfig
from monitor.errors import ConfigError, CycleCancelled, MonitorError
from monitor.extract import EXTRACTOR_VERSION
from monitor.fetch import make_client
from monitor.listing import PageCheck, check_listing
from monitor.lock import cycle_lock
from monitor.models import CycleResult, Event, PageState, utc_now
from monitor.parsing import parser_for
from monitor.paths import DataDir, warc_dir
from monitor.publish import (
    feed_fingerprint,
    feed_info,
    feed_is_current,
    publish_feed,
    remember_feed,
)
from monitor.rederive import rederive_stale
from monitor.store import CycleRecord, CycleState, EventQuery, PageUpdate, Store, open_store

if TYPE_CHECKING:  # the optional stages are imported when a cycle needs them (a fast start)
    from monitor.detail import DetailReport
    from monitor.notify.outbox import DeliveryReport, NewDelivery

__all__ = ["CheckReport", "CycleCancelled", "group_pages", "run_check", "select_pages"]

Clock = Callable[[], datetime]
Progress = Callable[[str, int, int], None]  # (page name, done, total)
STOP_POLL_S = 0.1  # how often the fetch phase looks at run_check's `stop` event


class CheckReport(Struct, frozen=True):
    """What a cycle did: its events and how each checked page fared."""

    check_id: int
    events: tuple[Event, ...]
    pages: tuple[PageState, ...]  # states after the cycle, of the checked pages
    checks: tuple[PageCheck, ...]
    duration_s: float
    feed_error: str | None = None
    first_checked: frozenset[str] = frozenset()  # checked pages no cycle had recorded before
    links: DetailReport | None = None  # the entry pages checked after the cycle, if any
    notify: DeliveryReport | None = None  # never part of exit_code: a report on stderr
    cycle_at: datetime | None = None  # when the cycle was decided (its deliveries' time)

    @property
    def failed_pages(self) -> list[str]:
        return [p.name for p in self.pages if p.status in ("error", "gone")]

    @property
    def anomalous_pages(self) -> list[str]:
        return [p.name for p in self.pages if p.status == "anomaly"]

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
    entry_pages: bool = True,
) -> CheckReport:
    """Run one whole cycle under the cycle lock (flock, or PostgreSQL's) and return its report.

    Setting `stop` (from another thread) while pages are being fetched cancels the
    fetches and raises CycleCancelled before the transaction begins: nothing is recorded.
    With `entry_pages`, the due entry pages of the checked pages follow (the daemon
    runs them as their own job instead).
    """
    pages = select_pages(config, page_names)
    with cycle_lock(config, [p.name for p in pages], wait_s=wait_s, purpose=purpose):
        store = open_store(config, write=True)
        try:
            if not (entry_pages and any(p.detail is not None for p in pages)):
                return _cycle(config, store, pages, clock, progress, stop)
            # The entry pages follow: notifications wait for them, so that a digest
            # target gets one message for the whole check (their events join its digest).
            # (Should the entry pages fail, the cycle's messages wait for the next check.)
            report = _cycle(config, store, pages, clock, progress, stop, deliver=False)
            report = _with_entry_pages(config, store, pages, clock, stop, report)
            return replace(report, notify=_deliver(config, store, clock, stop))
        finally:
            store.close()


def _cycle(
    config: Config,
    store: Store,
    pages: list[PageConfig],
    clock: Clock,
    progress: Progress | None,
    stop: threading.Event | None,
    *,
    deliver: bool = True,
) -> CheckReport:
    started = time.monotonic()
    started_at = clock()
    scope = group_pages(config, pages)  # pages of other groups are classified apart
    # 1. read; entries an older extraction engine read are first re-derived, silently
    with _collector_paused():
        state = store.read_cycle_state([PageState(name=p.name, role=p.role) for p in scope])
    state = rederive_stale(config, store, state)

    writer = CycleWriter(
        warc_dir(config),
        uuid.uuid4().hex[:8],
        started_at,
        max_bytes=config.monitor.warc_max_bytes,
    )
    try:  # 2. fetch, archive, observe
        checks = asyncio.run(_check_pages(config, state, pages, writer, progress, stop))
    finally:
        writer.close()  # fsync the WARC before the database points at it
    warc_file = writer.path.name if writer.path else None

    now = clock()
    with _collector_paused():
        result = classify_cycle(  # 3. decide; known entries are read only if a list changed
            store.known_entries,
            [state.pages[p.name].state for p in scope],
            {c.page.name: c.observation for c in checks},
            now=now,
            confirm_checks=config.monitor.confirm_checks,
            anomaly_ratio=config.monitor.anomaly_ratio,
            new_id=lambda: str(uuid.uuid4()),
            member_fields=store.member_fields,  # read for the pages decided on, not all
        )
    # Each change is rendered (a bounded word diff) once, here, and stored with its event.
    if any(e.changes for e in result.events):
        from monitor.feed import changes_html

        result = replace(result, events=tuple(
            replace(e, changes_html=changes_html(e.changes)) if e.changes else e
            for e in result.events
        ))  # fmt: skip
    record = CycleRecord(  # 4. write, in one transaction
        started_at=started_at,
        finished_at=now,
        pages=tuple(p.name for p in pages),
        captures=tuple(c for check in checks for c in check.captures),
        result=result,
        updates=_page_updates(checks, result),
        warc_file=warc_file,
        deliveries=queued_deliveries(config, result.events, now),
    )
    with _collector_paused():  # a first check writes a row or two per entry
        recorded = store.record_cycle(record)
    # The first check of every page after a backfill ran before it (rarely): the lock held
    # is every page's, as rebuilding the imported history needs.
    first_check = any(state.pages[p.name].state.status == "new" for p in pages)
    every_page = len(pages) == len(config.pages)
    if first_check and every_page and store.count("imported_captures"):
        from monitor.backfill.run import settle_at_first_check

        settle_at_first_check(config, store, started_at)

    feed_error = _publish(config, store)  # 5. publish
    notified = _deliver(config, store, clock, stop) if deliver else None
    checked = {c.page.name for c in checks}
    return CheckReport(
        check_id=recorded.check_id,
        events=recorded.events,
        pages=tuple(p for p in result.pages if p.name in checked),
        first_checked=frozenset(p.name for p in pages if state.pages[p.name].state.status == "new"),
        checks=tuple(checks),
        duration_s=time.monotonic() - started,
        feed_error=feed_error,
        notify=notified,
        cycle_at=now,
    )


def _deliver(
    config: Config, store: Store, clock: Clock, stop: threading.Event | None
) -> DeliveryReport | None:
    """Send what the outbox holds that is due (no targets: no outbox to read)."""
    if not config.notify:
        return None
    from monitor.notify.deliver import deliver_outbox

    return deliver_outbox(config, store.outbox(), now=clock(), stop=stop)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a cycle builds its bulk records.

    Reading the state and classifying build a few objects per entry ever seen (rows,
    entries, candidates, index lists), none of them in a reference cycle. Each burst of
    allocations sets off full collections that walk every live object: at 1,000 pages,
    four a cycle of ~90 ms each, ~15% of the daemon's steady cycle. Reference counting
    frees these objects; the collector resumes when the block ends, raised or not.
    """
    if not gc.isenabled():  # already paused (another thread's cycle, or the caller's)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def group_pages(config: Config, pages: Sequence[PageConfig]) -> list[PageConfig]:
    """The configured pages classified with `pages`: those of the same page groups.

    SPEC.md: pages of different groups are classified apart, so a page of another group
    neither keeps this cycle's entries standing nor holds their departure.
    """
    wanted = {p.group for p in pages}
    return [p for p in config.pages if p.group in wanted]


def queued_deliveries(
    config: Config, events: Sequence[Event], now: datetime, joins: datetime | None = None
) -> tuple[NewDelivery, ...]:
    """The notifications to queue with a phase's events, in its transaction: a cycle's or
    an entry-page phase's (none without [[notify]], and then no notify module is loaded).
    `joins`: the time of the cycle whose digests these events join (NewDelivery.joins)."""
    if not config.notify or not events:
        return ()
    from monitor.notify.outbox import plan_deliveries

    return tuple(plan_deliveries(config.notify, events, cycle_at=now, joins=joins))


def _with_entry_pages(
    config: Config,
    store: Store,
    pages: list[PageConfig],
    clock: Clock,
    stop: threading.Event | None,
    report: CheckReport,
) -> CheckReport:
    """The report with the due entry pages checked and recorded, and the feed rewritten."""
    from monitor.detail import check_entry_pages

    try:
        links = check_entry_pages(
            config, store, pages, clock, stop, digest_joins=report.cycle_at, deliver=False
        )
    except CycleCancelled:  # the cycle is recorded; the entry pages wait for the next one
        return report
    if not links.events:
        return replace(report, links=links)
    feed_error = _publish(config, store)
    return replace(report, events=report.events + links.events, links=links,
                   feed_error=feed_error)  # fmt: skip


def _page_updates(checks: Sequence[PageCheck], result: CycleResult) -> dict[str, PageUpdate]:
    """Each checked page's fetch memory, with what classification made of its body."""
    states = {p.name: p for p in result.pages}
    updates = {}
    for check in checks:
        name = check.page.name
        accept = "keep"
        if name in result.accepted_pages:
            accept = "set"
        elif name in result.cleared_pages:
            accept = "clear"
        updates[name] = replace(
            check.update,
            ok=states[name].status == "ok",
            accept=accept,
            # A list that holds entries back is provisional: its body is read again next time.
            accepted_key=(
                check.body_key if accept == "set" and name not in result.holding_pages else None
            ),
            extractor=EXTRACTOR_VERSION if accept == "set" else None,
            detail=(
                check.observation.detail
                if check.observation.outcome == "error"
                else check.update.detail
            ),
        )
    return updates


async def _check_pages(
    config: Config,
    state: CycleState,
    pages: list[PageConfig],
    writer: CycleWriter,
    progress: Progress | None,
    stop: threading.Event | None,
) -> list[PageCheck]:
    settings = config.monitor
    limit = asyncio.Semaphore(settings.concurrency)
    last_responses = dict(state.last_responses)
    done = 0

    async def one(page: PageConfig) -> PageCheck:
        nonlocal done
        async with limit:
            checked = await check_listing(
                client, page, state.pages[page.name], last_responses, writer, settings, parser
            )
        done += 1
        parser.page_done()
        if progress:
            progress(page.name, done, len(pages))
        return checked

    # Bodies are parsed as they arrive (worker processes for many pages, stopped with the phase)
    async with make_client(settings) as client, parser_for(pages) as parser:
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
    work.cancel()  # cancels every page's fetch; the WARC records so far are orphaned, harmless
    with contextlib.suppress(asyncio.CancelledError):
        await work
    raise CycleCancelled("stopped while fetching the pages: nothing of this cycle was recorded")


def _publish(config: Config, store: Store) -> str | None:
    """Rewrite the feed file if one is configured and its bytes would change; a failure is
    reported, not raised."""
    path = config.feed.path
    if path is None:
        return None
    state = DataDir(config.monitor.data_dir).feed_state
    try:
        events = store.events(EventQuery(limit=config.feed.max_entries))
        fingerprint = feed_fingerprint(config, events)
        if feed_is_current(path, state, fingerprint):
            return None
        publish_feed(path, events, feed_info(config), max_entries=config.feed.max_entries)
    except MonitorError as error:
        return str(error)
    remember_feed(path, state, fingerprint)
    return None
