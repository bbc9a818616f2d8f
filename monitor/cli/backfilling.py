"""`monitor backfill`: the history before the first check, from a web archive."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date

import click

from monitor.cli.base import (
    cli,
    common_options,
    emit_json,
    get_config,
    json_option,
)
from monitor.render import count, describe_event

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
    start = since if since is not None else config.backfill.since
    if start is not None and until is not None and until < start:
        where = "--since" if since is not None else "[backfill].since"
        raise click.BadParameter(f"{until} is before {where} {start}: no day is in between",
                                 param_hint="'--until'")  # fmt: skip
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
