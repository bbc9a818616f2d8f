"""`monitor check` end to end: page guards, archive, exit codes, through the real CLI."""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    IMLS,
    SCENARIO,
    imls_pages,
    json_lines,
    run,
    write_config,
)
from servers import FaultServer, Reset, Respond, closed_url
from warcio.archiveiterator import ArchiveIterator
from werkzeug import Request, Response

from monitor.check import _collector_paused
from monitor.errors import StoreError
from monitor.lock import data_dir_lock
from monitor.store import SCHEMA_VERSION

STEP1 = SCENARIO / "step1"


def serve_imls(site) -> None:
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")


def kinds(result) -> Counter:
    return Counter(e["kind"] for e in json_lines(result))


@pytest.fixture
def imls(site, tmp_path):
    """A config over the IMLS 2017 pages served locally, after its baseline check."""
    serve_imls(site)
    config = write_config(tmp_path, imls_pages(site), monitor={"confirm_checks": 2})
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result) == []
    return config


def test_baseline_of_the_imls_pages(imls):
    """Both IMLS pages together give 23 active and 8 archived entries (31), per the fixture."""
    active = json_lines(run(imls, "entries", "--state", "active", "--json"))
    archived = json_lines(run(imls, "entries", "--state", "archived", "--json"))
    assert (len(active), len(archived)) == (23, 8)
    titles = {e["title"] for e in active}
    assert "Let’s Move! Museums & Gardens" in titles
    lisc = next(e for e in active if e["title"].startswith("Local Initiatives"))
    assert lisc["page"] == "active"  # on both pages: fields from the active one


def status(code: int):
    return lambda request: Response("oops", status=code)


@pytest.mark.parametrize(
    ("answer", "detail_part"),
    [
        pytest.param(status(500), "HTTP 500", id="500"),
        pytest.param(status(403), "HTTP 403", id="403"),
        pytest.param(
            lambda r: Response(b"%PDF-1.4 ...", content_type="application/pdf"),
            "not HTML",
            id="pdf",
        ),
    ],
)
def test_page_error_once_then_recovered(imls, site, answer, detail_part):
    """A failing page emits one page-error, keeps its entries, and recovers with page-recovered."""
    site.serve(ACTIVE_PATH, answer)
    first = run(imls, "check", "--json")
    (event,) = json_lines(first)
    assert event["kind"] == "page-error" and event["page"] == "active"
    assert detail_part in event["detail"]
    assert first.exit_code == 1
    again = run(imls, "check", "--json")
    assert again.exit_code == 1  # still in error
    assert json_lines(again) == []  # same episode: nothing more
    assert len(json_lines(run(imls, "entries", "--state", "active", "--json"))) == 23
    serve_imls(site)
    back = run(imls, "check", "--json")
    assert back.exit_code == 0
    assert [e["kind"] for e in json_lines(back)] == ["page-recovered"]


def test_empty_page_is_an_anomaly_confirmed_at_the_second_check(imls, site):
    """An emptied page is page-anomaly; removals wait for the 2nd check, then it is normal."""
    site.serve(ACTIVE_PATH, lambda r: Response(b"<html></html>", content_type="text/html"))
    first = run(imls, "check", "--json")
    assert first.exit_code == 0  # fetched and extracted: an anomaly is not an error
    assert [e["kind"] for e in json_lines(first)] == ["page-anomaly"]
    assert len(json_lines(run(imls, "entries", "--state", "active", "--json"))) == 23
    second = run(imls, "check", "--json")
    # 15 were only on the active page; the 8 also on the archived page are now archived.
    assert kinds(second) == Counter({"removed": 15, "archived": 8})
    assert kinds(run(imls, "check", "--json")) == Counter()  # the episode ended
    serve_imls(site)
    back = run(imls, "check", "--json")
    assert kinds(back) == Counter({"restored": 23})  # no page-recovered after a confirmed anomaly


