"""The WARC archive: every exchange as WARC/1.1 records (gzip per record), read back, verified.

Writing goes through warcio's WARCWriter, so the files are what standard tools
(warcio, pywb) expect. Reading decompresses one gzip member ourselves before
handing it to warcio's ArchiveIterator: warcio, on a gzip error inside a
member, writes to stderr and returns short data, and a damaged archive must
raise (read_capture) or be reported (verify_archive), never be read silently.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import os
import re
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordbuilder import RecordBuilder
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParserException
from warcio.warcwriter import WARCWriter

from monitor import __version__
from monitor.errors import StoreError
from monitor.models import CaptureRef, HttpExchange, format_time

SOFTWARE = f"monitor/{__version__}"
IDENTICAL_PAYLOAD = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
SERVER_NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
WARC_SPEC = "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"
OPEN_SUFFIX = ".open"  # a cycle's WARC file until it is closed whole

_GZIP_MAGIC = b"\x1f\x8b\x08"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_CHUNK = 64 * 1024
_CYCLE_ID = re.compile(r"[A-Za-z0-9._-]+")
# warcio's parser raises these (and ValueError/TypeError on bad numbers) on a malformed record
_PARSE_ERRORS = (ArchiveLoadFailed, StatusAndHeadersParserException, EOFError, StopIteration,
                 ValueError, TypeError, IndexError)


@dataclass(frozen=True)
class PreviousCapture:
    """The last response recorded for a target URL; for revisits, the original response."""

    record_id: str
    target_uri: str
    date: str  # its WARC-Date
    payload_digest: str  # "sha1:BASE32"


@dataclass(frozen=True)
class ArchivedResponse:
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


@dataclass(frozen=True)
class Problem:
    """One finding of verify_archive: an error (data is wrong) or a warning (harmless)."""

    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


# -- writing ---------------------------------------------------------------

_RECORDS = RecordBuilder(warc_version="1.1")  # builds records only; stateless


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


def _warc_headers(
    kind: str, exchange: HttpExchange, record_id: str, concurrent_to: str
) -> dict[str, str]:
    # WARC-Type first, as WARC tools write it (warcio keeps the order given). WARC-Date
    # is to the second, as models.format_time: store.py keeps capture times so and
    # PreviousCapture.date comes from there, so a WARC-Refers-To-Date is exact.
    return {
        "WARC-Type": kind,
        "WARC-Record-ID": record_id,
        "WARC-Date": format_time(exchange.started_at),
        "WARC-Target-URI": exchange.url,
        "WARC-Concurrent-To": concurrent_to,
    }


def _exchange_records(
    exchange: HttpExchange, previous: PreviousCapture | None
) -> tuple[ArcWarcRecord, ArcWarcRecord]:
    """The response (or revisit) record of an exchange, and its request record."""
    main_id, request_id = (f"<urn:uuid:{uuid.uuid4()}>" for _ in range(2))
    http = StatusAndHeaders(
        f"{exchange.status} {exchange.reason}".rstrip(),
        _stored_headers(exchange),
        protocol=exchange.http_version,
    )
    headers = _warc_headers("response", exchange, main_id, request_id)
    profile = revisit_profile(exchange, previous)
    if profile is None:
        headers["WARC-Payload-Digest"] = payload_digest(exchange.raw_body)
        if exchange.truncated:
            headers["WARC-Truncated"] = exchange.truncated
        main = _RECORDS.create_warc_record(
            exchange.url,
            "response",
            payload=io.BytesIO(exchange.raw_body),
            length=len(exchange.raw_body),
            warc_headers_dict=headers,
            http_headers=http,
        )
    else:
        assert previous is not None
        headers["WARC-Type"] = "revisit"
        headers["WARC-Profile"] = profile
        headers["WARC-Refers-To"] = previous.record_id
        headers["WARC-Refers-To-Target-URI"] = previous.target_uri
        headers["WARC-Refers-To-Date"] = previous.date
        # For a 304 too: it names the body the answer confirms, which is how pywb
        # and CDX indexes find a revisit's original. The block is the HTTP headers.
        headers["WARC-Payload-Digest"] = previous.payload_digest
        main = _RECORDS.create_warc_record(
            exchange.url, "revisit", warc_headers_dict=headers, http_headers=http
        )
    parts = urlsplit(exchange.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_line = StatusAndHeaders(
        f"{target} {exchange.http_version}", list(exchange.request_headers), exchange.method
    )
    request = _RECORDS.create_warc_record(
        exchange.url,
        "request",
        warc_headers_dict=_warc_headers("request", exchange, request_id, main_id),
        http_headers=request_line,
    )
    return main, request


class CycleWriter:
    """One WARC file per check cycle, opened on the first write; a context manager.

    Calls must not interleave. Each record is written and flushed whole, so a crash
    leaves at most one incomplete record at the end of the file. The file is written
    as NAME.warc.gz.open and renamed to `path` (NAME.warc.gz) by close(), after an
    fsync and before the database may point at it: a cycle killed mid-write leaves
    its torn file out of `*.warc.gz`, where WARC tools (warcio, pywb) would choke on it.
    """

    def __init__(self, warc_dir: Path, cycle_id: str, now: datetime) -> None:
        if not _CYCLE_ID.fullmatch(cycle_id):
            raise ValueError(f"cycle id {cycle_id!r}: only letters, digits, '.', '_', '-'")
        self.warc_dir = warc_dir
        self.now = now
        self.file_name = f"monitor-{now.astimezone(UTC):%Y%m%d%H%M%S}-{cycle_id}.warc.gz"
        self.path: Path | None = None
        self._file: BinaryIO | None = None
        self._warc: WARCWriter | None = None
        self._closed = False
        self._broken: str | None = None

    def __enter__(self) -> CycleWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write_exchange(
        self, exchange: HttpExchange, previous: PreviousCapture | None
    ) -> CaptureRef:
        """Append the exchange's records; return where its response or revisit record went."""
        main, request = _exchange_records(exchange, previous)
        (offset, length), _ = self._append([main, request])
        assert self.path is not None
        header = main.rec_headers.get_header
        return CaptureRef(
            warc_file=self.path.name,
            offset=offset,
            length=length,
            record_id=header("WARC-Record-ID"),
            record_type=main.rec_type,
            payload_digest=header("WARC-Payload-Digest"),
            refers_to=header("WARC-Refers-To"),
        )

    def sync(self) -> None:
        """Flush the file and fsync it and its directory: durable before a DB commit."""
        if self._file is None or self.path is None:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self.sync_directory()  # the file is new: its directory entry must be durable too
        except OSError as error:
            raise StoreError(f"{self.path}: cannot sync the WARC file: {error}") from error

    def close(self) -> None:
        """Sync, close and rename the file to `path` (if one was opened); later calls do nothing.

        A file whose tail could not be cut back after a failed write keeps its .open name.
        """
        if self._closed:
            return
        self._closed = True
        if self._file is None or self.path is None:
            return
        try:
            self.sync()
        except StoreError:
            # close() flushes again and fails the same way (disk full): the first error says why
            with contextlib.suppress(OSError):
                self._file.close()
            raise
        try:
            self._file.close()
        except OSError as error:
            raise StoreError(f"{self.path}: cannot close the WARC file: {error}") from error
        if self._broken:
            return
        try:
            os.rename(_open_name(self.path), self.path)
            self.sync_directory()
        except OSError as error:
            raise StoreError(f"{self.path}: cannot rename the finished file: {error}") from error

    def sync_directory(self) -> None:
        """fsync the WARC directory: a new or renamed file's name is durable."""
        assert self.path is not None
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _open(self) -> tuple[BinaryIO, WARCWriter, Path]:
        path = self.warc_dir / self.file_name
        if self._closed:
            raise StoreError(f"{path}: the cycle's WARC writer is already closed")
        if self._file is not None and self._warc is not None:
            return self._file, self._warc, path
        try:
            self.warc_dir.mkdir(parents=True, exist_ok=True)
            if path.exists():
                raise FileExistsError(errno.EEXIST, "File exists")
            # "x": a cycle's file is new; never append to another cycle's records
            file = open(_open_name(path), "xb")  # closed by close()
        except OSError as error:
            raise StoreError(f"{path}: cannot create the WARC file: {error}") from error
        self._file, self.path = file, path
        self._warc = WARCWriter(file, gzip=True, warc_version="1.1")
        info = {"software": SOFTWARE, "format": "WARC File Format 1.1", "conformsTo": WARC_SPEC}
        warcinfo = _RECORDS.create_warcinfo_record(self.file_name, info)
        warcinfo.rec_headers.replace_header("WARC-Date", format_time(self.now))
        self._append([warcinfo])
        return file, self._warc, path

    def _append(self, records: list[ArcWarcRecord]) -> list[tuple[int, int]]:
        """Write records, each its own gzip member; their (offset, compressed length)."""
        file, warc, path = self._open()
        if self._broken:
            raise StoreError(f"{path}: not writable after an earlier failure: {self._broken}")
        start = file.tell()
        spans = []
        try:
            for record in records:
                offset = file.tell()
                warc.write_record(record)  # gzip-compresses it as one member, writes, flushes
                spans.append((offset, file.tell() - offset))
        except OSError as error:
            try:  # cut the half-written exchange off, so later records follow whole ones
                file.seek(start)
                file.truncate()
            except OSError:
                # The partial record stays as the file's tail (verify calls that a
                # harmless warning); writing after it would bury it mid-file, so stop.
                self._broken = str(error)
            raise StoreError(f"{path}: cannot write a WARC record: {error}") from error
        return spans


