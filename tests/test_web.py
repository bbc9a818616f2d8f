"""`monitor serve`: the change log page, entry timelines, archived bodies, feeds and health,
over a real scenario (scenario-basic, then a hostile page) on a server bound to 127.0.0.1:0."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import pytest
from bs4 import BeautifulSoup
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    IMLS,
    SCENARIO,
    Site,
    imls_pages,
    json_lines,
    run,
    write_config,
)
from pytest_httpserver import HTTPServer
from werkzeug import Response

from monitor import web, webpages, webserver
from monitor.config import load_config
from monitor.models import Change, Event
from monitor.store.reading import CheckRow, EntryRow, PageRow, VersionRow

EXPECTED = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
HOSTILE_TITLE = '<script>alert(1)</script> & "co"'
HOSTILE_DESCRIPTION = "<img src=x onerror=alert(1)> A hostile initiative."
# The same strings as a page writes them: entity-encoded, so extraction yields the literals.
HOSTILE_ROW = """
  <div class="views-row">
  <div class="views-field views-field-title"><span class="field-content"><a
    href="javascript:alert(1)">&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;</a>
  </span></div>
  <div class="views-field views-field-body"><div class="field-content"><p>&lt;img src=x
    onerror=alert(1)&gt; A hostile initiative.</p></div></div>
  </div>
"""
# Live markup in the page itself: it must never run when the archived copy is shown.
PAGE_SCRIPT_HEAD = '<script>window.__pwned = true; document.title = "pwned";</script>\n'
PAGE_SCRIPT_BODY = (
    "<script>document.body.insertAdjacentHTML('beforeend', '<p id=\"pwned\">pwned</p>')</script>\n"
)
HEADERS_ALWAYS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def hostile_active_page() -> bytes:
    """Step 3's active page plus a hostile entry, two live scripts and a retitled entry."""
    page = (SCENARIO / "step3" / "active.html").read_text(encoding="utf-8")
    page = page.replace("</head>", PAGE_SCRIPT_HEAD + "</head>", 1)
    page = page.replace("</body>", PAGE_SCRIPT_BODY + "</body>", 1)
    page = page.replace('<div class="view-content">', '<div class="view-content">' + HOSTILE_ROW)
    page = page.replace(">Community Catalyst Initiative</a>", ">Community Catalyst Program</a>")
    return page.encode("utf-8")


@dataclass
class Served:
    """A data directory built by real checks, and the web server reading it."""

    url: str
    config: Path
    events: list[dict]  # every event the checks emitted, oldest first
    hostile_active: bytes

    def event(self, kind: str, title: str) -> dict:
        return next(e for e in self.events if e["kind"] == kind and e["title"] == title)


def build_data(site: Site, tmp: Path) -> tuple[Path, list[dict], bytes]:
    """Run scenario-basic's three checks, then a fourth over the hostile page, via the CLI."""
    config = write_config(tmp, imls_pages(site), monitor=EXPECTED["config"])
    events: list[dict] = []
    for step in EXPECTED["steps"]:
        site.serve_file(ACTIVE_PATH, SCENARIO / step["dir"] / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / step["dir"] / "archived.html")
        result = run(config, "check", "--json")
        assert result.exit_code == 0, result.stderr
        events += json_lines(result)
    hostile = hostile_active_page()
    site.serve(ACTIVE_PATH, hostile)
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
    events += json_lines(result)
    # A link that is not http(s) never comes out of extraction, but a database written by
    # other means may hold one: put a javascript: link on the hostile entry.
    hostile_id = next(e["entry_id"] for e in events if e["title"] == HOSTILE_TITLE)
    tables = (("events", "entry_id"), ("entries", "id"), ("entry_versions", "entry_id"))
    with closing(sqlite3.connect(tmp / "data" / "monitor.db")) as db, db:
        for table, key in tables:
            sql = f"UPDATE {table} SET link = 'javascript:alert(1)' WHERE {key} = ?"
            db.execute(sql, (hostile_id,))
    return config, events, hostile


@contextmanager
def running(config: Path) -> Iterator[str]:
    """`monitor serve` on 127.0.0.1, a free port, in a thread; yields its URL."""
    server = webserver.make_server(load_config(config), "127.0.0.1", 0, quiet=True)
    # A short poll interval: shutdown() waits for the loop to notice, up to one interval.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serving_scenario(server: HTTPServer, tmp: Path) -> Iterator[Served]:
    """Build the scenario's data with the site on `server`, then serve it (test_browser too)."""
    site = Site(server)
    server.expect_request("").respond_with_handler(site.handle)
    try:
        config, events, hostile = build_data(site, tmp)
    finally:
        server.clear()  # the site's work is done: the web server reads the data directory only
    with running(config) as url:
        yield Served(url, config, events, hostile)


