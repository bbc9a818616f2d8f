"""The task a worker runs: one check cycle for the pages of one group.

The worker's own config (`monitor worker --config`, or $MONITOR_CONFIG) says
which pages a group holds: the task carries only the group's name, so every
machine reads its own copy of config.toml and its own data_dir.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from monitor.check import CycleCancelled, run_check
from monitor.cluster.app import CHECK_GROUP_TASK, HARD_LIMIT_GRACE_S
from monitor.cluster.coordination import clear_pending, connect, refresh_pending
from monitor.cluster.settings import ClusterSetup, load_setup
from monitor.errors import LockedError, MonitorError

log = logging.getLogger("monitor")

_setup: ClusterSetup | None = None  # set by the worker before its pool starts (and forks)


def configure(setup: ClusterSetup) -> None:
    """The config this process's tasks use (`monitor worker` calls it before starting)."""
    global _setup
    _setup = setup


def current_setup() -> ClusterSetup:
    """The configured setup, else the config named by $MONITOR_CONFIG (or ./config.toml)."""
    global _setup
    if _setup is None:
        _setup = load_setup(Path(os.environ.get("MONITOR_CONFIG", "config.toml")))
    return _setup


def register_tasks(app: Celery) -> None:
    """Register check_group on `app` under CHECK_GROUP_TASK."""
    app.task(name=CHECK_GROUP_TASK, bind=True)(_check_group_task)


def _check_group_task(task: Task, group: str) -> dict[str, Any]:
    return check_group(group, task_id=task.request.id)


def check_group(group: str, *, task_id: str | None = None) -> dict[str, Any]:
    """Run one cycle of `group`'s pages; what happened, as logged. Clears the group's mark."""
    setup = current_setup()
    cluster = setup.require_cluster("monitor worker")
    client = connect(cluster.broker)
    try:
        if task_id:
            refresh_pending(client, group, task_id, cluster.task_timeout_s + HARD_LIMIT_GRACE_S)
        return _run_group(setup, group, cluster.task_timeout_s)
    finally:
        if task_id:
            clear_pending(client, group, task_id)
        client.close()


def _run_group(setup: ClusterSetup, group: str, timeout_s: float) -> dict[str, Any]:
    pages = setup.groups.get(group)
    if not pages:
        _log(logging.WARNING, "unknown group: not in this worker's config", group=group)
        return {"group": group, "outcome": "unknown-group"}
    # Past task_timeout the fetches are cancelled and nothing is recorded; Celery's own
    # soft and hard time limits are the backstop should a cycle not get that far.
    stop = threading.Event()
    timer = threading.Timer(timeout_s, stop.set)
    timer.daemon = True
    timer.start()
    _log(logging.INFO, "group check started", group=group, pages=len(pages))
    try:
        report = run_check(
            setup.config, page_names=pages, stop=stop, purpose=f"monitor worker (group {group})"
        )
    except LockedError as error:
        _log(logging.INFO, "group locked: another cycle runs it; skipped", group=group,
             error=str(error))  # fmt: skip
        return {"group": group, "outcome": "locked"}
    except CycleCancelled as error:
        _log(logging.WARNING, "group check cancelled", group=group, error=str(error))
        return {"group": group, "outcome": "cancelled"}
    except SoftTimeLimitExceeded:  # the backstop: a cycle the cancel did not stop in time
        _log(logging.WARNING, "group check stopped at task_timeout: rolled back, nothing "
             "of this cycle was recorded", group=group)  # fmt: skip
        return {"group": group, "outcome": "cancelled"}
    except MonitorError as error:
        _log(logging.ERROR, "group check failed", group=group, error=str(error))
        return {"group": group, "outcome": "failed", "error": str(error)}
    finally:
        timer.cancel()
    for event in report.events:
        _log(logging.INFO, "event", group=group, kind=event.kind, page=event.page,
             entry_id=event.entry_id, event_id=event.id)  # fmt: skip
    summary = {
        "group": group,
        "outcome": "done",
        "check_id": report.check_id,
        "pages": len(report.pages),
        "events": len(report.events),
        "failed_pages": ",".join(report.failed_pages) or None,
    }
    _log(logging.INFO, "group check done", **summary)
    return summary


def _log(level: int, msg: str, **fields: Any) -> None:
    log.log(level, msg, extra={"fields": fields})
