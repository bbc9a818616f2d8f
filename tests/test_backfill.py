"""`monitor backfill` end to end: a local web archive, the real CLI, a real database and WARCs."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive_history import ACTIVE_URL, ARCHIVED_URL
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    IMLS,
    Site,
    imls_pages,
    json_lines,
    run,
    write_config,
)
from fake_archive import ArchivedCapture, FakeArchive, imls_history
from warcio.archiveiterator import ArchiveIterator

from monitor.backfill import RateLimiter
from monitor.backfill.run import run_backfill
from monitor.config import load_config

IMLS_PAGES = [
    {"name": "active", "url": ACTIVE_URL, "role": "active"},
    {"name": "archived", "url": ARCHIVED_URL, "role": "archived"},
]

# The imls history's imported events, in time order: (capture time, kind, page, title).
EXPECTED = [
    ("2015-11-03T10:15:00Z", "changed", "active", "Museums for All"),
    ("2015-11-03T10:15:00Z", "added", "active", "Community Salute"),
    ("2015-11-05T08:00:00Z", "archived", "archived", "IMLS Focus"),  # held two days, one event
    ("2016-04-10T14:30:00Z", "restored", "active", "Film Forward"),
    ("2016-04-12T09:00:00Z", "removed", "archived", "WebWise Conference"),
    ("2016-09-01T00:00:00Z", "removed", "active", "Film Forward"),  # hold_for ran out
    ("2017-02-15T12:00:00Z", "changed", "active", "Museums for All"),
    ("2017-02-15T12:00:00Z", "restored", "active", "IMLS Focus"),
    *[("2017-02-15T12:00:00Z", "added", "active", t) for t in (
        "U.S. Department of Labor Employment and Training Administration",
        "U.S. Citizenship and Immigration Services",
        "National Student Poets Program",
        "National Medal for Museum and Library Service",
        "National Arts and Humanities Youth Program Awards",
        "National STEM Video Game Challenge",
        "StoryCorps: National Medal Stories",
        "Let\u2019s Move! Museums & Gardens",
        "ConnectED Library Challenge",
        "Collections Assessment for Preservation",
        "Campaign for Grade-Level Reading",
        "Building Digital Communities",
        "Local Initiatives Support Corporation (LISC)",
        "Digging into Data Challenge",
        "Learning Labs in Libraries and Museums",
        "BUILD Initiative",
    )],
    ("2017-02-15T12:00:00Z", "restored", "active", "Film Forward"),
    ("2017-02-15T12:00:00Z", "added", "active", "Consumer Financial Protection Bureau"),
    *[("2017-02-15T12:15:00Z", "added", "archived", t) for t in (
        "Office of Career, Technical, and Adult Education",
        "Health Insurance Marketplace",
        "Head Start and Child Care",
        "International Strategic Partnership Initiative",
        "Museums, Libraries, and 21st Century Skills",
    )],
    ("2017-02-15T12:15:00Z", "archived", "archived", "WebWise Conference"),
    ("2017-08-15T00:00:00Z", "changed", "active", "Museums for All"),
    ("2017-08-15T00:00:00Z", "changed", "active", "Digging into Data Challenge 2017"),
    ("2017-08-15T00:00:00Z", "archived", "archived", "Learning Labs in Libraries and Museums"),
    # Left the active page, not on the archived page's next capture: dated where it left.
    ("2017-08-15T00:00:00Z", "removed", "active", "Consumer Financial Protection Bureau"),
]  # fmt: skip


def archive_config(
    tmp_path: Path, archive: FakeArchive, pages: list[dict], **backfill: object
) -> Path:
    """A config whose [backfill] points at the fake archive, fast enough for a test."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, pages)
    settings = {"cdx_url": archive.cdx_url, "memento_url": archive.memento_template,
                "rate_per_minute": 600000, **backfill}  # fmt: skip
    lines = ["[backfill]"] + [f"{k} = {_toml(v)}" for k, v in settings.items()]
    with config.open("a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return config


def _toml(value: object) -> str:
    return str(value) if isinstance(value, int | float) else f'"{value}"'


def summary(events: list[dict]) -> list[tuple[str, str, str, str]]:
    return [(e["at"], e["kind"], e["page"], e.get("title") or e.get("detail")) for e in events]


def log_oldest_first(config: Path) -> list[dict]:
    return list(reversed(json_lines(run(config, "log", "--json"))))


def test_the_archive_history_becomes_imported_events_in_time_order(tmp_path):
    """Every capture is classified in time order: moves held in capture time, baselines silent."""
    with FakeArchive(imls_history()) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        result = run(config, "backfill", "--json")
    assert result.exit_code == 0, result.stderr
    printed = json_lines(result)
    assert summary(printed) == EXPECTED
    assert {e["source"] for e in printed} == {"backfill"}
    assert "15 captures found, 15 fetched" in result.stderr
    assert "2 no layout fits" in result.stderr and "2 archive error pages" in result.stderr
    assert summary(log_oldest_first(config)) == EXPECTED
    removed = next(e for e in printed if e["title"] == "Consumer Financial Protection Bureau"
                   and e["kind"] == "removed")  # fmt: skip
    captures = {c["id"]: c for c in json_lines(run(config, "snapshots", "--json"))}
    assert captures[removed["capture_id"]]["at"] == "2017-08-15T00:00:00Z"
    # Every event names the capture it was observed in; one that moves to an archived page
    # read earlier names the active page's capture it left (before: none).
    assert all(e["capture_id"] in captures for e in printed), [
        summary([e]) for e in printed if e["capture_id"] not in captures]
    moved = next(e for e in printed if e["title"] == "Learning Labs in Libraries and Museums"
                 and e["kind"] == "archived")  # fmt: skip
    left = captures[moved["capture_id"]]
    assert (left["page"], left["at"]) == ("active", moved["at"])


def test_warc_records_say_where_and_when_they_come_from(tmp_path):
    """An imported capture's WARC record: the original URL, the capture time, the memento URL."""
    with FakeArchive(imls_history()) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        run(config, "backfill")
    records = []
    for path in sorted((tmp_path / "data" / "warc").glob("*.warc.gz")):
        with path.open("rb") as file:
            for record in ArchiveIterator(file):
                if record.rec_type == "response":
                    records.append(record.rec_headers)
    first = next(h for h in records if h.get_header("WARC-Date") == "2015-06-12T09:30:00Z")
    assert first.get_header("WARC-Target-URI") == "http://www.imls.gov/issues/national-initiatives"
    assert first.get_header("WARC-Source-URI").endswith(
        "/web/20150612093000id_/http://www.imls.gov/issues/national-initiatives"
    )
    assert len(records) == 13  # 15 fetched, 2 were the archive's own error pages


def test_a_second_run_adds_nothing_and_fetches_no_memento(tmp_path):
    """Backfill twice: the same events with the same ids, and no memento asked for again."""
    with FakeArchive(imls_history()) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        run(config, "backfill")
        first = log_oldest_first(config)
        mementos = len(archive.memento_requests())
        again = run(config, "backfill", "--json")
        assert len(archive.memento_requests()) == mementos
    assert again.exit_code == 0
    assert again.stdout == ""  # nothing new
    assert log_oldest_first(config) == first


def test_a_wider_range_gives_what_one_run_over_it_gives(tmp_path):
    """Until mid-2016, then all: the same events, ids included, as one run over everything."""
    with FakeArchive(imls_history()) as archive:
        narrow = archive_config(tmp_path / "a", archive, IMLS_PAGES)
        run(narrow, "backfill", "--until", "2016-06-30")
        assert summary(log_oldest_first(narrow)) == EXPECTED[:5]
        run(narrow, "backfill")
        whole = archive_config(tmp_path / "b", archive, IMLS_PAGES)
        run(whole, "backfill")
    keys = ("id", "kind", "at", "page", "entry_id", "title", "changes")
    assert [{k: e.get(k) for k in keys} for e in log_oldest_first(narrow)] == [
        {k: e.get(k) for k in keys} for e in log_oldest_first(whole)
    ]


def test_a_range_widened_backwards_keeps_each_events_id(tmp_path):
    """Since 2016, then everything: an event both runs import keeps its id, and its entry
    its id, though the entry was first seen in an earlier capture the second time (ids
    derive from what they record, not from the first capture that showed the entry)."""
    with FakeArchive(imls_history()) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        assert run(config, "backfill", "--since", "2016-01-01").exit_code == 0
        narrow = log_oldest_first(config)
        assert run(config, "backfill").exit_code == 0
        wide = log_oldest_first(config)
    assert summary(wide) == EXPECTED
    same = {(e["at"], e["kind"], e["title"]): (e["id"], e["entry_id"]) for e in wide}
    shared = [e for e in narrow if (e["at"], e["kind"], e["title"]) in same]
    assert len(shared) >= 20  # 2016-04-10 onwards, bar what the wider range changed
    for event in shared:
        assert (event["id"], event["entry_id"]) == same[event["at"], event["kind"], event["title"]]


def _imported(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM imported_captures").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_killed_mid_run_then_resumed_equals_an_uninterrupted_run(tmp_path):
    """kill -9 after a few captures: the next run fetches only the rest, and ends the same."""
    with FakeArchive(imls_history()) as archive:
        config = archive_config(tmp_path / "killed", archive, IMLS_PAGES, rate_per_minute=300)
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "backfill"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        db = tmp_path / "killed" / "data" / "monitor.db"
        deadline = time.monotonic() + 60
        while _imported(db) < 4 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kept = _imported(db)
        assert 4 <= kept < 15
        before = len(archive.memento_requests())
        resumed = run(config, "backfill")
        assert resumed.exit_code == 0, resumed.stderr
        assert f"{15 - kept} fetched" in resumed.stderr
        assert len(archive.memento_requests()) - before == 15 - kept
        whole = archive_config(tmp_path / "whole", archive, IMLS_PAGES)
        run(whole, "backfill")
    keys = ("id", "kind", "at", "entry_id", "title")
    assert [{k: e.get(k) for k in keys} for e in log_oldest_first(config)] == [
        {k: e.get(k) for k in keys} for e in log_oldest_first(whole)
    ]
    assert run(config, "verify").exit_code == 0


@dataclass
class FakeClock:
    """Logical time: sleeping advances it at once."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_429s_from_the_archive_are_obeyed(tmp_path):
    """Two 429s asking for 30 s: the next requests wait 30 s each, and the import completes."""
    clock = FakeClock()
    limiter = RateLimiter(1e9, clock=clock, sleep=clock.sleep)
    with FakeArchive(imls_history(), throttle=2, retry_after="30", clock=clock) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        report = run_backfill(load_config(config), limiter=limiter)
    assert [r.status for r in archive.requests[:3]] == [429, 429, 200]
    times = [r.at for r in archive.requests[:3]]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [30.0, 30.0]
    assert [(format(e.at, "%Y-%m-%dT%H:%M:%SZ"), e.kind) for e in report.events] == [
        (at, kind) for at, kind, _, _ in EXPECTED
    ]


def test_an_archive_that_refuses_is_an_error_naming_the_url(tmp_path):
    """A 403 from the archive: exit 1, the URL named, no traceback, nothing imported."""
    with FakeArchive(imls_history(), refuse=True) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        result = run(config, "backfill")
    assert result.exit_code == 1
    assert "Error:" in result.stderr and archive.cdx_url in result.stderr
    assert "refused" in result.stderr and "Traceback" not in result.stderr


# --- the hold in capture time --------------------------------------------------------------


def listing(*slugs: str, under: str = "") -> bytes:
    rows = "".join(
        f'<div class="views-row"><div class="views-field-title"><a href="/issues/'
        f'national-initiatives/{under}{s}">{s.title()}</a></div><div class="views-field-body">'
        f"All about {s}.</div></div>"
        for s in slugs
    )
    return f'<html><body><div class="view-content">{rows}</div></body></html>'.encode()


def day(n: int) -> str:
    return (datetime(2016, 1, 1, tzinfo=UTC) + timedelta(days=n)).strftime("%Y%m%d%H%M%S")


def moves(
    archived_again: int, active: str = ACTIVE_URL, archived: str = ARCHIVED_URL
) -> list[ArchivedCapture]:
    """Gamma leaves the active page on day 10; the archived page's next capture lists it."""
    return [
        ArchivedCapture(day(0), active, listing("alpha", "beta", "gamma")),
        ArchivedCapture(day(1), archived, listing("delta", under="archives/")),
        ArchivedCapture(day(10), active, listing("alpha", "beta")),
        ArchivedCapture(
            day(archived_again), archived, listing("gamma", "delta", under="archives/")
        ),  # fmt: skip
    ]


def test_an_entry_moved_between_captures_days_apart_is_one_archived_event(tmp_path):
    """Gamma leaves the active page and shows on the archived one 5 days later: `archived`."""
    with FakeArchive(moves(archived_again=15)) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        result = run(config, "backfill", "--json")
    assert summary(json_lines(result)) == [
        ("2016-01-16T00:00:00Z", "archived", "archived", "Gamma"),
    ]


def test_a_hold_longer_than_hold_for_is_removed_where_it_left(tmp_path):
    """The archived page's next capture comes 120 days later: `removed` dated on day 10."""
    with FakeArchive(moves(archived_again=130)) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES)
        result = run(config, "backfill", "--json")
    assert summary(json_lines(result)) == [
        ("2016-01-11T00:00:00Z", "removed", "active", "Gamma"),
        ("2016-05-10T00:00:00Z", "archived", "archived", "Gamma"),
    ]


def test_hold_for_is_configurable(tmp_path):
    """With hold_for = "3d", a move seen 5 days later is a removal, then an archiving."""
    with FakeArchive(moves(archived_again=15)) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES, hold_for="3d")
        result = run(config, "backfill", "--json")
    assert [e["kind"] for e in json_lines(result)] == ["removed", "archived"]