@pytest.fixture(scope="module")
def served(
    make_httpserver: HTTPServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The scenario's data, built once for the module, and a web server over it."""
    with serving_scenario(make_httpserver, tmp_path_factory.mktemp("web")) as data:
        yield data


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as c:
        yield c


def soup(response: httpx.Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def event_rows(response: httpx.Response) -> list[tuple[str, str, str]]:
    """(kind, page, entry name) of each row of the events table, in page order."""
    rows = []
    for tr in soup(response).select("table.events tbody tr"):
        cells = tr.find_all("td")
        name = cells[3].find(["a", "strong"])
        rows.append((cells[1].get_text(strip=True), cells[2].get_text(strip=True), name.get_text()))
    return rows


def logged(served: Served, *args: str) -> list[dict]:
    return json_lines(run(served.config, "log", "--json", *args))


# -- the change log -----------------------------------------------------------------------------


def test_log_page_lists_every_event_newest_first(served, client):
    """/ shows every event of the checks, newest first, as `monitor log` orders them."""
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    want = [(e["kind"], e["page"], e["title"]) for e in logged(served)]
    assert event_rows(response) == want
    assert want[0][0] in ("added", "changed")  # the hostile check came last
    assert {kind for kind, _, _ in want} == {"added", "changed", "archived", "restored", "removed"}
    assert len(want) == len(served.events)


def test_log_page_header_shows_the_title_last_check_and_pages(served, client):
    """The page opens with the feed title, when the last check ran and each page's status."""
    page = soup(client.get("/"))
    assert page.h1.get_text() == "IMLS national initiatives: change log"
    assert page.html["lang"] == "en"
    status = page.find("section", attrs={"aria-labelledby": "status"})
    assert "Last check:" in status.get_text()
    assert status.find("time")["datetime"].endswith("Z")
    rows = [[td.get_text(strip=True) for td in tr.find_all("td")][:3] for tr in status("tr")[1:]]
    assert rows == [["active", "active", "OK"], ["archived", "archived", "OK"]]


def test_changed_events_show_which_fields_changed(served, client):
    """A `changed` row names the changed fields and shows the word difference."""
    rows = soup(client.get("/?kind=changed")).select("table.events tbody tr")
    by_name = {tr.find_all("td")[3].a.get_text(): tr for tr in rows}
    museums = by_name["Museums for All"]
    assert museums.summary.get_text() == "Changed: description"
    assert museums.ins.get_text().strip() == "More than 200 museums in 42 states now take part."
    catalyst = by_name["Community Catalyst Program"]
    assert catalyst.summary.get_text() == "Changed: title"
    assert (catalyst.find("del").get_text(), catalyst.ins.get_text()) == ("Initiative", "Program")


@pytest.mark.parametrize(
    ("query", "kinds", "pages"),
    [
        ("kind=archived&kind=removed", {"archived", "removed"}, None),
        ("kind=added", {"added"}, None),
        ("page=archived", None, {"archived"}),
        ("kind=changed&page=active", {"changed"}, {"active"}),
        ("kind=nonsense", None, None),
        ("page=%3Cscript%3E", None, None),
    ],
    ids=["two-kinds", "one-kind", "one-page", "kind-and-page", "unknown-kind", "unknown-page"],
)
def test_filters_narrow_the_log(served, client, query, kinds, pages):
    """?kind= and ?page= narrow the log as `log --kind/--page` does; unknowns are ignored."""
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    args = [a for k in sorted(kinds or ()) for a in ("--kind", k)]
    args += [a for p in sorted(pages or ()) for a in ("--page", p)]
    want = [(e["kind"], e["page"], e["title"]) for e in logged(served, *args)]
    assert event_rows(response) == want
    assert want
    checked = {box["value"] for box in soup(response).select("input[checked]")}
    assert checked == (kinds or set()) | (pages or set())
    assert "<script>" not in response.text


def test_filter_form_is_a_plain_get_form(served, client):
    """The filters are a GET form with a checkbox per kind and per page, no script needed."""
    form = soup(client.get("/")).form
    assert (form["method"], form["action"]) == ("get", "/")
    names = {(box["name"], box["value"]) for box in form.select("input[type=checkbox]")}
    assert ("kind", "page-anomaly") in names and ("page", "archived") in names


def pages_of_the_log(client: httpx.Client, path: str) -> list[httpx.Response]:
    """`path` and every page its "Older events" links lead to, in order."""
    responses = [client.get(path)]
    while (older := soup(responses[-1]).find("a", rel="next")) is not None:
        assert len(responses) < 50, "the Older links never end"
        responses.append(client.get(older["href"]))
    return responses


@pytest.mark.parametrize(
    ("query", "args", "size"),
    [("", [], 4), ("kind=added&kind=changed", ["--kind", "added", "--kind", "changed"], 3)],
    ids=["all", "filtered"],
)
def test_log_is_paginated(served, client, monkeypatch, query, args, size):
    """Past PAGE_SIZE events, "Older events" links (?before=SEQ) page through the log, filters
    kept, with no overlap and nothing skipped; later pages link back to the newest events."""
    monkeypatch.setattr(web, "PAGE_SIZE", size)
    responses = pages_of_the_log(client, f"/?{query}" if query else "/")
    want = [(e["kind"], e["page"], e["title"]) for e in logged(served, *args)]
    assert [row for r in responses for row in event_rows(r)] == want
    assert len(responses) == -(-len(want) // size) >= 2
    assert [len(event_rows(r)) for r in responses[:-1]] == [size] * (len(responses) - 1)
    first, *older = [soup(r) for r in responses]
    assert first.find("a", rel="first") is None
    for page in older:
        assert page.find("a", rel="first")["href"] == (f"/?{query}" if query else "/")
        assert page.title.get_text().endswith("(older events)")
    for page in [first, *older[:-1]]:
        href = page.find("a", rel="next")["href"]
        assert href.startswith(f"/?{query}&before=" if query else "/?before=")


def test_log_pages_stay_put_when_new_events_arrive(served, monkeypatch, tmp_path):
    """An event recorded between two page views neither repeats nor hides a row on the next."""
    monkeypatch.setattr(web, "PAGE_SIZE", 4)
    shutil.copytree(served.config.parent, tmp_path / "copy")
    config = tmp_path / "copy" / served.config.name
    want = [(e["kind"], e["page"], e["title"]) for e in logged(served)][:8]
    with running(config) as url, httpx.Client(base_url=url, timeout=10) as client:
        first = client.get("/")
        with closing(sqlite3.connect(tmp_path / "copy" / "data" / "monitor.db")) as db, db:
            db.execute(
                "INSERT INTO events (id, check_id, kind, at, page, detail) "
                "VALUES ('late', 1, 'page-error', '2999-01-01T00:00:00Z', 'active', 'HTTP 503')"
            )
        second = client.get(soup(first).find("a", rel="next")["href"])
        assert event_rows(client.get("/"))[0] == ("page-error", "active", "Page 'active'")
    assert event_rows(first) + event_rows(second) == want


BAD_QUERIES = {
    "negative": "before=-1",
    "zero": "before=0",
    "word": "before=abc",
    "fraction": "before=1.5",
    "huge": "before=99999999999999999999",
    "thousands-of-digits": "before=" + "9" * 5000,
    "fullwidth-digit": "before=%EF%BC%91",
    "nul": "kind=%00",
    "bad-utf8": "before=1&before=%ff",
    "old-page-number": "p=2",
}


@pytest.mark.parametrize("query", list(BAD_QUERIES.values()), ids=list(BAD_QUERIES))
def test_bad_query_values_are_ignored(served, client, query):
    """A `before` or filter that means nothing shows the first page, never an error."""
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    assert len(event_rows(response)) == len(served.events)
    assert soup(response).find("a", rel="first") is None


def test_log_before_the_first_event_is_empty(served, client):
    """?before=1 lists nothing, says so, and links back to the newest events."""
    response = client.get("/?before=1")
    assert response.status_code == 200
    assert event_rows(response) == []
    assert "No events match" in response.text
    assert soup(response).find("a", rel="first")["href"] == "/"


def test_too_many_query_parameters_is_a_400(served, client):
    """A query string with hundreds of parameters is refused with 400, not parsed."""
    response = client.get("/?" + "&".join(f"kind=added&x{i}=1" for i in range(300)))
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html; charset=utf-8"


# -- one entry ----------------------------------------------------------------------------------


def entry_page(client: httpx.Client, served: Served, kind: str, title: str) -> BeautifulSoup:
    entry_id = served.event(kind, title)["entry_id"]
    response = client.get(f"/entries/{entry_id}")
    assert response.status_code == 200
    return soup(response)


def test_entry_page_shows_every_version_and_event(served, client):
    """/entries/ID lists each version (as `monitor history`) with its capture, and each event."""
    entry_id = served.event("restored", "Film Forward")["entry_id"]
    history = json_lines(run(served.config, "history", entry_id, "--json"))
    versions = [h["version"] for h in history if "version" in h]
    page = soup(client.get(f"/entries/{entry_id}"))
    assert page.h1.get_text() == "Film Forward"
    sections = page.select("section.version")
    assert [s.h3.get_text().split(" · ")[0] for s in sections] == [
        f"Version {v['version']}" for v in versions
    ]
    for section, version in zip(sections, versions, strict=True):
        text = section.get_text()
        assert version["state"] in text and version["description"] in text
        assert section.find("a", href=f"/captures/{version['capture_id']}") is not None
    assert [s.find("del").get_text() for s in sections[1:2]] == ["archived"]
    kinds = [tr.find_all("td")[1].get_text() for tr in page.select("table.events tbody tr")]
    assert kinds == ["restored"]


@pytest.mark.parametrize(
    ("kind", "title", "deleted", "inserted"),
    [
        ("changed", "Museums for All", [], ["More than 200 museums in 42 states now take part."]),
        ("changed", "Community Catalyst Program", ["Initiative"], ["Program"]),
        ("archived", "IMLS Focus", ["active", "active"], ["archived", "archived"]),
    ],
    ids=["sentence-added", "word-replaced", "state-and-page"],
)
def test_entry_page_highlights_the_difference(served, client, kind, title, deleted, inserted):
    """Between consecutive versions the removed words are in <del>, the added ones in <ins>."""
    page = entry_page(client, served, kind, title)
    latest = page.select("section.version")[-1]
    changes = latest.select_one("ul.changes")
    assert [d.get_text().strip() for d in changes.find_all("del")] == deleted
    assert [i.get_text().strip() for i in changes.find_all("ins")] == inserted


def test_unknown_entry_is_a_404_page(served, client):
    """An entry id that does not exist gives a 404 HTML page that escapes the id."""
    response = client.get("/entries/%3Cb%3Enope%3C%2Fb%3E")
    assert response.status_code == 404
    assert "<b>nope" not in response.text and "&lt;b&gt;nope" in response.text


# -- archived bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "title", "body"),
    [
        ("added", "Community Salute", lambda s: (SCENARIO / "step2" / "active.html").read_bytes()),
        ("added", HOSTILE_TITLE, lambda s: s.hostile_active),
    ],
    ids=["scenario-page", "hostile-page"],
)
def test_capture_is_served_byte_for_byte_in_a_sandbox(served, client, kind, title, body):
    """/captures/ID returns the body exactly as the site sent it, under a sandbox CSP."""
    capture_id = served.event(kind, title)["capture_id"]
    response = client.get(f"/captures/{capture_id}")
    assert response.status_code == 200
    assert response.content == body(served)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == (
        "sandbox; default-src 'none'; img-src 'none'; style-src 'unsafe-inline'; "
        "frame-ancestors 'self'"
    )
    for name, value in HEADERS_ALWAYS.items():
        assert response.headers[name] == value


@pytest.mark.parametrize(
    ("declared", "served_as"),
    [
        ("text/html; charset=utf-8", "text/html; charset=utf-8"),
        ("application/xhtml+xml", "application/xhtml+xml"),
        ('TEXT/HTML;charset="iso-8859-1"', "text/html; charset=iso-8859-1"),
        ("image/svg+xml", "text/plain"),
        ("application/javascript; charset=utf-8", "text/plain; charset=utf-8"),
        ("text/html; charset=x\r\nSet-Cookie: a=b", "text/html"),
        (None, "text/plain"),
    ],
    ids=["html", "xhtml", "quoted-charset", "svg", "script", "bad-charset", "none"],
)
def test_capture_content_type_is_html_or_plain_text(declared, served_as):
    """An archived body keeps an HTML type; anything else is served as plain text."""
    assert web.capture_type(declared) == served_as


@pytest.mark.parametrize(
    ("encoding", "payload", "says"),
    [
        ("gzip", lambda: gzip.compress(b"<html>" + b" " * 3_000_000), "larger than max_bytes"),
        ("gzip", lambda: b"\x1f\x8b\x08\x00 not gzip at all", "corrupt gzip body"),
    ],
    ids=["bomb", "broken"],
)
def test_a_capture_whose_coding_cannot_be_undone_is_a_422(site, tmp_path, encoding, payload, says):
    """A body the server sent compressed past max_bytes once decoded (a bomb), or broken,
    is refused by check (page-error) and by /captures/ID (422, saying why), never a 500
    and never decoded past max_bytes; its view page still shows the capture's banner."""
    body = payload()
    site.serve("/bomb", lambda request: Response(
        body, headers={"Content-Type": "text/html", "Content-Encoding": encoding}))  # fmt: skip
    config = write_config(tmp_path, [{"name": "bomb", "url": site.url("/bomb"), "role": "active"}],
                          monitor={"max_bytes": 1_000_000})  # fmt: skip
    result = run(config, "check", "--json")
    (event,) = json_lines(result)
    assert result.exit_code == 1 and event["kind"] == "page-error"
    loaded = load_config(config)
    answer = web.respond(loaded, f"/captures/{event['capture_id']}")
    assert answer.status == 422
    assert says in answer.body.decode() and "monitor show --raw" in answer.body.decode()
    assert web.respond(loaded, f"/captures/{event['capture_id']}/view").status == 200


def test_a_304_or_an_untyped_capture_is_served_as_the_html_it_is(site, tmp_path):
    """A 304 names no type: its capture is served with the type (and charset) of the body it
    confirms; a 200 sent with no Content-Type, which the check read as HTML, is HTML too.
    Both stay sandboxed. (Before: text/plain, so the framed view showed the source.)"""
    body = (IMLS / "active.html").read_bytes()

    def conditional(request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        typed = {"ETag": '"v1"', "Content-Type": "text/html; charset=windows-1252"}
        return Response(body, headers=typed)

    def untyped(request) -> Response:
        answer = Response(body)
        del answer.headers["Content-Type"]
        return answer

    site.serve("/etag", conditional)
    site.serve("/untyped", untyped)
    pages = [dict(p, name=name, url=site.url(path)) for p, (name, path) in zip(
        imls_pages(site), [("etag", "/etag"), ("untyped", "/untyped")], strict=True)]  # fmt: skip
    config = write_config(tmp_path, pages)
    assert run(config, "check").exit_code == 0
    assert run(config, "check").exit_code == 0
    rows = json_lines(run(config, "snapshots", "--json"))
    (revisit,) = [r for r in rows if r["page"] == "etag" and r["status"] == 304]
    (bare, *_) = [r for r in rows if r["page"] == "untyped"]
    loaded = load_config(config)
    for capture, want in ((revisit, "text/html; charset=windows-1252"), (bare, "text/html")):
        answer = web.respond(loaded, f"/captures/{capture['id']}")
        assert answer.status == 200 and answer.content_type == want
        assert answer.body == body
        assert "sandbox" in answer.csp


@pytest.mark.parametrize("path", ["/captures/999999", "/captures/abc", "/captures/"])
def test_unknown_capture_is_a_404(served, client, path):
    """A capture id that does not exist, or is not a number, gives 404."""
    assert client.get(path).status_code == 404


# -- feeds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feed.atom", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
        ("/feed.rss", "application/rss+xml; charset=utf-8"),
    ],
    ids=["atom", "json", "rss"],
)
def test_feeds_carry_every_event_newest_first(served, client, path, content_type):
    """Each feed parses and lists the events newest first, with its self URL from the Host."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    want = [e["id"] for e in logged(served)]
    if path == "/feed.json":
        feed = response.json()
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        assert [item["_monitor"]["id"] for item in feed["items"]] == want
        # No [feed].base_url: the feed names no address of its own (never one from Host).
        assert "feed_url" not in feed and "home_page_url" not in feed
        return
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == len(want)
    assert parsed.feed.title == "IMLS national initiatives: change log"
    assert parsed.entries[0].title.startswith(("Added: ", "Changed: "))
    if path == "/feed.atom":
        assert "self" not in {link.rel for link in parsed.feed.get("links", [])}


def test_feed_etag_is_stable_and_answers_304(served, client):
    """Two requests give one strong ETag; If-None-Match with it gives 304 and no body."""
    first, second = client.get("/feed.atom"), client.get("/feed.atom")
    etag = first.headers["etag"]
    assert etag == second.headers["etag"] and etag.startswith('"')
    assert first.headers["cache-control"] == "no-cache"
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/feed.atom", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    assert client.get("/feed.atom", headers={"If-None-Match": '"other"'}).status_code == 200


def raw_get(url: str, host: str | None, path: str = "/feed.json") -> tuple[int, bytes]:
    """GET with exactly this Host header (None: none at all), as a rebinding page would send."""
    address = url.removeprefix("http://").rstrip("/")
    connection = http.client.HTTPConnection(address, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:{port}", 200),
        ("127.0.0.1", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST", 200),
        ("127.0.0.1:1", 400),
        ("localhost:1", 400),
        ("changes.example.org", 400),
        ("attacker.example:{port}", 400),
        ("[::1]:{port}", 400),
        ('evil"><x y="', 400),
        ("a b", 400),
        ("", 400),
        (None, 400),
    ],
)
def test_only_its_own_address_is_answered(served, host, status):
    """A Host that is not the bound address or localhost (DNS rebinding) gets 400."""
    port = served.url.rstrip("/").rsplit(":", 1)[1]
    got, body = raw_get(served.url, None if host is None else host.format(port=port))
    assert got == status
    if status == 400:
        assert b"Unknown host" in body or b"Bad request" in body


def test_allowed_hosts_and_base_url_make_the_links(served, tmp_path):
    """A name in [serve].allowed_hosts is answered on any port; the feed's own links come from
    [feed].base_url, whatever the Host header says."""
    text = served.config.read_text(encoding="utf-8")
    text = text.replace(
        "[monitor]",
        '[serve]\nallowed_hosts = ["changes.example.org"]\n'
        '[feed]\nbase_url = "https://example.org/imls/"\n[monitor]',
        1,
    )
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    (tmp_path / "data").symlink_to(served.config.parent / "data")
    with running(config) as url:
        status, body = raw_get(url, "changes.example.org:8443")
        assert status == 200
        feed = json.loads(body)
        assert feed["feed_url"] == "https://example.org/imls/feed.json"
        assert raw_get(url, "other.example.org")[0] == 400


# -- health, methods, paths, headers ------------------------------------------------------------


def test_healthz_reports_the_last_check_and_pages(served, client):
    """/healthz answers 200 JSON with ok, the last check's time and each page's status."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    health = response.json()
    assert health["ok"] is True
    assert health["pages"] == {"active": "ok", "archived": "ok"}
    assert health["last_check"].endswith("Z")


def test_unreadable_database_gives_503(tmp_path):
    """With no database to read, /healthz and / answer 503, with no traceback."""
    config = write_config(tmp_path, [{"name": "p", "url": "http://127.0.0.1:9/", "role": "active"}])
    with running(config) as url:
        health = httpx.get(url + "healthz")
        assert health.status_code == 503 and health.json()["ok"] is False
        page = httpx.get(url)
        assert page.status_code == 503 and "Traceback" not in page.text
        assert page.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_only_get_and_head_are_allowed(served, client, method):
    """Any method but GET and HEAD gets 405 with an Allow header: the server never writes."""
    response = client.request(method, "/feed.atom", content=b"x=1")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/", "/feed.atom", "/healthz"])
def test_head_gives_the_headers_only(served, client, path):
    """HEAD answers with GET's status and headers and no body."""
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    ["/nope", "/entries/", "/entries/a/b", "/feed.xml", "/index.html", "/../etc/passwd", "//nope"],
)
def test_unknown_paths_are_404(served, path):
    """Anything not served is a 404 HTML page (paths sent as written, not normalised)."""
    connection = http.client.HTTPConnection(served.url.removeprefix("http://").rstrip("/"))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 404
    assert response.getheader("content-type") == "text/html; charset=utf-8"


