"""config.toml -> Config: the only reader of TOML; everything past it is typed and valid."""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import soupsieve

from monitor.errors import ConfigError
from monitor.models import Role

MAX_RETRIES = 10
DEFAULT_USER_AGENT = (
    "monitor/0.1 (+https://github.com/imls-watch/monitor; page-change monitor and archiver)"
)


@dataclass(frozen=True)
class Selectors:
    """CSS selectors for one page: `item` finds entries, the rest look inside an item."""

    item: str
    title: str | None = None
    link: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class PageConfig:
    name: str
    url: str
    role: Role
    select: Selectors


@dataclass(frozen=True)
class MonitorSettings:
    data_dir: Path = Path("snapshots")
    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = 30.0
    retries: int = 3
    concurrency: int = 4
    max_bytes: int = 10_000_000
    confirm_checks: int = 2
    anomaly_ratio: float = 0.5


@dataclass(frozen=True)
class ScheduleConfig:
    interval_s: float | None = 6 * 3600.0  # None when `cron` is given
    cron: str | None = None
    jitter_s: float = 300.0
    run_at_start: bool = True


@dataclass(frozen=True)
class FeedConfig:
    title: str = "IMLS national initiatives: change log"
    max_entries: int = 200
    path: Path | None = None  # absolute once loaded


@dataclass(frozen=True)
class Config:
    path: Path  # the file it was read from (absolute)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    feed: FeedConfig = field(default_factory=FeedConfig)
    pages: tuple[PageConfig, ...] = ()


# --- durations ------------------------------------------------------------------------------

# Units in descending order, each at most once, whole numbers only: "1h30m", never "30m1h".
_DURATION = re.compile(r"(?:([0-9]{1,9})d)?(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9})s)?")
_UNIT_S = (86400, 3600, 60, 1)
# Longer than this is a typo, and far longer would overflow APScheduler's datetime arithmetic.
MAX_DURATION_S = 366 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "5m", "6h", "1d" or "1h30m"; ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected whole numbers with units d, h, m, s in that "
            "order, such as '90s', '5m', '6h', '1d' or '1h30m'"
        )
    seconds = float(
        sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_S, strict=True) if n)
    )
    if seconds > MAX_DURATION_S:
        raise ValueError(f"invalid duration {text!r}: longer than 366d")
    return seconds


# --- crontab --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CronField:
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


# --- validation of single values ------------------------------------------------------------


class _Invalid(Exception):
    """A value is wrong; the message says how, the caller adds the file and key path."""


Check = Callable[[object], Any]


