"""`monitor backfill` with [cluster]: the PostgreSQL store gives the history SQLite gives."""

from __future__ import annotations

from pathlib import Path

from conftest import ACTIVE_PATH, ARCHIVED_PATH, IMLS, imls_pages, json_lines, run, write_config
from fake_archive import FakeArchive
from test_backfill import EXPECTED, live_history, summary


def backfill_config(tmp_path: Path, archive: FakeArchive, pages: list[dict], **kw: object) -> Path:
    """A config (on PostgreSQL with `cluster`) whose [backfill] reads the fake archive."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, pages, **kw)  # type: ignore[arg-type]
    lines = [
        "[backfill]",
        f'cdx_url = "{archive.cdx_url}"',
        f'memento_url = "{archive.memento_template}"',
        "rate_per_minute = 600000",
    ]
    with config.open("a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return config


def live(at: str) -> str:
    """A time as compared: the live checks' own times (this year's, not equal) as "live"."""
    return "live" if at > "2020" else at


def history(config: Path) -> dict[str, object]:
    """What a user reads after the runs: the log, the entries, each entry's versions."""
    log = json_lines(run(config, "log", "--json"))
    entries = json_lines(run(config, "entries", "--json"))
    versions = {
        e["title"]: [
            (h["version"]["version"], live(h["version"]["at"]), h["version"]["title"])
            for h in json_lines(run(config, "history", e["entry_id"], "--json"))
            if "version" in h
        ]
        for e in entries
    }
    return {
        "log": [(e["source"], *s) for e, s in zip(log, summary(log), strict=True)],
        "entries": sorted((e["title"], e["state"]) for e in entries),
        "versions": versions,
    }


def test_backfill_on_postgres_gives_the_history_sqlite_gives(tmp_path, site, postgres_database):
    """Check, backfill twice, check: PostgreSQL holds SQLite's events, entries and versions."""
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    site.serve_file(ARCHIVED_PATH, IMLS / "archived.html")
    cluster = {"database": postgres_database, "broker": "redis://127.0.0.1:1/0", "archive": "warc"}
    seen = {}
    with FakeArchive(live_history(site)) as archive:
        for kind, extra in (("sqlite", {}), ("postgres", {"cluster": cluster})):
            config = backfill_config(tmp_path / kind, archive, imls_pages(site), **extra)
            assert run(config, "check").exit_code == 0  # the silent live baseline
            first = run(config, "backfill", "--json")
            assert first.exit_code == 0, first.stderr
            printed = summary(json_lines(first))
            assert printed and [p[0] for p in printed] == sorted(p[0] for p in printed)
            assert {e[:4] for e in EXPECTED} >= set(printed)  # live checks saw the rest
            mementos = len(archive.memento_requests())
            again = run(config, "backfill", "--json")
            assert again.exit_code == 0 and again.stdout == ""  # nothing new, nothing fetched
            assert len(archive.memento_requests()) == mementos
            after = run(config, "check", "--json")  # revisits the live capture, not an import
            assert after.exit_code == 0 and after.stdout == ""
            status = run(config, "status")
            assert status.exit_code == 0, status.stderr
            seen[kind] = {"printed": printed, **history(config)}
    assert seen["postgres"] == seen["sqlite"]
    museums = seen["postgres"]["versions"]["Museums for All"]  # type: ignore[index]
    assert [v[0] for v in museums] == list(range(1, len(museums) + 1))
    assert museums[0][1] == "2015-06-12T09:30:00Z" and museums[-1][1] == "live"
