"""Entry pages ([pages.detail]) in monitor.db: their memory, each check of them, their events.

SqliteStore's entry-page side, which it loads at the first use (a check of listings
without entry pages never does): a detail phase reads once before it fetches
(`read_detail_state`) and writes once after (`record_detail`, one transaction: a
`checks` row of kind `detail`, the captures, the entry_pages rows, an entry_page_checks
row per fetch, the events).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from msgspec.structs import replace

from monitor.errors import StoreError
from monitor.models import Event, format_time, parse_time
from monitor.store.detail_rows import (
    DetailRecord,
    DetailState,
    LinkCandidate,
    LinkCheckRow,
    LinkMemory,
    RecordedDetail,
)
from monitor.store.detail_rows import link_memory_from_row as memory_from_row
from monitor.store.detail_rows import link_memory_row as memory_row
from monitor.store.rows import optional_time as _time
from monitor.store.sqlite_write import atomic, insert_captures, insert_events

if TYPE_CHECKING:
    from monitor.store.sqlite import SqliteStore


class SqliteDetail:
    """The entry-page side of a SqliteStore (DetailStore in base.py), on its connection."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.conn = store.conn
        self.path = store.path

    def read_detail_state(self, pages: Sequence[str]) -> DetailState:
        """Entries with a link on `pages` (removed ones too), every entry_pages row, and the
        last responses of those pages' URLs (entry pages are captured under their page)."""
        marks = ", ".join("?" for _ in pages)
        rows = self.store._rows(
            f"""SELECT id, title, link, state, page, CASE WHEN state = 'removed' THEN
                   coalesce((SELECT max(at) FROM events v WHERE v.entry_id = e.id
                             AND v.kind = 'removed'), last_seen) END AS removed_at
                FROM entries e WHERE link IS NOT NULL AND page IN ({marks}) ORDER BY rowid""",
            list(pages),
        )
        candidates = tuple(
            LinkCandidate(
                r["id"], r["title"], r["link"], r["state"], r["page"], _time(r["removed_at"])
            )
            for r in rows
        )
        stored = self.store._rows("SELECT * FROM entry_pages")
        memories = {r["entry_id"]: memory_from_row(r) for r in stored}
        return DetailState(candidates, memories, self.store._last_responses(list(pages)))

    def record_detail(self, record: DetailRecord) -> RecordedDetail:
        """Write one entry-page phase in one transaction."""
        try:
            with atomic(self.conn):
                return _write_detail(self.conn, record)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{self.path}: cannot record the entry pages: {error}") from error

    def entry_pages(self) -> list[LinkMemory]:
        """Every entry page's memory, in the order first seen."""
        rows = self.store._rows("SELECT * FROM entry_pages ORDER BY rowid")
        return [memory_from_row(r) for r in rows]

    def entry_page(self, entry_id: str) -> LinkMemory | None:
        rows = self.store._rows("SELECT * FROM entry_pages WHERE entry_id = ?", (entry_id,))
        return memory_from_row(rows[0]) if rows else None

    def entry_page_checks(self, entry_id: str) -> list[LinkCheckRow]:
        """Every check of one entry's page, oldest first."""
        rows = self.store._rows(
            "SELECT * FROM entry_page_checks WHERE entry_id = ? ORDER BY id", (entry_id,)
        )
        return [
            LinkCheckRow(
                parse_time(r["at"]),
                r["url"],
                r["outcome"],
                r["status"],
                r["detail"],
                r["capture_id"],
            )  # fmt: skip
            for r in rows
        ]


def _write_detail(conn: sqlite3.Connection, record: DetailRecord) -> RecordedDetail:
    for memory in record.memories:
        _upsert(conn, memory)
    if not record.checks:
        return RecordedDetail(None, ())
    at = format_time(record.finished_at)
    cursor = conn.execute(
        "INSERT INTO checks (started_at, pages, kind) VALUES (?, ?, 'detail')",
        (format_time(record.started_at), json.dumps(list(record.pages))),
    )
    check_id = int(cursor.lastrowid or 0)
    events: list[Event] = []
    for check in record.checks:
        finals, _ = insert_captures(conn, check_id, check.captures)  # one fetch: one page
        final = next(iter(finals.values()), None)
        memory = replace(check.memory, last_capture_id=final)
        _upsert(conn, memory)
        conn.execute(
            "INSERT INTO entry_page_checks (entry_id, check_id, at, url, outcome, status, detail, "
            "capture_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (memory.entry_id, check_id, format_time(memory.last_checked_at or record.finished_at),
             memory.url, check.outcome, memory.status, memory.last_detail, final),
        )  # fmt: skip
        events.extend(replace(e, capture_id=final) for e in check.events)
    insert_events(conn, check_id, events)
    if record.deliveries:  # with the events: never one without the other
        from monitor.store.sqlite_outbox import insert_deliveries  # loads the notify modules

        insert_deliveries(conn, record.deliveries)
    failures = sum(1 for c in record.checks if c.outcome in ("gone", "error"))
    conn.execute(
        "UPDATE checks SET finished_at = ?, events = ?, failures = ?, warc_file = ? WHERE id = ?",
        (at, len(events), failures, record.warc_file, check_id),
    )
    return RecordedDetail(check_id, tuple(events))


def _upsert(conn: sqlite3.Connection, memory: LinkMemory) -> None:
    row = memory_row(memory)
    names, marks = ", ".join(row), ", ".join("?" for _ in row)
    updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != "entry_id")
    conn.execute(
        f"INSERT INTO entry_pages ({names}) VALUES ({marks}) "
        f"ON CONFLICT (entry_id) DO UPDATE SET {updates}",
        tuple(row.values()),
    )
