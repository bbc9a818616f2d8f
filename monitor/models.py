"""Plain values that flow between the stages: SPEC.md's nouns, spelt once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC as UTC_TZ
from datetime import datetime
from typing import Any, Literal

from msgspec import Struct, field

# The kinds live in kinds.py with their labels; re-exported here, where they always were.
from monitor.entry import Entry as Entry
from monitor.kinds import ENTRY_EVENT_KINDS as ENTRY_EVENT_KINDS
from monitor.kinds import EVENT_KINDS as EVENT_KINDS
from monitor.kinds import LINK_EVENT_KINDS as LINK_EVENT_KINDS
from monitor.kinds import PAGE_EVENT_KINDS as PAGE_EVENT_KINDS
from monitor.kinds import EntryEventKind as EntryEventKind
from monitor.kinds import EventKind as EventKind
from monitor.kinds import LinkEventKind as LinkEventKind
from monitor.kinds import PageEventKind as PageEventKind
from monitor.kinds import kind_info

Role = Literal["active", "archived"]
EntryState = Literal["active", "archived", "removed"]
ENTRY_STATES: tuple[EntryState, ...] = ("active", "archived", "removed")
# "new": never checked; "ok": last check was normal; the others name an open episode.
PageStatus = Literal["new", "ok", "error", "gone", "anomaly"]
FIELDS: tuple[str, ...] = ("title", "link", "description")
EventSource = Literal["check", "backfill"]


class HttpExchange(Struct, frozen=True):
    """One request and the response to it, exactly as they crossed the wire."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    http_version: str  # "HTTP/1.1"
    status: int
    reason: str
    response_headers: tuple[tuple[str, str], ...]
    raw_body: bytes  # as received: still content-encoded (gzip, br, ...)
    started_at: datetime
    # WARC-Truncated reason when raw_body is not the whole body ("length", "disconnect", "time")
    truncated: str | None = None


class FetchResult(Struct, frozen=True):
    """What fetching one page gave: the exchanges to archive and the decoded final body.

    `error` is set when the page could not be fetched (a page-error); a 404/410 is
    not an error here (status tells), nor is a 304 (not_modified).
    """

    page: str
    url: str
    final_url: str
    started_at: datetime
    elapsed_s: float
    attempts: int
    exchanges: tuple[HttpExchange, ...] = ()  # every response received, redirect hops first
    status: int | None = None  # status of the final response, None when none arrived
    body: bytes | None = None  # decoded payload of a 2xx final response
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.error is None and self.status == 304

    @property
    def gone(self) -> bool:
        return self.error is None and self.status in (404, 410)


class CaptureRef(Struct, frozen=True):
    """Where one archived response sits in the WARC files (relative to DATA_DIR/warc/)."""

    warc_file: str
    offset: int
    length: int
    record_id: str  # WARC-Record-ID of the response or revisit record
    record_type: Literal["response", "revisit"]
    payload_digest: str | None  # "sha1:BASE32", as in WARC-Payload-Digest
    refers_to: str | None = None  # record id of the original, for a revisit


class Change(Struct, frozen=True):
    before: str | None
    after: str | None


class Event(Struct, frozen=True):
    """One line of the change log."""

    id: str
    kind: EventKind
    at: datetime
    page: str
    entry_id: str | None = None
    title: str | None = None
    link: str | None = None
    description: str | None = None
    changes: Mapping[str, Change] | None = None
    detail: str | None = None
    capture_id: int | None = None
    # "check": seen by this monitor; "backfill": imported from a web archive
    source: EventSource = "check"
    # The rendered before/after of `changes` (HTML, escaped), computed once when the event
    # is recorded so that feeds and pages never diff again; not part of the event's JSON.
    changes_html: str | None = None

    @property
    def is_page_event(self) -> bool:
        return kind_info(self.kind).scope == "page"

    @property
    def is_link_event(self) -> bool:
        return kind_info(self.kind).scope == "link"

    def to_json(self) -> dict[str, Any]:
        """The event as SPEC.md's JSON object (check --json, log --json, JSON Feed)."""
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "at": format_time(self.at),
            "page": self.page,
        }
        if self.is_page_event:
            data["detail"] = self.detail
        elif self.is_link_event:  # SPEC: entry_id, title, link and detail; no description
            data["entry_id"] = self.entry_id
            data["title"] = self.title
            data["link"] = self.link
            data["detail"] = self.detail
            if self.changes:
                data["changes"] = {
                    name: {"before": c.before, "after": c.after} for name, c in self.changes.items()
                }
        else:
            data["entry_id"] = self.entry_id
            data["title"] = self.title
            data["link"] = self.link
            data["description"] = self.description
            if self.changes:
                data["changes"] = {
                    name: {"before": c.before, "after": c.after} for name, c in self.changes.items()
                }
        data["capture_id"] = self.capture_id
        data["source"] = self.source
        return data


