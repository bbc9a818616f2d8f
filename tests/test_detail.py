"""Entry pages ([pages.detail]): each entry's own page checked, archived, and reported when it goes.

Against a local site; the clock is injected into run_check (days pass in a test), and the
record is read back through the CLI, the web page, the feed and the daemon.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from conftest import Site, json_lines, run, toml_value
from test_daemon import TIMEOUT_S, start_daemon  # noqa: F401 (a fixture)
from werkzeug import Request, Response

from monitor import webserver
from monitor.check import CheckReport, run_check
from monitor.config import load_config
from monitor.linkcheck import next_slot, on_site, slot_offset_ms

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LIST = "/initiatives"
ROW = (
    '<div class="views-row"><span class="views-field-title"><a href="{href}">{title}</a></span>'
    '<div class="views-field-body">About {title}.</div></div>'
)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def listing(*entries: tuple[str, str]) -> str:
    """A listing page whose items link to (href, title)."""
    rows = "".join(ROW.format(href=href, title=title) for href, title in entries)
    return (
        "<!DOCTYPE html><html><head><title>Initiatives</title></head><body>"
        f'<div class="view-content">{rows}</div></body></html>'
    )


def page(title: str, main: str = "", *, h1: str | None = None) -> str:
    """An entry's own page; `main` is the text the `content` selector reads."""
    padding = "<p>" + "Programs, grants and partners of the initiative. " * 40 + "</p>"
    return (
        f"<!DOCTYPE html><html><head><title>{title} | IMLS</title></head><body>"
        f"<h1>{h1 or title}</h1><main>{main or title + ' text'}</main>{padding}</body></html>"
    )


