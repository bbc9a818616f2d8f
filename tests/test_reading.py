"""What a person reads in the terminal: exit codes for cron, status in words, tables, typed
ids, word diffs, CSV, colour only on a terminal, and the first check's counts."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from conftest import (
    ACTIVE_PATH,
    ARCHIVED_PATH,
    SCENARIO,
    imls_pages,
    json_lines,
    run,
    write_config,
)
from werkzeug import Response

from monitor.cli import cli
from monitor.progress import progress_text
from monitor.tables import diff_text, paint_kind

EMPTY = b"<html><body><div class='view-content'></div></body></html>"


def serve_step(site, step: str) -> None:
    site.serve_file(ACTIVE_PATH, SCENARIO / step / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / step / "archived.html")


@pytest.fixture
def scenario(site, tmp_path):
    """A data dir after the three checks of scenario-basic (5 events)."""
    config = write_config(tmp_path, imls_pages(site), monitor={"confirm_checks": 2})
    for step in ("step1", "step2", "step3"):
        serve_step(site, step)
        assert run(config, "check").exit_code == 0
    return config


def entry_id_of(config, title: str) -> str:
    return next(e["entry_id"] for e in json_lines(run(config, "entries", "--json"))
                if e["title"] == title)  # fmt: skip


# -- 1. exit codes and status in words ------------------------------------------------------


def test_strict_check_exits_4_on_an_anomaly_and_status_says_why(site, tmp_path):
    """An emptied page: `check` exits 0, `check --strict` 4, and status says N where M were
    normal, since when."""
    serve_step(site, "step1")
    config = write_config(tmp_path, imls_pages(site), monitor={"confirm_checks": 3})
    first = run(config, "check")
    assert first.exit_code == 0
    assert "'active': first check, recorded 4 entries" in first.stderr
    site.serve(ACTIVE_PATH, lambda r: Response(EMPTY, content_type="text/html"))
    assert run(config, "check").exit_code == 0  # an anomaly is not an error without --strict
    strict = run(config, "check", "--strict")
    assert strict.exit_code == 4, strict.stderr
    assert "anomalous: active" in strict.stderr
    text = run(config, "status").stdout
    line = next(line for line in text.splitlines() if line.strip().startswith("active"))
    assert "anomaly: 0 entries where 4 were normal; removals held since 20" in line
    report = json_lines(run(config, "status", "--json"))[0]
    assert report["pages"][0]["since"].endswith("Z")


def test_strict_check_still_exits_1_when_a_page_fails(site, tmp_path):
    """--strict never hides an error: a failing page exits 1, and status names the error."""
    serve_step(site, "step1")
    config = write_config(tmp_path, imls_pages(site))
    assert run(config, "check", "--strict").exit_code == 0
    site.serve(ACTIVE_PATH, lambda r: Response(EMPTY, content_type="text/html"))
    site.serve(ARCHIVED_PATH, lambda r: Response("oops", status=503))
    assert run(config, "check", "--strict").exit_code == 1
    line = [x for x in run(config, "status").stdout.splitlines() if "archived" in x][-1]
    assert "error: " in line and "HTTP 503" in line and "since 20" in line


# -- 2. tables -------------------------------------------------------------------------------


def test_entries_is_a_table_with_a_header(scenario):
    """entries prints a header row then one aligned row per entry; none: a clear line."""
    lines = run(scenario, "entries").stdout.splitlines()
    assert lines[0].split() == ["ENTRY", "ID", "STATE", "PAGE", "CHANGED", "TITLE"]
    assert len(lines) == 10
    assert lines[0].index("STATE") == lines[1].index(lines[1].split()[1])
    empty = run(scenario, "entries", "--state", "removed", "--json")
    assert len(json_lines(empty)) == 1
    none = run(scenario, "--data-dir", str(scenario.parent / "data"), "entries")
    assert none.exit_code == 0


def test_no_entries_in_a_state_says_so(site, tmp_path):
    """entries --state removed with none removed prints a sentence, not an empty table."""
    serve_step(site, "step1")
    config = write_config(tmp_path, imls_pages(site))
    run(config, "check")
    result = run(config, "entries", "--state", "removed")
    assert result.exit_code == 0 and result.stdout == ""
    assert "No entries in state 'removed' yet." in result.stderr


def test_log_times_to_the_second_and_unknown_page_is_a_usage_error(scenario):
    """log lines start with a time to the second; --page nosuch exits 2 naming it."""
    first = run(scenario, "log").stdout.splitlines()[0]
    assert first[:19].count(":") == 2 and first[19] == "Z"
    bad = run(scenario, "log", "--page", "nosuch")
    assert bad.exit_code == 2 and "nosuch" in bad.stderr and "active" in bad.stderr


# -- 3. ids people type ------------------------------------------------------------------------


def test_history_accepts_a_unique_prefix_and_lists_an_ambiguous_one(scenario):
    """history takes the start of an id; a prefix shared by several ids lists them (exit 2)."""
    ids = [e["entry_id"] for e in json_lines(run(scenario, "entries", "--json"))]
    target = entry_id_of(scenario, "Museums for All")
    prefix = next(target[:n] for n in range(4, len(target))
                  if sum(i.startswith(target[:n]) for i in ids) == 1)  # fmt: skip
    result = run(scenario, "history", prefix)
    assert result.exit_code == 0, result.stderr
    assert f"[{target}]" in result.stdout
    # Two ids sharing a prefix: make one by copying an entry under a near id.
    shared = ids[0][:4]
    others = [i for i in ids if i.startswith(shared)]
    if len(others) > 1:
        ambiguous = run(scenario, "history", shared)
        assert ambiguous.exit_code == 2
        assert all(i in ambiguous.stderr for i in others)
    short = run(scenario, "history", target[:3])  # too short to be meant: a usage error
    assert short.exit_code == 2 and "at least 4 characters" in short.stderr
    missing = run(scenario, "history", "zzzz")  # well formed, but no such entry
    assert missing.exit_code == 1 and "no entry 'zzzz'" in missing.stderr


def test_ambiguous_prefix_names_the_candidates(scenario, tmp_path):
    """Two entries whose ids start alike: the prefix is refused with both ids listed."""
    import sqlite3
    from contextlib import closing

    target = entry_id_of(scenario, "Museums for All")
    twin = target[:6] + ("0" if target[6] != "0" else "1") + target[7:]
    with closing(sqlite3.connect(tmp_path / "data" / "monitor.db")) as db, db:
        cols = [r[1] for r in db.execute("PRAGMA table_info(entries)")]
        row = list(db.execute("SELECT * FROM entries WHERE id = ?", (target,)).fetchone())
        row[cols.index("id")] = twin
        db.execute(f"INSERT INTO entries VALUES ({','.join('?' * len(row))})", row)
    result = run(scenario, "history", target[:6])
    assert result.exit_code == 2
    assert target in result.stderr and twin in result.stderr and "several" in result.stderr


# -- 4. diffs ------------------------------------------------------------------------------------


def test_history_and_log_show_changes_word_by_word(scenario):
    """history marks removed and added words; log --diff shows a change's before and after."""
    target = entry_id_of(scenario, "Museums for All")
    text = run(scenario, "history", target).stdout
    assert "v2" in text and ("[-" in text or "{+" in text)
    assert "\x1b[" not in text  # piped: no colour
    log = run(scenario, "log", "--kind", "changed", "--diff").stdout
    assert "description:" in log or "title:" in log
    assert "[-" in log or "{+" in log


