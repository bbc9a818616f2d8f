"""The command line as a user types it: options anywhere, filters, formats, clear errors."""

from __future__ import annotations

import json
from collections import Counter

import feedparser
import pytest
from click.testing import CliRunner
from conftest import ACTIVE_PATH, ARCHIVED_PATH, SCENARIO, imls_pages, json_lines, run, write_config

from monitor.cli import cli

ACTIVE_PATH_FIXTURE = SCENARIO / "step1" / "active.html"


@pytest.fixture
def scenario(site, tmp_path):
    """A data dir after the three checks of scenario-basic (5 events)."""
    config = write_config(tmp_path, imls_pages(site))
    for step in ("step1", "step2", "step3"):
        site.serve_file(ACTIVE_PATH, SCENARIO / step / "active.html")
        site.serve_file(ARCHIVED_PATH, SCENARIO / step / "archived.html")
        assert run(config, "check").exit_code == 0
    return config


def test_config_from_the_environment(scenario, monkeypatch, tmp_path):
    """MONITOR_CONFIG names the config when --config is not given."""
    monkeypatch.setenv("MONITOR_CONFIG", str(scenario))
    result = CliRunner().invoke(cli, ["log", "--json"])
    assert result.exit_code == 0, result.stderr
    assert len(json_lines(result)) == 5


def test_options_after_the_subcommand(scenario):
    """--config works after the subcommand too, and wins over the environment."""
    result = CliRunner().invoke(
        cli, ["entries", "--json", "--config", str(scenario)], env={"MONITOR_CONFIG": "/nope"}
    )
    assert result.exit_code == 0, result.stderr
    assert len(json_lines(result)) == 9


