"""Bad configs, bad commands, a read-only or full disk, a damaged record: clear errors, no loss.

Through the real CLI. A read-only data directory and a full disk need a process that
the kernel refuses writes to: such checks run `python -m monitor` as a subprocess,
without the capabilities that let root write anywhere (when the tests run as root),
and with RLIMIT_FSIZE for a disk that fills up (a write past the limit fails with
EFBIG, which takes the same error paths as ENOSPC).
"""

from __future__ import annotations

import base64
import ctypes
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import json_lines, run, write_config
from servers import FaultServer, Respond

SELECT = {"item": ".row", "title": "h3", "link": "a", "description": "p"}
WORDS = "library museum grant archive reading science history community digital".split()


def description(n: int, words: int) -> str:
    rng = random.Random(n)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def title(n: int, edit: int = 0) -> str:
    return f"Item {n} (rev {edit})" if edit and n % 3 == 0 else f"Item {n}"


def listing(count: int = 30, *, edit: int = 0, words: int = 4, blob: str = "") -> bytes:
    """`count` entries; with `edit`, every third title carries that revision number."""
    rows = "".join(
        f'<div class="row"><h3><a href="/p/{n}">{title(n, edit)}</a></h3>'
        f"<p>{description(n, words)}</p></div>"
        for n in range(count)
    )
    comment = f"<!-- {blob} -->" if blob else ""
    return f"<html><body>{comment}{rows}</body></html>".encode()


@dataclass
class Recorded:
    """A data directory with a baseline of 30 entries, and the server of its one page."""

    server: FaultServer
    config: Path

    @property
    def data(self) -> Path:
        return self.config.parent / "data"

    def monitor(self, *args: str, preexec: Callable[[], None] | None = None):
        """`python -m monitor ARGS` in a subprocess (see the module docstring)."""
        return subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            preexec_fn=preexec,
            timeout=120,
        )

    def events(self) -> Counter:
        return Counter((e["kind"], e["title"]) for e in json_lines(run(self.config, "log",
                                                                       "--json")))


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recorded]:
    with FaultServer() as server:
        server.set("/list", Respond(200, listing()))
        config = write_config(
            tmp_path,
            [{"name": "list", "url": server.url("/list"), "role": "active", "select": SELECT}],
            feed={"path": "data/changes.atom"},
        )
        assert run(config, "check").exit_code == 0
        yield Recorded(server, config)


def no_traceback(*outputs: str) -> None:
    for output in outputs:
        assert "Traceback" not in output, output


# -- invalid configs, through the CLI ---------------------------------------------------------

PAGE = '[[pages]]\nname = "a"\nurl = "https://example.org/list"\nrole = "active"\n'
SELECTS = '[pages.select]\nitem = ".row"\n'
GOOD_PAGE = PAGE + SELECTS


def in_section(section: str, line: str) -> str:
    return f"[{section}]\n{line}\n{GOOD_PAGE}"