def _open_name(path: Path) -> Path:
    """Where a cycle writes its WARC file until close() renames it to `path`."""
    return path.with_name(path.name + OPEN_SUFFIX)


# -- reading ---------------------------------------------------------------


class _Unreadable(Exception):
    """A gzip member or WARC record that cannot be read; the message says why."""


@dataclass(frozen=True)
class _Loaded:
    """One record parsed out of its decompressed gzip member."""

    record: ArcWarcRecord
    block: bytes
    payload: bytes
    framing: str | None  # what is wrong with the record's length/end, if anything

    def header(self, name: str) -> str | None:
        value = self.record.rec_headers.get_header(name)
        return None if value is None else str(value)


def _read_member(fh: BinaryIO, offset: int) -> tuple[bytes, int]:
    """Decompress the gzip member at offset: (its data, its compressed length)."""
    fh.seek(offset)
    inflater = zlib.decompressobj(_GZIP_WBITS)
    parts, consumed = [], 0
    while not inflater.eof:
        chunk = fh.read(_CHUNK)
        if not chunk:
            if consumed == 0:
                raise _Unreadable("no record here (end of file)")
            raise _Unreadable("incomplete gzip member (the file ends inside it)")
        try:
            parts.append(inflater.decompress(chunk))
        except zlib.error as error:
            raise _Unreadable(f"corrupt gzip data ({error})") from error
        consumed += len(chunk)
    return b"".join(parts), consumed - len(inflater.unused_data)


