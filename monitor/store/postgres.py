"""The PostgreSQL store ([cluster].database), psycopg 3: the SQLite store's interface, shared.

Every worker of a cluster writes here. One cycle is one transaction (`record_cycle`), as
in SQLite; the schema (schema_pg.sql, the same tables and columns) is created or migrated
on first use under an advisory lock, so workers starting together do not race. Times are
ISO 8601 TEXT as in SQLite, so rows.py converts both stores' rows alike. Errors name the
database URL without its password.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from monitor.errors import NoDatabaseYet, SchemaTooNew, StoreError
from monitor.models import (
    Entry,
    EntryState,
    Event,
    KnownEntry,
    PageState,
)
from monitor.store import reading
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
from monitor.store.postgres_detail import PostgresDetail
from monitor.store.postgres_outbox import PostgresOutbox
from monitor.store.postgres_write import write_cycle, write_rederived
from monitor.store.reading import CaptureRow, CheckRow, EntryRow, PageRow, VersionRow, WarcRef
from monitor.store.sqlite import SCHEMA_VERSION, schema_version

KEY = "cluster.database"  # the config key every connection error names
CONNECT_TIMEOUT_S = 10
# version -> statements bringing an older PostgreSQL schema up to it (PostgreSQL starts at 3).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    5: ("ALTER TABLE placements ADD COLUMN IF NOT EXISTS held BOOLEAN NOT NULL DEFAULT false",),
    4: (  # last_responses (created by the schema, empty): filled from the history once
        """INSERT INTO last_responses (page, target_uri, capture_id)
           SELECT page, target_uri, max(id) FROM captures
           WHERE record_type IS NOT NULL AND source_uri IS NULL
             AND payload_digest IS NOT NULL AND truncated IS NULL
             AND (status BETWEEN 200 AND 299 OR status = 304)
           GROUP BY page, target_uri
           ON CONFLICT (page, target_uri) DO UPDATE SET capture_id = EXCLUDED.capture_id""",
    ),
}
# Held (per transaction) while the schema is created or migrated: one worker at a time.
SCHEMA_LOCK_KEY = 0x6D6F6E69746F72  # "monitor"
SCHEMA = Path(__file__).with_name("schema_pg.sql").read_text(encoding="utf-8")


def redact(url: str) -> str:
    """A database URL fit for messages: its password (if any) left out."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "postgresql://…"