@pytest.mark.parametrize("path", ["/", "entry", "/nope"], ids=["log", "entry", "404"])
def test_html_pages_have_a_strict_policy_and_feed_discovery(served, client, path):
    """Every HTML page sends a strict CSP and nosniff, and links the Atom and JSON feeds."""
    if path == "entry":
        path = "/entries/" + served.event("archived", "IMLS Focus")["entry_id"]
    response = client.get(path)
    policy = response.headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in policy
    assert "script-src" not in policy and "unsafe-inline" not in policy
    for name, value in HEADERS_ALWAYS.items():
        assert response.headers[name] == value
    page = soup(response)
    alternates = {link["type"]: link["href"] for link in page.select('link[rel="alternate"]')}
    assert alternates["application/atom+xml"] == "/feed.atom"
    assert alternates["application/feed+json"] == "/feed.json"
    assert page.find("script") is None and page.main is not None


@pytest.mark.parametrize("path", ["/", "entry", "/nope"], ids=["log", "entry", "404"])
def test_stylesheet_is_allowed_by_its_hash(served, client, path):
    """The policy's style-src hash is the SHA-256 of the <style> the page carries, so it applies."""
    if path == "entry":
        path = "/entries/" + served.event("archived", "IMLS Focus")["entry_id"]
    response = client.get(path)
    style = soup(response).style.string
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}';" in response.headers["content-security-policy"]


