"""[cluster]: real PostgreSQL and Redis servers, `monitor worker` and `monitor run` subprocesses.

The workers record into the PostgreSQL store of [cluster].database, read back through
the same config by the reading commands.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    IMLS,
    json_lines,
    run,
    write_config,
)
from werkzeug import Request, Response

ROOT = Path(__file__).parent.parent
TIMEOUT_S = 30.0  # a bound for each wait; a passing test waits a second or two
# A killed worker's task comes back after task_timeout + 50 s of visibility timeout and
# at most one 10 s sweep: a minute past the 3 s timeout used below, plus slack.
RERUN_TIMEOUT_S = 100.0


@dataclass
class Proc:
    """One `monitor` subprocess in its own session; stdout and stderr go to log_path."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[: text.rfind("\n") + 1]

    def logged(self, msg: str) -> list[dict[str, str]]:
        """The logfmt records whose msg is `msg`."""
        records = []
        for line in self.log().splitlines():
            if line.startswith("ts="):
                record = dict(part.split("=", 1) for part in shlex.split(line) if "=" in part)
                if record.get("msg") == msg:
                    records.append(record)
        return records

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
        """Poll until predicate() is truthy; fail with the log if the process dies or time is up."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}) before {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=TIMEOUT_S)

    def kill_all(self) -> None:
        """SIGKILL the process and its pool processes at once, as when a machine dies."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT_S)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Starts `python -m monitor --config CONFIG ARGS…`; what still runs is killed at the end."""
    started: list[tuple[Proc, IO[bytes]]] = []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("MONITOR_CONFIG", None)

    def start_one(config: Path, *args: str) -> Proc:
        log_path = tmp_path / f"{args[0]}-{len(started)}.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 (closed at teardown)
        command = [sys.executable, "-m", "monitor", "--config", str(config), *args]
        proc = subprocess.Popen(
            command, stdout=log_file, stderr=log_file, cwd=tmp_path, env=env, start_new_session=True
        )
        started.append((Proc(proc, log_path), log_file))
        return started[-1][0]

    yield start_one
    for proc, log_file in started:
        if proc.proc.poll() is None:
            os.killpg(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(timeout=TIMEOUT_S)
        log_file.close()


def cluster_config(
    tmp_path: Path,
    site,
    servers: tuple[str, str],
    *,
    groups: tuple[str, str] = ("current", "past"),
    interval: str = "1h",
    **cluster: str,
) -> Path:
    """The two IMLS pages on `site` in `groups`, [cluster] on the test servers (redis, postgres)."""
    pages = [
        {"name": "active", "url": site.url(ACTIVE_PATH), "role": "active", "group": groups[0]},
        {
            "name": "archived",
            "url": site.url(ARCHIVED_PATH),
            "role": "archived",
            "group": groups[1],
        },
    ]
    path = write_config(tmp_path, pages, schedule={"interval": interval, "jitter": "0s"})
    redis_url, postgres_url = servers
    settings = {"database": postgres_url, "broker": redis_url, "archive": "warc", **cluster}
    lines = ["[cluster]", *(f'{key} = "{value}"' for key, value in settings.items())]
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return path


def records(config: Path, command: str) -> list[dict]:
    """`monitor COMMAND --json` through the cluster config: the workers' PostgreSQL store.

    [] while there is none yet.
    """
    result = run(config, command, "--json")
    return json_lines(result) if result.exit_code == 0 else []


def queued(redis_url: str) -> int:
    """How many tasks wait in the broker's queue."""
    import redis

    with redis.Redis.from_url(redis_url) as client:
        return int(client.llen("monitor"))


def serve_imls(site) -> None:
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")


# --- the servers ---------------------------------------------------------------------------------


def test_postgres_and_redis_start_and_answer(postgres_server, redis_url):
    """The throw-away PostgreSQL and Redis answer psycopg 3 and redis-py on 127.0.0.1."""
    import psycopg
    import redis

    with psycopg.connect(postgres_server.url, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (n integer)")
        conn.execute("INSERT INTO t VALUES (41)")
        assert conn.execute("SELECT n + 1 FROM t").fetchone() == (42,)
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"


def test_import_monitor_cli_imports_no_cluster_library():
    """`import monitor.cli` loads neither celery, kombu, redis nor psycopg."""
    code = (
        "import sys, monitor.cli; "
        "print(sorted(m for m in ('celery', 'kombu', 'redis', 'psycopg') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_worker_without_cluster_table_exits_2_naming_it(tmp_path, site):
    """`monitor worker` on a config without [cluster] says it needs one and exits 2."""
    config = write_config(tmp_path, [{"name": "a", "url": site.url("/"), "role": "active"}])
    result = run(config, "worker")
    assert result.exit_code == 2
    assert "[cluster]" in result.stderr and "cluster" in result.stderr


# --- producer and workers ------------------------------------------------------------------------


@pytest.mark.slow
def test_worker_checks_each_group_the_producer_enqueues(
    tmp_path, site, redis_url, postgres_database, start
):
    """`monitor run` enqueues both groups at start; a `monitor worker` checks them; SIGTERM: 0."""
    serve_imls(site)
    config = cluster_config(tmp_path, site, (redis_url, postgres_database))
    producer = start(config, "run")
    producer.wait_for(lambda: len(producer.logged("group enqueued")) == 2, "two groups enqueued")
    worker = start(config, "worker")
    worker.wait_for(lambda: len(worker.logged("group check done")) == 2, "two group checks")

    entries = records(config, "entries")
    assert {entry["page"] for entry in entries} == {"active", "archived"}
    assert {r["group"] for r in worker.logged("group check done")} == {"current", "past"}
    assert worker.stop() == 0
    assert producer.stop() == 0
    assert queued(redis_url) == 0


@pytest.mark.slow
def test_run_enqueues_each_group_once_and_not_again_while_queued(
    tmp_path, site, redis_url, postgres_database, start
):
    """Ticks every second, no worker: each group is queued once; a second producer exits 3."""
    config = cluster_config(tmp_path, site, (redis_url, postgres_database), interval="1s")
    producer = start(config, "run")
    skipped = "group still queued or running; not enqueued"
    producer.wait_for(lambda: len(producer.logged(skipped)) >= 4, "two ticks finding both queued")
    assert sorted(r["group"] for r in producer.logged("group enqueued")) == ["current", "past"]
    assert queued(redis_url) == 2

    second = start(config, "run")
    assert second.proc.wait(timeout=TIMEOUT_S) == 3
    assert "a monitor producer is already running" in second.log()

    # The pending marks expire (no worker for longer than task_timeout + 50 s): the tasks
    # still wait in the queue, so the producer marks them again and enqueues nothing.
    import redis

    with redis.Redis.from_url(redis_url) as client:
        for key in client.keys("monitor:pending:*"):
            client.delete(key)
        ticks = len(producer.logged(skipped))
        producer.wait_for(lambda: len(producer.logged(skipped)) >= ticks + 4, "two more ticks")
        assert sorted(k.decode() for k in client.keys("monitor:pending:*")) == [
            "monitor:pending:current", "monitor:pending:past"]  # fmt: skip
    assert len(producer.logged("group enqueued")) == 2

    # `monitor status` knows the producer through Redis, and its next enqueue.
    def daemon() -> dict:
        return json.loads(run(config, "status", "--json").stdout)["daemon"]

    shown = producer.wait_for(lambda: daemon()["next_run_at"] and daemon(), "the next enqueue")
    assert shown["running"] is True and f"pid {producer.proc.pid}" in shown["producer"]
    # ... the tick to come, said at every tick (not the one that fired, until a renewal)
    for _ in range(6):
        time.sleep(0.5)
        ahead = datetime.fromisoformat(daemon()["next_run_at"]) - datetime.now(UTC)
        assert ahead > timedelta(seconds=-1.5), ahead  # seconds are truncated when stored
    assert "producer: running (" in run(config, "status").stdout
    assert producer.stop() == 0
    assert queued(redis_url) == 2
    assert daemon()["running"] is False
    assert "producer: not running" in run(config, "status").stdout


def test_the_producer_lock_survives_a_redis_that_lost_its_data(redis_url):
    """A renewal that finds no lock (Redis restarted without its data) takes it again and
    the producer goes on; only another producer's lock makes it stop."""
    from monitor.cluster.coordination import PRODUCER_KEY, ProducerLock, connect

    client = connect(redis_url)
    try:
        lock = ProducerLock(client)
        lock.acquire()
        client.delete(PRODUCER_KEY)  # as a Redis restarted without its data
        assert lock.renew() is True
        assert client.get(PRODUCER_KEY) == lock.token.encode()
        assert 0 < client.ttl(PRODUCER_KEY) <= 30
        client.set(PRODUCER_KEY, "another host pid 1 abcdef01")
        assert lock.renew() is False
        assert client.get(PRODUCER_KEY) == b"another host pid 1 abcdef01"
    finally:
        client.delete(PRODUCER_KEY)
        client.close()


@pytest.mark.slow
def test_a_task_of_a_killed_worker_runs_again_on_another(
    tmp_path, site, redis_url, postgres_database, start
):
    """kill -9 of a worker mid-task: another worker runs the task again, and records it once."""
    release = threading.Event()
    asked: list[int] = []

    def slow_once(request: Request) -> Response:
        asked.append(1)
        if len(asked) == 1:
            release.wait(RERUN_TIMEOUT_S)  # the first worker dies while waiting here
        return Response((IMLS / "active.html").read_bytes(), content_type="text/html")

    site.serve(ACTIVE_PATH, slow_once)
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")
    servers = (redis_url, postgres_database)
    config = cluster_config(tmp_path, site, servers, groups=("all", "all"), task_timeout="3s")
    first = start(config, "worker")
    first.wait_for(lambda: first.logged("worker ready"), "the first worker ready")
    producer = start(config, "run")
    first.wait_for(lambda: asked, "the first worker fetching")
    first.kill_all()
    release.set()
    assert records(config, "snapshots") == []  # the killed cycle recorded nothing

    second = start(config, "worker")
    second.wait_for(
        lambda: second.logged("group check done"), "the task run again", RERUN_TIMEOUT_S
    )
    # one cycle recorded, once: one capture of each page, and the entries of both
    assert sorted(c["page"] for c in records(config, "snapshots")) == ["active", "archived"]
    assert {entry["page"] for entry in records(config, "entries")} == {"active", "archived"}
    assert producer.stop() == 0
    assert second.stop() == 0


@pytest.mark.parametrize("command", ["worker", "run"])
def test_an_unreachable_broker_is_an_error_naming_the_key(tmp_path, site, command):
    """`monitor worker` and `monitor run` with Redis down: exit 1, naming cluster.broker."""
    from dbservers import free_port

    broker = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    config = cluster_config(tmp_path, site, (broker, "postgresql://monitor@127.0.0.1/monitor"))
    result = run(config, command)
    assert result.exit_code == 1
    assert "Error: cluster.broker: cannot use redis://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.output


# --- two workers on PostgreSQL, one machine on SQLite: the same record ---------------------------

GROUPS = ("g1", "g2", "g3", "g4")
LIST_SELECT = {"item": "li", "title": "a", "link": "a[href]", "description": "p"}


def listing(group: str, step: int) -> tuple[str, str]:
    """A group's active and archived listings at `step`: entries are added, changed, archived
    and removed along the steps; no entry is shared with another group."""

    def item(n: int, where: str, note: str = "") -> str:
        link = f"/{group}/{where}/{group}-e{n}"  # the last segment names the entry
        return f'<li><a href="{link}">{group} initiative {n}</a><p>About {n}.{note}</p></li>'

    active = {
        1: [item(1, "now"), item(2, "now"), item(3, "now"), item(4, "now")],
        2: [item(1, "now"), item(2, "now", " Now more."), item(3, "now"), item(4, "now"),
            item(6, "now")],
        3: [item(1, "now"), item(2, "now", " Now more."), item(6, "now")],
    }[step]  # fmt: skip
    archived = [item(5, "archives")] + ([item(3, "archives")] if step == 3 else [])
    return tuple(
        f"<html><body><ul>{''.join(items)}</ul></body></html>" for items in (active, archived)
    )  # type: ignore[return-value]


def group_pages(site) -> list[dict]:
    pages = []
    for group in GROUPS:
        for role in ("active", "archived"):
            name = f"{group}-{role}"
            pages.append({"name": name, "url": site.url(f"/{name}"), "role": role,
                          "group": group, "select": LIST_SELECT})  # fmt: skip
    return pages


def serve_step(site, step: int) -> None:
    for group in GROUPS:
        active, archived = listing(group, step)
        site.serve(f"/{group}-active", active)
        site.serve(f"/{group}-archived", archived)


def events_by_group(config: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Each group's events, oldest first, as (kind, title, page)."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for event in reversed(records(config, "log")):
        group = event["page"].split("-")[0]
        found.setdefault(group, []).append((event["kind"], event.get("title"), event["page"]))
    return found


@pytest.mark.slow
def test_two_workers_on_postgres_record_what_one_machine_records_on_sqlite(
    tmp_path, site, redis_url, postgres_database, start
):
    """Four groups, three steps, two workers on PostgreSQL: the same events as on SQLite."""
    from monitor.cluster.app import CHECK_GROUP_TASK, create_app
    from monitor.cluster.settings import load_setup

    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    settings = {"database": postgres_database, "broker": redis_url, "archive": "warc"}
    monitor = {"confirm_checks": 2, "anomaly_ratio": 0.5}
    single = write_config(tmp_path / "one", group_pages(site), monitor=monitor)
    cluster = write_config(tmp_path / "many", group_pages(site), monitor=monitor, cluster=settings)
    workers = [start(cluster, "worker"), start(cluster, "worker")]
    for worker in workers:
        worker.wait_for(lambda w=worker: w.logged("worker ready"), "a worker ready")
    setup = load_setup(cluster)
    assert setup.cluster is not None
    app = create_app(setup.cluster)
    try:
        for step in (1, 2, 3):
            serve_step(site, step)
            for group in GROUPS:
                app.send_task(CHECK_GROUP_TASK, args=[group])
            workers[0].wait_for(
                lambda step=step: (
                    sum(len(w.logged("group check done")) for w in workers) == len(GROUPS) * step
                ),
                f"step {step} checked by the workers",
            )
            for group in GROUPS:
                pages = ("--page", f"{group}-active", "--page", f"{group}-archived")
                assert run(single, "check", *pages).exit_code == 0
    finally:
        app.close()
    assert all(w.logged("group check done") for w in workers)  # both took part
    on_sqlite, on_postgres = events_by_group(single), events_by_group(cluster)
    assert on_postgres == on_sqlite
    kinds = {kind for events in on_postgres.values() for kind, _, _ in events}
    assert {"added", "changed", "archived", "removed"} <= kinds
    entries = [sorted((e["state"], e["page"], e["title"]) for e in records(c, "entries"))
               for c in (single, cluster)]  # fmt: skip
    assert entries[0] == entries[1] and entries[0]
    assert not (tmp_path / "many" / "data" / "monitor.db").exists()
    assert all(w.stop() == 0 for w in workers)
