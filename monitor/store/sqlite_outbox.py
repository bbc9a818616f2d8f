"""The notification outbox in monitor.db: queued in the cycle's transaction, marked one by one.

insert_deliveries() runs inside write_cycle's transaction, so a cycle's events and the
messages it owes are committed together or not at all. SqliteOutbox's mark_* each commit
at once, right after the target answered: a process killed between a send and its mark
repeats that one message, and nothing else is lost or repeated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.errors import StoreError
from monitor.models import Event, format_time
from monitor.notify.outbox import Delivery, NewDelivery
from monitor.store import outbox as O
from monitor.store import rows as R

__all__ = ["SqliteOutbox", "insert_deliveries"]


def insert_deliveries(conn: sqlite3.Connection, deliveries: Sequence[NewDelivery]) -> None:
    """Queue a cycle's deliveries; the caller holds the cycle's transaction. A digest that
    joins one still unsent extends it (NewDelivery.joins); the others are new rows."""
    fresh = O.join_digests(conn.execute, deliveries, mark="?")
    if not fresh:
        return
    rows = [O.delivery_row(d) for d in fresh]
    names = ", ".join(rows[0])
    marks = ", ".join("?" for _ in rows[0])
    conn.executemany(
        f"INSERT INTO outbox ({names}) VALUES ({marks})", [tuple(r.values()) for r in rows]
    )


class SqliteOutbox:
    """The outbox table on a SqliteStore's connection (an Outbox, and `notify status`'s rows)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries with next_at <= now, oldest first (by id), bar those queued
        after one to the same target that waits (O.IN_ORDER): a target gets them in order."""
        at = format_time(now)
        rows = self._rows(
            "SELECT * FROM outbox o WHERE status = 'pending' AND next_at <= ? "
            f"AND {O.IN_ORDER.format(now='?')} ORDER BY id LIMIT ?",
            (at, at, int(limit)),
        )
        return [O.delivery_from_row(r) for r in rows]

    def mark_sent(self, delivery_id: int, at: datetime) -> None:
        """Delivered: never due again. Committed at once."""
        self._commit(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, done_at = ? WHERE id = ?",
            (format_time(at), delivery_id),
        )

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None:
        """One more attempt failed: attempts += 1, keep `error`, wait until next_at."""
        self._commit(
            "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
            (format_time(next_at), error, delivery_id),
        )

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None:
        """Given up: never due again; `notify status` shows it with `error`."""
        self._commit(
            "UPDATE outbox SET status = 'failed', last_error = ?, done_at = ? WHERE id = ?",
            (error, format_time(at), delivery_id),
        )

    def events(self, ids: Sequence[str]) -> list[Event]:
        """The events of these ids that exist, in the order of `ids`."""
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        found = {
            r["id"]: R.event_from_row(r, str(self.path))
            for r in self._rows(f"SELECT * FROM events WHERE id IN ({marks})", list(ids))
        }
        return [found[i] for i in ids if i in found]

    def notify_status(self) -> list[O.NotifyStatusRow]:
        """One row per (target, URL hash) with deliveries, in target order."""
        return [O.notify_status_from_row(r) for r in self._rows(O.NOTIFY_STATUS_SQL)]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.conn.execute(sql, tuple(params))
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot read the outbox: {error}") from error
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _commit(self, sql: str, params: Sequence[Any]) -> None:
        """One statement in its own transaction, committed before returning."""
        try:
            with self.conn:  # commits on success, rolls back on an error
                self.conn.execute(sql, tuple(params))
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot record a delivery: {error}") from error
