"""One listing page's stage of a cycle: fetch, archive, reload what a 304 confirms, observe.

This is the per-page I/O edge: it runs for every page concurrently, as each body arrives,
and hands on only what the cycle records and classifies (never a body), so memory stays
flat however many pages are watched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

from monitor.archive import CycleWriter, PreviousCapture, read_capture
from monitor.config import MonitorSettings, PageConfig
from monitor.decoders import decode_payload
from monitor.errors import MonitorError
from monitor.fetch import Target, Validators, fetch_target
from monitor.models import FetchResult, PageObservation
from monitor.observe import observe_fetch
from monitor.store import CaptureRecord, LastResponse, PageMemory, PageUpdate


@dataclass(frozen=True)
class PageCheck:
    """One page's fetch, archived and observed, ready to classify and record."""

    page: PageConfig
    observation: PageObservation
    captures: tuple[CaptureRecord, ...]
    body_key: str | None  # identifies the body + selectors behind the entries
    update: PageUpdate  # the fetch memory; `ok` and `accept` are settled after classifying


async def check_listing(
    client: httpx.AsyncClient,
    page: PageConfig,
    memory: PageMemory,
    last_responses: dict[str, LastResponse],
    writer: CycleWriter,
    settings: MonitorSettings,
) -> PageCheck:
    """Fetch one page, archive every exchange, and observe what it means for its entries."""
    validators = None
    if memory.accepted_key and (memory.etag or memory.last_modified):
        validators = Validators(memory.etag, memory.last_modified)
    result = await fetch_target(client, Target(page.url, page.name, validators), settings)
    captures = archive_fetch(writer, result, last_responses)
    body, content_type = result.body, result.content_type
    if result.not_modified and memory.body_key != memory.accepted_key:
        # The 304 confirms a body whose entries were not accepted (an error or anomaly
        # then): read it back from the archive to look at it again.
        try:
            reloaded = reload_body(writer, result, last_responses, settings.max_bytes)
        except MonitorError as error:
            why = f"{result.final_url}: HTTP 304, but its archived body is unreadable: {error}"
            result, reloaded = replace(result, error=why), None
        if reloaded is None and result.error is None:
            why = f"{result.final_url}: HTTP 304 but no earlier body is archived"
            result = replace(result, error=why)
        body, content_type = reloaded or (None, None)
    observation, key = observe_fetch(
        page, result, accepted_key=memory.accepted_key, body=body, content_type=content_type
    )
    return PageCheck(page, observation, captures, key, _fetch_update(page, result, key))


def _fetch_update(page: PageConfig, result: FetchResult, key: str | None) -> PageUpdate:
    validators = None
    if result.status is not None and 200 <= result.status < 300 and result.error is None:
        # The validators and the key of the same body: a later 304 means "this body".
        validators = (result.etag, result.last_modified, key)
    detail = result.error or (f"HTTP {result.status}" if result.status else None)
    return PageUpdate(url=page.url, checked_at=result.started_at, detail=detail, ok=False,
                      validators=validators)  # fmt: skip


def archive_fetch(
    writer: CycleWriter, result: FetchResult, last_responses: dict[str, LastResponse]
) -> tuple[CaptureRecord, ...]:
    """Write every exchange of a fetch to the WARC file; a capture record for each."""
    if not result.exchanges:  # no answer at all: recorded with its error only
        return (
            CaptureRecord(page=result.page, url=result.url, target_uri=result.url, final=True,
                          at=result.started_at, status=None, error=result.error,
                          elapsed_s=result.elapsed_s, attempts=result.attempts),
        )  # fmt: skip
    records = []
    last = len(result.exchanges) - 1
    for i, exchange in enumerate(result.exchanges):
        known = last_responses.get(exchange.url)
        previous = None
        if known is not None:
            previous = PreviousCapture(
                record_id=known.record_id,
                target_uri=known.target_uri,
                date=known.date,
                payload_digest=known.payload_digest,
            )
        ref = writer.write_exchange(exchange, previous)  # StoreError names the file
        headers = {k.lower(): v for k, v in exchange.response_headers}
        final = i == last
        records.append(
            CaptureRecord(
                page=result.page,
                url=result.url,
                target_uri=exchange.url,
                final=final,
                at=exchange.started_at,
                status=exchange.status,
                error=result.error if final else None,
                content_type=headers.get("content-type"),
                etag=headers.get("etag"),
                last_modified=headers.get("last-modified"),
                body_bytes=len(exchange.raw_body),
                payload_digest=ref.payload_digest,
                record_type=ref.record_type,
                record_id=ref.record_id,
                refers_to=ref.refers_to,
                warc_file=ref.warc_file,
                warc_offset=ref.offset,
                warc_length=ref.length,
                truncated=exchange.truncated,
                elapsed_s=result.elapsed_s if final else None,
                attempts=result.attempts if final else None,
            )
        )
    return tuple(records)


def reload_body(
    writer: CycleWriter,
    result: FetchResult,
    last_responses: dict[str, LastResponse],
    max_bytes: int,
) -> tuple[bytes, str | None] | None:
    """The archived body a 304 confirms, decoded, with its Content-Type (None: none is)."""
    known = last_responses.get(result.final_url)
    if known is None:
        return None
    record = read_capture(writer.warc_dir, known.warc_file, known.warc_offset)
    return decode_payload(record.headers, record.raw_payload, max_bytes), known.content_type
