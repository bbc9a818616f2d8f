"""fetch_target against real servers on 127.0.0.1: bodies, validators, redirects, retries."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import brotli
import pytest
from servers import (
    Chunked,
    Close,
    Delay,
    Drip,
    FaultServer,
    Redirect,
    Reset,
    Respond,
    SeenRequest,
    Series,
    brotli_bomb,
    closed_url,
    gzip_bomb,
    gzip_bytes,
    truncated_gzip,
)

from monitor.config import MonitorSettings
from monitor.fetch import Target, Validators, fetch_target, make_client
from monitor.models import FetchResult
from monitor.politeness import HostLimits, RateLimiter

NOW = datetime(2026, 11, 25, 16, 37, 45, tzinfo=UTC)
PAGE_HTML = b"<html><body><div class='views-row'>Film Forward</div></body></html>"


def make_settings(**overrides: Any) -> MonitorSettings:
    values: dict[str, Any] = {"timeout_s": 2.0, "retries": 2, "max_bytes": 1_000_000}
    return MonitorSettings(**{**values, **overrides})


def fetch(url: str, validators: Validators | None = None, **overrides: Any) -> FetchResult:
    """Fetch one page the way a check cycle does: one client, fast backoff, a fixed clock."""
    settings = make_settings(**overrides)
    target = Target(url, "active", validators)

    async def run() -> FetchResult:
        async with make_client(settings) as client:
            return await fetch_target(client, target, settings, backoff_s=0.01, clock=lambda: NOW)

    return asyncio.run(run())


@pytest.fixture
def srv() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def test_ok_response_is_recorded_as_it_crossed_the_wire(srv: FaultServer) -> None:
    """A 200 gives its body, headers and one exchange holding what was sent and received."""
    headers = [("X-Zebra", "1"), ("Set-Cookie", "a=1"), ("X-Apple", "2"), ("Set-Cookie", "b=2")]
    srv.set("/page", Respond(200, PAGE_HTML, headers, etag='"v1"', last_modified="Tue, 1 Dec"))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert (result.status, result.body, result.attempts) == (200, PAGE_HTML, 1)
    assert result.final_url == result.url == srv.url("/page")
    assert (result.etag, result.last_modified) == ('"v1"', "Tue, 1 Dec")
    assert result.content_type == "text/html; charset=utf-8"
    assert result.started_at == NOW
    (exchange,) = result.exchanges
    assert (exchange.method, exchange.url, exchange.status) == ("GET", srv.url("/page"), 200)
    assert (exchange.http_version, exchange.reason) == ("HTTP/1.1", "OK")
    assert exchange.response_headers[:4] == tuple(headers)  # wire order, duplicates kept
    assert (exchange.raw_body, exchange.truncated, exchange.started_at) == (PAGE_HTML, None, NOW)
    sent = {name.lower(): value for name, value in exchange.request_headers}
    seen = srv.requests[0].headers
    for name in ("user-agent", "accept", "accept-encoding"):
        assert sent[name] == seen[name]
    assert seen["user-agent"] == MonitorSettings().user_agent
    assert seen["accept"] == "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
    assert seen["accept-encoding"] == "gzip, deflate, br"


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("gzip", gzip_bytes(PAGE_HTML)),
        ("br", brotli.compress(PAGE_HTML)),
        ("deflate", zlib.compress(PAGE_HTML)),
        ("deflate", zlib.compress(PAGE_HTML, wbits=-zlib.MAX_WBITS)),
        ("gzip, br", brotli.compress(gzip_bytes(PAGE_HTML))),
    ],
    ids=["gzip", "br", "deflate", "raw-deflate", "gzip-then-br"],
)
def test_encoded_body_is_decoded_and_archived_raw(
    srv: FaultServer, encoding: str, raw: bytes
) -> None:
    """A content-encoded body is decoded for use, while the exchange keeps the bytes as sent."""
    srv.set("/page", Respond(200, raw, {"Content-Encoding": encoding}))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert result.body == PAGE_HTML
    assert result.exchanges[0].raw_body == raw


def test_chunked_body_is_reassembled(srv: FaultServer) -> None:
    """A chunked gzip body arrives whole and decoded."""
    raw = gzip_bytes(PAGE_HTML)
    chunks = (raw[:10], raw[10:20], raw[20:])
    srv.set("/page", Chunked(chunks, {"Content-Encoding": "gzip"}))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert result.body == PAGE_HTML
    assert result.exchanges[0].raw_body == raw


LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("spec", "validators", "header", "value"),
    [
        (Respond(200, PAGE_HTML, etag='"v7"'), Validators(etag='"v7"'), "if-none-match", '"v7"'),
        (
            Respond(200, PAGE_HTML, last_modified=LAST_MODIFIED),
            Validators(last_modified=LAST_MODIFIED),
            "if-modified-since",
            LAST_MODIFIED,
        ),
    ],
    ids=["etag", "last-modified"],
)
def test_validators_round_trip_to_not_modified(
    srv: FaultServer, spec: Respond, validators: Validators, header: str, value: str
) -> None:
    """The validators of a first fetch, sent back, turn the next answer into a 304 (no error)."""
    srv.set("/page", spec)
    first = fetch(srv.url("/page"))
    assert Validators(etag=first.etag, last_modified=first.last_modified) == validators

    second = fetch(srv.url("/page"), validators)

    assert header not in srv.requests[0].headers
    assert srv.requests[1].headers[header] == value
    assert second.not_modified and second.error is None
    assert second.body is None
    assert [e.status for e in second.exchanges] == [304]


def test_changed_page_answers_200_despite_old_validators(srv: FaultServer) -> None:
    """A stale ETag gets the new body, not a 304."""
    srv.set("/page", Respond(200, PAGE_HTML, etag='"v2"'))
    result = fetch(srv.url("/page"), Validators(etag='"v1"'))

    assert (result.status, result.body, result.etag) == (200, PAGE_HTML, '"v2"')


def test_redirects_are_recorded_hop_by_hop(srv: FaultServer) -> None:
    """Each hop of a redirect chain is an exchange, in order; final_url is the last one's."""
    srv.set("/start", Redirect(srv.url("/a/one"), 301))
    srv.set("/a/one", Redirect("two", 302))  # relative to /a/
    srv.set("/a/two", Redirect("/final?x=1", 307))
    srv.set("/final", Respond(200, PAGE_HTML))
    result = fetch(srv.url("/start"))

    assert result.error is None
    assert result.body == PAGE_HTML
    assert [(e.status, e.url) for e in result.exchanges] == [
        (301, srv.url("/start")),
        (302, srv.url("/a/one")),
        (307, srv.url("/a/two")),
        (200, srv.url("/final?x=1")),
    ]
    assert result.url == srv.url("/start")
    assert result.final_url == srv.url("/final?x=1")