def raw_exchange(served, request: bytes) -> bytes:
    host, port = served.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_an_http_0_9_request_gets_a_400_never_a_bare_body(served):
    """`GET /captures/ID` with no version is HTTP/0.9, answered by the body alone: no
    status, no headers, no sandbox. It is refused with a real status line instead."""
    capture_id = json_lines(run(served.config, "snapshots", "--json"))[0]["id"]
    request = f"GET /captures/{capture_id}\r\nHost: localhost\r\n\r\n"
    answer = raw_exchange(served, request.encode())
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"<html" not in answer.lower().split(b"\r\n\r\n", 1)[0]
    assert b"views-row" not in answer  # none of the archived page


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n",
        b"GET http://evil.example/healthz HTTP/1.1\r\nHost: localhost\r\n",
        b"GET http://localhost/healthz HTTP/1.1\r\nHost: evil.example\r\n",
    ],
    ids=["two-hosts", "two-hosts-reversed", "absolute-form", "absolute-form-bad-host"],
)
def test_a_request_naming_another_host_anywhere_gets_400(served, request_head):
    """Two Host headers, or an absolute-form target whose host is not ours: 400."""
    answer = raw_exchange(served, request_head + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]


def test_an_absolute_form_request_for_our_own_host_is_answered(served):
    port = served.url.rstrip("/").rsplit(":", 1)[1].encode()
    answer = raw_exchange(served, b"GET http://localhost:" + port + b"/healthz HTTP/1.1\r\n"
                          b"Host: localhost\r\nConnection: close\r\n\r\n")  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_client_that_goes_away_mid_answer_leaves_no_traceback(served, capfd):
    """A client that resets the connection before the answer is written (here, 20 of
    them, half before sending a Host) costs the server nothing: no traceback on stderr,
    and the next request is answered."""
    host, port = served.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    for n in range(20):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        head = b"GET /feed.atom HTTP/1.1\r\n" + (b"Host: localhost\r\n\r\n" if n % 2 else b"")
        sock.sendall(head)
        sock.close()  # SO_LINGER 0: a reset, so the server's write fails
    time.sleep(0.5)
    assert raw_get(served.url, "localhost")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