def _load(data: bytes) -> _Loaded:
    """Parse one WARC record with warcio from its decompressed member."""
    if not data.startswith(b"WARC/"):
        raise _Unreadable("not a WARC record")
    try:
        record = next(ArchiveIterator(io.BytesIO(data)))
        payload = record.raw_stream.read()
        length = int(record.rec_headers.get_header("Content-Length"))
        block_start = data.index(b"\r\n\r\n") + 4
    except _PARSE_ERRORS as error:
        reason = str(error) or type(error).__name__
        raise _Unreadable(f"not a readable WARC record ({reason})") from error
    block = data[block_start : block_start + length]
    framing = None
    if len(block) != length or data[block_start + length :] != b"\r\n\r\n":
        actual = len(data) - block_start - 4
        framing = f"Content-Length {length} does not match the record's {actual} bytes"
    return _Loaded(record, block, payload, framing)


def _read_record(warc_dir: Path, warc_file: str, offset: int) -> _Loaded:
    path = warc_dir / warc_file
    try:
        with open(path, "rb") as fh:
            return _load(_read_member(fh, offset)[0])
    except OSError as error:
        raise StoreError(f"{path} at offset {offset}: cannot read: {error}") from error
    except _Unreadable as error:
        raise StoreError(f"{path} at offset {offset}: {error}") from error


