"""Running for good: `monitor run`, `monitor worker`, `monitor status`."""

from __future__ import annotations

import sys

import click

from monitor.cli.base import (
    cli,
    common_options,
    csv_option,
    emit_json,
    get_setup,
    json_option,
)
from monitor.errors import MonitorError

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

    setup = get_setup()
    report = daemon_status(setup.config)
    if setup.cluster is not None:  # `monitor run` is the producer, known through Redis
        from monitor.cluster.coordination import producer_status

        try:
            producer = producer_status(setup.cluster.broker)
            running: bool | None = bool(producer["holder"])
            unknown = None
        except MonitorError as error:  # the record is PostgreSQL's: status still reads it
            producer, running, unknown = {"holder": "", "next_run_at": None}, None, str(error)
        report["daemon"] = {**report["daemon"], "running": running,
                            "producer": producer["holder"] or None, "pid": None,
                            "next_run_at": producer["next_run_at"], "checking_since": None,
                            "producer_error": unknown}  # fmt: skip
    if as_csv:
        from monitor.tables import STATUS_COLUMNS, csv_text, status_csv_rows

        click.echo(csv_text(STATUS_COLUMNS, status_csv_rows(report["pages"])), nl=False)
    elif as_json:
        emit_json(report)
    else:
        click.echo(format_status(report))
