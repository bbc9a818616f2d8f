"""The typed, validated configuration: frozen dataclasses, defaults given once, in the fields."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from msgspec import Struct, field

from monitor.models import Role

MAX_RETRIES = 10
DEFAULT_USER_AGENT = (
    "monitor/0.1 (+https://github.com/imls-watch/monitor; page-change monitor and archiver)"
)


class Selectors(Struct, frozen=True):
    """CSS selectors for one page: `item` finds entries, the rest look inside an item."""

    item: str
    title: str | None = None
    link: str | None = None
    description: str | None = None
    next: str | None = None  # the listing's next-page link, searched in the whole page


class DetailConfig(Struct, frozen=True):
    """[pages.detail]: each entry's own page is fetched too."""

    every_s: float = 86400.0
    content: str | None = None  # CSS selector: the text whose edits are reported
    keep_checking_s: float = 30 * 86400.0  # after the entry left every listing


class PageConfig(Struct, frozen=True):
    name: str
    url: str
    role: Role
    select: Selectors
    layouts: tuple[Selectors, ...] = ()  # tried in order when `select.item` matches nothing
    max_pages: int = 20
    group: str = "default"
    detail: DetailConfig | None = None  # None: the entries' own pages are not checked

    @property
    def all_layouts(self) -> tuple[Selectors, ...]:
        """`select` then each of `layouts`, in the order they are tried."""
        return (self.select, *self.layouts)


class MonitorSettings(Struct, frozen=True):
    data_dir: Path = Path("snapshots")
    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = 30.0
    retries: int = 3
    concurrency: int = 4
    max_bytes: int = 10_000_000
    confirm_checks: int = 2
    anomaly_ratio: float = 0.5
    warc_max_bytes: int = 1_000_000_000


class ScheduleConfig(Struct, frozen=True):
    interval_s: float | None = 6 * 3600.0  # None when `cron` is given
    cron: str | None = None
    jitter_s: float = 300.0
    run_at_start: bool = True


class FeedConfig(Struct, frozen=True):
    title: str = "IMLS national initiatives: change log"
    max_entries: int = 200
    path: Path | None = None  # absolute once loaded
    base_url: str | None = None  # ends with "/" once loaded


class ServeConfig(Struct, frozen=True):
    allowed_hosts: tuple[str, ...] = ()  # lower-case host names, any port


class BackfillConfig(Struct, frozen=True):
    cdx_url: str = "https://web.archive.org/cdx/search/cdx"
    memento_url: str = "https://web.archive.org/web/{timestamp}id_/{url}"
    rate_per_minute: float = 15.0
    since: date | None = None
    hold_for_s: float = 90 * 86400.0


class NotifyTarget(Struct, frozen=True):
    """One [[notify]] table: where to send which events."""

    url: str  # an Apprise URL; may hold secrets, never print it whole
    kinds: tuple[str, ...] = ()  # empty: every kind
    pages: tuple[str, ...] = ()  # empty: every page
    digest: bool = False
    give_up_after_s: float = 7 * 86400.0


class ClusterConfig(Struct, frozen=True):
    database: str  # postgresql:// URL; may hold a password
    broker: str  # redis://, rediss://, amqp:// or amqps:// URL; may hold a password
    archive: Path  # absolute once loaded
    task_timeout_s: float = 600.0


class Config(Struct, frozen=True):
    path: Path  # the file it was read from (absolute)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    pages: tuple[PageConfig, ...] = ()
    serve: ServeConfig = field(default_factory=ServeConfig)
    backfill: BackfillConfig = field(default_factory=BackfillConfig)
    notify: tuple[NotifyTarget, ...] = ()
    cluster: ClusterConfig | None = None
