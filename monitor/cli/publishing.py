"""Publishing: `monitor feed` and `monitor serve`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.cli.base import (
    cli,
    common_options,
    get_config,
    open_store,
)
from monitor.durable import write_atomically
from monitor.feed import FEED_FORMATS, FeedFormat, render_feed
from monitor.publish import feed_info, format_for_path
from monitor.store import EventQuery

# -- publishing ---------------------------------------------------------------


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FEED_FORMATS),
    default=None,
    help="Atom 1.0, JSON Feed 1.1 or RSS 2.0  [default: as -o's suffix names it "
    "(.json, .rss, .atom/.xml), else atom]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write to this file (atomically; through a symlink) instead of stdout ('-').",
)
@common_options
def feed(fmt: FeedFormat | None, output: Path | None) -> None:
    """The change-log feed: the newest [feed].max_entries events, newest first.

    \b
    Example:
        monitor feed --format json | jq '.items[].title'
        monitor feed -o /var/www/imls/changes.atom
    """
    if output is not None and str(output) == "-":
        output = None
    if fmt is None:  # as [feed].path does: the file's suffix names its format
        fmt = format_for_path(output) if output is not None else "atom"
    config = get_config()
    events = open_store(config).events(EventQuery(limit=config.feed.max_entries))
    data = render_feed(events, feed_info(config), fmt, max_entries=config.feed.max_entries)
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
    from monitor.errors import NoDatabaseYet
    from monitor.webserver import serve_forever

    config = get_config()
    try:
        open_store(config).close()  # a damaged or too new database fails here, clearly
    except NoDatabaseYet as error:  # started beside `run` on a fresh install: wait for it
        click.echo(f"monitor serve: {error}; every page answers 503 until a check is "
                   "recorded", err=True)  # fmt: skip
    serve_forever(config, host=host, port=port)
