"""Side measurements behind bench/README.md's list of fixes, in-process, each in isolation.

    similarity  description similarity per pair: characters (as match.py does) against words
    extract     extract_entries on one ~40 KB page, split into its steps, against the floor's
    gc          extract_entries on 100 / 1,000 / 10,000 entries with the cyclic GC on and off
    db          per-page queries and per-row writes on a copy of a bench database (--db)
    sniffio     what httpcore's per-call `import sniffio` costs when sniffio is missing

Usage: python bench/probes.py [PROBE ...] [--db WORKDIR/n1000/monitor-0/data/monitor.db]
Run from the repository root; monitor/ is imported from there (or from PYTHONPATH).
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH), str(BENCH.parent / "tests")]

from bs4 import BeautifulSoup  # noqa: E402
from server import Mutation, page_entries, render_page  # noqa: E402

from monitor.config import Selectors  # noqa: E402
from monitor.extract import extract_entries  # noqa: E402
from monitor.match import _clear_best, _similarity  # noqa: E402

SELECT = Selectors(".view-content .views-row", ".views-field-title", "a[href]",
                   ".views-field-body")
CTYPE = "text/html; charset=utf-8"


def best_ms(fn: Callable[[], object], n: int = 10) -> float:
    times = []
    for _ in range(n):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1e3


def probe_similarity() -> None:
    """The N=1000 changed cycle's leftovers: new descriptions x removed descriptions."""
    items, pool = [], []
    for page in sorted(random.Random(1).sample(range(1000), 100)):
        before = {r["slug"]: r["body"] for r in page_entries(page, 0, 25, Mutation())}
        after = {r["slug"]: r["body"] for r in page_entries(page, 1, 25, Mutation())}
        items += [body for slug, body in after.items() if slug not in before]
        pool += [body for slug, body in before.items() if slug not in after]
    started = time.perf_counter()
    chars = [[_similarity(a, b) for b in pool] for a in items]
    char_s = time.perf_counter() - started
    started = time.perf_counter()
    words_pool = [re.findall(r"\w+", b.casefold())[:300] for b in pool]
    words = []
    for a in items:
        wa = re.findall(r"\w+", a.casefold())[:300]
        words.append([SequenceMatcher(None, wa, wb, autojunk=False).ratio() for wb in words_pool])
    word_s = time.perf_counter() - started
    pairs = len(items) * len(pool)
    print(f"similarity: {len(items)} new x {len(pool)} removed descriptions")
    for label, seconds, scores in (
        ("characters (match._similarity)", char_s, chars),
        ("words (SequenceMatcher on \\w+)", word_s, words),
    ):
        clear = sum(_clear_best(row) is not None for row in scores)
        print(f"  {label}: {seconds:.3f} s, {seconds / pairs * 1e6:,.1f} us/pair, "
              f"clear matches {clear}")


def probe_extract() -> None:
    """Where extract_entries' time goes on one bench page, against the floor's parse+select."""
    import soupsieve
    from oracle import _prepare  # the BeautifulSoup path this probe takes apart

    from monitor.extract import decode_html

    body = render_page(7, 0, 25, Mutation())
    text = _prepare(decode_html(body, CTYPE))
    soup = BeautifulSoup(text, "lxml")
    items = soupsieve.compile(SELECT.item).select(soup)
    print(f"extract: one page of {len(body):,} bytes, {len(items)} entries (ms, best of 10)")
    def run() -> None:
        extract_entries(body, base_url="http://x/", select=SELECT, content_type=CTYPE)

    prepare = best_ms(lambda: _prepare(decode_html(body, CTYPE)))
    print(f"  extract_entries:               {best_ms(run):6.2f}")
    print(f"  decode + _prepare:             {prepare:6.2f}")
    print(f"  BeautifulSoup(text, 'lxml'):   {best_ms(lambda: BeautifulSoup(text, 'lxml')):6.2f}")
    for key in ("title", "link", "description"):
        compiled = soupsieve.compile(getattr(SELECT, key))
        whole = best_ms(lambda: compiled.select(soup))  # noqa: B023
        each = best_ms(lambda: [compiled.select_one(i) for i in items])  # noqa: B023
        print(f"  {key:12} whole document {whole:5.2f}, select_one per item {each:5.2f}")

    def floor() -> None:
        tree = BeautifulSoup(text, "lxml")
        for item in tree.select(SELECT.item):
            for sel in (SELECT.title, SELECT.link, SELECT.description):
                found = item.select_one(sel or "")
                if found is not None:
                    found.get_text(" ", strip=True)

    print(f"  the parse floor's parse+select: {best_ms(floor):6.2f}")


