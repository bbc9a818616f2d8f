"""The command line (click): parse, call one function, print. No logic here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from monitor import __version__
from monitor.config import Config
from monitor.durable import write_atomically
from monitor.errors import ConfigError, MonitorError
from monitor.feed import FEED_FORMATS, FeedFormat, render_feed
from monitor.models import ENTRY_STATES, EVENT_KINDS, format_time, parse_time, utc_now
from monitor.paths import warc_dir
from monitor.publish import feed_info
from monitor.render import clip, count, describe_event
from monitor.store import EventQuery, LinkMemory, Store
from monitor.store import open_store as _open_store

if TYPE_CHECKING:
    from monitor.cluster.settings import ClusterSetup

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep --config/--data-dir wherever they were given; an explicit value wins."""
    if value is None or param.name is None:
        return
    source = ctx.get_parameter_source(param.name)
    explicit = source == click.core.ParameterSource.COMMANDLINE
    if explicit or param.name not in ctx.meta:
        ctx.meta[param.name] = value
        ctx.meta[f"{param.name}_explicit"] = explicit or ctx.meta.get(f"{param.name}_explicit")


def common_options(f: F) -> F:
    """--config and --data-dir, accepted before or after the subcommand."""
    f = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        callback=_remember,
        help="Data directory (WARC files, monitor.db); overrides [monitor].data_dir.",
    )(f)
    f = click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="MONITOR_CONFIG",
        expose_value=False,
        callback=_remember,
        help="Config file [default: ./config.toml, or $MONITOR_CONFIG].",
    )(f)
    return f


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")(f)


def csv_option(f: F) -> F:
    return click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")(f)


def get_config() -> Config:
    """Load the config named by --config / $MONITOR_CONFIG / ./config.toml ([cluster] too)."""
    return get_setup().config


def get_setup() -> ClusterSetup:
    """get_config's Config with its [cluster] and page groups (imports no cluster library)."""
    from monitor.cluster.settings import load_setup

    meta = click.get_current_context().meta
    path = meta.get("config") or Path("config.toml")
    data_dir = meta.get("data_dir")
    return load_setup(Path(path), data_dir=Path(data_dir).absolute() if data_dir else None)


def open_store(config: Config) -> Store:
    """The store, read-only, closed when the command ends (a PostgreSQL session too)."""
    store = _open_store(config, write=False)
    click.get_current_context().call_on_close(store.close)
    return store


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


