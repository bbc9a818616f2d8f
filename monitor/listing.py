"""One listing's stage of a cycle: fetch each of its pages, archive, extract, observe.

This is the per-page I/O edge: it runs for every listing concurrently, as each body
arrives, and hands on only what the cycle records and classifies (never a body), so
memory stays flat however many pages are watched. A listing with `select.next` is
followed page by page (each archived) up to `max_pages`, on the same host; any page
failing makes the whole listing an error for this check, never a shorter listing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from msgspec import Struct
from msgspec.structs import replace

from monitor.archive import CycleWriter, PreviousCapture, read_capture
from monitor.config import MonitorSettings, PageConfig
from monitor.decoders import decode_payload
from monitor.errors import MonitorError
from monitor.extract import Extraction
from monitor.fetch import Target, Validators, fetch_target
from monitor.models import FetchResult, PageObservation
from monitor.observe import (
    Body,
    answer_problem,
    listing_entries,
    listing_key,
    sign_problem,
)
from monitor.parsing import Parser
from monitor.store import CaptureRecord, LastResponse, PageMemory, PageUpdate


class PageCheck(Struct, frozen=True):
    """One listing's fetch, archived and observed, ready to classify and record."""

    page: PageConfig
    observation: PageObservation
    captures: tuple[CaptureRecord, ...]
    body_key: str | None  # identifies the bodies + selectors behind the entries
    update: PageUpdate  # the fetch memory; `ok` and `accept` are settled after classifying


class _Listing:
    """What one check of a listing gathers as it walks its pages (and what parses them)."""

    def __init__(self, parser: Parser) -> None:
        self.captures: list[CaptureRecord] = []
        self.bodies: list[Body] = []
        self.extractions: list[Extraction] = []
        self.parser = parser


async def check_listing(
    client: httpx.AsyncClient,
    page: PageConfig,
    memory: PageMemory,
    last_responses: dict[str, LastResponse],
    writer: CycleWriter,
    settings: MonitorSettings,
    parser: Parser | None = None,
) -> PageCheck:
    """Fetch a listing (every page of it), archive every exchange, and observe its entries.

    Each body is parsed by `parser` as it arrives (in process when None).
    """
    paginated = any(layout.next for layout in page.all_layouts)
    validators = None
    if not paginated and memory.accepted_key and (memory.etag or memory.last_modified):
        # A 304 of page 1 says nothing of page 2: a paginated listing asks for every page.
        validators = Validators(memory.etag, memory.last_modified)
    walked = _Listing(parser or Parser(pool=False))
    first = await _fetch(client, page, page.url, validators, writer, last_responses, settings,
                         walked)  # fmt: skip
    update = _fetch_update(page, first)
    body = _body_of(first, writer, last_responses, settings.max_bytes, memory)
    if isinstance(body, str):  # the 304's archived body could not be read
        first = replace(first, error=body)
        body = None
    if first.not_modified and body is None and first.error is None:
        # The 304 confirms the body whose entries the page holds: no read, no parse.
        unchanged = PageObservation(page.name, "unchanged")
        return PageCheck(page, unchanged, tuple(walked.captures), memory.accepted_key, update)
    problem = await _walk(client, page, first, body, writer, last_responses, settings, walked)
    if problem is not None:
        return PageCheck(page, problem, tuple(walked.captures), None, update)
    key = listing_key(page, walked.bodies)
    if update.validators is not None:  # the validators and the key of the same body
        update = replace(update, validators=(first.etag, first.last_modified, key))
    if key == memory.accepted_key:
        return PageCheck(page, PageObservation(page.name, "unchanged"), tuple(walked.captures),
                         key, update)  # fmt: skip
    entries = listing_entries(walked.extractions)
    return PageCheck(page, PageObservation(page.name, "ok", entries=entries),
                     tuple(walked.captures), key, update)  # fmt: skip


