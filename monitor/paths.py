"""Where everything of a data directory lives: written out once, here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct

if TYPE_CHECKING:
    from monitor.config import Config


class DataDir(Struct, frozen=True):
    """A data directory: the database, the WARC files, the locks, the daemon's state."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "monitor.db"

    @property
    def warc(self) -> Path:
        return self.root / "warc"

    @property
    def cycle_lock(self) -> Path:
        """Held while a check cycle writes (one cycle at a time)."""
        return self.root / "monitor.lock"

    @property
    def daemon_lock(self) -> Path:
        """Held by a running `monitor run` for its whole life."""
        return self.root / "daemon.lock"

    @property
    def feed_state(self) -> Path:
        """Which feed file the last publish wrote, and the fingerprint of what it holds."""
        return self.root / "feed.json"

    @property
    def daemon_state(self) -> Path:
        """What the daemon last said of itself (JSON), for `monitor status`."""
        return self.root / "daemon.json"


def warc_dir(config: Config) -> Path:
    """Where WARC files are written and read: [cluster].archive, else DATA_DIR/warc."""
    from monitor.cluster.settings import cluster_of  # imports no cluster library

    cluster = cluster_of(config)
    return cluster.archive if cluster is not None else DataDir(config.monitor.data_dir).warc
