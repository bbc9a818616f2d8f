"""The daemon's steady state, measured in one long-lived process (bench.py runs it).

`monitor run` calls `run_check` on its schedule in one process: imports, the TLS context
and caches are paid once, and a cycle that takes longer than the interval is followed
at once by the next. So the daemon's throughput is pages / cycle wall time of
back-to-back cycles in one process. This script runs the first check, then `--cycles`
cycles, before each of which the bench server changes `--changed` of the pages, and
prints one JSON line per cycle: wall and CPU seconds (this process and its parse
workers), and the pages checked per second.

Usage: python bench/steady.py --config PATH --server URL --pages N --changed 0.1 --cycles 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
import urllib.request
from pathlib import Path


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (parse workers)."""
    own, ended = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.user + own.system + ended.ru_utime + ended.ru_stime


def _rss_mb() -> float:
    """This process's resident memory now (the daemon's, between cycles)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _change(server: str, count: int, seed: int) -> None:
    request = urllib.request.Request(f"{server}/_control/change?k={count}&seed={seed}",
                                     method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--server", required=True, help="the bench server's base URL")
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--changed", type=float, default=0.1)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()

    from monitor.check import run_check
    from monitor.config import load_config

    config = load_config(args.config)
    stop = threading.Event()  # as the daemon passes it: polled, never set here

    def cycle(label: str) -> None:
        wall0, cpu0 = time.perf_counter(), _cpu_s()
        report = run_check(config, stop=stop, purpose="bench steady", entry_pages=False)
        wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
        print(json.dumps({"cycle": label, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                          "pages": len(report.checks), "events": len(report.events),
                          "pages_per_s": round(len(report.checks) / wall, 1),
                          "rss_mb": round(_rss_mb())}), flush=True)

    cycle("first")
    for n in range(args.cycles):
        _change(args.server, max(1, round(args.pages * args.changed)), seed=1000 + n)
        cycle(f"steady #{n + 1}")


if __name__ == "__main__":
    main()