def describe(error: BaseException, url: str) -> str:
    """psycopg's message on one line, never carrying the URL's password."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    password = _password(url)
    return text.replace(password, "…") if password else text


def _password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def connect(url: str, *, read_only: bool = False, name: str = "monitor") -> psycopg.Connection[Any]:
    """An autocommit connection; StoreError naming cluster.database when there is none."""
    options = "-c default_transaction_read_only=on" if read_only else None
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=name[:63],
            options=options,
        )
    except (psycopg.Error, ValueError) as error:
        raise StoreError(
            f"{KEY}: cannot connect to {redact(url)}: {describe(error, url)}"
        ) from None


class PostgresStore(PostgresDetail):
    """The shared store: read the last state, record cycles, answer the commands' queries."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Connect; create=True creates or migrates the schema, False only reads (read-only)."""
        self.url = url
        self.location = redact(url)
        self.conn = connect(url, read_only=not create)
        try:
            if create:
                self._create()
            else:
                self._open_existing()
        except psycopg.Error as error:
            self.conn.close()
            raise StoreError(
                f"{self.location}: cannot open the database: {self._say(error)}"
            ) from None
        except StoreError:
            self.conn.close()
            raise

    def _say(self, error: BaseException) -> str:
        return describe(error, self.url)

    def _stored_version(self) -> int | None:
        if self.conn.execute("SELECT to_regclass('meta')").fetchone() == (None,):
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else schema_version(self.location, row[0])

    def _has(self, table: str) -> bool:
        return self.conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)

    def _refuse_newer(self, version: int | None) -> None:
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.location}: the database has schema version {version}, written by a "
                f"newer monitor; this version knows up to {SCHEMA_VERSION}. Upgrade monitor; "
                "the database was not changed."
            )

    def _open_existing(self) -> None:
        version = self._stored_version()
        if version is None:
            raise NoDatabaseYet(
                f"{self.location}: no monitor tables here yet: run `monitor check` first"
            )
        self._refuse_newer(version)

    def _create(self) -> None:
        """Create the tables, or bring an older schema up to SCHEMA_VERSION, in one transaction."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            version = self._stored_version()
            self._refuse_newer(version)  # before anything is written
            # Version 3 databases written before backfill reached PostgreSQL lack its table:
            # the schema's CREATE ... IF NOT EXISTS adds it (and nothing else changes).
            if version == SCHEMA_VERSION and self._has("imported_captures"):
                return
            self.conn.execute(SCHEMA)  # no parameters: the whole script in one round trip
            for target in range((version or SCHEMA_VERSION) + 1, SCHEMA_VERSION + 1):
                for sql in MIGRATIONS.get(target, ()):
                    self.conn.execute(sql)
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        self.conn.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self.conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(sql, tuple(params))
                return cursor.fetchall()
        except psycopg.Error as error:
            raise StoreError(f"{self.location}: {self._say(error)}") from None

    # -- the cycle's side ------------------------------------------------------------

    def known_entries(self) -> dict[str, KnownEntry]:
        """Every entry ever seen, removed ones included, oldest first."""
        rows = self._rows(
            "SELECT id, title, link, description, state, page FROM entries ORDER BY seq"
        )
        # one string per state and page name, not one per row (25,000 rows a cycle)
        states: dict[str, EntryState] = {}
        pages: dict[str, str] = {}
        return {
            r["id"]: KnownEntry(
                r["id"], r["title"], r["link"], r["description"],
                states.setdefault(r["state"], r["state"]), pages.setdefault(r["page"], r["page"]),
            )  # fmt: skip
            for r in rows
        }

    def read_cycle_state(self, pages: Sequence[PageState]) -> CycleState:
        """Each page's memory (new pages start `new`) and the last response of their URLs."""
        names = [p.name for p in pages]
        stored = {
            r["name"]: r for r in self._rows("SELECT * FROM pages WHERE name = ANY(%s)", [names])
        }
        members: dict[str, list[str]] = {}
        held: dict[str, set[str]] = {}
        for r in self._rows(  # ids alone: fields are read for the pages a cycle decides on
            "SELECT page, entry_id, held FROM placements WHERE page = ANY(%s) "
            "ORDER BY page, position",
            [names],
        ):
            members.setdefault(r["page"], []).append(r["entry_id"])
            if r["held"]:
                held.setdefault(r["page"], set()).add(r["entry_id"])
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
        for r in self._rows(
            "SELECT page, title, link, description FROM placements "
            "WHERE page = ANY(%s) ORDER BY page, position",
            [list(pages)],
        ):
            recorded = r["title"] is not None and r["description"] is not None
            fields[r["page"]].append(
                Entry(r["title"], r["link"], r["description"]) if recorded else None
            )
        return {name: tuple(shown) for name, shown in fields.items()}

    def _last_responses(self, pages: Sequence[str]) -> dict[str, LastResponse]:
        """The last whole 2xx (or 304) response of every URL the pages were fetched at."""
        rows = self._rows(
            """SELECT c.target_uri, c.record_type, c.record_id, c.at, c.payload_digest,
                      c.warc_file, c.warc_offset, c.content_type,
                      o.record_id AS o_record_id, o.at AS o_at, o.warc_file AS o_file,
                      o.warc_offset AS o_offset, o.content_type AS o_type
               FROM captures c LEFT JOIN captures o ON o.id = c.original_capture_id
               WHERE c.id IN (
                   SELECT max(capture_id) FROM last_responses
                   WHERE page = ANY(%s) GROUP BY target_uri)""",
            [list(pages)],
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
        try:
            with self.conn.transaction():
                return write_cycle(self.conn, record)
        except psycopg.Error as error:
            raise StoreError(
                f"{self.location}: cannot record the check: {self._say(error)}"
            ) from None

    def record_rederived(self, pages: Sequence[Rederived]) -> None:
        """Write re-derived entry fields silently (no event, no version): one transaction."""
        try:
            with self.conn.transaction():
                write_rederived(self.conn, pages)
        except psycopg.Error as error:
            raise StoreError(f"{self.location}: cannot record: {self._say(error)}") from None

    def outbox(self) -> PostgresOutbox:
        """The notification outbox (postgres_outbox.py), on this store's connection."""
        return PostgresOutbox(self.conn, self.location, self._say)

    # -- the readers' side --------------------------------------------------------------

    def events(self, query: EventQuery | None = None) -> list[Event]:
        """Events newest first (by time, then seq), filtered; before_seq pages through them."""
        sql, params = R.events_sql(query or EventQuery(), "%s")
        return [R.event_from_row(r, self.location) for r in self._rows(sql, params)]

    def event_seq(self, event_id: str) -> int | None:
        """The seq of one event (the key `before_seq` pages by), None if unknown."""
        rows = self._rows("SELECT seq FROM events WHERE id = %s", (event_id,))
        return int(rows[0]["seq"]) if rows else None

    def count(self, table: str) -> int:
        """Rows in one of the schema's tables (verify's summary; a check: any imported?)."""
        if table not in ("entries", "events", "captures", "checks", "imported_captures"):
            raise ValueError(f"not a countable table: {table!r}")
        return int(self._rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def entries(self, state: str | None = None) -> list[EntryRow]:
        sql, params = "SELECT * FROM entries", []
        if state:
            sql += " WHERE state = %s"
            params.append(state)
        sql += f" ORDER BY {R.STATE_ORDER}, seq"
        listed = self._listed_until()
        return [reading.entry_from_row(r, listed.get(r["id"])) for r in self._rows(sql, params)]

    def entry(self, entry_id: str) -> EntryRow | None:
        rows = self._rows("SELECT * FROM entries WHERE id = %s", (entry_id,))
        if not rows:
            return None
        return reading.entry_from_row(rows[0], self._listed_until(entry_id).get(entry_id))

    def _listed_until(self, entry_id: str | None = None) -> dict[str, str]:
        rows = self._rows(*reading.listed_until_query(entry_id, "%s"))
        return reading.listed_until_by_entry(rows)

    def entry_ids(self, prefix: str, limit: int = 10) -> list[str]:
        """Entry ids starting with `prefix` (at most `limit`), for ids typed by hand."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._rows(  # COLLATE "C": byte order, as SQLite sorts, whatever the locale
            "SELECT id FROM entries WHERE id LIKE %s ESCAPE '\\' ORDER BY id COLLATE \"C\" "
            "LIMIT %s",
            (escaped + "%", limit),
        )
        return [r["id"] for r in rows]

    def versions(self, entry_id: str) -> list[VersionRow]:
        rows = self._rows(
            "SELECT * FROM entry_versions WHERE entry_id = %s ORDER BY version", (entry_id,)
        )
        return [reading.version_from_row(r) for r in rows]

    def captures(self, pages: Sequence[str] = (), limit: int | None = None) -> list[CaptureRow]:
        sql, params = "SELECT * FROM captures", []
        if pages:
            sql += " WHERE page = ANY(%s)"
            params.append(list(pages))
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [reading.capture_from_row(r) for r in self._rows(sql, params)]

    def capture(self, capture_id: int) -> CaptureRow | None:
        rows = self._rows("SELECT * FROM captures WHERE id = %s", (capture_id,))
        return reading.capture_from_row(rows[0]) if rows else None

    def page_rows(self) -> list[PageRow]:
        return [reading.page_from_row(r) for r in self._rows("SELECT * FROM pages ORDER BY seq")]

    def last_check(self) -> CheckRow | None:
        # an entry-page phase ("detail") or a backfill run is not a check cycle of the pages
        rows = self._rows("SELECT * FROM checks WHERE kind = 'check' ORDER BY id DESC LIMIT 1")
        return reading.check_from_row(rows[0]) if rows else None

    def warc_refs(self) -> list[WarcRef]:
        from monitor.store.reading import WARC_REFS_SQL, warc_ref_from_row

        return [warc_ref_from_row(r) for r in self._rows(WARC_REFS_SQL)]

    def check_integrity(self) -> list[str]:
        """Problems in the database: dangling references (PostgreSQL checks its own pages)."""
        problems: list[str] = []
        for what, sql in R.DANGLING.items():
            for row in self._rows(sql):
                problems.append(f"{self.location}: {what}: {row['id']}")
        return problems
