"""Notifications end to end: `check`, `run`, `notify test|status`, a local webhook, kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    SCENARIO,
    imls_pages,
    json_lines,
    run,
    toml_value,
    write_config,
)
from pytest_httpserver import HTTPServer
from servers import closed_url
from werkzeug import Request, Response

import monitor.notify.deliver

ROOT = Path(__file__).parent.parent
EXPECTED = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
WAIT_S = 30.0  # a bound for each wait; a passing test waits far less
SECRET_PASSWORD = "hunter2hunter2"
SECRET_TOKEN = "s3cr3tT0kenXYZ"


class Receiver:
    """A json:// webhook on 127.0.0.1: keeps every request it got, answers as told.

    `status` is the answer; `hang_on` = n makes the nth request (from 1) wait, after it
    was recorded, until release() (or 30 s): a target that got a message and never said so.
    """

    def __init__(self, port: int = 0) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=port, threaded=True)
        self.status = 200
        self.hang_on: int | None = None
        self.hang_all = False
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server.expect_request("/hook").respond_with_handler(self._answer)
        self.server.start()

    def _answer(self, request: Request) -> Response:
        data = json.loads(request.get_data(as_text=True))
        with self._lock:
            self.received.append(data)
            n = len(self.received)
        if self.hang_all or n == self.hang_on:
            self._release.wait(WAIT_S)
        return Response("", status=self.status)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.port}/hook"

    def release(self) -> None:
        self.hang_on, self.hang_all = None, False
        self._release.set()

    def stop(self) -> None:
        self.release()
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    def ids(self) -> list[str]:
        """Every urn:uuid: id in every message received, in order, repeats included."""
        return [
            word
            for m in self.received
            for word in m.get("message", "").split()
            if word.startswith("urn:uuid:")
        ]

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {WAIT_S}s; received: {self.received}")
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process checks spend 3 s on delivery, 2 s a send: a hanging test target costs little."""
    monkeypatch.setattr(monitor.notify.deliver, "BUDGET_S", 3.0)
    monkeypatch.setattr(monitor.notify.deliver, "SEND_TIMEOUT_S", 2.0)


def serve_step(site, n: int) -> None:
    step = SCENARIO / f"step{n}"
    site.serve_file(ACTIVE_PATH, step / "active.html")
    site.serve_file(ARCHIVED_PATH, step / "archived.html")


