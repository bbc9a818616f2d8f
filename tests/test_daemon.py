"""`monitor run`: the real daemon in a subprocess, driven by signals, against local servers."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import feedparser
import pytest
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    SCENARIO,
    imls_pages,
    json_lines,
    run,
    write_config,
)
from servers import Delay, FaultServer, Respond
from werkzeug import Response

import monitor.daemon
from monitor.check import CycleCancelled, run_check
from monitor.config import ScheduleConfig, load_config
from monitor.daemon import Daemon
from monitor.errors import StoreError
from monitor.lock import data_dir_lock
from monitor.logs import LineFormatter
from monitor.schedule import build_trigger
from monitor.status import daemon_status
from monitor.store import SqliteStore as Store

ROOT = Path(__file__).parent.parent
EXPECTED = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
STEPS = EXPECTED["steps"]
FAST = {"interval": "1s", "jitter": "0s"}
TIMEOUT_S = 20.0  # a bound for each wait; a passing test waits a second or two


@dataclass
class DaemonProcess:
    """One `monitor run` subprocess; its stdout and stderr go to log_path."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """The complete lines logged so far."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text[: text.rfind("\n") + 1]

    def records(self) -> list[dict[str, str]]:
        """The logfmt lines as dicts (`msg="cycle done" check_id=3` -> {"msg": "cycle done", …})."""
        return [
            dict(part.split("=", 1) for part in shlex.split(line))
            for line in self.log().splitlines()
            if line.startswith("ts=")
        ]

    def logged(self, msg: str) -> list[dict[str, str]]:
        return [record for record in self.records() if record["msg"] == msg]

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
        """Poll until predicate() is truthy; fail with the log if the daemon dies or time is up."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) before {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = TIMEOUT_S) -> int:
        """Send `sig` and return the exit status (TimeoutExpired fails the test)."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Starts `python -m monitor run`; whatever still runs at teardown is killed and reaped."""
    started: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    python_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": python_path}
    env.pop("MONITOR_CONFIG", None)

    def start(config: Path, *options: str) -> DaemonProcess:
        log_path = tmp_path / f"daemon-{len(started)}.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 (closed at teardown)
        command = [sys.executable, "-m", "monitor", "--config", str(config), "run", *options]
        proc = subprocess.Popen(command, stdout=log_file, stderr=log_file, cwd=tmp_path, env=env)
        started.append((proc, log_file))
        return DaemonProcess(proc, log_path)

    yield start
    for proc, log_file in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT_S)
        log_file.close()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def serve_step(site, step: dict) -> None:
    site.serve_file(ACTIVE_PATH, SCENARIO / step["dir"] / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / step["dir"] / "archived.html")


def daemon_config(tmp_path: Path, pages: list[dict], **sections: dict) -> Path:
    """A config checking every second, scenario-basic's settings, data in tmp_path/data."""
    return write_config(tmp_path, pages, monitor=EXPECTED["config"], schedule=FAST, **sections)


def checks_done(config: Path) -> int:
    """The id of the last check recorded (0 before the first, or before the database exists)."""
    try:
        store = Store(config.parent / "data" / "monitor.db", create=False)
    except StoreError:
        return 0
    try:
        check = store.last_check()
    except StoreError:  # the daemon is creating the tables
        return 0
    finally:
        store.close()
    return check.id if check else 0


def events(config: Path) -> list[dict]:
    """`monitor log --json`, newest first; [] while there is no database."""
    result = run(config, "log", "--json")
    return json_lines(result) if result.exit_code == 0 else []


def kinds_and_titles(items: list[dict]) -> Counter:
    return Counter((item["kind"], item["title"]) for item in items)


