"""`monitor run` with [cluster]: enqueue one check_group task per group on the [schedule].

The schedule is the daemon's (monitor.daemon.build_trigger: interval or cron,
jitter, run_at_start). A group whose previous task is still queued or running
is not enqueued again (see coordination.py for how that is tracked), and one
producer runs at a time (a Redis lock, renewed). SIGINT/SIGTERM: stop, exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import uuid
from datetime import UTC, timedelta
from typing import Any

import redis
from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from celery import Celery
from kombu.exceptions import KombuError

from monitor.cluster.app import CHECK_GROUP_TASK, QUEUE, create_app, visibility_timeout_s
from monitor.cluster.coordination import (
    PRODUCER_RENEW_S,
    ProducerLock,
    announce_next_run,
    broker_error,
    clear_pending,
    connect,
    mark_pending,
    pending_task,
    refresh_pending,
    remember_enqueued,
    still_queued,
)
from monitor.cluster.settings import ClusterConfig, ClusterSetup
from monitor.logs import configure_logging
from monitor.models import format_time, utc_now
from monitor.schedule import build_trigger, describe_schedule

log = logging.getLogger("monitor")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Producer:
    """The scheduler, its two jobs (enqueue, renew the lock) and the signal thread."""

    def __init__(self, setup: ClusterSetup, cluster: ClusterConfig, app: Celery) -> None:
        self.setup = setup
        self.cluster = cluster
        self.app = app
        self.client = connect(cluster.broker)
        self.lock = ProducerLock(self.client)
        self.exit_code = 0
        self._signals: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.scheduler = BlockingScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=2)}
        )
        self.scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)

    def run(self) -> int:
        """Hold the producer lock and enqueue on the schedule until a signal; the exit status."""
        try:
            self.lock.acquire()
        except (redis.RedisError, OSError) as error:
            raise broker_error(self.cluster.broker, error) from None
        schedule = self.setup.config.schedule
        first = {"next_run_time": utc_now()} if schedule.run_at_start else {}
        self.scheduler.add_job(self.enqueue_due, build_trigger(schedule), id="enqueue",
                               max_instances=1, coalesce=True, misfire_grace_time=None,
                               **first)  # fmt: skip
        # The first renewal a second in: it also tells `monitor status` the next enqueue.
        self.scheduler.add_job(self._renew, IntervalTrigger(seconds=PRODUCER_RENEW_S),
                               id="renew-lock", max_instances=1, coalesce=True,
                               next_run_time=utc_now() + timedelta(seconds=1))  # fmt: skip
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        watcher = threading.Thread(target=self._serve_signals, name="monitor-signals")
        watcher.start()
        _log(logging.INFO, "producer started", pid=os.getpid(), groups=len(self.setup.groups),
             schedule=describe_schedule(schedule))  # fmt: skip
        try:
            self.scheduler.start()  # returns once a stop shut the scheduler down
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._signals.put(None)
            watcher.join()
            self._release()
        _log(logging.INFO, "producer stopped", pid=os.getpid())
        return self.exit_code

    def enqueue_due(self) -> list[str]:
        """One tick: enqueue every group not already pending; the groups enqueued."""
        enqueued = []
        ttl_s = visibility_timeout_s(self.cluster)
        for group in self.setup.groups:
            task_id = uuid.uuid4().hex
            try:
                waiting = None
                if not mark_pending(self.client, group, task_id, ttl_s):
                    waiting = pending_task(self.client, group)
                elif (waiting := still_queued(self.client, group, QUEUE)) is not None:
                    # its mark expired while it waited (no worker for a while): mark it again
                    refresh_pending(self.client, group, waiting, ttl_s)
                if waiting is not None:
                    _log(logging.INFO, "group still queued or running; not enqueued",
                         group=group, task_id=waiting)  # fmt: skip
                    continue
                try:
                    self.app.send_task(CHECK_GROUP_TASK, args=[group], task_id=task_id)
                    remember_enqueued(self.client, group, task_id)
                except (KombuError, redis.RedisError, OSError):
                    clear_pending(self.client, group, task_id)
                    raise
            except (KombuError, redis.RedisError, OSError) as error:
                _log(logging.ERROR, "enqueue failed; next tick tries again", group=group,
                     error=str(broker_error(self.cluster.broker, error)))  # fmt: skip
                continue
            enqueued.append(group)
            _log(logging.INFO, "group enqueued", group=group, task_id=task_id)
        self._announce_next()  # the tick just fired: status shows the next one, not this one
        return enqueued

    def _announce_next(self) -> None:
        """Tell `monitor status` (through Redis) when the next tick is due."""
        job = self.scheduler.get_job("enqueue")
        when = getattr(job, "next_run_time", None)
        if when is None:
            return
        try:
            announce_next_run(self.client, format_time(when))
        except (redis.RedisError, OSError):
            pass  # the next renewal says it again

    def _renew(self) -> None:
        try:
            kept = self.lock.renew()
            job = self.scheduler.get_job("enqueue")
            when = getattr(job, "next_run_time", None)
            announce_next_run(self.client, format_time(when) if kept and when else None)
        except (redis.RedisError, OSError) as error:
            _log(logging.WARNING, "producer lock not renewed; retrying", error=str(error))
            return
        if not kept:
            _log(logging.ERROR, "producer lock lost to another producer; stopping")
            self.exit_code = 1
            self._signals.put(signal.SIGTERM)

    def _release(self) -> None:
        try:
            announce_next_run(self.client, None)
            self.lock.release()
        except (redis.RedisError, OSError) as error:
            _log(logging.WARNING, "producer lock not released; it expires", error=str(error))
        self.client.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.put(signum)  # only this in a handler: see monitor/daemon.py

    def _on_started(self, event: SchedulerEvent) -> None:
        if self.stopping.is_set():  # a signal came before the scheduler was running
            self._shutdown()

    def _serve_signals(self) -> None:
        while (signum := self._signals.get()) is not None:
            _log(logging.INFO, "stopping", signal=signal.Signals(signum).name)
            self.stopping.set()
            self._shutdown()

    def _shutdown(self) -> None:
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.remove_all_jobs()
            self.scheduler.shutdown(wait=True)  # a tick in flight takes milliseconds


def run_producer(setup: ClusterSetup, *, log_level: str = "info", log_json: bool = False) -> int:
    """Run the producer until SIGINT/SIGTERM; 0 once stopped. LockedError if one runs."""
    cluster = setup.require_cluster("monitor run")
    restore_logging = configure_logging(log_level, log_json)
    try:
        return Producer(setup, cluster, create_app(cluster)).run()
    finally:
        restore_logging()


def _log(level: int, msg: str, **fields: Any) -> None:
    log.log(level, msg, extra={"fields": fields})
