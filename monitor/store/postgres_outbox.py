"""The notification outbox in PostgreSQL: sqlite_outbox.py's contract, shared by workers.

insert_deliveries() runs inside write_cycle's transaction, so a cycle's events and the
messages it owes are committed together or not at all; each mark_* commits at once.

In a cluster several workers may deliver at the same time, so `due()` CLAIMS the rows it
returns: one statement locks them (FOR UPDATE SKIP LOCKED: rows another worker is claiming
are passed over, never waited for) and moves their next_at a lease (LEASE_S) ahead, so no
other worker finds them due until the lease runs out. The claimant then marks each one
(sent, retry at its own next_at, failed). A worker that dies holding a claim, or a round
cut short by its time budget or by stop(), leaves its rows pending: they are due again
when the lease ends, at most LEASE_S later than in SQLite. Two workers therefore never
send the same pending delivery at once; delivery stays at-least-once, as in SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from monitor.errors import StoreError
from monitor.models import Event, format_time
from monitor.notify.outbox import Delivery, NewDelivery
from monitor.store import outbox as O
from monitor.store import rows as R

__all__ = ["LEASE_S", "PostgresOutbox", "insert_deliveries"]

Conn = psycopg.Connection[Any]
LEASE_S = 60  # how long a claimed delivery stays out of other workers' due()

# Lock the due rows no one else holds, push their next_at past the lease, return them
# with the next_at they were due at (the Delivery SQLite would return).
CLAIM_SQL = """
WITH picked AS (
    SELECT id, next_at FROM outbox o
    WHERE status = 'pending' AND next_at <= %(now)s AND """ + O.IN_ORDER.format(now="%(now)s") + """
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET next_at = %(lease)s
FROM picked WHERE o.id = picked.id
RETURNING o.id, o.target, o.target_hash, o.event_ids, o.created_at, o.attempts,
          picked.next_at AS next_at
"""  # fmt: skip


def insert_deliveries(conn: Conn, deliveries: Sequence[NewDelivery]) -> None:
    """Queue a cycle's deliveries; the caller holds the cycle's transaction. A digest that
    joins one still unsent extends it (NewDelivery.joins); the others are new rows."""
    fresh = O.join_digests(conn.execute, deliveries, mark="%s", lock=" FOR UPDATE")
    if not fresh:
        return
    rows = [O.delivery_row(d) for d in fresh]
    names = ", ".join(rows[0])
    marks = ", ".join("%s" for _ in rows[0])
    conn.cursor().executemany(
        f"INSERT INTO outbox ({names}) VALUES ({marks})", [tuple(r.values()) for r in rows]
    )


class PostgresOutbox:
    """The outbox table on a PostgresStore's (autocommit) connection."""

    def __init__(
        self, conn: Conn, location: str, say: Callable[[BaseException], str] = str
    ) -> None:
        self.conn = conn
        self.location = location
        self._say = say  # psycopg's message, without the URL's password

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries with next_at <= now, oldest first (by id), claimed for LEASE_S."""
        params = {
            "now": format_time(now),
            "limit": int(limit),
            "lease": format_time(now + timedelta(seconds=LEASE_S)),
        }
        rows = self._rows(CLAIM_SQL, params, "claim the due deliveries")
        return sorted((O.delivery_from_row(r) for r in rows), key=lambda d: d.id)

    def mark_sent(self, delivery_id: int, at: datetime) -> None:
        """Delivered: never due again. Committed at once."""
        self._rows(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, done_at = %s "
            "WHERE id = %s",
            (format_time(at), delivery_id),
            "record a delivery",
        )

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None:
        """One more attempt failed: attempts += 1, keep `error`, wait until next_at."""
        self._rows(
            "UPDATE outbox SET attempts = attempts + 1, next_at = %s, last_error = %s "
            "WHERE id = %s",
            (format_time(next_at), error, delivery_id),
            "record a delivery",
        )

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None:
        """Given up: never due again; `notify status` shows it with `error`."""
        self._rows(
            "UPDATE outbox SET status = 'failed', last_error = %s, done_at = %s WHERE id = %s",
            (error, format_time(at), delivery_id),
            "record a delivery",
        )

    def events(self, ids: Sequence[str]) -> list[Event]:
        """The events of these ids that exist, in the order of `ids`."""
        if not ids:
            return []
        rows = self._rows("SELECT * FROM events WHERE id = ANY(%s)", (list(ids),), "read events")
        found = {r["id"]: R.event_from_row(r, self.location) for r in rows}
        return [found[i] for i in ids if i in found]

    def notify_status(self) -> list[O.NotifyStatusRow]:
        """One row per (target, URL hash) with deliveries, in target order."""
        rows = self._rows(O.NOTIFY_STATUS_SQL, (), "read the outbox")
        return [O.notify_status_from_row(r) for r in rows]

    def _rows(self, sql: str, params: Any, what: str) -> list[dict[str, Any]]:
        """One statement, committed on its own (autocommit); its rows, if any."""
        try:
            with self.conn.cursor(row_factory=dict_row) as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.Error as error:
            raise StoreError(f"{self.location}: cannot {what}: {self._say(error)}") from None