class KnownEntry(Struct, frozen=True):
    """An entry as the database knows it before a cycle (removed ones included)."""

    entry_id: str
    title: str
    link: str | None
    description: str
    state: EntryState
    page: str  # the page it stands on, or last stood on when removed

    @property
    def fields(self) -> tuple[str, str | None, str]:
        return (self.title, self.link, self.description)


class PageState(Struct, frozen=True):
    """What the monitor remembers of one page between cycles."""

    name: str
    role: Role
    status: PageStatus = "new"
    streak: int = 0  # consecutive checks in the current gone/anomaly episode
    normal_count: int = 0  # entry count of the last normal check
    baselined: bool = False  # a first good check has been recorded
    members: tuple[str, ...] = ()  # entry ids on the page, in page order
    # each member's fields as that page shows them (None: not recorded, e.g. before v3)
    member_fields: tuple[Entry | None, ...] = ()
    # members kept on this (active) page by the hold rule: they left it when it was last
    # read, and wait for the archived pages to answer (SPEC.md "Entries, identity and states")
    held: frozenset[str] = frozenset()


ObservationOutcome = Literal["ok", "unchanged", "error", "gone"]


class PageObservation(Struct, frozen=True):
    """What one check of one page saw, ready for classification.

    ok: `entries` were extracted from a new body; unchanged: the body is the one
    whose entries the page already holds (304 or identical digest); error/gone:
    `detail` says what happened.
    """

    page: str
    outcome: ObservationOutcome
    entries: tuple[Entry, ...] = ()
    detail: str = ""
    capture_id: int | None = None


class EntryUpdate(Struct, frozen=True):
    """An entry created or altered by a cycle: its new fields and state."""

    entry_id: str
    title: str
    link: str | None
    description: str
    state: EntryState
    page: str
    capture_id: int | None
    is_new: bool
    new_version: bool  # fields or state differ from the last version stored


class CycleResult(Struct, frozen=True):
    """Everything classification decided for one cycle."""

    events: tuple[Event, ...]
    entries: tuple[EntryUpdate, ...]
    pages: tuple[PageState, ...]
    # entry ids seen on a page this cycle (for last_seen), whether or not they changed
    seen: tuple[str, ...] = field(default=())
    # pages whose observed entries replaced their last known list
    accepted_pages: tuple[str, ...] = field(default=())
    # pages confirmed gone this cycle: their list became empty
    cleared_pages: tuple[str, ...] = field(default=())
    # accepted pages whose list keeps entries held back by the hold rule: their list is
    # provisional, so their body must be read again at the next check (not taken as known)
    holding_pages: tuple[str, ...] = field(default=())
    # pages not read this cycle whose held members were let go (every archived page
    # answered): their list, without them, is written again
    released_pages: tuple[str, ...] = field(default=())

    @property
    def changed_pages(self) -> frozenset[str]:
        """The pages whose list is written again: accepted, cleared or released."""
        return frozenset((*self.accepted_pages, *self.cleared_pages, *self.released_pages))


def utc_now() -> datetime:
    """The current time, aware UTC: the default clock of the I/O stages."""
    return datetime.now(UTC_TZ)


def format_time(at: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second: 2026-11-25T16:37:45Z."""
    return at.astimezone(tz=UTC_TZ).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Read format_time()'s output (or any ISO 8601 with an offset) back as aware UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC_TZ)
    return value.astimezone(UTC_TZ)
