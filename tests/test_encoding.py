"""Content-Encoding undone on a whole body: gzip, deflate, br, identity, never past max_bytes."""

from __future__ import annotations

import gzip
import os
import zlib

import brotli
import pytest

from monitor.encoding import content_codings, decode_payload
from monitor.errors import MonitorError

PAGE = b"<html><body>" + b"<div class='views-row'>Film Forward</div>" * 40 + b"</body></html>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("identity", [], id="identity"),
        pytest.param(" GZIP ", ["gzip"], id="case-and-space"),
        pytest.param("gzip, br", ["br", "gzip"], id="last-applied-first"),
        pytest.param("deflate,,identity, x-gzip", ["x-gzip", "deflate"], id="blanks-dropped"),
    ],
)
def test_content_codings(value: str, expected: list[str]) -> None:
    """A Content-Encoding value lists the codings to undo, the last applied first."""
    assert content_codings(value) == expected


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        pytest.param(None, lambda b: b, id="no-header"),
        pytest.param("identity", lambda b: b, id="identity"),
        pytest.param("gzip", lambda b: gzip.compress(b), id="gzip"),
        pytest.param("x-gzip", lambda b: gzip.compress(b), id="x-gzip"),
        pytest.param("GZIP", lambda b: gzip.compress(b), id="upper-case"),
        pytest.param("deflate", zlib.compress, id="deflate-zlib"),
        pytest.param("deflate", raw_deflate, id="deflate-raw"),
        pytest.param("br", brotli.compress, id="br"),
        pytest.param("gzip, br", lambda b: brotli.compress(gzip.compress(b)), id="gzip-then-br"),
        pytest.param("gzip", lambda b: gzip.compress(b[:9]) + gzip.compress(b[9:]), id="2-members"),
    ],
)
def test_decode_payload(encoding, encode) -> None:
    """decode_payload undoes the Content-Encoding the server applied."""
    headers = [("Content-Type", "text/html")]
    if encoding:
        headers.append(("Content-Encoding", encoding))
    assert decode_payload(headers, encode(PAGE), max_bytes=len(PAGE)) == PAGE


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: ("gzip", gzip.compress(b)), id="gzip"),
        pytest.param(lambda b: ("br", brotli.compress(b, quality=5)), id="br"),
        pytest.param(lambda b: ("deflate", zlib.compress(b)), id="deflate"),
        pytest.param(lambda b: ("identity", b), id="identity"),
    ],
)
def test_decode_payload_stops_at_max_bytes(encode) -> None:
    """A body that decodes past max_bytes is refused, without inflating it all (no zip bomb)."""
    coding, raw = encode(b"\0" * 20_000_000)
    with pytest.raises(MonitorError, match="max_bytes"):
        decode_payload([("Content-Encoding", coding)], raw, max_bytes=1000)
    _, exact = encode(b"\0" * 1000)
    assert decode_payload([("Content-Encoding", coding)], exact, max_bytes=1000) == b"\0" * 1000


def test_decode_payload_of_a_cut_body_gives_what_it_holds() -> None:
    """A truncated gzip body decodes to its beginning rather than failing."""
    raw = gzip.compress(os.urandom(20_000))
    decoded = decode_payload([("Content-Encoding", "gzip")], raw[: len(raw) // 2], 10**6)
    assert 0 < len(decoded) < 20_000


@pytest.mark.parametrize(
    ("coding", "raw", "expected"),
    [
        pytest.param("compress", b"x", "Content-Encoding 'compress'", id="unknown"),
        pytest.param("gzip", b"\x1f\x8b\x08garbage" * 4, "gzip", id="corrupt-gzip"),
        pytest.param("br", b"\xff\xff\xff\xff" * 4, "br", id="corrupt-br"),
    ],
)
def test_decode_payload_failure_is_a_monitor_error(coding, raw, expected) -> None:
    """An encoding we cannot undo is a MonitorError that names it."""
    with pytest.raises(MonitorError, match=expected):
        decode_payload([("Content-Encoding", coding)], raw, 10**6)


def test_decode_payload_reads_repeated_headers_as_one_list() -> None:
    """Two Content-Encoding headers are undone as one list, the later header's coding first."""
    headers = [("Content-Encoding", "gzip"), ("content-encoding", "br")]
    assert decode_payload(headers, brotli.compress(gzip.compress(PAGE)), 10**6) == PAGE
