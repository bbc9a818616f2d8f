"""The database (sqlite-utils): the only module that writes SQL.

One check cycle is one transaction (`Store.cycle()`): after a crash the
database holds whole cycles only. The schema is documented in docs/schema.md.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.archive import PreviousCapture
from monitor.config import PageConfig
from monitor.errors import StoreError
from monitor.models import (
    CaptureRef,
    CaptureRow,
    Change,
    CycleResult,
    EntryRow,
    Event,
    FetchResult,
    HttpExchange,
    KnownEntry,
    PageState,
    VersionRow,
    format_time,
    parse_time,
)

SCHEMA_VERSION = 2
# version -> (table, column, SQL adding it): what upgrading to that version adds.
MIGRATIONS: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: (("pages", "body_key", "ALTER TABLE pages ADD COLUMN body_key TEXT"),),
}

# The schema lives in schema.sql (plain SQL: readable, and loadable in the sqlite3 shell).
SCHEMA = resources.files("monitor").joinpath("schema.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class PageMemory:
    """What fetching a page needs from its last checks."""

    etag: str | None
    last_modified: str | None
    accepted_key: str | None  # digest key of the body whose entries the page holds
    body_key: str | None  # digest key of the last 2xx body (the one etag/last_modified name)


class Store:
    """monitor.db: open it, read the last state, record cycles, answer queries."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open monitor.db; with create=False, only an existing one, read-only."""
        self.path = path
        if not create and not path.exists():
            raise StoreError(f"{path}: no database here yet: run `monitor check` first")
        try:
            if not create:
                # Readers (log, entries, serve) cannot write even by mistake.
                self.db = sqlite_utils.Database(_open_read_only(path))
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(path)
            self.db.conn.execute("PRAGMA busy_timeout = 10000")
            self.db.enable_wal()
            self.db.conn.executescript(SCHEMA)
            self._migrate()
            self.db.conn.commit()
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{path}: cannot open the database: {error}") from error

    def _migrate(self) -> None:
        """Bring a database written by an earlier version up to SCHEMA_VERSION, in place."""
        row = self.db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION  # no row: created just now, current
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for table, column, sql in MIGRATIONS[target]:
                if column not in self.db.table(table).columns_dict:
                    self.db.conn.execute(sql)
        self.db.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def cycle(self) -> Iterator[None]:
        """One transaction: everything written inside commits together, or not at all."""
        try:
            with self.db.atomic():
                yield
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{self.path}: cannot record the check: {error}") from error

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.db.conn.execute(sql, tuple(params))
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- the state classification starts from -----------------------------

    def known_entries(self) -> dict[str, KnownEntry]:
        """Every entry ever seen, removed ones included, oldest first."""
        rows = self._rows(
            "SELECT id, title, link, description, state, page FROM entries ORDER BY rowid"
        )
        return {
            r["id"]: KnownEntry(
                r["id"], r["title"], r["link"], r["description"], r["state"], r["page"]
            )
            for r in rows
        }

    def page_states(self, pages: Sequence[PageConfig]) -> list[PageState]:
        """Each configured page's state (a page new to the database starts as `new`)."""
        stored = {r["name"]: r for r in self._rows("SELECT * FROM pages")}
        placements: dict[str, list[str]] = {}
        for placed in self._rows("SELECT page, entry_id FROM placements ORDER BY page, position"):
            placements.setdefault(placed["page"], []).append(placed["entry_id"])
        states = []
        for page in pages:
            row = stored.get(page.name)
            if row is None:
                states.append(PageState(name=page.name, role=page.role))
                continue
            states.append(
                PageState(
                    name=page.name,
                    role=page.role,
                    status=row["status"],
                    streak=row["streak"],
                    normal_count=row["normal_count"],
                    baselined=bool(row["baselined"]),
                    members=tuple(placements.get(page.name, ())),
                )
            )
        return states

    def page_memory(self, name: str) -> PageMemory:
        rows = self._rows(
            "SELECT etag, last_modified, accepted_key, body_key FROM pages WHERE name = ?",
            (name,),
        )
        if not rows:
            return PageMemory(None, None, None, None)
        row = rows[0]
        return PageMemory(row["etag"], row["last_modified"], row["accepted_key"], row["body_key"])

    def previous_capture(self, target_uri: str) -> PreviousCapture | None:
        """The last response archived for a URL (through revisits, the original record)."""
        rows = self._rows(
            """SELECT c.id, c.record_type, c.record_id, c.at, c.payload_digest,
                      o.record_id AS o_record_id, o.at AS o_at, o.target_uri AS o_target
               FROM captures c LEFT JOIN captures o ON o.id = c.original_capture_id
               WHERE c.target_uri = ? AND c.record_type IS NOT NULL
                 AND c.payload_digest IS NOT NULL AND c.truncated IS NULL
                 AND (c.status BETWEEN 200 AND 299 OR c.status = 304)
               ORDER BY c.id DESC LIMIT 1""",
            (target_uri,),
        )
        if not rows or not rows[0]["payload_digest"]:
            return None
        row = rows[0]
        if row["record_type"] == "revisit" and row["o_record_id"]:
            return PreviousCapture(
                record_id=row["o_record_id"],
                target_uri=row["o_target"],
                date=row["o_at"],
                payload_digest=row["payload_digest"],
            )
        return PreviousCapture(
            record_id=row["record_id"],
            target_uri=target_uri,
            date=row["at"],
            payload_digest=row["payload_digest"],
        )

    def capture_by_record(self, record_id: str) -> int | None:
        rows = self._rows("SELECT id FROM captures WHERE record_id = ? LIMIT 1", (record_id,))
        return rows[0]["id"] if rows else None

    # -- writing one cycle (call inside `cycle()`) --------------------------

    def insert_check(self, started_at: datetime, pages: Sequence[str]) -> int:
        table = self.db.table("checks")
        table.insert({"started_at": format_time(started_at), "pages": json.dumps(list(pages))})
        return int(table.last_pk or 0)

    def insert_capture(
        self,
        check_id: int,
        result: FetchResult,
        exchange: HttpExchange | None,
        ref: CaptureRef | None,
        *,
        body_bytes: int | None,
        final: bool,
        original_capture_id: int | None,
    ) -> int:
        """Record one archived exchange (or a fetch that got no response at all)."""
        headers = {k.lower(): v for k, v in exchange.response_headers} if exchange else {}
        row = {
            "check_id": check_id,
            "page": result.page,
            "url": result.url,
            "target_uri": exchange.url if exchange else result.url,
            "final": int(final),
            "at": format_time(exchange.started_at if exchange else result.started_at),
            "status": exchange.status if exchange else None,
            "error": result.error if final else None,
            "content_type": headers.get("content-type"),
            "etag": headers.get("etag"),
            "last_modified": headers.get("last-modified"),
            "body_bytes": body_bytes,
            "payload_digest": ref.payload_digest if ref else None,
            "record_type": ref.record_type if ref else None,
            "record_id": ref.record_id if ref else None,
            "refers_to": ref.refers_to if ref else None,
            "original_capture_id": original_capture_id,
            "warc_file": ref.warc_file if ref else None,
            "warc_offset": ref.offset if ref else None,
            "warc_length": ref.length if ref else None,
            "truncated": exchange.truncated if exchange else None,
            "elapsed_s": round(result.elapsed_s, 3) if final else None,
            "attempts": result.attempts if final else None,
        }
        table = self.db.table("captures")
        table.insert(row)
        return int(table.last_pk or 0)

    def record_cycle(
        self,
        check_id: int,
        result: CycleResult,
        pages: Sequence[PageConfig],
        fetch_updates: dict[str, dict[str, Any]],
        *,
        now: datetime,
        warc_file: str | None,
    ) -> None:
        """Write classification's result: entries, versions, placements, events, page states."""
        at = format_time(now)
        conn = self.db.conn
        urls = {p.name: p.url for p in pages}
        versions = dict(
            conn.execute(
                "SELECT id, versions FROM entries WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([u.entry_id for u in result.entries]),),
            ).fetchall()
        )
        new_rows, version_rows = [], []
        for update in result.entries:
            version = versions.get(update.entry_id, 0) + (1 if update.new_version else 0)
            if update.is_new:
                new_rows.append(
                    {
                        "id": update.entry_id,
                        "title": update.title,
                        "link": update.link,
                        "description": update.description,
                        "state": update.state,
                        "page": update.page,
                        "first_seen": at,
                        "last_seen": at,
                        "last_changed": at,
                        "versions": version,
                    }
                )
            else:
                conn.execute(
                    """UPDATE entries SET title = ?, link = ?, description = ?, state = ?,
                       page = ?, versions = ?,
                       last_changed = CASE WHEN ? THEN ? ELSE last_changed END
                       WHERE id = ?""",
                    (
                        update.title,
                        update.link,
                        update.description,
                        update.state,
                        update.page,
                        version,
                        int(update.new_version),
                        at,
                        update.entry_id,
                    ),
                )
            if update.new_version:
                version_rows.append(
                    {
                        "entry_id": update.entry_id,
                        "version": version,
                        "at": at,
                        "check_id": check_id,
                        "state": update.state,
                        "page": update.page,
                        "title": update.title,
                        "link": update.link,
                        "description": update.description,
                        "capture_id": update.capture_id,
                    }
                )
        if new_rows:
            self.db.table("entries").insert_all(new_rows)
        if version_rows:
            self.db.table("entry_versions").insert_all(version_rows)
        if result.seen:
            conn.execute(
                "UPDATE entries SET last_seen = ? WHERE id IN (SELECT value FROM json_each(?))",
                (at, json.dumps(list(result.seen))),
            )

        page_rows: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for page in result.pages:
            # A page's list only changes when its entries were accepted or it was cleared.
            if page.name in result.accepted_pages or page.name in result.cleared_pages:
                conn.execute("DELETE FROM placements WHERE page = ?", (page.name,))
                self.db.table("placements").insert_all(
                    {"page": page.name, "position": i, "entry_id": entry_id}
                    for i, entry_id in enumerate(page.members)
                )
            row: dict[str, Any] = {
                "name": page.name,
                "url": urls[page.name],
                "role": page.role,
                "status": page.status,
                "streak": page.streak,
                "normal_count": page.normal_count,
                "baselined": int(page.baselined),
                "entry_count": len(page.members),
            }
            row.update(fetch_updates.get(page.name, {}))
            page_rows.setdefault(tuple(row), []).append(row)
        # Batched by column set: a row must not overwrite a column it does not carry.
        for rows in page_rows.values():
            self.db.table("pages").upsert_all(rows, pk="name")

        self.db.table("events").insert_all(event_row(check_id, e) for e in result.events)
        failures = sum(1 for p in result.pages if p.status in ("error", "gone"))
        conn.execute(
            "UPDATE checks SET finished_at = ?, events = ?, failures = ?, warc_file = ? "
            "WHERE id = ?",
            (at, len(result.events), failures, warc_file, check_id),
        )

    # -- queries --------------------------------------------------------------

    def events(
        self,
        *,
        since: datetime | None = None,
        kinds: Sequence[str] = (),
        pages: Sequence[str] = (),
        entry_id: str | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events newest first, filtered; before_seq pages through them (keyset)."""
        where: list[str] = ["1"]
        params: list[Any] = []
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        if since is not None:
            where.append("at >= ?")
            params.append(format_time(since))
        if kinds:
            where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
            params.extend(kinds)
        if pages:
            where.append(f"page IN ({', '.join('?' for _ in pages)})")
            params.extend(pages)
        if entry_id is not None:
            where.append("entry_id = ?")
            params.append(entry_id)
        sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY seq DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [event_from_row(r) for r in self._rows(sql, params)]

    def count(self, table: str) -> int:
        """Rows in one of the schema's tables (for verify's summary)."""
        if table not in ("entries", "events", "captures", "checks"):
            raise ValueError(f"not a countable table: {table!r}")
        return int(self._rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def entries(self, state: str | None = None) -> list[EntryRow]:
        sql, params = "SELECT * FROM entries", []
        if state:
            sql += " WHERE state = ?"
            params.append(state)
        sql += " ORDER BY CASE state WHEN 'active' THEN 0 WHEN 'archived' THEN 1 ELSE 2 END, rowid"
        return [_entry_row(r) for r in self._rows(sql, params)]

    def entry(self, entry_id: str) -> EntryRow | None:
        rows = self._rows("SELECT * FROM entries WHERE id = ?", (entry_id,))
        return _entry_row(rows[0]) if rows else None

    def versions(self, entry_id: str) -> list[VersionRow]:
        rows = self._rows(
            "SELECT * FROM entry_versions WHERE entry_id = ? ORDER BY version", (entry_id,)
        )
        return [
            VersionRow(
                r["version"],
                parse_time(r["at"]),
                r["state"],
                r["page"],
                r["title"],
                r["link"],
                r["description"],
                r["capture_id"],
            )
            for r in rows
        ]

    def captures(self, pages: Sequence[str] = (), limit: int | None = None) -> list[CaptureRow]:
        sql, params = "SELECT * FROM captures", list(pages)
        if pages:
            sql += f" WHERE page IN ({', '.join('?' for _ in pages)})"
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_capture_row(r) for r in self._rows(sql, params)]

    def capture(self, capture_id: int) -> CaptureRow | None:
        rows = self._rows("SELECT * FROM captures WHERE id = ?", (capture_id,))
        return _capture_row(rows[0]) if rows else None

    def pages(self) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM pages ORDER BY rowid")

    def last_check(self) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM checks ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def warc_refs(self) -> list[tuple[int, str, int, str]]:
        rows = self._rows(
            "SELECT id, warc_file, warc_offset, record_id FROM captures "
            "WHERE warc_file IS NOT NULL ORDER BY id"
        )
        return [(r["id"], r["warc_file"], r["warc_offset"], r["record_id"]) for r in rows]

    def check_integrity(self) -> list[str]:
        """Problems in the database itself: SQLite's own check and dangling references."""
        problems: list[str] = []
        result = self._rows("PRAGMA integrity_check")
        if result and result[0]["integrity_check"] != "ok":
            problems.extend(f"{self.path}: {r['integrity_check']}" for r in result)
        dangling = {
            "event points at a missing entry": "SELECT e.id FROM events e LEFT JOIN entries n "
            "ON n.id = e.entry_id WHERE e.entry_id IS NOT NULL AND n.id IS NULL",
            "event points at a missing capture": "SELECT e.id FROM events e LEFT JOIN captures c "
            "ON c.id = e.capture_id WHERE e.capture_id IS NOT NULL AND c.id IS NULL",
            "placement points at a missing entry": "SELECT p.entry_id AS id FROM placements p "
            "LEFT JOIN entries n ON n.id = p.entry_id WHERE n.id IS NULL",
            "version points at a missing entry": "SELECT v.entry_id AS id FROM entry_versions v "
            "LEFT JOIN entries n ON n.id = v.entry_id WHERE n.id IS NULL",
            "check never finished": "SELECT id FROM checks WHERE finished_at IS NULL",
            "revisit without its original": "SELECT id FROM captures WHERE record_type = "
            "'revisit' AND original_capture_id IS NULL",
        }
        for what, sql in dangling.items():
            for row in self._rows(sql):
                problems.append(f"{self.path}: {what}: {row['id']}")
        return problems

    def event_seq(self, event_id: str) -> int | None:
        """The seq of one event (the key `events(before_seq=...)` pages by), None if unknown."""
        rows = self._rows("SELECT seq FROM events WHERE id = ?", (event_id,))
        return int(rows[0]["seq"]) if rows else None