# A representative few of tests/test_config.py's ~70 cases, then ones it does not have.
CONFIGS = {
    "unknown-key-misspelt": (in_section("monitor", "timout = 30"), "monitor.timout"),
    "retries-string": (in_section("monitor", 'retries = "three"'), "monitor.retries"),
    "timeout-zero": (in_section("monitor", "timeout = 0"), "monitor.timeout"),
    "anomaly-ratio-above-1": (in_section("monitor", "anomaly_ratio = 1.5"),
                              "monitor.anomaly_ratio"),
    "interval-and-cron": (in_section("schedule", 'interval = "6h"\ncron = "0 * * * *"'),
                          "schedule.cron"),
    "duplicate-page-name": (GOOD_PAGE + GOOD_PAGE, "pages[1].name"),
    "url-ftp": (GOOD_PAGE.replace("https://example.org/list", "ftp://x"), "pages[0].url"),
    "item-missing": (PAGE + '[pages.select]\ntitle = "h2"\n', "pages[0].select.item"),
    "item-invalid-css": (PAGE + '[pages.select]\nitem = "div["\n', "pages[0].select.item"),
    # not in test_config.py
    "max-bytes-negative": (in_section("monitor", "max_bytes = -1"), "monitor.max_bytes"),
    "max-bytes-with-unit": (in_section("monitor", 'max_bytes = "10MB"'), "monitor.max_bytes"),
    "concurrency-float": (in_section("monitor", "concurrency = 1.5"), "monitor.concurrency"),
    "confirm-checks-string": (in_section("monitor", 'confirm_checks = "2"'),
                              "monitor.confirm_checks"),
    "data-dir-array": (in_section("monitor", 'data_dir = ["a"]'), "monitor.data_dir"),
    "data-dir-nul": (in_section("monitor", 'data_dir = "a\\u0000b"'), "monitor.data_dir"),
    "feed-max-entries-negative": (in_section("feed", "max_entries = -3"), "feed.max_entries"),
    "feed-title-empty": (in_section("feed", 'title = ""'), "feed.title"),
    "jitter-number": (in_section("schedule", "jitter = 5"), "schedule.jitter"),
    "run-at-start-1": (in_section("schedule", "run_at_start = 1"), "schedule.run_at_start"),
    "interval-999d": (in_section("schedule", 'interval = "999d"'), "schedule.interval"),
    "cron-empty": (in_section("schedule", 'cron = ""'), "schedule.cron"),
    "url-with-space": (GOOD_PAGE.replace("example.org", "exa mple.org"), "pages[0].url"),
    "url-javascript": (GOOD_PAGE.replace("https://example.org/list", "javascript:alert(1)"),
                       "pages[0].url"),
    "url-newline": (GOOD_PAGE.replace("/list", "/\\nlist"), "pages[0].url"),
    "url-empty": (GOOD_PAGE.replace("https://example.org/list", ""), "pages[0].url"),
    "role-upper-case": (GOOD_PAGE.replace('"active"', '"ACTIVE"'), "pages[0].role"),
    "name-not-ascii": (GOOD_PAGE.replace('name = "a"', 'name = "☃"'), "pages[0].name"),
    "item-number": (PAGE + "[pages.select]\nitem = 5\n", "pages[0].select.item"),
    "title-selector-empty": (GOOD_PAGE + 'title = ""\n', "pages[0].select.title"),
    "description-selector-empty": (GOOD_PAGE + 'description = ""\n',
                                   "pages[0].select.description"),
    "has-without-argument": (PAGE + '[pages.select]\nitem = ":has()"\n', "pages[0].select.item"),
    "select-an-array": (PAGE + 'select = [".row"]\n', "pages[0].select"),
    "inline-page-without-select": (
        'pages = [{name = "a", url = "https://x.org/", role = "active"}]\n', "pages[0].select"
    ),
    "monitor-array-of-tables": ("[[monitor]]\nretries = 1\n" + GOOD_PAGE, "monitor"),
    "empty-file": ("", "pages"),
    "toml-duplicate-key": ("[monitor]\nretries = 1\nretries = 2\n" + GOOD_PAGE, "invalid TOML"),
    "toml-duplicate-table": ("[monitor]\nretries = 1\n[monitor]\ntimeout = 2\n" + GOOD_PAGE,
                             "invalid TOML"),
}


@pytest.mark.parametrize(("text", "key"), list(CONFIGS.values()), ids=list(CONFIGS))
def test_invalid_config_exits_2_naming_file_and_key(tmp_path, text, key):
    """Every command given an invalid config exits 2 with "Error: FILE: KEY: ...", no traceback."""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    for command in (["check"], ["log"], ["verify"]):
        result = run(path, *command)
        no_traceback(result.stdout, result.stderr)
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr.startswith(f"Error: {path}: {key}"), result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "snapshots").exists()


def test_user_agent_that_is_not_ascii_is_a_config_error(tmp_path):
    """A user_agent HTTP cannot carry (not ASCII) is a config error naming the key, exit 2."""
    path = tmp_path / "config.toml"
    path.write_text(in_section("monitor", 'user_agent = "mönitor ☃"'), encoding="utf-8")
    result = run(path, "check")
    assert result.exit_code == 2
    assert "monitor.user_agent" in result.stderr