def _show(value: object) -> str:
    """A value as the user wrote it in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _number(value: object) -> float | None:
    """A TOML integer or float as a float; None for anything else, booleans included."""
    # TOML booleans are Python ints; `timeout = true` is a mistake, never 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return None


def _int_at_least(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise _Invalid(f"must be an integer >= {minimum}, got {_show(value)}")
        return value

    return check


def _int_between(minimum: int, maximum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not (
            minimum <= value <= maximum
        ):
            raise _Invalid(f"must be an integer from {minimum} to {maximum}, got {_show(value)}")
        return value

    return check


def _positive_number(value: object) -> float:
    number = _number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise _Invalid(f"must be a number > 0, got {_show(value)}")
    return number


def _ratio(value: object) -> float:
    number = _number(value)
    if number is None or not 0 <= number <= 1:  # nan fails the comparison too
        raise _Invalid(f"must be a number from 0 to 1, got {_show(value)}")
    return number


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {_show(value)}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {_show(value)}")
    if not value.strip():
        raise _Invalid("must not be empty")
    return value


def _header_text(value: object) -> str:
    text = _text(value)
    if any(ord(char) < 0x20 or ord(char) >= 0x7F for char in text):
        raise _Invalid(
            "must be printable ASCII without control characters (it is sent as an HTTP "
            f"header), got {_show(text)}"
        )
    return text


def _path(value: object) -> Path:
    text = _text(value)
    if "\0" in text:
        raise _Invalid(f"must be a file path, got {_show(text)}")
    return Path(text).expanduser()  # made absolute by load_config


def _duration(*, positive: bool) -> Callable[[object], float]:
    def check(value: object) -> float:
        if not isinstance(value, str):
            raise _Invalid(f"must be a duration string such as '6h' or '1h30m', got {_show(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _Invalid(str(exc)) from None
        if positive and seconds <= 0:
            raise _Invalid(f"must be longer than 0s, got {_show(value)}")
        return seconds

    return check


def _cron(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a crontab string such as '0 */6 * * *', got {_show(value)}")
    try:
        crontab_fields(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None
    return value


# Names appear in URLs and file names: no spaces, no slashes, no leading dot or dash.
_PAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _page_name(value: object) -> str:
    name = _text(value)
    if not _PAGE_NAME.fullmatch(name):
        raise _Invalid(
            "must be letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {_show(name)}"
        )
    return name


def _url(value: object) -> str:
    url = _text(value)
    problem = f"must be an absolute http:// or https:// URL with a host, got {_show(url)}"
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise _Invalid(problem)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number 0-65535
    except ValueError:
        raise _Invalid(problem) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _Invalid(problem)
    return url


def _role(value: object) -> Role:
    if value == "active" or value == "archived":
        return value
    raise _Invalid(f"must be 'active' or 'archived', got {_show(value)}")


def _selector(value: object) -> str:
    selector = _text(value)
    try:
        soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        # soupsieve's message goes on with a drawing of the position; its first line says it
        reason = str(exc).splitlines()[0]
        raise _Invalid(f"invalid CSS selector {_show(selector)}: {reason}") from None
    return selector


# --- the tables -----------------------------------------------------------------------------

# TOML key -> (dataclass field, check); the only list of keys, used to reject unknown ones.
_MONITOR_RULES: dict[str, tuple[str, Check]] = {
    "data_dir": ("data_dir", _path),
    "user_agent": ("user_agent", _header_text),
    "timeout": ("timeout_s", _positive_number),
    # More retries than this would hold a failing page (and the cycle) for hours.
    "retries": ("retries", _int_between(0, MAX_RETRIES)),
    "concurrency": ("concurrency", _int_at_least(1)),
    "max_bytes": ("max_bytes", _int_at_least(1)),
    "confirm_checks": ("confirm_checks", _int_at_least(1)),
    "anomaly_ratio": ("anomaly_ratio", _ratio),
}
_SCHEDULE_RULES: dict[str, tuple[str, Check]] = {
    "interval": ("interval_s", _duration(positive=True)),
    "cron": ("cron", _cron),
    "jitter": ("jitter_s", _duration(positive=False)),
    "run_at_start": ("run_at_start", _bool),
}
_FEED_RULES: dict[str, tuple[str, Check]] = {
    "title": ("title", _text),
    "max_entries": ("max_entries", _int_at_least(1)),
    "path": ("path", _path),
}
_PAGE_RULES: dict[str, tuple[str, Check]] = {
    "name": ("name", _page_name),
    "url": ("url", _url),
    "role": ("role", _role),
}
_SELECT_RULES: dict[str, tuple[str, Check]] = {
    "item": ("item", _selector),
    "title": ("title", _selector),
    "link": ("link", _selector),
    "description": ("description", _selector),
}
# Every key the loader accepts, by table ("" is the top level); docs/config.md lists them all.
ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": ("monitor", "schedule", "feed", "pages"),
    "monitor": tuple(_MONITOR_RULES),
    "schedule": tuple(_SCHEDULE_RULES),
    "feed": tuple(_FEED_RULES),
    "pages": (*_PAGE_RULES, "select"),
    "pages.select": tuple(_SELECT_RULES),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "pages": ("name", "url", "role", "select"),
    "pages.select": ("item",),
}


def _error(file: Path, keypath: str, problem: str) -> ConfigError:
    return ConfigError(f"{file}: {keypath}: {problem}")


def _join(keypath: str, key: str) -> str:
    shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
    return f"{keypath}.{shown}" if keypath else shown


def _check_keys(file: Path, table: str, keypath: str, raw: Mapping[str, object]) -> None:
    """Reject keys the table does not have, and report the first required one missing."""
    allowed = ALLOWED_KEYS[table]
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _error(
                file, _join(keypath, key), f"unknown key ({hint}known: {', '.join(allowed)})"
            )
    for key in REQUIRED_KEYS.get(table, ()):
        if key not in raw:
            raise _error(file, _join(keypath, key), "required, not given")


def _as_table(file: Path, keypath: str, value: object, header: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _error(file, keypath, f"must be a table ({header}), got {_show(value)}")
    return value


def _fields(
    file: Path, keypath: str, raw: Mapping[str, object], rules: Mapping[str, tuple[str, Check]]
) -> dict[str, Any]:
    """The dataclass fields set by the keys given in one table, each value checked."""
    values: dict[str, Any] = {}
    for key, (field_name, check) in rules.items():
        if key in raw:
            try:
                values[field_name] = check(raw[key])
            except _Invalid as exc:
                raise _error(file, _join(keypath, key), str(exc)) from None
    return values


def _section(file: Path, raw: Mapping[str, object], name: str) -> dict[str, Any]:
    """The fields of one top-level table ([monitor], [schedule], [feed]); {} when absent."""
    table = _as_table(file, name, raw.get(name, {}), f"[{name}]")
    _check_keys(file, name, name, table)
    rules = {"monitor": _MONITOR_RULES, "schedule": _SCHEDULE_RULES, "feed": _FEED_RULES}[name]
    if name == "schedule" and "interval" in table and "cron" in table:
        raise _error(file, "schedule.cron", "cannot be given together with schedule.interval")
    values = _fields(file, name, table, rules)
    if name == "schedule" and "cron" in table:
        values["interval_s"] = None
    return values


def _page(file: Path, keypath: str, raw: object) -> PageConfig:
    table = _as_table(file, keypath, raw, "[[pages]]")
    _check_keys(file, "pages", keypath, table)
    values = _fields(file, keypath, table, _PAGE_RULES)
    select = _as_table(file, f"{keypath}.select", table["select"], "[pages.select]")
    _check_keys(file, "pages.select", f"{keypath}.select", select)
    selectors = Selectors(**_fields(file, f"{keypath}.select", select, _SELECT_RULES))
    return PageConfig(**values, select=selectors)


def _pages(file: Path, raw: Mapping[str, object]) -> tuple[PageConfig, ...]:
    if "pages" not in raw:
        raise _error(file, "pages", "required, not given: add at least one [[pages]] table")
    value = raw["pages"]
    if not isinstance(value, list):
        raise _error(file, "pages", f"must be an array of tables ([[pages]]), got {_show(value)}")
    if not value:
        raise _error(file, "pages", "must list at least one page")
    pages: list[PageConfig] = []
    owners: dict[str, int] = {}
    for index, item in enumerate(value):
        page = _page(file, f"pages[{index}]", item)
        # case-insensitively: names become file names, and some file systems fold case
        folded = page.name.lower()
        if folded in owners:
            raise _error(
                file,
                f"pages[{index}].name",
                f"{page.name!r} is already the name of pages[{owners[folded]}]",
            )
        owners[folded] = index
        pages.append(page)
    return tuple(pages)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # the message ends "(at line N, column M)"
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None


def _absolute(base: Path, path: Path) -> Path:
    """`path` made absolute against `base`, with "." and ".." folded away."""
    return Path(os.path.normpath(base / path))


def load_config(path: Path, *, data_dir: Path | None = None) -> Config:
    """The validated config in `path`; `data_dir` (from --data-dir) overrides [monitor].data_dir.

    Raises ConfigError, naming the file and the key path, for the first problem found.
    """
    file = _absolute(Path.cwd(), Path(path).expanduser())
    raw = _read_toml(file)
    _check_keys(file, "", "", raw)
    monitor = MonitorSettings(**_section(file, raw, "monitor"))
    schedule = ScheduleConfig(**_section(file, raw, "schedule"))
    feed = FeedConfig(**_section(file, raw, "feed"))
    pages = _pages(file, raw)
    if data_dir is None:
        monitor = replace(monitor, data_dir=_absolute(file.parent, monitor.data_dir))
    else:
        monitor = replace(monitor, data_dir=_absolute(Path.cwd(), data_dir.expanduser()))
    if feed.path is not None:
        feed = replace(feed, path=_absolute(file.parent, feed.path))
    return Config(path=file, monitor=monitor, schedule=schedule, feed=feed, pages=pages)