def test_redirect_loop_is_an_error(srv: FaultServer) -> None:
    """Two pages redirecting to each other end in a 'redirect loop' error, not retried."""
    srv.set("/a", Redirect("/b"))
    srv.set("/b", Redirect("/a"))
    result = fetch(srv.url("/a"))

    assert result.error == f"{srv.url('/a')}: redirect loop (back to {srv.url('/a')})"
    assert [e.status for e in result.exchanges] == [302, 302]
    assert result.attempts == 1
    assert srv.hits("/a") == 1


@pytest.mark.parametrize(("hops", "ok"), [(10, True), (11, False)], ids=["10-hops", "11-hops"])
def test_redirect_chain_limit(srv: FaultServer, hops: int, ok: bool) -> None:
    """Ten redirects are followed; the eleventh is 'too many redirects (11)'."""
    start = srv.chain("/r", hops, Respond(200, PAGE_HTML))
    result = fetch(start)

    assert len(result.exchanges) == hops + (1 if ok else 0)
    if ok:
        assert result.error is None
        assert result.final_url == srv.url(f"/r{hops}")
        assert result.body == PAGE_HTML
    else:
        assert result.error == f"{start}: too many redirects (11)"
        assert result.body is None


@pytest.mark.parametrize("status", [404, 410])
def test_gone_is_not_an_error(srv: FaultServer, status: int) -> None:
    """404 and 410 are results (gone), asked once, with their exchange kept."""
    srv.set("/page", Respond(status, b"no such page"))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert result.gone
    assert result.status == status
    assert result.body is None
    assert result.exchanges[0].raw_body == b"no such page"
    assert srv.hits("/page") == 1