def status(config: Path) -> dict:
    result = run(config, "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_daemon_records_changes_between_cycles_in_the_database_feed_and_log(
    site, tmp_path, start_daemon
):
    """Pages changing between two cycles give their events in monitor.db, the feed and the log."""
    config = daemon_config(tmp_path, imls_pages(site), feed={"path": "data/changes.atom"})
    serve_step(site, STEPS[0])
    daemon = start_daemon(config)
    daemon.wait_for(lambda: checks_done(config) >= 1, "baseline check")
    serve_step(site, STEPS[1])
    want = kinds_and_titles(STEPS[1]["events"])
    daemon.wait_for(lambda: kinds_and_titles(events(config)) == want, "step 2's events")

    ids = {event["id"] for event in events(config)}
    feed_path = tmp_path / "data" / "changes.atom"
    feed_ids = lambda: {entry.id for entry in feedparser.parse(feed_path).entries}  # noqa: E731
    daemon.wait_for(lambda: all(any(i in f for f in feed_ids()) for i in ids), "feed with them")
    done = daemon.wait_for(
        lambda: [c for c in daemon.logged("cycle done") if c["events"] == "3"], "cycle log line"
    )
    assert done[0]["failures"] == "0" and done[0]["pages"] == "2"
    assert kinds_and_titles(daemon.logged("event")) == want
    assert daemon.stop() == 0
    assert daemon.logged("daemon stopped")


def test_sigterm_during_a_slow_fetch_exits_0_promptly_and_records_nothing(
    tmp_path, fault_server, start_daemon
):
    """SIGTERM while a page is slow to answer cancels the cycle: exit 0, nothing half-recorded."""
    step = SCENARIO / "step1"
    fault_server.set(ACTIVE_PATH, Respond(200, (step / "active.html").read_bytes()))
    fault_server.set(ARCHIVED_PATH, Respond(200, (step / "archived.html").read_bytes()))
    pages = [
        {"name": "active", "url": fault_server.url(ACTIVE_PATH), "role": "active"},
        {"name": "archived", "url": fault_server.url(ARCHIVED_PATH), "role": "archived"},
    ]
    config = write_config(tmp_path, pages, monitor={"timeout": 60}, schedule=FAST)
    daemon = start_daemon(config)
    daemon.wait_for(lambda: checks_done(config) >= 1, "first check")

    body = (step / "active.html").read_bytes()
    fault_server.set(ACTIVE_PATH, Delay(60, Respond(200, body)))  # wakes at server teardown
    asked = fault_server.hits(ACTIVE_PATH)
    daemon.wait_for(lambda: fault_server.hits(ACTIVE_PATH) > asked, "request for the slow page")
    recorded = checks_done(config)
    # the page would answer in 60 s; the daemon must not wait for it
    assert daemon.stop(timeout=10) == 0, daemon.log()
    assert daemon.logged("cycle cancelled")
    assert checks_done(config) == recorded
    verified = run(config, "verify")
    assert verified.exit_code == 0, verified.output
    assert status(config)["daemon"]["running"] is False


def test_status_during_a_slow_cycle_says_it_is_checking_now(
    tmp_path, fault_server, start_daemon
):
    """While a cycle runs, `status` says the daemon is checking (since when), never a next
    check in the past; then the SIGTERMs of an impatient supervisor, repeated until the
    process is gone, still end it with 0."""
    step = SCENARIO / "step1"
    fault_server.set(ACTIVE_PATH, Delay(60, Respond(200, (step / "active.html").read_bytes())))
    fault_server.set(ARCHIVED_PATH, Respond(200, (step / "archived.html").read_bytes()))
    pages = [
        {"name": "active", "url": fault_server.url(ACTIVE_PATH), "role": "active"},
        {"name": "archived", "url": fault_server.url(ARCHIVED_PATH), "role": "archived"},
    ]
    config = write_config(tmp_path, pages, monitor={"timeout": 60},
                          schedule={"interval": "1h", "jitter": "0s"})  # fmt: skip
    daemon = start_daemon(config)
    daemon.wait_for(lambda: fault_server.hits(ACTIVE_PATH) > 0, "the slow page asked for")
    report = daemon.wait_for(lambda: status(config)["daemon"]["checking_since"] and
                             status(config), "daemon.json of the cycle")  # fmt: skip
    next_run = report["daemon"]["next_run_at"]
    assert next_run is None or next_run > report["daemon"]["checking_since"]
    assert "checking now (since " in run(config, "status").output
    deadline = time.monotonic() + TIMEOUT_S
    while daemon.proc.poll() is None and time.monotonic() < deadline:
        daemon.proc.send_signal(signal.SIGTERM)
        time.sleep(0.01)
    assert daemon.proc.wait(timeout=TIMEOUT_S) == 0, daemon.log()


