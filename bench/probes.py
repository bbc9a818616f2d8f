"""Side measurements behind bench/README.md's list of fixes, in-process, each in isolation.

    similarity  description similarity per pair: characters (as match.py does) against words
    extract     extract_entries on one ~40 KB page, split into its steps, against the floor's
    gc          extract_entries on 100 / 1,000 / 10,000 entries with the cyclic GC on and off
    db          per-page queries and per-row writes on a copy of a bench database (--db)
    sniffio     what httpcore's per-call `import sniffio` costs when sniffio is missing
    http        1000 GETs of the bench site at concurrency 16: httpx's default (anyio)
                backend against monitor/netbackend.py's asyncio one, interleaved
    warc        writing one exchange's WARC records: a 40 KB 200, and a 304 revisit
    classify    classify_cycle on 200 pages x 25 entries: the first check, 20 pages changed

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
    import sqlite_utils  # only for its per-row upsert, compared with one executemany

    from monitor.store import Store

    work = Path(tempfile.mkdtemp(prefix="monitor-probe-"))
    try:
        shutil.copy(db, work / "monitor.db")
        if (db.parent / "monitor.db-wal").exists():
            shutil.copy(db.parent / "monitor.db-wal", work / "monitor.db-wal")
        store = Store(work / "monitor.db")
        conn = store.conn
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
                    sqlite_utils.Database(conn).table("pages").upsert(row, pk="name")

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


def probe_http(pages: int = 1000, rounds: int = 3) -> None:
    """CPU of `pages` streamed GETs through one client, per network backend (same server)."""
    import asyncio
    import ssl

    import httpx

    from bench import serving
    from monitor.netbackend import AsyncioTransport

    async def fetch_all(client: httpx.AsyncClient, urls: list[str]) -> None:
        limit = asyncio.Semaphore(16)

        async def one(url: str) -> None:
            async with limit, client.stream("GET", url) as response:
                async for _ in response.aiter_raw():
                    pass

        async with client:
            await asyncio.gather(*(one(u) for u in urls))

    def clients() -> dict[str, Callable[[], httpx.AsyncClient]]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        return {
            "httpx default (anyio)": lambda: httpx.AsyncClient(limits=limits),
            "netbackend (asyncio)": lambda: httpx.AsyncClient(transport=AsyncioTransport(
                verify=ssl.create_default_context(), limits=limits)),
        }

    cpu: dict[str, list[float]] = {}
    with serving(pages, 25) as server:
        urls = [server.url(i) for i in range(pages)]
        for _ in range(rounds):
            for label, make in clients().items():
                started = time.process_time()
                asyncio.run(fetch_all(make(), urls))
                cpu.setdefault(label, []).append(time.process_time() - started)
    for label, times in cpu.items():
        print(f"http: {pages} GETs, {label}: CPU {min(times):.2f} s (tries "
              f"{' / '.join(f'{t:.2f}' for t in times)})")


def probe_warc() -> None:
    """WarcWriter.write_exchange for a 40 KB 200 and for a 304 revisit (ms each)."""
    from datetime import UTC, datetime

    from monitor.archive import CycleWriter
    from monitor.archive.records import PreviousCapture, payload_digest
    from monitor.models import HttpExchange

    body = render_page(1, 0, 25, Mutation())
    now = datetime.now(UTC)
    request = (("Host", "127.0.0.1"), ("User-Agent", "monitor"), ("Accept", "text/html"),
               ("If-None-Match", '"v1"'))
    response = (("Content-Type", CTYPE), ("Content-Length", str(len(body))), ("ETag", '"v1"'))
    url = "http://127.0.0.1:1/list-1"
    ok = HttpExchange("GET", url, request, "HTTP/1.1", 200, "OK", response, body, now)
    not_modified = HttpExchange("GET", url, request, "HTTP/1.1", 304, "Not Modified",
                                response[2:], b"", now)
    previous = PreviousCapture("<urn:uuid:1>", url, "2026-01-01T00:00:00Z", payload_digest(body))
    with tempfile.TemporaryDirectory() as tmp:
        writer = CycleWriter(Path(tmp), "probe", now)
        try:
            for label, exchange, prior in (("200, 40 KB", ok, None),
                                           ("304 revisit", not_modified, previous)):
                each = best_ms(lambda: [writer.write_exchange(exchange, prior)  # noqa: B023
                                        for _ in range(50)], n=5) / 50
                print(f"warc: write_exchange, {label}: {each:.2f} ms")
        finally:
            writer.close()


def probe_classify(pages: int = 200) -> None:
    """classify_cycle alone: a first check of `pages` pages, then 10% of them changed."""
    import uuid
    from datetime import UTC, datetime

    import monitor.canonical as canonical
    import monitor.match as match
    from monitor.classify import classify_cycle
    from monitor.models import CycleResult, KnownEntry, PageObservation, PageState

    def cold() -> None:  # each try starts as a one-off process would: no form cached yet
        for form in (canonical.canonical_link, canonical.comparable_text, match.slug_key):
            if hasattr(form, "cache_clear"):  # cached since 534526d
                form.cache_clear()
        gc.collect()

    names = [f"p{i}" for i in range(pages)]
    versions = {
        name: [tuple(extract_entries(render_page(i, v, 25, Mutation()), content_type=CTYPE,
                                     base_url=f"http://127.0.0.1/list-{i}", select=SELECT))
               for v in (0, 1)]
        for i, name in enumerate(names)
    }
    opts = {"now": datetime.now(UTC), "confirm_checks": 2, "anomaly_ratio": 0.5,
            "new_id": lambda: str(uuid.uuid4())}
    states = [PageState(name=name, role="active") for name in names]
    first = {n: PageObservation(n, "ok", entries=versions[n][0]) for n in names}
    changed = {n: PageObservation(n, "ok", entries=versions[n][1]) for n in names[::10]}

    def timed(fn: Callable[[], object]) -> tuple[float, object]:
        cold()
        started = time.perf_counter()
        value = fn()
        return time.perf_counter() - started, value

    base_s, result = timed(lambda: classify_cycle({}, states, first, **opts))
    assert isinstance(result, CycleResult)
    known = {u.entry_id: KnownEntry(u.entry_id, u.title, u.link, u.description, u.state, u.page)
             for u in result.entries}
    after = list(result.pages)
    changed_s, _ = timed(lambda: classify_cycle(known, after, changed, **opts))
    print(f"classify: {pages} pages x 25 entries, first check {base_s:.2f} s; "
          f"{len(changed)} pages changed {changed_s:.2f} s")


def main() -> None:
    probes = {"similarity": probe_similarity, "extract": probe_extract, "gc": probe_gc,
              "sniffio": probe_sniffio, "http": probe_http, "warc": probe_warc,
              "classify": probe_classify}
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