def test_malformed_request_gets_an_escaped_400(served):
    """A request line http.server cannot parse gets a 400 page that does not reflect markup."""
    host, port = served.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"<script>x</script> / HTTP/1.1 extra\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"<script>x" not in answer
    assert b"Content-Security-Policy: default-src 'none'" in answer


# -- hostile text ------------------------------------------------------------------------------


MARKUP = '<b onmouseover="alert(1)">it\'s & co</b>'
AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def hostile_events() -> list[Event]:
    """An entry event and a page event with markup in every field a page could fill."""
    changes = {
        "title": Change(MARKUP, MARKUP + " two"),
        "link": Change("javascript:alert(1)", "https://example.org/x"),
        "state": Change(MARKUP, "active"),
    }
    entry = Event(
        "e1",
        "changed",
        AT,
        MARKUP,
        entry_id=MARKUP,
        title=MARKUP,
        link="javascript:alert(1)",
        description=MARKUP,
        changes=changes,
        capture_id=7,
    )
    return [entry, Event("e2", "page-error", AT, MARKUP, detail=MARKUP)]


def render_log() -> str:
    page_row = PageRow(
        name=MARKUP,
        url="javascript:alert(1)",
        role=MARKUP,
        status=MARKUP,
        streak=0,
        normal_count=3,
        entry_count=3,
        last_checked_at=AT,
        last_ok_at=None,
        last_detail=MARKUP,
        last_capture_id=None,
    )
    query = webpages.LogQuery(kinds=("changed",), pages=(MARKUP,), before=9)
    last = CheckRow(
        id=1, started_at=AT, finished_at=AT, pages=(MARKUP,), events=2, failures=0, warc_file=MARKUP
    )
    return webpages.log_html(
        MARKUP, [page_row], last, query, [MARKUP], hostile_events(), older_before=3
    )


