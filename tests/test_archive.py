"""The archive stage: exchanges written as WARC/1.1, read back by warcio itself, verified."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tempfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace
from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker
from warcio.recordbuilder import RecordBuilder

from monitor.archive import (
    IDENTICAL_PAYLOAD,
    SERVER_NOT_MODIFIED,
    CycleWriter,
    PreviousCapture,
    Problem,
    default_writer_id,
    iter_file_records,
    payload_digest,
    read_capture,
    verify_archive,
)
from monitor.errors import StoreError
from monitor.models import CaptureRef, HttpExchange, format_time

T0 = datetime(2026, 11, 25, 16, 37, 45, 123456, tzinfo=UTC)
URL = "https://www.imls.gov/issues/national-initiatives?page=1"
PAGE = b"<html><body>" + b"<div class='views-row'>Film Forward</div>" * 40 + b"</body></html>"


def exchange(
    body: bytes = PAGE,
    *,
    url: str = URL,
    status: int = 200,
    reason: str = "OK",
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/html; charset=utf-8"),),
    truncated: str | None = None,
) -> HttpExchange:
    return HttpExchange(
        method="GET",
        url=url,
        request_headers=(("Host", "www.imls.gov"), ("User-Agent", "monitor/test")),
        http_version="HTTP/1.1",
        status=status,
        reason=reason,
        response_headers=headers,
        raw_body=body,
        started_at=T0,
        truncated=truncated,
    )


def gzipped(body: bytes = PAGE) -> HttpExchange:
    raw = gzip.compress(body, mtime=0)
    headers = (("Content-Type", "text/html"), ("Content-Encoding", "gzip"))
    return exchange(raw, headers=(*headers, ("Content-Length", str(len(raw)))))


def previous_of(ref: CaptureRef, url: str = URL) -> PreviousCapture:
    assert ref.payload_digest is not None
    return PreviousCapture(ref.record_id, url, format_time(T0), ref.payload_digest)


def write(warc_dir: Path, *items: tuple[HttpExchange, PreviousCapture | None], cycle: str = "c1"):
    # each cycle its own writer id, so its own file (one writer's cycles share a file)
    with CycleWriter(warc_dir, cycle, T0, writer_id=cycle) as writer:
        refs = [writer.write_exchange(ex, prev) for ex, prev in items]
    return refs


def warcio_records(path: Path) -> list[SimpleNamespace]:
    """Every record of a file as warcio's own iterator reads it (independent of our reader)."""
    records = []
    with open(path, "rb") as fh:
        iterator = ArchiveIterator(fh)
        for record in iterator:
            payload = record.raw_stream.read()
            records.append(
                SimpleNamespace(
                    type=record.rec_type,
                    version=record.rec_headers.protocol,
                    headers=dict(record.rec_headers.headers),
                    http=record.http_headers,
                    payload=payload,
                    offset=iterator.get_record_offset(),
                    length=iterator.get_record_length(),
                )
            )
    return records


def gunzip_member(path: Path, offset: int) -> tuple[bytes, int]:
    """Decompress the single gzip member at offset: (data, compressed bytes it spans)."""
    raw = path.read_bytes()[offset:]
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = inflater.decompress(raw)
    assert inflater.eof, f"no whole gzip member at offset {offset}"
    return data, len(raw) - len(inflater.unused_data)


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def refs_of(refs: list[CaptureRef]) -> list[tuple[int, str, int, str]]:
    return [(i, r.warc_file, r.offset, r.record_id) for i, r in enumerate(refs, start=1)]


# -- writing -----------------------------------------------------------------


