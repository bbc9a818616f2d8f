"""`monitor check` and `monitor try`: a cycle now, or a page tried without recording."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.cli.base import (
    cli,
    common_options,
    emit_json,
    get_config,
    json_option,
)
from monitor.errors import MonitorError
from monitor.render import count

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
    page is in error or gone (the other pages were still recorded), or the feed
    file could not be written; 2 usage or config error; 3 another check holds the
    data directory; 4 with --strict, a page is in page-anomaly. With --json,
    stdout carries only the events.

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
    names = [p.name for p in config.pages if not pages or p.name in pages]
    with ProgressLine(names, enabled=sys.stderr.isatty()) as progress:
        report = run_check(config, page_names=pages, wait_s=wait, progress=progress)
    colour = colour_on()
    for event in report.events:
        if as_json:
            emit_json(event.to_json())
        else:
            click.echo(event_line(event, colour=colour), color=colour)
    states = [(p.name, p.status, len(p.members)) for p in report.pages]
    for line in baseline_lines(states, report.first_checked):
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
    if read:  # a first page that failed has only its error to say
        click.echo(f"{count(len(trial.entries), 'entry', 'entries')} from {read}; "
                   "nothing recorded", err=True)  # fmt: skip
    if trial.problem:
        raise MonitorError(trial.problem)
    if not trial.entries:
        click.echo(f"No item matched --item {page.select.item!r}.", err=True)