def test_page_gone_waits_for_confirm_checks(imls, site):
    """A 404 page is page-gone at once; its entries are removed at the 2nd gone check only."""
    site.serve(ARCHIVED_PATH, status(404))
    first = run(imls, "check", "--json")
    assert first.exit_code == 1
    assert kinds(first) == Counter({"page-gone": 1})
    assert len(json_lines(run(imls, "entries", "--state", "archived", "--json"))) == 8
    second = run(imls, "check", "--json")
    assert second.exit_code == 1
    assert kinds(second) == Counter({"removed": 8})  # the 8 only on the archived page
    assert kinds(run(imls, "check", "--json")) == Counter()
    serve_imls(site)
    back = run(imls, "check", "--json")
    assert back.exit_code == 0
    assert kinds(back) == Counter({"page-recovered": 1, "archived": 8})


def test_redirect_is_followed_and_recorded(imls, site, tmp_path):
    """A 301 to the page's new address is followed; both hops are archived; nothing changes."""
    moved = "/issues/national-initiatives-new"
    site.serve_file(moved, IMLS / "active.html")
    site.serve(ACTIVE_PATH, lambda r: Response("", status=301, headers={"Location": moved}))
    result = run(imls, "check", "--json")
    assert result.exit_code == 0, result.stderr
    # Links are made absolute against the final URL: same site, same paths, no event.
    assert json_lines(result) == []
    captures = json_lines(run(imls, "snapshots", "--page", "active", "--json"))
    assert [c["status"] for c in captures[:2]] == [200, 301]
    assert captures[0]["url"] == site.url(moved)


def test_slow_answer_past_the_timeout_is_a_page_error(site, tmp_path):
    """An answer slower than `timeout` is a page-error naming the timeout; nothing is removed."""
    config = write_config(tmp_path, imls_pages(site), monitor={"timeout": 0.5})
    serve_imls(site)
    assert run(config, "check").exit_code == 0

    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response((IMLS / "active.html").read_bytes(), content_type="text/html")

    site.serve(ACTIVE_PATH, slow)
    result = run(config, "check", "--json")
    assert result.exit_code == 1
    (event,) = json_lines(result)
    assert event["kind"] == "page-error"
    assert "timeout" in event["detail"] or "too slow" in event["detail"]
    assert len(json_lines(run(config, "entries", "--state", "active", "--json"))) == 23


