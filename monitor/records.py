"""Reading the record back: an archived body for `show`, and `verify` of everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msgspec import Struct, field

from monitor.archive import Problem, read_capture, verify_archive
from monitor.decoders import DecodeError, decode_payload
from monitor.errors import MonitorError
from monitor.store import Store

# `show` (and the web page's /captures/ID) decode what the archive holds. A body that was
# accepted decoded to at most max_bytes (10 MB unless configured higher), but a compression
# bomb from a hostile page is archived too (refused, as a page-error): decoding it must not
# take gigabytes of memory per request. Past this, only `show --raw` prints a body.
SHOW_MAX_BYTES = 100 << 20


def archived_body(
    store: Store, warc_dir: Path, capture_id: int, *, decoded: bool, max_bytes: int = SHOW_MAX_BYTES
) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of a capture; a revisit yields its original's body.

    Decoding stops past `max_bytes` (DecodeError): a body is untrusted, and its coding may
    be a bomb or broken as the server sent it.
    """
    capture = store.capture(capture_id)
    if capture is None:
        raise MonitorError(
            f"no capture #{capture_id} in {store.location} (see `monitor snapshots`)"
        )
    if capture.warc_file is None or capture.warc_offset is None:
        raise MonitorError(f"capture #{capture_id} has no archived response: {capture.error}")
    record = read_capture(warc_dir, capture.warc_file, capture.warc_offset)
    status_line = f"HTTP/1.1 {record.status} {record.reason}".rstrip()
    headers = list(record.headers)
    body_record = record
    if record.record_type == "revisit":
        original = (
            store.capture(capture.original_capture_id) if capture.original_capture_id else None
        )
        if original is None or original.warc_file is None or original.warc_offset is None:
            raise MonitorError(f"capture #{capture_id} is a revisit whose original is not recorded")
        body_record = read_capture(warc_dir, original.warc_file, original.warc_offset)
    body = body_record.raw_payload
    if decoded:
        try:
            body = decode_payload(body_record.headers, body, max_bytes)
        except DecodeError as error:
            raise DecodeError(
                f"capture #{capture_id}: {error}; `monitor show --raw {capture_id}` prints "
                "the body as archived"
            ) from error
    return status_line, headers, body


class VerifyReport(Struct):
    problems: list[Problem] = field(default_factory=list)
    captures: int = 0
    warc_files: int = 0
    entries: int = 0
    events: int = 0

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def summary(self) -> str:
        errors = sum(1 for p in self.problems if p.severity == "error")
        warnings = len(self.problems) - errors
        verdict = "OK" if self.ok else "FAILED"
        return (
            f"{verdict}: {self.captures} archived captures in {self.warc_files} WARC files, "
            f"{self.entries} entries, {self.events} events checked; "
            f"{errors} errors, {warnings} warnings"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "captures": self.captures,
            "warc_files": self.warc_files,
            "entries": self.entries,
            "events": self.events,
            "problems": [{"severity": p.severity, "message": p.message} for p in self.problems],
        }


def verify_data(store: Store, warc_dir: Path) -> VerifyReport:
    """Check every WARC record the database points at, every WARC file, and the database."""
    rows = store.warc_refs()
    refs = [(r.capture_id, r.warc_file, r.offset, r.record_id) for r in rows]
    claims = {r.capture_id: (r.payload_digest, r.target_uri, r.refers_to) for r in rows}
    report = VerifyReport(
        captures=len(refs),
        warc_files=len(list(warc_dir.glob("*.warc.gz"))) if warc_dir.exists() else 0,
        entries=store.count("entries"),
        events=store.count("events"),
    )
    report.problems.extend(verify_archive(warc_dir, refs, claims=claims))
    report.problems.extend(Problem("error", message) for message in store.check_integrity())
    return report
