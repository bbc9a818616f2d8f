"""Write the rendered feed to disk atomically: readers see the old file or the new one, whole.

A cycle rewrites the feed file only when its bytes would change: `feed_fingerprint` sums
up everything they depend on (the events it shows, the [feed] settings, the watched URLs,
the monitor's version), and DATA_DIR/feed.json remembers the fingerprint and the file
written with it. An unchanged cycle, the most common kind, then neither renders nor
imports the feed writer (feedgen and lxml: ~25 ms and ~8 MB of a `monitor check`).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from monitor import __version__
from monitor.config import Config
from monitor.durable import write_atomically
from monitor.errors import MonitorError, StoreError
from monitor.models import Event

if TYPE_CHECKING:
    from monitor.feed import FeedFormat, FeedInfo

_SUFFIX_FORMATS: dict[str, FeedFormat] = {
    ".atom": "atom",
    ".xml": "atom",
    ".json": "json",
    ".rss": "rss",
}


def format_for_path(path: Path) -> FeedFormat:
    """The feed format a file name asks for: .atom/.xml atom, .json json, .rss rss; else atom."""
    return _SUFFIX_FORMATS.get(path.suffix.lower(), "atom")


def publish_feed(
    path: Path,
    events: Sequence[Event],
    info: FeedInfo,
    *,
    max_entries: int,
) -> None:
    """Render the feed in the format its suffix names and write it to `path` atomically,
    making its directory if need be (with [cluster], nothing else makes data_dir)."""
    from monitor.feed import render_feed

    data = render_feed(events, info, format_for_path(path), max_entries=max_entries)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"{path}: cannot write the file: {error.strerror or error}") from error
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
    from monitor.feed import FeedInfo

    watched = "\n".join(sorted(page.url for page in config.pages))
    feed_id = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'monitor-feed:' + watched)}"
    if base_url is None:
        # getattr: [feed].base_url lands with the config work done in parallel.
        configured = getattr(config.feed, "base_url", None)
        base_url = configured if isinstance(configured, str) else None
    return FeedInfo(
        config.feed.title, feed_id, home_url=home_url, self_url=self_url, base_url=base_url,
        site_url=config.pages[0].url if config.pages else None,
    )


def feed_fingerprint(config: Config, events: Sequence[Event]) -> str:
    """Everything the feed file's bytes depend on, hashed (with events, `now` is not one)."""
    feed = config.feed
    basis = (
        __version__,
        str(feed.path),
        feed.title,
        feed.max_entries,
        getattr(feed, "base_url", None),
        sorted(page.url for page in config.pages),
        config.pages[0].url if config.pages else None,  # RSS's channel link (FeedInfo.site_url)
        [repr(event) for event in events],
    )
    return hashlib.sha256(repr(basis).encode("utf-8", "surrogatepass")).hexdigest()


def feed_is_current(path: Path, state: Path, fingerprint: str) -> bool:
    """True when `path` is the file written for `fingerprint` (and nobody touched it since)."""
    try:
        remembered = json.loads(state.read_text(encoding="utf-8"))
        written = path.stat()
    except (OSError, ValueError):
        return False
    return isinstance(remembered, dict) and remembered == _state(path, written, fingerprint)


def remember_feed(path: Path, state: Path, fingerprint: str) -> None:
    """Record that `path` now holds the feed for `fingerprint` (best effort: a lost note
    only means the next cycle writes the same feed again)."""
    try:
        write_atomically(state, json.dumps(_state(path, path.stat(), fingerprint)).encode())
    except (OSError, MonitorError):
        pass


def _state(path: Path, written: os.stat_result, fingerprint: str) -> dict[str, object]:
    return {"path": str(path.absolute()), "fingerprint": fingerprint,
            "size": written.st_size, "mtime_ns": written.st_mtime_ns}  # fmt: skip
