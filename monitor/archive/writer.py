"""The sink: exchanges appended to rolled WARC files, synced before the database points at them.

Files are named monitor-YYYYMMDD-<writer>-NNNN.warc.gz: a UTC day, the writer id
(the host name by default, so that a cluster's workers on one shared directory
never meet in a file) and a sequence number. A file is rolled when the day
changes or the next exchange would take it past `max_bytes`. Each file is held
under an exclusive flock while open, so two writers of one host (two processes,
or two writers in one) never append to the same file either: the second takes
the next number. Reopening a file to append first cuts off a torn tail (a
partial gzip member left by a crash, which no database row points at): the part
before it is whole WARC, readable by warcio and pywb between cycles.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import socket
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from msgspec import Struct
from warcio.recordloader import ArcWarcRecord
from warcio.warcwriter import WARCWriter

from monitor.archive.records import PreviousCapture, Provenance, exchange_records, warcinfo_record
from monitor.archive.verify import whole_end
from monitor.errors import StoreError
from monitor.models import CaptureRef, HttpExchange, utc_now

DEFAULT_MAX_BYTES = 1_000_000_000  # [monitor].warc_max_bytes's default: 1 GB
GZIP_LEVEL = 6  # each record's gzip member: zlib's default (see _gzip_member)
_WRITER_ID = re.compile(r"[A-Za-z0-9._-]+")


def default_writer_id() -> str:
    """This host's name, made safe for a file name: the default writer id."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


class _Open(Struct):
    """The file being appended to, under its flock."""

    path: Path
    file: BinaryIO
    day: str
    size: int
    has_records: bool
    created: bool  # new since the last sync: its directory entry must be synced too


