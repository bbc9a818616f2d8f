"""config.toml -> Config: the only reader of TOML; everything past it is typed and valid."""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from monitor.config import rules
from monitor.config.model import (
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
from monitor.config.rules import ALLOWED_KEYS, REQUIRED_KEYS, Rules
from monitor.config.values import Invalid, show
from monitor.errors import ConfigError


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
        raise _error(file, keypath, f"must be a table ({header}), got {show(value)}")
    return value


def _as_tables(file: Path, keypath: str, value: object, header: str) -> list[object]:
    """An array of tables ([[header]]); each item is checked to be a table by its reader."""
    if not isinstance(value, list):
        raise _error(file, keypath, f"must be an array of tables ({header}), got {show(value)}")
    return value


def _fields(file: Path, keypath: str, raw: Mapping[str, object], rules: Rules) -> dict[str, Any]:
    """The dataclass fields set by the keys given in one table, each value checked."""
    values: dict[str, Any] = {}
    for key, (field_name, check) in rules.items():
        if key in raw:
            try:
                values[field_name] = check(raw[key])
            except Invalid as exc:
                raise _error(file, _join(keypath, key), str(exc)) from None
    return values


def _table(
    file: Path, keypath: str, raw: object, table: str, header: str, rules: Rules
) -> dict[str, Any]:
    """The fields of one table whose keys are all in `rules`, after checking its keys."""
    checked = _as_table(file, keypath, raw, header)
    _check_keys(file, table, keypath, checked)
    return _fields(file, keypath, checked, rules)


def _section(file: Path, raw: Mapping[str, object], name: str) -> dict[str, Any]:
    """The fields of one top-level table ([monitor], [schedule], ...); {} when absent."""
    table = _as_table(file, name, raw.get(name, {}), f"[{name}]")
    if name == "schedule" and "interval" in table and "cron" in table:
        _check_keys(file, name, name, table)
        raise _error(file, "schedule.cron", "cannot be given together with schedule.interval")
    values = _table(file, name, table, name, f"[{name}]", rules.SECTIONS[name])
    if name == "schedule" and "cron" in table:
        values["interval_s"] = None
    return values


def _page(file: Path, keypath: str, raw: object) -> PageConfig:
    table = _as_table(file, keypath, raw, "[[pages]]")
    _check_keys(file, "pages", keypath, table)
    values = _fields(file, keypath, table, rules.PAGE)
    select = Selectors(
        **_table(
            file,
            f"{keypath}.select",
            table["select"],
            "pages.select",
            "[pages.select]",
            rules.SELECT,
        )
    )
    layouts = tuple(
        Selectors(
            **_table(
                file,
                f"{keypath}.layouts[{index}]",
                item,
                "pages.layouts",
                "[[pages.layouts]]",
                rules.SELECT,
            )
        )
        for index, item in enumerate(
            _as_tables(file, f"{keypath}.layouts", table.get("layouts", []), "[[pages.layouts]]")
        )
    )
    detail = None
    if "detail" in table:
        detail = DetailConfig(
            **_table(
                file,
                f"{keypath}.detail",
                table["detail"],
                "pages.detail",
                "[pages.detail]",
                rules.DETAIL,
            )
        )
    return PageConfig(**values, select=select, layouts=layouts, detail=detail)


def _pages(file: Path, raw: Mapping[str, object]) -> tuple[PageConfig, ...]:
    if "pages" not in raw:
        raise _error(file, "pages", "required, not given: add at least one [[pages]] table")
    value = _as_tables(file, "pages", raw["pages"], "[[pages]]")
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


def _notify(
    file: Path, raw: Mapping[str, object], pages: tuple[PageConfig, ...]
) -> tuple[NotifyTarget, ...]:
    """The [[notify]] targets, each `pages` name checked against the pages configured."""
    names = [page.name for page in pages]
    targets: list[NotifyTarget] = []
    for index, item in enumerate(_as_tables(file, "notify", raw.get("notify", []), "[[notify]]")):
        keypath = f"notify[{index}]"
        target = NotifyTarget(**_table(file, keypath, item, "notify", "[[notify]]", rules.NOTIFY))
        for name in target.pages:
            if name not in names:
                folded = [known for known in names if known.lower() == name.lower()]
                close = folded or difflib.get_close_matches(name, names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise _error(
                    file,
                    f"{keypath}.pages",
                    f"{name!r} is not a configured page ({hint}pages: {', '.join(names)})",
                )
        targets.append(target)
    return tuple(targets)


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
    serve = ServeConfig(**_section(file, raw, "serve"))
    backfill = BackfillConfig(**_section(file, raw, "backfill"))
    notify = _notify(file, raw, pages)
    cluster = None
    if "cluster" in raw:
        cluster = ClusterConfig(**_section(file, raw, "cluster"))
        cluster = replace(cluster, archive=_absolute(file.parent, cluster.archive))
    if data_dir is None:
        monitor = replace(monitor, data_dir=_absolute(file.parent, monitor.data_dir))
    else:
        monitor = replace(monitor, data_dir=_absolute(Path.cwd(), data_dir.expanduser()))
    if feed.path is not None:
        feed = replace(feed, path=_absolute(file.parent, feed.path))
    return Config(
        path=file,
        monitor=monitor,
        schedule=schedule,
        feed=feed,
        pages=pages,
        serve=serve,
        backfill=backfill,
        notify=notify,
        cluster=cluster,
    )