def test_diff_markers_plain_and_coloured():
    """Without colour the diff reads [-old-]{+new+}; with colour it is styled, no markers."""
    assert diff_text("a red fox", "a blue fox", colour=False) == "a [-red-]{+blue+} fox"
    styled = diff_text("a red fox", "a blue fox", colour=True)
    assert "\x1b[" in styled and "[-" not in styled
    assert paint_kind("removed", "removed", colour=False) == "removed"
    assert "\x1b[31" in paint_kind("removed", "removed", colour=True)


# -- 5. progress and colour ------------------------------------------------------------------


def test_log_has_no_colour_when_piped_or_with_no_color(scenario):
    """Piped output and NO_COLOR=1 carry no escape codes."""
    for env in ({}, {"NO_COLOR": "1"}):
        result = CliRunner().invoke(cli, ["--config", str(scenario), "log"], env=env, color=True)
        assert result.exit_code == 0 and "\x1b[" not in result.stdout


def test_progress_line_names_the_slow_page():
    """The progress line counts pages done and names the ones still awaited."""
    assert (
        progress_text(1, 2, ["archived"], 7.2)
        == "checked 1/2 pages; waiting 7s for 'archived' (slow)"
    )
    assert progress_text(2, 2, [], 1.5) == "checked 2/2 pages"


# -- 7. CSV --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "first_column", "rows"),
    [
        (["log"], "id", 5),
        (["entries"], "entry_id", 9),
        (["snapshots", "--page", "active"], "id", 3),
        (["status"], "page", 2),
    ],
)
def test_csv_output_has_stable_columns(scenario, args, first_column, rows):
    """--csv prints a header row and one row per record, readable by the csv module."""
    result = run(scenario, *args, "--csv")
    assert result.exit_code == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(table) == rows
    assert next(iter(table[0])) == first_column


def test_history_csv_lists_versions(scenario):
    """history --csv: one row per version of the entry."""
    target = entry_id_of(scenario, "Museums for All")
    table = list(csv.DictReader(io.StringIO(run(scenario, "history", target, "--csv").stdout)))
    assert [row["version"] for row in table] == ["1", "2"]
    assert {row["entry_id"] for row in table} == {target}


def test_database_views_read_at_once(scenario, tmp_path):
    """The views Datasette shows first: titled events, entries now, captures per page."""
    import json
    import sqlite3
    from contextlib import closing
    from pathlib import Path

    with closing(sqlite3.connect(tmp_path / "data" / "monitor.db")) as db:
        titles = [r[0] for r in db.execute("SELECT title FROM events_with_titles ORDER BY seq")]
        assert "Community Salute" in titles and len(titles) == 5
        states = {r[0] for r in db.execute("SELECT state FROM current_entries")}
        assert states == {"active", "archived"}
        per_page = dict(db.execute("SELECT page, captures FROM captures_per_page"))
        assert per_page == {"active": 3, "archived": 3}
    metadata = Path(__file__).parent.parent / "datasette" / "metadata.json"
    tables = json.loads(metadata.read_text(encoding="utf-8"))["databases"]["monitor"]["tables"]
    assert {"events_with_titles", "current_entries", "captures_per_page"} <= set(tables)
