"""Instructions an entry of extraction and classification, on one page of N entries.

callgrind counts instructions, which the machine's load does not move (the same count to
~0.1% run after run, where wall times drift by 10-30%): the figure to tell whether a stage
stays linear in the entries of a page, and to compare two commits. Each figure is the
difference of two runs of a child process: one that does the work and one that stops
just before it (imports, reading the bodies and, for classify, the baseline cycle are
the same in both). Bodies are the bench server's pages (bench/server.py's `render_page`,
the same mutation as bench.py's entry scaling), generated once into the work directory.

Usage: python bench/per_entry.py [--entries 100,1000,10000] [--git-ref REF] [--workdir DIR]

A run at 10,000 entries takes a few minutes (callgrind runs Python ~50x slower).
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BASE_URL = "http://127.0.0.1/issues/national-initiatives/list-0"
CONTENT_TYPE = "text/html; charset=utf-8"
# What each child run does: the two runs of a pair differ by the measured stage alone.
STAGES = {"extract": ("none", "extract"), "classify": ("baseline", "classify")}


def child(stage: str, bodies_file: Path) -> None:
    """One measured process: read the bodies, then do `stage` and no more."""
    sys.path[:0] = [str(BENCH)]
    from datetime import UTC, datetime

    from bench import SELECT
    from monitor.classify import classify_cycle
    from monitor.config import Selectors
    from monitor.extract import extract_entries
    from monitor.models import KnownEntry, PageObservation, PageState

    with bodies_file.open("rb") as f:
        before, after = pickle.load(f)
    select = Selectors(**SELECT)

    def entries(body: bytes) -> tuple:  # type: ignore[type-arg]
        return tuple(
            extract_entries(body, base_url=BASE_URL, select=select, content_type=CONTENT_TYPE)
        )

    if stage == "extract":
        entries(after)
    if stage not in ("baseline", "classify"):
        return
    ids = (f"{n:032x}" for n in range(1, 10**9))  # as uuid4().hex, without its cost
    options = {"now": datetime(2026, 1, 1, tzinfo=UTC), "confirm_checks": 2,
               "anomaly_ratio": 0.5, "new_id": lambda: next(ids)}  # fmt: skip
    page = [PageState(name="p", role="active")]
    observed = PageObservation("p", "ok", entries=entries(before))
    changed = PageObservation("p", "ok", entries=entries(after))  # read in both runs
    # check.py classifies with the cyclic collector paused (`_collector_paused`), and so
    # here: running, it added the full collections of a heap of 10,000 entries (12 K
    # instructions an entry) that a cycle never makes.
    gc.disable()
    first = classify_cycle({}, page, {"p": observed}, **options)
    if stage == "classify":
        known = {u.entry_id: KnownEntry(u.entry_id, u.title, u.link, u.description, u.state,
                                        u.page) for u in first.entries}  # fmt: skip
        classify_cycle(known, list(first.pages), {"p": changed}, **options)


def _bodies(count: int, work: Path) -> Path:
    """The page of `count` entries before and after one change step, pickled once."""
    path = work / f"bodies-{count}.pickle"
    if not path.exists():
        sys.path[:0] = [str(BENCH)]
        from server import Mutation, render_page

        mutation = Mutation(max(1, count // 10), max(1, count // 100), max(1, count // 100))
        bodies = tuple(render_page(0, version, count, mutation) for version in (0, 1))
        path.write_bytes(pickle.dumps(bodies))
    return path


def _instructions(src: Path, stage: str, bodies: Path) -> int:
    """callgrind's count of one child run measuring `src`'s monitor/."""
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as an installed monitor has
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, str(bodies)]
    subprocess.run(cmd, env=env, check=True, cwd=src)  # compiles and caches the bytecode
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env=env, capture_output=True, text=True, cwd=src, check=True,
    )  # fmt: skip
    found = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", default="100,1000,10000")
    parser.add_argument("--git-ref", help="measure monitor/ as of this commit")
    parser.add_argument("--workdir", type=Path, help="kept between runs (default: a temp dir)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="monitor-per-entry-"))
    work.mkdir(parents=True, exist_ok=True)
    src, label = REPO, "the working tree"
    if args.git_ref:
        from bench import _extract_ref  # bench.py's: the same `git archive` of monitor/

        src, label = _extract_ref(args.git_ref, work / "src")
    print(f"monitor/ of {label}; K instructions an entry (callgrind, PYTHONHASHSEED=0)\n")
    print("| entries | extract | classify |")
    print("|---:|---:|---:|")
    per_entry: dict[int, list[float]] = {}
    for count in (int(n) for n in args.entries.split(",") if n.strip()):
        bodies = _bodies(count, work)
        per_entry[count] = [
            (_instructions(src, with_stage, bodies) - _instructions(src, without, bodies)) / count
            for without, with_stage in STAGES.values()
        ]
        figures = " | ".join(f"{spent / 1e3:,.1f} K" for spent in per_entry[count])
        print(f"| {count:,} | {figures} |", flush=True)
    if len(per_entry) >= 2:  # the two largest pages: what an entry costs as pages grow
        from report import LINEAR_SLACK, _verdict  # bench.py's slack and wording

        (small, a), (large, b) = sorted(per_entry.items())[-2:]
        print()
        for stage, before, after in zip(STAGES, a, b, strict=True):
            ok = after <= LINEAR_SLACK * before
            print(f"- {stage} linear in entries per page ({small:,} -> {large:,} entries, "
                  f"instructions an entry within {LINEAR_SLACK}x): {_verdict(ok)} "
                  f"({after / before - 1:+.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
