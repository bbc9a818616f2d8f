"""config.toml -> Config: durations, crontab, and errors that name the file and the key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import (
    ALLOWED_KEYS,
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
    crontab_fields,
    load_config,
    parse_duration,
)
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
# Wednesday noon: a fixed clock, so next fire times do not depend on today
WEDNESDAY = datetime(2024, 1, 3, 12, 0, tzinfo=UTC)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # index = crontab number % 7

PAGE = """
[[pages]]
name = "a"
url = "https://example.org/list"
role = "active"
  [pages.select]
  item = ".row"
"""


def write_config(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def section(header: str, line: str) -> str:
    """A config with one key in one table (before the page), the rest valid."""
    return f"[{header}]\n{line}\n{PAGE}"


def page(*lines: str, select: str = 'item = ".row"', name: str = "a") -> str:
    """A config whose one page has the given extra lines (and select table)."""
    body = "\n".join(lines)
    return (
        f'[[pages]]\nname = "{name}"\nurl = "https://example.org/list"\nrole = "active"\n'
        f"{body}\n[pages.select]\n{select}\n"
    )


def bare_page(*lines: str) -> str:
    """A config whose one page has exactly the given lines, nothing else."""
    return "[[pages]]\n" + "\n".join(lines) + "\n"


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("6h", 21_600),
        ("1d", 86_400),
        ("1h30m", 5_400),
        ("1d2h3m4s", 86_400 + 7_200 + 180 + 4),
        ("0s", 0),
        ("90m", 5_400),
    ],
    ids=lambda value: str(value),
)
def test_parse_duration_reads_units(text: str, seconds: float) -> None:
    """A duration string gives its length in seconds, combined units summed."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "6",
        "h",
        "1.5h",
        "-5m",
        "+5m",
        "5 m",
        " 5m",
        "5m ",
        "5m\n",
        "5M",
        "30m1h",
        "1h1h",
        "1w",
        "5mm",
        "six hours",
        "１h",
        "400d",
    ],
    ids=lambda value: repr(value),
)
def test_parse_duration_rejects_anything_else(text: str) -> None:
    """Anything but whole numbers with d/h/m/s units in order is a ValueError naming the text."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 300)), min_size=4, max_size=4))
def test_parse_duration_sums_any_combination(parts: list[int | None]) -> None:
    """Any combination of d, h, m, s parts, in order, adds up to its seconds."""
    if all(part is None for part in parts):
        parts[3] = 0
    text = "".join(f"{n}{unit}" for n, unit in zip(parts, "dhms", strict=True) if n is not None)
    units = (86_400, 3_600, 60, 1)
    expected = sum(n * u for n, u in zip(parts, units, strict=True) if n is not None)
    assert parse_duration(text) == expected


# --- crontab --------------------------------------------------------------------------------


def fire_days(expr: str, start: datetime = WEDNESDAY) -> set[str]:
    """The weekdays on which a crontab fires in the two weeks after `start`."""
    trigger = CronTrigger(**crontab_fields(expr), timezone="UTC")
    days: set[str] = set()
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < start + timedelta(days=14):
        days.add(WEEKDAYS[fire.weekday()])
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return days


@pytest.mark.parametrize("expr", ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "@weekly"])
def test_crontab_sunday_stays_sunday(expr: str) -> None:
    """Crontab's day 0 (and 7) is Sunday, although APScheduler 3.x's day 0 is Monday."""
    trigger = CronTrigger(**crontab_fields(expr), timezone="UTC")
    fire = trigger.get_next_fire_time(None, WEDNESDAY)
    assert fire == datetime(2024, 1, 7, 0, 0, tzinfo=UTC)
    assert fire.weekday() == 6  # Sunday


def test_crontab_weekdays_are_monday_to_friday() -> None:
    """'0 9 * * 1-5' fires at 09:00 Monday to Friday and skips the weekend."""
    assert fire_days("0 9 * * 1-5") == {"mon", "tue", "wed", "thu", "fri"}
    trigger = CronTrigger(**crontab_fields("0 9 * * 1-5"), timezone="UTC")
    friday_after_nine = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, friday_after_nine) == datetime(
        2024, 1, 8, 9, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("expr", "days"),
    [
        ("0 0 * * 1", {"mon"}),
        ("0 0 * * 6", {"sat"}),
        ("0 0 * * 1,3,5", {"mon", "wed", "fri"}),
        ("0 0 * * 0-2", {"sun", "mon", "tue"}),
        ("0 0 * * 5-7", {"fri", "sat", "sun"}),
        ("0 0 * * */2", {"sun", "tue", "thu", "sat"}),
        ("0 0 * * 1-5/2", {"mon", "wed", "fri"}),
        ("0 0 * * 0-7", set(WEEKDAYS)),
        ("0 0 * * mon-fri", {"mon", "tue", "wed", "thu", "fri"}),
        ("0 0 * * SAT,sun", {"sat", "sun"}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_crontab_weekday_forms_keep_their_meaning(expr: str, days: set[str]) -> None:
    """Weekday numbers, names, ranges, lists and steps fire on the days crontab(5) means."""
    assert fire_days(expr) == days


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=8))
def test_crontab_any_weekday_list_keeps_its_days(numbers: list[int]) -> None:
    """Any list of crontab weekday numbers fires on exactly those days."""
    expr = "30 4 * * " + ",".join(str(n) for n in numbers)
    assert fire_days(expr) == {CRONTAB_DAYS[n % 7] for n in numbers}


@pytest.mark.parametrize(
    ("expr", "fields"),
    [
        ("0 */6 * * *", {"minute": "0", "hour": "*/6", "day": "*", "month": "*"}),
        ("*/15 9-17 * * *", {"minute": "*/15", "hour": "9-17", "day": "*", "month": "*"}),
        ("0 0 1 jan,jul *", {"minute": "0", "hour": "0", "day": "1", "month": "1,7"}),
        ("0 0 1-10/3 * *", {"minute": "0", "hour": "0", "day": "1-10/3", "month": "*"}),
        ("@daily", {"minute": "0", "hour": "0", "day": "*", "month": "*"}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_crontab_other_fields_pass_through(expr: str, fields: dict[str, str]) -> None:
    """Minute, hour, day and month keep crontab's meaning; month names become numbers."""
    assert crontab_fields(expr) == {**fields, "day_of_week": "*"}


