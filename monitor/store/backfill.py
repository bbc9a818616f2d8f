"""The storage seam of `monitor backfill`: imported captures in, derived history out.

Captures fetched from a web archive are recorded one transaction each (a run killed
midway keeps what it archived); the history derived from them is replaced whole by
`replace_imported`, in one transaction. SQLite implements it in `sqlite_backfill.py`;
PostgreSQL mirrors it. Nothing here touches a live event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from msgspec import Struct

from monitor.models import Event
from monitor.store.base import CaptureRecord


class CaptureKey(Struct, frozen=True):
    """What identifies a capture in a web archive: the page's URL, the timestamp, the digest."""

    page_url: str
    timestamp: str  # YYYYMMDDhhmmss, as the archive spells it
    digest: str

    @property
    def text(self) -> str:
        """One string for ids derived from the capture (UUID5 names)."""
        return f"{self.timestamp} {self.digest} {self.page_url}"


class ImportedCapture(Struct, frozen=True):
    """One capture imported from a web archive, as recorded."""

    key: CaptureKey
    page: str
    at: datetime  # the capture's own time
    capture_id: int
    check_id: int
    source_uri: str  # the memento URL it was fetched from
    archive_error: str | None  # set: the archive's own page, nothing archived
    warc_file: str | None
    warc_offset: int | None


class LiveEntry(Struct, frozen=True):
    """An entry live checks know, with the fields it had when live checks first saw it."""

    entry_id: str
    title: str
    link: str | None
    description: str
    removed: bool


class ImportedVersion(Struct, frozen=True):
    """One version of an entry, derived from the archive."""

    entry_id: str
    at: datetime
    state: str
    page: str
    title: str
    link: str | None
    description: str
    capture_id: int | None


class ImportedEntry(Struct, frozen=True):
    """An entry seen only in the archive: its row as the derived history leaves it."""

    entry_id: str
    title: str
    link: str | None
    description: str
    state: str
    page: str
    first_seen: datetime
    last_seen: datetime
    last_changed: datetime


class ImportedHistory(Struct, frozen=True):
    """The whole derived history: it replaces the previous one in one transaction."""

    events: tuple[Event, ...]  # source "backfill", in time order
    versions: tuple[ImportedVersion, ...]  # in time order
    entries: tuple[ImportedEntry, ...]  # entries live checks never saw


class BackfillStore(Protocol):
    """What `monitor backfill` reads and writes."""

    def imported_keys(self) -> set[CaptureKey]:
        """Every capture already imported (archived, or recorded as the archive's error)."""
        ...

    def record_imported(
        self, key: CaptureKey, capture: CaptureRecord, source_uri: str, started_at: datetime
    ) -> int:
        """Record one imported capture in its own transaction; returns its capture id."""
        ...

    def imported_captures(self) -> list[ImportedCapture]:
        """Every imported capture, in capture-time order."""
        ...

    def first_live_check(self) -> datetime | None:
        """When the first live check started; None before any."""
        ...

    def live_entries(self) -> list[LiveEntry]:
        """Entries live checks have seen (or stand on a page), for identity matching."""
        ...

    def imported_event_ids(self) -> set[str]:
        """The ids of the imported events stored now."""
        ...

    def replace_imported(self, history: ImportedHistory) -> None:
        """Delete the imported events, versions and archive-only entries; write `history`."""
        ...