def test_run_check_with_stop_set_mid_fetch_is_cancelled_and_records_nothing(
    tmp_path, fault_server
):
    """run_check(stop=…) set while a page is slow to answer: CycleCancelled, nothing recorded."""
    fault_server.set("/slow", Delay(60, Respond(200, b"<html><body></body></html>")))
    page = {"name": "slow", "url": fault_server.url("/slow"), "role": "active"}
    path = write_config(tmp_path, [page], monitor={"timeout": 60})
    stop = threading.Event()

    def stop_once_asked() -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while fault_server.hits("/slow") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    watcher = threading.Thread(target=stop_once_asked)
    watcher.start()
    try:
        with pytest.raises(CycleCancelled, match="nothing of this cycle was recorded"):
            run_check(load_config(path), stop=stop)
    finally:
        stop.set()
        watcher.join()
    assert fault_server.hits("/slow") == 1
    assert checks_done(path) == 0


def test_a_second_daemon_for_the_same_data_dir_refuses(site, tmp_path, start_daemon):
    """A second `monitor run` on a data directory in use exits 3 (busy) naming the running one."""
    config = daemon_config(tmp_path, imls_pages(site))
    serve_step(site, STEPS[0])
    first = start_daemon(config)
    first.wait_for(lambda: first.logged("daemon started"), "first daemon's start")
    second = start_daemon(config)
    assert second.proc.wait(timeout=TIMEOUT_S) == 3
    data_dir = tmp_path / "data"
    assert (
        f"Error: a monitor daemon is already running for {data_dir} (pid {first.pid}, since "
        in second.log()
    )
    assert "Traceback" not in second.log()
    assert first.proc.poll() is None
    assert first.stop() == 0


@pytest.mark.slow
def test_kill_9_during_cycles_then_restart_loses_and_repeats_no_event(
    site, tmp_path, start_daemon
):
    """SIGKILL mid-cycle, twice, then restarts: every event recorded stays, and none is repeated."""
    config = daemon_config(tmp_path, imls_pages(site), feed={"path": "data/changes.atom"})
    serve_step(site, STEPS[0])
    daemon = start_daemon(config)
    daemon.wait_for(lambda: checks_done(config) >= 1, "baseline check")
    serve_step(site, STEPS[1])
    daemon.wait_for(lambda: len(events(config)) >= 3, "step 2's events")
    asked = len(site.requests)
    daemon.wait_for(lambda: len(site.requests) > asked, "a cycle fetching")
    daemon.stop(signal.SIGKILL)
    before = [event["id"] for event in events(config)]

    daemon = start_daemon(config)
    serve_step(site, STEPS[2])
    daemon.wait_for(lambda: len(events(config)) > len(before), "step 3's events")
    daemon.stop(signal.SIGKILL)  # as soon as they are committed: mid-cycle, feed or state file
    middle = [event["id"] for event in events(config)]

    daemon = start_daemon(config)
    done = checks_done(config)
    daemon.wait_for(lambda: checks_done(config) >= done + 2, "two more cycles")
    assert daemon.stop() == 0

    after = events(config)
    ids = [event["id"] for event in after]
    assert len(ids) == len(set(ids))
    assert set(before) <= set(middle) <= set(ids)
    assert kinds_and_titles(after) == kinds_and_titles(STEPS[1]["events"] + STEPS[2]["events"])
    verified = run(config, "verify")
    assert verified.exit_code == 0, verified.output


@pytest.mark.slow
def test_a_page_failing_for_many_cycles_gives_one_error_then_one_recovery(
    site, tmp_path, start_daemon
):
    """A page down for several cycles: one page-error, one page-recovered; the daemon runs on."""
    config = daemon_config(tmp_path, imls_pages(site))
    serve_step(site, STEPS[0])
    daemon = start_daemon(config)
    daemon.wait_for(lambda: checks_done(config) >= 1, "baseline check")
    site.serve(ACTIVE_PATH, lambda request: Response("down for maintenance", status=503))
    daemon.wait_for(lambda: events(config), "page-error")
    failing = checks_done(config)
    daemon.wait_for(lambda: checks_done(config) >= failing + 3, "three more failing cycles")
    serve_step(site, STEPS[0])
    daemon.wait_for(lambda: len(events(config)) >= 2, "page-recovered")
    assert [(e["kind"], e["page"]) for e in reversed(events(config))] == [
        ("page-error", "active"),
        ("page-recovered", "active"),
    ]
    assert daemon.proc.poll() is None
    warnings = [r for r in daemon.records() if r["level"] == "warning" and r["msg"] == "event"]
    assert [w["kind"] for w in warnings] == ["page-error"]
    assert status(config)["pages"][0]["status"] == "ok"
    assert daemon.stop() == 0


