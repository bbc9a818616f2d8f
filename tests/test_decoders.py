"""Content-Encoding undone, streamed or whole: gzip (every member), deflate, br, identity, stacked.

Both paths (fetch's streaming decoder and decode_payload on an archived body) use
monitor/decoders.py; the corpus tests check they give the very same bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import zlib

import brotli
import pytest
from servers import FaultServer, Respond, brotli_bomb, gzip_bomb, gzip_bytes, truncated_gzip

from monitor.config import MonitorSettings
from monitor.decoders import DecodeError, content_codings, decode_payload, decoder_for
from monitor.errors import MonitorError
from monitor.fetch import Target, fetch_target, make_client
from monitor.models import FetchResult

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


# --- one corpus, both paths: streaming (fetch) and whole-body (decode_payload) ------------

LIMIT = 100_000
BIG = b"<html><body>" + b"".join(b"<li>entry %d</li>" % n for n in range(2000)) + b"</body></html>"


def gzip_members(data: bytes, *cuts: int) -> bytes:
    """data gzip-compressed as several members, split at `cuts` (RFC 1952 allows it)."""
    bounds = [0, *cuts, len(data)]
    return b"".join(gzip_bytes(data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))


CORPUS = [
    pytest.param("gzip", gzip_bytes(BIG), BIG, None, id="gzip"),
    pytest.param("gzip", gzip_members(BIG, 100), BIG, None, id="gzip-2-members"),
    pytest.param("gzip", gzip_members(BIG, 1, 5000, 9000), BIG, None, id="gzip-4-members"),
    pytest.param("gzip", gzip_bytes(BIG) + b"\0\0junk", BIG, None, id="gzip-trailing-garbage"),
    pytest.param("deflate", raw_deflate(BIG), BIG, None, id="deflate-raw"),
    pytest.param("deflate", zlib.compress(BIG), BIG, None, id="deflate-zlib"),
    pytest.param("br", brotli.compress(BIG), BIG, None, id="br"),
    pytest.param("gzip, br", brotli.compress(gzip_bytes(BIG)), BIG, None, id="gzip-then-br"),
    pytest.param("identity", BIG, BIG, None, id="identity"),
    pytest.param(None, BIG, BIG, None, id="no-header"),
    pytest.param("gzip", truncated_gzip(BIG, 40), None, "truncated gzip body", id="truncated-gzip"),
    pytest.param(
        "gzip",
        gzip_bomb(20 << 20),
        None,
        f"body larger than max_bytes ({LIMIT} bytes) once decoded (gzip)",
        id="gzip-bomb",
    ),
    pytest.param(
        "br",
        brotli_bomb(20 << 20),
        None,
        f"body larger than max_bytes ({LIMIT} bytes) once decoded (br)",
        id="br-bomb",
    ),
]


def headers_for(coding: str | None) -> list[tuple[str, str]]:
    return [("Content-Encoding", coding)] if coding is not None else []


def fetch_body(srv: FaultServer, coding: str | None, raw: bytes) -> FetchResult:
    """raw served with Content-Encoding `coding` by a real server, fetched as a check would."""
    srv.set("/page", Respond(200, raw, headers_for(coding)))
    settings = MonitorSettings(timeout_s=5.0, retries=0, max_bytes=LIMIT)

    async def run() -> FetchResult:
        async with make_client(settings) as client:
            return await fetch_target(client, Target(srv.url("/page"), "corpus"), settings)

    return asyncio.run(run())


def stream(coding: str | None, raw: bytes, chunk: int) -> bytes:
    """raw fed to the streaming decoder `chunk` bytes at a time, as the network would."""
    decoder = decoder_for(coding or "", LIMIT)
    return b"".join(decoder.decode(raw[i : i + chunk]) for i in range(0, len(raw), chunk))


@pytest.mark.parametrize(("coding", "raw", "expected", "error"), CORPUS)
def test_fetch_and_decode_payload_give_identical_bytes(
    coding: str | None, raw: bytes, expected: bytes | None, error: str | None
) -> None:
    """A body decodes to the same bytes fetched live and read back from the archive."""
    with FaultServer() as srv:
        result = fetch_body(srv, coding, raw)
    (exchange,) = result.exchanges
    assert exchange.raw_body == raw  # what the archive keeps, decoded later by decode_payload
    archived = exchange.response_headers

    if expected is not None:
        assert result.error is None
        assert result.body == decode_payload(archived, raw, LIMIT) == expected
    elif "truncated" in error:
        # live, a cut body is refused; from the archive it shows as far as it goes
        assert result.error == f"{result.url}: {error}"
        partial = decode_payload(archived, raw, LIMIT)
        assert 0 < len(partial) < len(BIG) and BIG.startswith(partial)
    else:
        assert result.error == f"{result.url}: {error}"
        with pytest.raises(DecodeError) as caught:
            decode_payload(archived, raw, LIMIT)
        assert str(caught.value) == error


@pytest.mark.parametrize(("coding", "raw", "expected", "error"), CORPUS)
@pytest.mark.parametrize("chunk", [1, 7, 4096], ids=["1-byte", "7-bytes", "4k"])
def test_chunk_boundaries_never_change_the_bytes(
    coding: str | None, raw: bytes, expected: bytes | None, error: str | None, chunk: int
) -> None:
    """However the network splits a body (even inside a gzip member's magic), it decodes alike."""
    if expected is None and "truncated" not in (error or ""):
        with pytest.raises(DecodeError, match="max_bytes"):
            stream(coding, raw, chunk)
        return
    assert stream(coding, raw, chunk) == decode_payload(headers_for(coding), raw, LIMIT)
