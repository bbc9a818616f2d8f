"""One check cycle at a time per data directory: an flock on DATA_DIR/monitor.lock.

The kernel drops an flock when its process dies, however it dies, so a lock
left by a killed process never blocks the next check.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import LockedError, StoreError

LOCK_NAME = "monitor.lock"


def lock_holder(data_dir: Path) -> str | None:
    """What the lock file says about its holder ("pid 123, since …"), if anyone holds it."""
    path = data_dir / LOCK_NAME
    try:
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                return handle.read().strip() or "another process"
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except OSError:
        return None


@contextmanager
def data_dir_lock(data_dir: Path, *, wait_s: float = 0.0, purpose: str = "check") -> Iterator[None]:
    """Hold the data directory's lock; wait up to wait_s for it, then refuse clearly."""
    path = data_dir / LOCK_NAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 (closed in finally)
    except OSError as error:
        raise StoreError(f"{path}: cannot open the lock file: {error}") from error
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise LockedError(
                        f"{data_dir}: a check cycle is already running ({holder}); "
                        "try again later, or pass --wait SECONDS"
                    ) from None
                time.sleep(0.1)
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        handle.write(f"{purpose}, pid {os.getpid()}, since {since}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the flock