# --- imported and live history together ----------------------------------------------------


def live_history(site: Site) -> list[ArchivedCapture]:
    """The imls history, captured at the local site's URLs."""
    return imls_history(site.url(ACTIVE_PATH), site.url(ARCHIVED_PATH))


def test_live_events_are_untouched_and_imported_ones_come_before(tmp_path, site):
    """Check, check, backfill, check: live events keep their ids; imported ones sort earlier."""
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")
    with FakeArchive(live_history(site)) as archive:
        config = archive_config(tmp_path, archive, imls_pages(site))
        assert run(config, "check").exit_code == 0  # the silent baseline
        active = (IMLS / "active.html").read_bytes()
        site.serve(ACTIVE_PATH, active.replace(b"BUILD Initiative</a>", b"BUILD Initiative!</a>"))
        assert run(config, "check").exit_code == 0
        live = json_lines(run(config, "log", "--json"))
        assert [e["kind"] for e in live] == ["changed"]
        result = run(config, "backfill", "--json")
        assert result.exit_code == 0, result.stderr
        imported = json_lines(result)
        assert imported and all(e["source"] == "backfill" for e in imported)
        log = json_lines(run(config, "log", "--json"))
        assert log[0] == live[0]  # the live event, newest, unchanged
        assert [e["source"] for e in log] == ["check"] + ["backfill"] * len(imported)
        assert summary(list(reversed(log[1:]))) == [
            (at, kind, page, title) for at, kind, page, title in EXPECTED
        ]
        site.serve(ACTIVE_PATH, active)
        after = run(config, "check", "--json")
    assert [(e["kind"], e["title"]) for e in json_lines(after)] == [("changed", "BUILD Initiative")]
    assert json_lines(run(config, "log", "--json"))[1] == live[0]


