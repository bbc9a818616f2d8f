"""The docs are part of the product: every command, key and column is documented and current."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.store import SqliteStore as Store

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCHEMA_DOC = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
COMMANDS = cli.list_commands(None)  # type: ignore[arg-type]


def test_spec_commands_all_exist():
    """Every command SPEC.md names is a command of the CLI."""
    spec = {"check", "run", "log", "entries", "history", "feed", "serve", "snapshots", "show"}
    assert spec | {"verify"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    """`monitor COMMAND --help` works and shows an example."""
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert "--config" in result.output and "--data-dir" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command):
    """The README mentions every command."""
    assert f"monitor {command}" in README


def test_readme_has_the_two_quick_start_commands():
    """The README's quick start installs and runs `monitor check`, and installs and runs pytest."""
    assert ".venv/bin/monitor check" in README
    assert ".venv/bin/python -m pytest" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = next(
        line for line in README.splitlines() if ".venv/bin/python -m pytest" in line
    )
    assert test_command.strip().removeprefix("$ ") in ci


def _schema_statements(tmp_path: Path) -> list[str]:
    Store(tmp_path / "monitor.db").close()
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    conn.close()
    return [row[0] for row in rows]


def test_schema_doc_is_current(tmp_path):
    """docs/schema.md holds the exact `.schema` of a fresh database."""
    squash = lambda text: re.sub(r"\s+", " ", text)  # noqa: E731
    doc = squash(SCHEMA_DOC)
    for statement in _schema_statements(tmp_path):
        assert squash(statement) in doc, statement.splitlines()[0]


def test_schema_doc_explains_every_column(tmp_path):
    """Every table has a section in docs/schema.md that names each of its columns."""
    Store(tmp_path / "monitor.db").close()
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            section = SCHEMA_DOC.split(f"### `{table}`", 1)
            assert len(section) == 2, f"no section for table {table}"
            text = section[1].split("###", 1)[0]
            for _, column, *_ in conn.execute(f"PRAGMA table_info({table})"):
                assert f"`{column}`" in text, f"{table}.{column} is not explained"
    conn.close()


def test_every_command_is_loaded_from_the_module_that_defines_it():
    """The lazy command table names each command's module: none is missing or misplaced."""
    import importlib

    from monitor.cli import COMMAND_MODULES

    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"monitor.cli.{module}")
    assert set(cli.commands) == set(COMMAND_MODULES)
    for name, command in cli.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == f"monitor.cli.{COMMAND_MODULES[name]}", name
