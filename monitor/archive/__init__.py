"""The WARC archive: exchanges as WARC/1.1 records (gzip per record), written, read, verified.

records: building records; writer: the rolled, locked, synced files; reader: one
record at (file, offset); verify: streaming scan and check. Writing goes through
warcio's WARCWriter, so the files are what standard tools (warcio, pywb) expect.
"""

from monitor.archive.reader import ArchivedResponse, read_capture
from monitor.archive.records import (
    IDENTICAL_PAYLOAD,
    SERVER_NOT_MODIFIED,
    SOFTWARE,
    PreviousCapture,
    Provenance,
    exchange_records,
    payload_digest,
    revisit_profile,
)
from monitor.archive.verify import Problem, iter_file_records, verify_archive, whole_end
from monitor.archive.writer import DEFAULT_MAX_BYTES, CycleWriter, WarcWriter, default_writer_id

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IDENTICAL_PAYLOAD",
    "SERVER_NOT_MODIFIED",
    "SOFTWARE",
    "ArchivedResponse",
    "CycleWriter",
    "PreviousCapture",
    "Problem",
    "Provenance",
    "WarcWriter",
    "default_writer_id",
    "exchange_records",
    "iter_file_records",
    "payload_digest",
    "read_capture",
    "revisit_profile",
    "verify_archive",
    "whole_end",
]
