"""Every command on PostgreSQL ([cluster].database) answers as it does on SQLite; the group lock.

The same scenario is checked into a SQLite data dir and into a fresh PostgreSQL database
(a config with [cluster]); each reading command's output must match, once the values that
differ by nature (event ids, times, WARC file names, paths) are set aside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import ACTIVE_PATH, ARCHIVED_PATH, SCENARIO, imls_pages, json_lines, run, write_config

from monitor import web
from monitor.cluster.settings import load_setup
from monitor.store.postgres_lock import group_lock

EXPECTED = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).parent.parent
VARIABLE = {
    "id",
    "at",
    "first_seen",
    "last_seen",
    "last_changed",
    "warc_file",
    "elapsed_s",
    "started_at",
    "finished_at",
    "last_checked_at",
    "last_ok_at",
    "date_published",
    "date_modified",
    "updated",
    "data_dir",
    "url",
    "external_url",
    "duration_s",
    "entry_id",
    "record_id",
    "warc_offset",
    "daemon",  # who schedules: a local daemon, or [cluster]'s producer (asked of Redis)
}  # fmt: skip (random ids; gzip sizes)


def stable(value: Any) -> Any:
    """`value` without the keys whose values differ between two runs by nature."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VARIABLE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def checked_twice(site, tmp_path: Path, postgres_database: str) -> tuple[Path, Path]:
    """Configs on SQLite and on PostgreSQL, both having checked scenario-basic's three steps."""
    sqlite_dir, postgres_dir = tmp_path / "sqlite", tmp_path / "postgres"
    sqlite_dir.mkdir()
    postgres_dir.mkdir()
    settings = {**EXPECTED["config"]}
    cluster = {"database": postgres_database, "broker": "redis://127.0.0.1:1/0", "archive": "warc"}
    configs = (
        write_config(sqlite_dir, imls_pages(site), monitor=settings),
        write_config(postgres_dir, imls_pages(site), monitor=settings, cluster=cluster),
    )
    for step in EXPECTED["steps"]:
        site.serve_file(ACTIVE_PATH, SCENARIO / step["dir"] / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / step["dir"] / "archived.html")
        for config in configs:
            assert run(config, "check").exit_code == step["exit_code"]
    return configs


def test_every_command_reads_postgres_as_it_reads_sqlite(site, tmp_path, postgres_database):
    """log, entries, history, snapshots, status, feed, verify and serve's pages agree."""
    on_sqlite, on_postgres = checked_twice(site, tmp_path, postgres_database)
    assert not (on_postgres.parent / "data" / "monitor.db").exists()  # all of it in PostgreSQL
    assert list((on_postgres.parent / "warc").glob("*.warc.gz"))  # WARCs under [cluster].archive

    configs = (on_sqlite, on_postgres)
    ids = [json_lines(run(c, "entries", "--json"))[0]["entry_id"] for c in configs]
    histories = [run(c, "history", i, "--json") for c, i in zip(configs, ids, strict=True)]
    assert [h.exit_code for h in histories] == [0, 0], histories[1].stderr
    assert stable(json_lines(histories[1])) == stable(json_lines(histories[0]))
    commands = [
        ("log", "--json"),
        ("log", "--kind", "archived", "--json"),
        ("entries", "--json"),
        ("entries", "--state", "archived", "--json"),
        ("snapshots", "--json"),
        ("status", "--json"),
        ("verify", "--json"),
    ]
    for command in commands:
        answers = [run(config, *command) for config in configs]
        assert [a.exit_code for a in answers] == [0, 0], (command, answers[1].stderr)
        sqlite_lines, postgres_lines = (stable(json_lines(a)) for a in answers)
        assert postgres_lines == sqlite_lines, command
        assert postgres_lines, command
    # No Redis here: status still reads PostgreSQL, and says the producer is unknown.
    producer = json.loads(run(on_postgres, "status", "--json").stdout)["daemon"]
    assert producer["running"] is None and "cluster.broker" in producer["producer_error"]
    assert "producer: unknown (cluster.broker: " in run(on_postgres, "status").stdout
    feeds = [json.loads(run(c, "feed", "--format", "json").stdout) for c in configs]
    assert [i["title"] for i in feeds[1]["items"]] == [i["title"] for i in feeds[0]["items"]]
    assert feeds[1]["items"]

    setups = [load_setup(c).config for c in configs]
    for target in ("/", "/?kind=archived", "/entries/{}", "/captures/1", "/healthz"):
        pages = [
            web.respond(c, target.format(i))
            for c, i in zip(setups, ids, strict=True)
        ]
        assert [p.status for p in pages] == [200, 200], target
        if target.startswith("/captures"):
            assert pages[1].body == pages[0].body  # the archived body, from [cluster].archive


