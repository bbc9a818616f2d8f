"""The readers' side of the store: the rows `entries`, `history`, `snapshots`, `status`,
`verify` and the web pages read, and their rows <-> database rows (both stores).

Apart from base.py and rows.py so that a check cycle, which reads none of them, does not
build their classes: each dataclass costs a start ~0.5 ms on Python 3.11 (bench/README.md,
"speed 5"). The stores import this module in their read methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from msgspec import Struct

from monitor.models import format_time, parse_time
from monitor.store.rows import optional_time as _time

Row = Mapping[str, Any]


class CaptureRow(Struct, frozen=True):
    id: int
    check_id: int
    page: str
    url: str
    target_uri: str
    final: bool
    at: datetime
    status: int | None
    error: str | None
    content_type: str | None
    body_bytes: int | None
    payload_digest: str | None
    record_type: str | None
    record_id: str | None
    original_capture_id: int | None
    warc_file: str | None
    warc_offset: int | None
    truncated: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "page": self.page,
            "at": format_time(self.at),
            "url": self.target_uri,
            "status": self.status,
            "error": self.error,
            "content_type": self.content_type,
            "bytes": self.body_bytes,
            "payload_digest": self.payload_digest,
            "record_type": self.record_type,
            "record_id": self.record_id,
            "same_as_capture": self.original_capture_id,
            "warc_file": self.warc_file,
            "warc_offset": self.warc_offset,
            "truncated": self.truncated,
        }


class EntryRow(Struct, frozen=True):
    id: str
    title: str
    link: str | None
    description: str
    state: str
    page: str
    first_seen: datetime
    last_seen: datetime
    last_changed: datetime
    versions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.id,
            "state": self.state,
            "page": self.page,
            "title": self.title,
            "link": self.link,
            "description": self.description,
            "first_seen": format_time(self.first_seen),
            "last_seen": format_time(self.last_seen),
            "last_changed": format_time(self.last_changed),
            "versions": self.versions,
        }


class VersionRow(Struct, frozen=True):
    version: int
    at: datetime
    state: str
    page: str
    title: str
    link: str | None
    description: str
    capture_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "at": format_time(self.at),
            "state": self.state,
            "page": self.page,
            "title": self.title,
            "link": self.link,
            "description": self.description,
            "capture_id": self.capture_id,
        }


class PageRow(Struct, frozen=True):
    """A page as the store knows it (status, counts, last fetch), for status and the web page."""

    name: str
    url: str
    role: str
    status: str
    streak: int
    normal_count: int
    entry_count: int
    last_checked_at: datetime | None
    last_ok_at: datetime | None
    last_detail: str | None
    last_capture_id: int | None


class CheckRow(Struct, frozen=True):
    """One check cycle as recorded."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    pages: tuple[str, ...]
    events: int
    failures: int
    warc_file: str | None


class WarcRef(Struct, frozen=True):
    """Where the database says a capture's record is, and what it says the record holds
    (its payload digest, target URI and, for a revisit, the record it refers to), for verify."""

    capture_id: int
    warc_file: str
    offset: int
    record_id: str
    payload_digest: str | None = None
    target_uri: str | None = None
    refers_to: str | None = None  # the original capture's record id (a revisit's)


# Plain SQL both stores run: each archived capture, with its original's record id.
WARC_REFS_SQL = (
    "SELECT c.id, c.warc_file, c.warc_offset, c.record_id, c.payload_digest, c.target_uri, "
    "o.record_id AS original_record FROM captures c "
    "LEFT JOIN captures o ON o.id = c.original_capture_id "
    "WHERE c.warc_file IS NOT NULL ORDER BY c.id"
)


def warc_ref_from_row(r: Row) -> WarcRef:
    return WarcRef(r["id"], r["warc_file"], r["warc_offset"], r["record_id"],
                   r["payload_digest"], r["target_uri"], r["original_record"])  # fmt: skip


# When each entry was last listed, as the pages say: the last good check of a page it
# stands on (not held). An unchanged page (a revisit, a 304) rewrites no entry row, so
# entries.last_seen alone is the last check whose new body listed it. {where}: "" or a
# condition on l.entry_id.
LISTED_UNTIL_SQL = (
    "SELECT l.entry_id, max(p.last_ok_at) AS listed_until FROM placements l "
    "JOIN pages p ON p.name = l.page WHERE NOT l.held{where} GROUP BY l.entry_id"
)


def listed_until_query(entry_id: str | None, mark: str) -> tuple[str, tuple[str, ...]]:
    """LISTED_UNTIL_SQL for every entry or one, with the store's parameter mark."""
    if entry_id is None:
        return LISTED_UNTIL_SQL.format(where=""), ()
    return LISTED_UNTIL_SQL.format(where=f" AND l.entry_id = {mark}"), (entry_id,)


def listed_until_by_entry(rows: Iterable[Row]) -> dict[str, str]:
    """entry id -> when it was last listed, from LISTED_UNTIL_SQL's rows."""
    return {r["entry_id"]: r["listed_until"] for r in rows if r["listed_until"]}


def entry_from_row(r: Row, listed_until: str | None = None) -> EntryRow:
    """An EntryRow from an entries row; `listed_until` (LISTED_UNTIL_SQL) if later than
    the row's last_seen is when it was last seen."""
    last_seen = parse_time(r["last_seen"])
    if listed_until and r["state"] != "removed":
        last_seen = max(last_seen, parse_time(listed_until))
    return EntryRow(
        r["id"],
        r["title"],
        r["link"],
        r["description"],
        r["state"],
        r["page"],
        parse_time(r["first_seen"]),
        last_seen,
        parse_time(r["last_changed"]),
        r["versions"],
    )


def version_from_row(r: Row) -> VersionRow:
    """A VersionRow from an entry_versions row."""
    return VersionRow(
        r["version"],
        parse_time(r["at"]),
        r["state"],
        r["page"],
        r["title"],
        r["link"],
        r["description"],
        r["capture_id"],
    )


def capture_from_row(r: Row) -> CaptureRow:
    """A CaptureRow from a captures row."""
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


def page_from_row(r: Row) -> PageRow:
    """A PageRow from a pages row."""
    return PageRow(
        name=r["name"],
        url=r["url"],
        role=r["role"],
        status=r["status"],
        streak=r["streak"],
        normal_count=r["normal_count"],
        entry_count=r["entry_count"] or 0,
        last_checked_at=_time(r["last_checked_at"]),
        last_ok_at=_time(r["last_ok_at"]),
        last_detail=r["last_detail"],
        last_capture_id=r["last_capture_id"],
    )


def check_from_row(r: Row) -> CheckRow:
    """A CheckRow from a checks row."""
    return CheckRow(
        id=r["id"],
        started_at=parse_time(r["started_at"]),
        finished_at=_time(r["finished_at"]),
        pages=tuple(json.loads(r["pages"])),
        events=r["events"],
        failures=r["failures"],
        warc_file=r["warc_file"],
    )
