"""Every table and key of config.toml: TOML key -> (dataclass field, check), the only list."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.config import urls
from monitor.config.model import MAX_RETRIES
from monitor.config.values import (
    Check,
    Invalid,
    array_of,
    boolean,
    cron,
    duration,
    header_text,
    int_at_least,
    int_between,
    iso_date,
    name,
    path,
    positive_number,
    ratio,
    role,
    selector,
    show,
    text,
)
from monitor.kinds import EVENT_KINDS


def event_kind(value: object) -> str:
    if not isinstance(value, str) or value not in EVENT_KINDS:
        raise Invalid(f"must be an event kind ({', '.join(EVENT_KINDS)}), got {show(value)}")
    return value


Rules = Mapping[str, tuple[str, Check]]

MONITOR: Rules = {
    "data_dir": ("data_dir", path),
    "user_agent": ("user_agent", header_text),
    "timeout": ("timeout_s", positive_number),
    # More retries than this would hold a failing page (and the cycle) for hours.
    "retries": ("retries", int_between(0, MAX_RETRIES)),
    "concurrency": ("concurrency", int_at_least(1)),
    "max_bytes": ("max_bytes", int_at_least(1)),
    "confirm_checks": ("confirm_checks", int_at_least(1)),
    "anomaly_ratio": ("anomaly_ratio", ratio),
    "warc_max_bytes": ("warc_max_bytes", int_at_least(1)),
}
SCHEDULE: Rules = {
    "interval": ("interval_s", duration(positive=True)),
    "cron": ("cron", cron),
    "jitter": ("jitter_s", duration(positive=False)),
    "run_at_start": ("run_at_start", boolean),
}
FEED: Rules = {
    "title": ("title", text),
    "max_entries": ("max_entries", int_at_least(1)),
    "path": ("path", path),
    "base_url": ("base_url", urls.base_url),
}
ANY_HOST = array_of(
    urls.host_name, what="host names", left_out="only the bound address and localhost"
)
SERVE: Rules = {
    "allowed_hosts": ("allowed_hosts", ANY_HOST),
}
BACKFILL: Rules = {
    "cdx_url": ("cdx_url", urls.http_url),
    "memento_url": ("memento_url", urls.memento_url),
    "rate_per_minute": ("rate_per_minute", positive_number),
    "since": ("since", iso_date),
    "hold_for": ("hold_for_s", duration(positive=False)),
}
CLUSTER: Rules = {
    "database": ("database", urls.database_url),
    "broker": ("broker", urls.broker_url),
    "archive": ("archive", path),
    "task_timeout": ("task_timeout_s", duration(positive=True)),
}
NOTIFY: Rules = {
    "url": ("url", urls.apprise_url),
    "kinds": ("kinds", array_of(event_kind, what="event kinds", left_out="every kind")),
    # page names are checked against [[pages]] once those are read
    "pages": ("pages", array_of(name, what="page names", left_out="every page")),
    "digest": ("digest", boolean),
    "give_up_after": ("give_up_after_s", duration(positive=True)),
}
PAGE: Rules = {
    "name": ("name", name),
    "url": ("url", urls.page_url),
    "role": ("role", role),
    "max_pages": ("max_pages", int_at_least(1)),
    "group": ("group", name),
}
SELECT: Rules = {
    "item": ("item", selector),
    "title": ("title", selector),
    "link": ("link", selector),
    "description": ("description", selector),
    "next": ("next", selector),
}
DETAIL: Rules = {
    "every": ("every_s", duration(positive=True)),
    "content": ("content", selector),
    "keep_checking": ("keep_checking_s", duration(positive=False)),
}

# The tables whose keys are all scalar rules, by name.
SECTIONS: dict[str, Rules] = {
    "monitor": MONITOR,
    "schedule": SCHEDULE,
    "feed": FEED,
    "serve": SERVE,
    "backfill": BACKFILL,
    "cluster": CLUSTER,
}

# Every key the loader accepts, by table ("" is the top level); docs/config.md lists them all.
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": ("monitor", "schedule", "feed", "pages", "serve", "backfill", "notify", "cluster"),
    "monitor": tuple(MONITOR),
    "schedule": tuple(SCHEDULE),
    "feed": tuple(FEED),
    "pages": (*PAGE, "select", "layouts", "detail"),
    "pages.select": tuple(SELECT),
    "pages.layouts": tuple(SELECT),
    "pages.detail": tuple(DETAIL),
    "serve": tuple(SERVE),
    "backfill": tuple(BACKFILL),
    "notify": tuple(NOTIFY),
    "cluster": tuple(CLUSTER),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "pages": ("name", "url", "role", "select"),
    "pages.select": ("item",),
    "pages.layouts": ("item",),
    "notify": ("url",),
    "cluster": ("database", "broker", "archive"),
}