def probe_gc() -> None:
    """extract_entries per entry as pages grow, with the cyclic GC on and off."""
    print("gc: extract_entries, us per entry (best of 2-5)")
    for count in (100, 1000, 10000):
        body = render_page(0, 0, count, Mutation())
        figures = []
        for disable in (False, True):
            def run() -> None:
                if disable:  # noqa: B023
                    gc.disable()
                try:
                    extract_entries(body, base_url="http://x/", select=SELECT,  # noqa: B023
                                    content_type=CTYPE)
                finally:
                    gc.enable()
            figures.append(best_ms(run, 5 if count < 10000 else 2) * 1e3 / count)
        print(f"  {count:6,} entries: GC on {figures[0]:6.1f}, GC off {figures[1]:6.1f}")


def probe_db(db: Path) -> None:
    """Queries a cycle runs per page, and per-row against batched writes, on a copy of db."""
    from monitor.store import Store

    work = Path(tempfile.mkdtemp(prefix="monitor-probe-"))
    try:
        shutil.copy(db, work / "monitor.db")
        if (db.parent / "monitor.db-wal").exists():
            shutil.copy(db.parent / "monitor.db-wal", work / "monitor.db-wal")
        store = Store(work / "monitor.db")
        conn = store.db.conn
        captures = conn.execute("SELECT count(*) FROM captures").fetchone()[0]
        recent = [r[0] for r in conn.execute(
            "SELECT record_id FROM captures ORDER BY id DESC LIMIT 1000")]
        names = [r[0] for r in conn.execute("SELECT name FROM pages")]
        print(f"db: a copy of {db} ({captures:,} captures, {len(names):,} pages), seconds")
        timed = best_ms(lambda: [store.capture_by_record(r) for r in recent], 1) / 1e3
        print(f"  capture_by_record x{len(recent)} (recent records), no index: {timed:.3f}")
        print(f"  page_memory x{len(names)}: "
              f"{best_ms(lambda: [store.page_memory(n) for n in names], 3) / 1e3:.3f}")
        print(f"  known_entries: {best_ms(store.known_entries, 3) / 1e3:.3f}")
        columns = [c[1] for c in conn.execute("PRAGMA table_info(pages)")]
        rows = [dict(zip(columns, r, strict=True)) for r in conn.execute("SELECT * FROM pages")]

        def upsert_each() -> None:
            with conn:
                for row in rows:
                    store.db.table("pages").upsert(row, pk="name")

        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "name")
        sql = (f"INSERT INTO pages ({', '.join(columns)}) VALUES "
               f"({', '.join('?' for _ in columns)}) ON CONFLICT(name) DO UPDATE SET {updates}")

        def upsert_batch() -> None:
            with conn:
                conn.executemany(sql, [tuple(r[c] for c in columns) for r in rows])

        print(f"  pages upsert x{len(rows)}: table.upsert {best_ms(upsert_each, 3) / 1e3:.3f}, "
              f"one executemany {best_ms(upsert_batch, 3) / 1e3:.3f}")
        conn.execute("CREATE INDEX captures_record ON captures(record_id)")
        timed = best_ms(lambda: [store.capture_by_record(r) for r in recent], 1) / 1e3
        print(f"  capture_by_record x{len(recent)}, with an index on record_id: {timed:.3f}")
        store.close()
    except sqlite3.Error as error:
        print(f"  {db}: {error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def probe_sniffio() -> None:
    """httpcore imports sniffio on every call of current_async_library()."""
    import httpcore._synchronization as sync

    try:
        import sniffio  # noqa: F401

        present = "installed"
    except ImportError:
        present = "missing"
    started = time.perf_counter()
    for _ in range(2000):
        sync.current_async_library()
    each = (time.perf_counter() - started) / 2000
    print(f"sniffio ({present}): httpcore current_async_library() {each * 1e6:.1f} us a call")


def main() -> None:
    probes = {"similarity": probe_similarity, "extract": probe_extract, "gc": probe_gc,
              "sniffio": probe_sniffio}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probes", nargs="*", help=f"any of {', '.join([*probes, 'db'])}")
    parser.add_argument("--db", type=Path, help="a monitor.db a bench run left (--workdir)")
    args = parser.parse_args()
    chosen = args.probes or [*probes, "db"]
    unknown = [name for name in chosen if name not in probes and name != "db"]
    if unknown:
        parser.error(f"no probe named {unknown[0]!r}")
    for name in chosen:
        if name == "db":
            if args.db is None:
                print("db: skipped (give --db WORKDIR/n1000/monitor-0/data/monitor.db)")
            else:
                probe_db(args.db)
        else:
            probes[name]()


if __name__ == "__main__":
    main()