def read_capture(warc_dir: Path, warc_file: str, offset: int) -> ArchivedResponse:
    """The response or revisit record at offset in warc_file; StoreError if it cannot be read."""
    loaded = _read_record(warc_dir, warc_file, offset)
    where = f"{warc_dir / warc_file} at offset {offset}"
    kind = loaded.header("WARC-Type")
    http = loaded.record.http_headers
    if kind not in ("response", "revisit"):
        raise StoreError(f"{where}: a {kind} record, not a response or revisit")
    if http is None:
        raise StoreError(f"{where}: the {kind} record has no HTTP headers")
    code, _, reason = str(http.statusline).partition(" ")
    if not code.isdigit():
        raise StoreError(f"{where}: bad HTTP status line {http.statusline!r}")
    return ArchivedResponse(
        record_type="response" if kind == "response" else "revisit",
        record_id=loaded.header("WARC-Record-ID") or "",
        target_uri=loaded.header("WARC-Target-URI") or "",
        date=loaded.header("WARC-Date") or "",
        status=int(code),
        reason=reason,
        headers=tuple((str(k), str(v)) for k, v in http.headers),
        raw_payload=loaded.payload if kind == "response" else b"",
        refers_to=loaded.header("WARC-Refers-To"),
        truncated=loaded.header("WARC-Truncated"),
        profile=loaded.header("WARC-Profile"),
    )


# -- scanning and verifying ------------------------------------------------


@dataclass(frozen=True)
class _Scanned:
    """What a sequential read found at one offset of a file: a record, or damage."""

    offset: int
    length: int
    record_type: str | None = None  # None: unreadable
    record_id: str | None = None
    payload_digest: str | None = None
    refers_to: str | None = None
    problem: str | None = None  # None: the record checks out
    at_tail: bool = False  # unreadable up to the end of the file (a crash mid-write)


def _digest_problems(loaded: _Loaded) -> list[str]:
    """Recomputed block and payload digests that disagree with the record's headers."""
    problems = [loaded.framing] if loaded.framing else []
    checks = [("WARC-Block-Digest", loaded.block)]
    # a revisit's payload lives in the record it refers to: checked through the reference
    if loaded.header("WARC-Type") != "revisit" and loaded.record.http_headers is not None:
        checks.append(("WARC-Payload-Digest", loaded.payload))
    for name, data in checks:
        stated = loaded.header(name)
        if stated is None:
            continue
        algorithm, _, value = stated.partition(":")
        try:
            actual = base64.b32encode(hashlib.new(algorithm, data).digest()).decode("ascii")
        except ValueError:
            problems.append(f"{name} {stated}: unknown digest algorithm")
            continue
        if actual != value.upper():
            problems.append(f"{name} does not match: recorded {stated}, is {algorithm}:{actual}")
    return problems


def _examine(offset: int, length: int, data: bytes, at_end: bool) -> _Scanned:
    try:
        loaded = _load(data)
    except _Unreadable as error:
        return _Scanned(offset, length, problem=str(error), at_tail=at_end)
    problems = _digest_problems(loaded)
    header = loaded.header
    kind, record_id = header("WARC-Type") or "unknown", header("WARC-Record-ID")
    digest, refers_to = header("WARC-Payload-Digest"), header("WARC-Refers-To")
    return _Scanned(offset, length, kind, record_id, digest, refers_to, "; ".join(problems) or None)


def _next_member(fh: BinaryIO, start: int) -> int | None:
    """Offset of the next gzip member that opens a WARC record at or after start."""
    fh.seek(start)
    rest = fh.read()
    position = rest.find(_GZIP_MAGIC)
    while position != -1:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        try:
            head = inflater.decompress(rest[position : position + 4096], 16)
        except zlib.error:
            head = b""
        if head.startswith(b"WARC/"):
            return start + position
        position = rest.find(_GZIP_MAGIC, position + 1)
    return None