def write_detail_config(
    tmp_path: Path, site: Site, *, detail: dict[str, str], schedule: dict | None = None
) -> Path:
    """A config with one active listing at LIST whose entries' pages are checked."""
    settings = {"data_dir": "data", "timeout": 5, "retries": 0}
    lines = ["[monitor]", *(f"{k} = {toml_value(v)}" for k, v in settings.items())]
    if schedule:
        lines += ["[schedule]", *(f"{k} = {toml_value(v)}" for k, v in schedule.items())]
    lines += [
        "[[pages]]",
        'name = "active"',
        f"url = {toml_value(site.url(LIST))}",
        'role = "active"',
        "  [pages.select]",
        '  item = ".view-content .views-row"',
        '  title = ".views-field-title"',
        '  link = "a[href]"',
        '  description = ".views-field-body"',
        "  [pages.detail]",
        *(f"  {k} = {toml_value(v)}" for k, v in detail.items()),
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def check_at(config: Path, when: datetime) -> CheckReport:
    """One `check` (listing cycle, then the entry pages due) as if it ran at `when`."""
    return run_check(load_config(config), clock=lambda: when)


def link_events(report: CheckReport) -> list[tuple[str, str | None, str | None]]:
    return [(e.kind, e.title, e.detail) for e in report.events if e.kind.startswith("link-")]


def fetched(site: Site, path: str) -> int:
    return sum(1 for r in site.requests if r.path == path)


def entry_ids(config: Path) -> dict[str, str]:
    """Title -> entry id, from `monitor entries --json`."""
    return {e["title"]: e["entry_id"] for e in json_lines(run(config, "entries", "--json"))}


@pytest.fixture
def two(site: Site, tmp_path: Path) -> Path:
    """A listing of Alpha and Beta (their pages up), checked once at T0: the baseline."""
    site.serve(LIST, listing(("/i/alpha", "Alpha"), ("/i/beta", "Beta")))
    site.serve("/i/alpha", page("Alpha"))
    site.serve("/i/beta", page("Beta"))
    config = write_detail_config(tmp_path, site, detail={"every": "1d", "content": "main"})
    check_at(config, T0)
    return config


def test_pages_that_stay_up_are_ok_and_report_nothing(site, two):
    """Entry pages that answer 200 day after day give no event; status counts them checked."""
    for n in (1, 2, 3):
        assert link_events(check_at(two, day(n))) == []
    assert fetched(site, "/i/alpha") == fetched(site, "/i/beta") == 3
    status = json.loads(run(two, "status", "--json").stdout)["entry_pages"]
    assert status["checked"] == 2 and status["gone"] == 0 and status["error"] == 0
    assert day(3) < datetime.fromisoformat(status["next_due_at"]) <= day(4)
    assert "entry pages: 2 of 2 checked, 0 gone" in run(two, "status").stdout


def _redirect_home(site: Site) -> None:
    site.serve("/", page("Home"))
    site.serve("/i/beta", lambda r: Response("", status=301, headers={"Location": site.url("/")}))


def _redirect_to_listing(site: Site) -> None:
    site.serve("/i/beta", lambda r: Response("", status=302, headers={"Location": site.url(LIST)}))


GONE = {
    "404": (lambda s: s.serve("/i/beta", lambda r: Response("no", status=404)), "HTTP 404"),
    "410": (lambda s: s.serve("/i/beta", lambda r: Response("no", status=410)), "HTTP 410"),
    "redirect-home": (_redirect_home, "soft 404: redirected to {home}"),
    "redirect-listing": (_redirect_to_listing, "soft 404: redirected to the listing {listing}"),
    "soft-404": (
        lambda s: s.serve("/i/beta", page("Page not found", "Sorry.")),
        'soft 404: "Page not found"',
    ),
    "soft-404-heading": (  # the title says nothing; the main heading says it all
        lambda s: s.serve("/i/beta", page("Beta", "Try searching the site.",
                                          h1="Sorry, we couldn't find that page")),  # fmt: skip
        "soft 404: \"Sorry, we couldn't find that page\"",
    ),
    "redirect-listing-tracked": (
        lambda s: s.serve("/i/beta", lambda r: Response(
            "", status=301, headers={"Location": s.url(LIST) + "?utm_source=old"})),  # fmt: skip
        "soft 404: redirected to the listing {listing}?utm_source=old",
    ),
}


@pytest.mark.parametrize("how", list(GONE))
def test_a_gone_page_is_reported_once_after_confirm_checks(site, two, how):
    """404, 410, a redirect home or to the listing, a "not found" 200: link-gone once, confirmed."""
    make_gone, detail = GONE[how]
    make_gone(site)
    assert link_events(check_at(two, day(1))) == []  # 1 of confirm_checks = 2
    report = check_at(two, day(2))
    want = detail.format(home=site.url("/"), listing=site.url(LIST))
    assert link_events(report) == [("link-gone", "Beta", want)]
    assert [link_events(check_at(two, day(n))) for n in (3, 4)] == [[], []]  # once per episode

    (gone,) = [e for e in json_lines(run(two, "log", "--json")) if e["kind"] == "link-gone"]
    assert gone["page"] == "active" and gone["entry_id"] == entry_ids(two)["Beta"]
    assert gone["link"] == site.url("/i/beta") and gone["detail"] == want
    assert "description" not in gone and gone["source"] == "check"
    assert run(two, "show", str(gone["capture_id"])).exit_code == 0
    assert json.loads(run(two, "status", "--json").stdout)["entry_pages"]["gone"] == 1


def test_a_page_that_comes_back_is_reported_recovered(site, two):
    """After link-gone, the page answering 200 again gives link-recovered (and no link-changed)."""
    site.serve("/i/alpha", lambda r: Response("no", status=404))
    check_at(two, day(1))
    assert [k for k, *_ in link_events(check_at(two, day(2)))] == ["link-gone"]
    site.serve("/i/alpha", page("Alpha"))
    assert link_events(check_at(two, day(3))) == [("link-recovered", "Alpha", "HTTP 200")]
    assert link_events(check_at(two, day(4))) == []


def test_a_gone_check_then_a_good_one_is_no_episode(site, two):
    """One 404 that is not confirmed, then 200: no event at all."""
    site.serve("/i/alpha", lambda r: Response("no", status=404))
    check_at(two, day(1))
    site.serve("/i/alpha", page("Alpha"))
    assert link_events(check_at(two, day(2))) == []
    site.serve("/i/alpha", lambda r: Response("no", status=404))
    assert link_events(check_at(two, day(3))) == []  # the count started again


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda r: Response(page("Access Denied", "Reference #18.1"), 200,
                                        content_type="text/html"), id="block-page"),  # fmt: skip
        pytest.param(lambda r: Response("busy", status=503), id="503"),
        pytest.param(lambda r: Response("slow down", status=429), id="429"),
    ],
)
def test_a_block_page_or_a_server_error_is_an_error_never_gone(site, two, answer):
    """A block page, 503 or 429, however long it lasts: status error, never link-gone or changed."""
    site.serve("/i/alpha", answer)
    for n in range(1, 6):
        assert link_events(check_at(two, day(n))) == []
    ids = entry_ids(two)
    lines = json_lines(run(two, "history", ids["Alpha"], "--json"))
    (state,) = [line["entry_page"] for line in lines if "entry_page" in line]
    assert state["status"] == "error"
    checks = [line["entry_page_check"] for line in lines if "entry_page_check" in line]
    assert [c["outcome"] for c in checks] == ["error"] * 5
    site.serve("/i/alpha", page("Alpha"))
    assert link_events(check_at(two, day(6))) == []  # an error's end is no event either