def test_crontab_every_six_hours_fires_at_0_6_12_18() -> None:
    """'0 */6 * * *' fires at 00:00, 06:00, 12:00 and 18:00."""
    trigger = CronTrigger(**crontab_fields("0 */6 * * *"), timezone="UTC")
    fire = trigger.get_next_fire_time(None, WEDNESDAY - timedelta(hours=12, seconds=1))
    hours = []
    for _ in range(5):
        assert fire is not None
        hours.append(fire.hour)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert hours == [0, 6, 12, 18, 0]


CRON_INVALID = [
    ("", "expected 5 fields"),
    ("0 0 * *", "expected 5 fields"),
    ("0 0 * * * *", "expected 5 fields"),
    ("60 * * * *", "minute 60 is out of range 0-59"),
    ("* 24 * * *", "hour 24 is out of range 0-23"),
    ("0 0 0 * *", "day of month 0 is out of range 1-31"),
    ("0 0 32 * *", "day of month 32 is out of range 1-31"),
    ("0 0 * 13 *", "month 13 is out of range 1-12"),
    ("0 0 * * 8", "day of week 8 is out of range 0-7"),
    ("*/0 * * * *", "must be at least 1"),
    ("5-1 * * * *", "runs backwards"),
    ("x * * * *", "'x' is not a valid minute"),
    ("0 0 * foo *", "'foo' is not a valid month"),
    ("0 0 * * mon-foo", "'foo' is not a valid day of week"),
    ("1.5 * * * *", "'1.5' is not a valid minute term"),
    ("1,,2 * * * *", "'' is not a valid minute term"),
    ("0 0 L * *", "'L' is not a valid day of month"),
    ("0 0 1 * 1", "restricts both day of month and day of week"),
    ("0 0 31 2 *", "never fires"),
    ("*/90 * * * *", "step value (90) is higher"),
    ("@reboot", "unknown macro"),
]


@pytest.mark.parametrize(("expr", "reason"), CRON_INVALID, ids=[repr(c[0]) for c in CRON_INVALID])
def test_crontab_rejects_invalid(expr: str, reason: str) -> None:
    """An invalid crontab is a ValueError quoting the expression and saying what is wrong."""
    with pytest.raises(ValueError) as info:
        crontab_fields(expr)
    assert str(info.value).startswith(f"invalid crontab {expr!r}: ")
    assert reason in str(info.value)


# --- invalid configs ------------------------------------------------------------------------

