"""Checks of single TOML values: each returns the typed value or raises Invalid saying why."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from monitor.config.cron import crontab_fields
from monitor.models import Role

Check = Callable[[object], Any]


class Invalid(Exception):
    """A value is wrong; the message says how, the caller adds the file and key path."""


def show(value: object) -> str:
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


def duration(*, positive: bool) -> Callable[[object], float]:
    """A check of a duration string; with `positive`, "0s" is refused."""

    def check(value: object) -> float:
        if not isinstance(value, str):
            raise Invalid(f"must be a duration string such as '6h' or '1h30m', got {show(value)}")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if positive and seconds <= 0:
            raise Invalid(f"must be longer than 0s, got {show(value)}")
        return seconds

    return check


def cron(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a crontab string such as '0 */6 * * *', got {show(value)}")
    try:
        crontab_fields(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return value


# --- numbers and booleans -------------------------------------------------------------------


def _number(value: object) -> float | None:
    """A TOML integer or float as a float; None for anything else, booleans included."""
    # TOML booleans are Python ints; `timeout = true` is a mistake, never 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        return None


def int_at_least(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise Invalid(f"must be an integer >= {minimum}, got {show(value)}")
        return value

    return check


def int_between(minimum: int, maximum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not (minimum <= value <= maximum)
        ):
            raise Invalid(f"must be an integer from {minimum} to {maximum}, got {show(value)}")
        return value

    return check


def positive_number(value: object) -> float:
    number = _number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise Invalid(f"must be a number > 0, got {show(value)}")
    return number


def ratio(value: object) -> float:
    number = _number(value)
    if number is None or not 0 <= number <= 1:  # nan fails the comparison too
        raise Invalid(f"must be a number from 0 to 1, got {show(value)}")
    return number


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {show(value)}")
    return value


# --- text -----------------------------------------------------------------------------------


def text(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {show(value)}")
    if not value.strip():
        raise Invalid("must not be empty")
    return value


def header_text(value: object) -> str:
    checked = text(value)
    if any(ord(char) < 0x20 or ord(char) >= 0x7F for char in checked):
        raise Invalid(
            "must be printable ASCII without control characters (it is sent as an HTTP "
            f"header), got {show(checked)}"
        )
    return checked


def path(value: object) -> Path:
    checked = text(value)
    if "\0" in checked:
        raise Invalid(f"must be a file path, got {show(checked)}")
    return Path(checked).expanduser()  # made absolute by load_config


# Names appear in URLs, file names and task names: no spaces, no slashes, no leading dot or dash.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def name(value: object) -> str:
    """A page or group name."""
    checked = text(value)
    if not _NAME.fullmatch(checked):
        raise Invalid(
            "must be letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {show(checked)}"
        )
    return checked


def role(value: object) -> Role:
    if value == "active" or value == "archived":
        return value
    raise Invalid(f"must be 'active' or 'archived', got {show(value)}")


def iso_date(value: object) -> date:
    """A TOML date (1979-05-27) or a "YYYY-MM-DD" string; a date with a time is refused."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise Invalid(f"must be a real date, got {show(value)}: {exc}") from None
    raise Invalid(f"must be a date such as '2015-01-01' (YYYY-MM-DD), got {show(value)}")


def array_of(
    check: Check, *, what: str, left_out: str
) -> Callable[[object], tuple[Any, ...]]:
    """A check of a non-empty array whose every item passes `check`, duplicates dropped;
    `left_out` says what leaving the key out means."""

    def check_array(value: object) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise Invalid(f"must be an array of {what}, got {show(value)}")
        if not value:
            # `kinds = []` reads as "none" to some and "all" to others: make the user leave it out
            raise Invalid(f"must list at least one of {what} (leave the key out for {left_out})")
        items: list[Any] = []
        for index, item in enumerate(value):
            try:
                checked = check(item)
            except Invalid as exc:
                raise Invalid(f"item {index}: {exc}") from None
            if checked not in items:
                items.append(checked)
        return tuple(items)

    return check_array


# --- CSS selectors --------------------------------------------------------------------------

_SELECTOR_HINT = (
    "Lexbor cannot parse it (check brackets, quotes, combinators and pseudo-classes; "
    'text matching is written :lexbor-contains("text"), not :contains())'
)


def selector(value: object) -> str:
    """A CSS selector that selectolax's Lexbor engine (the one extraction uses) accepts."""
    checked = text(value)
    if not _selector_parses(checked):
        # Lexbor says only "Can't parse CSS selector."; no position to report
        raise Invalid(f"invalid CSS selector {show(checked)}: {_SELECTOR_HINT}")
    return checked


@functools.lru_cache(maxsize=256)
def _selector_parses(checked: str) -> bool:
    """Lexbor's verdict on a selector, once per distinct one (a config of many pages
    repeats the same few)."""
    try:
        LexborHTMLParser("").css(checked)
    except SelectolaxError:
        return False
    return True
