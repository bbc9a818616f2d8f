"""Scanning and verifying WARC files, streaming: one record in memory at a time, never a file.

A file is read member by member in chunks of `read_size`; past damage, the next
record is found by reading on chunk by chunk. A torn tail (bytes unreadable up to
the end of the file, left by a crash mid-write) is a warning when nothing points
into it, and the writer cuts it off (whole_end) when it next opens the file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from msgspec import Struct

from monitor.archive.reader import GZIP_WBITS, READ_SIZE, Loaded, Unreadable, load, read_member
from monitor.errors import StoreError

LEGACY_OPEN_SUFFIX = ".open"  # earlier versions wrote a cycle's file as NAME.warc.gz.open
_GZIP_MAGIC = b"\x1f\x8b\x08"
_TAIL_WINDOW = 1 << 20  # how far back from the end whole_end looks for the last record
_TAIL_CANDIDATES = 32


class Problem(Struct, frozen=True):
    """One finding of verify_archive: an error (data is wrong) or a warning (harmless)."""

    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


class _Scanned(Struct, frozen=True):
    """What a sequential read found at one offset of a file: a record, or damage."""

    offset: int
    length: int
    record_type: str | None = None  # None: unreadable
    record_id: str | None = None
    payload_digest: str | None = None
    refers_to: str | None = None
    problem: str | None = None  # None: the record checks out
    target_uri: str | None = None
    at_tail: bool = False  # unreadable up to the end of the file (a crash mid-write)


def _digest_problems(loaded: Loaded) -> list[str]:
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
        loaded = load(data)
    except Unreadable as error:
        return _Scanned(offset, length, problem=str(error), at_tail=at_end)
    problems = _digest_problems(loaded)
    header = loaded.header
    kind, record_id = header("WARC-Type") or "unknown", header("WARC-Record-ID")
    digest, refers_to = header("WARC-Payload-Digest"), header("WARC-Refers-To")
    problem = "; ".join(problems) or None
    return _Scanned(offset, length, kind, record_id, digest, refers_to, problem,
                    target_uri=header("WARC-Target-URI"))  # fmt: skip


def _member_end(fh: BinaryIO, offset: int, read_size: int) -> int | None:
    """Where the whole gzip member at offset ends, if it is one and opens a WARC record."""
    fh.seek(offset)
    inflater = zlib.decompressobj(GZIP_WBITS)
    head, consumed = b"", 0
    while not inflater.eof:
        data = fh.read(read_size)
        if not data:
            return None
        consumed += len(data)
        try:
            while data and not inflater.eof:  # bounded output: a bomb never fills memory
                out = inflater.decompress(data, read_size)
                head = head if len(head) >= 5 else (head + out)[:5]
                data = inflater.unconsumed_tail
        except zlib.error:
            return None
        if len(head) >= 5 and head != b"WARC/":
            return None
    return offset + consumed - len(inflater.unused_data) if head == b"WARC/" else None


def _opens_record(fh: BinaryIO, offset: int) -> bool:
    """Whether a gzip member opening a WARC record starts at offset (its first bytes suffice)."""
    fh.seek(offset)
    try:
        head = zlib.decompressobj(GZIP_WBITS).decompress(fh.read(4096), 16)
    except zlib.error:
        return False
    return head.startswith(b"WARC/")


def _next_member(fh: BinaryIO, start: int, read_size: int) -> int | None:
    """Offset of the next gzip member that opens a WARC record at or after start."""
    position, carry = start, b""
    while True:
        fh.seek(position)
        chunk = fh.read(read_size)
        if not chunk:
            return None
        window, base = carry + chunk, position - len(carry)
        found = window.find(_GZIP_MAGIC)
        while found != -1:
            if _opens_record(fh, base + found):
                return base + found
            found = window.find(_GZIP_MAGIC, found + 1)
        carry = window[-(len(_GZIP_MAGIC) - 1) :]  # a magic split across two chunks
        position += len(chunk)


def _scan(fh: BinaryIO, size: int, read_size: int) -> Iterator[_Scanned]:
    """Every record of an open WARC file in order, resynchronising past damage."""
    offset = 0
    while offset < size:
        try:
            data, length = read_member(fh, offset, read_size)
        except Unreadable as error:
            resume = _next_member(fh, offset + 1, read_size)
            end = size if resume is None else resume
            yield _Scanned(offset, end - offset, problem=str(error), at_tail=resume is None)
            if resume is None:
                return
            offset = resume
            continue
        yield _examine(offset, length, data, at_end=offset + length >= size)
        offset += length


def scan_file(path: Path, read_size: int = READ_SIZE) -> Iterator[_Scanned]:
    """Every record of a WARC file in order, read `read_size` bytes at a time."""
    with open(path, "rb") as fh:
        yield from _scan(fh, os.fstat(fh.fileno()).st_size, read_size)


def whole_end(fh: BinaryIO, size: int, read_size: int = READ_SIZE) -> int:
    """Where the file's whole records end: `size`, or the offset of a torn tail to cut."""
    if size == 0:
        return 0
    # Fast path: the last member ends exactly at the end of the file (the usual case).
    start = max(0, size - _TAIL_WINDOW)
    fh.seek(start)
    window = fh.read(size - start)
    found, tried = window.rfind(_GZIP_MAGIC), 0
    while found != -1 and tried < _TAIL_CANDIDATES:
        if _member_end(fh, start + found, read_size) == size:
            return size
        found, tried = window.rfind(_GZIP_MAGIC, 0, found), tried + 1
    end = size
    for scanned in _scan(fh, size, read_size):
        if scanned.record_type is None and scanned.at_tail:
            end = scanned.offset
    return end


