"""The database: upgrades in place, read-only readers, whole cycles only."""

from __future__ import annotations

import sqlite3

import pytest

from monitor.errors import StoreError
from monitor.models import PageState
from monitor.store import SCHEMA_VERSION
from monitor.store import SqliteStore as Store


def test_a_version_1_database_is_upgraded_in_place(tmp_path):
    """A monitor.db from before pages.body_key opens, gains the column, keeps its rows."""
    path = tmp_path / "monitor.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE pages (name TEXT PRIMARY KEY, url TEXT NOT NULL, role TEXT NOT NULL,
            status TEXT NOT NULL, streak INTEGER NOT NULL DEFAULT 0,
            normal_count INTEGER NOT NULL DEFAULT 0, baselined INTEGER NOT NULL DEFAULT 0,
            entry_count INTEGER NOT NULL DEFAULT 0, accepted_key TEXT, etag TEXT,
            last_modified TEXT, last_capture_id INTEGER, last_checked_at TEXT,
            last_ok_at TEXT, last_detail TEXT);
        INSERT INTO pages (name, url, role, status) VALUES ('active', 'http://x/', 'active', 'ok');
        """
    )
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        state = store.read_cycle_state([PageState("active", "active")])
        assert state.pages["active"].body_key is None
        assert store.page_rows()[0].status == "ok"
        (version,) = store.conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        assert int(version) == SCHEMA_VERSION
    finally:
        store.close()
    Store(path).close()  # opening again is a no-op


def test_readers_cannot_write(tmp_path):
    """A store opened for reading refuses writes, and does not create a missing database."""
    with pytest.raises(StoreError, match="run `monitor check` first"):
        Store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    Store(tmp_path / "monitor.db").close()
    reader = Store(tmp_path / "monitor.db", create=False)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.conn.execute("DELETE FROM events")
    finally:
        reader.close()


def test_an_unopenable_database_names_its_path(tmp_path):
    """A database path that cannot be opened gives a StoreError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=str(blocker)):
        Store(blocker / "monitor.db")
