"""How close a `monitor check` cycle comes to the cost of just downloading the pages.

For each N in --sizes, a server in its own process (bench/server.py) serves N synthetic
~40 KB IMLS-style listing pages on 127.0.0.1. Three cycles are measured, each in a fresh
subprocess (so CPU time and peak RSS are that cycle's alone): the baseline (first check,
all new), an unchanged cycle (every page answers 304), and a cycle where --changed of the
pages changed (one description edited, one entry added, one removed on each). The same
three cycles are run by two floors (bench/floor.py): a plain concurrent httpx download
(conditional requests after the first cycle), and that plus BeautifulSoup+lxml selection
of the entries. Every sequence runs --repeat times and the fastest try counts. Then a
single page of 100 / 1,000 / 10,000 entries shows entry scaling; bench/steady.py measures
the daemon's steady state (back-to-back cycles in one process); and the largest N's three
cycles are run again under py-spy to show where the time goes. With valgrind installed, the
one-off check's instructions are counted too (callgrind): a figure that does not drift.
See bench/README.md.

Usage: python bench/bench.py [--sizes 200,1000] [--changed 0.1] [--entries 25]
       [--concurrency 16] [--entry-scaling 100,1000,10000] [--repeat 2] [--drift 3]
       [--steady-cycles 3] [--no-profile] [--gzip] [--git-ref REF] [--workdir DIR]
       [--no-instructions] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from profiling import PROFILE_RATE, profile_report, read_profile
from report import (
    CYCLES,
    TABLES,
    EntryScaling,
    Run,
    SizeResult,
    drift_table,
    entry_table,
    growth_table,
    size_table,
    steady_table,
    targets,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = sys.executable  # runs the bench and its page server
# What the measured processes run (monitor, the floors, steady.py): main() points it at a
# venv over this interpreter's packages without the editable install (`_runtime_venv`).
RUN_PYTHON = sys.executable
SRC = REPO  # the directory whose monitor/ package is measured (--git-ref changes it)
SRC_LABEL = ""
PROFILER = Path(shutil.which("py-spy") or Path(sys.executable).parent / "py-spy")
ONE_OFF_GOAL_S = 0.25  # the goal for `monitor check` of two local pages
SAMPLE_S = 0.02  # how often a measured process tree's RSS is summed
URLWATCH = Path(os.environ.get("URLWATCH", "urlwatch"))  # --urlwatch sets it
SELECT = {
    "item": ".view-content .views-row",
    "title": ".views-field-title",
    "link": "a[href]",
    "description": ".views-field-body",
}


# -- measuring one process -------------------------------------------------------------------



def _tree_rss_kb(root: int) -> int:
    """Resident KiB of `root` and every live descendant (a parser pool's workers count too)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: ppid
        rss[pid] = int(fields[21]) * (os.sysconf("SC_PAGESIZE") // 1024)  # fields[21]: rss
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


def measure(cmd: Sequence[str], tool: str, cycle: str, env: dict[str, str] | None = None) -> Run:
    """Run cmd to completion: wall time, CPU (user+sys) and peak RSS over its process tree.

    CPU comes from wait4 (the process and the children it waited for); peak memory is
    the larger of wait4's own peak and the peak of the tree's summed RSS, sampled.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=SRC, env=env)
        peak_kb = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_kb
            while not stop.wait(SAMPLE_S):
                peak_kb = max(peak_kb, _tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 gives this child's own rusage: no mixing with other children's
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            tool=tool,
            cycle=cycle,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_mb=max(usage.ru_maxrss, peak_kb) / 1024,  # Linux: KiB
            exit_code=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def _runtime_venv(work: Path) -> str:
    """The interpreter of a venv that holds what an installed monitor has, and no more: the
    distributions monitor requires (without extras) and, for the parse floor, BeautifulSoup,
    each linked from this interpreter's site-packages (the same files, no download).

    Not the project's venv: its editable install's import hook costs every process started
    there ~10 ms (`python -X importtime -c pass`: site 12.5 ms, against 2 ms in urlwatch's
    venv), and its test tools change what libraries import. httpx imports its command line
    client when click and pygments are importable (`httpx._main`): with pytest's pygments
    there, every measured process paid ~23 M instructions (callgrind) that an installed
    monitor, which has no pygments, does not. monitor itself comes from PYTHONPATH
    (`_env`): the working tree or --git-ref's copy.
    """
    venv = work / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    paths = sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})
    target = Path(paths["purelib"])
    for entry in target.iterdir():  # links of an earlier run: the closure may have changed
        if entry.is_symlink() or entry.name == "deps.pth":
            entry.unlink()
    for name in sorted(_installed_tops(_runtime_closure(["monitor", "beautifulsoup4"]))):
        (target / name.name).symlink_to(name)
    return str(venv / "bin" / "python")


def _runtime_closure(roots: Sequence[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need to run, themselves (bar monitor) included:
    requirements followed recursively, those behind an extra left out."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        dist = metadata.distribution(todo.pop())
        name = Requirement(dist.metadata["Name"]).name.lower().replace("_", "-")
        if name in found:
            continue
        found[name] = dist
        for spec in dist.requires or ():
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    found.pop("monitor", None)  # from PYTHONPATH: the code measured
    return list(found.values())


def _installed_tops(dists: Sequence[metadata.Distribution]) -> set[Path]:
    """The top-level entries of site-packages (packages, modules, .dist-info) of `dists`."""
    tops: set[Path] = set()
    for dist in dists:
        if dist.files is None:
            raise SystemExit(f"{dist.metadata['Name']} lists no files (no RECORD): "
                             "reinstall it with pip")
        for file in dist.files:
            top = file.parts[0]
            if top not in ("..", "__pycache__") and not top.endswith(".pth"):
                tops.add(Path(dist.locate_file(top)))
    return tops


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("MONITOR_CONFIG", None)
    # Cached bytecode, as an installed package has: else every run recompiles monitor/.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# -- the page server -------------------------------------------------------------------------


class Server:
    """bench/server.py in its own process, and its control endpoints."""

    def __init__(self, pages: int, entries: int, *, mutation: tuple[int, int, int], gzip: bool):
        self.pages = pages
        self._dir = Path(tempfile.mkdtemp(prefix="monitor-bench-server-"))
        port_file = self._dir / "port"
        edits, adds, removes = mutation
        cmd = [PYTHON, str(BENCH / "server.py"), "--pages", str(pages), "--entries", str(entries)]
        cmd += ["--edits", str(edits), "--adds", str(adds), "--removes", str(removes)]
        cmd += ["--port-file", str(port_file)] + (["--gzip"] if gzip else [])
        self.proc = subprocess.Popen(cmd)
        deadline = time.monotonic() + 120
        while not port_file.exists() or not port_file.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench server did not start: {' '.join(cmd)}")
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{port_file.read_text()}"

    def url(self, page: int) -> str:
        return f"{self.base}/issues/national-initiatives/list-{page}"

    def _call(self, path: str, method: str = "POST") -> bytes:
        request = urllib.request.Request(self.base + path, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return bytes(response.read())

    def change(self, k: int, seed: int) -> list[int]:
        return list(json.loads(self._call(f"/_control/change?k={k}&seed={seed}")))

    def reset(self) -> None:
        self._call("/_control/reset")

    def stats(self) -> dict[str, int]:
        return dict(json.loads(self._call("/_control/stats", "GET")))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)


@contextmanager
def serving(
    pages: int, entries: int, *, mutation: tuple[int, int, int] = (1, 1, 1), gzip: bool = False
) -> Iterator[Server]:
    server = Server(pages, entries, mutation=mutation, gzip=gzip)
    try:
        yield server
    finally:
        server.close()


# -- the monitor and the floors, one cycle each --------------------------------------------


def write_config(work: Path, urls: Sequence[str], concurrency: int) -> Path:
    """A config.toml watching `urls` (all role active), data in work/data, with a feed file."""
    lines = [
        "[monitor]",
        'data_dir = "data"',
        "timeout = 30",
        "retries = 3",
        f"concurrency = {concurrency}",
        "[feed]",
        'path = "data/changes.atom"',
    ]
    for i, url in enumerate(urls):
        lines += ["[[pages]]", f'name = "list-{i}"', f'url = "{url}"', 'role = "active"']
        lines.append("  [pages.select]")
        lines += [f"  {k} = {json.dumps(v)}" for k, v in SELECT.items()]
    work.mkdir(parents=True, exist_ok=True)
    path = work / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _db_state(data: Path) -> tuple[int, dict[str, int]]:
    db = data / "monitor.db"
    size = sum(p.stat().st_size for p in (db, data / "monitor.db-wal") if p.exists())
    if not db.exists():
        return size, {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return size, {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def monitor_cycle(server: Server, config: Path, cycle: str, *, profile: Path | None = None) -> Run:
    """One `monitor check --json` in a fresh process, with the archive and database growth."""
    data = config.parent / "data"
    warc_before = _tree_bytes(data / "warc")
    served_before = server.stats()
    cmd = [RUN_PYTHON, "-m", "monitor", "--config", str(config), "check", "--json"]
    if profile is not None:
        spy = [str(PROFILER), "record", "--rate", str(PROFILE_RATE), "--function", "--idle",
               "--format", "raw", "--output", str(profile), "--"]
        cmd = [*spy, *cmd]
    run = measure(cmd, "monitor", cycle, _env())
    if run.exit_code != 0:
        raise RuntimeError(f"monitor check failed ({run.exit_code}):\n{run.stderr[-3000:]}")
    served_after = server.stats()
    run.served = {k: served_after.get(k, 0) - served_before.get(k, 0) for k in served_after}
    run.warc_added = _tree_bytes(data / "warc") - warc_before
    run.db_bytes, run.rows = _db_state(data)
    return run


def floor_cycle(server: Server, mode: str, urls_file: Path, state: Path, concurrency: int,
                cycle: str) -> Run:
    """One floor run (download or parse) in a fresh process."""
    served_before = server.stats()
    cmd = [RUN_PYTHON, str(BENCH / "floor.py"), mode, "--urls", str(urls_file),
           "--concurrency", str(concurrency), "--state", str(state)]
    run = measure(cmd, f"{mode} floor", cycle, _env())
    if run.exit_code != 0:
        raise RuntimeError(f"floor {mode} failed ({run.exit_code}):\n{run.stderr[-3000:]}")
    served_after = server.stats()
    run.served = {k: served_after.get(k, 0) - served_before.get(k, 0) for k in served_after}
    return run


def write_urlwatch(work: Path, urls: Sequence[str]) -> Path:
    """urlwatch's jobs (one per page, the entries' items selected by CSS) and its config."""
    work.mkdir(parents=True, exist_ok=True)
    jobs = [
        f"name: list-{i}\nurl: {json.dumps(url)}\n"
        f"filter:\n  - css: {json.dumps(SELECT['item'])}\n"
        for i, url in enumerate(urls)
    ]
    (work / "urls.yaml").write_text("---\n".join(jobs), encoding="utf-8")
    (work / "urlwatch.yaml").write_text(
        "display: {new: true, error: true, unchanged: false}\n"
        "report:\n  text: {details: true, footer: false}\n"
        "  stdout: {enabled: true, color: false}\n",
        encoding="utf-8",
    )
    (work / "hooks.py").write_text("", encoding="utf-8")
    return work


def urlwatch_cycle(server: Server, work: Path, cycle: str) -> Run:
    """One `urlwatch` run (its own venv, its own process): fetch, filter, diff, report."""
    served_before = server.stats()
    cmd = [str(URLWATCH), "--urls", str(work / "urls.yaml"), "--config",
           str(work / "urlwatch.yaml"), "--hooks", str(work / "hooks.py"),
           "--cache", str(work / "cache.db")]
    env = {**_env(), "HOME": str(work)}  # nothing written to the real home
    run = measure(cmd, "urlwatch", cycle, env)
    if run.exit_code != 0:
        raise RuntimeError(f"urlwatch failed ({run.exit_code}):\n{run.stderr[-3000:]}")
    served_after = server.stats()
    run.served = {k: served_after.get(k, 0) - served_before.get(k, 0) for k in served_after}
    return run


def steady_cycles(server: Server, work: Path, urls: Sequence[str], k: int,
                  args: argparse.Namespace) -> tuple[list[dict[str, float]], Run]:
    """bench/steady.py: a first check, then cycles of `k` changed pages, in one process."""
    server.reset()
    config = write_config(work / "steady", urls, args.concurrency)
    cmd = [RUN_PYTHON, str(BENCH / "steady.py"), "--config", str(config), "--server", server.base,
           "--pages", str(len(urls)), "--changed", str(k / len(urls)),
           "--cycles", str(args.steady_cycles)]
    run = measure(cmd, "monitor daemon", "steady", _env())
    if run.exit_code != 0:
        raise RuntimeError(f"steady.py failed ({run.exit_code}):\n{run.stderr[-3000:]}")
    cycles = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return cycles, run


def one_off(
    work: Path, tries: int = 5, *, count: bool = True
) -> tuple[Run, Run, Run, int | None]:
    """`monitor check` of two unchanged pages (cron's one-off), and the floors of the same:
    a fresh Python importing httpx and downloading both, with httpx's default client and
    with one that loads no CA bundle (as the monitor does for http:// pages); the median
    of `tries` runs each. With `count`, also the instructions one such check executes
    (None without valgrind)."""
    with serving(2, 25) as server:
        urls = [server.url(i) for i in range(2)]
        config = write_config(work / "one-off", urls, 16)
        urls_file = work / "one-off" / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        state = work / "one-off" / "floor-state.json"
        cmd = [RUN_PYTHON, "-m", "monitor", "--config", str(config), "check"]
        floor = [RUN_PYTHON, str(BENCH / "floor.py"), "download", "--urls", str(urls_file),
                 "--state", str(state)]
        measure(cmd, "monitor", "first", _env()), measure(floor, "download floor", "first")
        runs = [measure(cmd, "monitor", "one-off", _env()) for _ in range(tries)]
        floors = [measure(floor, "download floor", "one-off") for _ in range(tries)]
        tight = [*floor, "--no-ca-bundle"]
        tights = [measure(tight, "download floor", "one-off") for _ in range(tries)]
        counted = instructions(cmd) if count else None

    def median(these: list[Run]) -> Run:
        return sorted(these, key=lambda r: r.wall_s)[len(these) // 2]

    return median(runs), median(floors), median(tights), counted


def instructions(cmd: Sequence[str]) -> int | None:
    """The instructions one run of `cmd` executes, counted by callgrind (None without
    valgrind). Repeatable to ~0.1% whatever else the machine does, where wall times here
    drift by 10-30% between runs: the figure to compare two commits' fixed costs by."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    run = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                         capture_output=True, text=True, cwd=SRC, env=_env())
    found = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
    return int(found.group(1)) if found and run.returncode == 0 else None


def _sequence(server: Server, k: int, one_cycle: Callable[[str], Run]) -> list[Run]:
    """Baseline, unchanged, then `k` pages changed: the three cycles every tool goes through."""
    server.reset()
    runs = [one_cycle("baseline"), one_cycle("unchanged")]
    server.change(k, seed=1)
    runs.append(one_cycle("changed"))
    return runs


def bench_size(pages: int, args: argparse.Namespace, work: Path, profile: bool) -> SizeResult:
    """Monitor and floors through baseline, unchanged and changed cycles of `pages` pages.

    Each tool's sequence runs --repeat times from scratch, tools interleaved, and each
    (tool, cycle) keeps its fastest run: other work on the machine only ever adds time.
    """
    k = max(1, round(args.changed * pages))
    shutil.rmtree(work, ignore_errors=True)  # every run starts from an empty data directory
    tries: list[Run] = []
    result = SizeResult(pages, args.entries, k, [])
    with serving(pages, args.entries, gzip=args.gzip) as server:
        urls = [server.url(i) for i in range(pages)]
        work.mkdir(parents=True, exist_ok=True)
        urls_file = work / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        for attempt in range(args.repeat):
            _log(f"N={pages}: monitor, try {attempt + 1}/{args.repeat}")
            config = write_config(work / f"monitor-{attempt}", urls, args.concurrency)
            tries += _sequence(server, k, partial(monitor_cycle, server, config))
            if attempt == 0:
                for n in range(args.drift):  # same data directory, nothing changes on the server
                    result.drift.append(monitor_cycle(server, config, f"unchanged #{n + 2}"))
            if args.urlwatch:
                _log(f"N={pages}: urlwatch, try {attempt + 1}/{args.repeat}")
                uw = write_urlwatch(work / f"urlwatch-{attempt}", urls)
                tries += _sequence(server, k, partial(urlwatch_cycle, server, uw))
            for mode in ("download", "parse"):
                _log(f"N={pages}: {mode} floor, try {attempt + 1}/{args.repeat}")
                state = work / f"{mode}-state-{attempt}.json"
                floor = partial(floor_cycle, server, mode, urls_file, state, args.concurrency)
                tries += _sequence(server, k, floor)
        if args.steady_cycles:
            _log(f"N={pages}: daemon steady state ({args.steady_cycles} cycles, one process)")
            result.steady, result.steady_run = steady_cycles(server, work, urls, k, args)
        if profile:  # the same three cycles again, sampled, in another data directory
            _log(f"N={pages}: profiled cycles (py-spy)")
            profiled = write_config(work / "profiled", urls, args.concurrency)
            for cycle in CYCLES:
                result.profiles[cycle] = work / f"profile-{cycle}.txt"
            _sequence(server, k, lambda c: monitor_cycle(
                server, profiled, c, profile=result.profiles[c]))
    for tool in ("monitor", "urlwatch", "download floor", "parse floor"):
        for cycle in CYCLES:
            same = [r for r in tries if r.tool == tool and r.cycle == cycle]
            if not same:
                continue
            best = min(same, key=lambda r: r.wall_s)
            best.walls = [r.wall_s for r in same]
            result.runs.append(best)
    return result


# -- entry scaling: one page of many entries -------------------------------------------------



def bench_entries(count: int, args: argparse.Namespace, work: Path) -> EntryScaling:
    """A one-page monitor of `count` entries: baseline and a changed cycle, plus the pure stages."""
    mutation = (max(1, count // 10), max(1, count // 100), max(1, count // 100))
    shutil.rmtree(work, ignore_errors=True)
    with serving(1, count, mutation=mutation, gzip=args.gzip) as server:
        config = write_config(work, [server.url(0)], args.concurrency)
        baseline = monitor_cycle(server, config, "baseline")
        server.change(1, seed=1)
        changed = monitor_cycle(server, config, "changed")
    stages = _pure_stages(count, mutation)
    return EntryScaling(count, stages[0], baseline, changed, *stages[1:])


def _pure_stages(count: int, mutation: tuple[int, int, int]) -> tuple[int, float, float, float]:
    """Time extract_entries and classify_cycle in-process (no I/O), best of a few runs."""
    sys.path[:0] = [str(SRC), str(BENCH)]
    from server import Mutation, render_page

    from monitor.classify import classify_cycle
    from monitor.config import Selectors
    from monitor.extract import extract_entries
    from monitor.models import KnownEntry, PageObservation, PageState

    select = Selectors(**SELECT)
    base = "http://127.0.0.1/issues/national-initiatives/list-0"
    bodies = [render_page(0, v, count, Mutation(*mutation)) for v in (0, 1)]
    ctype = "text/html; charset=utf-8"
    repeat = 3 if count <= 1000 else 2

    def best(fn, *, collector_paused: bool = False):  # type: ignore[no-untyped-def]
        times, value = [], None
        for _ in range(repeat):
            value = None
            gc.collect()  # the garbage of the last try must not be collected on this one's clock
            if collector_paused:
                gc.disable()
            t0 = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - t0)
            gc.enable()
        return min(times), value

    _, first = best(lambda: extract_entries(bodies[0], base_url=base, select=select,
                                            content_type=ctype))
    extract_s, second = best(lambda: extract_entries(bodies[1], base_url=base, select=select,
                                                     content_type=ctype))
    now = datetime.now(UTC)
    opts = {"now": now, "confirm_checks": 2, "anomaly_ratio": 0.5,
            "new_id": lambda: str(uuid.uuid4())}
    empty = [PageState(name="p", role="active")]
    # check.py classifies with the collector paused (`_collector_paused`): so here, or each
    # try pays full collections of the bench's own heap that no cycle makes.
    classify_baseline_s, result = best(lambda: classify_cycle(
        {}, empty, {"p": PageObservation("p", "ok", entries=tuple(first))}, **opts),
        collector_paused=True)
    known = {
        u.entry_id: KnownEntry(u.entry_id, u.title, u.link, u.description, u.state, u.page)
        for u in result.entries
    }
    classify_changed_s, _ = best(lambda: classify_cycle(
        known, list(result.pages), {"p": PageObservation("p", "ok", entries=tuple(second))},
        **opts), collector_paused=True)
    return len(bodies[1]), extract_s, classify_baseline_s, classify_changed_s


# -- reporting --------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)



# -- main -----------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()] if text else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,200,1000", help="page counts, comma-separated")
    parser.add_argument("--changed", type=float, default=0.1, help="share of pages changed")
    parser.add_argument("--entries", type=int, default=25, help="entries per page")
    parser.add_argument("--concurrency", type=int, default=16, help="monitor's and floors'")
    parser.add_argument("--entry-scaling", default="100,1000,10000",
                        help="entries on the one-page runs ('' to skip)")
    parser.add_argument("--drift", type=int, default=3,
                        help="extra unchanged cycles on the largest N (does cost creep up?)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="run every sequence this many times, keep the fastest")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--steady-cycles", type=int, default=3,
                        help="the daemon's steady state: this many changed cycles after a first "
                        "check, in one process (bench/steady.py); 0 to skip")
    parser.add_argument("--urlwatch", default=os.environ.get("URLWATCH", ""),
                        help="path of a urlwatch executable (in its own venv): a contender")
    parser.add_argument("--gzip", action="store_true", help="serve gzip-encoded bodies")
    parser.add_argument("--workdir", help="keep data here (default: a temporary directory)")
    parser.add_argument("--json", dest="json_out", help="also write raw figures to this file")
    parser.add_argument("--git-ref", help="measure monitor/ as of this commit (extracted with "
                        "`git archive` into the work directory) instead of the working tree")
    parser.add_argument("--no-instructions", action="store_true",
                        help="skip counting the one-off check's instructions under callgrind")
    args = parser.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    global SRC, SRC_LABEL, RUN_PYTHON
    RUN_PYTHON = _runtime_venv(work)
    if args.git_ref:
        SRC, SRC_LABEL = _extract_ref(args.git_ref, work / "src")

    global URLWATCH
    if args.urlwatch:
        URLWATCH = Path(args.urlwatch)
    sizes = _ints(args.sizes)
    started = time.monotonic()
    load_before = os.getloadavg()
    # Ended as monitor/program.py ends a command, with no teardown: the loading alone.
    imports = ("import os, monitor, monitor.cli, monitor.check; print(monitor.__file__, "
               "flush=True); os._exit(0)")
    # the first run writes monitor's bytecode cache; the fastest of the rest is the fixed cost
    startup = min((measure([RUN_PYTHON, "-c", imports], "monitor", "imports", _env())
                   for _ in range(4)), key=lambda r: r.wall_s)
    floor_startup = min((measure([RUN_PYTHON, str(BENCH / "floor.py"), "imports"], "floor",
                                 "imports", _env()) for _ in range(3)), key=lambda r: r.wall_s)
    _log("one-off check of two pages")
    oneoff, oneoff_floor, oneoff_tight, oneoff_instructions = one_off(
        work, count=not args.no_instructions
    )
    import_instructions = None
    if not args.no_instructions:
        import_instructions = instructions([RUN_PYTHON, "-c", imports])
    results = []
    for pages in sizes:
        largest = pages == max(sizes)
        own = argparse.Namespace(**{**vars(args), "drift": args.drift if largest else 0})
        results.append(bench_size(pages, own, work / f"n{pages}",
                                  profile=largest and not args.no_profile))
    scaling = []
    for count in _ints(args.entry_scaling):
        _log(f"one page of {count} entries")
        scaling.append(bench_entries(count, args, work / f"e{count}"))

    print(f"## Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"- machine: {os.cpu_count()} CPUs (`nproc` {_nproc()}), Python "
          f"{platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"- pages: ~40 KB IMLS-style, {args.entries} entries each, served "
          f"{'gzip' if args.gzip else 'identity'} from a separate process on 127.0.0.1")
    print(f"- code measured: {_code_version()}; imported from {startup.stdout.strip()}")
    print(f"- interpreter of the measured processes: {RUN_PYTHON} (a venv of monitor's runtime "
          "dependencies and BeautifulSoup only, as an installed monitor runs: no test tools)")
    print(f"- concurrency = {args.concurrency} for the monitor (config) and both floors")
    print(f"- fixed cost: monitor imports {startup.wall_s:.2f} s wall / {startup.cpu_s:.2f} s CPU"
          f" / {startup.peak_mb:.0f} MB; floor imports {floor_startup.wall_s:.2f} s / "
          f"{floor_startup.cpu_s:.2f} s / {floor_startup.peak_mb:.0f} MB")
    print(f"- one-off `monitor check` of 2 unchanged pages (cron's case; median of 5): "
          f"{oneoff.wall_s:.2f} s wall / {oneoff.cpu_s:.2f} s CPU / {oneoff.peak_mb:.0f} MB; "
          f"a fresh Python importing httpx and downloading them: {oneoff_floor.wall_s:.2f} s, "
          f"{oneoff_tight.wall_s:.2f} s with no CA bundle loaded (the issue's goal: 0.25 s)")
    if oneoff_instructions and import_instructions:
        print(f"- instructions (callgrind; repeatable to ~0.1%, unlike the times): one-off check "
              f"{oneoff_instructions / 1e6:,.1f} M, of which monitor's imports "
              f"{import_instructions / 1e6:,.1f} M")
    print(f"- whole bench: {time.monotonic() - started:.0f} s; load average before "
          f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (other work on the machine "
          f"adds noise: each figure is the fastest of {args.repeat} tries)\n")
    print("Ratios are monitor / floor: the unchanged cycle against the download floor, the "
          "baseline and changed cycles against the parse floor. 200/304: answers served.\n")
    for result in results:
        print(size_table(result) + "\n")
    print("#### Archive and database growth (monitor cycles; row counts after the cycle)\n")
    print(growth_table(results) + "\n")
    for result in results:
        if result.steady:
            print(f"#### N={result.pages}: the daemon's steady state (bench/steady.py: "
                  f"back-to-back cycles in one process, {result.changed} pages changed before "
                  "each)\n")
            print(steady_table(result) + "\n")
    for result in results:
        if result.drift:
            print(f"#### N={result.pages}: unchanged cycles as history grows (same data "
                  "directory; the first is the fastest try's, the rest follow its changed cycle)\n")
            print(drift_table(result) + "\n")
    if scaling:
        print("#### Entry scaling: one page, 10% of entries edited, 1% added, 1% removed\n")
        print(entry_table(scaling) + "\n")
    print("#### Targets\n")
    print(targets(results, scaling, startup))
    met = "met" if oneoff.wall_s < ONE_OFF_GOAL_S else "**not met**"
    print(f"- one-off check of 2 pages < {ONE_OFF_GOAL_S} s wall: {met} ({oneoff.wall_s:.2f} s; "
          f"python + httpx + 2 downloads: {oneoff_floor.wall_s:.2f} s, "
          f"{oneoff_tight.wall_s:.2f} s with no CA bundle)\n")
    for result in results:
        for cycle, path in result.profiles.items():
            print(f"#### Profile: N={result.pages} {cycle} cycle (py-spy, raw: {path})\n")
            wall = result.get("monitor", cycle).wall_s
            print(profile_report(read_profile(path), wall) + "\n")
    if args.json_out:
        _dump(args.json_out, results, scaling, startup)


def _git(*argv: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
    return out.stdout.strip()


def _extract_ref(ref: str, dest: Path) -> tuple[Path, str]:
    """monitor/ as of `ref`, written under dest by `git archive` (read-only for the repo)."""
    commit = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    if not commit:
        raise SystemExit(f"--git-ref {ref!r}: not a commit of {REPO}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "monitor"],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest, f"commit {commit} (git archive into {dest})"


def _code_version() -> str:
    """Which monitor/ was measured: a commit, or the working tree and whether it had edits."""
    if SRC_LABEL:
        return SRC_LABEL
    dirty = _git("status", "--porcelain", "--", "monitor")
    edits = " + uncommitted edits in monitor/" if dirty else ""
    return f"working tree at {_git('rev-parse', '--short', 'HEAD')}{edits}"


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def _dump(path: str, results: Sequence[SizeResult], scaling: Sequence[EntryScaling],
          startup: Run) -> None:
    def run_json(run: Run) -> dict[str, object]:
        return {"tool": run.tool, "cycle": run.cycle, "wall_s": run.wall_s, "cpu_s": run.cpu_s,
                "peak_mb": run.peak_mb, "served": run.served, "warc_added": run.warc_added,
                "db_bytes": run.db_bytes, "rows": run.rows, "events": dict(run.events)}

    data = {
        "startup": run_json(startup),
        "sizes": [{"pages": r.pages, "changed": r.changed,
                   "runs": [run_json(x) for x in r.runs + r.drift], "steady": r.steady,
                   "steady_peak_mb": r.steady_run.peak_mb if r.steady_run else None}
                  for r in results],
        "entry_scaling": [{"entries": s.entries, "baseline": run_json(s.baseline),
                           "changed": run_json(s.changed), "extract_s": s.extract_s,
                           "classify_baseline_s": s.classify_baseline_s,
                           "classify_changed_s": s.classify_changed_s} for s in scaling],
    }
    Path(path).write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