INVALID = [
    # unknown keys, at every level
    ("unknown-top-level", "colour = 1\n" + PAGE, "colour"),
    ("unknown-monitor", section("monitor", 'colour = "red"'), "monitor.colour"),
    ("unknown-schedule", section("schedule", 'every = "6h"'), "schedule.every"),
    ("unknown-feed", section("feed", 'url = "x"'), "feed.url"),
    ("unknown-page", page('xpath = "//div"'), "pages[0].xpath"),
    ("unknown-select", page(select='item = ".row"\nsummary = "p"'), "pages[0].select.summary"),
    # tables that are not tables
    ("monitor-not-table", "monitor = 3\n" + PAGE, "monitor"),
    ("schedule-not-table", 'schedule = "6h"\n' + PAGE, "schedule"),
    # [monitor]
    ("retries-string", section("monitor", 'retries = "three"'), "monitor.retries"),
    ("retries-bool", section("monitor", "retries = true"), "monitor.retries"),
    ("retries-negative", section("monitor", "retries = -1"), "monitor.retries"),
    ("retries-too-many", section("monitor", "retries = 1000000"), "monitor.retries"),
    (
        "user-agent-not-ascii",
        section("monitor", 'user_agent = "m\u00f6nitor"'),
        "monitor.user_agent",
    ),
    ("retries-float", section("monitor", "retries = 1.5"), "monitor.retries"),
    ("timeout-zero", section("monitor", "timeout = 0"), "monitor.timeout"),
    ("timeout-negative", section("monitor", "timeout = -5"), "monitor.timeout"),
    ("timeout-string", section("monitor", 'timeout = "30"'), "monitor.timeout"),
    ("timeout-bool", section("monitor", "timeout = true"), "monitor.timeout"),
    ("timeout-inf", section("monitor", "timeout = inf"), "monitor.timeout"),
    ("concurrency-zero", section("monitor", "concurrency = 0"), "monitor.concurrency"),
    ("max-bytes-zero", section("monitor", "max_bytes = 0"), "monitor.max_bytes"),
    ("confirm-checks-zero", section("monitor", "confirm_checks = 0"), "monitor.confirm_checks"),
    ("anomaly-ratio-1.5", section("monitor", "anomaly_ratio = 1.5"), "monitor.anomaly_ratio"),
    ("anomaly-ratio-negative", section("monitor", "anomaly_ratio = -0.1"), "monitor.anomaly_ratio"),
    ("anomaly-ratio-nan", section("monitor", "anomaly_ratio = nan"), "monitor.anomaly_ratio"),
    ("anomaly-ratio-string", section("monitor", 'anomaly_ratio = "half"'), "monitor.anomaly_ratio"),
    ("user-agent-empty", section("monitor", 'user_agent = ""'), "monitor.user_agent"),
    ("user-agent-number", section("monitor", "user_agent = 42"), "monitor.user_agent"),
    ("user-agent-newline", section("monitor", 'user_agent = "a\\nb"'), "monitor.user_agent"),
    ("data-dir-number", section("monitor", "data_dir = 5"), "monitor.data_dir"),
    ("data-dir-empty", section("monitor", 'data_dir = ""'), "monitor.data_dir"),
    # [schedule]
    ("interval-words", section("schedule", 'interval = "6 hours"'), "schedule.interval"),
    ("interval-zero", section("schedule", 'interval = "0s"'), "schedule.interval"),
    ("interval-number", section("schedule", "interval = 3600"), "schedule.interval"),
    ("jitter-negative", section("schedule", 'jitter = "-5m"'), "schedule.jitter"),
    ("jitter-bad-unit", section("schedule", 'jitter = "5x"'), "schedule.jitter"),
    (
        "interval-and-cron",
        section("schedule", 'interval = "6h"\ncron = "0 */6 * * *"'),
        "schedule.cron",
    ),
    ("cron-bad-minute", section("schedule", 'cron = "61 * * * *"'), "schedule.cron"),
    ("cron-four-fields", section("schedule", 'cron = "0 0 * *"'), "schedule.cron"),
    ("cron-number", section("schedule", "cron = 5"), "schedule.cron"),
    ("run-at-start-string", section("schedule", 'run_at_start = "yes"'), "schedule.run_at_start"),
    # [feed]
    ("feed-title-number", section("feed", "title = 3"), "feed.title"),
    ("feed-max-entries-zero", section("feed", "max_entries = 0"), "feed.max_entries"),
    ("feed-path-number", section("feed", "path = 1"), "feed.path"),
    # [[pages]]
    ("zero-pages", "[monitor]\nretries = 1\n", "pages"),
    ("pages-empty-array", "pages = []\n", "pages"),
    ("pages-string", 'pages = "active"\n', "pages"),
    ("pages-single-table", '[pages]\nname = "a"\n', "pages"),
    ("pages-not-tables", "pages = [1, 2]\n", "pages[0]"),
    ("name-missing", bare_page('url = "https://example.org/"', 'role = "active"'), "pages[0].name"),
    ("name-empty", page().replace('name = "a"', 'name = ""'), "pages[0].name"),
    ("name-space", page(name="my page"), "pages[0].name"),
    ("name-slash", page(name="../etc"), "pages[0].name"),
    ("name-number", page().replace('name = "a"', "name = 7"), "pages[0].name"),
    ("name-duplicate", page(name="news") + page(name="news"), "pages[1].name"),
    ("name-duplicate-case", page(name="news") + page(name="News"), "pages[1].name"),
    ("url-ftp", page().replace("https://example.org/list", "ftp://x"), "pages[0].url"),
    ("url-not-a-url", page().replace("https://example.org/list", "not a url"), "pages[0].url"),
    ("url-no-host", page().replace("https://example.org/list", "http://"), "pages[0].url"),
    ("url-bad-port", page().replace("example.org/list", "example.org:99999/"), "pages[0].url"),
    ("url-number", page().replace('"https://example.org/list"', "3"), "pages[0].url"),
    ("url-missing", bare_page('name = "a"', 'role = "active"'), "pages[0].url"),
    ("role-unknown", page().replace('role = "active"', 'role = "live"'), "pages[0].role"),
    ("role-missing", page().replace('role = "active"', ""), "pages[0].role"),
    (
        "select-missing",
        bare_page('name = "a"', 'url = "https://x.org/"', 'role = "active"'),
        "pages[0].select",
    ),
    (
        "select-string",
        page('select = ".row"', select="").replace("[pages.select]", ""),
        "pages[0].select",
    ),
    ("item-missing", page(select='title = "h2"'), "pages[0].select.item"),
    ("item-empty", page(select='item = ""'), "pages[0].select.item"),
    ("item-invalid-css", page(select='item = "a["'), "pages[0].select.item"),
    ("title-invalid-css", page(select='item = ".row"\ntitle = "a["'), "pages[0].select.title"),
    ("link-not-string", page(select='item = ".row"\nlink = 3'), "pages[0].select.link"),
    (
        "second-page-item-missing",
        page(name="a") + page(name="b", select='title = "h2"'),
        "pages[1].select.item",
    ),
]


