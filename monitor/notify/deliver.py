"""Delivering a config's outbox: after each cycle's commit, and by `run` between cycles.

Every delivery runs under the data directory's cycle lock (the cycle's own, or taken
here without waiting), so two processes never send the same due message at once.
A failed delivery is a report, never an exception: it changes no exit status.
"""

from __future__ import annotations

import threading
from datetime import datetime

from monitor.config import Config
from monitor.errors import LockedError, MonitorError
from monitor.lock import data_dir_lock
from monitor.models import utc_now
from monitor.notify.outbox import DeliveryReport, Outbox, deliver_due
from monitor.notify.policy import retry_cap_s
from monitor.store import open_store

# Read at call time (tests shorten them): a slow target never holds the next check long.
BUDGET_S = 20.0  # a cycle's delivery round, all targets together
SEND_TIMEOUT_S = 10.0  # one message to one target


def deliver_outbox(
    config: Config,
    outbox: Outbox,
    *,
    now: datetime,
    stop: threading.Event | None = None,
    budget_s: float | None = None,
) -> DeliveryReport | None:
    """Send what is due to config.notify's targets within the budget; None without targets.

    The caller holds the data directory's cycle lock. A store error ends the round and
    comes back as a report line: what was not marked stays due.
    """
    if not config.notify:
        return None
    try:
        return deliver_due(
            outbox,
            config.notify,
            now=now,
            budget_s=BUDGET_S if budget_s is None else budget_s,
            cap_s=retry_cap_s(config.schedule.interval_s),
            base_url=config.feed.base_url,
            timeout_s=SEND_TIMEOUT_S,
            stop=stop.is_set if stop is not None else None,
        )
    except MonitorError as error:
        return DeliveryReport(errors=(f"outbox: {error}",))


def deliver_between_cycles(
    config: Config, *, stop: threading.Event | None = None
) -> DeliveryReport | None:
    """`run`'s round between cycles: None without targets or while a cycle holds the lock."""
    if not config.notify:
        return None
    try:
        with data_dir_lock(config.monitor.data_dir, purpose="monitor run (notifications)"):
            store = open_store(config, write=True)
            try:
                return deliver_outbox(config, store.outbox(), now=utc_now(), stop=stop)
            finally:
                store.close()
    except LockedError:
        return None  # a cycle runs: it delivers after its commit
    except MonitorError as error:  # the store cannot be opened: try again next time
        return DeliveryReport(errors=(f"outbox: {error}",))