def test_an_entry_seen_in_the_archive_and_live_is_one_entry_with_one_history(tmp_path, site):
    """Museums for All: imported versions first, then the silent live baseline's, one id."""
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")
    with FakeArchive(live_history(site)) as archive:
        config = archive_config(tmp_path, archive, imls_pages(site))
        run(config, "check")
        entries_before = {e["entry_id"] for e in json_lines(run(config, "entries", "--json"))}
        run(config, "backfill")
    entries = json_lines(run(config, "entries", "--json"))
    museums = next(e for e in entries if e["title"] == "Museums for All")
    assert museums["entry_id"] in entries_before
    history = json_lines(run(config, "history", museums["entry_id"], "--json"))
    versions = [h["version"] for h in history if "version" in h]
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    assert versions[0]["at"] == "2015-06-12T09:30:00Z"
    assert versions[-1]["at"] > "2020"  # the live baseline, last
    events = [h["event"] for h in history if "event" in h]
    assert [e["kind"] for e in events] == ["changed", "changed", "changed"]
    assert {e["source"] for e in events} == {"backfill"}


def test_an_entry_only_the_archive_saw_is_removed_by_the_time_live_checks_began(tmp_path, site):
    """Gamma, archived in 2016 and on no page at the first check: removed, with no live event."""
    site.serve(ACTIVE_PATH, listing("alpha", "beta"))
    site.serve(ARCHIVED_PATH, listing("delta", under="archives/"))
    history = moves(15, site.url(ACTIVE_PATH), site.url(ARCHIVED_PATH))
    with FakeArchive(history) as archive:
        config = archive_config(tmp_path, archive, imls_pages(site))
        run(config, "check")
        live_ids = {e["title"]: e["entry_id"] for e in json_lines(run(config, "entries", "--json"))}
        run(config, "backfill")
    entries = {e["title"]: e for e in json_lines(run(config, "entries", "--json"))}
    assert {t: e["state"] for t, e in entries.items()} == {
        "Alpha": "active", "Beta": "active", "Delta": "archived", "Gamma": "removed"
    }  # fmt: skip
    assert all(entries[t]["entry_id"] == i for t, i in live_ids.items())
    log = json_lines(run(config, "log", "--json"))
    assert [(e["kind"], e["title"], e["source"]) for e in log] == [
        ("archived", "Gamma", "backfill")
    ]
    gamma = json_lines(run(config, "history", entries["Gamma"]["entry_id"], "--json"))
    assert [v["version"]["state"] for v in gamma if "version" in v] == [
        "active",
        "archived",
        "removed",
    ]


