"""The web-archive side of backfill against a local fake archive: captures, mementos, politeness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import TypeVar

import httpx
import pytest
from archive_history import ACTIVE_URL, ARCHIVED_URL
from fake_archive import ArchivedCapture, FakeArchive, imls_history
from pytest_httpserver import HTTPServer

from monitor.backfill import (
    ArchiveError,
    ArchiveRefused,
    CdxCapture,
    RateLimiter,
    fetch_memento,
    list_captures,
    memento_url,
)
from monitor.backfill.cdx import parse_cdx_page

T = TypeVar("T")


@dataclass(frozen=True)
class BackfillConfig:
    """A copy of config.BackfillConfig (merged in parallel); drop it once config has it."""

    cdx_url: str = "https://web.archive.org/cdx/search/cdx"
    memento_url: str = "https://web.archive.org/web/{timestamp}id_/{url}"
    rate_per_minute: float = 15.0
    since: date | None = None
    hold_for_s: float = 90 * 86400.0


URL = "https://www.imls.gov/issues/national-initiatives"
PAGE = b"<html><body><div class='view-content'>%d</div></body></html>"


@dataclass
class FakeClock:
    """Logical time: sleeping advances it at once, so no test waits for real."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def run(work: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with httpx.AsyncClient(timeout=10) as client:
            return await work(client)

    return asyncio.run(go())


def captures_of(
    archive: FakeArchive,
    url: str = URL,
    *,
    limiter: RateLimiter | None = None,
    since: date | None = None,
    until: date | None = None,
    page_size: int = 1000,
) -> list[CdxCapture]:
    limiter = limiter or RateLimiter(1e9)
    return run(
        lambda client: list_captures(
            client,
            archive.cdx_url,
            url,
            since=since,
            until=until,
            limiter=limiter,
            page_size=page_size,
        )
    )


def history(
    count: int, start: datetime = datetime(2015, 1, 1, tzinfo=UTC)
) -> list[ArchivedCapture]:
    """`count` captures an hour apart, each with its own bytes."""
    return [
        ArchivedCapture(
            (start + timedelta(hours=i)).strftime("%Y%m%d%H%M%S"), URL, PAGE % i
        )
        for i in range(count)
    ]


def capture(timestamp: str, body: bytes, **kwargs: object) -> ArchivedCapture:
    return ArchivedCapture(timestamp, URL, body, **kwargs)  # type: ignore[arg-type]


# --- listing captures ----------------------------------------------------------------------


def test_thousands_of_captures_are_read_page_by_page_with_resume_keys():
    """2,500 captures come back whole and in time order over 25 pages of 100."""
    with FakeArchive(history(2500)) as archive:
        found = captures_of(archive, page_size=100)
    assert [c.timestamp for c in found] == [c.timestamp for c in history(2500)]
    cdx = archive.cdx_requests()
    assert len(cdx) == 25
    assert cdx[0].param("resumeKey") is None
    assert all(r.param("resumeKey") for r in cdx[1:])
    assert found[0].at == datetime(2015, 1, 1, tzinfo=UTC)


def test_a_server_without_resume_keys_is_paged_by_date():
    """pywb-style answers (JSON lines, resume keys ignored) still give every capture once."""
    with FakeArchive(history(450), style="pywb") as archive:
        found = captures_of(archive, page_size=100)
    assert [c.timestamp for c in found] == [c.timestamp for c in history(450)]
    assert len(archive.cdx_requests()) < 10


def test_paging_stops_when_a_page_brings_nothing_new():
    """A full last page without a resume key costs one more request, which ends the paging."""
    with FakeArchive(history(30), style="pywb") as archive:
        found = captures_of(archive, page_size=30)
    assert len(found) == 30
    assert len(archive.cdx_requests()) == 2


