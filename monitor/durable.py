"""Durable writes: a file replaced atomically, and the directory entry that makes it stick.

Used by every writer that must leave readers the old file or the new one, whole (the feed
file, daemon.json), and by the archive to make a new WARC file's name survive a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from monitor.errors import StoreError

# A new file is readable by all (a web server may serve it); an existing one keeps its mode.
_NEW_FILE_MODE = 0o644


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` through a synced temp file beside it; StoreError on failure.

    A symbolic link is written through (its target is replaced, the link stays): a feed
    linked into a web root is the file that gets updated.
    """
    shown, path = path, Path(os.path.realpath(path))
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    except OSError as exc:
        raise StoreError(f"{shown}: cannot write the file: {_reason(exc)}") from exc
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StoreError(f"{shown}: cannot write the file: {_reason(exc)}") from exc
    tmp = Path(tmp_name)
    replaced = False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        replaced = True
    except OSError as exc:
        raise StoreError(f"{shown}: cannot write the file: {_reason(exc)}") from exc
    finally:
        # Whatever went wrong (KeyboardInterrupt included), leave no temp file beside the feed.
        if not replaced:
            with contextlib.suppress(OSError):
                tmp.unlink()
    sync_directory(directory, path)


def sync_directory(directory: Path, path: Path) -> None:
    """fsync the directory so that the rename itself survives a crash."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise StoreError(f"{path}: cannot sync directory {directory}: {_reason(exc)}") from exc
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (certain network and FUSE mounts) cannot fsync a directory;
        # the file is already in place, so that is no reason to report a failure.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise StoreError(f"{path}: cannot sync directory {directory}: {_reason(exc)}") from exc
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