def test_response_and_request_read_back_by_warcio(tmp_path: Path) -> None:
    """A response is archived as warcinfo + response + request WARC/1.1 records warcio reads."""
    ex = gzipped()
    (ref,) = write(tmp_path / "warc", (ex, None))
    path = tmp_path / "warc" / ref.warc_file
    records = warcio_records(path)

    assert [r.type for r in records] == ["warcinfo", "response", "request"]
    assert {r.version for r in records} == {"WARC/1.1"}
    info, response, request = records
    assert b"software: monitor/" in info.payload
    assert response.offset == ref.offset and response.length == ref.length
    assert response.headers["WARC-Record-ID"] == ref.record_id
    assert response.headers["WARC-Target-URI"] == URL
    assert response.headers["WARC-Date"] == "2026-11-25T16:37:45Z"
    assert response.payload == ex.raw_body  # still gzip: exactly what the server sent
    assert response.headers["WARC-Payload-Digest"] == sha1_b32(ex.raw_body) == ref.payload_digest
    assert response.http.get_statuscode() == "200"
    assert response.http.get_header("Content-Encoding") == "gzip"
    assert request.http.protocol == "GET"
    assert request.http.statusline == "/issues/national-initiatives?page=1 HTTP/1.1"
    assert request.http.get_header("User-Agent") == "monitor/test"
    assert request.headers["WARC-Concurrent-To"] == ref.record_id
    assert response.headers["WARC-Concurrent-To"] == request.headers["WARC-Record-ID"]


def test_block_digest_covers_http_headers_and_body(tmp_path: Path) -> None:
    """Each record's WARC-Block-Digest is the SHA-1 of its whole block, headers and body."""
    (ref,) = write(tmp_path, (gzipped(), None))
    data, _ = gunzip_member(tmp_path / ref.warc_file, ref.offset)
    head, _, rest = data.partition(b"\r\n\r\n")
    fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    block = rest[: int(fields["Content-Length"])]
    assert rest[len(block) :] == b"\r\n\r\n"
    assert fields["WARC-Block-Digest"] == sha1_b32(block)


def test_warcio_check_finds_no_digest_problem(tmp_path: Path, capsys) -> None:
    """warcio's own `check` command passes every digest of a file we wrote."""
    first, _ = write(tmp_path, (gzipped(), None), (exchange(b"other"), None))
    checker = Checker(SimpleNamespace(inputs=[str(tmp_path / first.warc_file)], verbose=False))
    assert checker.process_all() == 0
    assert capsys.readouterr().out == ""


def test_each_record_is_its_own_gzip_member(tmp_path: Path) -> None:
    """The file is a chain of gzip members, one per record, so any record can be read by seeking."""
    refs = write(tmp_path, (gzipped(), None), (exchange(b"second body"), None))
    path = tmp_path / refs[0].warc_file
    size, offset, starts = path.stat().st_size, 0, []
    while offset < size:
        data, length = gunzip_member(path, offset)
        assert data.startswith(b"WARC/1.1\r\n") and data.endswith(b"\r\n\r\n")
        assert data.count(b"\r\nWARC-Type: ") == 1
        starts.append(offset)
        offset += length
    assert len(starts) == 5  # warcinfo, then response + request twice
    for ref in refs:
        assert ref.offset in starts
        assert gunzip_member(path, ref.offset)[1] == ref.length


def test_file_is_named_for_day_and_writer_and_opened_on_first_write(tmp_path: Path) -> None:
    """No file until something is written; then monitor-DAY-WRITER-0001.warc.gz, dirs made."""
    warc_dir = tmp_path / "data" / "warc"
    name = f"monitor-20261125-{default_writer_id()}-0001.warc.gz"
    with CycleWriter(warc_dir, "9f3a", T0) as writer:
        assert writer.path is None and not warc_dir.exists()
        writer.write_exchange(exchange(), None)
        assert writer.path == warc_dir / name
    with CycleWriter(warc_dir, "empty", T0) as idle:
        pass
    assert idle.path is None
    assert sorted(p.name for p in warc_dir.iterdir()) == [name]