@pytest.mark.parametrize("server_filters", [True, False], ids=["server-filters", "ignored"])
def test_only_successful_html_captures_one_per_run_of_digests(server_filters):
    """Non-200, non-HTML and repeated digests are dropped, by the server or by us."""
    a, b = b"<html>A</html>", b"<html>B</html>"
    rows = [
        capture("20150101000000", a),
        capture("20150102000000", a),  # same digest: collapsed
        capture("20150103000000", b"gone", status=404),
        capture("20150104000000", b"%PDF", mimetype="application/pdf"),
        capture("20150105000000", b),
        capture("20150106000000", b),
        capture("20150107000000", a),  # back to A: kept
    ]
    with FakeArchive(rows, filters=server_filters, collapse=server_filters) as archive:
        found = captures_of(archive)
    assert [c.timestamp for c in found] == ["20150101000000", "20150105000000", "20150107000000"]
    query = archive.cdx_requests()[0]
    assert ("filter", "statuscode:200") in query.query
    assert ("filter", "mimetype:text/html") in query.query
    assert ("collapse", "digest") in query.query
    assert ("output", "json") in query.query


def test_captures_of_other_urls_a_server_lists_are_not_the_pages(tmp_path):
    """A CDX server matching by prefix also lists /other and /sub pages: only the page's
    own URL (scheme, www., default port and trailing slash aside) is its history."""
    a, b = b"<html>A</html>", b"<html>B</html>"
    rows = [
        capture("20150101000000", a),
        ArchivedCapture("20150102000000", URL + "/other-initiative", b),
        ArchivedCapture("20150103000000", URL.replace("https://", "http://") + "/", b"<p>C"),
        ArchivedCapture("20150104000000", URL + "-archive", a),
    ]
    with FakeArchive(rows, prefix=True) as archive:
        found = captures_of(archive)
    assert [c.timestamp for c in found] == ["20150101000000", "20150103000000"]


