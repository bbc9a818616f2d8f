"""Write the rendered feed to disk atomically: readers see the old file or the new one, whole."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from monitor.config import Config
from monitor.durable import write_atomically
from monitor.feed import FeedFormat, FeedInfo, render_feed
from monitor.models import Event

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