def test_relative_data_dir_is_relative_to_the_working_directory(scenario, tmp_path, monkeypatch):
    """--data-dir on the command line is relative to the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").rename(tmp_path / "moved")
    result = run(scenario, "--data-dir", "moved", "entries", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json_lines(result)) == 9


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], Counter(added=1, changed=1, archived=1, restored=1, removed=1), id="all"),
        pytest.param(["--kind", "removed"], Counter(removed=1), id="kind"),
        pytest.param(
            ["--kind", "added", "--kind", "archived"], Counter(added=1, archived=1), id="kinds"
        ),
        pytest.param(["--page", "archived"], Counter(archived=1, removed=1), id="page"),
        pytest.param(["--since", "2999-01-01"], Counter(), id="since-future"),
        pytest.param(
            ["--since", "2000-01-01T00:00:00Z"],
            Counter(added=1, changed=1, archived=1, restored=1, removed=1),
            id="since-past",
        ),
        pytest.param(["--limit", "2"], Counter(restored=1, removed=1), id="limit"),
    ],
)
def test_log_filters(scenario, args, expected):
    """log --kind/--page/--since/--limit select the events a user asked for."""
    result = run(scenario, "log", "--json", *args)
    assert result.exit_code == 0, result.stderr
    assert Counter(e["kind"] for e in json_lines(result)) == expected


def test_log_is_newest_first_and_readable(scenario):
    """The human log lists the newest events first, one line each."""
    lines = run(scenario, "log").stdout.splitlines()
    assert len(lines) == 5
    assert {"removed", "restored"} == {lines[0].split()[2], lines[1].split()[2]}
    assert "Community Salute" in "\n".join(lines[2:])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["log", "--since", "yesterday"], "not an ISO date", id="bad-since"),
        pytest.param(["log", "--kind", "deleted"], "deleted", id="bad-kind"),
        pytest.param(["entries", "--state", "gone"], "gone", id="bad-state"),
        pytest.param(["show", "abc"], "abc", id="show-not-a-number"),
        pytest.param(["feed", "--format", "xml"], "xml", id="bad-format"),
    ],
)
def test_usage_errors_exit_2(scenario, args, message):
    """A bad option value is a usage error: exit 2, the value named, no traceback."""
    result = run(scenario, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_entries_by_state(scenario):
    """entries --state lists exactly the entries in that state."""
    removed = json_lines(run(scenario, "entries", "--state", "removed", "--json"))
    assert [e["title"] for e in removed] == ["WebWise Conference"]
    text = run(scenario, "entries").stdout
    assert text.index("Film Forward") < text.index("WebWise Conference")  # active first


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_feed_command_formats(scenario, tmp_path, fmt):
    """feed writes each format, to stdout or atomically to a file, newest event first."""
    out = tmp_path / f"feed.{fmt}"
    result = run(scenario, "feed", "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    data = out.read_bytes()
    assert data == run(scenario, "feed", "--format", fmt).stdout_bytes
    if fmt == "json":
        items = json.loads(data)["items"]
        titles = [i["title"] for i in items]
    else:
        titles = [e.title for e in feedparser.parse(data).entries]
    assert len(titles) == 5
    assert set(titles[:2]) == {"Removed: WebWise Conference", "Restored: Film Forward"}


def test_feed_output_takes_its_format_from_the_suffix_and_writes_through_a_link(
    scenario, tmp_path, monkeypatch
):
    """Without --format, -o's suffix names the format, as [feed].path's does (.rss, .json,
    else Atom); --format still wins; `-o -` is stdout; a symlink (a feed linked into a
    web root) is written through, its target updated and the link kept."""
    out = tmp_path / "out"
    out.mkdir()
    for name, fmt in (("f.rss", "rss"), ("f.json", "json"), ("f.atom", "atom"), ("f", "atom")):
        assert run(scenario, "feed", "-o", str(out / name)).exit_code == 0
        want = run(scenario, "feed", "--format", fmt).stdout_bytes
        assert (out / name).read_bytes() == want, name
    assert run(scenario, "feed", "--format", "atom", "-o", str(out / "x.json")).exit_code == 0
    assert (out / "x.json").read_bytes() == run(scenario, "feed").stdout_bytes
    monkeypatch.chdir(tmp_path)
    dash = run(scenario, "feed", "--format", "json", "-o", "-")
    assert json.loads(dash.stdout_bytes)["items"] and not (tmp_path / "-").exists()
    www = tmp_path / "www"
    www.mkdir()
    (www / "real.atom").write_text("old", encoding="utf-8")
    (out / "link.atom").symlink_to(www / "real.atom")
    assert run(scenario, "feed", "-o", str(out / "link.atom")).exit_code == 0
    assert (out / "link.atom").is_symlink()
    assert (www / "real.atom").read_bytes() == run(scenario, "feed").stdout_bytes


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "ascii"])
def test_a_non_utf8_output_gets_every_event_and_no_traceback(site, tmp_path, encoding):
    """On a latin-1 or cp1252 stdout (a Windows redirect, an old terminal), `check --json`
    prints every committed event, as JSON with escapes, and `log --diff` prints its arrows
    escaped: no UnicodeEncodeError after the cycle was recorded (its events lost to cron)."""
    import os
    import subprocess
    import sys

    config = write_config(tmp_path, imls_pages(site))
    site.serve_file(ACTIVE_PATH, SCENARIO / "step1" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    assert run(config, "check").exit_code == 0
    site.serve_file(ACTIVE_PATH, SCENARIO / "step2" / "active.html")
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step2" / "archived.html")
    env = dict(os.environ, PYTHONIOENCODING=encoding)
    monitor = [sys.executable, "-m", "monitor", "--config", str(config)]
    checked = subprocess.run([*monitor, "check", "--json"], capture_output=True, env=env)
    assert checked.returncode == 0 and b"Traceback" not in checked.stderr, checked.stderr
    printed = [json.loads(line) for line in checked.stdout.splitlines()]
    logged = json_lines(run(config, "log", "--json"))
    assert sorted(printed, key=lambda e: e["id"]) == sorted(logged, key=lambda e: e["id"])
    assert len(printed) == 3
    assert any(not e["description"].isascii() for e in printed if e.get("description"))
    diff = subprocess.run([*monitor, "log", "--diff"], capture_output=True, env=env)
    assert diff.returncode == 0 and b"Traceback" not in diff.stderr, diff.stderr


@pytest.mark.parametrize("option", ["--data-dir", "--config"])
def test_an_empty_path_option_is_a_usage_error_not_the_working_directory(
    scenario, tmp_path, monkeypatch, option
):
    """`--data-dir "$DATA"` with DATA unset: exit 2 naming the option, and no archive
    started in the working directory (before: monitor.db and warc/ landed there)."""
    work = tmp_path / "cron-cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run(scenario, "check", option, "")
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': must not be empty" in result.stderr
    assert list(work.iterdir()) == []


def test_ctrl_c_during_a_check_exits_130_and_records_nothing(site, tmp_path):
    """Ctrl-C while pages are fetched: exit 130 (128 + SIGINT, as shells say), not 1 (which
    tells cron a page failed), no traceback, and no half of the cycle recorded."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    from werkzeug import Response

    asked, release = threading.Event(), threading.Event()

    def hanging(request):
        asked.set()
        release.wait(30)
        return Response("<html></html>", content_type="text/html")

    config = write_config(tmp_path, imls_pages(site))
    site.serve_file(ARCHIVED_PATH, SCENARIO / "step1" / "archived.html")
    site.serve(ACTIVE_PATH, hanging)
    command = [sys.executable, "-m", "monitor", "--config", str(config), "check"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert asked.wait(30)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        said = proc.stderr.read()
        assert "Interrupted." in said and "Traceback" not in said
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert "last check: none yet" in run(config, "status").stdout


def test_show_headers_and_unknown_capture(scenario):
    """show --headers prints the archived status line and headers; an unknown id exits 1."""
    captures = json_lines(run(scenario, "snapshots", "--json"))
    result = run(scenario, "show", "--headers", str(captures[0]["id"]))
    assert result.exit_code == 0
    assert result.stdout.startswith("HTTP/1.1 200")
    assert "Content-Type: text/html" in result.stdout
    missing = run(scenario, "show", "99999")
    assert missing.exit_code == 1
    assert "no capture #99999" in missing.stderr


def test_show_prints_any_body_a_check_accepted_however_high_max_bytes(
    site, tmp_path, monkeypatch
):
    """`show` decodes up to max_bytes when it is set above show's own bound: a gzip body
    the check accepted (under max_bytes) prints whole; one past max_bytes is refused
    naming max_bytes and `show --raw`."""
    import gzip

    from werkzeug import Response

    import monitor.records

    monkeypatch.setattr(monitor.records, "SHOW_MAX_BYTES", 1_000_000)  # show's own bound
    html = (ACTIVE_PATH_FIXTURE.read_bytes() + b"<!--" + b" " * 2_000_000 + b"-->")
    bodies = {"/big": gzip.compress(html), "/bomb": gzip.compress(html + b" " * 2_000_000)}
    for path, body in bodies.items():
        site.serve(path, lambda request, body=body: Response(
            body, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}))  # fmt: skip
    named = [("big", "/big"), ("bomb", "/bomb")]
    pages = [dict(p, url=site.url(path), name=name)
             for p, (name, path) in zip(imls_pages(site), named, strict=True)]  # fmt: skip
    config = write_config(tmp_path, pages, monitor={"max_bytes": 3_000_000})
    assert run(config, "check").exit_code == 1  # the bomb page is a page-error
    captures = {c["page"]: c["id"] for c in json_lines(run(config, "snapshots", "--json"))}
    big = run(config, "show", str(captures["big"]))
    assert big.exit_code == 0 and big.stdout_bytes == html
    bomb = run(config, "show", str(captures["bomb"]))
    assert bomb.exit_code == 1 and "max_bytes (3000000 bytes)" in bomb.stderr
    assert f"monitor show --raw {captures['bomb']}" in bomb.stderr


