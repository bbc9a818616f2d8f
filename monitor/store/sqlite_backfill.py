"""`monitor backfill` in SQLite: imported captures, and the derived history replaced whole.

A run is one `checks` row of kind 'backfill'; each capture it imports is committed on its
own (captures + imported_captures), and the row's `finished_at` moves with it, so a run
killed midway leaves whole captures and no unfinished check. Imported events and versions
are rows with `source = 'backfill'`: `replace_imported` deletes them and writes the new
derivation in one transaction; live rows are never deleted or edited, apart from the
version numbers of entries the archive saw first (its versions come first).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.models import format_time, parse_time, utc_now
from monitor.store.backfill import (
    CaptureKey,
    ImportedCapture,
    ImportedEntry,
    ImportedHistory,
    ImportedVersion,
    LiveEntry,
)
from monitor.store.base import CaptureRecord
from monitor.store.rows import capture_row
from monitor.store.sqlite import SqliteStore
from monitor.store.sqlite_write import insert_events

# Entries a live check has touched: never deleted by a rebuild of the imported history.
LIVE_IDS = """
    SELECT entry_id FROM placements
    UNION SELECT entry_id FROM entry_versions WHERE source = 'check'
    UNION SELECT entry_id FROM events WHERE source = 'check' AND entry_id IS NOT NULL
    UNION SELECT entry_id FROM entry_pages
"""


class SqliteBackfillStore:
    """The backfill side of monitor.db, on an open (writable) SqliteStore."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._run_id: int | None = None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.store._rows(sql, params)

    def imported_keys(self) -> set[CaptureKey]:
        rows = self._rows("SELECT page_url, timestamp, digest FROM imported_captures")
        return {CaptureKey(r["page_url"], r["timestamp"], r["digest"]) for r in rows}

    def record_imported(
        self, key: CaptureKey, capture: CaptureRecord, source_uri: str, started_at: datetime
    ) -> int:
        with self.store.transaction() as conn:
            if self._run_id is None:
                cursor = conn.execute(
                    "INSERT INTO checks (started_at, pages, kind) VALUES (?, '[]', 'backfill')",
                    (format_time(started_at),),
                )
                self._run_id = int(cursor.lastrowid or 0)
            row = capture_row(self._run_id, capture)
            row["source_uri"] = source_uri
            row["original_capture_id"] = None
            names, marks = ", ".join(row), ", ".join("?" for _ in row)
            cursor = conn.execute(
                f"INSERT INTO captures ({names}) VALUES ({marks})", tuple(row.values())
            )
            capture_id = int(cursor.lastrowid or 0)
            conn.execute(
                "INSERT INTO imported_captures (capture_id, page_url, timestamp, digest, "
                "archive_error) VALUES (?, ?, ?, ?, ?)",
                (capture_id, key.page_url, key.timestamp, key.digest, capture.error),
            )
            pages = {r[0] for r in conn.execute(
                "SELECT DISTINCT page FROM captures WHERE check_id = ?", (self._run_id,)
            )}  # fmt: skip
            conn.execute(
                "UPDATE checks SET finished_at = ?, pages = ? WHERE id = ?",
                (format_time(utc_now()), json.dumps(sorted(pages)), self._run_id),
            )  # fmt: skip
        return capture_id

    def imported_captures(self) -> list[ImportedCapture]:
        rows = self._rows(
            """SELECT i.capture_id, i.page_url, i.timestamp, i.digest, i.archive_error,
                      c.page, c.at, c.check_id, c.source_uri, c.warc_file, c.warc_offset
               FROM imported_captures i JOIN captures c ON c.id = i.capture_id
               ORDER BY c.at, i.timestamp, c.id"""
        )
        return [
            ImportedCapture(
                key=CaptureKey(r["page_url"], r["timestamp"], r["digest"]),
                page=r["page"],
                at=parse_time(r["at"]),
                capture_id=r["capture_id"],
                check_id=r["check_id"],
                source_uri=r["source_uri"] or "",
                archive_error=r["archive_error"],
                warc_file=r["warc_file"],
                warc_offset=r["warc_offset"],
            )
            for r in rows
        ]

    def first_live_check(self) -> datetime | None:
        rows = self._rows("SELECT min(started_at) AS first FROM checks WHERE kind = 'check'")
        return parse_time(rows[0]["first"]) if rows and rows[0]["first"] else None

    def live_entries(self) -> list[LiveEntry]:
        rows = self._rows(
            f"""SELECT e.id, e.state,
                   coalesce(v.title, e.title) AS title,
                   CASE WHEN v.id IS NULL THEN e.link ELSE v.link END AS link,
                   coalesce(v.description, e.description) AS description
               FROM entries e
               LEFT JOIN entry_versions v ON v.id = (
                   SELECT id FROM entry_versions WHERE entry_id = e.id AND source = 'check'
                   ORDER BY version LIMIT 1)
               WHERE e.id IN ({LIVE_IDS})
               ORDER BY e.rowid"""
        )
        return [
            LiveEntry(r["id"], r["title"], r["link"], r["description"], r["state"] == "removed")
            for r in rows
        ]

    def imported_event_ids(self) -> set[str]:
        return {r["id"] for r in self._rows("SELECT id FROM events WHERE source = 'backfill'")}

    def replace_imported(self, history: ImportedHistory) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM events WHERE source = 'backfill'")
            conn.execute("DELETE FROM entry_versions WHERE source = 'backfill'")
            conn.execute(f"DELETE FROM entries WHERE id NOT IN ({LIVE_IDS})")
            _insert_entries(conn, history.entries)
            _insert_versions(conn, history.versions)
            checks = _capture_checks(conn)
            # An event of no capture (a hold that ran out at the end) belongs to the last run.
            found = conn.execute("SELECT max(id) FROM checks WHERE kind = 'backfill'").fetchone()
            fallback = int(found[0] or 0) if found else 0
            for event in history.events:
                check_id = checks.get(event.capture_id or 0, fallback)
                insert_events(conn, check_id, [event])