def test_forbidden_is_an_error_without_retry(srv: FaultServer) -> None:
    """A 403 is an error at once: a 4xx other than 429 is never retried."""
    srv.set("/page", Respond(403, b"go away"))
    result = fetch(srv.url("/page"))

    assert result.error == f"{srv.url('/page')}: HTTP 403 Forbidden"
    assert (result.status, result.attempts, srv.hits("/page")) == (403, 1, 1)
    assert result.exchanges[0].raw_body == b"go away"


@pytest.mark.parametrize("status", [600, 999])
def test_a_status_past_5xx_is_an_error_without_retry(srv: FaultServer, status: int) -> None:
    """SPEC's transient statuses are 5xx and 429: a 999 (a WAF's own code) is not one."""
    srv.set("/page", Respond(status, b"odd", reason="Odd"))
    result = fetch(srv.url("/page"), retries=2)

    assert result.error == f"{srv.url('/page')}: HTTP {status} Odd"
    assert (result.attempts, srv.hits("/page")) == (1, 1)


@pytest.mark.parametrize(
    ("reason", "shown"),
    [("Bad \x01\x02\x1b[31mthing\x7f", "Bad [31mthing"), ("\x01\x02", "Forbidden")],
    ids=["controls-inside", "only-controls"],
)
def test_a_reason_phrase_reaches_the_detail_printable(srv: FaultServer, reason, shown) -> None:
    """The server's reason phrase loses its control characters in the error a person reads
    (terminal, web page, message); the archived exchange keeps it as it was received."""
    srv.set("/page", Respond(403, b"go away", reason=reason))
    result = fetch(srv.url("/page"))

    assert result.error == f"{srv.url('/page')}: HTTP 403 {shown}"
    assert result.exchanges[0].reason == reason


