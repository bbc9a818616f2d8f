"""Page checks per second of a [cluster] with 1, 2 and 4 `monitor worker` processes.

A throw-away PostgreSQL and Redis (tests/dbservers.py) and the synthetic site of
bench/server.py (its own process) on 127.0.0.1; the pages are split into groups of
--group-size. For each worker count, a fresh database, W workers (`--concurrency 1`
each), and two rounds of one `check_group` task per group, sent at once: the baseline
(every entry new) and a changed round (--changed of the pages edited). The figure is
pages checked / wall time from the first task sent to the last "group check done" logged.

HONEST NOTE: everything runs on this machine. PostgreSQL, Redis, the site and every
worker share its cores (2 here), so past 2 workers the figure measures contention,
not what more machines would give; a cycle is mostly CPU (parse, classify, gzip).

Usage: python bench/cluster.py [--pages 48] [--group-size 4] [--workers 1,2,4]
Needs Debian's postgresql and redis-server, and the `cluster` extra. ~1-2 min.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests")]

import dbservers  # noqa: E402 (tests/ on the path first)

from bench import SELECT, Server, serving  # noqa: E402

TIMEOUT_S = 300.0  # a bound for each round


def write_config(
    work: Path, server: Server, pages: int, group_size: int, db: str, broker: str
) -> Path:
    """Pages list-0..N-1 of the bench site in groups of group_size, [cluster] on the servers."""
    lines = ["[monitor]", 'data_dir = "data"', "timeout = 30", "retries = 1", "concurrency = 4"]
    lines += ["[cluster]", f'database = "{db}"', f'broker = "{broker}"', 'archive = "warc"',
              'task_timeout = "5m"']  # fmt: skip
    for i in range(pages):
        lines += ["[[pages]]", f'name = "list-{i}"', f'url = "{server.url(i)}"']
        lines += ['role = "active"', f'group = "g{i // group_size}"', "  [pages.select]"]
        lines += [f"  {k} = {json.dumps(v)}" for k, v in SELECT.items()]
    work.mkdir(parents=True, exist_ok=True)
    path = work / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def done_count(logs: list[Path]) -> int:
    """How many "group check done" lines the workers have logged."""
    count = 0
    for log in logs:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("ts=") and 'msg="group check done"' in line:
                count += 1
    return count


def wait_until(predicate, what: str, timeout: float = TIMEOUT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {timeout}s")
        time.sleep(0.02)


def measure(
    config: Path, workers: int, groups: int, pages: int, server: Server, changed: int
) -> dict[str, float]:
    """Start `workers` workers, run two rounds (baseline, changed); pages checked per second."""
    from monitor.cluster.app import CHECK_GROUP_TASK, create_app
    from monitor.cluster.settings import load_setup

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    logs, procs = [], []
    for n in range(workers):
        log = config.parent / f"worker-{n}.log"
        logs.append(log)
        with open(log, "wb") as out:
            command = [sys.executable, "-m", "monitor", "--config", str(config), "worker"]
            procs.append(subprocess.Popen(
                [*command, "--concurrency", "1"],
                stdout=out, stderr=out, cwd=config.parent, env=env, start_new_session=True,
            ))  # fmt: skip
    setup = load_setup(config)
    assert setup.cluster is not None
    app = create_app(setup.cluster)
    figures: dict[str, float] = {}
    try:
        wait_until(
            lambda: all("worker ready" in p.read_text(errors="replace") for p in logs),
            "workers ready",
            60,
        )
        for round_no, label in enumerate(("baseline", "changed"), start=1):
            if label == "changed":
                server.change(changed, seed=round_no)
            started = time.monotonic()
            for g in range(groups):
                app.send_task(CHECK_GROUP_TASK, args=[f"g{g}"])
            wait_until(lambda r=round_no: done_count(logs) >= groups * r, f"round {label}")
            figures[label] = pages / (time.monotonic() - started)
    finally:
        app.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=48)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--changed", type=int, default=12, help="pages changed before round 2")
    args = parser.parse_args()
    bin_dir, redis_bin = dbservers.postgres_bin(), dbservers.redis_bin()
    if bin_dir is None or redis_bin is None:
        sys.exit("needs PostgreSQL and redis-server: apt-get install postgresql redis-server")
    groups = -(-args.pages // args.group_size)
    postgres, redis = dbservers.start_postgres(bin_dir), dbservers.start_redis(redis_bin)
    work = Path(tempfile.mkdtemp(prefix="monitor-bench-cluster-"))
    import psycopg

    rows = []
    try:
        with serving(args.pages, 25) as server:
            for count in (int(w) for w in args.workers.split(",")):
                server.reset()
                name = f"bench_w{count}"
                admin = f"postgresql://monitor@127.0.0.1:{postgres.port}/postgres"
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                db = f"postgresql://monitor@127.0.0.1:{postgres.port}/{name}"
                config = write_config(
                    work / f"w{count}", server, args.pages, args.group_size, db, redis.url
                )
                print(f"{count} worker(s)...", file=sys.stderr, flush=True)
                rows.append(
                    (count, measure(config, count, groups, args.pages, server, args.changed))
                )
    finally:
        postgres.stop()
        redis.stop()
        for root in (postgres.root, redis.root, work):
            shutil.rmtree(root, ignore_errors=True)
    cores = os.cpu_count()
    print(f"# [cluster] page checks per second ({args.pages} pages, {groups} groups of "
          f"{args.group_size}, {cores} cores shared by PostgreSQL, Redis, the site and "
          "the workers)\n")  # fmt: skip
    print("| workers | baseline (pages/s) | changed round (pages/s) |")
    print("|---|---|---|")
    for count, figures in rows:
        print(f"| {count} | {figures['baseline']:.1f} | {figures['changed']:.1f} |")
    print(f"\ncommand: {shlex.join([sys.executable, *sys.argv])}")


if __name__ == "__main__":
    main()