@pytest.mark.parametrize("style", ["wayback", "pywb"])
def test_an_answer_that_is_not_a_cdx_index_is_an_error_naming_the_url(style):
    """An HTML page (a login, a wrong cdx_url) answered with 200 is not "no captures":
    backfill fails naming the page's URL and what the answer starts with."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/cdx").respond_with_data(
        "<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n" * 3,
        content_type="text/html")  # fmt: skip
    server.start()
    try:
        with pytest.raises(ArchiveError, match="not a CDX index.*<html>"):
            run(lambda client: list_captures(client, server.url_for("/cdx"), URL, since=None,
                                             until=None, limiter=RateLimiter(1e9)))  # fmt: skip
    finally:
        server.stop()


def test_since_and_until_bound_the_captures():
    """--since and --until become `from`/`to`, whole days, and are honoured."""
    with FakeArchive(history(24 * 5)) as archive:
        found = captures_of(archive, since=date(2015, 1, 2), until=date(2015, 1, 3))
    assert found[0].timestamp == "20150102000000"
    assert found[-1].timestamp == "20150103230000"
    assert len(found) == 48
    query = archive.cdx_requests()[0]
    assert query.param("from") == "20150102000000"
    assert query.param("to") == "20150103235959"


def test_fields_in_any_order_and_noise_are_read():
    """A header in another order, a warning row and blank lines do not lose captures."""
    fields = ("digest", "length", "timestamp", "statuscode", "mimetype", "original", "urlkey")
    with FakeArchive(history(5), fields=fields, noise=True) as archive:
        found = captures_of(archive)
    assert len(found) == 5
    assert found[0].status == 200 and found[0].mimetype == "text/html"
    assert found[0].length == len(PAGE % 0)


@pytest.mark.parametrize(
    "body",
    [
        b'[["urlkey","timestamp","original","mimetype","statuscode","digest","length"],\n'
        b'["k","20150101000000","http://www.imls.gov:80/x","text/html","200","D1","-"],\n'
        b'["k","20150102000000","https://www.imls.gov/x","text/html","200","D2","12"],\n'
        b'["k","2015',  # cut short
        b"k 20150101000000 http://www.imls.gov:80/x text/html 200 D1 -\n"
        b"k 20150102000000 https://www.imls.gov/x text/html 200 D2 12\n"
        b"broken line\n",
    ],
    ids=["truncated-json", "text-lines"],
)
def test_broken_answers_keep_their_good_rows(body):
    """A JSON answer cut short or classic text lines still give the rows they hold."""
    page = parse_cdx_page(body)
    assert [row["timestamp"] for row in page.rows] == ["20150101000000", "20150102000000"]
    assert page.skipped == 1


def test_hostile_answers_never_raise():
    """Garbage from a CDX server gives no rows, never an exception."""
    for body in (b"", b"\xff\xfe", b"[1, 2, {}]", b"{not json", b"[[], []]", b"null"):
        assert parse_cdx_page(body).rows == []


# --- mementos ------------------------------------------------------------------------------


def test_memento_url_fills_the_raw_url():
    """The `id_` memento URL carries the captured URL unencoded, query string included."""
    cap = CdxCapture("20170215120000", datetime(2017, 2, 15, 12, tzinfo=UTC),
                     "https://www.imls.gov/x?page=1&a=b", "text/html", 200, "D", None)
    assert memento_url(BackfillConfig().memento_url, cap) == (
        "https://web.archive.org/web/20170215120000id_/https://www.imls.gov/x?page=1&a=b"
    )


def fetch_all(archive: FakeArchive) -> dict[str, str | None]:
    async def work(client: httpx.AsyncClient) -> dict[str, str | None]:
        limiter = RateLimiter(1e9)
        found = await list_captures(
            client, archive.cdx_url, URL, since=None, until=None, limiter=limiter
        )
        out: dict[str, str | None] = {}
        for cap in found:
            memento = await fetch_memento(client, archive.memento_template, cap, limiter)
            out[cap.timestamp] = memento.archive_error
            if memento.archive_error is None:
                served = next(c for c in archive.history if c.timestamp in memento.final_url)
                assert memento.body == served.body
        return out

    return run(work)


def test_archive_error_pages_are_recognised():
    """Hrm., excluded and far-away redirects are the archive's pages; a near redirect is fine."""
    rows = [
        capture("20150101000000", b"<html>ok</html>"),
        capture("20150201000000", b"<html>1</html>", playback="not-archived"),
        capture("20150301000000", b"<html>2</html>", playback="excluded"),
        capture("20150401000000", b"<html>3</html>", redirect_to="20150101000000"),
        capture("20150501000000", b"<html>4</html>", redirect_to="20150501000007"),
        capture("20150501000007", b"<html>4</html>"),  # same digest: not listed itself
        capture("20150601000000", b"<html>5</html>"),
    ]
    with FakeArchive(rows) as archive:
        errors = fetch_all(archive)
    assert errors["20150101000000"] is None
    assert "not archived" in (errors["20150201000000"] or "")
    assert "excluded" in (errors["20150301000000"] or "")
    assert "2015-01-01" in (errors["20150401000000"] or "")
    assert errors["20150501000000"] is None
    assert errors["20150601000000"] is None


def test_imls_history_lists_what_a_backfill_must_fetch():
    """The IMLS history gives each page's distinct successful captures; errors are marked."""
    with FakeArchive(imls_history()) as archive:
        active = captures_of(archive, ACTIVE_URL)
        archived = captures_of(archive, ARCHIVED_URL)
    assert [c.timestamp[:8] for c in active] == [
        "20150612", "20151103", "20160410", "20160901", "20161120", "20170215", "20170815",
        "20190320",
    ]
    assert active[0].original == "http://www.imls.gov/issues/national-initiatives"
    assert [c.timestamp[:8] for c in archived] == [
        "20150612", "20151105", "20160412", "20170215", "20170301", "20170816", "20190320",
    ]


# --- politeness ----------------------------------------------------------------------------