def test_dechunked_body_is_stored_without_transfer_encoding(tmp_path: Path) -> None:
    """A chunked answer is stored de-chunked with a Content-Length, so readers can decode it."""
    raw = gzip.compress(PAGE, mtime=0)
    headers = (("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip"))
    (ref,) = write(tmp_path, (exchange(raw, headers=headers), None))
    with open(tmp_path / ref.warc_file, "rb") as fh:
        fh.seek(ref.offset)
        record = next(ArchiveIterator(fh))
        assert record.http_headers.get_header("Transfer-Encoding") is None
        assert record.http_headers.get_header("Content-Length") == str(len(raw))
        assert record.http_headers.get_header("Content-Encoding") == "gzip"
        assert record.content_stream().read() == PAGE  # warcio undoes the gzip itself


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        pytest.param(lambda: gzipped(), "revisit", id="identical-payload"),
        pytest.param(lambda: gzipped(PAGE + b"<!-- new -->"), "response", id="changed-payload"),
        pytest.param(
            lambda: replace(gzipped(), url=URL + "&x"), "response", id="same-payload-other-url"
        ),
        pytest.param(
            lambda: replace(gzipped(), status=404, reason="Not Found"), "response", id="same-404"
        ),
        pytest.param(
            lambda: replace(gzipped(), truncated="length"), "response", id="same-but-truncated"
        ),
    ],
)
def test_revisit_only_for_identical_payload_of_same_url(tmp_path: Path, second, expected) -> None:
    """An unchanged body of the same URL costs a revisit record; anything else a full response."""
    (first,) = write(tmp_path, (gzipped(), None), cycle="one")
    ex = second()
    (ref,) = write(tmp_path, (ex, previous_of(first)), cycle="two")
    records = warcio_records(tmp_path / ref.warc_file)
    assert [r.type for r in records] == ["warcinfo", expected, "request"]
    assert ref.record_type == expected
    record = records[1]
    if expected == "revisit":
        assert record.headers["WARC-Profile"] == IDENTICAL_PAYLOAD
        assert record.headers["WARC-Refers-To"] == first.record_id == ref.refers_to
        assert record.headers["WARC-Refers-To-Target-URI"] == URL
        assert record.headers["WARC-Refers-To-Date"] == "2026-11-25T16:37:45Z"
        assert record.headers["WARC-Payload-Digest"] == first.payload_digest
        assert record.payload == b""  # only the HTTP headers: an unchanged page costs its headers
        assert int(record.headers["Content-Length"]) < 200
    else:
        assert record.payload == ex.raw_body
        assert ref.refers_to is None


def test_not_modified_is_a_server_not_modified_revisit(tmp_path: Path) -> None:
    """A 304 is a server-not-modified revisit of the old body; its headers sit in a metadata record.

    The revisit's block is empty so that pywb serves the body it refers to with that
    body's headers (a 304 status line there would replay as an empty 304).
    """
    (first,) = write(tmp_path, (gzipped(), None), cycle="one")
    answer = exchange(b"", status=304, reason="Not Modified", headers=(("ETag", '"v1"'),))
    (ref,) = write(tmp_path, (answer, previous_of(first)), cycle="two")

    assert (ref.record_type, ref.refers_to) == ("revisit", first.record_id)
    assert ref.payload_digest == first.payload_digest
    records = warcio_records(tmp_path / ref.warc_file)
    assert [r.type for r in records] == ["warcinfo", "revisit", "metadata", "request"]
    record, metadata = records[1], records[2]
    assert record.headers["WARC-Profile"] == SERVER_NOT_MODIFIED
    assert record.headers["WARC-Refers-To"] == first.record_id
    assert record.headers["WARC-Refers-To-Target-URI"] == URL
    assert record.headers["WARC-Refers-To-Date"] == "2026-11-25T16:37:45Z"
    assert record.http is None and record.headers["Content-Length"] == "0"
    assert metadata.headers["WARC-Refers-To"] == ref.record_id
    assert metadata.headers["Content-Type"] == "application/warc-fields"
    assert b"http-status: 304 Not Modified\r\n" in metadata.payload
    assert b'http-header: ETag: "v1"\r\n' in metadata.payload
    got = read_capture(tmp_path, ref.warc_file, ref.offset)
    assert (got.status, got.reason, got.headers) == (304, "Not Modified", (("ETag", '"v1"'),))