def _scan_file(path: Path) -> Iterator[_Scanned]:
    """Every record of a WARC file in order, resynchronising past damage."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                data, length = _read_member(fh, offset)
            except _Unreadable as error:
                resume = _next_member(fh, offset + 1)
                end = size if resume is None else resume
                yield _Scanned(offset, end - offset, problem=str(error), at_tail=resume is None)
                if resume is None:
                    return
                offset = resume
                continue
            yield _examine(offset, length, data, at_end=offset + length >= size)
            offset += length


def iter_file_records(path: Path) -> Iterator[tuple[int, str, str]]:
    """(offset, record type, record id) of each readable record; damage is skipped, not raised."""
    try:
        for scanned in _scan_file(path):
            if scanned.record_type is not None:
                yield scanned.offset, scanned.record_type, scanned.record_id or ""
    except OSError as error:
        raise StoreError(f"{path}: cannot read: {error}") from error


def verify_archive(warc_dir: Path, refs: Iterable[tuple[int, str, int, str]]) -> list[Problem]:
    """Problems in the archive: every WARC file re-read, every (capture_id, file, offset, id) ref.

    Errors are data that does not check out; a warning is an incomplete last record
    nothing points at (a crash mid-write) or the .open file of a cycle that never
    finished, harmless by design.
    """
    refs = list(refs)
    names = {p.name for p in warc_dir.glob("*.warc.gz")} if warc_dir.is_dir() else set()
    names |= {name for _, name, _, _ in refs if (warc_dir / name).is_file()}
    problems: list[Problem] = []
    scans: dict[str, dict[int, _Scanned]] = {}
    for name in sorted(names):
        try:
            scans[name] = {s.offset: s for s in _scan_file(warc_dir / name)}
        except OSError as error:
            problems.append(Problem("error", f"{warc_dir / name}: cannot read: {error}"))
    by_id = {
        s.record_id: s for entries in scans.values() for s in entries.values() if s.record_id
    }
    pointed = set()
    for capture_id, name, offset, record_id in refs:
        pointed.add((name, offset))
        message = _check_ref(scans, by_id, (name, offset, record_id))
        if message:
            where = f"capture {capture_id}: {name} at offset {offset}"
            problems.append(Problem("error", f"{where}: {message}"))
    problems.extend(
        _file_problem(name, scanned)
        for name, entries in scans.items()
        for scanned in entries.values()
        if scanned.problem is not None and (name, scanned.offset) not in pointed
    )
    unfinished = sorted(warc_dir.glob(f"*.warc.gz{OPEN_SUFFIX}")) if warc_dir.is_dir() else []
    problems.extend(
        Problem("warning", f"{p.name}: left by a check cycle that did not finish (ignored: "
                "nothing points at it)")
        for p in unfinished
    )
    return problems


def _file_problem(name: str, scanned: _Scanned) -> Problem:
    at, why = scanned.offset, scanned.problem
    if scanned.record_type is None and scanned.at_tail:
        ignored = "(ignored: nothing points at it)"
        return Problem("warning", f"{name}: incomplete record at offset {at} {ignored}: {why}")
    if scanned.record_type is None:
        span = f"{at}-{at + scanned.length}"
        return Problem("error", f"{name}: unreadable bytes at offsets {span}: {why}")
    what = f"{scanned.record_type} record {scanned.record_id}"
    return Problem("error", f"{name}: {what} at offset {at}: {why}")


def _check_ref(
    scans: dict[str, dict[int, _Scanned]], by_id: dict[str, _Scanned], ref: tuple[str, int, str]
) -> str | None:
    """What is wrong with one capture's pointer into the archive, or None."""
    name, offset, record_id = ref
    if name not in scans:
        return "the WARC file is missing"
    scanned = scans[name].get(offset)
    if scanned is None:
        return "no record starts at this offset"
    if scanned.record_type is None:
        return f"unreadable: {scanned.problem}"
    if scanned.record_id != record_id:
        return f"holds record {scanned.record_id}, not {record_id}"
    if scanned.record_type not in ("response", "revisit"):
        return f"a {scanned.record_type} record, not a response or revisit"
    if scanned.problem:
        return scanned.problem
    if scanned.record_type == "revisit":
        original = by_id.get(scanned.refers_to or "")
        if original is None:
            return f"revisit refers to {scanned.refers_to}, which is not in the archive"
        if original.payload_digest != scanned.payload_digest:
            return (
                f"revisit's payload digest {scanned.payload_digest} is not that of "
                f"{scanned.refers_to} ({original.payload_digest})"
            )
    return None