def test_errors_neither_confirm_nor_interrupt_a_gone_run(site, two):
    """404, a block page, 404: the two 404s confirm link-gone; the block page counts for nothing."""
    site.serve("/i/beta", lambda r: Response("no", status=404))
    check_at(two, day(1))
    site.serve("/i/beta", lambda r: Response(page("Just a moment..."), content_type="text/html"))
    assert link_events(check_at(two, day(2))) == []
    site.serve("/i/beta", lambda r: Response("no", status=404))
    assert [k for k, *_ in link_events(check_at(two, day(3)))] == ["link-gone"]


def test_an_edit_of_the_content_text_is_link_changed_with_before_and_after(site, two):
    """The `main` text edited: link-changed carrying changes.content before and after."""
    site.serve("/i/alpha", page("Alpha", "Grants for museums."))
    check_at(two, day(1))
    site.serve("/i/alpha", page("Alpha", "Grants for libraries."))
    report = check_at(two, day(2))
    assert [k for k, *_ in link_events(report)] == ["link-changed"]
    (changed,) = [e for e in json_lines(run(two, "log", "--json")) if e["kind"] == "link-changed"]
    assert changed["changes"] == {
        "content": {"before": "Grants for museums.", "after": "Grants for libraries."}
    }
    assert changed["title"] == "Alpha" and changed["detail"].startswith("HTTP 200")
    site.serve("/i/alpha", page("Alpha", "Grants for libraries.", h1="Big news"))  # not `main`
    assert link_events(check_at(two, day(3))) == []


def test_the_text_of_a_soft_404_or_a_block_page_never_counts_as_an_edit(site, two):
    """A soft 404 and a block page between two good checks: no link-changed from their text."""
    check_at(two, day(1))  # the baseline text: "Alpha text"
    site.serve("/i/alpha", page("Page not found", "Nothing here."))
    check_at(two, day(2))
    site.serve("/i/alpha", page("Access Denied", "Denied."))
    check_at(two, day(3))
    site.serve("/i/alpha", page("Alpha"))
    assert link_events(check_at(two, day(4))) == []


def test_a_304_keeps_the_page_ok_and_asks_with_the_validators(site, two, tmp_path):
    """With an ETag, the next check is conditional; a 304 is ok, no event."""
    asked: list[str | None] = []

    def answer(request: Request) -> Response:
        asked.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(page("Alpha"), content_type="text/html", headers={"ETag": '"v1"'})

    site.serve("/i/alpha", answer)
    for n in (1, 2, 3):
        assert link_events(check_at(two, day(n))) == []
    assert asked == [None, '"v1"', '"v1"']


def test_links_off_the_site_are_never_fetched(site, tmp_path):
    """An entry linking to another host is not checked; one on the site is."""
    other = site.url("/elsewhere").replace("127.0.0.1", "localhost")
    site.serve(LIST, listing(("/i/alpha", "Alpha"), (other, "Elsewhere"), ("mailto:x@y.z", "M")))
    site.serve("/i/alpha", page("Alpha"))
    config = write_detail_config(tmp_path, site, detail={"every": "1d"})
    for n in range(4):
        check_at(config, day(n))
    assert fetched(site, "/i/alpha") == 3 and fetched(site, "/elsewhere") == 0
    status = json.loads(run(config, "status", "--json").stdout)["entry_pages"]
    assert status["watched"] == 1


