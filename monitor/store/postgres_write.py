"""Writing one cycle into PostgreSQL: one writer per table, inside the caller's transaction.

The same writes as sqlite_write.py, in PostgreSQL's dialect: `= ANY(%s)` for SQLite's
json_each, RETURNING for lastrowid. The columns come from rows.py, shared by both stores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from msgspec.structs import replace

from monitor.models import CycleResult, EntryUpdate, Event, PageState, format_time
from monitor.store.base import CaptureRecord, CycleRecord, PageUpdate, RecordedCycle, Rederived
from monitor.store.postgres_outbox import insert_deliveries
from monitor.store.rows import capture_row, event_row, page_fetch_columns

Conn = psycopg.Connection[Any]


def write_cycle(conn: Conn, record: CycleRecord) -> RecordedCycle:
    """Write everything of one cycle; the caller holds the transaction."""
    check_id = insert_check(conn, record)
    captures, bodies = insert_captures(conn, check_id, record.captures)
    result = record.result
    at = format_time(record.finished_at)
    write_entries(conn, check_id, result.entries, at, captures)
    touch_seen(conn, result.seen, at)
    write_placements(conn, result)
    write_pages(conn, result.pages, record.updates, captures, bodies)
    events = tuple(_with_capture(e, captures) for e in result.events)
    insert_events(conn, check_id, events)
    insert_deliveries(conn, record.deliveries)  # with the events: never one without the other
    # the pages this check left in error or gone (exit 1): of those it checked
    checked = set(record.pages)
    failures = sum(1 for p in result.pages if p.name in checked and p.status in ("error", "gone"))
    conn.execute(
        "UPDATE checks SET finished_at = %s, events = %s, failures = %s, warc_file = %s "
        "WHERE id = %s",
        (at, len(events), failures, record.warc_file, check_id),
    )
    return RecordedCycle(check_id, events, captures)


def _with_capture(event: Event, captures: Mapping[str, int]) -> Event:
    """An event points at the capture of its page in this cycle (none if not checked)."""
    if event.capture_id is not None or event.page not in captures:
        return event
    return replace(event, capture_id=captures[event.page])


def _insert(conn: Conn, table: str, row: Mapping[str, Any], returning: str = "") -> Any:
    names = ", ".join(row)
    marks = ", ".join("%s" for _ in row)
    tail = f" RETURNING {returning}" if returning else ""
    cursor = conn.execute(
        f"INSERT INTO {table} ({names}) VALUES ({marks}){tail}", tuple(row.values())
    )
    return cursor.fetchone()[0] if returning else None  # type: ignore[index]


def insert_check(conn: Conn, record: CycleRecord) -> int:
    row = {"started_at": format_time(record.started_at), "pages": json.dumps(list(record.pages))}
    return int(_insert(conn, "checks", row, "id"))


def insert_captures(
    conn: Conn, check_id: int, captures: Sequence[CaptureRecord]
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Insert every capture; each page's final capture id, and its captures with a body."""
    finals: dict[str, int] = {}
    bodies: dict[str, list[int]] = {}
    for capture in captures:
        row = capture_row(check_id, capture)
        original = None
        if capture.record_type == "revisit" and capture.refers_to:
            found = conn.execute(
                "SELECT id FROM captures WHERE record_id = %s ORDER BY id LIMIT 1",
                (capture.refers_to,),
            ).fetchone()
            original = found[0] if found else None
        row["original_capture_id"] = original
        capture_id = int(_insert(conn, "captures", row, "id"))
        if capture.final:
            finals[capture.page] = capture_id
            if capture.record_type is not None:
                bodies.setdefault(capture.page, []).append(capture_id)
    return finals, bodies


