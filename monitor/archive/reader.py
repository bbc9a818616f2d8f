"""Reading one record back at (file, offset): a gzip member decompressed, parsed by warcio.

We decompress the member ourselves before handing it to warcio's ArchiveIterator:
warcio, on a gzip error inside a member, writes to stderr and returns short data,
and a damaged archive must raise (read_capture) or be reported (verify), never be
read silently. Only the one member is read, in chunks: never the rest of the file.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import BinaryIO, Literal

from msgspec import Struct
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from monitor.archive.records import (
    HTTP_HEADER_FIELD,
    HTTP_STATUS_FIELD,
    SERVER_NOT_MODIFIED,
)
from monitor.errors import StoreError

GZIP_WBITS = 16 + zlib.MAX_WBITS
READ_SIZE = 64 * 1024  # bytes read from a file at a time
# warcio's parser raises these (and ValueError/TypeError on bad numbers) on a malformed record
_PARSE_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, EOFError, StopIteration,
                 ValueError, TypeError, IndexError)


class ArchivedResponse(Struct, frozen=True):
    """One response or revisit record read back; raw_payload is still content-encoded."""

    record_type: Literal["response", "revisit"]
    record_id: str
    target_uri: str
    date: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    raw_payload: bytes  # b"" for a revisit: follow refers_to to the original
    refers_to: str | None
    truncated: str | None  # WARC-Truncated
    profile: str | None  # revisit profile URI


class Unreadable(Exception):
    """A gzip member or WARC record that cannot be read; the message says why."""


class Loaded(Struct, frozen=True):
    """One record parsed out of its decompressed gzip member."""

    record: ArcWarcRecord
    block: bytes
    payload: bytes
    framing: str | None  # what is wrong with the record's length/end, if anything

    def header(self, name: str) -> str | None:
        """A WARC header's value, or None."""
        value = self.record.rec_headers.get_header(name)
        return None if value is None else str(value)


def read_member(fh: BinaryIO, offset: int, read_size: int = READ_SIZE) -> tuple[bytes, int]:
    """Decompress the gzip member at offset: (its data, its compressed length)."""
    fh.seek(offset)
    inflater = zlib.decompressobj(GZIP_WBITS)
    parts, consumed = [], 0
    while not inflater.eof:
        chunk = fh.read(read_size)
        if not chunk:
            if consumed == 0:
                raise Unreadable("no record here (end of file)")
            raise Unreadable("incomplete gzip member (the file ends inside it)")
        try:
            parts.append(inflater.decompress(chunk))
        except zlib.error as error:
            raise Unreadable(f"corrupt gzip data ({error})") from error
        consumed += len(chunk)
    return b"".join(parts), consumed - len(inflater.unused_data)


def load(data: bytes) -> Loaded:
    """Parse one WARC record with warcio from its decompressed member."""
    if not data.startswith(b"WARC/"):
        raise Unreadable("not a WARC record")
    try:
        record = next(ArchiveIterator(io.BytesIO(data)))
        payload = record.raw_stream.read()
        length = int(record.rec_headers.get_header("Content-Length"))
        block_start = data.index(b"\r\n\r\n") + 4
    except _PARSE_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise Unreadable(f"not a readable WARC record ({reason})") from error
    block = data[block_start : block_start + length]
    framing = None
    if len(block) != length or data[block_start + length :] != b"\r\n\r\n":
        actual = len(data) - block_start - 4
        framing = f"Content-Length {length} does not match the record's {actual} bytes"
    return Loaded(record, block, payload, framing)


def read_record(warc_dir: Path, warc_file: str, offset: int) -> tuple[Loaded, int]:
    """The record at offset and its compressed length; StoreError naming file and offset."""
    path = warc_dir / warc_file
    try:
        with open(path, "rb") as fh:
            data, length = read_member(fh, offset)
            return load(data), length
    except OSError as error:
        raise StoreError(f"{path} at offset {offset}: cannot read: {error}") from error
    except Unreadable as error:
        raise StoreError(f"{path} at offset {offset}: {error}") from error


def read_capture(warc_dir: Path, warc_file: str, offset: int) -> ArchivedResponse:
    """The response or revisit record at offset in warc_file; StoreError if it cannot be read.

    A 304 revisit written with an empty block gets its status and headers from the
    metadata record written right after it.
    """
    loaded, length = read_record(warc_dir, warc_file, offset)
    where = f"{warc_dir / warc_file} at offset {offset}"
    kind = loaded.header("WARC-Type")
    if kind not in ("response", "revisit"):
        raise StoreError(f"{where}: a {kind} record, not a response or revisit")
    http = loaded.record.http_headers
    if http is not None:
        statusline, headers = str(http.statusline), [(str(k), str(v)) for k, v in http.headers]
    elif kind == "revisit" and loaded.header("WARC-Profile") == SERVER_NOT_MODIFIED:
        statusline, headers = _not_modified_http(warc_dir, warc_file, offset + length, loaded)
    else:
        raise StoreError(f"{where}: the {kind} record has no HTTP headers")
    code, _, reason = statusline.partition(" ")
    if not code.isdigit():
        raise StoreError(f"{where}: bad HTTP status line {statusline!r}")
    return ArchivedResponse(
        record_type="response" if kind == "response" else "revisit",
        record_id=loaded.header("WARC-Record-ID") or "",
        target_uri=loaded.header("WARC-Target-URI") or "",
        date=loaded.header("WARC-Date") or "",
        status=int(code),
        reason=reason,
        headers=tuple(headers),
        raw_payload=loaded.payload if kind == "response" else b"",
        refers_to=loaded.header("WARC-Refers-To"),
        truncated=loaded.header("WARC-Truncated"),
        profile=loaded.header("WARC-Profile"),
    )


def _not_modified_http(
    warc_dir: Path, warc_file: str, offset: int, revisit: Loaded
) -> tuple[str, list[tuple[str, str]]]:
    """The 304's status line and headers, from the metadata record that follows its revisit."""
    where = f"{warc_dir / warc_file} at offset {offset}"
    metadata, _ = read_record(warc_dir, warc_file, offset)
    if (
        metadata.header("WARC-Type") != "metadata"
        or metadata.header("WARC-Refers-To") != revisit.header("WARC-Record-ID")
    ):
        raise StoreError(f"{where}: no metadata record of the 304 revisit before it")
    statusline, headers = "", []
    for line in metadata.block.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(": ")
        if name == HTTP_STATUS_FIELD:
            statusline = value
        elif name == HTTP_HEADER_FIELD:
            key, _, header_value = value.partition(": ")
            headers.append((key, header_value))
        # other fields (http-version, any a later version adds) are not needed here
    return statusline, headers
