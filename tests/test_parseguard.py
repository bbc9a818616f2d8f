"""A page built to nest deeper than extraction's bound can see costs a check the deadline,
not minutes: it is parsed in a child process that is killed then (monitor/parseguard.py).

The hostile shape needs neither comments nor quotes: `<span><div></span>` repeated. The
HTML5 algorithm ignores each `</span>` (a div is open above the span), so every repeat
nests two levels deeper; 25,000 repeats (440 KB) take Lexbor ~2.7 s, and the cost grows
with the square of the size. The tests set a deadline of 0.5 s (MONITOR_PARSE_DEADLINE_S).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import child_pids, json_lines, run, write_config
from servers import FaultServer, Respond

from monitor.config import Selectors
from monitor.extract import extract_page, extract_text
from monitor.parseguard import (
    DEADLINE_ENV,
    ParseTimeout,
    guarded_extract_page,
    guarded_extract_text,
    may_parse_slowly,
)

SELECT = {"item": ".row", "title": "h3", "link": "a", "description": "p"}
LAYOUT = Selectors(**SELECT)


def _rows(count: int, prefix: str = "p") -> str:
    return "".join(
        f'<div class="row"><h3><a href="/{prefix}/{prefix}-{n}">{prefix} {n}</a></h3>'
        f"<p>about {prefix} {n}</p></div>"
        for n in range(count)
    )


def hostile_listing() -> bytes:
    """Two real rows, then a nesting that extract/limits.py reads as flat."""
    rows = _rows(2, "hostile")
    return f"<html><body>{rows}{'<span><div></span>' * 25_000}</body></html>".encode()


def big_listing(count: int = 2_500, prefix: str = "p") -> bytes:
    return f"<html><body>{_rows(count, prefix)}</body></html>".encode()


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEADLINE_ENV, "0.5")


def test_the_shapes_under_test_are_those_the_guard_is_for() -> None:
    assert may_parse_slowly(hostile_listing()) and may_parse_slowly(big_listing())
    assert not may_parse_slowly(big_listing(100))


def test_a_hostile_page_is_an_error_at_the_deadline_and_the_other_pages_are_read(
    tmp_path: Path, short_deadline: None
) -> None:
    before = child_pids()
    with FaultServer() as server:
        server.set("/hostile", Respond(200, hostile_listing()))
        server.set("/big", Respond(200, big_listing()))
        server.set("/small", Respond(200, big_listing(5, "small")))
        config = write_config(
            tmp_path,
            [
                {"name": name, "url": server.url(f"/{name}"), "role": "active", "select": SELECT}
                for name in ("hostile", "big", "small")
            ],
        )
        result = run(config, "check", "--json")
    assert result.exit_code == 1  # a page failed
    errors = [e for e in json_lines(result) if e["kind"] == "page-error"]
    assert [e["page"] for e in errors] == ["hostile"]
    assert "parsing took longer than 0.5 s" in errors[0]["detail"]
    entries = json_lines(run(config, "entries", "--json"))
    counts = {page: sum(e["page"] == page for e in entries) for page in ("hostile", "big", "small")}
    assert counts == {"hostile": 0, "big": 2_500, "small": 5}
    assert child_pids() == before  # the child that ran out of time was killed and reaped


def test_try_says_the_page_took_too_long(tmp_path: Path, short_deadline: None) -> None:
    with FaultServer() as server:
        server.set("/hostile", Respond(200, hostile_listing()))
        config = write_config(
            tmp_path,
            [{"name": "hostile", "url": server.url("/hostile"), "role": "active",
              "select": SELECT}],
        )  # fmt: skip
        result = run(config, "try", "--page", "hostile")
    assert "cannot extract: parsing took longer than 0.5 s" in result.output


def test_a_big_page_reads_the_same_in_the_child_as_in_process() -> None:
    body = big_listing()
    here = extract_page(body, content_type="text/html", base_url="http://x.test/", layouts=[LAYOUT])
    there = guarded_extract_page(
        body, content_type="text/html", base_url="http://x.test/", layouts=[LAYOUT]
    )
    assert there == here and len(there.entries) == 2_500
    text = guarded_extract_text(body, content_type="text/html", selector=".row p")
    assert text == extract_text(body, content_type="text/html", selector=".row p")


def test_an_entry_pages_text_is_bounded_by_the_deadline_too(short_deadline: None) -> None:
    before = child_pids()
    with pytest.raises(ParseTimeout, match="longer than 0.5 s"):
        guarded_extract_text(hostile_listing(), content_type="text/html", selector=None)
    assert child_pids() == before