@pytest.mark.parametrize(
    ("status", "words"),
    [(500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable"),
     (429, "Too Many Requests")],
    ids=["500", "502", "503", "429"],
)
def test_transient_status_is_retried_then_an_error(
    srv: FaultServer, status: int, words: str
) -> None:
    """5xx and 429 are asked 1 + retries times, then reported with the retry count."""
    srv.set("/page", Respond(status))
    result = fetch(srv.url("/page"), retries=2)

    assert result.error == f"{srv.url('/page')}: HTTP {status} {words} after 2 retries"
    assert result.attempts == 3
    assert srv.hits("/page") == 3
    assert len(result.exchanges) == 1  # only the final attempt's
    assert result.status == status


def test_retry_that_succeeds_is_not_an_error(srv: FaultServer) -> None:
    """A 502 then a 200 gives the page, with attempts counting both."""
    srv.set("/page", Series(Respond(502), Respond(200, PAGE_HTML)))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert (result.body, result.attempts, srv.hits("/page")) == (PAGE_HTML, 2, 2)
    assert [e.status for e in result.exchanges] == [200]


@pytest.mark.parametrize(
    "retry_after", ["1", "Wed, 21 Oct 2015 07:28:00 GMT"], ids=["seconds", "past-http-date"]
)
def test_retry_after_is_honoured(srv: FaultServer, retry_after: str) -> None:
    """A 503 with a Retry-After the monitor can wait for is asked again."""
    srv.set("/page", Series(Respond(503, headers={"Retry-After": retry_after}), Respond(200)))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert srv.hits("/page") == 2


@pytest.mark.parametrize(
    ("retry_after", "asked"),
    [("3600", "3600s"), ("Fri, 27 Nov 2026 00:00:00 GMT", "112935s")],
    ids=["seconds", "http-date"],
)
def test_retry_after_beyond_the_cap_stops_retrying(
    srv: FaultServer, retry_after: str, asked: str
) -> None:
    """A server asking for more than 120 s is not waited for, and the error says so."""
    srv.set("/page", Respond(429, headers={"Retry-After": retry_after}))
    result = fetch(srv.url("/page"), retries=3)

    assert result.error == (
        f"{srv.url('/page')}: HTTP 429 Too Many Requests;"
        f" server asked to retry after {asked}, over the 120s limit"
    )
    assert (result.attempts, srv.hits("/page")) == (1, 1)


def test_connection_refused_is_retried_then_an_error() -> None:
    """A closed port is a transient 'connection refused' error, tried 1 + retries times."""
    url = closed_url("/page")
    result = fetch(url, retries=1)

    assert result.error == f"{url}: connection refused after 1 retry"
    assert (result.attempts, result.status, result.exchanges) == (2, None, ())
    assert result.final_url == url


def test_reset_mid_body_keeps_the_partial_exchange(srv: FaultServer) -> None:
    """A connection reset mid-body is an error, and what did arrive is archived as truncated."""
    srv.set("/page", Reset(b"x" * 1000, after=100))
    result = fetch(srv.url("/page"), retries=0)

    assert result.error is not None
    assert result.error.startswith(f"{srv.url('/page')}: connection lost mid-body after 100 bytes")
    assert result.body is None
    (exchange,) = result.exchanges
    assert (exchange.raw_body, exchange.truncated) == (b"x" * 100, "disconnect")


def test_content_length_longer_than_body_is_a_disconnect(srv: FaultServer) -> None:
    """A body shorter than its Content-Length is an error, kept as truncated by disconnect."""
    srv.set("/page", Respond(200, PAGE_HTML, content_length=len(PAGE_HTML) + 50))
    result = fetch(srv.url("/page"), retries=0)

    assert result.error is not None
    assert "connection lost mid-body" in result.error
    assert result.exchanges[0].raw_body == PAGE_HTML
    assert result.exchanges[0].truncated == "disconnect"


def test_close_without_response_is_retried_then_an_error(srv: FaultServer) -> None:
    """A server that closes without answering is a transient error with no exchange."""
    srv.set("/page", Close())
    result = fetch(srv.url("/page"), retries=1)

    assert result.error == (
        f"{srv.url('/page')}: server closed the connection without a response after 1 retry"
    )
    assert (result.exchanges, result.status) == ((), None)
    assert srv.hits("/page") == 2


def test_read_timeout_before_headers(srv: FaultServer) -> None:
    """A server silent past timeout_s is a 'read timeout' error."""
    srv.set("/page", Delay(5, Respond(200, PAGE_HTML)))
    result = fetch(srv.url("/page"), timeout_s=0.5, retries=0)

    assert result.error == f"{srv.url('/page')}: read timeout after 0.5s"
    assert result.exchanges == ()


def test_slow_drip_hits_the_overall_deadline(srv: FaultServer) -> None:
    """A body dripping a byte at a time, each read within timeout_s, is cut off at timeout_s."""
    srv.set("/page", Drip(b"x" * 1000, chunk_size=1, interval_s=0.05))
    result = fetch(srv.url("/page"), timeout_s=0.5, retries=0)

    assert result.error == f"{srv.url('/page')}: too slow: no complete response within 0.5s"
    assert result.body is None
    (exchange,) = result.exchanges
    assert exchange.truncated == "time"
    assert 0 < len(exchange.raw_body) < 1000


def test_body_over_max_bytes_is_refused_and_its_start_kept(srv: FaultServer) -> None:
    """A raw body past max_bytes is an error; its first max_bytes are kept as evidence."""
    srv.set("/page", Respond(200, b"y" * 50_000))
    result = fetch(srv.url("/page"), max_bytes=10_000)

    assert result.error == f"{srv.url('/page')}: body larger than max_bytes (10000 bytes)"
    assert result.body is None
    assert srv.hits("/page") == 1
    (exchange,) = result.exchanges
    assert (exchange.raw_body, exchange.truncated) == (b"y" * 10_000, "length")


@pytest.mark.parametrize(
    ("encoding", "bomb"),
    [("gzip", gzip_bomb(64 << 20)), ("br", brotli_bomb(64 << 20))],
    ids=["gzip-bomb", "brotli-bomb"],
)
def test_compression_bomb_is_stopped_at_max_bytes(
    srv: FaultServer, encoding: str, bomb: bytes
) -> None:
    """A small body that decodes to 64 MB is refused without decoding much past max_bytes."""
    srv.set("/page", Respond(200, bomb, {"Content-Encoding": encoding}))
    tracemalloc.start()
    try:
        result = fetch(srv.url("/page"), max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.error == (
        f"{srv.url('/page')}: body larger than max_bytes (1000000 bytes) once decoded ({encoding})"
    )
    assert result.body is None
    assert result.exchanges[0].raw_body == bomb  # small, and archived whole as evidence
    assert len(bomb) < 100_000
    assert peak < 16_000_000  # decoding all of it would have taken 64 MB at least
    assert srv.hits("/page") == 1


@pytest.mark.parametrize(
    ("raw", "encoding", "what"),
    [
        (truncated_gzip(PAGE_HTML * 20), "gzip", "truncated gzip body"),
        (b"this is not gzip at all", "gzip", "corrupt gzip body"),
        (brotli.compress(PAGE_HTML * 20)[:-5], "br", "truncated br body"),
        (PAGE_HTML, "zstd", "unsupported Content-Encoding 'zstd'"),
    ],
    ids=["truncated-gzip", "corrupt-gzip", "truncated-br", "unknown-encoding"],
)
def test_undecodable_body_is_an_error_with_exchange_kept(
    srv: FaultServer, raw: bytes, encoding: str, what: str
) -> None:
    """A body that cannot be decoded is an error naming why; the raw bytes are still archived."""
    srv.set("/page", Respond(200, raw, {"Content-Encoding": encoding}))
    result = fetch(srv.url("/page"))

    assert result.error is not None
    assert result.error.startswith(f"{srv.url('/page')}: {what}")
    assert result.body is None
    assert result.exchanges[0].raw_body == raw
    assert result.exchanges[0].truncated is None
    assert srv.hits("/page") == 1


def test_retries_zero_means_one_attempt(srv: FaultServer) -> None:
    """With retries = 0 a 503 is asked once and reported without a retry count."""
    srv.set("/page", Respond(503))
    result = fetch(srv.url("/page"), retries=0)

    assert result.error == f"{srv.url('/page')}: HTTP 503 Service Unavailable"
    assert (result.attempts, srv.hits("/page")) == (1, 1)


def test_one_client_fetches_many_pages_at_once(srv: FaultServer) -> None:
    """Many pages fetched concurrently through one client each get their own body."""
    for n in range(20):
        srv.set(f"/p{n}", Respond(200, gzip.compress(b"page %d" % n), {"Content-Encoding": "gzip"}))
    settings = make_settings()

    async def run() -> list[FetchResult]:
        async with make_client(settings) as client:
            targets = [Target(srv.url(f"/p{n}"), f"p{n}") for n in range(20)]
            return await asyncio.gather(*(fetch_target(client, t, settings) for t in targets))

    results = asyncio.run(run())

    assert [r.body for r in results] == [b"page %d" % n for n in range(20)]
    assert [r.page for r in results] == [f"p{n}" for n in range(20)]


def test_multi_member_gzip_body_is_fetched_whole(srv: FaultServer) -> None:
    """A gzip body of two members, split by the network inside the second's header, is whole."""
    first, second = gzip_bytes(PAGE_HTML[:30]), gzip_bytes(PAGE_HTML[30:])
    chunks = (first + second[:1], second[1:])  # the second member's magic split in two
    srv.set("/page", Chunked(chunks, {"Content-Encoding": "gzip"}))
    result = fetch(srv.url("/page"))

    assert result.error is None
    assert result.body == PAGE_HTML
    assert result.exchanges[0].raw_body == first + second


# --- politeness: requests in flight per host, and the rate hook ----------------------------


class Gate:
    """A spec holding each request until `release_at` are in flight at once, counting the peak."""

    def __init__(self, release_at: int) -> None:
        self.release_at = release_at
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        with self._cond:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._cond.notify_all()
            # bounded, so a broken limit fails the asserts below instead of hanging the suite
            self._cond.wait_for(lambda: self.peak >= self.release_at or stop.is_set(), 10)
            # done before answering: the client cannot start its next request until answered
            self.in_flight -= 1
        Respond(200, PAGE_HTML).serve(conn, request, stop)


def fetch_all(
    urls: list[str], limits: HostLimits | None, rate: RateLimiter | None = None
) -> list[FetchResult]:
    """Fetch every URL at once through one client, as a cycle over entry pages would."""
    settings = make_settings()

    async def run() -> list[FetchResult]:
        async with make_client(settings) as client:
            return await asyncio.gather(
                *(
                    fetch_target(
                        client,
                        Target(url, f"entry {n}"),
                        settings,
                        limits=limits,
                        rate_limiter=rate,
                        backoff_s=0.01,
                    )
                    for n, url in enumerate(urls)
                )
            )

    return asyncio.run(run())


def test_host_limits_keep_two_requests_in_flight_per_host() -> None:
    """With HostLimits(2), no host ever has more than two requests of ours in flight."""
    with FaultServer() as one, FaultServer() as two:
        gates = Gate(release_at=2), Gate(release_at=2)
        for server, gate in zip((one, two), gates, strict=True):
            for n in range(6):
                server.set(f"/entry/{n}", gate)
        urls = [server.url(f"/entry/{n}") for n in range(6) for server in (one, two)]
        results = fetch_all(urls, HostLimits(per_host=2))

    assert [r.error for r in results] == [None] * 12
    assert [r.page for r in results] == [f"entry {n}" for n in range(12)]
    assert [gate.peak for gate in gates] == [2, 2]  # two each, and both hosts at once


def test_without_host_limits_every_request_goes_at_once(srv: FaultServer) -> None:
    """Without HostLimits the same six requests are all in flight together (the control)."""
    gate = Gate(release_at=6)
    for n in range(6):
        srv.set(f"/entry/{n}", gate)
    results = fetch_all([srv.url(f"/entry/{n}") for n in range(6)], None)

    assert [r.error for r in results] == [None] * 6
    assert gate.peak == 6


def test_rate_limiter_is_asked_before_every_request(srv: FaultServer) -> None:
    """A rate limiter is awaited once per request: redirect hops and retries included."""
    asked: list[str] = []

    class Recorder:
        async def acquire(self, url: str) -> None:
            asked.append(url)

    srv.set("/old", Redirect("/new"))
    srv.set("/new", Series(Respond(503), Respond(200, PAGE_HTML)))
    (result,) = fetch_all([srv.url("/old")], HostLimits(), Recorder())

    assert result.body == PAGE_HTML
    old, new = srv.url("/old"), srv.url("/new")
    assert asked == [old, new, old, new]
