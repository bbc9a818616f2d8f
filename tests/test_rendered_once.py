"""A change is rendered once, when it is recorded: the feed never diffs an event again."""

from __future__ import annotations

import sqlite3

from conftest import imls_pages, json_lines, run, write_config
from test_scenario import EXPECTED, serve_step


def test_the_feed_shows_the_diff_stored_with_the_event(site, tmp_path):
    """The `changed` event's word diff is stored with it, and `monitor feed` shows that one."""
    config = write_config(tmp_path, imls_pages(site), monitor=EXPECTED["config"])
    for step in EXPECTED["steps"][:2]:
        serve_step(site, step)
        events = json_lines(run(config, "check", "--json"))
    changed = next(e for e in events if e["kind"] == "changed")
    assert "changes_html" not in changed  # a rendering, not part of the event's JSON
    db = sqlite3.connect(tmp_path / "data" / "monitor.db")
    with db:
        sql = "SELECT changes_html FROM events WHERE id = ?"
        (stored,) = db.execute(sql, (changed["id"],)).fetchone()
        assert "<ins>" in stored  # the sentence Museums for All gained
        db.execute(
            "UPDATE events SET changes_html = ? WHERE id = ?",
            ("<p>What changed: RENDERED AT RECORD TIME</p>", changed["id"]),
        )
    db.close()
    feed = run(config, "feed").stdout
    assert "RENDERED AT RECORD TIME" in feed
