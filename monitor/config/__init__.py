"""config.toml -> Config (frozen dataclasses): the only reader of TOML in monitor."""

from monitor.config.cron import crontab_fields
from monitor.config.load import load_config
from monitor.config.model import (
    DEFAULT_USER_AGENT,
    MAX_RETRIES,
    BackfillConfig,
    ClusterConfig,
    Config,
    DetailConfig,
    FeedConfig,
    MonitorSettings,
    NotifyTarget,
    PageConfig,
    ScheduleConfig,
    Selectors,
    ServeConfig,
)
from monitor.config.rules import ALLOWED_KEYS, REQUIRED_KEYS
from monitor.config.urls import redact_url
from monitor.config.values import MAX_DURATION_S, parse_duration
from monitor.kinds import EVENT_KINDS

__all__ = [
    "ALLOWED_KEYS",
    "DEFAULT_USER_AGENT",
    "EVENT_KINDS",
    "MAX_DURATION_S",
    "MAX_RETRIES",
    "REQUIRED_KEYS",
    "BackfillConfig",
    "ClusterConfig",
    "Config",
    "DetailConfig",
    "FeedConfig",
    "MonitorSettings",
    "NotifyTarget",
    "PageConfig",
    "ScheduleConfig",
    "Selectors",
    "ServeConfig",
    "crontab_fields",
    "load_config",
    "parse_duration",
    "redact_url",
]
