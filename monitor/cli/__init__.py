"""The command line (click): parse, call one function, print. No logic here.

`base.py` holds the group and the shared options; each module registers one family of
commands on it, and is imported only when one of its commands is used (COMMAND_MODULES).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click

from monitor.cli.base import COMMAND_MODULES, cli
from monitor.errors import ConfigError

__all__ = ["COMMAND_MODULES", "cli", "main"]


def main(argv: Iterable[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="monitor")
    except ConfigError as error:  # raised while click is still parsing
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
