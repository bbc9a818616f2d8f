"""Notifications: `monitor notify test` and `monitor notify status`."""

from __future__ import annotations

import click

from monitor.cli.base import (
    CONTEXT,
    MonitorGroup,
    cli,
    common_options,
    emit_json,
    get_config,
    json_option,
)
from monitor.errors import MonitorError
from monitor.models import utc_now

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