async def _walk(
    client: httpx.AsyncClient,
    page: PageConfig,
    first: FetchResult,
    body: Body | None,
    writer: CycleWriter,
    last_responses: dict[str, LastResponse],
    settings: MonitorSettings,
    walked: _Listing,
) -> PageObservation | None:
    """Read page 1 and follow `next` links; an observation when the listing cannot be read."""
    result, requested, number = first, page.url, 1
    seen = {_same_page_key(page.url), _same_page_key(first.final_url or page.url)}
    while True:
        problem = answer_problem(page, result, body)
        if problem is not None:
            return _numbered(problem, number)
        assert body is not None
        extraction = await walked.parser.extract(page, body)
        if isinstance(extraction, PageObservation):
            return _numbered(extraction, number)
        problem = sign_problem(page, requested, result, extraction)
        if problem is not None:
            return _numbered(problem, number)
        walked.bodies.append(body)
        walked.extractions.append(extraction)
        next_url = extraction.next_url
        if not next_url or _same_page_key(next_url) in seen:
            return None
        if urlsplit(next_url).hostname != urlsplit(page.url).hostname:
            detail = f"{result.final_url}: the next-page link leads to another host: {next_url}"
            return PageObservation(page.name, "error", detail=detail)
        if number >= page.max_pages:
            detail = (f"{page.url}: max_pages ({page.max_pages}) reached with a next-page link "
                      f"still ahead ({next_url})")  # fmt: skip
            return PageObservation(page.name, "error", detail=detail)
        seen.add(_same_page_key(next_url))
        number += 1
        requested = next_url
        result = await _fetch(client, page, next_url, None, writer, last_responses, settings,
                              walked)  # fmt: skip
        landed = _same_page_key(result.final_url or next_url)
        if landed != _same_page_key(next_url) and landed in seen:
            # Page N sent back to a page already read (often page 1): the later pages were
            # not served, and reading on would make the listing look shorter than it is.
            detail = (f"page {number} of the listing: {next_url} redirected to "
                      f"{result.final_url}, a page of the listing already read")  # fmt: skip
            return PageObservation(page.name, "error", detail=detail)
        seen.add(landed)
        body = None
        if result.body is not None and result.error is None and not result.gone:
            body = Body(result.final_url, result.content_type, result.body)


def _numbered(observation: PageObservation, number: int) -> PageObservation:
    """An observation of page N > 1 says which page of the listing failed."""
    if number == 1:
        return observation
    detail = f"page {number} of the listing: {observation.detail}"
    # Any page of a listing failing (404 included) is an error of the whole listing.
    return replace(observation, outcome="error", detail=detail)


def _same_page_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}"


async def _fetch(
    client: httpx.AsyncClient,
    page: PageConfig,
    url: str,
    validators: Validators | None,
    writer: CycleWriter,
    last_responses: dict[str, LastResponse],
    settings: MonitorSettings,
    walked: _Listing,
) -> FetchResult:
    result = await fetch_target(client, Target(url, page.name, validators), settings)
    walked.captures.extend(archive_fetch(writer, result, last_responses))
    return replace(result, exchanges=result.exchanges[-1:])  # bodies are archived: let go


def _body_of(
    result: FetchResult,
    writer: CycleWriter,
    last_responses: dict[str, LastResponse],
    max_bytes: int,
    memory: PageMemory,
) -> Body | str | None:
    """The body the first answer stands for; for a 304 whose body was not accepted, the
    archived one it confirms (a str says why it could not be read)."""
    if result.body is not None:
        return Body(result.final_url, result.content_type, result.body)
    if not result.not_modified:
        return None
    if memory.accepted_key is not None and memory.body_key == memory.accepted_key:
        return None  # it confirms the body whose entries stand
    # The 304 confirms a body whose entries were not accepted (an error or anomaly then),
    # or none at all (a first check answered 304 without validators): read back what the
    # archive holds, if anything, to look at it again.
    try:
        reloaded = reload_body(writer, result, last_responses, max_bytes)
    except MonitorError as error:
        return f"{result.final_url}: HTTP 304, but its archived body is unreadable: {error}"
    if reloaded is None:
        return f"{result.final_url}: HTTP 304 but no earlier body is archived"
    return reloaded


def _fetch_update(page: PageConfig, result: FetchResult) -> PageUpdate:
    validators = None
    if result.status is not None and 200 <= result.status < 300 and result.error is None:
        # The validators of this body; its key is set once the listing is read.
        validators = (result.etag, result.last_modified, None)
    detail = result.error or (f"HTTP {result.status}" if result.status else None)
    return PageUpdate(url=page.url, checked_at=result.started_at, detail=detail, ok=False,
                      validators=validators)  # fmt: skip


def archive_fetch(
    writer: CycleWriter, result: FetchResult, last_responses: dict[str, LastResponse]
) -> list[CaptureRecord]:
    """Write every exchange of a fetch to the WARC file; a capture record for each."""
    if not result.exchanges:  # no answer at all: recorded with its error only
        return [
            CaptureRecord(page=result.page, url=result.url, target_uri=result.url, final=True,
                          at=result.started_at, status=None, error=result.error,
                          elapsed_s=result.elapsed_s, attempts=result.attempts)
        ]  # fmt: skip
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
    return records


def reload_body(
    writer: CycleWriter,
    result: FetchResult,
    last_responses: dict[str, LastResponse],
    max_bytes: int,
) -> Body | None:
    """The archived body a 304 confirms, decoded, with its Content-Type (None: none is)."""
    known = last_responses.get(result.final_url)
    if known is None:
        return None
    record = read_capture(writer.warc_dir, known.warc_file, known.warc_offset)
    data = decode_payload(record.headers, record.raw_payload, max_bytes)
    return Body(result.final_url, known.content_type, data)
