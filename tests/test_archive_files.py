"""The archive's files: rolled by size and UTC day, a writer each, torn tails cut, streamed."""

from __future__ import annotations

import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from monitor.archive import (
    IDENTICAL_PAYLOAD,
    WarcWriter,
    iter_file_records,
    read_capture,
    verify_archive,
)
from monitor.models import HttpExchange

T0 = datetime(2026, 11, 25, 23, 59, 0, tzinfo=UTC)
URL = "http://127.0.0.1/page"


def exchange(body: bytes, url: str = URL, at: datetime = T0) -> HttpExchange:
    return HttpExchange("GET", url, (("Host", "127.0.0.1"),), "HTTP/1.1", 200, "OK",
                        (("Content-Type", "text/html"),), body, at)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def warcio_types(path: Path) -> list[str]:
    with open(path, "rb") as stream:
        return [record.rec_type for record in ArchiveIterator(stream)]


def test_cycles_of_one_writer_append_to_one_file(tmp_path: Path) -> None:
    """Successive cycles of one writer on one day share a file, readable after each cycle."""
    for cycle in range(3):
        with WarcWriter(tmp_path, writer_id="w1", clock=Clock(T0)) as writer:
            ref = writer.write_exchange(exchange(f"body {cycle}".encode()), None)
        assert warcio_types(tmp_path / ref.warc_file)[-2:] == ["response", "request"]
    assert [p.name for p in tmp_path.iterdir()] == ["monitor-20261125-w1-0001.warc.gz"]
    assert warcio_types(tmp_path / ref.warc_file) == ["warcinfo"] + ["response", "request"] * 3


def test_files_roll_by_utc_day(tmp_path: Path) -> None:
    """A write after midnight UTC goes to a new file named for the new day."""
    clock = Clock(T0)
    with WarcWriter(tmp_path, writer_id="w1", clock=clock) as writer:
        before = writer.write_exchange(exchange(b"late"), None)
        clock.now = T0 + timedelta(minutes=2)
        after = writer.write_exchange(exchange(b"early"), None)
    assert (before.warc_file, after.warc_file) == (
        "monitor-20261125-w1-0001.warc.gz", "monitor-20261126-w1-0001.warc.gz"
    )
    assert writer.files == [before.warc_file, after.warc_file]
    for name in writer.files:
        assert warcio_types(tmp_path / name) == ["warcinfo", "response", "request"]


def test_files_roll_by_size(tmp_path: Path) -> None:
    """A file is rolled before an exchange would take it past max_bytes; none exceeds it."""
    max_bytes = 12_000
    refs = []
    for _ in range(3):  # across cycles too: a reopened full file is left for the next one
        with WarcWriter(tmp_path, writer_id="w1", max_bytes=max_bytes, clock=Clock(T0)) as w:
            refs += [w.write_exchange(exchange(os.urandom(2500)), None) for _ in range(4)]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) >= 3 and names[0] == "monitor-20261125-w1-0001.warc.gz"
    assert all((tmp_path / n).stat().st_size <= max_bytes for n in names)
    assert names == sorted({r.warc_file for r in refs})
    pointed = [(i, r.warc_file, r.offset, r.record_id) for i, r in enumerate(refs)]
    assert verify_archive(tmp_path, pointed) == []


def test_an_exchange_larger_than_max_bytes_gets_a_file_of_its_own(tmp_path: Path) -> None:
    """An exchange bigger than max_bytes is still written whole, alone after the warcinfo."""
    with WarcWriter(tmp_path, writer_id="w1", max_bytes=1000, clock=Clock(T0)) as writer:
        small = writer.write_exchange(exchange(b"small"), None)
        big = writer.write_exchange(exchange(os.urandom(5000)), None)
        after = writer.write_exchange(exchange(b"after"), None)
    assert len({small.warc_file, big.warc_file, after.warc_file}) == 3
    assert read_capture(tmp_path, big.warc_file, big.offset).status == 200


def test_two_writers_never_share_a_file(tmp_path: Path) -> None:
    """Two writers open at once (same writer id, one directory) each get a file of their own."""
    clock = Clock(T0)
    with WarcWriter(tmp_path, writer_id="host", clock=clock) as one, \
            WarcWriter(tmp_path, writer_id="host", clock=clock) as two:
        refs = []
        for i in range(3):
            refs.append(one.write_exchange(exchange(b"one %d" % i), None))
            refs.append(two.write_exchange(exchange(b"two %d" % i), None))
    assert one.files == ["monitor-20261125-host-0001.warc.gz"]
    assert two.files == ["monitor-20261125-host-0002.warc.gz"]
    for name in one.files + two.files:
        assert warcio_types(tmp_path / name) == ["warcinfo"] + ["response", "request"] * 3
    pointed = [(i, r.warc_file, r.offset, r.record_id) for i, r in enumerate(refs)]
    assert verify_archive(tmp_path, pointed) == []


