"""config.toml -> Config: durations, crontab, and errors that name the file and the key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import (
    ALLOWED_KEYS,
    Config,
    FeedConfig,
    MonitorSettings,
    PageConfig,
    ScheduleConfig,
    Selectors,
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
    ("item-invalid-css", page(select='item = "[href"'), "pages[0].select.item"),
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
            section("monitor", "anomaly_ratio = 1.5"),
            "monitor.anomaly_ratio: must be a number from 0 to 1, got 1.5",
        ),
        (
            section("schedule", 'interval = "6h"\ncron = "0 * * * *"'),
            "schedule.cron: cannot be given together with schedule.interval",
        ),
    ],
    ids=["retries-string", "retries-bool", "item-missing", "duplicate", "ftp", "ratio", "both"],
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
    """An invalid selector's message quotes it and gives soupsieve's reason on one line."""
    path = write_config(tmp_path, page(select='item = "div["'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "invalid CSS selector 'div['" in str(info.value)
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