def test_at_most_rate_per_minute_requests_in_any_minute():
    """40 CDX pages at 15 a minute start 4 logical seconds apart, never 16 in 60 s."""
    clock = FakeClock()
    limiter = RateLimiter(BackfillConfig().rate_per_minute, clock=clock, sleep=clock.sleep)
    with FakeArchive(history(40), clock=clock) as archive:
        found = captures_of(archive, limiter=limiter, page_size=1)
    assert len(found) == 40
    times = [r.at for r in archive.requests]
    assert times == limiter.starts
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [4.0] * (len(times) - 1)
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) == 15


def test_a_fractional_rate_is_never_exceeded():
    """At 2.5 a minute, no 60 s window holds three requests."""
    clock = FakeClock()
    limiter = RateLimiter(2.5, clock=clock, sleep=clock.sleep)
    with FakeArchive(history(8), clock=clock) as archive:
        captures_of(archive, limiter=limiter, page_size=1)
    times = [r.at for r in archive.requests]
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) == 2


def test_429_with_retry_after_seconds_is_obeyed():
    """Two 429s asking for 30 s: the retries wait 30 s each, then the answer is used."""
    clock = FakeClock()
    limiter = RateLimiter(1e9, clock=clock, sleep=clock.sleep)
    with FakeArchive(history(3), throttle=2, retry_after="30", clock=clock) as archive:
        found = captures_of(archive, limiter=limiter)
    assert len(found) == 3
    assert [r.status for r in archive.requests] == [429, 429, 200]
    times = [r.at for r in archive.requests]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [30.0, 30.0]


def test_503_with_retry_after_as_a_date_is_obeyed():
    """A Retry-After given as an HTTP date is read against the (injected) wall clock."""
    clock = FakeClock()
    wall = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    limiter = RateLimiter(1e9, clock=clock, sleep=clock.sleep, wall=lambda: wall)
    later = format_datetime(wall + timedelta(seconds=45), usegmt=True)
    with FakeArchive(
        history(2), throttle=1, throttle_status=503, retry_after=later, clock=clock
    ) as archive:
        captures_of(archive, limiter=limiter)
    times = [r.at for r in archive.requests]
    assert [r.status for r in archive.requests] == [503, 200]
    assert times[1] - times[0] == 45.0


def test_429_without_retry_after_backs_off_a_minute():
    """Wayback's 429s carry no Retry-After: the retry still waits a minute."""
    clock = FakeClock()
    limiter = RateLimiter(1e9, clock=clock, sleep=clock.sleep)
    with FakeArchive(history(2), throttle=1, retry_after=None, clock=clock) as archive:
        captures_of(archive, limiter=limiter)
    times = [r.at for r in archive.requests]
    assert times[1] - times[0] == 60.0


def test_endless_429s_are_a_refusal_naming_the_url():
    """An archive that keeps answering 429 stops the run with a message naming the URL."""
    clock = FakeClock()
    limiter = RateLimiter(1e9, clock=clock, sleep=clock.sleep)
    with FakeArchive(history(2), throttle=100, retry_after="5", clock=clock) as archive:
        with pytest.raises(ArchiveRefused) as refused:
            captures_of(archive, limiter=limiter)
    assert "429" in str(refused.value)
    assert archive.cdx_url in str(refused.value)
    assert len(archive.requests) == 5  # the first try and four retries, no more


def test_a_403_is_a_refusal_naming_the_url():
    """A 403 from the archive is not retried: one request, then a message naming the URL."""
    with FakeArchive(history(2), refuse=True) as archive:
        with pytest.raises(ArchiveRefused) as refused:
            captures_of(archive)
    assert "refused" in str(refused.value) and archive.cdx_url in str(refused.value)
    assert len(archive.requests) == 1


def test_a_retry_after_past_the_limit_is_a_refusal():
    """An archive asking us to wait an hour is a refusal, not an hour's sleep."""
    clock = FakeClock()
    limiter = RateLimiter(1e9, clock=clock, sleep=clock.sleep)
    with FakeArchive(history(2), throttle=1, retry_after="3600", clock=clock) as archive:
        with pytest.raises(ArchiveRefused) as refused:
            captures_of(archive, limiter=limiter)
    assert "3600s" in str(refused.value)
    assert clock.now == 1000.0