def render_entry() -> str:
    entry = EntryRow(MARKUP, MARKUP, "javascript:alert(1)", MARKUP, MARKUP, MARKUP, AT, AT, AT, 2)
    versions = [
        VersionRow(1, AT, MARKUP, MARKUP, MARKUP, "javascript:alert(1)", MARKUP, None),
        VersionRow(2, AT, "active", MARKUP, MARKUP + " two", "https://example.org/", MARKUP, 4),
    ]
    return webpages.entry_html(entry, versions, hostile_events(), site_title=MARKUP)


@pytest.mark.parametrize(
    "render",
    [render_log, render_entry, lambda: webpages.error_html(MARKUP, MARKUP, site_title=MARKUP)],
    ids=["log", "entry", "error"],
)
def test_renderers_escape_every_string_they_are_given(render):
    """The page renderers turn markup in any stored field into text, and links only http(s)."""
    text = render()
    page = BeautifulSoup(text, "html.parser")
    assert page.find(["b", "script", "img"]) is None and "<b " not in text
    assert MARKUP in page.get_text() and MARKUP in page.title.get_text()
    hrefs = [a["href"] for a in page.find_all("a", href=True)]
    assert all(h.startswith(("/", "#", "https://")) for h in hrefs), hrefs
    assert not any("javascript" in h for h in hrefs)


