"""The store contract: the same cycles, recorded in SQLite and in PostgreSQL, read back alike.

Real cycles (scenario-basic on a local site, then a revisit, a failure and a recovery)
are recorded in SQLite by `run_check`; every CycleRecord they wrote is then replayed into
a fresh SQLite file and a fresh PostgreSQL database through `record_cycle`, and every
method of the CycleStore and ReadStore protocols must give equal typed rows on both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ACTIVE_PATH, ARCHIVED_PATH, SCENARIO, imls_pages, write_config
from msgspec.structs import replace
from werkzeug import Response

import monitor.check
from monitor.check import run_check
from monitor.config import load_config
from monitor.errors import SchemaTooNew, StoreError
from monitor.models import CycleResult, PageState
from monitor.notify.outbox import NewDelivery
from monitor.store import SCHEMA_VERSION, CycleRecord, EventQuery, SqliteStore
from monitor.store.postgres import PostgresStore
from monitor.store.postgres_outbox import LEASE_S

EXPECTED = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
PAGES = [PageState("active", "active"), PageState("archived", "archived")]


class Recorder:
    """A store that keeps every CycleRecord handed to it (and writes it, as usual)."""

    def __init__(self, store: Any, records: list[CycleRecord]) -> None:
        self.store = store
        self.records = records

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def record_cycle(self, record: CycleRecord) -> Any:
        self.records.append(record)
        return self.store.record_cycle(record)


def recorded_cycles(site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[CycleRecord]:
    """The CycleRecords of ten real cycles of the scenario, its revisits and its failures,
    and a hold: step 2's departure seen by a check of the active page alone, settled by a
    check of the archived page alone."""
    config = load_config(write_config(tmp_path, imls_pages(site), monitor=EXPECTED["config"]))
    records: list[CycleRecord] = []
    real_open = monitor.check.open_store
    monkeypatch.setattr(
        monitor.check, "open_store", lambda c, write: Recorder(real_open(c, write=write), records)
    )
    clock = iter(
        datetime(2026, 11, 25, 16, 0, tzinfo=UTC) + timedelta(minutes=i) for i in range(99)
    )
    steps = ["step1", "step2 active", "step2 archived", "step2", "step3", "step3", "fail",
             "step3", "step1", "step1"]  # fmt: skip
    for step in steps:
        if step == "fail":
            site.serve(ACTIVE_PATH, lambda request: Response("", status=503))
        else:
            site.serve_file(ACTIVE_PATH, SCENARIO / step.split()[0] / "active.html")
            site.serve_file(ARCHIVED_PATH, SCENARIO / step.split()[0] / "archived.html")
        run_check(config, page_names=step.split()[1:], clock=lambda: next(clock))
    return records


def read_everything(store: Any) -> dict[str, Any]:
    """What every ReadStore (and CycleStore read) method answers, as typed rows."""
    events = store.events()
    entries = store.entries()
    ids = [e.id for e in entries]
    since = events[len(events) // 2].at if events else None
    return {
        "events": events,
        "events by kind": store.events(EventQuery(kinds=["changed", "archived", "page-error"])),
        "events by page": store.events(EventQuery(pages=["archived"])),
        "events since": store.events(EventQuery(since=since)),
        "events page": store.events(EventQuery(before_seq=len(events) - 1, limit=3)),
        "events of an entry": [store.events(EventQuery(entry_id=i)) for i in ids],
        "event seqs": [store.event_seq(e.id) for e in events] + [store.event_seq("nope")],
        "entries": entries,
        "entries by state": [store.entries(s) for s in ("active", "archived", "removed")],
        "entry": [store.entry(i) for i in ids] + [store.entry("nope")],
        "entry ids": [store.entry_ids(i[:1]) for i in ids] + [store.entry_ids("%_\\", 3)],
        "versions": [store.versions(i) for i in ids],
        "captures": store.captures(),
        "captures of a page": store.captures(["active"], limit=4),
        "capture": [store.capture(c.id) for c in store.captures()] + [store.capture(10**6)],
        "page rows": store.page_rows(),
        "last check": store.last_check(),
        "warc refs": store.warc_refs(),
        "integrity": store.check_integrity(),
        "counts": [store.count(t) for t in ("entries", "events", "captures", "checks")],
        "known entries": store.known_entries(),
        "cycle state": store.read_cycle_state(PAGES),
        "member fields": store.member_fields([p.name for p in PAGES] + ["no such page"]),
    }


def test_sqlite_and_postgres_record_and_read_back_the_same_rows(
    site, tmp_path, monkeypatch, postgres_database
):
    """Each recorded cycle, and every read after it, is field for field the same on both."""
    records = recorded_cycles(site, tmp_path, monkeypatch)
    assert len(records) == 10
    assert any(c.record_type == "revisit" for r in records for c in r.captures)
    held = [p.held for r in records for p in r.result.pages if p.held]
    assert len(held) == 1  # the hold, recorded once and released by the next cycle
    sqlite = SqliteStore(tmp_path / "replay.db")
    postgres = PostgresStore(postgres_database)
    try:
        for record in records:
            assert sqlite.read_cycle_state(PAGES) == postgres.read_cycle_state(PAGES)
            names = [p.name for p in PAGES]
            assert sqlite.member_fields(names) == postgres.member_fields(names)
            assert sqlite.record_cycle(record) == postgres.record_cycle(record)
        on_sqlite, on_postgres = read_everything(sqlite), read_everything(postgres)
        for what, value in on_sqlite.items():
            assert on_postgres[what] == value, what
        kinds = [e.kind for e in on_postgres["events"]]
        assert {"added", "changed", "archived", "page-error"} <= set(kinds)
        assert on_postgres["integrity"] == []
        # The table the triggers keep holds what scanning the history finds (its definition).
        for store in (sqlite, postgres):
            kept = _tuples(store, "SELECT page, target_uri, capture_id FROM last_responses")
            assert kept == _tuples(store, LAST_RESPONSES_BY_SCAN) != []
    finally:
        sqlite.close()
        postgres.close()


def _tuples(store: Any, sql: str) -> list[tuple]:
    rows = store.conn.execute(sql).fetchall()  # PostgreSQL's rows are dicts here
    return sorted(tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows)


LAST_RESPONSES_BY_SCAN = """
    SELECT page, target_uri, max(id) FROM captures
    WHERE record_type IS NOT NULL AND source_uri IS NULL AND payload_digest IS NOT NULL
      AND truncated IS NULL AND (status BETWEEN 200 AND 299 OR status = 304)
    GROUP BY page, target_uri"""


def test_a_version_3_postgres_schema_gains_last_responses_from_its_history(
    site, tmp_path, monkeypatch, postgres_database
):
    """Upgrading a version 3 database fills last_responses once, from the captures it holds."""
    records = recorded_cycles(site, tmp_path, monkeypatch)
    store = PostgresStore(postgres_database)
    for record in records:
        store.record_cycle(record)
    before = store.read_cycle_state(PAGES)
    store.conn.execute("DROP TRIGGER captures_last_response ON captures")
    store.conn.execute("DROP TABLE last_responses")
    store.conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    store.close()
    store = PostgresStore(postgres_database)
    try:
        assert store.read_cycle_state(PAGES) == before
        assert before.last_responses
        (version,) = store.conn.execute("SELECT value FROM meta").fetchone()
        assert version == str(SCHEMA_VERSION)
    finally:
        store.close()


def test_a_newer_postgres_schema_is_refused_unchanged(postgres_database):
    """A database whose schema_version is newer than this monitor is refused (exit 2)."""
    PostgresStore(postgres_database).close()
    store = PostgresStore(postgres_database)
    store.conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    store.close()
    for create in (True, False):
        with pytest.raises(SchemaTooNew, match="schema version 99") as raised:
            PostgresStore(postgres_database, create=create)
        assert raised.value.exit_code == 2
    import psycopg

    with psycopg.connect(postgres_database) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("99",)


def test_postgres_readers_cannot_write_nor_create(postgres_database):
    """A reader refuses an empty database (nothing created) and cannot write to a real one."""
    import psycopg

    with pytest.raises(StoreError, match="run `monitor check` first"):
        PostgresStore(postgres_database, create=False)
    with psycopg.connect(postgres_database) as conn:
        assert conn.execute("SELECT to_regclass('meta')").fetchone() == (None,)
    PostgresStore(postgres_database).close()
    reader = PostgresStore(postgres_database, create=False)
    try:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.conn.execute("DELETE FROM events")
    finally:
        reader.close()


def test_errors_name_the_database_without_its_password(postgres_server):
    """A refused login names the URL with its password left out, and no password leaks."""
    url = f"postgresql://nobody:s3cret@127.0.0.1:{postgres_server.port}/nowhere"
    with pytest.raises(StoreError) as raised:
        PostgresStore(url)
    message = str(raised.value)
    assert message.startswith(
        f"cluster.database: cannot connect to postgresql://nobody@127.0.0.1:{postgres_server.port}"
    )
    assert "s3cret" not in message


def with_deliveries(records: list[CycleRecord]) -> list[CycleRecord]:
    """The records, each cycle with events owing one delivery of them to one of two targets."""
    out = []
    for n, record in enumerate(records):
        ids = tuple(e.id for e in record.result.events)
        owed = (NewDelivery(n % 2, f"hash{n % 2}", ids, record.finished_at, record.finished_at),)
        out.append(replace(record, deliveries=owed if ids else ()))
    return out


def test_the_outbox_reads_and_marks_alike_on_both_stores(
    site, tmp_path, monkeypatch, postgres_database
):
    """Deliveries a cycle queues are due, marked and summed up the same in SQLite and PostgreSQL."""
    records = with_deliveries(recorded_cycles(site, tmp_path, monkeypatch))
    assert sum(len(r.deliveries) for r in records) >= 3
    sqlite = SqliteStore(tmp_path / "replay.db")
    postgres = PostgresStore(postgres_database)
    try:
        for record in records:
            sqlite.record_cycle(record)
            postgres.record_cycle(record)
        outboxes = (sqlite.outbox(), postgres.outbox())
        now = records[-1].finished_at
        due = [o.due(now, 100) for o in outboxes]
        assert due[0] == due[1] and len(due[0]) == sum(len(r.deliveries) for r in records)
        assert [d.id for d in due[0]] == sorted(d.id for d in due[0])
        ids = list(reversed(due[0][0].event_ids)) + ["nope"]
        assert outboxes[0].events(ids) == outboxes[1].events(ids)
        assert [e.id for e in outboxes[1].events(ids)] == ids[:-1]
        later = now + timedelta(hours=1)
        for outbox in outboxes:
            outbox.mark_sent(due[0][0].id, now)
            outbox.mark_failed(due[0][1].id, now, "HTTP 410 from target 2")
            for d in due[0][2:]:
                outbox.mark_retry(d.id, now, later, "HTTP 503 from target 1")
        status = [o.notify_status() for o in outboxes]
        assert status[0] == status[1]
        assert sum(r.sent for r in status[1]) == 1 and sum(r.failed for r in status[1]) == 1
        assert [o.due(now, 100) for o in outboxes] == [[], []]
        again = [o.due(later, 100) for o in outboxes]
        assert again[0] == again[1] and [d.attempts for d in again[1]] == [1] * len(due[0][2:])
    finally:
        sqlite.close()
        postgres.close()


def test_postgres_workers_never_claim_the_same_pending_delivery(postgres_database):
    """due() claims its rows: a second worker skips them (locked or leased) until the lease ends."""
    import psycopg

    at = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    owed = tuple(NewDelivery(0, "hash0", (f"e{i}",), at, at) for i in range(3))
    one, two = PostgresStore(postgres_database), PostgresStore(postgres_database)
    locker = psycopg.connect(postgres_database)
    try:
        one.record_cycle(CycleRecord(at, at, (), (), CycleResult((), (), ()), {}, deliveries=owed))
        assert one.outbox().due(at - timedelta(seconds=1), 10) == []  # not due yet
        ids = sorted(r[0] for r in locker.execute("SELECT id FROM outbox").fetchall())
        # A worker in the middle of claiming holds the first row locked.
        locker.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (ids[0],))
        two.conn.execute("SET lock_timeout = '5s'")  # waiting on the lock would fail, not hang
        assert [d.id for d in two.outbox().due(at, 10)] == ids[1:]
        assert one.outbox().due(at, 10) == []  # one locked, two leased
        locker.rollback()
        claimed = one.outbox().due(at, 10)
        assert [d.id for d in claimed] == ids[:1] and claimed[0].next_at == at
        one.outbox().mark_sent(ids[0], at)
        assert two.outbox().due(at + timedelta(seconds=LEASE_S - 1), 10) == []
        # The claimant never marked the others (it died): due again once the lease ends.
        end = at + timedelta(seconds=LEASE_S)
        late = one.outbox().due(end, 10)
        assert [(d.id, d.attempts, d.next_at) for d in late] == [(i, 0, end) for i in ids[1:]]
    finally:
        locker.close()
        one.close()
        two.close()


def test_a_joining_digest_grows_only_a_digest_no_one_has_tried_or_claimed(
    tmp_path, postgres_database
):
    """An entry-page phase's digest joins its check's digest while that one is untouched;
    once a send was tried (or a worker claimed it) the joining ids get a row of their own,
    so no id rides on a message that may already be out. SQLite, PostgreSQL and the
    in-memory reference agree."""
    from monitor.notify.memory import MemoryOutbox

    at = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    later = at + timedelta(minutes=1)
    cycle = (NewDelivery(0, "hash0", ("a", "b"), at, at), NewDelivery(1, "hash1", ("a",), at, at))
    # Target 3 has target 1's URL (hash0) and its own filters: its ids never join target 1's.
    links = (NewDelivery(0, "hash0", ("c",), later, later, joins=at),
             NewDelivery(1, "hash1", ("c",), later, later, joins=at),
             NewDelivery(2, "hash0", ("d",), later, later, joins=at))  # fmt: skip
    empty = CycleResult((), (), ())
    sqlite, postgres = SqliteStore(tmp_path / "join.db"), PostgresStore(postgres_database)
    memory = MemoryOutbox()
    try:
        for store in (sqlite, postgres):
            store.record_cycle(CycleRecord(at, at, (), (), empty, {}, deliveries=cycle))
        memory.add((), cycle)
        outboxes = (sqlite.outbox(), postgres.outbox(), memory)
        # Target 2's digest was tried once and waits to be retried: it is never grown.
        tried = [d.id for d in outboxes[0].due(at, 10) if d.target == 1][0]
        for outbox in outboxes:
            outbox.mark_retry(tried, at, at, "HTTP 503 from target 2")
        for store in (sqlite, postgres):
            store.record_cycle(CycleRecord(later, later, (), (), empty, {}, deliveries=links))
        memory.add((), links)
        pending = [[(d.target, d.event_ids) for d in o.due(later, 10)] for o in outboxes]
        assert pending[0] == pending[1] == pending[2]
        assert sorted(pending[0]) == [(0, ("a", "b", "c")), (1, ("a",)), (1, ("c",)), (2, ("d",))]
        # A PostgreSQL worker's claim (due() leases the row) is as good as a send begun.
        third = at + timedelta(minutes=2)
        postgres.record_cycle(CycleRecord(third, third, (), (), empty, {}, deliveries=(
            NewDelivery(0, "hash0", ("x",), third, third),)))  # fmt: skip
        claimed = postgres.outbox().due(third, 10)
        assert [d.event_ids for d in claimed if d.target == 0][-1] == ("x",)
        postgres.record_cycle(CycleRecord(third, third, (), (), empty, {}, deliveries=(
            NewDelivery(0, "hash0", ("y",), third, third, joins=third),)))  # fmt: skip
        rows = postgres.conn.execute("SELECT event_ids FROM outbox ORDER BY id").fetchall()
        assert [json.loads(r[0]) for r in rows][-2:] == [["x"], ["y"]]
    finally:
        sqlite.close()
        postgres.close()