def test_connection_reset_is_a_page_error(tmp_path):
    """A server that resets the connection mid-body gives a page-error; the cycle still records."""
    html = (STEP1 / "active.html").read_bytes()
    with FaultServer() as server:
        server.set("/a", Respond(body=html))
        config = write_config(
            tmp_path, [{"name": "active", "url": server.url("/a"), "role": "active"}]
        )
        assert run(config, "check").exit_code == 0
        server.set("/a", Reset(after=len(html) // 2, body=html))
        result = run(config, "check", "--json")
    assert result.exit_code == 1
    assert [e["kind"] for e in json_lines(result)] == ["page-error"]
    assert len(json_lines(run(config, "entries", "--json"))) == 4


def test_no_network_gives_a_clear_page_error(tmp_path):
    """With nothing listening, check reports a page-error per page and exits 1, no traceback."""
    url = closed_url()
    config = write_config(tmp_path, [{"name": "active", "url": url, "role": "active"}])
    result = run(config, "check")
    assert result.exit_code == 1
    assert "page-error" in result.stdout
    assert url.split("//")[1].split("/")[0] in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unchanged_page_is_a_revisit_and_304_too(imls, site, tmp_path):
    """An identical body is archived as a revisit; an ETag 304 as a server-not-modified revisit."""
    assert json_lines(run(imls, "check", "--json")) == []
    etag = '"v1"'
    body = (IMLS / "active.html").read_bytes()

    def with_etag(request: Request) -> Response:
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type="text/html", headers={"ETag": etag})

    site.serve(ACTIVE_PATH, with_etag)
    assert json_lines(run(imls, "check", "--json")) == []  # 200 with an ETag, same body
    assert json_lines(run(imls, "check", "--json")) == []  # 304
    last_active = [r for r in site.requests if r.path == ACTIVE_PATH][-1]
    assert last_active.headers.get("If-None-Match") == etag
    conn = sqlite3.connect(tmp_path / "data" / "monitor.db")
    (last_warc,) = conn.execute("SELECT warc_file FROM checks ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    profiles = []
    with open(tmp_path / "data" / "warc" / last_warc, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "revisit":
                profiles.append(record.rec_headers.get_header("WARC-Profile").rsplit("/", 1)[1])
    # The day's file holds every check's records; the last check's two pages come last:
    # the archived page unchanged, the active page a 304.
    assert sorted(profiles[-2:]) == ["identical-payload-digest", "server-not-modified"]
    shown = run(imls, "snapshots", "--page", "active", "--json")
    latest = json_lines(shown)[0]
    assert latest["status"] == 304 and latest["record_type"] == "revisit"
    # `show` of the 304 prints the original body, byte for byte.
    out = run(imls, "show", str(latest["id"]))
    assert out.exit_code == 0
    assert hashlib.sha256(out.stdout_bytes).digest() == hashlib.sha256(body).digest()


def test_verify_passes_after_a_long_scenario(site, tmp_path):
    """After many checks with changes, failures and revisits, verify finds nothing wrong."""
    config = write_config(tmp_path, imls_pages(site))
    steps = ["step1", "step2", "step3"]
    for step in steps * 3:
        site.serve_file(ACTIVE_PATH, SCENARIO / step / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / step / "archived.html")
        run(config, "check")
        run(config, "check")  # unchanged: revisits
    site.serve(ACTIVE_PATH, status(503))
    run(config, "check")
    result = run(config, "verify")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "OK" in result.stderr
    # The WARC files read back with warcio from start to end.
    records = 0
    for path in (tmp_path / "data" / "warc").glob("*.warc.gz"):
        with open(path, "rb") as stream:
            records += sum(1 for _ in ArchiveIterator(stream))
    assert records > 30


def test_verify_reports_a_damaged_record(imls, tmp_path):
    """A byte changed inside an archived body makes verify fail, naming the capture."""
    (path,) = (tmp_path / "data" / "warc").glob("*.warc.gz")
    data = bytearray(gzip.decompress(path.read_bytes()))
    index = data.index(b"Open eBooks")
    data[index] = ord("X")
    path.write_bytes(gzip.compress(bytes(data)))
    result = run(imls, "verify")
    assert result.exit_code == 1
    assert "error" in result.stdout


TAMPERING = {
    "payload digest": ("UPDATE captures SET payload_digest = 'sha1:AAAA' "
                       "WHERE id = (SELECT min(id) FROM captures)", "the database says payload"),
    "target URI": ("UPDATE captures SET target_uri = 'http://evil.example/' "
                   "WHERE id = (SELECT min(id) FROM captures)", "the database says URL"),
    "revisit's original": ("UPDATE captures SET original_capture_id = (SELECT min(id) FROM "
                           "captures WHERE page = 'archived') WHERE id = (SELECT max(id) FROM "
                           "captures WHERE record_type = 'revisit' AND page = 'active')",
                           "the database says it revisits"),
    "version's capture": ("UPDATE entry_versions SET capture_id = 12345 WHERE rowid = 1",
                          "version points at a missing capture"),
}  # fmt: skip


@pytest.mark.parametrize("what", list(TAMPERING))
def test_verify_reports_a_database_row_that_the_archive_contradicts(imls, tmp_path, what):
    """A capture's digest, URL or original, or a version's capture, that does not match
    the WARC record (or any capture) is an error: `show` would print the wrong body."""
    assert run(imls, "check").exit_code == 0  # unchanged: revisits
    assert run(imls, "verify").exit_code == 0
    sql, says = TAMPERING[what]
    with sqlite3.connect(tmp_path / "data" / "monitor.db") as db:
        assert db.execute(sql).rowcount == 1
    db.close()
    result = run(imls, "verify")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert says in result.stdout


def test_last_seen_moves_with_every_check_that_lists_the_entry(imls, site, tmp_path):
    """An unchanged page (a revisit) still saw its entries: `entries` and `history` say
    they were last seen at that check, not at the last check whose body was new."""
    import time

    def page_ok_at(name: str) -> str:
        pages = json.loads(run(imls, "status", "--json").stdout)["pages"]
        return next(p["last_ok_at"] for p in pages if p["name"] == name)

    first = {e["entry_id"]: e["last_seen"] for e in json_lines(run(imls, "entries", "--json"))}
    time.sleep(1.1)  # times are kept to the second
    assert run(imls, "check").exit_code == 0  # unchanged: revisits
    rows = json_lines(run(imls, "entries", "--json"))
    seen = page_ok_at("active")
    assert seen > max(first.values())
    active = [e for e in rows if e["state"] == "active"]
    assert {e["last_seen"] for e in active} == {seen}
    one = active[0]["entry_id"]
    assert json_lines(run(imls, "history", one, "--json"))[0]["entry"]["last_seen"] == seen
    # An entry gone from the page keeps its last sighting.
    page = (IMLS / "active.html").read_text(encoding="utf-8")
    title = "Open eBooks"  # on the active page alone
    start = page.rindex('<div class="views-row', 0, page.index(title))
    end = page.index('<div class="views-row', page.index(title))
    site.serve(ACTIVE_PATH, page[:start] + page[end:])
    time.sleep(1.1)
    assert run(imls, "check").exit_code == 0
    after = {e["title"]: e for e in json_lines(run(imls, "entries", "--json"))}
    assert after[title]["state"] == "removed"
    # the last check whose body listed it (an unchanged check since is not recorded per entry)
    assert after[title]["last_seen"] <= seen
    still = next(t for t in after if t != title and after[t]["page"] == "active")
    assert after[still]["last_seen"] == page_ok_at("active") > seen


def test_a_second_check_refuses_while_one_runs(imls, tmp_path):
    """While a cycle holds the data directory, another check says so and exits 3 (not 1:
    cron wrappers tell "busy" from "a page failed")."""
    with data_dir_lock(tmp_path / "data"):
        result = run(imls, "check")
        waited = run(imls, "check", "--wait", "0.3")
    assert result.exit_code == 3
    assert "already running" in result.stderr and "pass --wait SECONDS" in result.stderr
    assert waited.exit_code == 3  # and the hint does not ask for what was just done
    assert "after waiting 0.3 s" in waited.stderr and "pass --wait" not in waited.stderr


def test_a_check_counts_the_failures_of_the_pages_it_checked(imls, site):
    """`check --page active` exits 0 while the page it did not check stays gone: its
    record says 0 failures, as its exit status does (it said 1, the other page's)."""
    site.serve(ARCHIVED_PATH, status(404))
    assert run(imls, "check").exit_code == 1
    assert json.loads(run(imls, "status", "--json").stdout)["last_check"]["failures"] == 1
    assert run(imls, "check", "--page", "active").exit_code == 0
    last = json.loads(run(imls, "status", "--json").stdout)["last_check"]
    assert (last["pages"], last["failures"]) == (["active"], 0)
    assert "0 failures" in run(imls, "status").stdout


def test_check_page_only_checks_that_page(imls, site):
    """--page checks only the named page; an unknown name is a usage error (exit 2)."""
    before = len(site.requests)
    assert run(imls, "check", "--page", "archived").exit_code == 0
    assert [r.path for r in site.requests[before:]] == [ARCHIVED_PATH]
    bad = run(imls, "check", "--page", "nope")
    assert bad.exit_code == 2
    assert "nope" in bad.stderr


def test_bad_config_exits_2_naming_the_key(tmp_path):
    """A config error exits 2 with the file and the key, no traceback."""
    path = tmp_path / "config.toml"
    path.write_text('[monitor]\nretries = "three"\n[[pages]]\nname="a"\nurl="http://x"\n')
    result = run(path, "check")
    assert result.exit_code == 2
    assert str(path) in result.stderr and "monitor.retries" in result.stderr
    missing = run(tmp_path / "nope.toml", "check")
    assert missing.exit_code == 2
    assert "nope.toml" in missing.stderr


def test_history_shows_every_version(site, tmp_path):
    """history lists each version of an edited entry and its events."""
    config = write_config(tmp_path, imls_pages(site))
    for step in ("step1", "step2"):
        site.serve_file(ACTIVE_PATH, SCENARIO / step / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / step / "archived.html")
        run(config, "check")
    entry = next(
        e for e in json_lines(run(config, "entries", "--json")) if e["title"] == "Museums for All"
    )
    lines = json_lines(run(config, "history", entry["entry_id"], "--json"))
    versions = [line["version"] for line in lines if "version" in line]
    events = [line["event"] for line in lines if "event" in line]
    assert [v["version"] for v in versions] == [1, 2]
    assert (
        "42 states" in versions[1]["description"] and "42 states" not in versions[0]["description"]
    )
    assert [e["kind"] for e in events] == ["changed"]
    text = run(config, "history", entry["entry_id"])
    assert text.exit_code == 0 and "v2" in text.stdout
    assert run(config, "history", "nope").exit_code == 1


def test_database_is_plain_sqlite_in_wal_mode(imls, tmp_path):
    """monitor.db opens in the sqlite3 module, in WAL mode, with the documented tables."""
    conn = sqlite3.connect(tmp_path / "data" / "monitor.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"pages", "captures", "entries", "entry_versions", "events", "checks"} <= tables
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 31
    finally:
        conn.close()


def test_feed_file_is_rewritten_after_each_check(site, tmp_path):
    """With [feed].path set, each check rewrites the feed with the new events."""
    config = write_config(tmp_path, imls_pages(site), feed={"path": "changes.atom"})
    for step in ("step1", "step2"):
        site.serve_file(ACTIVE_PATH, SCENARIO / step / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / step / "archived.html")
        assert run(config, "check").exit_code == 0
    feed = (tmp_path / "changes.atom").read_text(encoding="utf-8")
    assert "Archived: IMLS Focus" in feed and "Added: Community Salute" in feed


def test_an_unchanged_check_loads_only_what_it_uses(site, tmp_path):
    """A check of unchanged pages without [[notify]] (cron's one-off, most often) imports
    no notification module (apprise or the outbox), no feed writer (feedgen, lxml), none
    of the readers' rows or entry pages' records, no pickle, and not anyio's event loop
    backend (httpcore's locks are asyncio's here): each would add milliseconds to every
    start (bench/README.md, "speed 5" and "speed 7")."""
    config = write_config(tmp_path, imls_pages(site), feed={"path": "changes.atom"})
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    assert run(config, "check").exit_code == 0  # the first check writes the feed
    unused = (
        "apprise", "monitor.notify", "feedgen", "lxml", "monitor.feed", "pickle",
        "monitor.store.reading", "monitor.store.detail_rows", "monitor.store.sqlite_detail",
        "anyio._backends",
    )  # fmt: skip
    code = (
        "import sys\n"
        "from monitor.cli import main\n"
        f"sys.argv = ['monitor', '--config', {str(config)!r}, 'check']\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        f"    unused = {unused!r}\n"
        "    loaded = [m for m in sys.modules for u in unused if (m + '.').startswith(u + '.')]\n"
        "    print(sorted(loaded), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    summary, loaded = out.stderr.strip().splitlines()[-2:]
    assert summary.endswith("0 events")
    assert loaded == "[]"


def test_the_feed_files_directory_is_made_when_missing(site, tmp_path, cluster):
    """[feed].path in a directory that does not exist yet (data_dir before anything made
    it: with [cluster] nothing else does) is written there, the check exit 0."""
    config = write_config(tmp_path, imls_pages(site), feed={"path": "data/feeds/changes.atom"},
                          **({"cluster": cluster} if cluster else {}))  # fmt: skip
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    result = run(config, "check")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "data" / "feeds" / "changes.atom").read_bytes().startswith(b"<?xml")


def test_feed_file_is_left_alone_when_nothing_in_it_would_change(site, tmp_path):
    """A check with no new event keeps the feed file as it is; a deleted or edited one,
    or a changed [feed] title, is written again."""
    config = write_config(tmp_path, imls_pages(site), feed={"path": "changes.atom"})
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    feed = tmp_path / "changes.atom"
    assert run(config, "check").exit_code == 0
    written = feed.stat().st_mtime_ns, feed.read_bytes()
    assert run(config, "check").exit_code == 0  # nothing changed on the site
    assert (feed.stat().st_mtime_ns, feed.read_bytes()) == written

    feed.write_text("scribbled over", encoding="utf-8")
    assert run(config, "check").exit_code == 0
    assert feed.read_bytes() == written[1]
    feed.unlink()
    assert run(config, "check").exit_code == 0
    assert feed.read_bytes() == written[1]

    text = config.read_text(encoding="utf-8").replace("[feed]", '[feed]\ntitle = "Renamed"')
    config.write_text(text, encoding="utf-8")
    assert run(config, "check").exit_code == 0
    assert b"Renamed" in feed.read_bytes()


def test_read_commands_before_any_check(tmp_path):
    """Reading commands on a data dir with no database say so clearly (exit 1)."""
    config = write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/", "role": "active"}])
    result = run(config, "log")
    assert result.exit_code == 1
    assert "monitor check" in result.stderr
    assert not (tmp_path / "data" / "monitor.db").exists()


def test_data_dir_option_overrides_config(imls, tmp_path, site):
    """--data-dir, before or after the subcommand, puts the data elsewhere."""
    other = tmp_path / "elsewhere"
    result = run(imls, "check", "--data-dir", str(other))
    assert result.exit_code == 0
    assert (other / "monitor.db").exists()
    entries = run(imls, "--data-dir", str(other), "entries", "--json")
    assert len(json_lines(entries)) == 31


def test_a_304_gives_the_same_events_as_a_full_reparse(imls, site):
    """A 304 for an anomalous body is re-read from the archive: removals confirm as for a 200."""
    emptied = b"<html><body><div class='view-content'></div></body></html>"

    def emptied_with_etag(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"empty"':
            return Response(status=304, headers={"ETag": '"empty"'})
        return Response(emptied, content_type="text/html", headers={"ETag": '"empty"'})

    site.serve(ACTIVE_PATH, emptied_with_etag)
    assert kinds(run(imls, "check", "--json")) == Counter({"page-anomaly": 1})
    second = run(imls, "check", "--json")
    last_active = [r for r in site.requests if r.path == ACTIVE_PATH][-1]
    assert last_active.headers.get("If-None-Match") == '"empty"'  # answered 304
    assert kinds(second) == Counter({"removed": 15, "archived": 8})


def test_changed_selectors_reparse_an_identical_body(imls, site, tmp_path):
    """The fast path keys on the selectors too: new selectors on the same body re-extract."""
    text = imls.read_text(encoding="utf-8")
    imls.write_text(text.replace('title = ".views-field-title"', 'title = "h2.none"', 1))
    result = run(imls, "check", "--json")
    events = json_lines(result)
    # Titles now come out empty on the active page: each of its 23 entries changed.
    assert Counter(e["kind"] for e in events) == Counter({"changed": 23})
    assert all(e["changes"]["title"]["after"] == "" for e in events)


def _page_states():
    """A sequence of (active, archived) answers: changes, an anomaly, an error, repeats."""
    empty = b"<html><body><div class='view-content'></div></body></html>"
    a1, r1, a2, r2, a3, r3 = (
        (SCENARIO / step / f"{name}.html").read_bytes()
        for step in ("step1", "step2", "step3")
        for name in ("active", "archived")
    )
    return [
        (a1, r1),
        (a1, r1),  # unchanged
        (a2, r2),
        (empty, r2),  # anomaly
        (empty, r2),  # the same anomalous body again: confirmed
        (None, r2),  # 500
        (a3, r3),
        (a3, r3),  # unchanged
        (a1, r3),
    ]


def test_fast_paths_give_the_same_events_as_full_parses(site, tmp_path):
    """304s and identical bodies (fast paths) give exactly the events that full re-parses give.

    The reference run appends a fresh comment to every body, so no answer is ever
    byte-identical and every check extracts and matches from scratch.
    """
    runs, configs = {}, {}
    for label, fast in (("fast", True), ("reference", False)):
        (tmp_path / label).mkdir()
        config = configs[label] = write_config(tmp_path / label, imls_pages(site))
        runs[label] = []
        for n, (active, archived) in enumerate(_page_states()):
            site.serve(ACTIVE_PATH, _answer(active, n, fast))
            site.serve(ARCHIVED_PATH, _answer(archived, n, fast))
            events = json_lines(run(config, "check", "--json"))
            runs[label].append(sorted((e["kind"], e.get("title") or e["page"]) for e in events))
    assert runs["fast"] == runs["reference"]
    assert sum(map(len, runs["fast"])) >= 8  # the sequence does produce events
    fast_captures = json_lines(run(configs["fast"], "snapshots", "--json"))
    assert any(c["status"] == 304 for c in fast_captures)  # the fast path was taken


def _answer(data: bytes | None, n: int, fast: bool):
    if data is None:
        return status(500)
    etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
    if not fast:
        data += f"<!-- check {n} -->".encode()

    def answer(request: Request) -> Response:
        if fast and request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag} if fast else {}
        return Response(data, content_type="text/html; charset=utf-8", headers=headers)

    return answer


def test_a_cycle_leaves_the_garbage_collector_running_even_when_a_phase_fails(imls):
    """A cycle pauses Python's cyclic collector while it builds its bulk records; neither a
    check nor a phase that raises may leave it off (a daemon would never collect again)."""
    assert run(imls, "check").exit_code == 0  # a second check, in this process
    assert gc.isenabled()
    with pytest.raises(StoreError, match="disk full"), _collector_paused():
        assert not gc.isenabled()
        raise StoreError("disk full")
    assert gc.isenabled()
    gc.disable()  # a caller's own pause is left as it was
    try:
        with _collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_version_3_database_upgraded_still_revisits_what_it_archived(imls, tmp_path):
    """Upgrading to version 4 fills last_responses from the history it adds them to: the
    next check of the unchanged pages writes revisits of the responses archived before."""
    db_path = tmp_path / "data" / "monitor.db"
    with sqlite3.connect(db_path) as db:
        db.executescript(
            "DROP TRIGGER captures_last_response; DROP TABLE last_responses;"
            "UPDATE meta SET value = '3' WHERE key = 'schema_version';"
        )
        archived = {r for (r,) in db.execute("SELECT record_id FROM captures")}
    db.close()
    assert run(imls, "check").exit_code == 0
    with sqlite3.connect(db_path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        latest = db.execute(
            "SELECT record_type, refers_to FROM captures WHERE check_id = "
            "(SELECT max(id) FROM checks)"
        ).fetchall()
    db.close()
    assert version == str(SCHEMA_VERSION)
    assert len(latest) == 2
    assert all(kind == "revisit" and refers in archived for kind, refers in latest)


def test_a_version_4_database_gains_the_held_column_and_keeps_its_lists(imls, tmp_path):
    """Upgrading to version 5 adds placements.held (nothing was held before it); the pages'
    lists are as they were, and the next check reports nothing new."""
    db_path = tmp_path / "data" / "monitor.db"
    with sqlite3.connect(db_path) as db:
        db.executescript(
            "ALTER TABLE placements DROP COLUMN held;"
            "UPDATE meta SET value = '4' WHERE key = 'schema_version';"
        )
        before = db.execute("SELECT page, position, entry_id FROM placements").fetchall()
    db.close()
    result = run(imls, "check", "--json")
    assert result.exit_code == 0 and json_lines(result) == []
    with sqlite3.connect(db_path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        after = db.execute("SELECT page, position, entry_id, held FROM placements").fetchall()
    db.close()
    assert version == str(SCHEMA_VERSION) == "5"
    assert [row[:3] for row in after] == before and {row[3] for row in after} == {0}


def stored_version(config: Path, tmp_path: Path, version: str) -> Path:
    """After a check, monitor.db with `version` as its schema version; its path."""
    assert run(config, "check").exit_code == 0
    db_path = tmp_path / "data" / "monitor.db"
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    db.close()
    return db_path


@pytest.mark.parametrize("command", [["check"], ["log"], ["status"]], ids=lambda c: c[0])
def test_a_database_from_a_newer_monitor_is_refused_and_left_unchanged(imls, tmp_path, command):
    """A newer schema version is refused (exit 2, both versions named), never rewritten."""
    db_path = stored_version(imls, tmp_path, "99")
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    result = run(imls, *command)
    assert result.exit_code == 2
    assert "schema version 99" in result.stderr and f"up to {SCHEMA_VERSION}" in result.stderr
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    with sqlite3.connect(db_path) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert version == "99"


@pytest.mark.parametrize("version", ["abc", "0", "-3"])
@pytest.mark.parametrize("command", [["check"], ["log"], ["status"]], ids=lambda c: c[0])
def test_a_schema_version_no_monitor_wrote_is_a_damaged_database(
    imls, tmp_path, command, version
):
    """A version row no monitor wrote (not a number, or below 1) is an error naming the
    database, never a traceback nor a "migration" of it."""
    db_path = stored_version(imls, tmp_path, version)
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    result = run(imls, *command)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert str(db_path) in result.stderr
    assert f"reads '{version}', not a version monitor ever wrote" in result.stderr
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_status_says_the_database_is_damaged_not_that_nothing_ran(imls, tmp_path, damage):
    """`status` on a damaged monitor.db fails as `log` does (exit 1, the path named); it
    does not report "last check: none yet" as if no check had ever run."""
    assert run(imls, "check").exit_code == 0
    db_path = tmp_path / "data" / "monitor.db"
    for leftover in db_path.parent.glob("monitor.db-*"):
        leftover.unlink()
    whole = db_path.read_bytes()
    db_path.write_bytes(os.urandom(5000) if damage == "random bytes" else whole[: len(whole) // 2])
    for command in (["status"], ["status", "--json"], ["log"]):
        result = run(imls, *command)
        assert result.exit_code == 1, (command, result.stdout)
        assert str(db_path) in result.stderr and "none yet" not in result.stdout


def test_status_before_the_first_check_says_none_yet(imls, tmp_path):
    """No database, or one whose tables are still being created: no check has run."""
    db_path = tmp_path / "data" / "monitor.db"
    db_path.unlink()
    assert "last check: none yet" in run(imls, "status").stdout
    with sqlite3.connect(db_path) as db:  # a first check between CREATE TABLE meta and its row
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.close()
    result = run(imls, "status", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["last_check"] is None


def test_the_store_reads_members_alone_and_their_fields_on_demand(imls, tmp_path):
    """A cycle's state carries each page's members; `member_fields` reads each member's
    fields as that page shows them, in page order (None where a v2 database left none)."""
    from monitor.models import PageState
    from monitor.store import SqliteStore

    db_path = tmp_path / "data" / "monitor.db"
    store = SqliteStore(db_path)
    try:
        state = store.read_cycle_state(
            [PageState("active", "active"), PageState("archived", "archived")]
        )
        members = state.pages["active"].state.members
        fields = store.member_fields(["active", "archived", "no such page"])
        assert len(fields["active"]) == len(members) == 23
        assert len(fields["archived"]) == len(state.pages["archived"].state.members) == 16
        assert fields["no such page"] == ()
        pairs = zip(members, fields["active"], strict=True)
        shown = {store.entry(m).title: f.title for m, f in pairs}
        assert shown["Let’s Move! Museums & Gardens"] == "Let’s Move! Museums & Gardens"
        assert all(title == shown_title for title, shown_title in shown.items())
        store.conn.execute("UPDATE placements SET title = NULL WHERE page = 'archived'")
        store.conn.commit()
        assert set(store.member_fields(["archived"])["archived"]) == {None}
    finally:
        store.close()
