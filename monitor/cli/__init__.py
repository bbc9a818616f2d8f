"""The command line (click): parse, call one function, print. No logic here.

`base.py` holds the group and the shared options; each module registers one family of
commands on it, and is imported only when one of its commands is used (COMMAND_MODULES).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click

from monitor.cli.base import COMMAND_MODULES, cli, writes_utf8
from monitor.errors import ConfigError

__all__ = ["COMMAND_MODULES", "cli", "main"]


def main(argv: Iterable[str] | None = None) -> None:
    """Console-script entry point."""
    _tolerate_unencodable_output()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="monitor")
    except ConfigError as error:  # raised while click is still parsing
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)


def _tolerate_unencodable_output() -> None:
    """A watched page's text may hold what a non-UTF-8 terminal or file (latin-1, cp1252)
    cannot encode: write it escaped (`\\u2019`) rather than stop mid-output with a
    traceback, after the cycle that found it has been recorded."""
    for stream in (sys.stdout, sys.stderr):
        if not writes_utf8(stream) and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


if __name__ == "__main__":
    main()