def _capture_checks(conn: sqlite3.Connection) -> dict[int, int]:
    """Each imported capture's check id: imported events and versions belong to its run."""
    return dict(
        conn.execute(
            "SELECT c.id, c.check_id FROM captures c JOIN imported_captures i "
            "ON i.capture_id = c.id"
        ).fetchall()
    )


def _insert_entries(conn: sqlite3.Connection, entries: Sequence[ImportedEntry]) -> None:
    conn.executemany(
        "INSERT INTO entries (id, title, link, description, state, page, first_seen, "
        "last_seen, last_changed, versions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        [
            (e.entry_id, e.title, e.link, e.description, e.state, e.page,
             format_time(e.first_seen), format_time(e.last_seen), format_time(e.last_changed))
            for e in entries
        ],
    )  # fmt: skip


def _insert_versions(conn: sqlite3.Connection, versions: Sequence[ImportedVersion]) -> None:
    """Imported versions first (1..k), then each entry's live versions renumbered after them."""
    checks = _capture_checks(conn)
    fallback = conn.execute("SELECT max(id) FROM checks WHERE kind = 'backfill'").fetchone()[0]
    by_entry: dict[str, list[ImportedVersion]] = {}
    for version in versions:
        by_entry.setdefault(version.entry_id, []).append(version)
    # Live versions first move out of the way of UNIQUE (entry_id, version).
    conn.execute("UPDATE entry_versions SET version = -version")
    rows = []
    for entry_id, own in by_entry.items():
        for number, v in enumerate(own, start=1):
            check_id = checks.get(v.capture_id or 0, fallback or 0)
            rows.append(
                (entry_id, number, format_time(v.at), check_id, v.state, v.page, v.title,
                 v.link, v.description, v.capture_id)
            )  # fmt: skip
    conn.executemany(
        "INSERT INTO entry_versions (entry_id, version, at, check_id, state, page, title, link, "
        "description, capture_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'backfill')",
        rows,
    )
    # Live versions follow the imported ones, in their own order.
    conn.execute(
        """WITH live AS (
               SELECT id, row_number() OVER (PARTITION BY entry_id ORDER BY -version) AS n
               FROM entry_versions WHERE version < 0)
           UPDATE entry_versions
           SET version = (SELECT n FROM live WHERE live.id = entry_versions.id)
               + (SELECT count(*) FROM entry_versions i
                  WHERE i.entry_id = entry_versions.entry_id AND i.source = 'backfill')
           WHERE version < 0"""
    )
    conn.execute(
        """UPDATE entries SET
               versions = (SELECT count(*) FROM entry_versions v WHERE v.entry_id = entries.id),
               first_seen = coalesce(
                   (SELECT min(at) FROM entry_versions v WHERE v.entry_id = entries.id),
                   first_seen)"""
    )
