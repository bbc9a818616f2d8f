"""monitor.db (SQLite through the standard library's sqlite3, WAL mode): the default store.

One check cycle is one transaction (`record_cycle`): after a crash the database holds
whole cycles only. sqlite3 directly, not sqlite-utils: every write here is hand-written SQL,
and importing sqlite-utils (with its plugin hooks) cost ~0.1 s of each `monitor check`.
The schema is in schema.sql and documented in docs/schema.md.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.errors import NoDatabaseYet, SchemaTooNew, StoreError
from monitor.models import (
    Entry,
    EntryState,
    Event,
    KnownEntry,
    PageState,
)
from monitor.store import rows as R
from monitor.store.base import (
    CycleRecord,
    CycleState,
    EventQuery,
    LastResponse,
    PageMemory,
    RecordedCycle,
    Rederived,
)
from monitor.store.sqlite_write import atomic, write_cycle, write_rederived

if TYPE_CHECKING:
    from monitor.store.detail_rows import (
        DetailRecord,
        DetailState,
        LinkCheckRow,
        LinkMemory,
        RecordedDetail,
    )
    from monitor.store.reading import CaptureRow, CheckRow, EntryRow, PageRow, VersionRow, WarcRef
    from monitor.store.sqlite_detail import SqliteDetail
    from monitor.store.sqlite_outbox import SqliteOutbox

SCHEMA_VERSION = 5


def schema_version(where: str, stored: object) -> int:
    """The schema version as `meta` stores it (text); anything else is a damaged database."""
    try:
        version = int(str(stored))
    except ValueError:
        version = 0
    if version < 1:  # monitor's first schema is version 1
        raise StoreError(
            f"{where}: the database's schema version reads {str(stored)[:40]!r}, not a "
            "version monitor ever wrote: this is not a database monitor wrote, or it is damaged"
        )
    return version


# version -> (table, column, SQL adding it): what upgrading to that version adds to the
# tables of an older database (new tables come from schema.sql's CREATE IF NOT EXISTS).
MIGRATIONS: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: (("pages", "body_key", "ALTER TABLE pages ADD COLUMN body_key TEXT"),),
    3: (
        ("pages", "accepted_captures", "ALTER TABLE pages ADD COLUMN accepted_captures TEXT"),
        ("pages", "extractor", "ALTER TABLE pages ADD COLUMN extractor TEXT"),
        ("checks", "kind", "ALTER TABLE checks ADD COLUMN kind TEXT NOT NULL DEFAULT 'check'"),
        ("captures", "source_uri", "ALTER TABLE captures ADD COLUMN source_uri TEXT"),
        ("placements", "title", "ALTER TABLE placements ADD COLUMN title TEXT"),
        ("placements", "link", "ALTER TABLE placements ADD COLUMN link TEXT"),
        ("placements", "description", "ALTER TABLE placements ADD COLUMN description TEXT"),
        ("events", "source", "ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'check'"),
        ("events", "changes_html", "ALTER TABLE events ADD COLUMN changes_html TEXT"),
        (
            "entry_versions",
            "source",
            "ALTER TABLE entry_versions ADD COLUMN source TEXT NOT NULL DEFAULT 'check'",
        ),
    ),
    5: (
        (
            "placements",
            "held",
            "ALTER TABLE placements ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
        ),
    ),
}
# version -> SQL run once when upgrading to it, after the columns: filling a new table
# from the rows an older version wrote (schema.sql created it, empty).
MIGRATION_FILLS: dict[int, tuple[str, ...]] = {
    4: (
        """INSERT OR REPLACE INTO last_responses (page, target_uri, capture_id)
           SELECT page, target_uri, max(id) FROM captures
           WHERE page IS NOT NULL AND record_type IS NOT NULL AND source_uri IS NULL
             AND payload_digest IS NOT NULL AND truncated IS NULL
             AND (status BETWEEN 200 AND 299 OR status = 304)
           GROUP BY page, target_uri""",
    ),
}

# The schema lives in schema.sql (plain SQL: readable, and loadable in the sqlite3 shell).
# Read beside this file: importlib.resources costs a one-off check ~7 ms of imports.
SCHEMA = Path(__file__).with_name("schema.sql").read_text(encoding="utf-8")


class SqliteStore:
    """monitor.db: open it, read the last state, record cycles, answer queries."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open monitor.db; with create=False, only an existing one, read-only."""
        self.path = path
        self.location = str(path)
        if not create and not path.exists():
            raise NoDatabaseYet(f"{path}: no database here yet: run `monitor check` first")
        try:
            if not create:
                # Readers (log, entries, serve) cannot write even by mistake.
                self.conn = _open_read_only(path)
                if self._refuse_newer() is None:  # the version row is written after the tables
                    self.conn.close()
                    raise NoDatabaseYet(
                        f"{path}: no monitor tables here yet: run `monitor check` first"
                    )
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(path)
            self.conn.execute("PRAGMA busy_timeout = 10000")
            self._refuse_newer()  # before anything is written
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode = wal")
            self.conn.executescript(SCHEMA)
            self._migrate()
            self.conn.commit()
        except sqlite3.Error as error:
            raise StoreError(f"{path}: cannot open the database: {error}") from error
        except OSError as error:
            raise StoreError(f"{path}: cannot open the database: {error}") from error

    def _stored_version(self) -> int | None:
        conn = self.conn
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else schema_version(str(self.path), row[0])

    def _refuse_newer(self) -> int | None:
        """The stored schema version (None: no tables yet); a newer one is refused."""
        version = self._stored_version()
        if version is not None and version > SCHEMA_VERSION:
            self.conn.close()
            raise SchemaTooNew(
                f"{self.path}: the database has schema version {version}, written by a newer "
                f"monitor; this version knows up to {SCHEMA_VERSION}. Upgrade monitor; the "
                "database was not changed."
            )
        return version

    def _migrate(self) -> None:
        """Bring a database written by an earlier version up to SCHEMA_VERSION, in place."""
        version = self._stored_version() or SCHEMA_VERSION  # no row: created just now
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for table, column, sql in MIGRATIONS.get(target, ()):
                columns = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self.conn.execute(sql)
            for sql in MIGRATION_FILLS.get(target, ()):
                self.conn.execute(sql)
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction: everything written inside commits together, or not at all."""
        try:
            with atomic(self.conn) as conn:
                yield conn
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"{self.path}: cannot record the check: {error}") from error

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.conn.execute(sql, tuple(params))
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- the cycle's side ------------------------------------------------------------

    def known_entries(self) -> dict[str, KnownEntry]:
        """Every entry ever seen, removed ones included, oldest first."""
        sql = "SELECT id, title, link, description, state, page FROM entries ORDER BY rowid"
        # one string per state and page name, not one per row (25,000 rows a cycle)
        states: dict[str, EntryState] = {}
        pages: dict[str, str] = {}
        try:  # tuples straight into KnownEntry: no dict per row (25,000 rows a cycle)
            return {
                entry_id: KnownEntry(
                    entry_id, title, link, description,
                    states.setdefault(state, state), pages.setdefault(page, page),
                )  # fmt: skip
                for entry_id, title, link, description, state, page in self.conn.execute(sql)
            }
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error

    def read_cycle_state(self, pages: Sequence[PageState]) -> CycleState:
        """Each page's memory (new pages start `new`) and the last response of their URLs."""
        names = [p.name for p in pages]
        marks = ", ".join("?" for _ in names)
        stored = {
            r["name"]: r for r in self._rows(f"SELECT * FROM pages WHERE name IN ({marks})", names)
        }
        members: dict[str, list[str]] = {}
        held: dict[str, set[str]] = {}
        try:  # ids alone: fields are read for the pages a cycle decides on (member_fields)
            for page, entry_id, is_held in self.conn.execute(
                f"SELECT page, entry_id, held FROM placements WHERE page IN ({marks}) "
                f"ORDER BY page, position",
                names,
            ):
                members.setdefault(page, []).append(entry_id)
                if is_held:
                    held.setdefault(page, set()).add(entry_id)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error
        memories = {}
        for page in pages:
            row = stored.get(page.name)
            if row is None:
                memories[page.name] = PageMemory(page)
                continue
            state = PageState(
                name=page.name,
                role=page.role,
                status=row["status"],
                streak=row["streak"],
                normal_count=row["normal_count"],
                baselined=bool(row["baselined"]),
                members=tuple(members.get(page.name, ())),
                held=frozenset(held.get(page.name, ())),
            )
            memories[page.name] = PageMemory(
                state, row["etag"], row["last_modified"], row["accepted_key"], row["body_key"],
                extractor=row["extractor"],
                accepted_captures=tuple(json.loads(row["accepted_captures"] or "[]")),
            )  # fmt: skip
        return CycleState(memories, self._last_responses(names))

    def member_fields(self, pages: Sequence[str]) -> dict[str, tuple[Entry | None, ...]]:
        """Each named page's members' fields as it shows them, in page order."""
        fields: dict[str, list[Entry | None]] = {name: [] for name in pages}
        if not pages:
            return {}
        marks = ", ".join("?" for _ in pages)
        sql = (
            f"SELECT page, title, link, description FROM placements "
            f"WHERE page IN ({marks}) ORDER BY page, position"
        )
        try:
            for page, title, link, description in self.conn.execute(sql, list(pages)):
                recorded = title is not None and description is not None
                fields[page].append(Entry(title, link, description) if recorded else None)
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: {error}") from error
        return {name: tuple(shown) for name, shown in fields.items()}

    def _last_responses(self, pages: Sequence[str]) -> dict[str, LastResponse]:
        """The last whole 2xx (or 304) response of every URL the pages were fetched at."""
        marks = ", ".join("?" for _ in pages)
        rows = self._rows(
            f"""SELECT c.target_uri, c.record_type, c.record_id, c.at, c.payload_digest,
                      c.warc_file, c.warc_offset, c.content_type,
                      o.record_id AS o_record_id, o.at AS o_at, o.warc_file AS o_file,
                      o.warc_offset AS o_offset, o.content_type AS o_type
               FROM captures c LEFT JOIN captures o ON o.id = c.original_capture_id
               WHERE c.id IN (
                   SELECT max(capture_id) FROM last_responses
                   WHERE page IN ({marks}) GROUP BY target_uri)""",
            list(pages),
        )
        found = {}
        for r in rows:
            if r["record_type"] == "revisit":
                if not r["o_record_id"] or r["o_file"] is None:
                    continue
                found[r["target_uri"]] = LastResponse(
                    r["target_uri"], r["o_record_id"], r["o_at"], r["payload_digest"],
                    r["o_file"], r["o_offset"], r["o_type"],
                )  # fmt: skip
            elif r["warc_file"] is not None:
                found[r["target_uri"]] = LastResponse(
                    r["target_uri"], r["record_id"], r["at"], r["payload_digest"],
                    r["warc_file"], r["warc_offset"], r["content_type"],
                )  # fmt: skip
        return found

    def record_cycle(self, record: CycleRecord) -> RecordedCycle:
        """Write one cycle (captures, entries, placements, pages, events) in one transaction."""
        with self.transaction() as conn:
            return write_cycle(conn, record)

    def record_rederived(self, pages: Sequence[Rederived]) -> None:
        """Write re-derived entry fields silently (no event, no version): one transaction."""
        with self.transaction() as conn:
            write_rederived(conn, pages)

    # Entry pages ([pages.detail]): sqlite_detail.py, loaded at the first use.

    def _detail(self) -> SqliteDetail:
        from monitor.store.sqlite_detail import SqliteDetail

        return SqliteDetail(self)

    def read_detail_state(self, pages: Sequence[str]) -> DetailState:
        return self._detail().read_detail_state(pages)

    def record_detail(self, record: DetailRecord) -> RecordedDetail:
        return self._detail().record_detail(record)

    def entry_pages(self) -> list[LinkMemory]:
        return self._detail().entry_pages()

    def entry_page(self, entry_id: str) -> LinkMemory | None:
        return self._detail().entry_page(entry_id)

    def entry_page_checks(self, entry_id: str) -> list[LinkCheckRow]:
        return self._detail().entry_page_checks(entry_id)

    def outbox(self) -> SqliteOutbox:
        """The notification outbox (sqlite_outbox.py), on this store's connection."""
        from monitor.store.sqlite_outbox import SqliteOutbox  # loads the notify modules

        return SqliteOutbox(self.conn, self.path)

    # -- the readers' side --------------------------------------------------------------

    def events(self, query: EventQuery | None = None) -> list[Event]:
        """Events newest first (by time, then seq), filtered; before_seq pages through them."""
        sql, params = R.events_sql(query or EventQuery(), "?")
        return [R.event_from_row(r, str(self.path)) for r in self._rows(sql, params)]

    def event_seq(self, event_id: str) -> int | None:
        """The seq of one event (the key `before_seq` pages by), None if unknown."""
        rows = self._rows("SELECT seq FROM events WHERE id = ?", (event_id,))
        return int(rows[0]["seq"]) if rows else None

    def count(self, table: str) -> int:
        """Rows in one of the schema's tables (verify's summary; a check: any imported?)."""
        if table not in ("entries", "events", "captures", "checks", "imported_captures"):
            raise ValueError(f"not a countable table: {table!r}")
        return int(self._rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    # The readers' rows (reading.py) load at the first read: a check cycle reads none.

    def entries(self, state: str | None = None) -> list[EntryRow]:
        from monitor.store.reading import entry_from_row

        sql, params = "SELECT * FROM entries", []
        if state:
            sql += " WHERE state = ?"
            params.append(state)
        sql += f" ORDER BY {R.STATE_ORDER}, rowid"
        listed = self._listed_until()
        return [entry_from_row(r, listed.get(r["id"])) for r in self._rows(sql, params)]

    def entry(self, entry_id: str) -> EntryRow | None:
        from monitor.store.reading import entry_from_row

        rows = self._rows("SELECT * FROM entries WHERE id = ?", (entry_id,))
        if not rows:
            return None
        return entry_from_row(rows[0], self._listed_until(entry_id).get(entry_id))

    def _listed_until(self, entry_id: str | None = None) -> dict[str, str]:
        from monitor.store.reading import listed_until_by_entry, listed_until_query

        return listed_until_by_entry(self._rows(*listed_until_query(entry_id, "?")))

    def entry_ids(self, prefix: str, limit: int = 10) -> list[str]:
        """Entry ids starting with `prefix` (at most `limit`), for ids typed by hand."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._rows(
            "SELECT id FROM entries WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
            (escaped + "%", limit),
        )
        return [r["id"] for r in rows]

    def versions(self, entry_id: str) -> list[VersionRow]:
        from monitor.store.reading import version_from_row

        rows = self._rows(
            "SELECT * FROM entry_versions WHERE entry_id = ? ORDER BY version", (entry_id,)
        )
        return [version_from_row(r) for r in rows]

    def captures(self, pages: Sequence[str] = (), limit: int | None = None) -> list[CaptureRow]:
        from monitor.store.reading import capture_from_row

        sql, params = "SELECT * FROM captures", list(pages)
        if pages:
            sql += f" WHERE page IN ({', '.join('?' for _ in pages)})"
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [capture_from_row(r) for r in self._rows(sql, params)]

    def capture(self, capture_id: int) -> CaptureRow | None:
        from monitor.store.reading import capture_from_row

        rows = self._rows("SELECT * FROM captures WHERE id = ?", (capture_id,))
        return capture_from_row(rows[0]) if rows else None

    def page_rows(self) -> list[PageRow]:
        from monitor.store.reading import page_from_row

        return [page_from_row(r) for r in self._rows("SELECT * FROM pages ORDER BY rowid")]

    def last_check(self) -> CheckRow | None:
        from monitor.store.reading import check_from_row

        # an entry-page phase ("detail") or a backfill run is not a check cycle of the pages
        rows = self._rows("SELECT * FROM checks WHERE kind = 'check' ORDER BY id DESC LIMIT 1")
        return check_from_row(rows[0]) if rows else None

    def warc_refs(self) -> list[WarcRef]:
        from monitor.store.reading import WARC_REFS_SQL, warc_ref_from_row

        return [warc_ref_from_row(r) for r in self._rows(WARC_REFS_SQL)]

    def check_integrity(self) -> list[str]:
        """Problems in the database itself: SQLite's own check and dangling references."""
        problems: list[str] = []
        result = self._rows("PRAGMA integrity_check")
        if result and result[0]["integrity_check"] != "ok":
            problems.extend(f"{self.path}: {r['integrity_check']}" for r in result)
        for what, sql in R.DANGLING.items():
            for row in self._rows(sql):
                problems.append(f"{self.path}: {what}: {row['id']}")
        return problems


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