def test_a_backfill_before_the_first_check_ends_where_that_check_begins(tmp_path, site):
    """Backfill first, then the first live check: the same entries and states as the other
    order (Gamma, which the archive saw and the check did not find, is removed from the
    check on, silently), and Gamma coming back later is `restored`, not nothing."""
    site.serve(ACTIVE_PATH, listing("alpha", "beta"))
    site.serve(ARCHIVED_PATH, listing("delta", under="archives/"))
    history = moves(15, site.url(ACTIVE_PATH), site.url(ARCHIVED_PATH))
    with FakeArchive(history) as archive:
        config = archive_config(tmp_path, archive, imls_pages(site))
        assert run(config, "backfill").exit_code == 0
        first = run(config, "check", "--json")
    assert first.exit_code == 0 and json_lines(first) == []  # the live baseline says nothing
    entries = {e["title"]: e["state"] for e in json_lines(run(config, "entries", "--json"))}
    assert entries == {"Alpha": "active", "Beta": "active", "Delta": "archived",
                       "Gamma": "removed"}  # fmt: skip
    site.serve(ACTIVE_PATH, listing("alpha", "beta", "gamma"))
    back = json_lines(run(config, "check", "--json"))
    assert [(e["kind"], e["title"]) for e in back] == [("restored", "Gamma")]


