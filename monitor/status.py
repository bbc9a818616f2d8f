"""`monitor status`: the daemon (running? next run?), the last check, each page.

Reads DATA_DIR/daemon.json (written by the daemon) and monitor.db, read-only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.errors import NoDatabaseYet
from monitor.kinds import PAGE_EVENT_KINDS
from monitor.lock import daemon_holder
from monitor.models import format_time
from monitor.notify.commands import notify_summary, read_statuses, summary_line
from monitor.paths import DataDir
from monitor.render import count as _count
from monitor.schedule import describe_schedule
from monitor.store import EventQuery, Store, open_store
from monitor.store.detail_rows import LinkMemory
from monitor.store.reading import CheckRow, PageRow


def daemon_status(config: Config) -> dict[str, Any]:
    """The daemon (running? next run?), the last check and each page: daemon.json and the DB."""
    data_dir = config.monitor.data_dir
    holder = daemon_holder(data_dir)
    state = _read_state(data_dir)
    pid = _holder_pid(holder)
    if holder is not None and state.get("pid") != pid:
        state = {}  # daemon.json is an earlier daemon's; this one has not written yet
    running = holder is not None
    daemon = {
        "running": running,
        "pid": pid if running else None,
        "started_at": state.get("started_at"),
        "stopped_at": None if running else state.get("stopped_at"),
        "config": state.get("config"),
        "schedule": state.get("schedule") or describe_schedule(config.schedule),
        "next_run_at": state.get("next_run_at") if running else None,
        "checking_since": state.get("checking_since") if running else None,
        "last_cycle": state.get("last_cycle"),
    }
    last_check, pages, links = _database_status(config)
    return {
        "data_dir": str(data_dir),
        "daemon": daemon,
        "last_check": last_check,
        "pages": pages,
        "entry_pages": links,
        "notifications": _notifications(config),
    }


def _notifications(config: Config) -> dict[str, Any] | None:
    """What the outbox holds per [[notify]] target; None without targets."""
    if not config.notify:
        return None
    return notify_summary(read_statuses(config))


def _holder_pid(holder: str | None) -> int | None:
    match = re.search(r"pid (\d+)", holder or "")
    return int(match.group(1)) if match else None


def _read_state(data_dir: Path) -> dict[str, Any]:
    try:
        state = json.loads(DataDir(data_dir).daemon_state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no daemon ran here yet, or the file is not ours
    return state if isinstance(state, dict) else {}


def _database_status(
    config: Config,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any]]:
    """The last check, the configured pages' states and their entry pages, from monitor.db."""
    check: CheckRow | None = None
    rows: dict[str, PageRow] = {}
    links: list[LinkMemory] = []
    since: dict[str, tuple[str, str | None]] = {}
    try:
        store = open_store(config, write=False)
        try:
            check, rows = store.last_check(), {row.name: row for row in store.page_rows()}
            links = store.entry_pages()
            since = _episode_starts(store, [r for r in rows.values() if r.status != "ok"])
        finally:
            store.close()
    except NoDatabaseYet:  # no database, or one being created right now: no check has run yet
        check, rows, links, since = None, {}, [], {}
    last_check = (
        None
        if check is None
        else {
            "check_id": check.id,
            "started_at": format_time(check.started_at),
            "finished_at": check.finished_at and format_time(check.finished_at),
            "pages": list(check.pages),
            "events": check.events,
            "failures": check.failures,
        }
    )
    pages = [_page_status(p.name, rows.get(p.name), since.get(p.name)) for p in config.pages]
    return last_check, pages, entry_pages_status(links)


def entry_pages_status(links: list[LinkMemory]) -> dict[str, Any]:
    """The entry pages still watched: how many were checked, are gone or failing, the next due."""
    watched = [m for m in links if m.next_due_at is not None]
    due = min((m.next_due_at for m in watched if m.next_due_at is not None), default=None)
    return {
        "watched": len(watched),
        "checked": sum(1 for m in watched if m.last_checked_at is not None),
        "gone": sum(1 for m in watched if m.status == "gone"),
        "error": sum(1 for m in watched if m.status == "error"),
        "next_due_at": due and format_time(due),
    }


def _episode_starts(store: Store, rows: list[PageRow]) -> dict[str, tuple[str, str | None]]:
    """When each troubled page's episode began, and its detail: its last page event."""
    starts = {}
    for row in rows:
        found = store.events(EventQuery(pages=[row.name], kinds=PAGE_EVENT_KINDS, limit=1))
        if found and found[0].kind != "page-recovered":
            starts[row.name] = (format_time(found[0].at), found[0].detail)
    return starts


