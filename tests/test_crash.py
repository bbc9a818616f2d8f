"""kill -9 in the middle of `monitor check`: whole cycles only, no event lost or doubled.

The watched site (8 pages, about 1 900 entries) changes between iterations: entries are
added, edited, archived, restored, removed and brought back. Each iteration sets the
next state of the site, starts `python -m monitor check` as a subprocess, kills it with
SIGKILL after a seeded random delay, then runs a normal check to completion and
checks the record.

How "nothing lost, nothing doubled" is decided: a reference data directory goes
through the same sequence of site states with uninterrupted checks, one per state.
In the crash run, each state is seen by the killed check and then by a completing
one; whichever of the two commits first records the state's transitions, and the
other then sees no change. So after every iteration the crash run's events, as a
multiset of (kind, page, title, link, description), must equal the reference's
after the same state: an event lost shows as missing, an event recorded twice (or a
transition half-recorded) as extra. Entry ids and times differ between the two runs
and are left out; every event field a reader sees is compared.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import json_lines, run, write_config
from servers import FaultServer, Respond
from warcio.archiveiterator import ArchiveIterator

from monitor.archive import CycleWriter, iter_file_records, verify_archive
from monitor.models import HttpExchange, utc_now

ACTIVE_PAGES = 6
ARCHIVED_PAGES = 2
START_ACTIVE = 2_400
START_ARCHIVED = 600
CHANGES_PER_STEP = 60
KILLS = 25
SEED = 20261125
SELECT = {"item": ".row", "title": "h3", "link": "a[href]", "description": "p"}


# -- the changing site ------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    where: str  # "active" | "archived" | "gone"
    rev: int = 0  # title revision: an edit bumps it


def evolve(state: dict[int, Item], rng: random.Random, step: int) -> dict[int, Item]:
    """The next state of the site: a few entries added, edited, moved, removed, brought back."""
    new = dict(state)
    numbers = sorted(state)
    for _ in range(CHANGES_PER_STEP):
        what = rng.choice(["add", "edit", "archive", "restore", "remove", "return"])
        n = rng.choice(numbers)
        item = new[n]
        if what == "add":
            new[max(new) + 1] = Item("active" if rng.random() < 0.7 else "archived")
        elif what == "edit" and item.where != "gone":
            new[n] = Item(item.where, item.rev + 1)
        elif what == "archive" and item.where == "active":
            new[n] = Item("archived", item.rev)
        elif what == "restore" and item.where == "archived":
            new[n] = Item("active", item.rev)
        elif what == "remove" and item.where != "gone":
            new[n] = Item("gone", item.rev)
        elif what == "return" and item.where == "gone":
            new[n] = Item(rng.choice(["active", "archived"]), item.rev)
    return new


def render(state: dict[int, Item]) -> dict[str, bytes]:
    """Path -> body of each page: entry n stands on page n mod the pages of its role."""
    rows: dict[str, list[str]] = {f"/a{i}": [] for i in range(ACTIVE_PAGES)}
    rows |= {f"/r{i}": [] for i in range(ARCHIVED_PAGES)}
    for n, item in sorted(state.items()):
        if item.where == "gone":
            continue
        if item.where == "active":
            path, href = f"/a{n % ACTIVE_PAGES}", f"/programs/p{n}"
        else:
            path, href = f"/r{n % ARCHIVED_PAGES}", f"/programs/archives/p{n}"
        title = f"Program {n}" + (f", revision {item.rev}" if item.rev else "")
        rows[path].append(
            f'<div class="row"><h3><a href="{href}">{title}</a></h3>'
            f"<p>Began in year {n % 97}.</p></div>"
        )
    return {
        path: ("<html><body>" + "\n".join(items) + "</body></html>").encode()
        for path, items in rows.items()
    }


def site_states() -> list[dict[int, Item]]:
    """The baseline state and one state per kill, all from SEED."""
    rng = random.Random(SEED)
    state = {n: Item("active") for n in range(START_ACTIVE)}
    state |= {n: Item("archived") for n in range(START_ACTIVE, START_ACTIVE + START_ARCHIVED)}
    states = [state]
    for step in range(KILLS):
        states.append(evolve(states[-1], rng, step))
    return states


def serve(server: FaultServer, state: dict[int, Item]) -> None:
    for path, body in render(state).items():
        server.set(path, Respond(200, body))


def make_config(directory: Path, server: FaultServer) -> Path:
    directory.mkdir()
    pages = [
        {"name": f"a{i}", "url": server.url(f"/a{i}"), "role": "active", "select": SELECT}
        for i in range(ACTIVE_PAGES)
    ] + [
        {"name": f"r{i}", "url": server.url(f"/r{i}"), "role": "archived", "select": SELECT}
        for i in range(ARCHIVED_PAGES)
    ]
    return write_config(
        directory, pages, monitor={"concurrency": 4}, feed={"path": "data/changes.atom"}
    )


# -- reading the record -------------------------------------------------------------------


def event_multiset(config: Path) -> Counter:
    """Every event as a reader sees it, less its id, time, entry id and capture id."""
    conn = database(config)
    try:
        rows = conn.execute("SELECT kind, page, title, link, description, changes FROM events")
        return Counter(rows.fetchall())
    finally:
        conn.close()


def logged(config: Path) -> Counter:
    """The same, as `monitor log --json` shows it."""
    return Counter(
        (e["kind"], e["page"], e.get("title"), e.get("link"), e.get("description"),
         json.dumps(e.get("changes"), sort_keys=True))
        for e in json_lines(run(config, "log", "--json"))
    )


def database(config: Path) -> sqlite3.Connection:
    return sqlite3.connect(config.parent / "data" / "monitor.db")


def whole_cycles_only(config: Path) -> None:
    """Every check finished, and nothing points at a check that is not there."""
    conn = database(config)
    try:
        unfinished = conn.execute("SELECT count(*) FROM checks WHERE finished_at IS NULL")
        assert unfinished.fetchone() == (0,)
        for table in ("events", "captures", "entry_versions"):
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} WHERE check_id NOT IN (SELECT id FROM checks)"
            )
            assert orphans.fetchone() == (0,), table
    finally:
        conn.close()


def committed_checks(config: Path) -> int:
    conn = database(config)
    try:
        return conn.execute("SELECT count(*) FROM checks").fetchone()[0]
    finally:
        conn.close()


def warc_sizes(warc_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in warc_dir.glob("*.warc.gz")}


def phase_of(config: Path, warc_before: dict[Path, int], checks_before: int, exited: bool) -> str:
    """Where the kill landed, told by what it left behind."""
    if exited:
        return "finished before the kill"
    if committed_checks(config) > checks_before:
        return "after the commit (publishing the feed, exiting)"
    # A cycle appends to the day's file (or starts the next one): what grew since before.
    grown = {p: warc_before.get(p, 0) for p, size in warc_sizes(config.parent / "data" / "warc")
             .items() if size > warc_before.get(p, 0)}
    if not grown:
        return "starting up (nothing written yet)"
    responses = sum(1 for path, start in grown.items() for offset, kind, _ in
                    iter_file_records(path) if offset >= start and kind in ("response", "revisit"))
    if responses < ACTIVE_PAGES + ARCHIVED_PAGES:
        return "fetching and archiving"
    return "archived, not committed (classifying, storing)"


def check_subprocess(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "check", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=config.parent,
    )


# -- the test -----------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_doubles_nothing(server, tmp_path):
    """25 kills at seeded random points of a cycle: whole cycles only, every event exactly once."""
    states = site_states()

    # The reference: the same states, checked without interruption. The first changed
    # states are checked by a subprocess, to time a whole cycle as the kills will see it.
    reference = make_config(tmp_path / "reference", server)
    expected: list[Counter] = []
    durations = []
    for index, state in enumerate(states):
        serve(server, state)
        if 1 <= index <= 2:
            started = time.monotonic()
            assert check_subprocess(reference).wait(timeout=120) == 0
            durations.append(time.monotonic() - started)
        else:
            assert run(reference, "check").exit_code == 0
        expected.append(event_multiset(reference))
    assert sum(expected[-1].values()) > KILLS * 10  # the site did change a lot
    cycle_s = max(durations)

    # The crash run: one kill per state, at delays spread over the whole cycle.
    config = make_config(tmp_path / "crash", server)
    serve(server, states[0])
    assert run(config, "check").exit_code == 0
    rng = random.Random(SEED)
    # Stratified: one delay drawn in each of KILLS equal slices of the cycle, then shuffled.
    delays = [(i + rng.random()) * cycle_s / KILLS for i in range(KILLS)]
    rng.shuffle(delays)
    phases: Counter = Counter()
    warc_dir = config.parent / "data" / "warc"
    for step, delay in enumerate(delays, start=1):
        serve(server, states[step])
        warc_before = warc_sizes(warc_dir)
        checks_before = committed_checks(config)
        process = check_subprocess(config)
        time.sleep(delay)
        exited = process.poll() is not None
        if not exited:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        phases[phase_of(config, warc_before, checks_before, exited)] += 1

        completed = run(config, "check", "--json")
        assert completed.exit_code == 0, completed.stderr
        whole_cycles_only(config)
        verified = run(config, "verify", "--json")
        (report,) = json_lines(verified)
        assert verified.exit_code == 0 and report["ok"], report["problems"]
        # No warning: the completing check cut the killed cycle's torn tail, if any.
        assert report["problems"] == []
        assert list(warc_dir.glob("*.warc.gz.open")) == []
        assert event_multiset(config) == expected[step], f"step {step}, delay {delay:.2f}s"

    # The end state is the reference's, entry for entry.
    def standing(cfg: Path) -> list[tuple]:
        rows = json_lines(run(cfg, "entries", "--json"))
        return sorted((e["state"], e["page"], e["title"], e["description"]) for e in rows)

    assert standing(config) == standing(reference)
    assert logged(config) == logged(reference)
    shown = assert_every_capture_reads_back(config)
    assert_warcio_reads_every_file(warc_dir)
    files = len(list(warc_dir.glob("*.warc.gz")))
    print(f"\ncycle {cycle_s:.2f}s; kills by phase: {dict(phases)}; WARC files: {files}; "
          f"{shown} captures shown")
    assert phases["finished before the kill"] < KILLS  # the kills did land inside cycles


def assert_every_capture_reads_back(config: Path) -> int:
    """`monitor show` prints every committed capture, its digest the one recorded; how many."""
    captures = json_lines(run(config, "snapshots", "--json"))
    assert captures
    for capture in captures:
        if capture["warc_file"] is None:
            continue
        shown = run(config, "show", str(capture["id"]))
        assert shown.exit_code == 0, shown.stderr
        digest = base64.b32encode(hashlib.sha1(shown.stdout_bytes).digest()).decode()
        assert capture["payload_digest"] == f"sha1:{digest}"
    return len(captures)


def assert_warcio_reads_every_file(warc_dir: Path) -> None:
    """warcio reads every record of every *.warc.gz file, as many as monitor's own reader."""
    for path in warc_dir.glob("*.warc.gz"):
        count = 0
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                record.content_stream().read()
                count += 1
        assert count == sum(1 for _ in iter_file_records(path)), path