@pytest.mark.parametrize(("text", "keypath"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_config_names_file_and_key(tmp_path: Path, text: str, keypath: str) -> None:
    """An invalid config raises ConfigError reading "FILE: KEY.PATH: problem"."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {keypath}: "), message
    assert len(message) > len(f"{path}: {keypath}: ")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            section("monitor", 'retries = "three"'),
            "monitor.retries: must be an integer from 0 to 10, got 'three'",
        ),
        (
            section("monitor", "retries = true"),
            "monitor.retries: must be an integer from 0 to 10, got true",
        ),
        (page(select='title = "h2"'), "pages[0].select.item: required, not given"),
        (page(name="x") + page(name="x"), "pages[1].name: 'x' is already the name of pages[0]"),
        (
            page().replace("https://example.org/list", "ftp://x"),
            "pages[0].url: must be an absolute http:// or https:// URL with a host, got 'ftp://x'",
        ),
        (
            page().replace("https://example.org/list", "https://u:s3cret@example.org/list"),
            "pages[0].url: must not hold a user name or password: the URL is shown in events, "
            "feeds and the archive, got 'https://u:***@example.org/list'",
        ),
        (
            page().replace("https://example.org/list", "https://example.org:0/list"),
            "pages[0].url: has port 0, which no server listens on, got "
            "'https://example.org:0/list'",
        ),
        (
            section("monitor", "anomaly_ratio = 1.5"),
            "monitor.anomaly_ratio: must be a number from 0 to 1, got 1.5",
        ),
        (
            section("schedule", 'interval = "6h"\ncron = "0 * * * *"'),
            "schedule.cron: cannot be given together with schedule.interval",
        ),
    ],
    ids=["retries-string", "retries-bool", "item-missing", "duplicate", "ftp", "password",
         "port-0", "ratio", "both"],
)
def test_invalid_config_messages_read_well(tmp_path: Path, text: str, message: str) -> None:
    """The messages a user sees for common mistakes are exactly these."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    """A misspelt key is reported with the key it probably meant."""
    path = write_config(tmp_path, section("monitor", "timout = 30"))
    with pytest.raises(ConfigError, match="monitor.timout: unknown key \\(did you mean 'timeout'"):
        load_config(path)


def test_invalid_css_message_says_why(tmp_path: Path) -> None:
    """An invalid selector's message quotes it and says, on one line, that Lexbor refused it."""
    path = write_config(tmp_path, page(select='item = "div["'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "invalid CSS selector 'div['" in str(info.value)
    assert "Lexbor cannot parse it" in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    """A TOML syntax error is a ConfigError naming the file and the line."""
    path = write_config(tmp_path, "[monitor]\nretries = 3\ntimeout = = 4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: invalid TOML: ")
    assert "line 3" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config file that does not exist is a ConfigError naming it."""
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read config file: No such file"):
        load_config(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    """A directory given as the config file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=f"^{tmp_path}: cannot read config file"):
        load_config(tmp_path)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    """A config file that is not UTF-8 text is a ConfigError naming it."""
    path = tmp_path / "config.toml"
    path.write_bytes(b'[feed]\ntitle = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


# --- valid configs --------------------------------------------------------------------------


def test_minimal_config_gets_every_default(tmp_path: Path) -> None:
    """A config with one page and nothing else gets the defaults, data_dir beside the file."""
    path = write_config(tmp_path, PAGE)
    assert load_config(path) == Config(
        path=path,
        monitor=MonitorSettings(data_dir=tmp_path / "snapshots"),
        schedule=ScheduleConfig(interval_s=6 * 3600.0, cron=None, jitter_s=300.0),
        feed=FeedConfig(path=None),
        pages=(
            PageConfig(
                name="a",
                url="https://example.org/list",
                role="active",
                select=Selectors(item=".row"),
            ),
        ),
    )


def test_every_key_given_is_read(tmp_path: Path) -> None:
    """Every key given in the file ends up in its field, with its unit."""
    text = """
[monitor]
data_dir = "/srv/monitor"
user_agent = "test-agent/1"
timeout = 2.5
retries = 0
concurrency = 1
max_bytes = 1000
confirm_checks = 5
anomaly_ratio = 0

[schedule]
interval = "1h30m"
jitter = "0s"
run_at_start = false

[feed]
title = "Changes"
max_entries = 10
path = "/srv/feed.atom"

[[pages]]
name = "Old_list.v2"
url = "http://127.0.0.1:8080/archive?page=1"
role = "archived"
  [pages.select]
  item = "ul > li"
  title = "h2"
  link = "a[href]"
  description = "p.summary"
"""
    config = load_config(write_config(tmp_path, text))
    assert config.monitor == MonitorSettings(
        data_dir=Path("/srv/monitor"),
        user_agent="test-agent/1",
        timeout_s=2.5,
        retries=0,
        concurrency=1,
        max_bytes=1000,
        confirm_checks=5,
        anomaly_ratio=0.0,
    )
    assert config.schedule == ScheduleConfig(interval_s=5400.0, jitter_s=0.0, run_at_start=False)
    assert config.feed == FeedConfig(title="Changes", max_entries=10, path=Path("/srv/feed.atom"))
    assert config.pages == (
        PageConfig(
            name="Old_list.v2",
            url="http://127.0.0.1:8080/archive?page=1",
            role="archived",
            select=Selectors(item="ul > li", title="h2", link="a[href]", description="p.summary"),
        ),
    )


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("retries = 0", "retries", 0),
        ("timeout = 30", "timeout_s", 30.0),
        ("anomaly_ratio = 1", "anomaly_ratio", 1.0),
        ("max_bytes = 10_000_000", "max_bytes", 10_000_000),
    ],
    ids=["retries-zero", "timeout-int", "ratio-one", "max-bytes-underscores"],
)
def test_boundary_values_are_valid(tmp_path: Path, line: str, field: str, value: object) -> None:
    """retries = 0 (no retry), integer timeouts and a ratio of 1 are valid."""
    config = load_config(write_config(tmp_path, section("monitor", line)))
    assert getattr(config.monitor, field) == value
    assert type(getattr(config.monitor, field)) is type(value)


def test_cron_replaces_the_interval(tmp_path: Path) -> None:
    """A cron schedule is kept as written and leaves no interval."""
    path = write_config(tmp_path, section("schedule", 'cron = "0 9 * * 1-5"\njitter = "1m"'))
    assert load_config(path).schedule == ScheduleConfig(
        interval_s=None, cron="0 9 * * 1-5", jitter_s=60.0, run_at_start=True
    )


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data_dir and feed.path in the file resolve against its directory, not the cwd."""
    text = '[monitor]\ndata_dir = "../data"\n[feed]\npath = "out/changes.atom"\n' + PAGE
    path = write_config(tmp_path / "conf", text)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(path)
    assert config.monitor.data_dir == tmp_path / "data"
    assert config.feed.path == tmp_path / "conf" / "out" / "changes.atom"


def test_relative_config_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config named relative to the cwd is recorded, and resolves paths, absolutely."""
    write_config(tmp_path / "conf", PAGE)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/config.toml"))
    assert config.path == tmp_path / "conf" / "config.toml"
    assert config.monitor.data_dir == tmp_path / "conf" / "snapshots"


def test_data_dir_option_overrides_and_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--data-dir replaces [monitor].data_dir and resolves against the working directory."""
    path = write_config(tmp_path / "conf", section("monitor", 'data_dir = "from-file"'))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert load_config(path, data_dir=Path("mine")).monitor.data_dir == tmp_path / "work" / "mine"
    assert load_config(path, data_dir=tmp_path / "abs").monitor.data_dir == tmp_path / "abs"
    assert load_config(path).monitor.data_dir == tmp_path / "conf" / "from-file"


def test_home_directory_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path starting with ~ is under the user's home directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_config(tmp_path, section("monitor", 'data_dir = "~/snaps"'))
    assert load_config(path).monitor.data_dir == tmp_path / "home" / "snaps"


def test_pages_as_inline_tables(tmp_path: Path) -> None:
    """Pages written as an array of inline tables are read like [[pages]] tables."""
    text = 'pages = [{name = "x", url = "https://x.org/", role = "active", select = {item = "li"}}]'
    config = load_config(write_config(tmp_path, text))
    assert config.pages == (PageConfig("x", "https://x.org/", "active", Selectors(item="li")),)


# --- the repository's own config and its documentation --------------------------------------


def test_repository_config_watches_the_two_imls_pages() -> None:
    """The default config.toml loads and watches exactly the active and archived IMLS pages."""
    config = load_config(REPO / "config.toml")
    assert [(p.name, p.url, p.role) for p in config.pages] == [
        ("active", "https://www.imls.gov/issues/national-initiatives", "active"),
        ("archived", "https://www.imls.gov/issues/national-initiatives/archives", "archived"),
    ]
    assert config.monitor.data_dir == REPO / "snapshots"


def test_every_accepted_key_is_documented() -> None:
    """docs/config.md names every key the loader accepts (taken from the loader's own table)."""
    doc = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    needles = [
        f"[{key}]" if table == "" else f"`{table}.{key}`"
        for table, keys in ALLOWED_KEYS.items()
        for key in keys
    ]
    assert len(needles) > 20
    assert [needle for needle in needles if needle not in doc] == []


def test_documented_example_is_the_repository_config() -> None:
    """docs/config.md shows the real config.toml, unchanged."""
    doc = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert (REPO / "config.toml").read_text(encoding="utf-8").strip() in doc


# --- entry pages, layouts, pagination, groups, serve, backfill, notify, cluster ---------------

PAGE_B = PAGE.replace('name = "a"', 'name = "b"').replace('role = "active"', 'role = "archived"')


def detail(*lines: str) -> str:
    """A config whose one page has a [pages.detail] table with the given lines."""
    return PAGE + "  [pages.detail]\n" + "\n".join(lines) + "\n"


def layouts(*tables: str) -> str:
    """A config whose one page has one [[pages.layouts]] table per argument."""
    return PAGE + "".join(f"  [[pages.layouts]]\n{table}\n" for table in tables)


def notify(*lines: str, pages: str = PAGE + PAGE_B) -> str:
    """A config with pages a and b and one [[notify]] table with the given lines."""
    return pages + "[[notify]]\n" + "\n".join(lines) + "\n"


def cluster(**keys: str) -> str:
    """A config with a [cluster] table: the required keys valid unless given here."""
    values = {
        "database": '"postgresql://monitor@db.example.org/monitor"',
        "broker": '"redis://queue.example.org:6379/0"',
        "archive": '"/mnt/archive/warc"',
        **keys,
    }
    lines = [f"{key} = {value}" for key, value in values.items() if value]
    return "[cluster]\n" + "\n".join(lines) + "\n" + PAGE


def test_new_keys_have_their_defaults(tmp_path: Path) -> None:
    """A config that names none of the new keys gets SPEC's defaults for each."""
    config = load_config(write_config(tmp_path, PAGE))
    (only,) = config.pages
    assert (only.layouts, only.max_pages, only.group, only.detail) == ((), 20, "default", None)
    assert only.select.next is None
    assert only.all_layouts == (Selectors(item=".row"),)
    assert config.monitor.warc_max_bytes == 1_000_000_000
    assert config.feed.base_url is None
    assert config.serve == ServeConfig(allowed_hosts=())
    assert config.backfill == BackfillConfig(
        cdx_url="https://web.archive.org/cdx/search/cdx",
        memento_url="https://web.archive.org/web/{timestamp}id_/{url}",
        rate_per_minute=15.0,
        since=None,
        hold_for_s=90 * 86400.0,
    )
    assert config.notify == ()
    assert config.cluster is None


def test_empty_tables_give_the_defaults(tmp_path: Path) -> None:
    """An empty [pages.detail], [serve], [backfill] or [[notify]]-free file keeps every default."""
    text = "[serve]\n[backfill]\n" + detail()
    config = load_config(write_config(tmp_path, text))
    assert config.pages[0].detail == DetailConfig(every_s=86400.0, keep_checking_s=30 * 86400.0)
    assert config.serve == ServeConfig()
    assert config.backfill == BackfillConfig()


GOOD = [
    ("warc-max-bytes", section("monitor", "warc_max_bytes = 1"), "monitor.warc_max_bytes", 1),
    (
        "base-url-slash-added",
        section("feed", 'base_url = "https://example.org/imls"'),
        "feed.base_url",
        "https://example.org/imls/",
    ),
    (
        "base-url-slash-kept",
        section("feed", 'base_url = "http://127.0.0.1:8080/"'),
        "feed.base_url",
        "http://127.0.0.1:8080/",
    ),
    ("max-pages", page("max_pages = 1"), "pages[0].max_pages", 1),
    ("group", page('group = "imls.v2"'), "pages[0].group", "imls.v2"),
    (
        "select-next",
        page(select='item = ".row"\nnext = "a[rel=next]"'),
        "pages[0].select.next",
        "a[rel=next]",
    ),
    # Lexbor, as a browser, closes what the end of the selector leaves open
    ("select-unclosed-bracket", page(select='item = "[href"'), "pages[0].select.item", "[href"),
    (
        "select-lexbor-contains",
        page(select='item = "li:lexbor-contains(\\"x\\")"'),
        "pages[0].select.item",
        'li:lexbor-contains("x")',
    ),
    ("detail-every", detail('every = "6h"'), "pages[0].detail.every_s", 21_600.0),
    ("detail-content", detail('content = "main"'), "pages[0].detail.content", "main"),
    (
        "detail-keep-checking",
        detail('keep_checking = "0s"'),
        "pages[0].detail.keep_checking_s",
        0.0,
    ),
    (
        "allowed-hosts",
        section("serve", 'allowed_hosts = ["Monitor.Example.org", "10.0.0.2"]'),
        "serve.allowed_hosts",
        ("monitor.example.org", "10.0.0.2"),
    ),
    (
        "allowed-hosts-ipv6",
        section("serve", 'allowed_hosts = ["[::1]"]'),
        "serve.allowed_hosts",
        ("[::1]",),
    ),
    (
        "cdx-url",
        section("backfill", 'cdx_url = "http://127.0.0.1:8080/cdx"'),
        "backfill.cdx_url",
        "http://127.0.0.1:8080/cdx",
    ),
    (
        "memento-url",
        section("backfill", 'memento_url = "http://127.0.0.1:8080/web/{timestamp}id_/{url}"'),
        "backfill.memento_url",
        "http://127.0.0.1:8080/web/{timestamp}id_/{url}",
    ),
    ("rate-float", section("backfill", "rate_per_minute = 0.5"), "backfill.rate_per_minute", 0.5),
    (
        "since-string",
        section("backfill", 'since = "2015-01-01"'),
        "backfill.since",
        date(2015, 1, 1),
    ),
    (
        "since-toml-date",
        section("backfill", "since = 2015-01-01"),
        "backfill.since",
        date(2015, 1, 1),
    ),
    ("hold-for", section("backfill", 'hold_for = "30d"'), "backfill.hold_for_s", 30 * 86400.0),
    (
        "notify-json",
        notify('url = "json://localhost:8080/hook"'),
        "notify[0].url",
        "json://localhost:8080/hook",
    ),
    (
        "notify-mail",
        notify('url = "mailtos://user:pass@example.org"'),
        "notify[0].url",
        "mailtos://user:pass@example.org",
    ),
    (
        "notify-kinds",
        notify('url = "json://h/"', 'kinds = ["link-gone", "removed", "removed"]'),
        "notify[0].kinds",
        ("link-gone", "removed"),
    ),
    ("notify-pages", notify('url = "json://h/"', 'pages = ["b"]'), "notify[0].pages", ("b",)),
    ("notify-digest", notify('url = "json://h/"', "digest = true"), "notify[0].digest", True),
    (
        "notify-give-up",
        notify('url = "json://h/"', 'give_up_after = "1h"'),
        "notify[0].give_up_after_s",
        3600.0,
    ),
    (
        "cluster-postgres",
        cluster(database='"postgres://u:pw@db:5432/m"'),
        "cluster.database",
        "postgres://u:pw@db:5432/m",
    ),
    (
        "cluster-socket",
        cluster(database='"postgresql:///monitor"'),
        "cluster.database",
        "postgresql:///monitor",
    ),
    (
        "cluster-rediss",
        cluster(broker='"rediss://:pw@q.example.org:6380/2"'),
        "cluster.broker",
        "rediss://:pw@q.example.org:6380/2",
    ),
    (
        "cluster-amqp",
        cluster(broker='"amqp://guest@rabbit//"'),
        "cluster.broker",
        "amqp://guest@rabbit//",
    ),
    ("cluster-archive", cluster(), "cluster.archive", Path("/mnt/archive/warc")),
    ("cluster-timeout-default", cluster(), "cluster.task_timeout_s", 600.0),
    ("cluster-timeout", cluster(task_timeout='"1h"'), "cluster.task_timeout_s", 3600.0),
]


def _lookup(config: Config, dotted: str) -> object:
    """The value at a key path such as `pages[0].detail.every_s` in a loaded config."""
    value: object = config
    for part in dotted.split("."):
        name, _, index = part.partition("[")
        value = getattr(value, name)
        if index:
            value = value[int(index.rstrip("]"))]  # type: ignore[index]
    return value


@pytest.mark.parametrize(
    ("text", "where", "expected"), [c[1:] for c in GOOD], ids=[c[0] for c in GOOD]
)
def test_new_keys_read_good_values(tmp_path: Path, text: str, where: str, expected: object) -> None:
    """Each new key given a good value ends up in its field, with its unit and type."""
    value = _lookup(load_config(write_config(tmp_path, text)), where)
    assert value == expected
    assert type(value) is type(expected)


def test_layouts_are_read_in_order(tmp_path: Path) -> None:
    """[[pages.layouts]] tables become Selectors, tried after `select`, in file order."""
    text = layouts('item = "li"\ntitle = "h3"', 'item = "tr"\nnext = ".pager a"')
    (only,) = load_config(write_config(tmp_path, text)).pages
    assert only.layouts == (Selectors(item="li", title="h3"), Selectors(item="tr", next=".pager a"))
    assert only.all_layouts == (Selectors(item=".row"), *only.layouts)


def test_notify_targets_are_read_in_order(tmp_path: Path) -> None:
    """Each [[notify]] table is one target, in file order, with its defaults."""
    text = notify('url = "json://h/one"') + '[[notify]]\nurl = "ntfy://topic"\ndigest = true\n'
    assert load_config(write_config(tmp_path, text)).notify == (
        NotifyTarget(url="json://h/one"),
        NotifyTarget(url="ntfy://topic", digest=True, give_up_after_s=7 * 86400.0),
    )


def test_relative_cluster_archive_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative [cluster].archive resolves against the config file's directory, as data_dir."""
    path = write_config(tmp_path / "conf", cluster(archive='"../warc"'))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(path, data_dir=Path("local"))
    assert config.cluster == ClusterConfig(
        database="postgresql://monitor@db.example.org/monitor",
        broker="redis://queue.example.org:6379/0",
        archive=tmp_path / "warc",
    )


INVALID_NEW = [
    # [monitor] and [feed]
    ("warc-max-bytes-zero", section("monitor", "warc_max_bytes = 0"), "monitor.warc_max_bytes"),
    (
        "warc-max-bytes-string",
        section("monitor", 'warc_max_bytes = "1GB"'),
        "monitor.warc_max_bytes",
    ),
    ("base-url-ftp", section("feed", 'base_url = "ftp://example.org/"'), "feed.base_url"),
    ("base-url-relative", section("feed", 'base_url = "/imls/"'), "feed.base_url"),
    ("base-url-query", section("feed", 'base_url = "https://example.org/?a=1"'), "feed.base_url"),
    ("base-url-fragment", section("feed", 'base_url = "https://example.org/#x"'), "feed.base_url"),
    (
        "base-url-password",
        section("feed", 'base_url = "https://u:pw@example.org/"'),
        "feed.base_url",
    ),
    # [[pages]]
    ("max-pages-zero", page("max_pages = 0"), "pages[0].max_pages"),
    ("max-pages-float", page("max_pages = 2.0"), "pages[0].max_pages"),
    ("group-space", page('group = "my group"'), "pages[0].group"),
    ("group-empty", page('group = ""'), "pages[0].group"),
    ("next-invalid-css", page(select='item = ".row"\nnext = "a,,b"'), "pages[0].select.next"),
    ("select-unknown-pseudo", page(select='item = "li:contains(x)"'), "pages[0].select.item"),
    # [[pages.layouts]]
    ("layouts-table", PAGE + '  [pages.layouts]\n  item = "li"\n', "pages[0].layouts"),
    ("layouts-string", page('layouts = "li"'), "pages[0].layouts"),
    ("layouts-not-tables", page("layouts = [1]"), "pages[0].layouts[0]"),
    ("layouts-item-missing", layouts('title = "h2"'), "pages[0].layouts[0].item"),
    (
        "layouts-second-bad",
        layouts('item = "li"', 'item = "li"\ntitle = "a["'),
        "pages[0].layouts[1].title",
    ),
    ("layouts-unknown-key", layouts('item = "li"\nsummary = "p"'), "pages[0].layouts[0].summary"),
    # [pages.detail]
    ("detail-not-table", page("detail = true"), "pages[0].detail"),
    ("detail-unknown-key", detail('interval = "1d"'), "pages[0].detail.interval"),
    ("detail-every-zero", detail('every = "0s"'), "pages[0].detail.every"),
    ("detail-every-number", detail("every = 86400"), "pages[0].detail.every"),
    ("detail-content-invalid", detail('content = "main["'), "pages[0].detail.content"),
    ("detail-content-empty", detail('content = " "'), "pages[0].detail.content"),
    (
        "detail-keep-checking-bad",
        detail('keep_checking = "1 month"'),
        "pages[0].detail.keep_checking",
    ),
    # [serve]
    ("serve-not-table", "serve = 1\n" + PAGE, "serve"),
    ("serve-unknown-key", section("serve", 'host = "0.0.0.0"'), "serve.host"),
    (
        "allowed-hosts-string",
        section("serve", 'allowed_hosts = "example.org"'),
        "serve.allowed_hosts",
    ),
    ("allowed-hosts-empty", section("serve", "allowed_hosts = []"), "serve.allowed_hosts"),
    (
        "allowed-hosts-url",
        section("serve", 'allowed_hosts = ["https://example.org"]'),
        "serve.allowed_hosts",
    ),
    (
        "allowed-hosts-port",
        section("serve", 'allowed_hosts = ["example.org:8080"]'),
        "serve.allowed_hosts",
    ),
    ("allowed-hosts-number", section("serve", "allowed_hosts = [1]"), "serve.allowed_hosts"),
    # [backfill]
    ("backfill-unknown-key", section("backfill", 'until = "2020-01-01"'), "backfill.until"),
    ("cdx-url-bad", section("backfill", 'cdx_url = "web.archive.org/cdx"'), "backfill.cdx_url"),
    (
        "memento-no-timestamp",
        section("backfill", 'memento_url = "https://a.org/web/{url}"'),
        "backfill.memento_url",
    ),
    (
        "memento-no-url",
        section("backfill", 'memento_url = "https://a.org/web/{timestamp}/"'),
        "backfill.memento_url",
    ),
    (
        "memento-other-field",
        section("backfill", 'memento_url = "https://a.org/{x}/{timestamp}/{url}"'),
        "backfill.memento_url",
    ),
    (
        "memento-not-http",
        section("backfill", 'memento_url = "ftp://a.org/{timestamp}/{url}"'),
        "backfill.memento_url",
    ),
    ("rate-zero", section("backfill", "rate_per_minute = 0"), "backfill.rate_per_minute"),
    ("rate-string", section("backfill", 'rate_per_minute = "15"'), "backfill.rate_per_minute"),
    ("since-datetime", section("backfill", "since = 2015-01-01T00:00:00Z"), "backfill.since"),
    ("since-not-a-date", section("backfill", 'since = "2015-02-30"'), "backfill.since"),
    ("since-other-format", section("backfill", 'since = "01/02/2015"'), "backfill.since"),
    ("since-number", section("backfill", "since = 2015"), "backfill.since"),
    ("hold-for-number", section("backfill", "hold_for = 90"), "backfill.hold_for"),
    # [[notify]]
    ("notify-table", PAGE + '[notify]\nurl = "json://h/"\n', "notify"),
    ("notify-not-tables", 'notify = ["json://h/"]\n' + PAGE, "notify[0]"),
    ("notify-url-missing", notify("digest = true"), "notify[0].url"),
    ("notify-url-number", notify("url = 3"), "notify[0].url"),
    ("notify-url-no-scheme", notify('url = "example.org"'), "notify[0].url"),
    ("notify-url-unknown-service", notify('url = "bogus://example.org"'), "notify[0].url"),
    ("notify-url-missing-parts", notify('url = "mailto://"'), "notify[0].url"),
    ("notify-unknown-key", notify('url = "json://h/"', 'events = ["added"]'), "notify[0].events"),
    ("notify-kinds-unknown", notify('url = "json://h/"', 'kinds = ["deleted"]'), "notify[0].kinds"),
    ("notify-kinds-empty", notify('url = "json://h/"', "kinds = []"), "notify[0].kinds"),
    ("notify-kinds-string", notify('url = "json://h/"', 'kinds = "added"'), "notify[0].kinds"),
    ("notify-pages-unknown", notify('url = "json://h/"', 'pages = ["c"]'), "notify[0].pages"),
    ("notify-pages-case", notify('url = "json://h/"', 'pages = ["A"]'), "notify[0].pages"),
    ("notify-digest-string", notify('url = "json://h/"', 'digest = "yes"'), "notify[0].digest"),
    (
        "notify-give-up-zero",
        notify('url = "json://h/"', 'give_up_after = "0s"'),
        "notify[0].give_up_after",
    ),
    ("notify-second-bad", notify('url = "json://h/"') + "[[notify]]\nurl = 1\n", "notify[1].url"),
    # [cluster]
    ("cluster-not-table", "cluster = 1\n" + PAGE, "cluster"),
    ("cluster-unknown-key", cluster(workers="4"), "cluster.workers"),
    ("cluster-database-missing", cluster(database=""), "cluster.database"),
    ("cluster-broker-missing", cluster(broker=""), "cluster.broker"),
    ("cluster-archive-missing", cluster(archive=""), "cluster.archive"),
    ("cluster-database-mysql", cluster(database='"mysql://db/monitor"'), "cluster.database"),
    ("cluster-database-sqlite", cluster(database='"monitor.db"'), "cluster.database"),
    (
        "cluster-database-bad-port",
        cluster(database='"postgresql://db:99999/m"'),
        "cluster.database",
    ),
    ("cluster-database-bare", cluster(database='"postgresql://"'), "cluster.database"),
    ("cluster-broker-http", cluster(broker='"http://queue:6379/0"'), "cluster.broker"),
    ("cluster-broker-no-host", cluster(broker='"redis://"'), "cluster.broker"),
    ("cluster-broker-redis-path", cluster(broker='"redis://queue/zero"'), "cluster.broker"),
    ("cluster-archive-number", cluster(archive="3"), "cluster.archive"),
    ("cluster-timeout-zero", cluster(task_timeout='"0s"'), "cluster.task_timeout"),
]


@pytest.mark.parametrize(
    ("text", "keypath"), [c[1:] for c in INVALID_NEW], ids=[c[0] for c in INVALID_NEW]
)
def test_invalid_new_key_names_file_and_key(tmp_path: Path, text: str, keypath: str) -> None:
    """A bad value of a new key raises ConfigError reading "FILE: KEY.PATH: problem"."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {keypath}: "), message
    assert len(message) > len(f"{path}: {keypath}: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (layouts('title = "h2"'), "pages[0].layouts[0].item: required, not given"),
        (cluster(database=""), "cluster.database: required, not given"),
        (
            cluster(database='"postgresql://u:pw@db:99999/m"'),
            "cluster.database: has a port that is not a number from 0 to 65535, "
            "got 'postgresql://u:***@db:99999/m'",
        ),
        (
            notify('url = "json://h/"', 'pages = ["c"]'),
            "notify[0].pages: 'c' is not a configured page (pages: a, b)",
        ),
        (
            notify('url = "json://h/"', 'pages = ["A"]'),
            "notify[0].pages: 'A' is not a configured page (did you mean 'a'? pages: a, b)",
        ),
        (
            notify('url = "json://h/"', "kinds = []"),
            "notify[0].kinds: must list at least one of event kinds "
            "(leave the key out for every kind)",
        ),
        (
            section("serve", "allowed_hosts = []"),
            "serve.allowed_hosts: must list at least one of host names "
            "(leave the key out for only the bound address and localhost)",
        ),
        (
            section("feed", 'base_url = "https://example.org/?a=1"'),
            "feed.base_url: must have no query or fragment (links are added to it), "
            "got 'https://example.org/?a=1'",
        ),
        (
            section("backfill", 'memento_url = "https://a.org/web/{url}"'),
            "backfill.memento_url: must contain {timestamp}, got 'https://a.org/web/{url}'",
        ),
        (
            cluster(broker='"http://u:pw@queue/0"'),
            "cluster.broker: must be a redis://, rediss://, amqp:// or amqps:// URL with a host, "
            "such as 'redis://queue.example.org:6379/0', got 'http://u:***@queue/0'",
        ),
    ],
    ids=[
        "layout-item",
        "cluster-db",
        "cluster-db-port",
        "notify-page",
        "notify-page-case",
        "kinds-empty",
        "allowed-hosts-empty",
        "base-url-query",
        "memento",
        "broker-redacted",
    ],
)
def test_new_key_messages_read_well(tmp_path: Path, text: str, message: str) -> None:
    """The messages a user sees for common mistakes in the new tables are exactly these."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


SECRET = "hunter2"
LEAKY = [
    ("database", cluster(database=f'"mysql://monitor:{SECRET}@db/monitor"')),
    ("database-query", cluster(database=f'"mysql://db/monitor?password={SECRET}"')),
    ("broker", cluster(broker=f'"redis://:{SECRET}@queue/nope"')),
    ("broker-scheme", cluster(broker=f'"http://u:{SECRET}@queue/0"')),
    ("page-url", page().replace("https://example.org/list", f"ftp://u:{SECRET}@x")),
    ("base-url", section("feed", f'base_url = "https://u:{SECRET}@example.org/"')),
    ("notify-service", notify(f'url = "bogus://u:{SECRET}@example.org"')),
    ("notify-parts", notify(f'url = "slack://{SECRET}"')),
]


@pytest.mark.parametrize("text", [c[1] for c in LEAKY], ids=[c[0] for c in LEAKY])
def test_messages_never_show_a_secret(tmp_path: Path, text: str) -> None:
    """A password or token in a bad URL never appears in the error message."""
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert SECRET not in str(info.value)


def test_repository_config_checks_entry_pages_daily() -> None:
    """The default config checks the own page of every entry of both IMLS pages once a day."""
    config = load_config(REPO / "config.toml")
    assert [page.detail for page in config.pages] == [DetailConfig(every_s=86400.0)] * 2
    assert config.notify == () and config.cluster is None