def page_summary(row: PageRow, episode: tuple[str, str | None] | None) -> str:
    """A page's state in words: "anomaly: 3 entries where 22 were normal; held since …"."""
    entries = _count(row.entry_count, "entry", "entries")
    since, detail = episode or (None, None)
    when = f" since {since}" if since else ""
    if row.status == "ok":
        return f"ok: {entries}"
    if row.status == "anomaly":
        # The row keeps the held entries; the count seen is in the detail ("3 entries, …").
        seen = re.match(r"(\d+) entr", detail or row.last_detail or "")
        if seen:
            entries = _count(int(seen[1]), "entry", "entries")
        return (
            f"anomaly: {entries} where {row.normal_count} were normal; "
            f"removals held{when} (check {row.streak})"
        )
    detail = row.last_detail or detail or ("HTTP 404 or 410" if row.status == "gone" else "")
    return f"{row.status}: {detail or 'no detail'}{when}; {entries} kept"


def _page_status(
    name: str, row: PageRow | None, episode: tuple[str, str | None] | None = None
) -> dict[str, Any]:
    if row is None:
        return {"name": name, "status": "unchecked", "last_checked_at": None,
                "last_ok_at": None, "entries": 0, "detail": None, "since": None,
                "summary": "unchecked: not checked yet"}  # fmt: skip
    return {
        "since": episode[0] if episode else None,
        "summary": page_summary(row, episode),
        "name": name,
        "status": row.status,
        "last_checked_at": row.last_checked_at and format_time(row.last_checked_at),
        "last_ok_at": row.last_ok_at and format_time(row.last_ok_at),
        "entries": row.entry_count,
        "detail": row.last_detail,
    }


def format_status(report: dict[str, Any]) -> str:
    """`monitor status` for a person: the daemon, the last check, a line per page."""
    lines = [_daemon_line(report["daemon"], report["data_dir"])]
    check = report["last_check"]
    if check is None:
        lines.append("last check: none yet")
    else:
        lines.append(
            f"last check: #{check['check_id']} at {check['started_at']}: "
            f"{_count(len(check['pages']), 'page')}, {_count(check['events'], 'event')}, "
            f"{_count(check['failures'], 'failure')}"
        )
    cycle = report["daemon"]["last_cycle"]
    if cycle and cycle.get("outcome") != "done":
        when = f" at {cycle['started_at']}" if cycle.get("started_at") else ""
        lines.append(f"last daemon cycle: {cycle['outcome']}{when}: {cycle.get('error')}")
    if report.get("notifications"):
        lines.append(summary_line(report["notifications"]))
    pages = report["pages"]
    if pages:
        lines.append("pages:")
        width = max(len(p["name"]) for p in pages)
        for page in pages:
            line = f"  {page['name']:<{width}}  {page['summary']}"
            if page["last_checked_at"]:
                line += f"; checked {page['last_checked_at']}"
            if page["status"] not in ("ok", "unchecked"):
                line += f", last ok {page['last_ok_at'] or 'never'}"
            lines.append(line)
    links = report.get("entry_pages") or {}
    if links.get("watched"):
        lines.append(
            f"entry pages: {links['checked']} of {links['watched']} checked, {links['gone']} gone, "
            f"{links['error']} in error; next due {links['next_due_at'] or 'none'}"
        )
    return "\n".join(lines)


def _daemon_line(daemon: dict[str, Any], data_dir: str) -> str:
    if "producer" in daemon:  # [cluster]: `monitor run` enqueues, workers check
        if daemon["running"] is None:
            return f"producer: unknown ({daemon['producer_error']})"
        if not daemon["running"]:
            return "producer: not running (no `monitor run` holds the cluster's producer lock)"
        return (f"producer: running ({daemon['producer']}); {daemon['schedule']}; next enqueue "
                f"{daemon['next_run_at'] or 'not known yet'}")  # fmt: skip
    if daemon["running"]:
        since = f", since {daemon['started_at']}" if daemon["started_at"] else ""
        if daemon.get("checking_since"):
            then = f"checking now (since {daemon['checking_since']})"
            if daemon["next_run_at"]:
                then += f", next check {daemon['next_run_at']}"
        else:
            then = f"next check {daemon['next_run_at'] or 'not scheduled'}"
        return (
            f"daemon: running for {data_dir} (pid {daemon['pid']}{since}); "
            f"{daemon['schedule']}; {then}"
        )
    if daemon["stopped_at"]:
        return f"daemon: not running (last one stopped at {daemon['stopped_at']})"
    if daemon["started_at"]:
        return f"daemon: not running (the last one, started {daemon['started_at']}, was killed)"
    return f"daemon: not running for {data_dir}"