def test_not_modified_without_previous_is_a_plain_response(tmp_path: Path) -> None:
    """A 304 with nothing archived to refer to is kept as an ordinary response record."""
    answer = exchange(b"", status=304, reason="Not Modified")
    (ref,) = write(tmp_path, (answer, None))
    assert ref.record_type == "response" and ref.refers_to is None
    assert read_capture(tmp_path, ref.warc_file, ref.offset).status == 304


def test_truncated_body_is_flagged(tmp_path: Path) -> None:
    """A body cut short carries WARC-Truncated and keeps the length the server announced."""
    headers = (("Content-Type", "text/html"), ("Content-Length", "99999"))
    (ref,) = write(tmp_path, (exchange(PAGE[:100], headers=headers, truncated="length"), None))
    record = warcio_records(tmp_path / ref.warc_file)[1]
    assert record.headers["WARC-Truncated"] == "length"
    assert record.payload == PAGE[:100]
    assert record.http.get_header("Content-Length") == "99999"
    assert read_capture(tmp_path, ref.warc_file, ref.offset).truncated == "length"


def test_payload_digest_is_the_one_warcio_computes() -> None:
    """payload_digest() gives what warcio writes as WARC-Payload-Digest for the same body."""
    raw = gzip.compress(PAGE, mtime=0)
    message = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + raw
    record = RecordBuilder(warc_version="1.1").create_warc_record(
        URL, "response", payload=io.BytesIO(message), length=len(message)
    )
    assert payload_digest(raw) == record.rec_headers.get_header("WARC-Payload-Digest")


def test_writing_into_an_unusable_directory_names_the_path(tmp_path: Path) -> None:
    """A WARC directory that cannot be created is a StoreError naming it, not an OSError."""
    blocker = tmp_path / "warc"
    blocker.write_text("not a directory")
    with CycleWriter(blocker, "c1", T0) as writer, pytest.raises(StoreError, match="warc"):
        writer.write_exchange(exchange(), None)


def test_writing_after_close_is_refused(tmp_path: Path) -> None:
    """A closed cycle's writer refuses more records instead of reopening its file."""
    writer = CycleWriter(tmp_path, "c1", T0)
    writer.write_exchange(exchange(), None)
    writer.close()
    writer.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        writer.write_exchange(exchange(), None)
    assert writer.path is not None
    assert [k for _, k, _ in iter_file_records(writer.path)] == [
        "warcinfo",
        "response",
        "request",
    ]


# -- reading -----------------------------------------------------------------


def test_read_capture_round_trip(tmp_path: Path) -> None:
    """read_capture gives back each response and revisit exactly as written."""
    first_ex = gzipped()
    (first,) = write(tmp_path, (first_ex, None), cycle="one")
    second_ex = exchange(b"plain", headers=(("Content-Type", "text/plain"),))
    not_modified = exchange(b"", status=304, reason="Not Modified", headers=(("ETag", "x"),))
    refs = write(
        tmp_path,
        (first_ex, previous_of(first)),
        (second_ex, None),
        (not_modified, previous_of(first)),
        cycle="two",
    )

    got = read_capture(tmp_path, first.warc_file, first.offset)
    assert (got.record_type, got.record_id, got.target_uri) == ("response", first.record_id, URL)
    assert (got.status, got.reason, got.date) == (200, "OK", "2026-11-25T16:37:45Z")
    assert got.raw_payload == first_ex.raw_body
    assert got.headers == first_ex.response_headers
    assert (got.refers_to, got.truncated, got.profile) == (None, None, None)

    same, plain, unmodified = (read_capture(tmp_path, r.warc_file, r.offset) for r in refs)
    assert (same.record_type, same.profile, same.refers_to) == (
        "revisit",
        IDENTICAL_PAYLOAD,
        first.record_id,
    )
    assert same.raw_payload == b"" and same.headers == first_ex.response_headers
    assert plain.raw_payload == b"plain" and plain.record_id == refs[1].record_id
    assert (unmodified.status, unmodified.profile) == (304, SERVER_NOT_MODIFIED)