def test_sighup_reloads_the_config_and_keeps_the_old_one_when_invalid(
    site, tmp_path, start_daemon
):
    """SIGHUP with a broken config logs the error and checks on; with a good one, adds its page."""
    active, archived = imls_pages(site)
    config = daemon_config(tmp_path, [active])
    serve_step(site, STEPS[0])
    daemon = start_daemon(config)
    daemon.wait_for(lambda: checks_done(config) >= 1, "first check")

    config.write_text("[monitor\n", encoding="utf-8")
    daemon.proc.send_signal(signal.SIGHUP)
    failed = daemon.wait_for(
        lambda: daemon.logged("reload failed; keeping the old config"), "reload error"
    )
    assert failed[0]["level"] == "error"
    assert str(config) in failed[0]["error"] and "invalid TOML" in failed[0]["error"]
    done = checks_done(config)
    daemon.wait_for(lambda: checks_done(config) > done, "a cycle after the failed reload")

    daemon_config(tmp_path, [active, archived])
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: daemon.logged("config reloaded"), "reload")
    checked = lambda: {p["name"]: p["status"] for p in status(config)["pages"]}  # noqa: E731
    daemon.wait_for(lambda: checked() == {"active": "ok", "archived": "ok"}, "the new page")

    sundays = {"cron": "0 0 * * 0", "jitter": "0s"}
    write_config(tmp_path, [active, archived], monitor=EXPECTED["config"], schedule=sundays)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: len(daemon.logged("config reloaded")) == 2, "second reload")
    next_run = datetime.fromisoformat(status(config)["daemon"]["next_run_at"])
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (6, 0, 0)  # Sunday 00:00 UTC
    assert daemon.stop() == 0


def test_status_shows_the_running_daemon_its_last_check_and_pages(site, tmp_path, start_daemon):
    """`monitor status` and --json show the daemon running, its next run, the last check, pages."""
    config = daemon_config(tmp_path, imls_pages(site))
    serve_step(site, STEPS[0])
    daemon = start_daemon(config, "--log-json")
    daemon.wait_for(lambda: status(config)["daemon"]["last_cycle"], "a cycle in daemon.json")

    report = status(config)
    assert report["daemon"]["running"] is True
    assert report["daemon"]["pid"] == daemon.pid
    # every second: the status may be read while a cycle runs (then checking_since says so)
    assert (report["daemon"]["next_run_at"] or report["daemon"]["checking_since"]).endswith("Z")
    assert report["daemon"]["schedule"] == "every 1s, jitter 0s"
    assert report["last_check"]["check_id"] >= 1
    assert report["last_check"]["pages"] == ["active", "archived"]
    assert [(p["name"], p["status"], p["entries"]) for p in report["pages"]] == [
        ("active", "ok", 4),
        ("archived", "ok", 4),
    ]
    text = run(config, "status").output
    assert f"daemon: running for {tmp_path / 'data'} (pid {daemon.pid}" in text
    assert "last check: #" in text and "active" in text and "archived" in text

    lines = [json.loads(line) for line in daemon.log().splitlines()]  # --log-json: all JSON
    assert any(line["msg"] == "cycle done" and line["check_id"] >= 1 for line in lines)
    assert daemon.stop() == 0
    stopped = status(config)
    assert stopped["daemon"]["running"] is False and stopped["daemon"]["pid"] is None
    assert "daemon: not running" in run(config, "status").output


def test_status_before_any_check_says_nothing_ran_yet(tmp_path):
    """`monitor status` on a fresh data directory: no daemon, no check, every page unchecked."""
    config = write_config(
        tmp_path, [{"name": "active", "url": "http://127.0.0.1:9/", "role": "active"}]
    )
    result = run(config, "status")
    assert result.exit_code == 0, result.output
    assert "daemon: not running" in result.output
    assert "last check: none yet" in result.output
    assert "unchecked" in result.output


