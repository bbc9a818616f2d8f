"""Write the rendered feed to disk atomically: readers see the old file or the new one, whole."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from monitor.config import Config
from monitor.errors import StoreError
from monitor.feed import FeedFormat, FeedInfo, render_feed
from monitor.models import Event

_SUFFIX_FORMATS: dict[str, FeedFormat] = {
    ".atom": "atom",
    ".xml": "atom",
    ".json": "json",
    ".rss": "rss",
}
# A new file is readable by all (a web server may serve it); an existing one keeps its mode.
_NEW_FILE_MODE = 0o644


def format_for_path(path: Path) -> FeedFormat:
    """The feed format a file name asks for: .atom/.xml atom, .json json, .rss rss; else atom."""
    return _SUFFIX_FORMATS.get(path.suffix.lower(), "atom")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` through a synced temp file beside it; StoreError on failure."""
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    except OSError as exc:
        raise StoreError(f"{path}: cannot write the file: {_reason(exc)}") from exc
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write the file: {_reason(exc)}") from exc
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
        raise StoreError(f"{path}: cannot write the file: {_reason(exc)}") from exc
    finally:
        # Whatever went wrong (KeyboardInterrupt included), leave no temp file beside the feed.
        if not replaced:
            with contextlib.suppress(OSError):
                tmp.unlink()
    _sync_directory(directory, path)


def _sync_directory(directory: Path, path: Path) -> None:
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


def publish_feed(
    path: Path,
    events: Sequence[Event],
    info: FeedInfo,
    *,
    max_entries: int,
    now: datetime,
) -> None:
    """Render the feed in the format its suffix names and write it to `path` atomically."""
    data = render_feed(events, info, format_for_path(path), max_entries=max_entries, now=now)
    write_atomically(path, data)


def feed_info(
    config: Config,
    *,
    home_url: str | None = None,
    self_url: str | None = None,
    base_url: str | None = None,
) -> FeedInfo:
    """The feed's title, a stable id derived from the watched URLs, and where it is published.

    `base_url` defaults to `[feed].base_url` (evidence links and self links need it).
    """
    watched = "\n".join(sorted(page.url for page in config.pages))
    feed_id = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'monitor-feed:' + watched)}"
    if base_url is None:
        # getattr: [feed].base_url lands with the config work done in parallel.
        configured = getattr(config.feed, "base_url", None)
        base_url = configured if isinstance(configured, str) else None
    return FeedInfo(
        config.feed.title, feed_id, home_url=home_url, self_url=self_url, base_url=base_url
    )
