"""The notification outbox's side of the storage seam: `OutboxStore`, its status rows, and
the outbox's rows <-> database rows (shared by both stores).

Apart from base.py so that a cycle without [[notify]] targets (most cycles) never loads
the notification modules: the store reaches this module only through `Store.outbox()`
and a cycle that queues deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from msgspec import Struct

from monitor.models import format_time, parse_time
from monitor.notify.outbox import Delivery, NewDelivery, Outbox
from monitor.store.rows import optional_time as _time

Row = Mapping[str, Any]


class NotifyStatusRow(Struct, frozen=True):
    """The outbox's deliveries to one target (as queued: its index and URL hash), by state."""

    target: int  # the index (0-based, config order) it was last queued under
    target_url_hash: str  # sha256 of its URL: finds the target in a reordered config
    pending: int
    sent: int
    failed: int
    oldest_pending: datetime | None  # when the oldest pending delivery was queued
    next_at: datetime | None  # the next attempt of a pending delivery
    last_error: str | None  # the newest error of a delivery not sent (redacted)


class OutboxStore(Outbox, Protocol):
    """The notification outbox in a store: Outbox's due/mark_*/events, and its status.

    Each mark_* is committed on its own, right after the target answered; the deliveries
    themselves are written by record_cycle, in the cycle's transaction.
    """

    def notify_status(self) -> list[NotifyStatusRow]:
        """One row per (target, URL hash) with deliveries, in target order."""
        ...


# A delivery waits while one queued before it to the same target waits (its backoff, or
# another worker's lease): a target gets its messages in the order they were queued.
IN_ORDER = (
    "NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'pending' "
    "AND e.target_hash = o.target_hash AND e.id < o.id AND e.next_at > {now})"
)


def delivery_row(new: NewDelivery) -> dict[str, Any]:
    """The outbox table's columns for one delivery a cycle queues (status pending)."""
    return {
        "target": new.target,
        "target_hash": new.target_url_hash,
        "event_ids": json.dumps(list(new.event_ids)),
        "created_at": format_time(new.created_at),
        "next_at": format_time(new.next_at),
    }


# The digest a NewDelivery with `joins` extends: its target's (index and URL) newest one
# queued at that time, never tried nor claimed (a claim moves next_at: PostgreSQL's
# lease). One that may be on its way is never grown: the joining ids get a row of their
# own. PostgreSQL locks the row ({lock} = FOR UPDATE): a worker claims it before or after.
JOINABLE_SQL = (
    "SELECT id, event_ids FROM outbox WHERE target = {m} AND target_hash = {m} "
    "AND created_at = {m} "
    "AND next_at = created_at AND status = 'pending' AND attempts = 0 "
    "ORDER BY id DESC LIMIT 1{lock}"
)


def join_digests(
    execute: Callable[[str, tuple[Any, ...]], Any],
    deliveries: Sequence[NewDelivery],
    *,
    mark: str,
    lock: str = "",
) -> list[NewDelivery]:
    """Grow each unsent digest a delivery joins (NewDelivery.joins) by its event ids, in
    the caller's transaction; the deliveries left are new rows to insert."""
    fresh = []
    for new in deliveries:
        found = None
        if new.joins is not None:
            sql = JOINABLE_SQL.format(m=mark, lock=lock)
            where = (new.target, new.target_url_hash, format_time(new.joins))
            found = execute(sql, where).fetchone()
        if found is None:
            fresh.append(new)
            continue
        ids = list(json.loads(found[1]))
        ids += [i for i in new.event_ids if i not in ids]
        execute(f"UPDATE outbox SET event_ids = {mark} WHERE id = {mark}",
                (json.dumps(ids), found[0]))  # fmt: skip
    return fresh


def delivery_from_row(row: Row) -> Delivery:
    """A Delivery from an outbox row."""
    return Delivery(
        id=row["id"],
        target=row["target"],
        target_url_hash=row["target_hash"],
        event_ids=tuple(json.loads(row["event_ids"])),
        created_at=parse_time(row["created_at"]),
        attempts=row["attempts"],
        next_at=parse_time(row["next_at"]),
    )


def notify_status_from_row(row: Row) -> NotifyStatusRow:
    """A NotifyStatusRow from a row of NOTIFY_STATUS_SQL (shared by both stores)."""
    return NotifyStatusRow(
        target=row["target"],
        target_url_hash=row["target_hash"],
        pending=int(row["pending"] or 0),
        sent=int(row["sent"] or 0),
        failed=int(row["failed"] or 0),
        oldest_pending=_time(row["oldest_pending"]),
        next_at=_time(row["next_at"]),
        last_error=row["last_error"],
    )


# Per (target, URL hash): counts by state, the oldest pending, the next attempt (the
# oldest pending delivery's: the others wait for it, IN_ORDER), and the newest error of a
# delivery not sent. Plain SQL that SQLite and PostgreSQL both run.
NOTIFY_STATUS_SQL = """
SELECT o.target, o.target_hash,
       sum(CASE WHEN o.status = 'pending' THEN 1 ELSE 0 END) AS pending,
       sum(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END) AS sent,
       sum(CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END) AS failed,
       min(CASE WHEN o.status = 'pending' THEN o.created_at END) AS oldest_pending,
       (SELECT p.next_at FROM outbox p
         WHERE p.target = o.target AND p.target_hash = o.target_hash AND p.status = 'pending'
         ORDER BY p.id LIMIT 1) AS next_at,
       (SELECT e.last_error FROM outbox e
         WHERE e.target = o.target AND e.target_hash = o.target_hash
           AND e.status <> 'sent' AND e.last_error IS NOT NULL
         ORDER BY e.id DESC LIMIT 1) AS last_error
FROM outbox o
GROUP BY o.target, o.target_hash
ORDER BY o.target, o.target_hash
"""