def notify_config(tmp_path: Path, site, *targets: dict[str, Any], **sections: Any) -> Path:
    """scenario-basic's config over `site`, with one [[notify]] table per target."""
    path = write_config(tmp_path, imls_pages(site), monitor=EXPECTED["config"], **sections)
    lines = []
    for target in targets:
        lines.append("[[notify]]")
        lines += [f"{key} = {toml_value_any(value)}" for key, value in target.items()]
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def toml_value_any(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_value(value)


def check(config: Path, *args: str):
    result = run(config, "check", "--json", *args)
    assert result.exit_code == 0, result.output
    return result


def baseline_then_changes(config: Path, site) -> list[dict[str, Any]]:
    """Step 1 (the baseline), then step 2's check; returns step 2's events."""
    serve_step(site, 1)
    assert json_lines(check(config)) == []
    serve_step(site, 2)
    return json_lines(check(config))


def urns(events: list[dict[str, Any]], *kinds: str) -> list[str]:
    return [f"urn:uuid:{e['id']}" for e in events if not kinds or e["kind"] in kinds]


def outbox(config: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(config.parent / "data" / "monitor.db")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        db.close()


def time_passes(config: Path, hours: float = 2.0, *, database: str | None = None) -> None:
    """As if `hours` went by: every pending delivery was queued and is due that much earlier
    (in monitor.db, or in the PostgreSQL `database`)."""
    if database is not None:
        import psycopg

        earlier = ("to_char((({col})::timestamptz - make_interval(secs => %(s)s)) AT TIME ZONE "
                   "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")  # fmt: skip
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f"UPDATE outbox SET created_at = {earlier.format(col='created_at')}, "
                         f"next_at = {earlier.format(col='next_at')} WHERE status = 'pending'",
                         {"s": hours * 3600})  # fmt: skip
        return
    shift = f"-{hours} hours"
    db = sqlite3.connect(config.parent / "data" / "monitor.db")
    with db:
        db.execute(
            "UPDATE outbox SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, ?), "
            "next_at = strftime('%Y-%m-%dT%H:%M:%SZ', next_at, ?) WHERE status = 'pending'",
            (shift, shift),
        )
    db.close()


def notify_status(config: Path) -> list[dict[str, Any]]:
    result = run(config, "notify", "status", "--json")
    assert result.exit_code == 0, result.output
    return json_lines(result)


# -- check: queued with the events, sent after the commit -------------------------------------


def test_archived_entry_sends_one_message_with_its_title_and_id(site, tmp_path, receiver):
    """A check that archives an entry sends one "Archived: …" message carrying its urn:uuid id."""
    config = notify_config(tmp_path, site, {"url": receiver.url, "kinds": ["archived", "removed"]})
    events = baseline_then_changes(config, site)
    assert len(receiver.received) == 1
    message = receiver.received[0]
    assert message["title"] == "Archived: IMLS Focus"
    assert receiver.ids() == urns(events, "archived")
    assert notify_status(config)[0] | {"url": None} == {
        "target": 1, "url": None, "pending": 0, "sent": 1, "failed": 0,
        "oldest_pending": None, "next_attempt_at": None, "last_error": None,
    }  # fmt: skip


@pytest.mark.parametrize("digest", [False, True])
def test_link_events_are_queued_and_sent_like_entry_events(
    site, tmp_path, receiver, digest, cluster
):
    """An entry's own page confirmed gone: `link-gone` is queued with the entry-page phase's
    events and sent after its commit, in the check that saw it, on either store."""
    from test_detail import LIST, T0, check_at, day, listing, page, write_detail_config

    site.serve(LIST, listing(("/i/alpha", "Alpha"), ("/i/beta", "Beta")))
    site.serve("/i/alpha", page("Alpha"))
    site.serve("/i/beta", page("Beta"))
    config = write_detail_config(tmp_path, site, detail={"every": "1d", "content": "main"})
    with config.open("a", encoding="utf-8") as f:
        f.write(f'[[notify]]\nurl = "{receiver.url}"\nkinds = ["link-gone", "page-gone"]\n'
                f"digest = {str(digest).lower()}\n")  # fmt: skip
        if cluster:
            f.write("[cluster]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in cluster.items()))
    check_at(config, T0)
    site.serve("/i/beta", lambda request: Response("gone", status=404))
    check_at(config, day(1))  # 1 of confirm_checks = 2
    report = check_at(config, day(2))
    (gone,) = [e for e in report.events if e.kind == "link-gone"]
    assert receiver.ids() == [f"urn:uuid:{gone.id}"]
    assert "Beta" in receiver.received[0]["title"] + receiver.received[0]["message"]
    if not cluster:
        assert [json.loads(row["event_ids"]) for row in outbox(config)] == [[gone.id]]
    assert report.notify is not None and report.notify.sent == 1
    assert [s["sent"] for s in notify_status(config)] == [1]


@pytest.mark.parametrize("digest", [False, True])
def test_a_digest_target_gets_one_message_for_a_check_and_its_entry_pages(
    site, tmp_path, receiver, digest, cluster
):
    """A check whose listing loses an entry and whose entry-page phase then confirms another
    entry's page gone: a digest target gets one message naming both events (SPEC: one per
    cycle), a plain target one message per event; on either store."""
    from test_detail import LIST, T0, check_at, day, listing, page, write_detail_config

    site.serve(LIST, listing(("/i/alpha", "Alpha"), ("/i/beta", "Beta"), ("/i/gamma", "Gamma")))
    for name in ("alpha", "beta", "gamma"):
        site.serve(f"/i/{name}", page(name.title()))
    config = write_detail_config(tmp_path, site, detail={"every": "1d"})
    with config.open("a", encoding="utf-8") as f:
        f.write(f'[[notify]]\nurl = "{receiver.url}"\ndigest = {str(digest).lower()}\n')
        if cluster:
            f.write("[cluster]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in cluster.items()))
    check_at(config, T0)
    site.serve("/i/beta", lambda request: Response("gone", status=404))
    check_at(config, day(1))  # 1 of confirm_checks = 2
    assert receiver.received == []
    site.serve(LIST, listing(("/i/alpha", "Alpha"), ("/i/beta", "Beta")))
    report = check_at(config, day(2))
    kinds = sorted(e.kind for e in report.events)
    assert kinds == ["link-gone", "removed"]
    assert sorted(receiver.ids()) == sorted(f"urn:uuid:{e.id}" for e in report.events)
    assert len(receiver.received) == (1 if digest else 2)
    assert report.notify is not None and report.notify.sent == len(receiver.received)
    assert [s["sent"] for s in notify_status(config)] == [len(receiver.received)]


def test_baseline_sends_nothing(site, tmp_path, receiver):
    """The first check of the pages is a baseline: no event, no message, nothing queued."""
    config = notify_config(tmp_path, site, {"url": receiver.url})
    serve_step(site, 1)
    check(config)
    assert receiver.received == [] and outbox(config) == []
    assert [s["sent"] + s["pending"] + s["failed"] for s in notify_status(config)] == [0]


def test_deliveries_are_committed_with_the_events(site, tmp_path, receiver):
    """Each event of the check has its delivery row, naming its id, in the same database."""
    config = notify_config(tmp_path, site, {"url": receiver.url})
    events = baseline_then_changes(config, site)
    queued = [json.loads(row["event_ids"]) for row in outbox(config)]
    assert sorted(i for ids in queued for i in ids) == sorted(e["id"] for e in events)
    assert sorted(receiver.ids()) == sorted(urns(events))


def test_digest_sends_one_message_per_cycle_listing_every_id(site, tmp_path, receiver):
    """With digest = true, a check's three events arrive as one message with the three ids."""
    config = notify_config(tmp_path, site, {"url": receiver.url, "digest": True})
    events = baseline_then_changes(config, site)
    assert len(events) == 3 and len(receiver.received) == 1
    assert sorted(receiver.ids()) == sorted(urns(events))
    serve_step(site, 3)
    later = json_lines(check(config))
    assert len(receiver.received) == 2
    assert sorted(receiver.ids()[3:]) == sorted(urns(later))


def test_a_500_then_200_is_delivered_by_a_later_check(site, tmp_path, receiver):
    """A target answering 500 leaves the check's exit 0, says so on stderr, and gets it later."""
    config = notify_config(tmp_path, site, {"url": receiver.url, "kinds": ["archived"]})
    serve_step(site, 1)
    check(config)
    serve_step(site, 2)
    receiver.status = 500
    result = check(config)
    assert "will retry" in result.stderr and "500" in result.stderr
    assert [(s["pending"], s["sent"]) for s in notify_status(config)] == [(1, 0)]
    receiver.status = 200
    check(config)  # within the backoff: not tried again yet
    assert [(s["pending"], s["sent"]) for s in notify_status(config)] == [(1, 0)]
    time_passes(config)
    check(config)
    assert [(s["pending"], s["sent"]) for s in notify_status(config)] == [(0, 1)]
    assert receiver.received[-1]["title"] == "Archived: IMLS Focus"


@pytest.mark.parametrize("digest", [False, True])
def test_a_target_that_was_down_gets_its_messages_in_order(
    site, tmp_path, receiver, digest, cluster
):
    """A message queued while an earlier one to the same target waits its backoff waits
    with it: when the target answers again they arrive in the order they were queued, and
    `notify status` shows the real cause of the wait (on either store)."""
    config = notify_config(tmp_path, site, {"url": receiver.url, "digest": digest},
                           **({"cluster": cluster} if cluster else {}))  # fmt: skip
    serve_step(site, 1)
    check(config)
    receiver.status = 503
    serve_step(site, 2)
    first = json_lines(check(config))
    serve_step(site, 3)
    second = json_lines(check(config))  # its messages are due at once: they must wait
    assert receiver.ids() == (urns(first) if digest else urns(first)[:1])  # one try: failed
    (status,) = notify_status(config)
    assert status["pending"] == (2 if digest else len(first) + len(second))
    assert "503" in status["last_error"]
    receiver.status, receiver.received = 200, []
    time_passes(config, database=cluster["database"] if cluster else None)
    check(config)
    assert receiver.ids() == urns(first) + urns(second)


def test_a_hanging_target_ends_the_check_within_its_budget(site, tmp_path, receiver, short_budget):
    """A target that never answers: the check ends, exit 0, all stays pending; sent later."""
    config = notify_config(tmp_path, site, {"url": receiver.url})
    serve_step(site, 1)
    check(config)
    serve_step(site, 2)
    receiver.hang_all = True
    result = check(config)
    events = json_lines(result)
    assert "will retry" in result.stderr  # a read timeout, in the words of the plugin
    assert [s["pending"] for s in notify_status(config)] == [3]
    receiver.release()
    time_passes(config)
    check(config)
    assert [(s["pending"], s["sent"]) for s in notify_status(config)] == [(0, 3)]
    got = Counter(receiver.ids())
    assert set(got) == set(urns(events)) and sum(got.values()) <= len(events) + 1


def test_refused_connection_then_a_listening_target_gets_it(site, tmp_path):
    """A target whose port refuses connections gets the message once something listens there."""
    port = int(closed_url("/hook").rsplit(":", 1)[1].split("/")[0])
    config = notify_config(tmp_path, site, {"url": f"json://127.0.0.1:{port}/hook"})
    serve_step(site, 1)
    check(config)
    serve_step(site, 2)
    events = json_lines(check(config))
    assert [s["pending"] for s in notify_status(config)] == [3]
    late = Receiver(port)
    try:
        time_passes(config)
        check(config)
        assert sorted(late.ids()) == sorted(urns(events))
    finally:
        late.stop()


def test_give_up_after_marks_failed_and_status_shows_it(site, tmp_path, receiver):
    """A target still failing past give_up_after: failed in `notify status` and `status`."""
    config = notify_config(
        tmp_path, site, {"url": receiver.url, "kinds": ["archived"], "give_up_after": "1h"}
    )
    serve_step(site, 1)
    check(config)
    serve_step(site, 2)
    receiver.status = 500
    check(config)
    time_passes(config)
    result = check(config)
    assert "gave up" in result.stderr
    [row] = notify_status(config)
    assert (row["pending"], row["failed"]) == (0, 1) and "500" in row["last_error"]
    text = run(config, "status").stdout
    assert "notifications: 0 pending, 1 failed (target #1: " in text
    receiver.status = 200
    time_passes(config)
    check(config)
    assert len(receiver.received) == 2  # the two tries; nothing after giving up


def test_secrets_of_the_url_never_reach_output(site, tmp_path, receiver):
    """A failing target's password and token appear in no output: check, status, notify *."""
    url = receiver.url.replace("json://", f"json://bob:{SECRET_PASSWORD}@")
    url += f"?token={SECRET_TOKEN}"
    config = notify_config(tmp_path, site, {"url": url})
    serve_step(site, 1)
    check(config)
    serve_step(site, 2)
    receiver.status = 500
    outputs = [check(config)]
    outputs += [run(config, *args) for args in (["status"], ["status", "--json"])]
    outputs += [run(config, "notify", "status"), run(config, "notify", "status", "--json")]
    outputs.append(run(config, "notify", "test"))
    assert outputs[-1].exit_code == 1
    text = "".join(r.stdout + r.stderr for r in outputs)
    assert "500" in text and "bob:***@" in text
    assert SECRET_PASSWORD not in text and SECRET_TOKEN not in text
    assert all(SECRET_PASSWORD not in (row["last_error"] or "") for row in outbox(config))


# -- notify test -----------------------------------------------------------------------------


def test_notify_test_sends_to_every_target_and_exits_0(site, tmp_path, receiver):
    """`notify test` sends one test message to each target and says so."""
    config = notify_config(tmp_path, site, {"url": receiver.url}, {"url": receiver.url})
    result = run(config, "notify", "test")
    assert result.exit_code == 0, result.output
    assert [m["title"] for m in receiver.received] == ["monitor: test notification"] * 2
    assert "target 1 " in result.stdout and "target 2 " in result.stdout
    assert run(config, "notify", "test", "--target", "2").exit_code == 0
    assert len(receiver.received) == 3


def test_notify_test_names_the_failing_target_and_exits_1(site, tmp_path, receiver):
    """A target that refuses the test message: exit 1, the error names it, URL redacted."""
    bad = closed_url("/hook").replace("http://", f"json://bob:{SECRET_PASSWORD}@")
    config = notify_config(tmp_path, site, {"url": receiver.url}, {"url": bad})
    result = run(config, "notify", "test")
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "target 2 (json://bob:***@127.0.0.1" in result.stderr
    assert SECRET_PASSWORD not in result.output
    assert len(receiver.received) == 1


@pytest.mark.parametrize("args", [["notify", "test"], ["notify", "test", "--target", "3"]])
def test_notify_test_without_targets_or_with_a_bad_number_exits_2(site, tmp_path, args):
    """No [[notify]] at all, or --target past the last one: a usage error, exit 2."""
    targets = [{"url": "json://127.0.0.1:9/hook"}] if "--target" in args else []
    config = notify_config(tmp_path, site, *targets)
    result = run(config, *args)
    assert result.exit_code == 2
    assert "Error:" in result.stderr and "[[notify]]" in result.stderr


# -- kill -9 during delivery, then check or run again ---------------------------------------


def check_subprocess(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "check"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=config.parent,
    )


def kill_during_delivery(config: Path, site, receiver: Receiver, nth: int) -> None:
    """Step 2's check in a subprocess, SIGKILLed while its nth message is at the receiver."""
    serve_step(site, 1)
    check(config)
    serve_step(site, 2)
    receiver.hang_on = nth
    proc = check_subprocess(config)
    try:
        receiver.wait_for(lambda: len(receiver.received) >= nth, f"message {nth}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
    receiver.release()


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_kill_9_during_delivery_loses_nothing_and_repeats_at_most_one(
    site, tmp_path, receiver, nth
):
    """Killed as its nth message arrives, the next check delivers the rest: one repeat at most."""
    config = notify_config(tmp_path, site, {"url": receiver.url})
    kill_during_delivery(config, site, receiver, nth)
    check(config)
    events = json_lines(run(config, "log", "--json"))
    got = Counter(receiver.ids())
    assert set(got) == set(urns(events)) and len(events) == 3
    assert sum(n - 1 for n in got.values()) <= 1
    assert [(s["pending"], s["sent"]) for s in notify_status(config)] == [(0, 3)]


def test_run_delivers_what_a_killed_check_left_between_cycles(site, tmp_path, receiver):
    """`monitor run` sends the deliveries a killed check left, before its first cycle is due."""
    config = notify_config(
        tmp_path, site, {"url": receiver.url},
        schedule={"interval": "1h", "jitter": "0s", "run_at_start": False},
    )  # fmt: skip
    kill_during_delivery(config, site, receiver, 2)
    python_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": python_path}
    env.pop("MONITOR_CONFIG", None)
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdout=log_file, stderr=log_file, cwd=tmp_path, env=env,
        )  # fmt: skip
        try:
            events = json_lines(run(config, "log", "--json"))
            want = set(urns(events))
            receiver.wait_for(lambda: set(receiver.ids()) == want, "every event at the target")
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=WAIT_S) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(timeout=WAIT_S)
    assert sum(n - 1 for n in Counter(receiver.ids()).values()) <= 1
    assert "notifications sent" in log_path.read_text(encoding="utf-8")
