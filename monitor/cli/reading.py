"""Reading the record: `log`, `entries`, `history`, `snapshots`, `show`, `verify`."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from monitor.cli.base import (
    cli,
    common_options,
    csv_option,
    emit_json,
    get_config,
    json_option,
    open_store,
)
from monitor.errors import MonitorError
from monitor.models import ENTRY_STATES, EVENT_KINDS, format_time, parse_time
from monitor.paths import warc_dir
from monitor.render import clip
from monitor.store import EventQuery, Store
from monitor.store.detail_rows import LinkMemory

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

    if show_diff and as_csv:  # a CSV row has no room for a diff: say so, not drop it
        raise click.UsageError(
            "--diff shows word diffs in the text log; --csv lists the changed fields "
            "(--json gives each change's before and after)"
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
        if len(found.candidates) > 1 or found.too_short:  # a usage error (exit 2)
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
    store = open_store(get_config())
    _check_page_names(store, pages)
    rows = store.captures(pages, limit)
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
    from monitor.records import SHOW_MAX_BYTES, archived_body

    config = get_config()
    # Any body a check accepted decodes within max_bytes, however high it is configured.
    limit = max(SHOW_MAX_BYTES, config.monitor.max_bytes)
    status_line, header_pairs, body = archived_body(
        open_store(config), warc_dir(config), capture_id, decoded=not raw, max_bytes=limit
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
