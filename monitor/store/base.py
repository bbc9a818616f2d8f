"""The storage seam: what the pipeline and the commands need from a store, as typed rows.

Two implementations stand behind it: SQLite (`sqlite.py`, the zero-setup default) and
PostgreSQL (`postgres.py`, with `[cluster]`). A cycle asks for what it needs before it
starts (`read_cycle_state`), reads the known entries only when some page's list changed,
and hands one `CycleRecord` to `record_cycle`, written in one transaction. Nothing but the
implementations sees a connection or a column name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from msgspec import Struct, field

from monitor.models import (
    CycleResult,
    Entry,
    Event,
    KnownEntry,
    PageState,
)

if TYPE_CHECKING:  # loaded only where used: a check cycle reads none of these rows
    from monitor.notify.outbox import NewDelivery
    from monitor.store.detail_rows import (
        DetailRecord,
        DetailState,
        LinkCheckRow,
        LinkMemory,
        RecordedDetail,
    )
    from monitor.store.outbox import OutboxStore
    from monitor.store.reading import CaptureRow, CheckRow, EntryRow, PageRow, VersionRow, WarcRef


class LastResponse(Struct, frozen=True):
    """The last whole 2xx response archived for one URL (through revisits, the original)."""

    target_uri: str
    record_id: str  # WARC-Record-ID of the original response record
    date: str  # its WARC-Date
    payload_digest: str
    warc_file: str
    warc_offset: int
    content_type: str | None


class PageMemory(Struct, frozen=True):
    """What checking one page needs from its last checks."""

    state: PageState
    etag: str | None = None
    last_modified: str | None = None
    accepted_key: str | None = None  # key of the body whose entries the page holds
    body_key: str | None = None  # key of the last 2xx body (the one etag/last_modified name)
    extractor: str | None = None  # the extraction engine's version behind the accepted entries
    accepted_captures: tuple[int, ...] = ()  # the captures of the accepted body, page by page


class CycleState(Struct, frozen=True):
    """Everything a cycle reads before it fetches: each page's memory, the last responses."""

    pages: Mapping[str, PageMemory]
    last_responses: Mapping[str, LastResponse]  # by target URI


class CaptureRecord(Struct, frozen=True):
    """One archived exchange to record (or a fetch that got no response at all)."""

    page: str
    url: str  # the URL asked for
    target_uri: str  # the URL this exchange answered (a redirect hop's own URL)
    final: bool  # the last exchange of the fetch: the one the page's events point at
    at: datetime
    status: int | None
    error: str | None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_bytes: int | None = None
    payload_digest: str | None = None
    record_type: str | None = None  # "response" | "revisit"
    record_id: str | None = None
    refers_to: str | None = None  # record id of a revisit's original
    warc_file: str | None = None
    warc_offset: int | None = None
    warc_length: int | None = None
    truncated: str | None = None
    elapsed_s: float | None = None
    attempts: int | None = None


class PageUpdate(Struct, frozen=True):
    """What a checked page's row learns from this cycle's fetch."""

    url: str
    checked_at: datetime
    detail: str | None
    ok: bool  # the page's status after the cycle is "ok"
    # Validators and key of a 2xx body (a later 304 means "this body"); None: keep.
    validators: tuple[str | None, str | None, str | None] | None = None
    accepted_key: str | None = None  # set when `accept` is "set"
    accept: str = "keep"  # "set": accepted_key replaces the old; "clear": none; "keep"
    extractor: str | None = None  # with "set": the engine version that read the body


class CycleRecord(Struct, frozen=True):
    """Everything one cycle writes, in one transaction."""

    started_at: datetime
    finished_at: datetime
    pages: tuple[str, ...]  # the pages checked
    captures: tuple[CaptureRecord, ...]
    result: CycleResult
    updates: Mapping[str, PageUpdate]
    warc_file: str | None = None
    # The cycle's notifications (plan_deliveries), written with its events: never lost.
    deliveries: tuple[NewDelivery, ...] = ()


