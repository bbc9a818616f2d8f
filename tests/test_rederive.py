"""An extraction engine change is never an event: entries are re-derived from the archive."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import ACTIVE_PATH, IMLS, imls_pages, json_lines, run, write_config

from monitor.extract import EXTRACTOR_VERSION

OLD_ENGINE = "bs4-0"
OLD_TEXT = "as an older engine read it"


@pytest.fixture
def checked(site, tmp_path):
    """The IMLS pages after their baseline check; the active page's HTML and its db path."""
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file("/issues/national-initiatives/archived", IMLS / "archived.html")
    pages = [p for p in imls_pages(site) if p["name"] == "active"]
    config = write_config(tmp_path, pages, monitor={"confirm_checks": 2})
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
    return config, tmp_path / "data" / "monitor.db"


def as_old_engine(db: Path) -> tuple[str, str]:
    """Make the stored entries look read by another engine: one field differs, another key."""
    conn = sqlite3.connect(db)
    with conn:
        entry_id, description = conn.execute(
            "SELECT entry_id, description FROM placements WHERE page = 'active' AND position = 1"
        ).fetchone()
        conn.execute("UPDATE placements SET description = ? WHERE entry_id = ?",
                     (OLD_TEXT, entry_id))  # fmt: skip
        conn.execute("UPDATE entries SET description = ? WHERE id = ?", (OLD_TEXT, entry_id))
        conn.execute("UPDATE pages SET extractor = ?, accepted_key = 'old', body_key = 'old', "
                     "etag = NULL, last_modified = NULL", (OLD_ENGINE,))  # fmt: skip
    conn.close()
    return entry_id, description


def stored(db: Path, entry_id: str) -> tuple[str, str]:
    conn = sqlite3.connect(db)
    try:
        description = conn.execute(
            "SELECT description FROM entries WHERE id = ?", (entry_id,)
        ).fetchone()[0]
        engine = conn.execute("SELECT extractor FROM pages WHERE name = 'active'").fetchone()[0]
        return description, engine
    finally:
        conn.close()


def test_engine_change_alone_gives_no_event(checked):
    """Entries an older engine read differently are re-read silently when the body is the same."""
    config, db = checked
    entry_id, description = as_old_engine(db)
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result) == []
    assert stored(db, entry_id) == (description, EXTRACTOR_VERSION)
    again = run(config, "check", "--json")
    assert json_lines(again) == []


def test_real_edit_meanwhile_is_the_only_event(checked, site):
    """An edit made while the engine changed is reported; the engine's own difference is not."""
    config, db = checked
    entry_id, description = as_old_engine(db)
    html = (IMLS / "active.html").read_bytes()
    conn = sqlite3.connect(db)
    other_id, other_title = conn.execute(
        "SELECT entry_id, title FROM placements WHERE page = 'active' AND position = 3"
    ).fetchone()
    conn.close()
    edited = html.replace(other_title.encode(), other_title.encode() + b" (renamed)", 1)
    assert edited != html
    site.serve(ACTIVE_PATH, edited)
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
    events = json_lines(result)
    assert [(e["kind"], e["entry_id"]) for e in events] == [("changed", other_id)]
    assert stored(db, entry_id) == (description, EXTRACTOR_VERSION)


def test_unreadable_archive_leaves_the_page_to_its_next_body(checked):
    """A page whose archived body is gone is not re-derived and the check still runs."""
    config, db = checked
    as_old_engine(db)
    for warc in (db.parent / "warc").iterdir():
        warc.write_bytes(b"")
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
