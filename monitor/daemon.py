"""The daemon (`monitor run`): check cycles on the [schedule] until a signal stops it.

Wired as APScheduler 3.x's examples wire it: a BlockingScheduler in the main
thread, one job per kind of work (listing cycles; with [pages.detail], the entry
pages that are due, looked for every few minutes), each max_instances=1 and
coalesce=True, run in a one-worker thread pool, so that they never overlap.
Signal handlers only queue the signal number (a
SimpleQueue's put is safe there); a small thread takes it from the queue and
does the work (stop, reload), because the locks inside APScheduler, threading
and logging must never be taken from a signal handler.

One daemon per data directory: it holds an flock on DATA_DIR/daemon.lock for
its whole life (the kernel drops it however the process dies), apart from the
per-cycle lock that `monitor check` shares. DATA_DIR/daemon.json tells
`monitor status` what the daemon is doing.

Notifications are sent by each cycle after its commit, and between cycles by a second
job every minute, in the same one-worker pool (so never while a cycle writes) and under
the cycle lock taken without waiting (so never while a `monitor check` delivers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.check import CheckReport, run_check
from monitor.config import Config, load_config
from monitor.detail import DetailReport, detail_pages, run_detail
from monitor.durable import write_atomically
from monitor.errors import CycleCancelled, LockedError, MonitorError, StoreError
from monitor.lock import acquire_daemon_lock
from monitor.logs import configure_logging
from monitor.models import Event, format_time, utc_now
from monitor.notify.deliver import deliver_between_cycles
from monitor.notify.outbox import DeliveryReport
from monitor.paths import DataDir
from monitor.schedule import build_trigger, describe_schedule

log = logging.getLogger("monitor")

JOB_ID = "check"
DETAIL_JOB_ID = "entry-pages"
DETAIL_POLL_S = 300.0  # how often the entry-page job looks for due pages (or `every`, if shorter)
NOTIFY_JOB_ID = "notify"
NOTIFY_EVERY_S = 60.0  # the first retry waits a minute: nothing is due sooner
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_GRACE_S = 20.0  # how long a stop waits for the cycle in flight (systemd allows 30 s)
LOCK_WAIT_MAX_S = 60.0  # a cycle waits at most this long (or one interval) for `monitor check`
LOCK_POLL_S = 0.5
PROBLEM_EVENTS = ("page-error", "page-gone", "page-anomaly", "link-gone")

def _log(level: int, msg: str, **fields: Any) -> None:
    log.log(level, msg, extra={"fields": fields})


def _log_event(event: Event) -> None:
    """One line per event: page trouble at warning, everything else at info."""
    level = logging.WARNING if event.kind in PROBLEM_EVENTS else logging.INFO
    fields: dict[str, Any] = {"kind": event.kind, "page": event.page}
    if event.is_page_event:
        fields["detail"] = event.detail
    elif event.is_link_event:
        fields["entry_id"] = event.entry_id
        fields["title"] = event.title
        fields["detail"] = event.detail
    else:
        fields["entry_id"] = event.entry_id
        fields["title"] = event.title or (event.description or "")[:70]
        fields["changed"] = ",".join(event.changes) if event.changes else None
    fields["event_id"] = event.id
    _log(level, "event", **fields)


def _log_notify(report: DeliveryReport | None) -> None:
    """A line per failed delivery (redacted) at warning, and what was sent at info."""
    if report is None:
        return
    for error in report.errors:
        _log(logging.WARNING, "notification not delivered", error=error)
    if report.sent or report.left:
        _log(logging.INFO, "notifications sent", sent=report.sent, left=report.left or None)


# --- the daemon ---------------------------------------------------------------------------------


class Daemon:
    """One `monitor run`: the scheduler and its job, the signal thread, daemon.json."""

    def __init__(self, config: Config, data_dir_override: Path | None) -> None:
        self.config = config  # replaced whole by a reload; a cycle reads it once
        self.data_dir = config.monitor.data_dir
        self.override = data_dir_override
        self.started_at = utc_now()
        self.stop = threading.Event()
        self.idle = threading.Event()  # clear while a cycle runs
        self.idle.set()
        self.last_cycle: dict[str, Any] | None = None
        self.cycle_since: datetime | None = None  # while a cycle runs: when it began
        self._signals: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._state_lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self.scheduler = BlockingScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=1)}
        )
        self.scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)

    def run(self) -> int:
        """Schedule the job and block until a signal stops the daemon; the exit status."""
        schedule = self.config.schedule
        first = {"next_run_time": utc_now()} if schedule.run_at_start else {}
        self.scheduler.add_job(
            self._job,
            build_trigger(schedule),
            id=JOB_ID,
            name="check cycle",
            max_instances=1,  # a slow cycle delays the next one, never overlaps it
            coalesce=True,  # runs missed while asleep or busy become one run
            misfire_grace_time=None,  # however late (a suspended laptop), still run, once
            **first,
        )
        self._schedule_entry_pages(self.config)
        self.scheduler.add_job(
            self._notify_job,
            IntervalTrigger(seconds=NOTIFY_EVERY_S, timezone=UTC),
            id=NOTIFY_JOB_ID,
            name="deliver notifications",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=utc_now(),  # what a killed check left is sent at start
        )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in HANDLED_SIGNALS}
        watcher = threading.Thread(target=self._serve_signals, name="monitor-signals")
        watcher.start()
        try:
            self.scheduler.start()  # returns once a stop has shut the scheduler down
            return self._finish()
        finally:
            for sig, handler in previous.items():
                # Stopped: the process is on its way out with 0, and a supervisor's repeated
                # SIGTERM (or a second Ctrl-C) must not turn that into a kill (143 or 130).
                stopping = sig != signal.SIGHUP and self.stop.is_set()
                signal.signal(sig, signal.SIG_IGN if stopping else handler)
            self._signals.put(None)
            watcher.join()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.put(signum)  # nothing else here: see the module docstring

    def _serve_signals(self) -> None:
        """The signal thread: act on each queued signal until run() puts None."""
        while (signum := self._signals.get()) is not None:
            name = signal.Signals(signum).name
            try:
                if signum == signal.SIGHUP:
                    self.reload()
                else:
                    self.request_stop(name)
            except Exception:  # a bug here must not leave the daemon deaf to signals
                log.exception("handling %s failed", name)

    def _on_started(self, event: SchedulerEvent) -> None:
        if self.stop.is_set():  # stopped before the scheduler was running
            self._shutdown_scheduler()
            return
        self._write_state(running=True)
        _log(logging.INFO, "daemon started", pid=os.getpid(), **self._describe(self.config))

    def request_stop(self, reason: str) -> None:
        """Stop scheduling and cancel the fetch phase of the cycle in flight (if any)."""
        if self.stop.is_set():
            _log(logging.INFO, "already stopping", signal=reason)
            return
        self.stop.set()
        _log(logging.INFO, "stopping", signal=reason, cycle_in_flight=not self.idle.is_set())
        self._shutdown_scheduler()

    def _shutdown_scheduler(self) -> None:
        with self._stop_lock, contextlib.suppress(SchedulerNotRunningError):
            # no job left, so nothing is submitted to the pool as it shuts down
            self.scheduler.remove_all_jobs()
            self.scheduler.shutdown(wait=False)  # the cycle in flight sees `stop`

    def reload(self) -> None:
        """Re-read config.toml; keep the old config if the new one is invalid."""
        old = self.config
        if self.stop.is_set():
            return
        try:
            new = load_config(old.path, data_dir=self.override)
        except MonitorError as error:
            _log(logging.ERROR, "reload failed; keeping the old config", error=str(error))
            return
        if new.monitor.data_dir != old.monitor.data_dir:
            _log(
                logging.ERROR,
                "reload refused: data_dir changed; restart the daemon to use the new one",
                config=str(new.path),
                data_dir=str(old.monitor.data_dir),
                new_data_dir=str(new.monitor.data_dir),
            )
            return
        self.config = new
        if detail_poll_s(new) != detail_poll_s(old):
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(DETAIL_JOB_ID)
            self._schedule_entry_pages(new)
        if new.schedule != old.schedule:
            with contextlib.suppress(JobLookupError):  # stopping meanwhile: no job left
                self.scheduler.reschedule_job(JOB_ID, trigger=build_trigger(new.schedule))
        self._write_state(running=True)
        _log(logging.INFO, "config reloaded", **self._describe(new))

    def _describe(self, config: Config) -> dict[str, Any]:
        return {
            "config": str(config.path),
            "data_dir": str(self.data_dir),
            "schedule": describe_schedule(config.schedule),
            "pages": len(config.pages),
            "next_run_at": self._next_run_at(),
        }

    def _schedule_entry_pages(self, config: Config) -> None:
        """The second job: every few minutes, the entry pages that are due ([pages.detail])."""
        poll_s = detail_poll_s(config)
        if poll_s is None:
            return
        self.scheduler.add_job(
            self._detail_job,
            IntervalTrigger(seconds=poll_s, timezone=UTC),
            id=DETAIL_JOB_ID,
            name="entry pages",
            max_instances=1,  # and the one-worker pool: never beside a listing cycle
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=utc_now(),
        )

    def _detail_job(self) -> None:
        """The scheduled entry-page job. Never raises, so no failure can stop the daemon."""
        self.idle.clear()
        try:
            if not self.stop.is_set():
                self._entry_pages(self.config)
        except Exception:  # a bug here must not stop the next jobs
            log.exception("entry pages failed unexpectedly; the daemon goes on")
        finally:
            self.idle.set()

    def _entry_pages(self, config: Config) -> None:
        deadline = time.monotonic() + LOCK_WAIT_MAX_S
        while True:
            try:
                report = run_detail(config, stop=self.stop)
                break
            except CycleCancelled as error:
                _log(logging.INFO, "entry pages cancelled", reason=str(error))
                return
            except LockedError as error:  # a long `monitor check`: the pages stay due
                if time.monotonic() >= deadline:
                    _log(logging.WARNING, "entry pages skipped: the data directory stayed locked",
                         error=str(error))  # fmt: skip
                    return
            except MonitorError as error:
                _log(logging.ERROR, "entry pages failed", error=str(error))
                return
            if self.stop.wait(LOCK_POLL_S):
                return
        _report_entry_pages(report)

    def _job(self) -> None:
        """The scheduled job: one cycle. Never raises, so no cycle can stop the daemon."""
        self.idle.clear()
        try:
            if self.stop.is_set():
                return
            self.cycle_since = utc_now()
            self._write_state(running=True)  # `status`: checking now, not "next check" past
            try:
                self._cycle(self.config)
            except Exception as error:  # a bug in one cycle must not stop the next ones
                log.exception("cycle failed unexpectedly; the daemon goes on")
                self.last_cycle = {"outcome": "failed", "error": f"{type(error).__name__}: {error}"}
            self.cycle_since = None
            self._write_state(running=True)  # before idle: a stop's "stopped" state comes last
        finally:
            self.idle.set()

    def _notify_job(self) -> None:
        """The job between cycles: send what is due. Never raises."""
        self.idle.clear()
        try:
            if not self.stop.is_set():
                _log_notify(deliver_between_cycles(self.config, stop=self.stop))
        except Exception:  # a bug in delivery must not stop the daemon
            log.exception("delivering notifications failed unexpectedly; the daemon goes on")
        finally:
            self.idle.set()

    def _cycle(self, config: Config) -> None:
        started_at = utc_now()
        started = time.monotonic()
        outcome: dict[str, Any] = {"started_at": format_time(started_at)}
        try:
            report = self._check_waiting_for_lock(config)
        except CycleCancelled as error:
            _log(logging.INFO, "cycle cancelled", reason=str(error))
            self.last_cycle = {**outcome, "outcome": "cancelled", "error": str(error)}
            return
        except MonitorError as error:  # the database or archive failed: say so, try next time
            _log(logging.ERROR, "cycle failed", error=str(error))
            self.last_cycle = {**outcome, "outcome": "failed", "error": str(error)}
            return
        if report is None:
            self.last_cycle = {**outcome, "outcome": "skipped", "error": "data directory locked"}
            return
        self._report(report, outcome, time.monotonic() - started)

    def _report(self, report: CheckReport, outcome: dict[str, Any], duration_s: float) -> None:
        for event in report.events:
            _log_event(event)
        if report.feed_error:
            _log(logging.ERROR, "feed not written", error=report.feed_error)
        _log_notify(report.notify)
        summary = {
            "check_id": report.check_id,
            "pages": len(report.pages),
            "events": len(report.events),
            "failures": len(report.failed_pages),
            "duration_s": round(duration_s, 2),
        }
        failed = ",".join(report.failed_pages) or None
        next_run_at = self._next_run_at()
        _log(logging.INFO, "cycle done", **summary, failed_pages=failed, next_run_at=next_run_at)
        self.last_cycle = {**outcome, **summary, "outcome": "done"}

    def _check_waiting_for_lock(self, config: Config) -> CheckReport | None:
        """One run_check; while `monitor check` holds the lock, wait (bounded), then skip."""
        wait_s = min(config.schedule.interval_s or LOCK_WAIT_MAX_S, LOCK_WAIT_MAX_S)
        deadline = time.monotonic() + wait_s
        waiting = False
        while True:
            try:
                return run_check(
                    config, stop=self.stop, purpose="monitor run (daemon cycle)", entry_pages=False
                )
            except LockedError as error:
                if time.monotonic() >= deadline:
                    skipped = "cycle skipped: the data directory stayed locked"
                    _log(logging.WARNING, skipped, waited_s=round(wait_s, 1), error=str(error))
                    return None
                if not waiting:
                    _log(logging.INFO, "waiting for the lock", error=str(error))
                    waiting = True
            if self.stop.wait(LOCK_POLL_S):
                raise CycleCancelled("stopped while waiting for the data directory's lock")

    def _finish(self) -> int:
        """After the scheduler stopped: wait (bounded) for the cycle in flight, record the stop."""
        if not self.idle.wait(STOP_GRACE_S):
            # the database keeps whole cycles only, so leaving one unfinished loses nothing
            late = "the cycle in flight did not stop in time; exiting without it"
            _log(logging.ERROR, late, waited_s=STOP_GRACE_S)
            self._write_state(running=False)
            for handler in log.handlers:
                handler.flush()
            os._exit(1)  # the pool's worker thread would otherwise keep the process alive
        self._write_state(running=False)
        _log(logging.INFO, "daemon stopped", pid=os.getpid())
        return 0

    def _next_run_at(self) -> str | None:
        """The next cycle's time; None while the scheduler has not moved past the one running
        (APScheduler sets the next time once it has handed the job to its thread)."""
        job = self.scheduler.get_job(JOB_ID)
        when = getattr(job, "next_run_time", None)
        if when is None or (self.cycle_since is not None and when <= self.cycle_since):
            return None
        return format_time(when)

    def _write_state(self, *, running: bool) -> None:
        """Rewrite DATA_DIR/daemon.json for `monitor status`; a failure is logged, not raised."""
        config = self.config
        with self._state_lock:
            state = {
                "pid": os.getpid(),
                "state": "running" if running else "stopped",
                "started_at": format_time(self.started_at),
                "stopped_at": None if running else format_time(utc_now()),
                "config": str(config.path),
                "data_dir": str(self.data_dir),
                "schedule": describe_schedule(config.schedule),
                "next_run_at": self._next_run_at() if running else None,
                "checking_since": format_time(self.cycle_since) if self.cycle_since else None,
                "last_cycle": self.last_cycle,
            }
            data = (json.dumps(state, indent=2) + "\n").encode()
            try:
                write_atomically(DataDir(self.data_dir).daemon_state, data)
            except StoreError as error:
                _log(logging.WARNING, "daemon state not written", error=str(error))


def detail_poll_s(config: Config) -> float | None:
    """How often the entry-page job runs: DETAIL_POLL_S, or the shortest `every` (None: off)."""
    pages = detail_pages(config)
    if not pages:
        return None
    return max(1.0, min([DETAIL_POLL_S] + [p.detail.every_s for p in pages if p.detail]))


def _report_entry_pages(report: DetailReport) -> None:
    if report.check_id is None:
        return  # nothing was due: no line every few minutes
    for event in report.events:
        _log_event(event)
    _log_notify(report.notify)
    _log(logging.INFO, "entry pages done", check_id=report.check_id, checked=report.checked,
         gone=report.gone, errors=report.errors, events=len(report.events))  # fmt: skip


def run_daemon(
    config: Config,
    *,
    data_dir_override: Path | str | None = None,
    log_level: str = "info",
    log_json: bool = False,
) -> int:
    """Run the daemon until SIGINT/SIGTERM; 0 once stopped cleanly. LockedError if one runs."""
    override = Path(data_dir_override).absolute() if data_dir_override else None
    restore_logging = configure_logging(log_level, log_json)
    try:
        lock = acquire_daemon_lock(config.monitor.data_dir)
        try:
            return Daemon(config, override).run()
        finally:
            lock.close()  # closing the file releases the flock
    finally:
        restore_logging()
