"""A page group's cycle lock in PostgreSQL: a session-level advisory lock on its own connection.

The lock lives as long as the connection's session: a worker that dies (kill -9, a lost
machine) drops its connection and with it the lock, as the kernel drops a dead process's
flock. The key is a stable 64-bit hash of the group's name, the same on every machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from monitor.errors import LockedError, StoreError
from monitor.lock import retry_hint
from monitor.store.postgres import KEY, connect, describe, redact

POLL_S = 0.1
APP_PREFIX = "monitor cycle: "  # application_name of a lock's session, names its holder


def group_key(group: str) -> int:
    """The advisory-lock key of a group: the first 8 bytes of its SHA-256, signed."""
    digest = hashlib.sha256(f"monitor group {group}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def group_lock(url: str, groups: Sequence[str], *, wait_s: float, purpose: str) -> Iterator[None]:
    """Hold every group's advisory lock for the block; LockedError after wait_s if one is held."""
    note = f"{APP_PREFIX}{purpose}, pid {os.getpid()} on {socket.gethostname()}"
    conn = connect(url, name=note)
    try:
        for group in sorted(set(groups)):
            _take(conn, url, group, wait_s)
        yield
    finally:
        # Unlock, then close. Closing alone frees the locks only when the server process
        # of the session has exited, a moment later: a check that follows at once (cron's
        # next command, a worker's next task) would find its group still held and exit 3.
        with contextlib.suppress(psycopg.Error):  # a broken session ends on the server's side
            conn.execute("SELECT pg_advisory_unlock_all()")
        conn.close()


def _take(conn: psycopg.Connection[Any], url: str, group: str, wait_s: float) -> None:
    key = group_key(group)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row and row[0]:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        holder = _holder(conn, key)
    except psycopg.Error as error:
        raise StoreError(f"{KEY}: {redact(url)}: cannot take the lock of group {group!r}: "
                         f"{describe(error, url)}") from None  # fmt: skip
    raise LockedError(
        f"{KEY}: group {group!r}: a check cycle is already running ({holder}); "
        f"{retry_hint(wait_s)}"
    )


def _holder(conn: psycopg.Connection[Any], key: int) -> str:
    """Who holds `key`, as its session named itself; "another session" if it cannot be seen."""
    # A bigint key is stored as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid LIMIT 1""",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    ).fetchone()
    name = str(row[0]) if row and row[0] else ""
    return name.removeprefix(APP_PREFIX) or "another session"