def test_a_removed_entrys_page_is_checked_for_keep_checking_then_not(site, tmp_path):
    """An entry gone from the listing keeps its page checked for keep_checking, then no more."""
    rows = [("/i/alpha", "Alpha"), ("/i/beta", "Beta"), ("/i/gamma", "Gamma")]
    site.serve(LIST, listing(*rows))
    for path, title in rows:
        site.serve(path, page(title))
    config = write_detail_config(tmp_path, site, detail={"every": "1d", "keep_checking": "3d"})
    check_at(config, T0)
    check_at(config, day(1))
    site.serve(LIST, listing(rows[0], rows[2]))  # Beta removed at day 2
    counts = []
    for n in range(2, 8):
        before = fetched(site, "/i/beta")
        report = check_at(config, day(n))
        counts.append(fetched(site, "/i/beta") - before)
        if n == 2:
            assert [e.kind for e in report.events] == ["removed"]
    assert counts == [1, 1, 1, 1, 0, 0]  # days 2 to 5: within 3d of its removal
    beta = entry_ids(config)["Beta"]
    (state,) = [x["entry_page"] for x in json_lines(run(config, "history", beta, "--json"))
                if "entry_page" in x]  # fmt: skip
    assert state["next_due_at"] is None and state["removed_at"] == "2030-01-03T00:00:00Z"
    assert "no longer checked" in run(config, "history", beta).stdout


def test_nothing_is_fetched_twice_in_one_interval_however_often_check_runs(site, tmp_path):
    """Checks every 3 hours for 3 days: each entry page is fetched once a day, never closer."""
    rows = [(f"/i/{n}", f"Entry {n}") for n in range(6)]
    site.serve(LIST, listing(*rows))
    for path, title in rows:
        site.serve(path, page(title))
    config = write_detail_config(tmp_path, site, detail={"every": "1d"})
    times: dict[str, list[datetime]] = {path: [] for path, _ in rows}
    for step in range(24):
        when = T0 + timedelta(hours=3 * step)
        seen = len(site.requests)
        check_at(config, when)
        for request in site.requests[seen:]:
            if request.path in times:
                times[request.path].append(when)
    for path, at in times.items():
        assert len(at) in (2, 3), path
        gaps = [b - a for a, b in zip(at, at[1:], strict=False)]
        assert all(gap > timedelta(hours=21) for gap in gaps), (path, at)