# -- a torn last record, at every kind of offset ------------------------------------------


def exchanges(count: int) -> list[HttpExchange]:
    """Responses of both kinds of body: compressible HTML and incompressible bytes."""
    bodies = [b"<html>" + b"x" * 5000 + b"</html>", os.urandom(3000)]
    return [
        HttpExchange("GET", f"http://127.0.0.1/p{i}", (("Host", "127.0.0.1"),), "HTTP/1.1", 200,
                     "OK", (("Content-Type", "text/html"),), bodies[i % 2], utc_now())
        for i in range(count)
    ]


def test_a_torn_tail_is_cut_when_the_writer_next_opens_the_file(tmp_path):
    """A record torn by a crash is a warning until the next writer cuts it and appends after."""
    warc_dir = tmp_path / "warc"
    with CycleWriter(warc_dir, "killed", utc_now()) as writer:
        refs = [writer.write_exchange(exchange, None) for exchange in exchanges(2)]
    (path,) = warc_dir.glob("*.warc.gz")
    whole = path.stat().st_size
    with open(path, "r+b") as fh:  # what a kill mid-write leaves: half of the last record
        fh.truncate(refs[1].offset + refs[1].length // 2)
    problems = verify_archive(warc_dir, [(1, path.name, refs[0].offset, refs[0].record_id)])
    assert [(p.severity, "incomplete record" in p.message) for p in problems] == [("warning", True)]

    with CycleWriter(warc_dir, "next", utc_now()) as writer:
        (later,) = [writer.write_exchange(exchange, None) for exchange in exchanges(1)]
    assert later.warc_file == path.name and later.offset == refs[1].offset  # cut, then appended
    assert path.stat().st_size < whole
    pointed = [(1, path.name, refs[0].offset, refs[0].record_id),
               (2, path.name, later.offset, later.record_id)]
    assert verify_archive(warc_dir, pointed) == []
    with open(path, "rb") as stream:
        assert sum(1 for _ in ArchiveIterator(stream)) == 5  # warcinfo + 2 x (response, request)


def test_a_torn_last_record_is_skipped_wherever_the_file_ends(tmp_path):
    """A WARC file cut at any byte reads up to the tear: whole records, then one warning."""
    warc_dir = tmp_path / "warc"
    with CycleWriter(warc_dir, "torn", utc_now()) as writer:
        refs = [writer.write_exchange(exchange, None) for exchange in exchanges(4)]
    (path,) = warc_dir.glob("*.warc.gz")
    whole = path.read_bytes()
    starts = [offset for offset, _, _ in iter_file_records(path)] + [len(whole)]
    cuts = sorted({1, 2, 10, 100, len(whole) - 1} | set(range(1, len(whole), 61)))
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    target = cut_dir / path.name
    for cut in cuts:
        target.write_bytes(whole[:cut])
        before_tear = sum(1 for start, end in itertools.pairwise(starts) if end <= cut)
        assert len(list(iter_file_records(target))) == before_tear, cut
        whole_refs = [(i, path.name, r.offset, r.record_id) for i, r in enumerate(refs)
                      if r.offset + r.length <= cut]
        problems = verify_archive(cut_dir, whole_refs)
        torn = cut not in starts
        assert [p.severity for p in problems] == (["warning"] if torn else []), (cut, problems)
