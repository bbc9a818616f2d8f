"""The worked scenario of tests/fixtures/scenario-basic, through the real CLI and a local server."""

from __future__ import annotations

import json
from collections import Counter

from conftest import ACTIVE_PATH, ARCHIVED_PATH, SCENARIO, imls_pages, json_lines, run, write_config
from werkzeug import Response

EXPECTED = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))


def serve_step(site, step: dict) -> None:
    site.serve_file(ACTIVE_PATH, SCENARIO / step["dir"] / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / step["dir"] / "archived.html")


def test_scenario_basic_produces_exactly_the_expected_events(site, tmp_path, cluster):
    """Each step of scenario-basic emits exactly its events, with its exit code and entries,
    on SQLite and on PostgreSQL alike."""
    config = write_config(tmp_path, imls_pages(site), monitor=EXPECTED["config"], cluster=cluster)
    for step in EXPECTED["steps"]:
        serve_step(site, step)
        result = run(config, "check", "--json")
        assert result.exit_code == step["exit_code"], result.stderr
        events = json_lines(result)
        assert Counter((e["kind"], e["title"]) for e in events) == Counter(
            (e["kind"], e["title"]) for e in step["events"]
        ), step["why"]
        by_title = {e["title"]: e for e in events}
        for want in step["events"]:
            got = by_title[want["title"]]
            assert got["page"] == want["page"]
            assert got["link"] == site.url(want["link"])
            for name in want.get("changed_fields", []):
                assert got["changes"][name] == {
                    "before": want["before"][name],
                    "after": want["after"][name],
                }
        for state, titles in step["entries_after"].items():
            listed = json_lines(run(config, "entries", "--state", state, "--json"))
            assert sorted(e["title"] for e in listed) == sorted(titles), (step["step"], state)


def test_event_json_has_the_spec_keys(site, tmp_path, cluster):
    """check --json and log --json give SPEC.md's keys for entry and page events, on both stores."""
    config = write_config(tmp_path, imls_pages(site), monitor=EXPECTED["config"], cluster=cluster)
    for step in EXPECTED["steps"][:2]:
        serve_step(site, step)
        checked = json_lines(run(config, "check", "--json"))
    changed = next(e for e in checked if e["kind"] == "changed")
    assert set(changed) == {
        "id",
        "kind",
        "at",
        "page",
        "entry_id",
        "title",
        "link",
        "description",
        "changes",
        "capture_id",
        "source",
    }
    assert changed["source"] == "check"
    assert changed["at"].endswith("Z")
    logged = json_lines(run(config, "log", "--json"))
    # The log is newest first: the last check's events, in reverse order of emission.
    assert [e["id"] for e in logged[: len(checked)]] == [e["id"] for e in reversed(checked)]
    assert logged[: len(checked)] == list(reversed(checked))
    site.serve(ACTIVE_PATH, lambda request: Response("", status=503))
    page_events = json_lines(run(config, "check", "--json"))
    assert [e["kind"] for e in page_events] == ["page-error"]
    assert set(page_events[0]) == {"id", "kind", "at", "page", "detail", "capture_id", "source"}
    assert page_events[0]["source"] == "check"