@pytest.mark.parametrize(
    "how",
    ["missing", "a-directory", "not-utf8", "toml-syntax", "env-var-missing", "default-missing"],
)
def test_unreadable_config_file_exits_2_naming_it(tmp_path, monkeypatch, how):
    """A config file that is absent, a directory, not text or not TOML: exit 2, named."""
    path = tmp_path / "config.toml"
    args = ["--config", str(path)]
    if how == "a-directory":
        path.mkdir()
    elif how == "not-utf8":
        path.write_bytes(b"[feed]\ntitle = \"caf\xe9\"\n")
    elif how == "toml-syntax":
        path.write_text("[monitor]\nretries = = 3\n")
    elif how == "env-var-missing":
        monkeypatch.setenv("MONITOR_CONFIG", str(path))
        args = []
    elif how == "default-missing":
        monkeypatch.delenv("MONITOR_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        args = []
    from click.testing import CliRunner

    from monitor.cli import cli

    result = CliRunner().invoke(cli, [*args, "check"], catch_exceptions=False)
    no_traceback(result.stdout, result.stderr)
    assert result.exit_code == 2
    assert "config.toml" in result.stderr
    if how == "toml-syntax":
        assert "line 2" in result.stderr


# -- bad commands -----------------------------------------------------------------------------

USAGE = {
    "check-unknown-page": (["check", "--page", "nope"], 2, "nope"),
    "check-negative-wait": (["check", "--wait", "-1"], 2, "--wait"),
    "check-stray-argument": (["check", "now"], 2, "now"),
    "log-since-not-a-date": (["log", "--since", "notadate"], 2, "notadate"),
    "log-since-impossible-date": (["log", "--since", "2026-13-45"], 2, "2026-13-45"),
    "log-kind-nonsense": (["log", "--kind", "nonsense"], 2, "nonsense"),
    "log-limit-zero": (["log", "--limit", "0"], 2, "--limit"),
    "log-csv-diff": (["log", "--csv", "--diff"], 2, "--diff shows word diffs in the text log"),
    "entries-state-bogus": (["entries", "--state", "bogus"], 2, "bogus"),
    "history-unknown-id": (["history", "0123456789ab"], 1, "no entry '0123456789ab'"),
    "history-no-id": (["history"], 2, "ENTRY_ID"),
    "show-unknown-id": (["show", "999999"], 1, "no capture #999999"),
    "show-not-a-number": (["show", "abc"], 2, "abc"),
    "show-negative-id": (["show", "--", "-5"], 1, "no capture #-5"),
    "snapshots-unknown-page": (["snapshots", "--page", "nope"], 2, "'nope': no such page"),
    "feed-format-xml": (["feed", "--format", "xml"], 2, "xml"),
    "serve-port-out-of-range": (["serve", "--port", "70000"], 2, "70000"),
    "unknown-command": (["frobnicate"], 2, "frobnicate"),
    "backfill-until-before-since": (["backfill", "--since", "2018-01-01", "--until",
                                     "2016-01-01"], 2, "2016-01-01 is before --since 2018-01-01"),
}  # fmt: skip


@pytest.mark.parametrize(("args", "code", "says"), list(USAGE.values()), ids=list(USAGE))
def test_bad_command_gives_a_clear_error_and_exit_code(recorded, args, code, says):
    """A mistyped command or a wrong id: the right exit code and a message naming the mistake."""
    before = recorded.events()
    result = run(recorded.config, *args)
    no_traceback(result.stdout, result.stderr)
    assert result.exit_code == code, result.stderr
    assert says in result.stderr
    assert recorded.events() == before


@pytest.mark.parametrize(
    "args",
    [["log"], ["entries"], ["history", "abc"], ["snapshots"], ["show", "1"], ["verify"],
     ["feed"]],
    ids=lambda args: args[0],
)
def test_reading_before_any_check_says_so(tmp_path, args):
    """Every reading command on a data directory with no database says to run check (exit 1)."""
    config = write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/",
                                      "role": "active"}])
    result = run(config, *args)
    no_traceback(result.stdout, result.stderr)
    assert result.exit_code == 1
    assert "monitor check" in result.stderr
    assert not (tmp_path / "data" / "monitor.db").exists()


# -- a read-only data directory ---------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root ignore file modes
_DAC_CAPS = (1, 2, 3)


def without_root_override() -> None:
    """preexec_fn: the child (and what it runs) obeys file modes even as root."""
    if os.geteuid() != 0:
        return
    for cap in _DAC_CAPS:
        if _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def can_drop_root_override() -> bool:
    if os.geteuid() != 0:
        return True
    probe = subprocess.run(["true"], preexec_fn=without_root_override, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not can_drop_root_override(),
                    reason="running as root without CAP_SETPCAP: file modes cannot be enforced")