class Rederived(Struct, frozen=True):
    """A page's accepted body read again by a new extraction engine: its entries' new fields."""

    page: str
    members: tuple[str, ...]  # entry ids in page order
    fields: tuple[Entry, ...]  # each member's fields as the new engine reads them
    accepted_key: str  # the accepted body's key under the new engine
    body_key: str | None  # the new key of the last body too, when it was the accepted one
    extractor: str
    held: frozenset[str] = frozenset()  # members kept by the hold rule (PageState.held)


class RecordedCycle(Struct, frozen=True):
    """What writing a cycle assigned: its id, and each page's final capture."""

    check_id: int
    events: tuple[Event, ...]  # the cycle's events with their capture ids filled in
    captures: Mapping[str, int] = field(default_factory=dict)


class EventQuery(Struct, frozen=True):
    """Which events to read, newest first; `before_seq` pages through them (keyset)."""

    since: datetime | None = None
    kinds: Sequence[str] = ()
    pages: Sequence[str] = ()
    entry_id: str | None = None
    before_seq: int | None = None
    limit: int | None = None


class CycleStore(Protocol):
    """What a check cycle needs: its state before, the known entries, one write after."""

    def read_cycle_state(self, pages: Sequence[PageState]) -> CycleState:
        """Each given page's memory (config role and name from `pages`), the last responses."""
        ...

    def known_entries(self) -> dict[str, KnownEntry]:
        """Every entry ever seen, removed ones included, oldest first."""
        ...

    def member_fields(self, pages: Sequence[str]) -> dict[str, tuple[Entry | None, ...]]:
        """Each named page's members' fields as it shows them, in page order (None: not
        recorded). `read_cycle_state` reads the members alone: a cycle asks for the fields
        of the few pages whose entries it decides on."""
        ...

    def record_cycle(self, record: CycleRecord) -> RecordedCycle:
        """Write one cycle in one transaction: all of it, or nothing."""
        ...

    def capture(self, capture_id: int) -> CaptureRow | None: ...

    def record_rederived(self, pages: Sequence[Rederived]) -> None:
        """Write re-derived entry fields silently (no event, no version): one transaction."""
        ...


class ReadStore(Protocol):
    """What the commands and the web page read."""

    location: str  # for messages: a path, or a database URL without its password

    def events(self, query: EventQuery | None = None) -> list[Event]: ...

    def event_seq(self, event_id: str) -> int | None: ...

    def entries(self, state: str | None = None) -> list[EntryRow]: ...

    def entry(self, entry_id: str) -> EntryRow | None: ...

    def entry_ids(self, prefix: str, limit: int = 10) -> list[str]: ...

    def versions(self, entry_id: str) -> list[VersionRow]: ...

    def captures(self, pages: Sequence[str] = (), limit: int | None = None) -> list[CaptureRow]: ...

    def capture(self, capture_id: int) -> CaptureRow | None: ...

    def page_rows(self) -> list[PageRow]: ...

    def last_check(self) -> CheckRow | None: ...

    def warc_refs(self) -> list[WarcRef]: ...

    def check_integrity(self) -> list[str]: ...

    def count(self, table: str) -> int: ...


class DetailStore(Protocol):
    """What the entry-page phase and its readers need (SQLite: sqlite_detail.py)."""

    def read_detail_state(self, pages: Sequence[str]) -> DetailState:
        """Entries with links on `pages` (removed ones included), every entry_pages row,
        the last responses of the entry pages."""
        ...

    def record_detail(self, record: DetailRecord) -> RecordedDetail:
        """Write one entry-page phase in one transaction: all of it, or nothing."""
        ...

    def entry_pages(self) -> list[LinkMemory]: ...

    def entry_page(self, entry_id: str) -> LinkMemory | None: ...

    def entry_page_checks(self, entry_id: str) -> list[LinkCheckRow]: ...


class Store(CycleStore, ReadStore, DetailStore, Protocol):
    """A whole store: the cycle's side and the readers' side, entry pages."""

    def outbox(self) -> OutboxStore:
        """The notification outbox, on this store's connection."""
        ...

    def close(self) -> None: ...