class WarcWriter:
    """Appends exchanges to the current WARC file of this writer; a context manager.

    Calls must not interleave. write_exchange returns where its records went; sync()
    (or close()) makes them durable: call it before a database commit points at them.
    """

    def __init__(
        self,
        warc_dir: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        writer_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        writer_id = default_writer_id() if writer_id is None else writer_id
        if not _WRITER_ID.fullmatch(writer_id):
            raise ValueError(f"writer id {writer_id!r}: only letters, digits, '.', '_', '-'")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes {max_bytes}: must be positive")
        self.warc_dir, self.max_bytes, self.writer_id, self.clock = (
            warc_dir, max_bytes, writer_id, clock
        )
        self.path: Path | None = None  # the file written last
        self.files: list[str] = []  # every file written to, in order
        self._open: _Open | None = None
        self._closed = False
        self._broken: str | None = None

    def __enter__(self) -> WarcWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write_exchange(
        self,
        exchange: HttpExchange,
        previous: PreviousCapture | None,
        *,
        target_uri: str | None = None,
        date: datetime | None = None,
        source_uri: str | None = None,
    ) -> CaptureRef:
        """Append the exchange's records; return where its response or revisit record went.

        target_uri, date and source_uri record a backfilled memento: the page's original
        URL, the capture's own time, and the memento URL it was fetched from
        (WARC-Source-URI). Not durable until sync() or close().
        """
        provenance = Provenance(target_uri, date, source_uri)
        records = exchange_records(exchange, previous, provenance)
        batch, spans = io.BytesIO(), []
        for record in records:
            member = _gzip_member(record)
            spans.append((batch.tell(), len(member)))
            batch.write(member)
        current = self._current(len(batch.getvalue()))
        offset = self._append(current, batch.getvalue())
        main = records[0]
        header = main.rec_headers.get_header
        return CaptureRef(
            warc_file=current.path.name,
            offset=offset + spans[0][0],
            length=spans[0][1],
            record_id=header("WARC-Record-ID"),
            record_type=main.rec_type,
            payload_digest=header("WARC-Payload-Digest"),
            refers_to=header("WARC-Refers-To"),
        )

    def sync(self) -> None:
        """Flush the current file and fsync it (and its directory, if new): durable."""
        if self._open is not None:
            _sync(self._open)

    def close(self) -> None:
        """Sync and close the current file, releasing its lock; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._close_current()

    def _close_current(self) -> None:
        current, self._open = self._open, None
        if current is None:
            return
        try:
            _sync(current)
        except StoreError:
            with contextlib.suppress(OSError):
                current.file.close()  # closing flushes again and fails alike: the first says why
            raise
        try:
            current.file.close()  # releases the flock
        except OSError as error:
            raise StoreError(f"{current.path}: cannot close the WARC file: {error}") from error

    def _current(self, batch_size: int) -> _Open:
        """The file the next batch goes to: the open one, unless the day or the size rolls it."""
        if self._closed:
            raise StoreError(f"{self.warc_dir}: the WARC writer is already closed")
        if self._broken:
            raise StoreError(f"{self.path}: not writable after an earlier failure: {self._broken}")
        day = self.clock().astimezone(UTC).strftime("%Y%m%d")
        current = self._open
        if current is not None:
            full = current.has_records and current.size + batch_size > self.max_bytes
            if current.day == day and not full:
                return current
            self._close_current()
        current = self._open_for(day, batch_size)
        self._open, self.path = current, current.path
        if current.path.name not in self.files:
            self.files.append(current.path.name)
        return current

    def _open_for(self, day: str, batch_size: int) -> _Open:
        """This writer's last file of the day if free and not full, else a new one."""
        try:
            self.warc_dir.mkdir(parents=True, exist_ok=True)
            numbers = self._numbers(day)
            if numbers:
                reopened = self._reopen(day, numbers[-1], batch_size)
                if reopened is not None:
                    return reopened
            return self._create(day, (numbers[-1] + 1) if numbers else 1)
        except OSError as error:
            raise StoreError(f"{self.warc_dir}: cannot open a WARC file: {error}") from error

    def _name(self, day: str, number: int) -> str:
        return f"monitor-{day}-{self.writer_id}-{number:04d}.warc.gz"

    def _numbers(self, day: str) -> list[int]:
        pattern = re.compile(rf"monitor-{day}-{re.escape(self.writer_id)}-(\d{{4,}})\.warc\.gz")
        found = (pattern.fullmatch(p.name) for p in self.warc_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _reopen(self, day: str, number: int, batch_size: int) -> _Open | None:
        """The file, locked, its torn tail cut; None if another writer holds it or it is full."""
        path = self.warc_dir / self._name(day, number)
        file = open(path, "r+b")  # held open, under its lock, until closed
        if not _lock(file):
            file.close()
            return None
        size = os.fstat(file.fileno()).st_size
        end = whole_end(file, size)
        if end < size:  # a crash mid-write: nothing points past `end`
            file.truncate(end)
            os.fsync(file.fileno())
        if end and end + batch_size > self.max_bytes:
            file.close()
            return None
        file.seek(end)
        current = _Open(path, file, day, end, has_records=end > 0, created=False)
        if end == 0:  # its creator died before its warcinfo: start it over
            _start(self, current)
        return current

    def _create(self, day: str, number: int) -> _Open:
        while True:
            path = self.warc_dir / self._name(day, number)
            try:
                file = open(path, "xb")  # held open, under its lock, until closed
            except FileExistsError:  # another writer made it meanwhile
                number += 1
                continue
            if _lock(file):
                break
            file.close()
            number += 1
        current = _Open(path, file, day, 0, has_records=False, created=True)
        _start(self, current)
        return current

    def _append(self, current: _Open, data: bytes) -> int:
        """Write whole gzip members at the end of the file; the offset they start at."""
        start = current.size
        try:
            current.file.write(data)
            current.file.flush()
        except OSError as error:
            try:  # cut the half-written exchange off, so later records follow whole ones
                current.file.seek(start)
                current.file.truncate()
            except OSError:
                # The partial record stays as the file's tail (cut at the next open,
                # a warning for verify meanwhile); writing after it would bury it.
                self._broken = str(error)
            raise StoreError(f"{current.path}: cannot write a WARC record: {error}") from error
        current.size += len(data)
        current.has_records = current.has_records or start > 0
        return start


class CycleWriter(WarcWriter):
    """A check cycle's writer: a WarcWriter whose day is the cycle's start (kept for callers)."""

    def __init__(
        self,
        warc_dir: Path,
        cycle_id: str,
        now: datetime,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        writer_id: str | None = None,
    ) -> None:
        if not _WRITER_ID.fullmatch(cycle_id):
            raise ValueError(f"cycle id {cycle_id!r}: only letters, digits, '.', '_', '-'")
        self.cycle_id = cycle_id
        super().__init__(warc_dir, max_bytes=max_bytes, writer_id=writer_id, clock=lambda: now)


def _start(writer: WarcWriter, current: _Open) -> None:
    """Write a file's warcinfo record; on failure, close the file (it stays, empty or torn)."""
    try:
        writer._append(current, _warcinfo_bytes(current.path.name, writer.clock()))
    except StoreError:
        current.file.close()
        raise


def _sync(current: _Open) -> None:
    """Flush and fsync a file, and its directory when the file is new."""
    try:
        current.file.flush()
        os.fsync(current.file.fileno())
        if current.created:
            _sync_directory(current.path.parent)
            current.created = False
    except OSError as error:
        raise StoreError(f"{current.path}: cannot sync the WARC file: {error}") from error


def _warcinfo_bytes(file_name: str, now: datetime) -> bytes:
    return _gzip_member(warcinfo_record(file_name, now))


def _gzip_member(record: ArcWarcRecord) -> bytes:
    """One record as warcio serialises it, compressed as one gzip member (record-at-a-time
    gzip, as WARC tools expect), at zlib's default level: warcio's level 9 spends ~20% more
    CPU on a 40 KB page for files ~0.5% smaller."""
    raw = io.BytesIO()
    WARCWriter(raw, gzip=False, warc_version="1.1").write_record(record)
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    return compressor.compress(raw.getvalue()) + compressor.flush()


def _lock(file: BinaryIO) -> bool:
    """Take the file's exclusive flock without waiting; False if another writer holds it."""
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _sync_directory(directory: Path) -> None:
    """fsync a directory: a new file's name in it is durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