@pytest.mark.parametrize(
    ("read_only", "named"),
    [
        pytest.param(lambda d: [d, *d.rglob("*")], "monitor.lock", id="everything"),
        pytest.param(lambda d: [d / "monitor.db"], "monitor.db", id="the-database-file"),
        pytest.param(lambda d: [d / "warc", *(d / "warc").iterdir()], "warc",
                     id="the-warc-directory"),
    ],
)
def test_read_only_data_dir_is_a_clear_error_and_loses_nothing(recorded, read_only, named):
    """check on a read-only data dir exits 1 naming the path; reading still works; no loss."""
    recorded.server.set("/list", Respond(200, listing(edit=1)))  # a change waiting to be seen
    before = recorded.events()
    modes = {}
    for path in read_only(recorded.data):
        modes[path] = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        check = recorded.monitor("check", preexec=without_root_override)
        no_traceback(check.stdout, check.stderr)
        assert check.returncode == 1
        error = check.stderr.strip().splitlines()[-1]
        assert error.startswith(f"Error: {recorded.data}") and named in error, error
        # Reading needs no write access: an archived copy on read-only media still answers.
        log = recorded.monitor("log", "--json", preexec=without_root_override)
        assert log.returncode == 0, log.stderr
        assert log.stdout == ""  # the baseline has no event, and the failed check added none
        verify = recorded.monitor("verify", preexec=without_root_override)
        assert verify.returncode == 0, verify.stderr
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert recorded.events() == before
    done = run(recorded.config, "check", "--json")
    assert done.exit_code == 0
    assert Counter(e["kind"] for e in json_lines(done)) == Counter({"changed": 10})
    assert run(recorded.config, "verify").exit_code == 0


def test_data_dir_under_a_regular_file_is_a_clear_error(tmp_path):
    """A data_dir path that runs through a regular file: exit 1 naming it, no traceback."""
    (tmp_path / "file").write_text("not a directory")
    config = write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/",
                                      "role": "active"}], monitor={"data_dir": "file/data"})
    result = run(config, "check")
    no_traceback(result.stdout, result.stderr)
    assert result.exit_code == 1
    assert str(tmp_path / "file" / "data") in result.stderr


# -- a full disk --------------------------------------------------------------------------------

BLOB = base64.b64encode(random.Random(5).randbytes(150_000)).decode()  # does not compress


def limited(max_bytes: int) -> Callable[[], None]:
    """preexec_fn: no file may grow past max_bytes (EFBIG, as ENOSPC would fail a write)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


@pytest.mark.parametrize(
    ("limit", "blob", "says"),
    [
        # SQLite's shared-memory file alone is 32 KiB: the database cannot even be opened.
        pytest.param(1_000, "", "cannot open the database", id="database-cannot-open"),
        # A 150 KB incompressible page: its WARC record cannot be written.
        pytest.param(60_000, BLOB, "cannot write a WARC record", id="warc-write-fails"),
        # The WARC file fits; the transaction's write-ahead log does not.
        pytest.param(40_000, "", "cannot record the check", id="commit-fails"),
        pytest.param(50_000_000, BLOB, None, id="room-enough"),
    ],
)
def test_full_disk_is_a_clear_error_and_loses_nothing(recorded, limit, blob, says):
    """A disk that fills up mid-check: exit 1 naming the file, the record whole, nothing lost."""
    recorded.server.set("/list", Respond(200, listing(blob=blob)))
    assert run(recorded.config, "check").exit_code == 0  # the page with its blob, unchanged
    recorded.server.set("/list", Respond(200, listing(edit=1, words=200, blob=blob)))
    before = recorded.events()
    check = recorded.monitor("check", preexec=limited(limit))
    no_traceback(check.stdout, check.stderr)
    if says is None:
        assert check.returncode == 0, check.stderr
    else:
        assert check.returncode == 1
        error = check.stderr.strip().splitlines()[-1]
        assert error.startswith(f"Error: {recorded.data}") and says in error, error
    assert before - recorded.events() == Counter()  # nothing recorded before is gone
    done = run(recorded.config, "check")
    assert done.exit_code == 0
    verify = run(recorded.config, "verify")
    assert verify.exit_code == 0, verify.stdout + verify.stderr
    # Whether or not the limited check committed, each change is recorded exactly once.
    changed = Counter({("changed", title(n, edit=1)): 1 for n in range(30)})
    assert recorded.events() == before + changed


def test_feed_that_cannot_be_written_still_records_the_check(recorded):
    """When the feed file cannot be written, the check is still recorded; exit 1 names the feed."""
    feed = recorded.data / "changes.atom"
    feed.unlink()
    feed.mkdir()  # a directory where the feed file should be
    recorded.server.set("/list", Respond(200, listing(edit=1)))
    result = run(recorded.config, "check", "--json")
    no_traceback(result.stdout, result.stderr)
    assert result.exit_code == 1
    assert str(feed) in result.stderr
    assert Counter(e["kind"] for e in json_lines(result)) == Counter({"changed": 10})
    feed.rmdir()
    assert run(recorded.config, "check").exit_code == 0
    assert "(rev 1)" in feed.read_text(encoding="utf-8")


# -- a damaged record ---------------------------------------------------------------------------


def test_database_overwritten_with_garbage_is_a_clear_error(recorded):
    """A monitor.db that is not a database: every command exits 1 naming it, no traceback."""
    (recorded.data / "monitor.db").write_bytes(b"this is not a database" * 100)
    for name in ("monitor.db-wal", "monitor.db-shm"):
        (recorded.data / name).unlink(missing_ok=True)
    for command in (["check"], ["log"], ["entries"], ["verify"]):
        result = run(recorded.config, *command)
        no_traceback(result.stdout, result.stderr)
        assert result.exit_code == 1, command
        assert str(recorded.data / "monitor.db") in result.stderr


@pytest.mark.parametrize(
    "column, value",
    [
        ("changes", "{not json"),
        ("changes", '["a list"]'),
        ("changes", '{"title": "no before or after"}'),
        ("at", "yesterday"),
    ],
    ids=["changes-not-json", "changes-a-list", "change-without-sides", "at-not-a-time"],
)
def test_an_events_row_edited_by_hand_is_a_clear_error(recorded, column, value):
    """An events row whose columns no monitor wrote: the commands that read it exit 1 naming
    the database and the event, with no traceback; the other events' commands still work."""
    recorded.server.set("/list", Respond(200, listing(edit=1)))
    assert run(recorded.config, "check").exit_code == 0
    db_path = recorded.data / "monitor.db"
    with sqlite3.connect(db_path) as db:
        (event_id,) = db.execute("SELECT id FROM events ORDER BY seq LIMIT 1").fetchone()
        db.execute(f"UPDATE events SET {column} = ? WHERE id = ?", (value, event_id))
    db.close()
    for command in (["log"], ["log", "--json"], ["feed", "--format", "json"]):
        result = run(recorded.config, *command)
        no_traceback(result.stdout, result.stderr)
        assert result.exit_code == 1, (command, result.stdout)
        assert str(db_path) in result.stderr and event_id in result.stderr, result.stderr
        assert "damaged" in result.stderr
    assert run(recorded.config, "status").exit_code == 0


