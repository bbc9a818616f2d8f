"""A large cycle parses in worker processes: a crashed parser costs one page, never the cycle.

Through the real CLI against a local site of 30 listings (more than POOL_MIN_PAGES, so the
bodies go to the pool). The crash is real: the test hook MONITOR_TEST_CRASH_ON makes a worker
kill itself with SIGSEGV on the page carrying the marker.
"""

from __future__ import annotations

import hashlib
import html
import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from conftest import Site, child_pids, json_lines, run, write_config
from werkzeug import Response

from monitor.check import CycleCancelled, run_check
from monitor.config import load_config
from monitor.parse_worker import CRASH_HOOK_ENV
from monitor.parsing import (
    POOL_MIN_EXPECTED,
    POOL_MIN_PAGES,
    POOL_START_BODIES,
    worth_a_pool,
)

SELECT = {"item": "li.entry", "title": "h3", "link": "a[href]"}
PAGES = 30
MARKER = "parser-crash-marker-7f3a"


def slug(n: int, i: int) -> str:
    return hashlib.sha256(f"{n}.{i}".encode()).hexdigest()[:24]


def title(n: int, i: int) -> str:
    """A title and link no other entry's resembles (identity matches slugs and titles)."""
    digest = slug(n, i)
    return f"Grant {digest[:8]} {digest[8:16]} {digest[16:24]}"


def listing(n: int, extra: str = "") -> str:
    items = "".join(
        f'<li class="entry"><h3><a href="/grants/{slug(n, i)}">{html.escape(title(n, i))}</a></h3>'
        f"<p>About {html.escape(title(n, i))}.</p></li>"
        for i in range(3)
    )
    return (
        f"<!DOCTYPE html><html><head><title>Listing {n}</title></head><body>"
        f"<h1>Listing {n}</h1><ul>{items}</ul>{extra}</body></html>"
    )


TIMEOUT_S = 30


def many_listings(
    site: Site, tmp_path: Path, crash_on: int | None = None, count: int = PAGES
) -> Path:
    """Serve `count` listings at /l0 ... and write a config watching them all."""
    assert count > POOL_MIN_PAGES
    pages = []
    for n in range(count):
        extra = f"<!-- {MARKER} -->" if n == crash_on else ""
        site.serve(f"/l{n}", listing(n, extra))
        pages.append({"name": f"l{n}", "url": site.url(f"/l{n}"), "role": "active",
                      "select": SELECT})  # fmt: skip
    return write_config(tmp_path, pages, monitor={"concurrency": 8})


@pytest.mark.parametrize(
    ("parsed", "answered", "pages", "starts"),
    [
        (33, 32, 200, False),  # a first check of 200 pages: ~167 more, as fast in process
        (33, 32, 500, True),  # a first check of 500 pages: ~470 more bodies to come
        (33, 32, 1000, True),  # a first check of 1,000
        (33, 330, 1000, False),  # one page in ten changed, as expected
        (33, 242, 1000, False),  # one in ten, an unlucky first sample (seen in bench/steady.py)
        (32, 32, 1000, False),  # not enough parsed yet to judge the rate
        (33, 1000, 1000, False),  # every page answered: nothing left to parse
    ],
)
def test_the_pool_starts_only_for_many_bodies_to_come(parsed, answered, pages, starts):
    """Workers start when many bodies are still to come at the rate seen so far: a first
    check of 500 pages or more, never a cycle where one page in ten changed."""
    assert worth_a_pool(parsed=parsed, answered=answered, pages=pages) is starts


def test_a_large_cycle_records_every_page_and_leaves_no_process(site, tmp_path):
    """460 listings, most parsed in the pool: 1,380 entries, exit 0, no child process left after."""
    count = POOL_START_BODIES + POOL_MIN_EXPECTED + 28
    config = many_listings(site, tmp_path, count=count)
    before = child_pids()
    result = run(config, "check")
    assert result.exit_code == 0, result.output
    entries = json_lines(run(config, "entries", "--json"))
    assert len({e["title"] for e in entries}) == count * 3
    assert multiprocessing.active_children() == []
    assert child_pids() == before


def test_a_parser_crash_is_one_page_error(site, tmp_path, monkeypatch):
    """A worker killed by SIGSEGV on one page: that page is an error, the other 29 are recorded."""
    monkeypatch.setenv(CRASH_HOOK_ENV, MARKER)
    config = many_listings(site, tmp_path, crash_on=7)
    before = child_pids()
    result = run(config, "check", "--json")
    assert result.exit_code == 1
    assert multiprocessing.active_children() == []
    assert child_pids() == before
    entries = json_lines(run(config, "entries", "--json"))
    assert len(entries) == (PAGES - 1) * 3
    assert {e["page"] for e in entries} == {f"l{n}" for n in range(PAGES) if n != 7}
    events = json_lines(run(config, "log", "--json"))
    crashed = [e for e in events if e["kind"] == "page-error"]
    assert [e["page"] for e in crashed] == ["l7"]
    assert "the parser crashed on this page" in crashed[0]["detail"]


@pytest.mark.parametrize("pages", [2], ids=["two-pages"])
def test_a_small_cycle_parses_in_process(site, tmp_path, monkeypatch, pages):
    """With few pages no worker is started: the crash hook, read only by workers, never fires."""
    monkeypatch.setenv(CRASH_HOOK_ENV, MARKER)
    site.serve("/a", listing(0, f"<!-- {MARKER} -->"))
    site.serve("/b", listing(1))
    config = write_config(tmp_path, [
        {"name": n, "url": site.url(f"/{n}"), "role": "active", "select": SELECT}
        for n in ("a", "b")[:pages]
    ])  # fmt: skip
    assert run(config, "check").exit_code == 0
    assert len(json_lines(run(config, "entries", "--json"))) == pages * 3


def test_a_cycle_stopped_mid_fetch_leaves_no_worker(site, tmp_path, monkeypatch):
    """The daemon's stop while the pool parses and one page hangs: cancelled, no worker left."""
    monkeypatch.setenv(CRASH_HOOK_ENV, MARKER)  # no page has it: it only starts the pool at once
    config = many_listings(site, tmp_path)
    release = threading.Event()

    def hanging(request):
        release.wait(TIMEOUT_S)
        return Response(listing(0), content_type="text/html")

    site.serve("/l0", hanging)
    before = child_pids()
    stop = threading.Event()

    def stop_once_parsing() -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while len(child_pids()) == len(before) and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    watcher = threading.Thread(target=stop_once_parsing)
    watcher.start()
    try:
        with pytest.raises(CycleCancelled):
            run_check(load_config(config), stop=stop)
    finally:
        stop.set()
        release.set()
        watcher.join()
    assert multiprocessing.active_children() == []
    assert child_pids() == before