def write_entries(
    conn: Conn,
    check_id: int,
    updates: Sequence[EntryUpdate],
    at: str,
    captures: Mapping[str, int],
) -> None:
    """New entries inserted, changed ones updated, and a version row for each new version."""
    ids = [u.entry_id for u in updates]
    found = conn.execute("SELECT id, versions FROM entries WHERE id = ANY(%s)", (ids,)).fetchall()
    versions = {row[0]: row[1] for row in found}
    # Each statement sent once for all its rows (executemany, pipelined by psycopg), as
    # sqlite_write does: an execute() a row was a round trip to the server a row.
    new_rows: list[tuple[Any, ...]] = []
    changed_rows: list[tuple[Any, ...]] = []
    version_rows: list[tuple[Any, ...]] = []
    for update in updates:
        version = versions.get(update.entry_id, 0) + (1 if update.new_version else 0)
        if update.is_new:
            new_rows.append(
                (update.entry_id, update.title, update.link, update.description, update.state,
                 update.page, at, at, at, version)
            )  # fmt: skip
        else:
            changed_rows.append(
                (update.title, update.link, update.description, update.state, update.page,
                 version, update.new_version, at, update.entry_id)
            )  # fmt: skip
        if update.new_version:
            version_rows.append(
                (update.entry_id, version, at, check_id, update.state, update.page,
                 update.title, update.link, update.description,
                 update.capture_id or captures.get(update.page))
            )  # fmt: skip
    statements = (
        ("INSERT INTO entries (id, title, link, description, state, page, first_seen, "
         "last_seen, last_changed, versions) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
         new_rows),
        ("""UPDATE entries SET title = %s, link = %s, description = %s, state = %s,
            page = %s, versions = %s,
            last_changed = CASE WHEN %s THEN %s ELSE last_changed END
            WHERE id = %s""",
         changed_rows),
        ("INSERT INTO entry_versions (entry_id, version, at, check_id, state, page, title, "
         "link, description, capture_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
         version_rows),
    )  # fmt: skip
    for statement, rows in statements:
        if rows:
            conn.cursor().executemany(statement, rows)


def touch_seen(conn: Conn, seen: Sequence[str], at: str) -> None:
    if seen:
        conn.execute("UPDATE entries SET last_seen = %s WHERE id = ANY(%s)", (at, list(seen)))


def write_placements(conn: Conn, result: CycleResult) -> None:
    """A page's list, with each member's fields as it shows them, when it changed."""
    for page in result.pages:
        if page.name not in result.changed_pages:
            continue
        conn.execute("DELETE FROM placements WHERE page = %s", (page.name,))
        rows = []
        for i, entry_id in enumerate(page.members):
            fields = page.member_fields[i] if i < len(page.member_fields) else None
            rows.append(
                (page.name, i, entry_id, fields.title if fields else None,
                 fields.link if fields else None, fields.description if fields else None,
                 entry_id in page.held)
            )  # fmt: skip
        if rows:
            conn.cursor().executemany(
                "INSERT INTO placements (page, position, entry_id, title, link, description, "
                "held) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


def write_pages(
    conn: Conn,
    pages: Sequence[PageState],
    updates: Mapping[str, PageUpdate],
    captures: Mapping[str, int],
    bodies: Mapping[str, list[int]],
) -> None:
    """Each page's state; the checked ones also their fetch memory."""
    for page in pages:
        row: dict[str, Any] = {
            "name": page.name,
            "role": page.role,
            "status": page.status,
            "streak": page.streak,
            "normal_count": page.normal_count,
            "baselined": int(page.baselined),
            "entry_count": len(page.members),
        }
        update = updates.get(page.name)
        if update is not None:
            row.update(page_fetch_columns(update, captures.get(page.name), bodies.get(page.name)))
        exists = conn.execute("SELECT 1 FROM pages WHERE name = %s", (page.name,)).fetchone()
        if exists:
            sets = ", ".join(f"{k} = %s" for k in row if k != "name")
            values = [v for k, v in row.items() if k != "name"]
            conn.execute(f"UPDATE pages SET {sets} WHERE name = %s", (*values, page.name))
        elif "url" in row:  # a page is first written by its first check
            _insert(conn, "pages", row)


def write_rederived(conn: Conn, pages: Sequence[Rederived]) -> None:
    """Each page's entries and placements take the new engine's fields; nothing else moves."""
    for page in pages:
        pairs = list(zip(page.members, page.fields, strict=True))
        conn.cursor().executemany(
            "UPDATE entries SET title = %s, link = %s, description = %s WHERE id = %s",
            [(f.title, f.link, f.description, m) for m, f in pairs],
        )
        conn.execute("DELETE FROM placements WHERE page = %s", (page.page,))
        conn.cursor().executemany(
            "INSERT INTO placements (page, position, entry_id, title, link, description, held) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(page.page, i, m, f.title, f.link, f.description, m in page.held)
             for i, (m, f) in enumerate(pairs)],  # fmt: skip
        )
        conn.execute(
            "UPDATE pages SET accepted_key = %s, extractor = %s, entry_count = %s, "
            "body_key = coalesce(%s, body_key) WHERE name = %s",
            (page.accepted_key, page.extractor, len(page.members), page.body_key, page.page),
        )


def insert_events(conn: Conn, check_id: int, events: Sequence[Event]) -> None:
    """The cycle's events; executemany runs them in order, so seq follows the cycle's."""
    rows = [event_row(check_id, e) for e in events]
    if not rows:
        return
    names = ", ".join(rows[0])
    marks = ", ".join("%s" for _ in rows[0])
    conn.cursor().executemany(
        f"INSERT INTO events ({names}) VALUES ({marks})", [tuple(r.values()) for r in rows]
    )
