"""The entry-page phase's records ([pages.detail]): what it reads, what it writes, what
its readers get, and the entry_pages rows <-> database rows (both stores).

Apart from base.py so that a check of listings without entry pages does not build their
classes (bench/README.md, "speed 5"); the stores load their entry-page side on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from msgspec import Struct

from monitor.models import Event, format_time
from monitor.store.base import CaptureRecord, LastResponse
from monitor.store.rows import optional_time

if TYPE_CHECKING:
    from monitor.notify.outbox import NewDelivery

LinkStatus = Literal["new", "ok", "gone", "error"]


class LinkMemory(Struct, frozen=True):
    """What the store remembers of one entry's own page between checks (entry_pages)."""

    entry_id: str
    url: str
    page: str  # the listing page the entry is on (or was last on)
    status: LinkStatus = "new"  # "gone" only once confirmed (link-gone emitted)
    streak: int = 0  # consecutive gone checks (errors neither add nor reset)
    etag: str | None = None
    last_modified: str | None = None
    content: str | None = None  # the `content` selector's text at the last good check
    last_checked_at: datetime | None = None
    next_due_at: datetime | None = None  # None: no longer checked
    last_capture_id: int | None = None
    last_detail: str | None = None
    removed_at: datetime | None = None  # when its entry left every listing


class LinkCandidate(Struct, frozen=True):
    """An entry with a link, as a detail phase reads it: whose own page may be checked."""

    entry_id: str
    title: str
    link: str
    state: str  # active | archived | removed
    page: str
    removed_at: datetime | None  # a removed entry's last `removed` event (else last seen)


class DetailState(Struct, frozen=True):
    """Everything an entry-page phase reads before it fetches."""

    candidates: tuple[LinkCandidate, ...]
    memories: Mapping[str, LinkMemory]  # by entry id, every entry_pages row
    last_responses: Mapping[str, LastResponse]  # by target URI, of the entry pages


class LinkCheck(Struct, frozen=True):
    """One entry page fetched: its new memory, the captures, the events (capture ids unset)."""

    memory: LinkMemory
    outcome: str  # ok | unchanged | gone | error: what this one check saw
    captures: tuple[CaptureRecord, ...]
    events: tuple[Event, ...] = ()


class DetailRecord(Struct, frozen=True):
    """Everything one entry-page phase writes, in one transaction."""

    started_at: datetime
    finished_at: datetime
    pages: tuple[str, ...]  # the listing pages whose entries were checked
    checks: tuple[LinkCheck, ...]
    memories: tuple[LinkMemory, ...] = ()  # rows written without a fetch (new, retired)
    warc_file: str | None = None
    # the link events' notifications (plan_deliveries), written with them: never lost
    deliveries: tuple[NewDelivery, ...] = ()


class RecordedDetail(Struct, frozen=True):
    """What writing a detail phase assigned: its check id (None: nothing fetched), its events."""

    check_id: int | None
    events: tuple[Event, ...]


class LinkCheckRow(Struct, frozen=True):
    """One check of an entry's page, as recorded (for history and the timeline)."""

    at: datetime
    url: str
    outcome: str
    status: str  # the page's status after this check
    detail: str | None
    capture_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": format_time(self.at),
            "url": self.url,
            "outcome": self.outcome,
            "status": self.status,
            "detail": self.detail,
            "capture_id": self.capture_id,
        }


def link_memory_from_row(r: Mapping[str, Any]) -> LinkMemory:
    """A LinkMemory from an entry_pages row."""
    return LinkMemory(
        entry_id=r["entry_id"], url=r["url"], page=r["page"], status=r["status"],
        streak=r["streak"], etag=r["etag"], last_modified=r["last_modified"],
        content=r["content"], last_checked_at=optional_time(r["last_checked_at"]),
        next_due_at=optional_time(r["next_due_at"]), last_capture_id=r["last_capture_id"],
        last_detail=r["last_detail"], removed_at=optional_time(r["removed_at"]),
    )  # fmt: skip


def link_memory_row(memory: LinkMemory) -> dict[str, Any]:
    """The entry_pages columns of one LinkMemory."""
    return {
        "entry_id": memory.entry_id,
        "url": memory.url,
        "page": memory.page,
        "status": memory.status,
        "streak": memory.streak,
        "etag": memory.etag,
        "last_modified": memory.last_modified,
        "content": memory.content,
        "last_checked_at": memory.last_checked_at and format_time(memory.last_checked_at),
        "next_due_at": memory.next_due_at and format_time(memory.next_due_at),
        "last_capture_id": memory.last_capture_id,
        "last_detail": memory.last_detail,
        "removed_at": memory.removed_at and format_time(memory.removed_at),
    }