def test_slots_spread_300_links_over_the_interval():
    """300 links with every = 1d fall into every hour of the day, no hour holding a crowd."""
    urls = [f"https://www.imls.gov/initiatives/program-{n}" for n in range(300)]
    hours = Counter(slot_offset_ms(url, 86400) // 3_600_000 for url in urls)
    assert len(hours) == 24 and max(hours.values()) <= 30
    url, after = urls[0], T0
    first = next_slot(url, 86400, after, inclusive=True)
    assert after <= first < after + timedelta(days=1)
    assert next_slot(url, 86400, first) == first + timedelta(days=1)


@pytest.mark.parametrize(
    ("link", "page_url", "same"),
    [
        ("https://imls.gov/x", "https://www.imls.gov/issues", True),
        ("https://grants.imls.gov/x", "https://www.imls.gov/issues", True),
        ("https://www.nps.gov/x", "https://www.imls.gov/issues", False),
        ("https://a.example.co.uk/", "https://b.example.co.uk/", True),
        ("https://other.co.uk/", "https://example.co.uk/", False),
        ("https://bob.github.io/", "https://alice.github.io/", False),
        ("http://127.0.0.1:9/x", "http://127.0.0.1:8/", True),
        ("http://localhost/x", "http://127.0.0.1/", False),
        ("mailto:someone@imls.gov", "https://www.imls.gov/", False),
        ("javascript:alert(1)", "https://www.imls.gov/", False),
    ],
)
def test_the_watched_site_is_the_pages_registrable_domain(link, page_url, same):
    """Same host or same registrable domain (Public Suffix List), never a sibling of a suffix."""
    assert on_site(link, page_url) is same


def test_check_json_prints_link_events(site, tmp_path):
    """Entry pages first seen long ago are due now: `check --json` prints their events."""
    site.serve(LIST, listing(("/i/beta", "Beta")))
    site.serve("/i/beta", lambda r: Response("no", status=404))
    config = write_detail_config(tmp_path, site, detail={"every": "1d"})
    past = datetime(2001, 1, 1, tzinfo=UTC)
    check_at(config, past)
    check_at(config, past + timedelta(days=1))
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.output
    (event,) = json_lines(result)
    assert event["kind"] == "link-gone" and event["detail"] == "HTTP 404"
    assert set(event) == {"id", "kind", "at", "page", "entry_id", "title", "link", "detail",
                          "capture_id", "source"}  # fmt: skip
    text = run(config, "history", event["entry_id"]).stdout
    assert f"Entry page: {site.url('/i/beta')}  gone" in text and "HTTP 404" in text
    assert "link-gone" in run(config, "log").stdout


@contextmanager
def serving(config: Path) -> Iterator[str]:
    server = webserver.make_server(load_config(config), "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_feed_and_the_web_page_show_link_events_with_detail_and_capture(site, two, tmp_path):
    """Feed items and the log page carry the detail and a link to the capture; the entry's
    timeline shows its page's checks."""
    site.serve("/i/beta", page("Page <b>not</b> found", "x"))
    check_at(two, day(1))
    check_at(two, day(2))
    feed = feedparser.parse(run(two, "feed").stdout)
    (item,) = [e for e in feed.entries if e.tags[0].term == "link-gone"]
    assert item.title == "Link gone: Beta"
    assert "soft 404: &quot;Page not found&quot;" in item.content[0].value
    items = json.loads(run(two, "feed", "--format", "json").stdout)["items"]
    assert items[0]["_monitor"]["detail"] == 'soft 404: "Page not found"'
    beta = entry_ids(two)["Beta"]
    with serving(two) as url:
        log_page = httpx.get(url + "/").text
        timeline = httpx.get(f"{url}/entries/{beta}").text
    capture = items[0]["_monitor"]["capture_id"]
    assert "link-gone" in log_page and "soft 404: &quot;Page not found&quot;" in log_page
    assert f'href="/captures/{capture}/view"' in log_page  # the framed view, with its banner
    assert "Its page (2 checks)" in timeline and f'href="/captures/{capture}"' in timeline
    assert "<b>not</b>" not in log_page + timeline


def test_the_daemon_runs_the_entry_page_job(site, tmp_path, start_daemon):  # noqa: F811
    """`monitor run` checks the entry pages in their own job and logs a confirmed link-gone."""
    site.serve(LIST, listing(("/i/alpha", "Alpha")))
    site.serve("/i/alpha", lambda r: Response("no", status=404))
    config = write_detail_config(tmp_path, site, detail={"every": "1s"},
                                 schedule={"interval": "1h", "jitter": "0s"})  # fmt: skip
    daemon = start_daemon(config)
    gone = daemon.wait_for(
        lambda: [e for e in daemon.logged("event") if e.get("kind") == "link-gone"],
        "link-gone from the entry-page job",
        timeout=TIMEOUT_S,
    )
    assert gone[0]["title"] == "Alpha" and gone[0]["detail"] == "HTTP 404"
    assert daemon.logged("entry pages done")
    assert fetched(site, LIST) == 1  # the listing job runs hourly: the rest were entry pages
    assert daemon.stop() == 0


def test_a_listing_capture_views_previous_and_next_are_the_listings_own(site, two):
    """Entry pages are archived under their listing's name: the capture view's previous and
    next links still step through captures of the same URL, never into an entry's page."""
    from bs4 import BeautifulSoup

    from monitor import web

    for n in range(1, 4):
        site.serve(LIST, listing(("/i/alpha", "Alpha"), ("/i/beta", f"Beta {n}")))
        check_at(two, day(n))
    captures = json_lines(run(two, "snapshots", "--json"))
    listing_ids = sorted(c["id"] for c in captures if c["url"] == site.url(LIST))
    assert len(listing_ids) >= 3 and len(captures) > len(listing_ids)  # entry pages too
    middle = listing_ids[len(listing_ids) // 2]
    page = web.respond(load_config(two), f"/captures/{middle}/view").body.decode()
    view = BeautifulSoup(page, "html.parser")
    at = listing_ids.index(middle)
    assert view.find("a", rel="prev")["href"] == f"/captures/{listing_ids[at - 1]}/view"
    assert view.find("a", rel="next")["href"] == f"/captures/{listing_ids[at + 1]}/view"