def test_the_web_page_pages_through_live_and_imported_events_in_time_order(
    tmp_path, site, monkeypatch
):
    """`/` pages of 10: every event once, newest first, imported ones marked as such."""
    import html
    import re

    from monitor import web

    monkeypatch.setattr(web, "PAGE_SIZE", 10)
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")
    with FakeArchive(live_history(site)) as archive:
        config = archive_config(tmp_path, archive, imls_pages(site))
        run(config, "check")
        active = (IMLS / "active.html").read_bytes()
        site.serve(ACTIVE_PATH, active.replace(b"BUILD Initiative</a>", b"BUILD Initiative!</a>"))
        run(config, "check")
        run(config, "backfill")
    loaded = load_config(config)
    shown, target = [], "/"
    while target:
        body = web.respond(loaded, target).body.decode()
        events = body[body.index('class="stack events"') :]
        shown += re.findall(r'<time datetime="([^"]+)"', events)
        older = re.search(r'<a href="([^"]+)" rel="next">', body)
        target = html.unescape(older.group(1)) if older else ""
    log = json_lines(run(config, "log", "--json"))
    assert shown == [e["at"] for e in log]
    assert len(shown) == len(EXPECTED) + 1
    first = web.respond(loaded, "/").body.decode()
    assert first.count("imported from a web archive") == 9  # all but the live event


def test_ctrl_c_exits_130_without_a_traceback_and_keeps_what_was_archived(tmp_path):
    """SIGINT mid-run: exit 130, a message, no traceback; the next run fetches the rest."""
    with FakeArchive(imls_history()) as archive:
        config = archive_config(tmp_path, archive, IMLS_PAGES, rate_per_minute=300)
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "backfill"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        db = tmp_path / "data" / "monitor.db"
        deadline = time.monotonic() + 60
        while _imported(db) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130
        assert "Interrupted" in stderr and "Traceback" not in stderr
        kept = _imported(db)
        resumed = run(config, "backfill", "--json")
    assert f"{15 - kept} fetched" in resumed.stderr
    assert summary(log_oldest_first(config)) == EXPECTED
