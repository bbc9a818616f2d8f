"""The command group and what every command shares: the options, the config, the store."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from monitor import __version__
from monitor.config import Config
from monitor.errors import MonitorError
from monitor.store import Store
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


class _GivenPath(click.Path):
    """A path option that refuses "": `--data-dir "$DATA"` with DATA unset would otherwise
    be the working directory, and a new archive would start wherever cron runs."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("must not be empty (an unset variable?)", param, ctx)
        return super().convert(value, param, ctx)


def common_options(f: F) -> F:
    """--config and --data-dir, accepted before or after the subcommand."""
    f = click.option(
        "--data-dir",
        type=_GivenPath(file_okay=False, path_type=Path),
        expose_value=False,
        callback=_remember,
        help="Data directory (WARC files, monitor.db); overrides [monitor].data_dir.",
    )(f)
    f = click.option(
        "--config",
        type=_GivenPath(dir_okay=False, path_type=Path),
        envvar="MONITOR_CONFIG",
        expose_value=False,
        callback=_remember,
        help="Config file [default: ./config.toml, or $MONITOR_CONFIG].",
    )(f)
    return f


def _one_format(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """--json and --csv exclude each other (whichever of the two click reads second says so)."""
    other = "as_csv" if param.name == "as_json" else "as_json"
    if value and ctx.params.get(other):
        raise click.UsageError("--json and --csv are alternatives: give one of them")
    return value


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, callback=_one_format,
                        help="One JSON object per line.")(f)  # fmt: skip


def csv_option(f: F) -> F:
    return click.option("--csv", "as_csv", is_flag=True, callback=_one_format,
                        help="CSV with a header row.")(f)  # fmt: skip


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


def writes_utf8(stream: Any) -> bool:
    """Whether a text stream encodes UTF-8 (one that names no encoding is taken to)."""
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
    return encoding == "utf8"


def emit_json(obj: Any) -> None:
    # Non-ASCII as is on a UTF-8 output; escaped (still the same JSON) on any other.
    click.echo(json.dumps(obj, ensure_ascii=not writes_utf8(sys.stdout)))


class MonitorGroup(click.Group):
    """Turns MonitorError into `Error: …` on stderr and its exit code, with no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            # 128 + SIGINT, as shells report it: exit 1 means "a page failed" to cron.
            # A cycle interrupted before its commit recorded nothing (one transaction).
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


# Each command's module (under monitor.cli), imported when the command runs or help lists
# it: `monitor check` never imports the web server, the feed writer or the backfill.
COMMAND_MODULES = {
    "backfill": "backfilling",
    "check": "checking",
    "entries": "reading",
    "feed": "publishing",
    "history": "reading",
    "log": "reading",
    "notify": "notifying",
    "run": "running",
    "serve": "publishing",
    "show": "reading",
    "snapshots": "reading",
    "status": "running",
    "try": "checking",
    "verify": "reading",
    "worker": "running",
}


class RootGroup(MonitorGroup):
    """The `monitor` group: its commands are registered by their modules, loaded on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"monitor.cli.{module}")  # registers it on `cli`
        return super().get_command(ctx, cmd_name)


@click.group(cls=RootGroup, context_settings=CONTEXT)
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
