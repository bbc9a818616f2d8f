"""Writing one cycle into SQLite: one writer per table, all inside the caller's transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from msgspec.structs import replace

from monitor.models import CycleResult, EntryUpdate, Event, PageState, format_time
from monitor.store.base import (
    CaptureRecord,
    CycleRecord,
    PageUpdate,
    RecordedCycle,
    Rederived,
)
from monitor.store.rows import capture_row, event_row, page_fetch_columns


@contextmanager
def atomic(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction on `conn`: committed when the block ends, rolled back if it raises.

    Inside an open transaction, a savepoint (the inner block's writes go or stay together).
    """
    if conn.in_transaction:
        conn.execute("SAVEPOINT monitor_inner")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:  # an error may have ended the transaction already
                conn.execute("ROLLBACK TO SAVEPOINT monitor_inner")
                conn.execute("RELEASE SAVEPOINT monitor_inner")
            raise
        conn.execute("RELEASE SAVEPOINT monitor_inner")
        return
    conn.execute("BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def write_cycle(conn: sqlite3.Connection, record: CycleRecord) -> RecordedCycle:
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
    if record.deliveries:  # with the events: never one without the other
        from monitor.store.sqlite_outbox import insert_deliveries  # loads the notify modules

        insert_deliveries(conn, record.deliveries)
    # the pages this check left in error or gone (exit 1): of those it checked
    checked = set(record.pages)
    failures = sum(1 for p in result.pages if p.name in checked and p.status in ("error", "gone"))
    conn.execute(
        "UPDATE checks SET finished_at = ?, events = ?, failures = ?, warc_file = ? WHERE id = ?",
        (at, len(events), failures, record.warc_file, check_id),
    )
    return RecordedCycle(check_id, events, captures)


def _with_capture(event: Event, captures: Mapping[str, int]) -> Event:
    """An event points at the capture of its page in this cycle (none if not checked)."""
    if event.capture_id is not None or event.page not in captures:
        return event
    return replace(event, capture_id=captures[event.page])


def insert_check(conn: sqlite3.Connection, record: CycleRecord) -> int:
    cursor = conn.execute(
        "INSERT INTO checks (started_at, pages) VALUES (?, ?)",
        (format_time(record.started_at), json.dumps(list(record.pages))),
    )
    return int(cursor.lastrowid or 0)


def insert_captures(
    conn: sqlite3.Connection, check_id: int, captures: Sequence[CaptureRecord]
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Insert every capture (one statement); each page's final capture id, and every final
    capture with a record (a listing's pages in order: the body an accepted key stands for)."""
    refers = sorted({c.refers_to for c in captures if c.record_type == "revisit" and c.refers_to})
    originals: dict[str, int] = {}
    if refers:
        originals = dict(
            conn.execute(
                "SELECT record_id, min(id) FROM captures WHERE record_id IN "
                "(SELECT value FROM json_each(?)) GROUP BY record_id",
                (json.dumps(refers),),
            ).fetchall()
        )
    rows = []
    for capture in captures:
        row = capture_row(check_id, capture)
        row["original_capture_id"] = (
            originals.get(capture.refers_to or "") if capture.record_type == "revisit" else None
        )
        rows.append(row)
    finals: dict[str, int] = {}
    bodies: dict[str, list[int]] = {}
    if not rows:
        return finals, bodies
    first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM captures").fetchone()[0])
    names = ", ".join(rows[0])
    marks = ", ".join("?" for _ in rows[0])
    # Explicit ids (the next ones, inside this transaction) let one executemany insert all.
    conn.executemany(
        f"INSERT INTO captures (id, {names}) VALUES (?, {marks})",
        [(first + i, *row.values()) for i, row in enumerate(rows)],
    )
    for i, capture in enumerate(captures):
        if capture.final:
            finals[capture.page] = first + i
            if capture.record_type is not None:
                bodies.setdefault(capture.page, []).append(first + i)
    return finals, bodies


def write_entries(
    conn: sqlite3.Connection,
    check_id: int,
    updates: Sequence[EntryUpdate],
    at: str,
    captures: Mapping[str, int],
) -> None:
    """New entries inserted, changed ones updated, and a version row for each new version."""
    ids = json.dumps([u.entry_id for u in updates])
    versions = dict(
        conn.execute(
            "SELECT id, versions FROM entries WHERE id IN (SELECT value FROM json_each(?))", (ids,)
        ).fetchall()
    )
    # Each statement run once for all its rows (executemany): a first check of 200 pages
    # inserts ~5,000 entries, and a call of execute() per row was its own Python round trip.
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
                 version, int(update.new_version), at, update.entry_id)
            )  # fmt: skip
        if update.new_version:
            version_rows.append(
                (update.entry_id, version, at, check_id, update.state, update.page,
                 update.title, update.link, update.description,
                 update.capture_id or captures.get(update.page))
            )  # fmt: skip
    conn.executemany(
        "INSERT INTO entries (id, title, link, description, state, page, first_seen, "
        "last_seen, last_changed, versions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        new_rows,
    )
    conn.executemany(
        """UPDATE entries SET title = ?, link = ?, description = ?, state = ?,
           page = ?, versions = ?,
           last_changed = CASE WHEN ? THEN ? ELSE last_changed END
           WHERE id = ?""",
        changed_rows,
    )
    conn.executemany(
        "INSERT INTO entry_versions (entry_id, version, at, check_id, state, page, title, link, "
        "description, capture_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        version_rows,
    )


def touch_seen(conn: sqlite3.Connection, seen: Sequence[str], at: str) -> None:
    if seen:
        conn.execute(
            "UPDATE entries SET last_seen = ? WHERE id IN (SELECT value FROM json_each(?))",
            (at, json.dumps(list(seen))),
        )


def write_placements(conn: sqlite3.Connection, result: CycleResult) -> None:
    """A page's list, with each member's fields as it shows them, when it changed."""
    for page in result.pages:
        if page.name not in result.changed_pages:
            continue
        conn.execute("DELETE FROM placements WHERE page = ?", (page.name,))
        rows = []
        for i, entry_id in enumerate(page.members):
            fields = page.member_fields[i] if i < len(page.member_fields) else None
            rows.append(
                (page.name, i, entry_id, fields.title if fields else None,
                 fields.link if fields else None, fields.description if fields else None,
                 entry_id in page.held)
            )  # fmt: skip
        conn.executemany(
            "INSERT INTO placements (page, position, entry_id, title, link, description, held) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def write_pages(
    conn: sqlite3.Connection,
    pages: Sequence[PageState],
    updates: Mapping[str, PageUpdate],
    captures: Mapping[str, int],
    bodies: Mapping[str, list[int]],
) -> None:
    """Each page's state; the checked ones also their fetch memory (batched by column set)."""
    existing = {r[0] for r in conn.execute("SELECT name FROM pages")}
    updating: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for page in pages:
        row: dict[str, Any] = {
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
        if page.name in existing:
            updating.setdefault(tuple(row), []).append((*row.values(), page.name))
        elif "url" in row:  # a page is first written by its first check
            row["name"] = page.name
            names = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            conn.execute(f"INSERT INTO pages ({names}) VALUES ({marks})", tuple(row.values()))
    for columns, values in updating.items():
        sets = ", ".join(f"{k} = ?" for k in columns)
        conn.executemany(f"UPDATE pages SET {sets} WHERE name = ?", values)


def write_rederived(conn: sqlite3.Connection, pages: Sequence[Rederived]) -> None:
    """Each page's entries and placements take the new engine's fields; nothing else moves."""
    for page in pages:
        conn.executemany(
            "UPDATE entries SET title = ?, link = ?, description = ? WHERE id = ?",
            [(f.title, f.link, f.description, m) for m, f in zip(page.members, page.fields,
                                                                  strict=True)],
        )  # fmt: skip
        conn.execute("DELETE FROM placements WHERE page = ?", (page.page,))
        conn.executemany(
            "INSERT INTO placements (page, position, entry_id, title, link, description, held) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(page.page, i, m, f.title, f.link, f.description, m in page.held)
             for i, (m, f) in enumerate(zip(page.members, page.fields, strict=True))],
        )  # fmt: skip
        conn.execute(
            "UPDATE pages SET accepted_key = ?, extractor = ?, entry_count = ?, "
            "body_key = coalesce(?, body_key) WHERE name = ?",
            (page.accepted_key, page.extractor, len(page.members), page.body_key, page.page),
        )


def insert_events(conn: sqlite3.Connection, check_id: int, events: Sequence[Event]) -> None:
    rows = [event_row(check_id, e) for e in events]
    if not rows:
        return
    names = ", ".join(rows[0])
    marks = ", ".join("?" for _ in rows[0])
    conn.executemany(
        f"INSERT INTO events ({names}) VALUES ({marks})", [tuple(r.values()) for r in rows]
    )