def test_snapshots_lists_revisits(scenario, site):
    """An unchanged check appears in snapshots as a revisit of the earlier capture."""
    assert run(scenario, "check").exit_code == 0
    lines = run(scenario, "snapshots", "--page", "active", "--limit", "1").stdout
    assert "revisit of #" in lines


def test_snapshots_of_an_unknown_page_is_a_usage_error(scenario):
    """A mistyped --page is refused (exit 2, the pages named), as by log and check: an
    empty list would read as "no captures"."""
    result = run(scenario, "snapshots", "--page", "actve")
    assert result.exit_code == 2
    assert "'actve': no such page" in result.stderr and "active" in result.stderr
    assert run(scenario, "snapshots", "--page", "active", "--json").stdout.strip()


@pytest.mark.parametrize("command", [["log"], ["entries"], ["snapshots"], ["status"]])
@pytest.mark.parametrize("order", [["--json", "--csv"], ["--csv", "--json"]])
def test_json_and_csv_are_alternatives(scenario, command, order):
    """Both formats at once is a usage error, whichever comes first."""
    result = run(scenario, *command, *order)
    assert result.exit_code == 2
    assert "--json and --csv are alternatives" in result.stderr
    assert result.stdout == ""


def test_verify_json(scenario):
    """verify --json reports ok, counts and no problems on a healthy data dir."""
    result = run(scenario, "verify", "--json")
    assert result.exit_code == 0
    (report,) = json_lines(result)
    assert report["ok"] is True and report["problems"] == []
    assert report["captures"] >= 6 and report["entries"] == 9