def test_deleted_warc_file_is_reported_not_fatal(recorded):
    """With a WARC file gone, verify and show name it (exit 1), and checks go on."""
    (warc,) = (recorded.data / "warc").glob("*.warc.gz")
    warc.unlink()
    verify = run(recorded.config, "verify")
    assert verify.exit_code == 1
    assert warc.name in verify.stdout and "missing" in verify.stdout
    (capture,) = json_lines(run(recorded.config, "snapshots", "--json"))
    show = run(recorded.config, "show", str(capture["id"]))
    no_traceback(show.stdout, show.stderr)
    assert show.exit_code == 1 and warc.name in show.stderr
    recorded.server.set("/list", Respond(200, listing(edit=1)))
    check = run(recorded.config, "check", "--json")
    assert check.exit_code == 0
    assert Counter(e["kind"] for e in json_lines(check)) == Counter({"changed": 10})


FILL_EVERY_BYTE = r"""
import random, resource, shutil, signal, sys, tempfile
from datetime import UTC, datetime
from pathlib import Path
from monitor.archive import CycleWriter
from monitor.errors import StoreError
from monitor.models import HttpExchange

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
body = random.Random(1).randbytes(40_000)
exchange = HttpExchange("GET", "http://127.0.0.1/p", (), "HTTP/1.1", 200, "OK",
                        (("Content-Type", "text/html"),), body, datetime.now(UTC))
failures = 0
for limit in range(300, 45_000, int(sys.argv[1])):
    where = Path(tempfile.mkdtemp())
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        with CycleWriter(where, "full", datetime.now(UTC)) as writer:
            writer.write_exchange(exchange, None)
    except StoreError:
        failures += 1
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        shutil.rmtree(where)
print(failures)
"""


def test_a_disk_full_at_any_byte_of_a_warc_write_is_a_store_error(tmp_path):
    """Whichever byte of a WARC record the disk fills at, writing fails with StoreError only."""
    result = subprocess.run(
        [sys.executable, "-c", FILL_EVERY_BYTE, "211"], capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr  # an OSError escaping would end it with 1
    assert int(result.stdout) > 100  # the disk was full for almost every limit tried
