"""Captures from a web archive into the WARC files and the store: one at a time, each committed.

Every request (CDX pages, mementos, their redirects and retries) goes through one
RateLimiter. A memento is archived under the page's original URL at the capture's own
time, naming the memento URL it came from; the WARC file is synced before the store
commits the capture, so an interrupted run loses nothing it recorded, and a capture
already recorded (page URL, timestamp, digest) is never fetched again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from http import HTTPStatus

import httpx
from msgspec import Struct

from monitor.archive import WarcWriter
from monitor.backfill.cdx import CdxCapture, list_captures
from monitor.backfill.memento import Memento, fetch_memento
from monitor.backfill.polite import RateLimiter
from monitor.config import Config, PageConfig
from monitor.models import HttpExchange
from monitor.store.backfill import BackfillStore, CaptureKey
from monitor.store.base import CaptureRecord

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# The archive's framing, undone by the HTTP client: the stored body is the decoded one.
_FRAMING = frozenset({"content-encoding", "transfer-encoding", "content-length"})


class Wanted(Struct, frozen=True):
    """A capture the archive lists for a page, with what identifies it."""

    page: PageConfig
    capture: CdxCapture

    @property
    def key(self) -> CaptureKey:
        return CaptureKey(self.page.url, self.capture.timestamp, self.capture.digest)


class Fetched(Struct, frozen=True):
    """What importing the captures did."""

    found: int  # captures the archive lists in the range
    fetched: int  # fetched (and recorded) by this run
    archive_errors: int  # of those, the archive's own pages (recorded, nothing archived)


async def find_captures(
    client: httpx.AsyncClient,
    config: Config,
    pages: Sequence[PageConfig],
    limiter: RateLimiter,
    *,
    since: date | None,
    until: date | None,
    before: datetime | None,
) -> list[Wanted]:
    """Every capture of the pages in the range (and before `before`), in capture-time order."""
    wanted: list[Wanted] = []
    for page in pages:
        captures = await list_captures(
            client, config.backfill.cdx_url, page.url, since=since, until=until, limiter=limiter
        )
        wanted += [Wanted(page, c) for c in captures if before is None or c.at < before]
    wanted.sort(key=lambda w: (w.capture.at, w.capture.timestamp))
    return wanted


async def import_captures(
    client: httpx.AsyncClient,
    config: Config,
    wanted: Sequence[Wanted],
    store: BackfillStore,
    writer: WarcWriter,
    limiter: RateLimiter,
    *,
    started_at: datetime,
    progress: Progress | None = None,
) -> Fetched:
    """Fetch, archive and record each capture not recorded yet, committing each on its own."""
    done = store.imported_keys()
    todo = [w for w in wanted if w.key not in done]
    errors = 0
    for number, item in enumerate(todo, start=1):
        memento = await fetch_memento(client, config.backfill.memento_url, item.capture, limiter)
        record = archive_memento(writer, item, memento, config.monitor.user_agent)
        writer.sync()  # the record is on disk before the store points at it
        store.record_imported(item.key, record, memento.url, started_at)
        errors += memento.archive_error is not None
        if progress is not None:
            progress("fetched", number, len(todo))
    return Fetched(found=len(wanted), fetched=len(todo), archive_errors=errors)


def archive_memento(
    writer: WarcWriter, item: Wanted, memento: Memento, user_agent: str
) -> CaptureRecord:
    """Write a memento's WARC records (none for the archive's own page); its capture record."""
    capture = item.capture
    headers = {k.lower(): v for k, v in memento.headers}
    if memento.archive_error is not None:
        return CaptureRecord(page=item.page.name, url=memento.url, target_uri=memento.final_url,
                             final=True, at=capture.at, status=memento.status,
                             error=memento.archive_error, content_type=headers.get("content-type"),
                             attempts=1)  # fmt: skip
    exchange = memento_exchange(memento, user_agent)
    ref = writer.write_exchange(
        exchange, None, target_uri=capture.original, date=capture.at, source_uri=memento.url
    )
    return CaptureRecord(
        page=item.page.name,
        url=memento.url,
        target_uri=capture.original,
        final=True,
        at=capture.at,
        status=memento.status,
        error=None,
        content_type=headers.get("content-type"),
        body_bytes=len(memento.body),
        payload_digest=ref.payload_digest,
        record_type=ref.record_type,
        record_id=ref.record_id,
        warc_file=ref.warc_file,
        warc_offset=ref.offset,
        warc_length=ref.length,
        attempts=1,
    )


def memento_exchange(memento: Memento, user_agent: str) -> HttpExchange:
    """The memento as an exchange to archive: the decoded body, with a length that fits it."""
    headers = [(k, v) for k, v in memento.headers if k.lower() not in _FRAMING]
    headers.append(("Content-Length", str(len(memento.body))))
    try:
        reason = HTTPStatus(memento.status).phrase
    except ValueError:
        reason = ""
    return HttpExchange(
        method="GET",
        url=memento.final_url,
        request_headers=(("User-Agent", user_agent),),
        http_version="HTTP/1.1",
        status=memento.status,
        reason=reason,
        response_headers=tuple(headers),
        raw_body=memento.body,
        started_at=memento.at,
    )
