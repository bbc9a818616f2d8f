"""Extraction, ms per page: the old BeautifulSoup + lxml path (tests/oracle.py) against Lexbor.

Side by side in one run, on the fixture pages (imls-2017, scenario-basic) and on bench's
synthetic ~40 KB page of 25 entries (bench/server.py's render_page). Best of N runs each.

Usage: python bench/extract_engines.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH), str(ROOT / "tests")]

import oracle  # noqa: E402
from server import Mutation, render_page  # noqa: E402

from monitor.config import Selectors  # noqa: E402
from monitor.extract import extract_entries  # noqa: E402

SELECT = Selectors(
    ".view-content .views-row", ".views-field-title", "a[href]", ".views-field-body"
)
CTYPE = "text/html; charset=utf-8"


def pages() -> list[tuple[str, bytes]]:
    """(name, body) of each page measured."""
    fixtures = ROOT / "tests" / "fixtures"
    found = [
        (str(p.relative_to(fixtures)), p.read_bytes())
        for pattern in ("imls-2017/*.html", "scenario-basic/step*/*.html")
        for p in sorted(fixtures.glob(pattern))
    ]
    found.append(("synthetic 40 KB, 25 entries", render_page(7, 0, 25, Mutation())))
    return found


def best_ms(run: Callable[[], object], runs: int) -> float:
    """The fastest of `runs` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    print(f"{'page':40} {'bytes':>8} {'entries':>7} {'bs4+lxml ms':>12} {'lexbor ms':>10} {'x':>6}")
    for name, body in pages():
        def old(body: bytes = body) -> list[object]:
            return list(oracle.extract_entries(body, base_url="http://x/", select=SELECT,
                                               content_type=CTYPE))

        def new(body: bytes = body) -> list[object]:
            return list(extract_entries(body, base_url="http://x/", select=SELECT,
                                        content_type=CTYPE))

        count = len(new())
        assert count == len(old()), name
        old_ms, new_ms = best_ms(old, runs), best_ms(new, runs)
        print(f"{name:40} {len(body):>8,} {count:>7} {old_ms:>12.2f} {new_ms:>10.2f}"
              f" {old_ms / new_ms:>6.1f}")


if __name__ == "__main__":
    main()
