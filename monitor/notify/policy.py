"""Which events go to which target, and when a failed delivery is tried again: pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from monitor.models import Event

FIRST_RETRY_S = 60.0  # a receiver that failed once is asked again a minute later
CRON_RETRY_CAP_S = 3600.0  # SPEC: with `cron` the backoff is capped at one hour


class Target(Protocol):
    """What notification needs of one `[[notify]]` table (monitor.config.NotifyTarget)."""

    @property
    def url(self) -> str: ...
    @property
    def kinds(self) -> tuple[str, ...]: ...
    @property
    def pages(self) -> tuple[str, ...]: ...
    @property
    def digest(self) -> bool: ...
    @property
    def give_up_after_s(self) -> float: ...


def matches(target: Target, event: Event) -> bool:
    """True when `target` selects the event's kind and page, and it is not backfilled."""
    # Backfilled events tell of the past: sending them would announce old news as new.
    if getattr(event, "source", "check") == "backfill":
        return False
    if target.kinds and event.kind not in target.kinds:
        return False
    return not target.pages or event.page in target.pages


def retry_cap_s(interval_s: float | None) -> float:
    """The backoff cap: the check interval, or one hour when the schedule is a cron."""
    return interval_s if interval_s and interval_s > 0 else CRON_RETRY_CAP_S


def next_attempt(attempts: int, now: datetime, cap_s: float) -> datetime:
    """When to try again after `attempts` failed tries: 1 min, 2, 4, ... never past `cap_s`."""
    exponent = min(max(attempts - 1, 0), 40)  # 2**40 minutes is past any cap: no overflow
    delay_s = min(FIRST_RETRY_S * 2.0**exponent, max(cap_s, 1.0))
    return now + timedelta(seconds=delay_s)


def expired(first_at: datetime, now: datetime, give_up_after_s: float) -> bool:
    """True once a delivery first queued at `first_at` has been pending for give_up_after_s."""
    return (now - first_at).total_seconds() >= give_up_after_s
