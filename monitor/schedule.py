"""The schedule of `monitor run` (and the cluster's producer): [schedule] -> an APScheduler trigger.

In APScheduler 3.x cron day-of-week 0 is Monday: config.crontab_fields converts numbers to names.
"""

from __future__ import annotations

from datetime import UTC

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import ScheduleConfig, crontab_fields


def build_trigger(schedule: ScheduleConfig) -> BaseTrigger:
    """The APScheduler trigger for [schedule]: every `interval`, or the crontab in UTC; jittered."""
    jitter = schedule.jitter_s or None
    if schedule.cron is not None:
        # Never CronTrigger.from_crontab: it reads day of week 0 as Monday, crontab as Sunday.
        return CronTrigger(**crontab_fields(schedule.cron), timezone=UTC, jitter=jitter)
    assert schedule.interval_s is not None  # load_config gives one or the other
    return IntervalTrigger(seconds=schedule.interval_s, timezone=UTC, jitter=jitter)


def describe_schedule(schedule: ScheduleConfig) -> str:
    """The schedule in words: "every 6h, jitter 5m" or "cron '0 */6 * * *' (UTC), jitter 5m"."""
    when = (
        f"cron {schedule.cron!r} (UTC)"
        if schedule.cron is not None
        else f"every {_duration(schedule.interval_s or 0)}"
    )
    return f"{when}, jitter {_duration(schedule.jitter_s)}"


def _duration(seconds: float) -> str:
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"
