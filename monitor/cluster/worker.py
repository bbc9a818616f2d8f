"""`monitor worker`: a Celery worker that runs check_group tasks until SIGTERM.

SIGTERM (and SIGINT) is Celery's warm shutdown: no new task is taken, the one
in flight runs to its end (at most task_timeout, then it is stopped and rolled
back), and the worker exits 0. Tasks run in a prefork pool, which is what lets
Celery enforce its time limits.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

import redis
from celery.signals import worker_ready

from monitor.cluster.app import create_app
from monitor.cluster.coordination import broker_error, connect
from monitor.cluster.settings import ClusterSetup
from monitor.cluster.tasks import configure, register_tasks
from monitor.logs import LineFormatter, configure_logging

log = logging.getLogger("monitor")


def run_worker(
    setup: ClusterSetup, *, concurrency: int = 1, log_level: str = "info", log_json: bool = False
) -> int:
    """Run a worker until SIGTERM/SIGINT; its exit status (0 after a warm shutdown)."""
    cluster = setup.require_cluster("monitor worker")
    _check_broker(cluster.broker)

    def ready(**kwargs: Any) -> None:
        fields = {"pid": os.getpid(), "concurrency": concurrency, "config": str(setup.config.path)}
        log.info("worker ready", extra={"fields": fields})

    restore_logging = configure_logging(log_level, log_json)
    celery_log = logging.getLogger("celery")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(as_json=log_json, journal=False))
    celery_log.addHandler(handler)  # Celery's own warnings and errors, in the same format
    celery_log.setLevel(logging.WARNING)
    try:
        app = create_app(cluster)
        register_tasks(app)
        configure(setup)  # before the pool forks, so every pool process has it

        worker_ready.connect(ready, weak=False)
        worker = app.Worker(
            hostname=f"monitor-{os.getpid()}@{socket.gethostname()}",
            concurrency=concurrency,
            pool="prefork",
            loglevel=log_level.upper(),
            quiet=True,
            redirect_stdouts=False,
            without_gossip=True,  # workers need not know each other: Redis coordinates
            without_mingle=True,
            without_heartbeat=True,
        )
        worker.start()
        code = worker.exitcode
        return int(code) if isinstance(code, int) else 0
    finally:
        worker_ready.disconnect(ready)
        celery_log.removeHandler(handler)
        restore_logging()


def _check_broker(broker: str) -> None:
    """Fail early, naming cluster.broker, when Redis does not answer."""
    client = connect(broker)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        raise broker_error(broker, error) from None
    finally:
        client.close()
