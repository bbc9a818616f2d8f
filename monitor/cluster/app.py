"""The Celery app of a [cluster]: Redis broker, late acks, one task at a time per process.

A worker killed mid-task never acknowledged its message, so Redis hands it to
another worker once the visibility timeout has passed since delivery. That
timeout is task_timeout + VISIBILITY_MARGIN_S, and every worker sweeps for
such messages every RESTORE_INTERVAL_S: together, the task runs again within
task_timeout plus one minute. The hard time limit (task_timeout +
HARD_LIMIT_GRACE_S) stays under the visibility timeout, so a task still
running is never handed out twice.
"""

from __future__ import annotations

from celery import Celery

from monitor.cluster.settings import ClusterConfig

QUEUE = "monitor"
CHECK_GROUP_TASK = "monitor.check_group"
VISIBILITY_MARGIN_S = 50.0
RESTORE_INTERVAL_S = 10.0  # visibility margin + one sweep interval = one minute
SOFT_LIMIT_GRACE_S = 5.0  # the task's own cancel at task_timeout comes first, cleanly
HARD_LIMIT_GRACE_S = 10.0  # after task_timeout, time to roll the cycle back


def visibility_timeout_s(cluster: ClusterConfig) -> float:
    """How long an unacknowledged task waits before Redis hands it to another worker."""
    return cluster.task_timeout_s + VISIBILITY_MARGIN_S


def create_app(cluster: ClusterConfig) -> Celery:
    """The Celery app for `cluster` (tasks registered by monitor.cluster.tasks)."""
    app = Celery("monitor", broker=cluster.broker, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,  # outcomes go to the store and the log, not a result backend
        task_acks_late=True,  # acknowledged once done: a killed worker's task runs again
        task_reject_on_worker_lost=True,  # a pool process that died: requeue, not fail
        worker_prefetch_multiplier=1,  # reserve no task another idle worker could take
        task_soft_time_limit=cluster.task_timeout_s + SOFT_LIMIT_GRACE_S,
        task_time_limit=cluster.task_timeout_s + HARD_LIMIT_GRACE_S,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s(cluster),
            "unacked_restore_interval": RESTORE_INTERVAL_S,
            "unacked_restore_throttle": 1,  # sweep on every interval, not every tenth
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,  # monitor's own log lines (daemon.configure_logging)
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app