class MonitorGroup(click.Group):
    """Turns MonitorError into `Error: …` on stderr and its exit code, with no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=MonitorGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="monitor")
@common_options
def cli() -> None:
    """Watch listing pages, archive what the server sent (WARC), and log every change.

    Each check fetches the configured pages, archives the responses under
    DATA_DIR/warc/, extracts the entries, and records every version and every
    event (added, changed, archived, restored, removed, page-*) in
    DATA_DIR/monitor.db.

    \b
    Example:
        monitor check                 # one check of every page now
        monitor log --kind archived   # what moved to the archive
        monitor entries --state active
    """


# -- check --------------------------------------------------------------------


@cli.command()
@click.option(
    "--page", "pages", multiple=True, metavar="NAME", help="Check only this page (repeatable)."
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Seconds to wait if another check holds the data directory.",
)
@click.option(
    "--strict", is_flag=True, help="Exit 4 when a page is in page-anomaly (and none in error)."
)
@json_option
@common_options
def check(pages: tuple[str, ...], wait: float, strict: bool, as_json: bool) -> None:
    """Run one check cycle now: fetch, archive, extract, classify, store.

    Exit status: 0 every page was fetched and extracted (an anomaly included); 1 a
    page is in error or gone (the other pages were still recorded); 2 usage or
    config error; 3 another check holds the data directory; 4 with --strict, a
    page is in page-anomaly. With --json, stdout carries only the events.

    \b
    Example:
        monitor check
        monitor check --page archived --json
        monitor check --strict || echo "look at monitor status"
    """
    from monitor.check import run_check
    from monitor.progress import ProgressLine
    from monitor.tables import baseline_lines, colour_on, event_line

    config = get_config()
    new_pages = _unchecked_pages(config)
    names = [p.name for p in config.pages if not pages or p.name in pages]
    with ProgressLine(names, enabled=sys.stderr.isatty()) as progress:
        report = run_check(config, page_names=pages, wait_s=wait, progress=progress)
    colour = colour_on()
    for event in report.events:
        click.echo(json.dumps(event.to_json(), ensure_ascii=False) if as_json
                   else event_line(event, colour=colour), color=colour)  # fmt: skip
    states = [(p.name, p.status, len(p.members)) for p in report.pages]
    for line in baseline_lines(states, new_pages):
        click.echo(line, err=True)
    summary = (
        f"{len(report.pages)} page{'s' if len(report.pages) != 1 else ''} checked "
        f"in {report.duration_s:.1f}s: {count(len(report.events), 'event')}"
    )
    if report.failed_pages:
        summary += f"; in error or gone: {', '.join(report.failed_pages)}"
    if report.anomalous_pages:
        summary += f"; anomalous: {', '.join(report.anomalous_pages)} (see `monitor status`)"
    click.echo(summary, err=True)
    if report.feed_error:
        click.echo(f"Error: {report.feed_error}", err=True)
    for line in report.notify.lines() if report.notify else ():
        click.echo(line, err=True)  # a failed delivery is retried later: no exit status
    code = report.exit_code
    sys.exit(4 if strict and code == 0 and report.anomalous_pages else code)


def _unchecked_pages(config: Config) -> set[str]:
    """The configured pages no check has recorded yet (all of them before the first check)."""
    from monitor.errors import StoreError

    try:
        store = _open_store(config, write=False)
    except StoreError:
        return {p.name for p in config.pages}
    try:
        known = {row.name for row in store.page_rows() if row.status != "new"}
    finally:
        store.close()
    return {p.name for p in config.pages} - known


# -- backfill -----------------------------------------------------------------


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (e.g. 2015-01-01)") from None


@cli.command()
@click.option(
    "--page", "pages", multiple=True, metavar="NAME", help="Import only this page (repeatable)."
)
@click.option("--since", callback=_date, metavar="DATE", help="Only captures from this day on.")
@click.option("--until", callback=_date, metavar="DATE", help="Only captures up to this day.")
@json_option
@common_options
def backfill(pages: tuple[str, ...], since: date | None, until: date | None, as_json: bool) -> None:
    """Import the pages' history from a web archive ([backfill]: Wayback or any CDX server).

    Captures already imported are not fetched again; the imported history is derived
    afresh from all of them each run, and never changes a live event. Interrupted, it
    keeps what it archived: run it again to go on. With --json, stdout carries the
    imported events new to this run, one JSON object per line.

    \b
    Example:
        monitor backfill --since 2015-01-01
        monitor backfill --page archived --json
    """
    from monitor.backfill.run import run_backfill

    config = get_config()
    show = sys.stderr.isatty()
    try:
        report = run_backfill(
            config, page_names=pages, since=since, until=until,
            progress=_backfill_progress() if show else None,
        )  # fmt: skip
    except KeyboardInterrupt:
        click.echo("\nInterrupted: what was archived is kept; run again to go on.", err=True)
        sys.exit(130)
    if show:
        click.echo("\r\033[K", nl=False, err=True)
    for event in report.new_events:
        if as_json:
            emit_json(event.to_json())
        else:
            click.echo(f"{event.at.strftime('%Y-%m-%d %H:%MZ')}  {describe_event(event)}")
    fetched = report.fetched
    click.echo(
        f"{count(fetched.found, 'capture')} found, {fetched.fetched} fetched; "
        f"{report.captures} classified, {report.unfit} no layout fits, "
        f"{report.archive_errors} archive error pages skipped; "
        f"{count(len(report.events), 'imported event')} ({len(report.new_events)} new)",
        err=True,
    )


def _backfill_progress() -> Callable[[str, int, int], None]:
    """A progress line on stderr: captures found, fetched (with an estimate), classified."""
    started: dict[str, float] = {}

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        started.setdefault(stage, now)
        line = f"{stage} {done}/{total} captures"
        if stage == "fetched" and 0 < done < total:
            left_s = (now - started[stage]) / done * (total - done)
            line += (
                f", about {left_s / 60:.0f} min left" if left_s >= 60 else f", {left_s:.0f}s left"
            )
        click.echo(f"\r\033[K{line}", nl=False, err=True)

    return show


# -- reading the record -------------------------------------------------------


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value if "T" in value or " " in value else value + "T00:00:00Z")
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date (e.g. 2026-11-01)") from None


@cli.command("log")
@click.option(
    "--since", callback=_since, metavar="ISO-DATE", help="Only events at or after this time (UTC)."
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(EVENT_KINDS),
    help="Only this kind (repeatable).",
)
@click.option(
    "--page", "pages", multiple=True, metavar="NAME", help="Only events of this page (repeatable)."
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--diff", "show_diff", is_flag=True, help="Show each change's before and after.")
@json_option
@csv_option
@common_options
def log_command(
    since: datetime | None,
    kinds: tuple[str, ...],
    pages: tuple[str, ...],
    limit: int | None,
    show_diff: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """The change log, newest first (times in UTC, to the second).

    \b
    Example:
        monitor log --since 2026-01-01 --kind archived --kind removed
        monitor log --kind changed --diff
        monitor log --json | jq .title
        monitor log --csv > changes.csv
    """
    from monitor.tables import (
        EVENT_COLUMNS,
        change_lines,
        colour_on,
        csv_text,
        event_csv_row,
        event_line,
    )

    store = open_store(get_config())
    _check_page_names(store, pages)
    events = store.events(EventQuery(since=since, kinds=kinds, pages=pages, limit=limit))
    if as_csv:
        click.echo(csv_text(EVENT_COLUMNS, [event_csv_row(e) for e in events]), nl=False)
        return
    colour = colour_on()
    for event in events:
        if as_json:
            emit_json(event.to_json())
            continue
        click.echo(event_line(event, colour=colour), color=colour)
        if show_diff and event.changes:
            fields = {k: (c.before, c.after) for k, c in event.changes.items()}
            for line in change_lines(fields, colour=colour, indent="      "):
                click.echo(line, color=colour)
    if not events and not as_json:
        click.echo("No events.", err=True)


def _check_page_names(store: Store, pages: tuple[str, ...]) -> None:
    """--page names a configured page, or one the database still knows: else exit 2."""
    if not pages:
        return
    config = get_config()
    known = {p.name for p in config.pages} | {row.name for row in store.page_rows()}
    unknown = [name for name in pages if name not in known]
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]!r}: no such page in {config.path} (pages: {', '.join(sorted(known))})",
            param_hint="'--page'",
        )


@cli.command()
@click.option("--state", type=click.Choice(ENTRY_STATES), help="Only entries in this state.")
@json_option
@csv_option
@common_options
def entries(state: str | None, as_json: bool, as_csv: bool) -> None:
    """The entries as they stand now (active, then archived, then removed).

    \b
    Example:
        monitor entries --state archived
        monitor entries --json
        monitor entries --csv > entries.csv
    """
    from monitor.tables import ENTRY_COLUMNS, csv_text, entry_csv_row, table_lines

    rows = open_store(get_config()).entries(state)
    if as_csv:
        click.echo(csv_text(ENTRY_COLUMNS, [entry_csv_row(r) for r in rows]), nl=False)
        return
    if as_json:
        for row in rows:
            emit_json(row.to_json())
        return
    if not rows:
        which = f"in state {state!r} " if state else ""
        click.echo(f"No entries {which}yet.", err=True)
        return
    cells = [
        [r.id, r.state, r.page, r.last_changed.strftime("%Y-%m-%d"),
         r.title or clip(r.description, 70)]
        for r in rows
    ]  # fmt: skip
    for line in table_lines(["entry id", "state", "page", "changed", "title"], cells):
        click.echo(line)


@cli.command()
@click.argument("entry_id")
@json_option
@csv_option
@common_options
def history(entry_id: str, as_json: bool, as_csv: bool) -> None:
    """Every version and every event of one entry, and what changed word by word.

    ENTRY_ID may be the start of an id (at least 4 characters) when only one id starts so.
    With --csv, the versions, one row each.

    \b
    Example:
        monitor history 3f2a9c1b7d04
        monitor history 3f2a
    """
    from monitor.lookup import find_entry
    from monitor.tables import VERSION_COLUMNS, csv_text, version_csv_row

    store = open_store(get_config())
    found = find_entry(store, entry_id)
    entry = store.entry(found.entry_id) if found.entry_id else None
    if entry is None:
        if len(found.candidates) > 1:
            raise click.BadParameter(found.problem or "", param_hint="'ENTRY_ID'")
        raise MonitorError(f"{found.problem} in {store.location} (see `monitor entries`)")
    versions = store.versions(entry.id)
    events = list(reversed(store.events(EventQuery(entry_id=entry.id))))
    link, link_checks = store.entry_page(entry.id), store.entry_page_checks(entry.id)
    if as_csv:
        rows = [version_csv_row(entry.id, v) for v in versions]
        click.echo(csv_text(VERSION_COLUMNS, rows), nl=False)
    elif as_json:
        emit_json({"entry": entry.to_json()})
        for version in versions:
            emit_json({"version": version.to_json()})
        for event in events:
            emit_json({"event": event.to_json()})
        if link is not None:
            emit_json({"entry_page": _entry_page_json(link)})
        for checked in link_checks:
            emit_json({"entry_page_check": checked.to_json()})
    else:
        from monitor.tables import colour_on, history_lines

        colour = colour_on()
        for line in history_lines(entry, versions, events, colour=colour):
            click.echo(line, color=colour)
        if link is not None:
            due = format_time(link.next_due_at) if link.next_due_at else "no longer checked"
            click.echo(f"Entry page: {link.url}  {link.status}; next check {due}")
            for checked in link_checks:
                capture = f"  [capture {checked.capture_id}]" if checked.capture_id else ""
                at = format_time(checked.at)
                click.echo(f"  {at}  {checked.status:<6} {checked.detail}{capture}")


def _entry_page_json(link: LinkMemory) -> dict[str, object]:
    """An entry page's state for `history --json` (its text is the `content` selector's)."""
    return {
        "url": link.url,
        "page": link.page,
        "status": link.status,
        "streak": link.streak,
        "last_checked_at": link.last_checked_at and format_time(link.last_checked_at),
        "next_due_at": link.next_due_at and format_time(link.next_due_at),
        "last_detail": link.last_detail,
        "last_capture_id": link.last_capture_id,
        "removed_at": link.removed_at and format_time(link.removed_at),
    }


@cli.command()
@click.option("--page", "pages", multiple=True, metavar="NAME", help="Only this page (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many captures.")
@json_option
@csv_option
@common_options
def snapshots(pages: tuple[str, ...], limit: int | None, as_json: bool, as_csv: bool) -> None:
    """The archived captures, newest first.

    A revisit is an unchanged body (or a 304): `monitor show` prints the body
    it refers to.

    \b
    Example:
        monitor snapshots --page active --limit 5
    """
    rows = open_store(get_config()).captures(pages, limit)
    if as_csv:
        from monitor.tables import CAPTURE_COLUMNS, capture_csv_row, csv_text

        click.echo(csv_text(CAPTURE_COLUMNS, [capture_csv_row(r) for r in rows]), nl=False)
        return
    for row in rows:
        if as_json:
            emit_json(row.to_json())
            continue
        status = str(row.status) if row.status is not None else "---"
        what = row.error or (row.record_type or "")
        if row.record_type == "revisit" and row.original_capture_id:
            what = f"revisit of #{row.original_capture_id}"
        size = f"{row.body_bytes}B" if row.body_bytes is not None else "-"
        click.echo(
            f"#{row.id:<6} {format_time(row.at)}  {row.page:<10} {status}  {size:>9}  "
            f"{row.target_uri}  {what}"
        )


@cli.command()
@click.argument("capture_id", type=int)
@click.option("--headers", is_flag=True, help="Print the HTTP status line and headers instead.")
@click.option("--raw", is_flag=True, help="Print the payload still content-encoded (gzip, br).")
@common_options
def show(capture_id: int, headers: bool, raw: bool) -> None:
    """Print one archived body exactly as it was received.

    The body is printed byte for byte, with only its Content-Encoding (gzip,
    br) undone; --raw leaves that too.

    \b
    Example:
        monitor show 42 > page.html
    """
    from monitor.records import archived_body

    config = get_config()
    status_line, header_pairs, body = archived_body(
        open_store(config), warc_dir(config), capture_id, decoded=not raw
    )
    if headers:
        click.echo(status_line)
        for name, value in header_pairs:
            click.echo(f"{name}: {value}")
        return
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()


@cli.command()
@json_option
@common_options
def verify(as_json: bool) -> None:
    """Re-read the whole archive and database; report anything that does not check out.

    Exit status 0 when every capture's WARC record exists, reads back and its
    digests match, and the database is consistent; 1 otherwise.

    \b
    Example:
        monitor verify
    """
    from monitor.records import verify_data

    config = get_config()
    report = verify_data(open_store(config), warc_dir(config))
    if as_json:
        emit_json(report.to_json())
    else:
        for problem in report.problems:
            click.echo(f"{problem.severity}: {problem.message}")
        click.echo(report.summary, err=True)
    sys.exit(0 if report.ok else 1)


@cli.command("try")
@click.argument("url", required=False)
@click.option("--page", "page_name", metavar="NAME", help="Use this configured page's selectors.")
@click.option("--item", metavar="SEL", help="CSS selector matching one entry each.")
@click.option("--title", metavar="SEL", help="Inside an item: the entry's title.")
@click.option("--link", metavar="SEL", help="Inside an item: the entry's link.")
@click.option("--description", metavar="SEL", help="Inside an item: the entry's description.")
@click.option("--next", "next_", metavar="SEL", help="The link to the listing's next page.")
@json_option
@common_options
def try_command(
    url: str | None,
    page_name: str | None,
    item: str | None,
    title: str | None,
    link: str | None,
    description: str | None,
    next_: str | None,
    as_json: bool,
) -> None:
    """Fetch one page and print the entries the selectors extract; record nothing.

    Selectors: those of --page NAME (whose URL is used when URL is omitted), else
    those of the configured page whose URL is URL; each option overrides one. With
    no configured page, --item is needed. Nothing is written: no database, no WARC.

    \b
    Example:
        monitor try --page active
        monitor try https://example.org/list --item "li.result" --title h3 --link "a[href]"
    """
    from monitor.config.model import MonitorSettings
    from monitor.trial import run_trial, trial_lines, trial_page

    meta = click.get_current_context().meta
    config_path = Path(meta.get("config") or "config.toml")
    config = get_config() if config_path.exists() else None
    overrides = {"item": item, "title": title, "link": link,
                 "description": description, "next": next_}  # fmt: skip
    page = trial_page(config, url, page_name, overrides)
    trial = run_trial(page, config.monitor if config else MonitorSettings())
    if as_json:
        for number, entry in trial.entries:
            emit_json({"page": number, "title": entry.title, "link": entry.link,
                       "description": entry.description})  # fmt: skip
    else:
        for line in trial_lines(trial):
            click.echo(line)
    read = ", ".join(f"{p.url} ({count(len(p.entries), 'entry', 'entries')})" for p in trial.pages)
    click.echo(f"{count(len(trial.entries), 'entry', 'entries')} from {read or 'no page'}; "
               "nothing recorded", err=True)  # fmt: skip
    if trial.problem:
        raise MonitorError(trial.problem)
    if not trial.entries:
        click.echo(f"No item matched --item {page.select.item!r}.", err=True)


# -- publishing ---------------------------------------------------------------


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FEED_FORMATS),
    default="atom",
    show_default=True,
    help="Atom 1.0, JSON Feed 1.1 or RSS 2.0.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)
@common_options
def feed(fmt: FeedFormat, output: Path | None) -> None:
    """The change-log feed: the newest [feed].max_entries events, newest first.

    \b
    Example:
        monitor feed --format json | jq '.items[].title'
        monitor feed -o /var/www/imls/changes.atom
    """
    config = get_config()
    events = open_store(config).events(EventQuery(limit=config.feed.max_entries))
    data = render_feed(
        events, feed_info(config), fmt, max_entries=config.feed.max_entries, now=utc_now()
    )
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_atomically(output, data)
        click.echo(f"Wrote {len(events)} events to {output}", err=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port."
)
@common_options
def serve(host: str, port: int) -> None:
    """Serve the change log read-only over HTTP (the web page and the feeds).

    \b
    Pages:
        /                   the change log (filter with ?kind=…&page=…)
        /entries            every entry as it stands (?state=active|archived|removed)
        /entries/ENTRY_ID   one entry's versions and events (a unique id prefix works)
        /captures           the captures, newest first (?page=NAME)
        /captures/ID/view   one capture under a banner, framed and sandboxed
        /captures/ID        an archived body, sandboxed
        /feed.atom /feed.json /feed.rss, /healthz

    Only requests whose Host is the bound address or localhost (or a name in
    [serve].allowed_hosts) are answered; the feeds' own links come from
    [feed].base_url.

    \b
    Example:
        monitor serve --port 8080
    """
    from monitor.web import serve_forever

    config = get_config()
    open_store(config).close()  # fail early and clearly when there is no database yet
    serve_forever(config, host=host, port=port)


# -- the daemon ---------------------------------------------------------------


@cli.command()
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="How much to log to stderr.",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@common_options
def run(log_level: str, log_json: bool) -> None:
    """Run the daemon: check on the [schedule], log each cycle, until stopped.

    SIGINT/SIGTERM finish or roll back the cycle in flight and exit 0; SIGHUP
    reloads config.toml (an invalid new config is reported, the old one kept).

    \b
    Example:
        monitor run --log-level info
        systemctl start monitor   # see contrib/monitor.service
    """
    from monitor.daemon import run_daemon

    setup = get_setup()
    if setup.cluster is not None:  # schedule tasks for `monitor worker`s instead of checking
        from monitor.cluster.producer import run_producer

        sys.exit(run_producer(setup, log_level=log_level, log_json=log_json))
    meta = click.get_current_context().meta
    sys.exit(
        run_daemon(
            setup.config,
            data_dir_override=meta.get("data_dir"),
            log_level=log_level,
            log_json=log_json,
        )
    )


@cli.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many group checks this worker runs at once.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="How much to log to stderr.",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@common_options
def worker(concurrency: int, log_level: str, log_json: bool) -> None:
    """With [cluster]: a Celery worker that runs page-group checks until stopped.

    SIGINT/SIGTERM take no new task, let the one in flight finish (or time
    out and roll back), and exit 0. Without [cluster]: exit 2.

    \b
    Example:
        monitor worker --concurrency 2
        systemctl start monitor-worker@1   # see contrib/monitor-worker@.service
    """
    setup = get_setup()
    setup.require_cluster("monitor worker")
    from monitor.cluster.worker import run_worker

    sys.exit(run_worker(setup, concurrency=concurrency, log_level=log_level, log_json=log_json))


@cli.command()
@json_option
@csv_option
@common_options
def status(as_json: bool, as_csv: bool) -> None:
    """When the last cycle ran, how each page fared, when the next is due.

    \b
    Example:
        monitor status
    """
    from monitor.status import daemon_status, format_status

    report = daemon_status(get_config())
    if as_csv:
        from monitor.tables import STATUS_COLUMNS, csv_text, status_csv_rows

        click.echo(csv_text(STATUS_COLUMNS, status_csv_rows(report["pages"])), nl=False)
    elif as_json:
        emit_json(report)
    else:
        click.echo(format_status(report))


# -- notifications ------------------------------------------------------------


@cli.group(cls=MonitorGroup, context_settings=CONTEXT)
@common_options
def notify() -> None:
    """Notifications ([[notify]]): send a test message, see what is pending or failed.

    \b
    Example:
        monitor notify test --target 2
        monitor notify status
    """


@notify.command("test")
@click.option(
    "--target", "number", type=int, metavar="N", help="Only the Nth target, counted from 1."
)
@common_options
def notify_test(number: int | None) -> None:
    """Send a test message to every [[notify]] target (or the Nth).

    Exit status: 0 every target took it; 1 a target failed (named, its URL
    redacted); 2 no [[notify]] in the config, or no such target.

    \b
    Example:
        monitor notify test
        monitor notify test --target 2
    """
    from monitor.notify.commands import send_probes

    results = send_probes(get_config(), number, now=utc_now())
    for result in results:
        click.echo(result.line())
    failed = [r for r in results if not r.ok]
    if failed:
        names = ", ".join(f"target {r.number} ({r.url})" for r in failed)
        raise MonitorError(f"the test message did not reach {names}")


@notify.command("status")
@json_option
@common_options
def notify_status(as_json: bool) -> None:
    """Per [[notify]] target: deliveries pending, sent and failed, and the last error.

    \b
    Example:
        monitor notify status
        monitor notify status --json | jq 'select(.failed > 0)'
    """
    from monitor.notify.commands import read_statuses

    statuses = read_statuses(get_config())
    for item in statuses:
        if as_json:
            emit_json(item.to_json())
        else:
            click.echo(item.line())
    if not statuses and not as_json:
        click.echo("No [[notify]] target in the config.", err=True)


def main(argv: Iterable[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="monitor")
    except ConfigError as error:  # raised while click is still parsing
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