def test_log_renderer_keeps_the_filters_in_its_page_links():
    """The Older and Newest links carry the filters, URL-encoded, and the Older one its seq."""
    page = BeautifulSoup(render_log(), "html.parser")
    filters = "kind=changed&page=%3Cb+onmouseover%3D%22alert%281%29%22%3Eit%27s+%26+co%3C%2Fb%3E"
    assert page.find("a", rel="next")["href"] == f"/?{filters}&before=3"
    assert page.find("a", rel="first")["href"] == f"/?{filters}"


def test_a_link_with_a_space_is_still_a_link_percent_encoded():
    """An entry's link holding a space (a browser follows it as %20) links from the log,
    percent-encoded; one holding a control character is shown as text, never a link."""
    at = datetime(2030, 1, 1, tzinfo=UTC)
    spaced = Event("a" * 32, "added", at, "active", entry_id="e1", title="Annual report",
                   link="https://example.org/annual report.pdf", description="d")  # fmt: skip
    broken = Event("b" * 32, "added", at, "active", entry_id="e2", title="Broken",
                   link="https://example.org/a\tb", description="d")  # fmt: skip
    page = BeautifulSoup(webpages.events_table([spaced, broken]), "html.parser")
    outside = [a["href"] for a in page.find_all("a") if a["href"].startswith("http")]
    assert outside == ["https://example.org/annual%20report.pdf"]


