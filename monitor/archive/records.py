"""Building WARC records from an HttpExchange: response, revisit, request, and a 304's metadata.

Pure apart from record ids (uuid4): no file is opened here; writer.py writes what
this builds.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from msgspec import Struct
from msgspec.structs import replace
from warcio.recordbuilder import RecordBuilder
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders

from monitor import __version__
from monitor.models import HttpExchange, format_time

SOFTWARE = f"monitor/{__version__}"
IDENTICAL_PAYLOAD = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
SERVER_NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
WARC_SPEC = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
# The fields of the metadata record that keeps a 304's own status line and headers.
HTTP_VERSION_FIELD = "http-version"
HTTP_STATUS_FIELD = "http-status"
HTTP_HEADER_FIELD = "http-header"

_RECORDS = RecordBuilder(warc_version="1.1")  # builds records only; stateless


class PreviousCapture(Struct, frozen=True):
    """The last response recorded for a target URL; for revisits, the original response."""

    record_id: str
    target_uri: str
    date: str  # its WARC-Date
    payload_digest: str  # "sha1:BASE32"


class Provenance(Struct, frozen=True):
    """Where an exchange is recorded as coming from: defaults are the exchange's own URL and time.

    A backfilled memento is recorded under the page's original URL at the capture's own
    time, with WARC-Source-URI naming the memento it was fetched from.
    """

    target_uri: str | None = None
    date: datetime | None = None
    source_uri: str | None = None


def payload_digest(raw_body: bytes) -> str:
    """WARC-Payload-Digest of a body as received (content-encoded), as warcio computes it."""
    return "sha1:" + base64.b32encode(hashlib.sha1(raw_body).digest()).decode("ascii")


def revisit_profile(exchange: HttpExchange, previous: PreviousCapture | None) -> str | None:
    """The revisit profile to record this exchange with, or None for a full response."""
    # A revisit only ever stands for an earlier response of the same URL.
    if previous is None or previous.target_uri != exchange.url:
        return None
    if exchange.status == 304:
        return SERVER_NOT_MODIFIED
    # A cut-short body is kept whole, with its WARC-Truncated, never folded into a revisit.
    if exchange.truncated is None and 200 <= exchange.status < 300:
        if payload_digest(exchange.raw_body) == previous.payload_digest:
            return IDENTICAL_PAYLOAD
    return None


def warcinfo_record(file_name: str, now: datetime) -> ArcWarcRecord:
    """The warcinfo record that opens each WARC file."""
    info = {"software": SOFTWARE, "format": "WARC File Format 1.1", "conformsTo": WARC_SPEC}
    record = _RECORDS.create_warcinfo_record(file_name, info)
    record.rec_headers.replace_header("WARC-Date", format_time(now))
    return record


def _stored_headers(exchange: HttpExchange) -> list[tuple[str, str]]:
    """The response headers to store with raw_body: no Transfer-Encoding, a fitting length."""
    # httpx hands over the body with the chunked framing already removed. Kept, a
    # "Transfer-Encoding: chunked" would make readers (warcio's content_stream, pywb)
    # de-chunk bytes that are not chunked; dropped, they delimit the body by
    # Content-Length, which must then be the stored length. Content-Encoding stays:
    # the stored body is still compressed as the server sent it.
    headers = [(k, v) for k, v in exchange.response_headers if k.lower() != "transfer-encoding"]
    body_len = len(exchange.raw_body)
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    dechunked = len(headers) != len(exchange.response_headers)
    # A truncated body keeps the length the server announced (WARC-Truncated tells
    # the body is short); an empty body (HEAD, 304, 204) keeps the representation's.
    mismatched = bool(body_len) and exchange.truncated is None and lengths != [str(body_len)]
    if dechunked or (lengths and mismatched):
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(body_len)))
    return headers


def _one_line(text: str) -> str:
    """A header value safe inside a warc-fields line (a hostile server's CR/LF flattened)."""
    return text.replace("\r", " ").replace("\n", " ")


def _not_modified_fields(exchange: HttpExchange) -> bytes:
    """The 304's own status line and headers as application/warc-fields."""
    lines = [
        f"{HTTP_VERSION_FIELD}: {_one_line(exchange.http_version)}",
        f"{HTTP_STATUS_FIELD}: {exchange.status} {_one_line(exchange.reason)}".rstrip(),
    ]
    lines += [
        f"{HTTP_HEADER_FIELD}: {_one_line(k)}: {_one_line(v)}" for k, v in _stored_headers(exchange)
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")


def exchange_records(
    exchange: HttpExchange, previous: PreviousCapture | None, provenance: Provenance | None = None
) -> list[ArcWarcRecord]:
    """The records of one exchange: its response (or revisit) first, then any metadata, request.

    A 304 that confirms an archived response is a server-not-modified revisit with an
    empty block, so that replay tools (pywb) resolve it to the body it refers to and
    serve that body with its own headers; the 304's headers go in a metadata record
    (application/warc-fields, which pywb's indexer leaves out of the replay index).
    """
    where = provenance or Provenance()
    requested_url = exchange.url
    target = where.target_uri or exchange.url
    when = format_time(where.date or exchange.started_at)
    recorded = exchange if target == exchange.url else replace(exchange, url=target)
    main_id, request_id = _new_id(), _new_id()

    def warc_headers(kind: str, record_id: str, concurrent_to: str) -> dict[str, str]:
        # WARC-Type first, as WARC tools write it (warcio keeps the order given). WARC-Date
        # is to the second, as models.format_time: store.py keeps capture times so and
        # PreviousCapture.date comes from there, so a WARC-Refers-To-Date is exact.
        headers = {
            "WARC-Type": kind,
            "WARC-Record-ID": record_id,
            "WARC-Date": when,
            "WARC-Target-URI": target,
            "WARC-Concurrent-To": concurrent_to,
        }
        if where.source_uri:
            headers["WARC-Source-URI"] = where.source_uri
        return headers

    headers = warc_headers("response", main_id, request_id)
    profile = revisit_profile(recorded, previous)
    extra: list[ArcWarcRecord] = []
    if profile is None:
        main = _response(recorded, headers)
    else:
        assert previous is not None
        headers["WARC-Type"] = "revisit"
        headers["WARC-Profile"] = profile
        headers["WARC-Refers-To"] = previous.record_id
        headers["WARC-Refers-To-Target-URI"] = previous.target_uri
        headers["WARC-Refers-To-Date"] = previous.date
        # It names the body the revisit stands for: how pywb and CDX indexes find the original.
        headers["WARC-Payload-Digest"] = previous.payload_digest
        if profile == SERVER_NOT_MODIFIED:
            main = _RECORDS.create_warc_record(target, "revisit", warc_headers_dict=headers)
            extra.append(_not_modified_metadata(recorded, main_id, warc_headers))
        else:
            main = _RECORDS.create_warc_record(
                target, "revisit", warc_headers_dict=headers, http_headers=_http(recorded)
            )
    parts = urlsplit(requested_url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_line = StatusAndHeaders(
        f"{path} {exchange.http_version}", list(exchange.request_headers), exchange.method
    )
    request = _RECORDS.create_warc_record(
        target,
        "request",
        warc_headers_dict=warc_headers("request", request_id, main_id),
        http_headers=request_line,
    )
    return [main, *extra, request]


def _new_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def _http(exchange: HttpExchange) -> StatusAndHeaders:
    return StatusAndHeaders(
        f"{exchange.status} {exchange.reason}".rstrip(),
        _stored_headers(exchange),
        protocol=exchange.http_version,
    )


def _response(exchange: HttpExchange, headers: dict[str, str]) -> ArcWarcRecord:
    headers["WARC-Payload-Digest"] = payload_digest(exchange.raw_body)
    if exchange.truncated:
        headers["WARC-Truncated"] = exchange.truncated
    return _RECORDS.create_warc_record(
        exchange.url,
        "response",
        payload=io.BytesIO(exchange.raw_body),
        length=len(exchange.raw_body),
        warc_headers_dict=headers,
        http_headers=_http(exchange),
    )


_HeadersOf = Callable[[str, str, str], dict[str, str]]


def _not_modified_metadata(
    exchange: HttpExchange, revisit_id: str, warc_headers: _HeadersOf
) -> ArcWarcRecord:
    """The metadata record beside a 304 revisit: it refers to the revisit and keeps the 304."""
    headers = warc_headers("metadata", _new_id(), revisit_id)
    headers["WARC-Refers-To"] = revisit_id
    block = _not_modified_fields(exchange)
    return _RECORDS.create_warc_record(
        exchange.url,
        "metadata",
        payload=io.BytesIO(block),
        length=len(block),
        warc_headers_dict=headers,
        warc_content_type="application/warc-fields",
    )