def test_writers_of_other_hosts_write_other_files(tmp_path: Path) -> None:
    """The writer id is in the file name: cluster workers never append to each other's files."""
    with WarcWriter(tmp_path, writer_id="worker-a", clock=Clock(T0)) as a:
        a.write_exchange(exchange(b"a"), None)
    with WarcWriter(tmp_path, writer_id="worker", clock=Clock(T0)) as b:
        b.write_exchange(exchange(b"b"), None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "monitor-20261125-worker-0001.warc.gz", "monitor-20261125-worker-a-0001.warc.gz"
    ]


def test_a_torn_tail_is_cut_at_the_next_open(tmp_path: Path) -> None:
    """Garbage or half a record after the last whole one is cut off when the file is reopened."""
    with WarcWriter(tmp_path, writer_id="w1", clock=Clock(T0)) as writer:
        kept = writer.write_exchange(exchange(b"kept"), None)
        torn = writer.write_exchange(exchange(os.urandom(4000)), None)
    path = tmp_path / kept.warc_file
    with open(path, "r+b") as fh:
        fh.truncate(torn.offset + 100)
    with WarcWriter(tmp_path, writer_id="w1", clock=Clock(T0)) as writer:
        later = writer.write_exchange(exchange(b"later"), None)
    assert later.offset == torn.offset
    assert warcio_types(path) == ["warcinfo", "response", "request", "response", "request"]
    pointed = [(1, path.name, kept.offset, kept.record_id), (2, path.name, later.offset,
                                                             later.record_id)]
    assert verify_archive(tmp_path, pointed) == []


def test_verify_streams_a_file_larger_than_its_read_buffer(tmp_path: Path) -> None:
    """verify reads a big file a chunk at a time: memory stays far below the file's size."""
    body = os.urandom(100_000)
    with WarcWriter(tmp_path, writer_id="w1", clock=Clock(T0)) as writer:
        refs = [writer.write_exchange(exchange(body + bytes([i])), None) for i in range(150)]
    path = tmp_path / refs[0].warc_file
    data = bytearray(path.read_bytes())
    size = len(data)
    middle = refs[75]
    data[middle.offset + middle.length // 2] ^= 0xFF  # damage mid-file: resync reads on
    path.write_bytes(bytes(data[: size - 1000]))  # and a torn tail
    del data
    pointed = [(i, r.warc_file, r.offset, r.record_id) for i, r in enumerate(refs)]
    tracemalloc.start()
    try:
        problems = verify_archive(tmp_path, pointed, read_size=16 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 15_000_000
    # a few times one 100 kB record (warcio's parser copies it), never near the file's size
    assert peak < 5_000_000, f"verify held {peak} bytes of a {size}-byte file"
    messages = [p.message for p in problems]
    assert any(m.startswith("capture 75:") for m in messages)
    assert any(m.startswith("capture 149:") for m in messages)  # the torn last record
    assert not any(m.startswith(("capture 0:", "capture 76:")) for m in messages)
    # all but the damaged response and the torn last exchange (its request and response)
    assert len(list(iter_file_records(path, read_size=4096))) == 1 + 2 * 150 - 3


def test_backfilled_memento_keeps_its_provenance(tmp_path: Path) -> None:
    """A memento is recorded under the page's URL at the capture's time, naming its source."""
    memento = "http://127.0.0.1/web/20200101120000id_/https://www.imls.gov/page"
    captured = datetime(2020, 1, 1, 12, 0, 0, tzinfo=UTC)
    fetched = exchange(b"<html>then</html>", url=memento)
    with WarcWriter(tmp_path, writer_id="w1", clock=Clock(T0)) as writer:
        ref = writer.write_exchange(fetched, None, target_uri="https://www.imls.gov/page",
                                    date=captured, source_uri=memento)
    with open(tmp_path / ref.warc_file, "rb") as stream:
        records = {r.rec_type: (r.rec_headers, r.content_stream().read())
                   for r in ArchiveIterator(stream) if r.rec_type != "warcinfo"}
    headers, body = records["response"]
    assert headers.get_header("WARC-Target-URI") == "https://www.imls.gov/page"
    assert headers.get_header("WARC-Date") == "2020-01-01T12:00:00Z"
    assert headers.get_header("WARC-Source-URI") == memento
    assert body == b"<html>then</html>"
    request_headers, _ = records["request"]
    assert request_headers.get_header("WARC-Target-URI") == "https://www.imls.gov/page"
    assert read_capture(tmp_path, ref.warc_file, ref.offset).target_uri == (
        "https://www.imls.gov/page"
    )


def test_identical_body_stays_an_identical_payload_revisit(tmp_path: Path) -> None:
    """A 200 with the same body as the last response is a revisit with its HTTP headers."""
    from monitor.archive import PreviousCapture

    with WarcWriter(tmp_path, writer_id="w1", clock=Clock(T0)) as writer:
        first = writer.write_exchange(exchange(b"same"), None)
        previous = PreviousCapture(first.record_id, URL, "2026-11-25T23:59:00Z",
                                   first.payload_digest or "")
        again = writer.write_exchange(exchange(b"same"), previous)
    got = read_capture(tmp_path, again.warc_file, again.offset)
    assert (got.record_type, got.profile, got.status) == ("revisit", IDENTICAL_PAYLOAD, 200)