def iter_file_records(path: Path, read_size: int = READ_SIZE) -> Iterator[tuple[int, str, str]]:
    """(offset, record type, record id) of each readable record; damage is skipped, not raised."""
    try:
        for scanned in scan_file(path, read_size):
            if scanned.record_type is not None:
                yield scanned.offset, scanned.record_type, scanned.record_id or ""
    except OSError as error:
        raise StoreError(f"{path}: cannot read: {error}") from error


# What the database says a capture's record holds: payload digest, target URI, and the
# record a revisit refers to (None: not said, not checked).
Claims = tuple[str | None, str | None, str | None]


def verify_archive(
    warc_dir: Path,
    refs: Iterable[tuple[int, str, int, str]],
    read_size: int = READ_SIZE,
    claims: Mapping[int, Claims] | None = None,
) -> list[Problem]:
    """Problems in the archive: every WARC file re-read, every (capture_id, file, offset, id) ref,
    and, with `claims`, what the database says each record holds against what it holds.

    Errors are data that does not check out; a warning is a torn tail nothing points
    at (a crash mid-write, cut off when the writer next opens the file) or a legacy
    .open file, harmless by design. Files are read streaming, a record at a time.
    """
    refs = list(refs)
    names = {p.name for p in warc_dir.glob("*.warc.gz")} if warc_dir.is_dir() else set()
    names |= {name for _, name, _, _ in refs if (warc_dir / name).is_file()}
    problems: list[Problem] = []
    scans: dict[str, dict[int, _Scanned]] = {}
    for name in sorted(names):
        try:
            scans[name] = {s.offset: s for s in scan_file(warc_dir / name, read_size)}
        except OSError as error:
            problems.append(Problem("error", f"{warc_dir / name}: cannot read: {error}"))
    by_id = {
        s.record_id: s for entries in scans.values() for s in entries.values() if s.record_id
    }
    pointed = set()
    for capture_id, name, offset, record_id in refs:
        pointed.add((name, offset))
        message = _check_ref(scans, by_id, (name, offset, record_id))
        if message is None and claims and capture_id in claims:
            message = _check_claims(scans[name][offset], claims[capture_id])
        if message:
            where = f"capture {capture_id}: {name} at offset {offset}"
            problems.append(Problem("error", f"{where}: {message}"))
    problems.extend(
        _file_problem(name, scanned)
        for name, entries in scans.items()
        for scanned in entries.values()
        if scanned.problem is not None and (name, scanned.offset) not in pointed
    )
    legacy = sorted(warc_dir.glob(f"*.warc.gz{LEGACY_OPEN_SUFFIX}")) if warc_dir.is_dir() else []
    problems.extend(
        Problem("warning", f"{p.name}: left by a check cycle that did not finish (ignored: "
                "nothing points at it)")
        for p in legacy
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


def _check_claims(scanned: _Scanned, claims: Claims) -> str | None:
    """Where the database's columns disagree with the record they point at, or None."""
    digest, target_uri, refers_to = claims
    if digest is not None and scanned.payload_digest is not None:
        if digest != scanned.payload_digest:
            return f"the database says payload {digest}, the record {scanned.payload_digest}"
    if target_uri is not None and scanned.target_uri is not None:
        if target_uri != scanned.target_uri:
            return f"the database says URL {target_uri}, the record {scanned.target_uri}"
    if scanned.record_type == "revisit" and refers_to is not None:
        if refers_to != scanned.refers_to:
            return (f"the database says it revisits {refers_to}, the record refers to "
                    f"{scanned.refers_to}")  # fmt: skip
    return None


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