@settings(max_examples=25, deadline=None)
@given(body=st.binary(max_size=3000), status=st.sampled_from([200, 404, 500]))
def test_any_body_round_trips_byte_for_byte(body: bytes, status: int) -> None:
    """Whatever bytes a server sends come back from the archive unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        (ref,) = write(Path(tmp), (exchange(body, status=status), None))
        got = read_capture(Path(tmp), ref.warc_file, ref.offset)
        assert (got.raw_payload, got.status) == (body, status)
        assert ref.payload_digest == payload_digest(body)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        pytest.param(lambda ref: (ref.warc_file, ref.offset + 3), "offset", id="inside-a-record"),
        pytest.param(lambda ref: (ref.warc_file, 10**6), "end of file", id="past-the-end"),
        pytest.param(lambda ref: (ref.warc_file, 0), "warcinfo", id="not-a-response"),
        pytest.param(lambda ref: ("monitor-missing.warc.gz", 0), "cannot read", id="no-file"),
    ],
)
def test_read_capture_failure_names_file_and_offset(tmp_path: Path, where, expected) -> None:
    """A capture that cannot be read is a StoreError naming the file and the offset."""
    (ref,) = write(tmp_path, (exchange(), None))
    name, offset = where(ref)
    with pytest.raises(StoreError, match=expected) as caught:
        read_capture(tmp_path, name, offset)
    assert name in str(caught.value) and f"offset {offset}" in str(caught.value)


def test_iter_file_records_lists_every_record(tmp_path: Path) -> None:
    """iter_file_records gives each record's offset, type and id, in file order."""
    refs = write(tmp_path, (exchange(), None), (exchange(b"x"), None))
    listed = list(iter_file_records(tmp_path / refs[0].warc_file))
    assert [kind for _, kind, _ in listed] == [
        "warcinfo",
        "response",
        "request",
        "response",
        "request",
    ]
    assert [(o, i) for o, k, i in listed if k == "response"] == [
        (r.offset, r.record_id) for r in refs
    ]


# -- verifying ---------------------------------------------------------------


def test_verify_clean_archive(tmp_path: Path) -> None:
    """A sound archive over several cycles, revisits included, verifies with no problem."""
    (first,) = write(tmp_path, (gzipped(), None), cycle="one")
    more = write(
        tmp_path,
        (gzipped(), previous_of(first)),
        (exchange(b"", status=304, reason="Not Modified"), previous_of(first)),
        (exchange(b"gone", status=404, reason="Not Found"), None),
        cycle="two",
    )
    assert verify_archive(tmp_path, refs_of([first, *more])) == []