@pytest.mark.parametrize("where", ["log", "entry"])
def test_markup_from_a_watched_page_is_shown_as_text(served, client, where):
    """A title and description full of markup appear escaped, and javascript: never links."""
    path = "/"
    if where == "entry":
        path = "/entries/" + served.event("added", HOSTILE_TITLE)["entry_id"]
    text = client.get(path).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "<script" not in text.lower() and "<img" not in text.lower()
    page = BeautifulSoup(text, "html.parser")
    hrefs = [a["href"] for a in page.find_all("a", href=True)]
    assert all(h.startswith(("/", "#", "http://", "https://")) for h in hrefs), hrefs
    assert not any("javascript" in h.lower() for h in hrefs)
    if where == "entry":
        assert page.h1.get_text() == HOSTILE_TITLE
        assert "javascript:alert(1)" in page.get_text()  # shown, as text only
    for a in page.find_all("a", href=lambda h: h and h.startswith("http")):
        assert a["rel"] == ["nofollow", "noopener", "noreferrer"]


# -- the command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_command_prints_its_url_and_stops_cleanly(served, signum):
    """`monitor serve --port 0` says where it listens, answers there, and exits 0 when told."""
    command = [sys.executable, "-m", "monitor", "--config", str(served.config), "serve"]
    proc = subprocess.Popen([*command, "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # printed once the socket is bound
        assert line.startswith("Serving http://127.0.0.1:"), line
        assert line.rstrip().endswith("(Ctrl-C to stop)")
        assert httpx.get(line.split()[1] + "healthz", timeout=10).json()["ok"] is True
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_serve_started_before_the_first_check_answers_503_then_the_log(site, tmp_path):
    """On a fresh install `serve` may start before `run`'s first cycle: it says so on
    stderr and answers 503 ("no check yet") instead of exiting; once a check is recorded
    the same server shows the change log."""
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    config = write_config(tmp_path, imls_pages(site))
    command = [sys.executable, "-m", "monitor", "--config", str(config), "serve"]
    proc = subprocess.Popen([*command, "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        warning = proc.stderr.readline()
        assert "no database here yet" in warning and "503" in warning, warning
        line = proc.stderr.readline()
        assert line.startswith("Serving http://127.0.0.1:"), line
        base = line.split()[1]
        early = httpx.get(base, timeout=10)
        assert early.status_code == 503 and "No check has been recorded yet" in early.text
        assert httpx.get(base + "healthz", timeout=10).status_code == 503
        assert run(config, "check").exit_code == 0
        assert httpx.get(base, timeout=10).status_code == 200
        assert httpx.get(base + "healthz", timeout=10).json()["ok"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_serve_command_reports_a_busy_port(served):
    """A port already taken is a one-line error naming the address, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(served.config, "serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.stderr


# -- lists and the framed capture view ------------------------------------------------------------


def test_entries_list_filters_by_state_and_links_each_timeline(served, client):
    """/entries lists every entry now; ?state=removed only the removed ones, each linked."""
    everything = soup(client.get("/entries"))
    rows = everything.select("table tbody tr")
    assert len(rows) == len(json_lines(run(served.config, "entries", "--json")))
    removed = soup(client.get("/entries?state=removed"))
    names = [a.get_text() for a in removed.select("table tbody tr td:first-child a")]
    assert names == ["WebWise Conference"]
    href = removed.select_one("table tbody tr td:first-child a")["href"]
    assert client.get(href).status_code == 200


def test_entry_page_accepts_a_unique_prefix(served, client):
    """/entries/PREFIX shows the entry whose id alone starts so."""
    entry_id = served.event("archived", "IMLS Focus")["entry_id"]
    ids = [e["entry_id"] for e in json_lines(run(served.config, "entries", "--json"))]
    prefix = next(entry_id[:n] for n in range(4, len(entry_id) + 1)
                  if sum(i.startswith(entry_id[:n]) for i in ids) == 1)  # fmt: skip
    page = soup(client.get(f"/entries/{prefix}"))
    assert page.h1.get_text() == "IMLS Focus"


def test_captures_list_and_framed_view(served, client):
    """/captures lists captures newest first, filtered by page; each links to a framed view
    with the URL, time, status and the previous/next capture of the same page."""
    listed = soup(client.get("/captures?page=active"))
    links = [a["href"] for a in listed.select("table tbody tr td:first-child a")]
    pages = {td.get_text() for td in listed.select("table tbody tr td:nth-child(3)")}
    assert links and pages == {"active"}
    middle = links[1]
    response = client.get(middle)
    assert response.status_code == 200
    assert "frame-src 'self'" in response.headers["content-security-policy"]
    view = soup(response)
    frame = view.find("iframe")
    assert frame.has_attr("sandbox") and not frame["sandbox"]  # nothing allowed
    assert frame["src"] == middle.removesuffix("/view")
    assert view.find("a", rel="prev") is not None and view.find("a", rel="next") is not None
    assert "HTTP 200" in view.main.get_text()
    body = client.get(frame["src"])
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    assert client.get("/captures/999999/view").status_code == 404
