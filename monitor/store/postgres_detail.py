"""Entry pages ([pages.detail]) in PostgreSQL: the same as sqlite_detail.py, in its dialect.

A mixin of PostgresStore: a detail phase reads once before it fetches
(`read_detail_state`) and writes once after (`record_detail`, one transaction: a
`checks` row of kind `detail`, the captures, the entry_pages rows, an entry_page_checks
row per fetch, the events).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from msgspec.structs import replace

from monitor.errors import StoreError
from monitor.models import Event, format_time, parse_time
from monitor.store.base import LastResponse
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
from monitor.store.postgres_write import Conn, insert_captures, insert_events
from monitor.store.rows import optional_time as _time


class PostgresDetail:
    """The entry-page side of PostgresStore (DetailStore in base.py)."""

    conn: Conn
    location: str

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError  # PostgresStore's

    def _last_responses(self, pages: Sequence[str]) -> dict[str, LastResponse]:
        raise NotImplementedError  # PostgresStore's

    def read_detail_state(self, pages: Sequence[str]) -> DetailState:
        """Entries with a link on `pages` (removed ones too), every entry_pages row, and the
        last responses of those pages' URLs (entry pages are captured under their page)."""
        rows = self._rows(
            """SELECT id, title, link, state, page, CASE WHEN state = 'removed' THEN
                   coalesce((SELECT max(at) FROM events v WHERE v.entry_id = e.id
                             AND v.kind = 'removed'), last_seen) END AS removed_at
                FROM entries e WHERE link IS NOT NULL AND page = ANY(%s) ORDER BY seq""",
            (list(pages),),
        )
        candidates = tuple(
            LinkCandidate(
                r["id"], r["title"], r["link"], r["state"], r["page"], _time(r["removed_at"])
            )
            for r in rows
        )
        stored = self._rows("SELECT * FROM entry_pages")
        memories = {r["entry_id"]: memory_from_row(r) for r in stored}
        return DetailState(candidates, memories, self._last_responses(list(pages)))

    def record_detail(self, record: DetailRecord) -> RecordedDetail:
        """Write one entry-page phase in one transaction."""
        try:
            with self.conn.transaction():
                return _write_detail(self.conn, record)
        except psycopg.Error as error:
            raise StoreError(f"{self.location}: cannot record the entry pages: {error}") from None

    def entry_pages(self) -> list[LinkMemory]:
        """Every entry page's memory, in the order first seen."""
        return [memory_from_row(r) for r in self._rows("SELECT * FROM entry_pages ORDER BY seq")]

    def entry_page(self, entry_id: str) -> LinkMemory | None:
        rows = self._rows("SELECT * FROM entry_pages WHERE entry_id = %s", (entry_id,))
        return memory_from_row(rows[0]) if rows else None

    def entry_page_checks(self, entry_id: str) -> list[LinkCheckRow]:
        """Every check of one entry's page, oldest first."""
        rows = self._rows(
            "SELECT * FROM entry_page_checks WHERE entry_id = %s ORDER BY id", (entry_id,)
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


def _write_detail(conn: Conn, record: DetailRecord) -> RecordedDetail:
    for memory in record.memories:
        _upsert(conn, memory)
    if not record.checks:
        return RecordedDetail(None, ())
    at = format_time(record.finished_at)
    found = conn.execute(
        "INSERT INTO checks (started_at, pages, kind) VALUES (%s, %s, 'detail') RETURNING id",
        (format_time(record.started_at), json.dumps(list(record.pages))),
    ).fetchone()
    assert found is not None  # RETURNING always gives the row
    check_id = int(found[0] if not isinstance(found, dict) else found["id"])
    events: list[Event] = []
    for check in record.checks:
        finals, _ = insert_captures(conn, check_id, check.captures)  # one fetch: one page
        final = next(iter(finals.values()), None)
        memory = replace(check.memory, last_capture_id=final)
        _upsert(conn, memory)
        conn.execute(
            "INSERT INTO entry_page_checks (entry_id, check_id, at, url, outcome, status, detail, "
            "capture_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (memory.entry_id, check_id, format_time(memory.last_checked_at or record.finished_at),
             memory.url, check.outcome, memory.status, memory.last_detail, final),
        )  # fmt: skip
        events.extend(replace(e, capture_id=final) for e in check.events)
    insert_events(conn, check_id, events)
    if record.deliveries:  # with the events: never one without the other
        from monitor.store.postgres_outbox import insert_deliveries  # loads the notify modules

        insert_deliveries(conn, record.deliveries)
    failures = sum(1 for c in record.checks if c.outcome in ("gone", "error"))
    conn.execute(
        "UPDATE checks SET finished_at = %s, events = %s, failures = %s, warc_file = %s "
        "WHERE id = %s",
        (at, len(events), failures, record.warc_file, check_id),
    )
    return RecordedDetail(check_id, tuple(events))


def _upsert(conn: Conn, memory: LinkMemory) -> None:
    row = memory_row(memory)
    names, marks = ", ".join(row), ", ".join("%s" for _ in row)
    updates = ", ".join(f"{k} = excluded.{k}" for k in row if k != "entry_id")
    conn.execute(
        f"INSERT INTO entry_pages ({names}) VALUES ({marks}) "
        f"ON CONFLICT (entry_id) DO UPDATE SET {updates}",
        tuple(row.values()),
    )