def flip_compressed_byte(path: Path, ref: CaptureRef) -> None:
    data = bytearray(path.read_bytes())
    data[ref.offset + ref.length // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def alter_payload_keep_gzip_valid(path: Path, ref: CaptureRef) -> None:
    """Change one payload byte and recompress: gzip is sound, only the digests can tell."""
    data, length = gunzip_member(path, ref.offset)
    altered = data.replace(b"Film Forward", b"Film Backward", 1)
    raw = path.read_bytes()
    path.write_bytes(raw[: ref.offset] + gzip.compress(altered) + raw[ref.offset + length :])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        pytest.param(flip_compressed_byte, "gzip", id="flipped-compressed-byte"),
        pytest.param(alter_payload_keep_gzip_valid, "Digest", id="altered-payload"),
    ],
)
def test_verify_reports_a_damaged_record(tmp_path: Path, damage, expected) -> None:
    """A record whose bytes changed after writing is an error naming its capture."""
    good, bad = write(tmp_path, (exchange(), None), (exchange(PAGE + b"!"), None))
    damage(tmp_path / bad.warc_file, bad)
    problems = verify_archive(tmp_path, refs_of([good, bad]))
    assert problems, "damage went unnoticed"
    assert all(p.severity == "error" for p in problems)
    assert any(p.message.startswith("capture 2:") and expected in p.message for p in problems)
    assert not any(p.message.startswith("capture 1:") for p in problems)


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        pytest.param(lambda r: (r.warc_file, r.offset + 1, r.record_id), "no record", id="off-1"),
        pytest.param(
            lambda r: (r.warc_file, r.offset + r.length, r.record_id), "holds record", id="request"
        ),
        pytest.param(
            lambda r: (r.warc_file, r.offset, "<urn:uuid:0>"), "not <urn:uuid:0>", id="other-id"
        ),
        pytest.param(lambda r: ("gone.warc.gz", r.offset, r.record_id), "missing", id="no-file"),
    ],
)
def test_verify_reports_a_wrong_pointer(tmp_path: Path, pointer, expected) -> None:
    """A capture whose file, offset or record id does not match the archive is an error."""
    (ref,) = write(tmp_path, (exchange(), None))
    problems = verify_archive(tmp_path, [(7, *pointer(ref))])
    assert len(problems) == 1
    assert problems[0].severity == "error"
    assert problems[0].message.startswith("capture 7:") and expected in problems[0].message


def test_verify_reports_a_revisit_whose_original_is_gone(tmp_path: Path) -> None:
    """A revisit referring to a record that is not in the archive is an error."""
    (first,) = write(tmp_path, (gzipped(), None), cycle="one")
    (revisit,) = write(tmp_path, (gzipped(), previous_of(first)), cycle="two")
    (tmp_path / first.warc_file).unlink()
    problems = verify_archive(tmp_path, refs_of([revisit]))
    assert [p.severity for p in problems] == ["error"]
    assert "not in the archive" in problems[0].message


def test_verify_tolerates_a_file_cut_inside_its_last_record(tmp_path: Path) -> None:
    """A crash mid-write leaves a cut last record: a warning, not an error or an exception."""
    noise = os.urandom(3000)  # incompressible: the last record spans thousands of bytes
    refs = write(tmp_path, (exchange(b"a"), None), (exchange(b"b"), None), (exchange(noise), None))
    path = tmp_path / refs[0].warc_file
    last = refs[2]
    with open(path, "r+b") as fh:
        fh.truncate(last.offset + last.length - 300)  # the third response loses its end

    problems = verify_archive(tmp_path, refs_of(refs[:2]))
    assert problems == [
        Problem(
            "warning",
            f"{path.name}: incomplete record at offset {last.offset} (ignored: nothing points "
            "at it): incomplete gzip member (the file ends inside it)",
        )
    ]
    listed = list(iter_file_records(path))
    assert [o for o, k, _ in listed if k == "response"] == [refs[0].offset, refs[1].offset]
    # had the database pointed at it, it would be an error
    (problem,) = verify_archive(tmp_path, refs_of(refs))
    assert problem.severity == "error" and problem.message.startswith("capture 3:")


def test_verify_reports_damage_in_the_middle_of_a_file(tmp_path: Path) -> None:
    """Unreadable bytes before the last record are an error even when nothing points at them."""
    refs = write(tmp_path, (exchange(), None), (exchange(b"b"), None))
    path = tmp_path / refs[0].warc_file
    request_offset = refs[0].offset + refs[0].length  # the first request: no capture points here
    data = bytearray(path.read_bytes())
    data[request_offset + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = verify_archive(tmp_path, refs_of(refs))
    assert [p.severity for p in problems] == ["error"]
    assert f"offsets {request_offset}-{refs[1].offset}" in problems[0].message