def test_a_cycle_waits_for_a_running_check_then_skips_and_the_daemon_goes_on(
    site, tmp_path, start_daemon
):
    """While `monitor check` holds the data directory a cycle waits, then skips; later ones run."""
    config = daemon_config(tmp_path, imls_pages(site))
    serve_step(site, STEPS[0])
    with data_dir_lock(tmp_path / "data"):
        daemon = start_daemon(config)
        skipped = daemon.wait_for(
            lambda: daemon.logged("cycle skipped: the data directory stayed locked"), "skip"
        )
        assert skipped[0]["level"] == "warning"
        assert "a check cycle is already running" in skipped[0]["error"]
        assert checks_done(config) == 0
    daemon.wait_for(lambda: checks_done(config) >= 1, "a cycle once the lock is free")
    assert daemon.stop() == 0


def test_a_cycle_that_cannot_write_its_archive_is_logged_and_the_next_one_runs(
    site, tmp_path, start_daemon
):
    """A cycle failing on the disk (WARC directory unusable) is an error line; later cycles run."""
    config = daemon_config(tmp_path, imls_pages(site))
    serve_step(site, STEPS[0])
    blocker = tmp_path / "data" / "warc"
    blocker.parent.mkdir()
    blocker.write_text("not a directory", encoding="utf-8")
    daemon = start_daemon(config)
    failed = daemon.wait_for(lambda: daemon.logged("cycle failed"), "a failed cycle")
    assert failed[0]["level"] == "error"
    assert str(blocker) in failed[0]["error"] and "traceback" not in failed[0]
    assert checks_done(config) == 0
    blocker.unlink()
    daemon.wait_for(lambda: checks_done(config) >= 1, "a cycle once the directory is usable")
    assert daemon.stop() == 0


def test_an_unexpected_error_in_a_cycle_is_logged_with_its_traceback_and_not_raised(
    tmp_path, monkeypatch, caplog
):
    """A bug in one cycle is logged with its traceback (on one line) and the job returns."""
    page = {"name": "active", "url": "http://127.0.0.1:9/", "role": "active"}
    config = load_config(write_config(tmp_path, [page]))
    config.monitor.data_dir.mkdir()  # run_daemon's lock would have made it

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(monitor.daemon, "run_check", broken)
    with caplog.at_level(logging.ERROR, logger="monitor"):
        Daemon(config, None)._job()
    record = caplog.records[-1]
    assert record.exc_info is not None
    line = LineFormatter(as_json=False, journal=False).format(record)
    assert "\n" not in line
    assert 'error="RuntimeError: boom"' in line and 'traceback="Traceback' in line
    cycle = daemon_status(config)["daemon"]["last_cycle"]
    assert cycle == {"outcome": "failed", "error": "RuntimeError: boom"}


@pytest.mark.parametrize(
    ("cron", "first"),
    [
        ("0 0 * * 0", datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),
        ("0 0 * * 7", datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),
        ("30 9 * * 1-5", datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),
        ("0 6 * * 6", datetime(2026, 11, 28, 6, 0, tzinfo=UTC)),
    ],
    ids=["sunday-as-0", "sunday-as-7", "weekdays", "saturday"],
)
def test_cron_schedule_fires_on_the_crontab_day_in_utc(cron, first):
    """The trigger built from [schedule].cron keeps crontab's days (0 and 7 are Sunday), in UTC."""
    trigger = build_trigger(ScheduleConfig(interval_s=None, cron=cron, jitter_s=0))
    wednesday = datetime(2026, 11, 25, 16, 40, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, wednesday)
    assert fire == first
    assert fire.utcoffset() == timedelta(0)


def test_cron_schedule_jitter_delays_by_at_most_the_jitter():
    """With jitter = "5m", "0 0 * * 0" fires within five minutes after Sunday midnight UTC."""
    trigger = build_trigger(ScheduleConfig(interval_s=None, cron="0 0 * * 0", jitter_s=300))
    sunday = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    for _ in range(20):
        fire = trigger.get_next_fire_time(None, datetime(2026, 11, 25, tzinfo=UTC))
        assert sunday <= fire <= sunday + timedelta(minutes=5)