def _open_read_only(path: Path) -> sqlite3.Connection:
    """monitor.db opened read-only, in a directory this process cannot write as well.

    SQLite reads a WAL database only through its -shm file, which it must create when
    absent: in a read-only directory (a copy on read-only media, a data dir owned by the
    daemon's user) it cannot, and `immutable=1` is then the only way in. That flag makes
    SQLite ignore a -wal file, so it is used only when there is none with data in it.
    """
    uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = path.with_name(f"{path.name}-wal")
        if os.access(path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size):
            raise
    return sqlite3.connect(f"{uri}&immutable=1", uri=True)


def event_row(check_id: int, event: Event) -> dict[str, Any]:
    changes = None
    if event.changes:
        changes = json.dumps(
            {k: {"before": c.before, "after": c.after} for k, c in event.changes.items()},
            ensure_ascii=False,
        )
    return {
        "id": event.id,
        "check_id": check_id,
        "kind": event.kind,
        "at": format_time(event.at),
        "page": event.page,
        "entry_id": event.entry_id,
        "title": event.title,
        "link": event.link,
        "description": event.description,
        "changes": changes,
        "detail": event.detail,
        "capture_id": event.capture_id,
    }


def event_from_row(row: dict[str, Any]) -> Event:
    changes = None
    if row["changes"]:
        changes = {
            k: Change(v["before"], v["after"]) for k, v in json.loads(row["changes"]).items()
        }
    return Event(
        id=row["id"],
        kind=row["kind"],
        at=parse_time(row["at"]),
        page=row["page"],
        entry_id=row["entry_id"],
        title=row["title"],
        link=row["link"],
        description=row["description"],
        changes=changes,
        detail=row["detail"],
        capture_id=row["capture_id"],
    )


def _entry_row(r: dict[str, Any]) -> EntryRow:
    return EntryRow(
        r["id"],
        r["title"],
        r["link"],
        r["description"],
        r["state"],
        r["page"],
        parse_time(r["first_seen"]),
        parse_time(r["last_seen"]),
        parse_time(r["last_changed"]),
        r["versions"],
    )


def _capture_row(r: dict[str, Any]) -> CaptureRow:
    return CaptureRow(
        id=r["id"],
        check_id=r["check_id"],
        page=r["page"],
        url=r["url"],
        target_uri=r["target_uri"],
        final=bool(r["final"]),
        at=parse_time(r["at"]),
        status=r["status"],
        error=r["error"],
        content_type=r["content_type"],
        body_bytes=r["body_bytes"],
        payload_digest=r["payload_digest"],
        record_type=r["record_type"],
        record_id=r["record_id"],
        original_capture_id=r["original_capture_id"],
        warc_file=r["warc_file"],
        warc_offset=r["warc_offset"],
        truncated=r["truncated"],
    )
