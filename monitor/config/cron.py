"""Crontab (5 fields, crontab(5) meaning) -> APScheduler 3.x CronTrigger keyword arguments."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from msgspec import Struct


class _CronField(Struct, frozen=True):
    keyword: str  # CronTrigger's keyword argument
    label: str  # as crontab(5) calls it
    low: int
    high: int
    names: tuple[str, ...] = ()  # names of low, low + 1, ...


_CRON_FIELDS = (
    _CronField("minute", "minute", 0, 59),
    _CronField("hour", "hour", 0, 23),
    _CronField("day", "day of month", 1, 31),
    _CronField(
        "month",
        "month",
        1,
        12,
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
    # crontab: 0 and 7 are both Sunday
    _CronField(
        "day_of_week", "day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
    ),
)
_CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_TERM = re.compile(r"(\*|[0-9a-z]+)(?:-([0-9a-z]+))?(?:/([0-9]+))?", re.IGNORECASE)
# APScheduler 3.x numbers weekdays from Monday = 0 (crontab: Sunday = 0); names avoid the clash.
_APS_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A fixed reference time, so validation does not depend on the clock.
_CRON_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)

_CronTerm = tuple[int, int, int | None, bool]  # first, last, step, written as "*"


def _cron_value(text: str, spec: _CronField) -> int:
    """The number a crontab value stands for (digits or, for months and weekdays, a name)."""
    if text.isascii() and text.isdigit():
        value = int(text)
    elif text.lower() in spec.names:
        value = spec.names.index(text.lower()) + spec.low
    else:
        raise ValueError(f"{text!r} is not a valid {spec.label}")
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.label} {value} is out of range {spec.low}-{spec.high}")
    return value


def _cron_term(term: str, spec: _CronField) -> _CronTerm:
    """One comma-separated term of a crontab field: "*", "5", "1-5", "*/15", "0-30/10"."""
    match = _CRON_TERM.fullmatch(term)
    if match is None or (match[1] == "*" and match[2] is not None):
        raise ValueError(f"{term!r} is not a valid {spec.label} term")
    step = int(match[3]) if match[3] else None
    if step == 0:
        raise ValueError(f"step in {term!r} must be at least 1")
    if match[1] == "*":
        return spec.low, spec.high, step, True
    first = _cron_value(match[1], spec)
    # "5/15" means from 5 to the end, every 15 (as cronie and APScheduler read it)
    last = _cron_value(match[2], spec) if match[2] else spec.high if step else first
    if first > last:
        raise ValueError(f"range {term!r} runs backwards")
    return first, last, step, False


def _render_term(term: _CronTerm) -> str:
    """A term in APScheduler's syntax, numbers only (its month-name form takes no step)."""
    first, last, step, star = term
    text = "*" if star else str(first) if first == last else f"{first}-{last}"
    return text if step is None else f"{text}/{step}"


def _weekday_names(terms: list[_CronTerm]) -> str:
    """crontab weekday terms as APScheduler weekday names; 3+ days in a row as "mon-fri"."""
    days = {day % 7 for first, last, step, _ in terms for day in range(first, last + 1, step or 1)}
    if len(days) == 7:
        return "*"
    indexes = sorted((day - 1) % 7 for day in days)  # crontab Sunday=0 -> APScheduler Monday=0
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return ",".join(
        ",".join(_APS_WEEKDAYS[index] for index in run)
        if len(run) < 3
        else f"{_APS_WEEKDAYS[run[0]]}-{_APS_WEEKDAYS[run[-1]]}"
        for run in runs
    )


def crontab_fields(expr: str) -> dict[str, str]:
    """CronTrigger(**fields) keyword arguments for a 5-field crontab, keeping Sunday = 0 or 7."""
    text = expr.strip()
    if text.startswith("@") and text.lower() not in _CRON_MACROS:
        known = ", ".join(_CRON_MACROS)
        raise ValueError(f"invalid crontab {expr!r}: unknown macro (known: {known})")
    parts = _CRON_MACROS.get(text.lower(), text).split()
    if len(parts) != 5:
        raise ValueError(
            f"invalid crontab {expr!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    fields: dict[str, str] = {}
    try:
        for spec, part in zip(_CRON_FIELDS, parts, strict=True):
            terms = [_cron_term(term, spec) for term in part.split(",")]
            if spec.keyword == "day_of_week":
                fields[spec.keyword] = _weekday_names(terms)
            else:
                fields[spec.keyword] = ",".join(_render_term(term) for term in terms)
    except ValueError as exc:
        raise ValueError(f"invalid crontab {expr!r}: {exc}") from None
    if not parts[2].startswith("*") and not parts[4].startswith("*"):
        # cron runs when either matches; APScheduler's CronTrigger only when both do
        raise ValueError(
            f"invalid crontab {expr!r}: restricts both day of month and day of week, which cron "
            "reads as either one and APScheduler as both; restrict only one of them"
        )
    try:
        # Imported here: only a config with `cron` pays for APScheduler at load time.
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger(**fields, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"invalid crontab {expr!r}: {exc}") from None
    if trigger.get_next_fire_time(None, _CRON_REFERENCE) is None:
        raise ValueError(f"invalid crontab {expr!r}: never fires")
    return fields
