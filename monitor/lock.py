"""The data directory's locks: one flock helper for the cycle lock and the daemon's lock.

With [cluster], a cycle's lock is instead its page groups' lock in PostgreSQL
(`cycle_lock`, store/postgres_lock.py): it must hold across machines.

The kernel drops an flock when its process dies, however it dies, so a lock left by a
killed process never blocks the next check. The lock file holds a line naming its holder
("monitor check, pid 123, since …"), for the messages of those who find it taken.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from monitor.errors import LockedError, StoreError
from monitor.paths import DataDir

if TYPE_CHECKING:
    from monitor.config import Config

POLL_S = 0.1


def take_lock(path: Path, *, wait_s: float, note: str) -> tuple[IO[str], None] | tuple[None, str]:
    """(handle, None) once the lock on `path` is held, else (None, holder) after wait_s."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 (the caller closes it to release)
    except OSError as error:
        raise StoreError(f"{path}: cannot open the lock file: {error}") from error
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                return None, holder
            time.sleep(POLL_S)
    handle.seek(0)
    handle.truncate()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    handle.write(f"{note + ', ' if note else ''}pid {os.getpid()}, since {since}\n")
    handle.flush()
    return handle, None


def lock_holder(path: Path) -> str | None:
    """What the lock file says of its holder, if anyone holds it now; None if free."""
    try:
        handle = open(path)  # noqa: SIM115 (closed below)
    except OSError:
        return None  # never taken here
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        return None  # closing the file drops the shared lock


def retry_hint(waited_s: float) -> str:
    """What to do about a lock still held: wait longer, or at all."""
    if waited_s > 0:
        return f"it still was after waiting {waited_s:g} s: try again later, or wait longer"
    return "try again later, or pass --wait SECONDS"


@contextmanager
def data_dir_lock(data_dir: Path, *, wait_s: float = 0.0, purpose: str = "check") -> Iterator[None]:
    """Hold the data directory's cycle lock; wait up to wait_s for it, then refuse (exit 3)."""
    handle, holder = take_lock(DataDir(data_dir).cycle_lock, wait_s=wait_s, note=purpose)
    if handle is None:
        raise LockedError(
            f"{data_dir}: a check cycle is already running ({holder}); {retry_hint(wait_s)}"
        )
    try:
        yield
    finally:
        handle.close()  # closing the file releases the flock


def acquire_daemon_lock(data_dir: Path) -> IO[str]:
    """Hold daemon.lock until the returned file closes; LockedError if a daemon has it."""
    # `monitor status` probes the lock for an instant: a daemon starting then waits a little.
    handle, holder = take_lock(DataDir(data_dir).daemon_lock, wait_s=0.25, note="")
    if handle is None:
        raise LockedError(f"a monitor daemon is already running for {data_dir} ({holder})")
    return handle


def daemon_holder(data_dir: Path) -> str | None:
    """What daemon.lock says of the daemon holding it ("pid 123, since …"); None if none runs."""
    return lock_holder(DataDir(data_dir).daemon_lock)


@contextmanager
def cycle_lock(
    config: Config, pages: Sequence[str], *, wait_s: float = 0.0, purpose: str = "check"
) -> Iterator[None]:
    """Hold the lock of a cycle checking `pages`: the data directory's flock, or with
    [cluster] the PostgreSQL lock of each of their groups (LockedError if one is held)."""
    from monitor.cluster.settings import cluster_of, page_groups  # imports no cluster library

    cluster = cluster_of(config)
    if cluster is None:
        with data_dir_lock(config.monitor.data_dir, wait_s=wait_s, purpose=purpose):
            yield
        return
    from monitor.store.postgres_lock import group_lock

    groups = page_groups(config)
    with group_lock(cluster.database, [groups[p] for p in pages], wait_s=wait_s, purpose=purpose):
        yield
