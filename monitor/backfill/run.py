"""`monitor backfill`: import the pages' captures, then derive the imported history afresh.

1. import: list each page's captures (CDX), fetch the ones not recorded yet, one at a time
   within `rate_per_minute`, archive and commit each (`importer.py`);
2. rebuild, under the data directory's lock: re-extract every imported capture before the
   first live check from its WARC record, replay them all in capture-time order
   (`replay.py`), and replace the imported events and versions in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import cast

from msgspec import Struct

from monitor.archive import WarcWriter, read_capture
from monitor.backfill.importer import Fetched, Progress, find_captures, import_captures
from monitor.backfill.polite import RateLimiter
from monitor.backfill.replay import ReplayRules, ReplayStep, derive_history, replay_captures
from monitor.check import select_pages
from monitor.config import Config, PageConfig
from monitor.decoders import decode_payload
from monitor.errors import MonitorError
from monitor.fetch import make_client
from monitor.lock import cycle_lock
from monitor.models import Entry, Event, format_time, utc_now
from monitor.observe import read_signs
from monitor.parseguard import guarded_extract_page
from monitor.paths import warc_dir as archive_dir
from monitor.store import SqliteStore, Store, open_store
from monitor.store.backfill import BackfillStore, ImportedCapture, ImportedHistory
from monitor.store.sqlite_backfill import SqliteBackfillStore

log = logging.getLogger("monitor")
LOCK_WAIT_S = 120.0  # a live check in flight finishes well within this


class BackfillReport(Struct, frozen=True):
    """What a backfill run did, and the imported history it left."""

    fetched: Fetched
    captures: int  # imported captures replayed (before the first live check)
    unfit: int  # of the imported captures, those no layout fits (or not the listing)
    archive_errors: int  # imported captures that were the archive's own pages
    events: tuple[Event, ...]  # every imported event, in time order
    new_events: tuple[Event, ...]  # those not stored before this run


def backfill_store(store: Store) -> BackfillStore:
    """The backfill side of the configured store."""
    if isinstance(store, SqliteStore):
        return SqliteBackfillStore(store)
    from monitor.store.postgres import PostgresStore  # with [cluster] only
    from monitor.store.postgres_backfill import PostgresBackfillStore

    return PostgresBackfillStore(cast(PostgresStore, store))


def run_backfill(
    config: Config,
    *,
    page_names: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
    progress: Progress | None = None,
    limiter: RateLimiter | None = None,
) -> BackfillReport:
    """Import the named pages' captures (all pages by default), then rebuild the history.

    Raises ArchiveRefused/ArchiveError when the archive refuses or cannot be read; what was
    recorded before stays recorded.
    """
    pages = select_pages(config, page_names)
    limiter = limiter or RateLimiter(config.backfill.rate_per_minute)
    since = since if since is not None else config.backfill.since
    store = open_store(config, write=True)
    try:
        backfill = backfill_store(store)
        fetched = asyncio.run(_import(config, pages, backfill, limiter, since, until, progress))
        # Rebuilding writes every page's history: it waits for (and holds off) their cycles.
        every = [p.name for p in config.pages]
        with cycle_lock(config, every, wait_s=LOCK_WAIT_S, purpose="monitor backfill"):
            return _rebuild(config, backfill, fetched, progress)
    finally:
        store.close()


async def _import(
    config: Config,
    pages: Sequence[PageConfig],
    store: BackfillStore,
    limiter: RateLimiter,
    since: date | None,
    until: date | None,
    progress: Progress | None,
) -> Fetched:
    started_at = utc_now()
    async with make_client(config.monitor) as client:
        wanted = await find_captures(client, config, pages, limiter, since=since, until=until,
                                     before=store.first_live_check())  # fmt: skip
        if progress is not None:
            progress("found", len(wanted), len(wanted))
        with WarcWriter(archive_dir(config),
                        max_bytes=config.monitor.warc_max_bytes) as writer:  # fmt: skip
            return await import_captures(client, config, wanted, store, writer, limiter,
                                         started_at=started_at, progress=progress)  # fmt: skip


def settle_at_first_check(config: Config, store: Store, started_at: datetime) -> None:
    """After the first live check (started at `started_at`) is recorded: if a backfill
    ran before it, replay the imported captures again (nothing is fetched), so that the
    imported timeline ends where that check began, as a backfill run after it gives (an
    entry only the archive saw, which the check did not find, is removed from then on)."""
    backfill = backfill_store(store)
    first_live = backfill.first_live_check()
    if first_live is None or format_time(first_live) != format_time(started_at):
        return  # not the first live check: a backfill since then already ended there
    if backfill.imported_captures():
        _rebuild(config, backfill, Fetched(0, 0, 0), None)


def _rebuild(
    config: Config, store: BackfillStore, fetched: Fetched, progress: Progress | None
) -> BackfillReport:
    """Replay every imported capture before the first live check; replace the history."""
    first_live = store.first_live_check()
    captures = store.imported_captures()
    warc_dir = archive_dir(config)
    by_name = {p.name: p for p in config.pages}
    rules = ReplayRules(config.monitor.confirm_checks, config.monitor.anomaly_ratio,
                        config.backfill.hold_for_s)  # fmt: skip
    groups: dict[str, list[ReplayStep]] = {}
    usable = [c for c in captures if c.warc_file is not None and c.archive_error is None
              and c.page in by_name and (first_live is None or c.at < first_live)]  # fmt: skip
    order = {p.name: i for i, p in enumerate(config.pages)}
    # Captures of one second: in config order, whichever run fetched them first.
    usable.sort(key=lambda c: (c.at, order[c.page], c.key.timestamp))
    unfit = 0
    for number, capture in enumerate(usable, start=1):
        page = by_name[capture.page]
        entries = listing_entries(warc_dir, capture, page, config.monitor.max_bytes)
        if entries is None:
            unfit += 1
        else:
            groups.setdefault(page.group, []).append(
                ReplayStep(capture.key, page.name, capture.at, capture.capture_id, entries)
            )
        if progress is not None:
            progress("classified", number, len(usable))
    end = first_live or utc_now()
    history = ImportedHistory((), (), ())
    for group, steps in groups.items():
        pages = [(p.name, p.role) for p in config.pages if p.group == group]
        replay = replay_captures(pages, steps, rules, end=end)
        part = derive_history(replay, store.live_entries(), first_live=first_live)
        history = ImportedHistory(history.events + part.events, history.versions + part.versions,
                                  history.entries + part.entries)  # fmt: skip
    events = tuple(sorted(history.events, key=lambda e: e.at))
    history = ImportedHistory(events, history.versions, history.entries)
    before = store.imported_event_ids()
    store.replace_imported(history)
    return BackfillReport(
        fetched=fetched,
        captures=len(usable),
        unfit=unfit,
        archive_errors=sum(1 for c in captures if c.archive_error is not None),
        events=events,
        new_events=tuple(e for e in events if e.id not in before),
    )


def listing_entries(
    warc_dir: Path, capture: ImportedCapture, page: PageConfig, max_bytes: int
) -> tuple[Entry, ...] | None:
    """The entries of an archived capture with the page's layouts now; None: none fits."""
    assert capture.warc_file is not None and capture.warc_offset is not None
    record = read_capture(warc_dir, capture.warc_file, capture.warc_offset)
    try:
        body = decode_payload(record.headers, record.raw_payload, max_bytes)
    except MonitorError:
        return None
    content_type = next((v for k, v in record.headers if k.lower() == "content-type"), None)
    try:
        # Links resolve against the page's URL as configured: a crawler's http:// or :80
        # spelling of the same page must not read as every link changing.
        found = guarded_extract_page(body, content_type=content_type, base_url=page.url,
                                     layouts=page.all_layouts)  # fmt: skip
    except Exception:  # a bug in extraction must not stop the rebuild
        log.exception("extracting the capture %s failed", capture.source_uri)
        return None
    if found.layout is None or not found.entries:
        return None
    sign = read_signs(found, requested_url=record.target_uri, final_url=record.target_uri,
                      status=record.status)  # fmt: skip
    return found.entries if sign.kind not in ("blocked", "soft404") else None