def test_an_unreachable_database_is_an_error_naming_the_key(site, tmp_path):
    """`monitor log` and `monitor check` with PostgreSQL down: exit 1 naming cluster.database."""
    from dbservers import free_port

    url = f"postgresql://monitor:hunter2@127.0.0.1:{free_port()}/monitor"
    cluster = {"database": url, "broker": "redis://127.0.0.1:1/0", "archive": "warc"}
    config = write_config(tmp_path, imls_pages(site), cluster=cluster)
    for command in ("log", "check", "verify", "entries"):
        result = run(config, command)
        assert result.exit_code == 1, command
        assert "Error: cluster.database: cannot connect to postgresql://monitor@127.0.0.1:" in (
            result.stderr
        ), command
        assert "hunter2" not in result.output and "Traceback" not in result.output


def test_a_group_locked_in_postgres_is_not_checked(site, tmp_path, postgres_database):
    """While another session holds the group's lock, `monitor check` exits 3 naming it."""
    cluster = {"database": postgres_database, "broker": "redis://127.0.0.1:1/0", "archive": "warc"}
    config = write_config(tmp_path, imls_pages(site), cluster=cluster)
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    with group_lock(postgres_database, ["default"], wait_s=0, purpose="a test"):
        result = run(config, "check")
        assert result.exit_code == 3
        assert "group 'default': a check cycle is already running (a test, pid" in result.stderr
        assert site.requests == []  # nothing was fetched
        assert (tmp_path / "data" / "monitor.lock").exists() is False  # no flock either
    assert run(config, "check").exit_code == 0


def test_a_released_group_lock_is_free_at_once(postgres_database, monkeypatch):
    """A check that ends frees its group for the one that follows at once (cron's next
    command, a worker's next task). The server ends a closed session when its process has
    exited, a moment later; here the sessions outlive their close until the test ends, so
    only an unlock sent before closing frees the group in time."""
    closing: list[psycopg.Connection] = []
    real_close = psycopg.Connection.close
    monkeypatch.setattr(psycopg.Connection, "close", lambda conn: closing.append(conn))
    try:
        with group_lock(postgres_database, ["default"], wait_s=0, purpose="first"):
            pass
        with group_lock(postgres_database, ["default"], wait_s=0, purpose="next"):
            pass
    finally:
        for conn in closing:
            real_close(conn)


def test_a_dead_holder_frees_the_group_lock(site, tmp_path, postgres_database):
    """kill -9 of the process holding a group's lock frees it: the next check runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from monitor.store.postgres_lock import group_lock\n"
         "with group_lock(sys.argv[1], ['default'], wait_s=0, purpose='doomed'):\n"
         "    print('held', flush=True); time.sleep(600)\n",
         postgres_database],
        cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        cluster = {"database": postgres_database, "broker": "redis://127.0.0.1:1/0", "archive": "w"}
        config = write_config(tmp_path, imls_pages(site), cluster=cluster)
        site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
        assert run(config, "check").exit_code == 3
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10  # the server notices the closed socket at once
        while (code := run(config, "check").exit_code) == 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert code == 0
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)
        if holder.stdout:
            holder.stdout.close()


@pytest.mark.parametrize("wait", ["0", "5"])
def test_check_waits_for_a_group_lock_as_for_the_flock(site, tmp_path, postgres_database, wait):
    """--wait applies to the PostgreSQL lock: a lock freed within it lets the check run."""
    import threading

    cluster = {"database": postgres_database, "broker": "redis://127.0.0.1:1/0", "archive": "warc"}
    config = write_config(tmp_path, imls_pages(site), cluster=cluster)
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with group_lock(postgres_database, ["default"], wait_s=0, purpose="brief"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    try:
        result = run(config, "check", "--wait", wait)
    finally:
        release.set()
        timer.cancel()
        thread.join()
    assert result.exit_code == (3 if wait == "0" else 0)
