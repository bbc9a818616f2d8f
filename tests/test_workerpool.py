"""The parse pool's processes (`monitor/workerpool.py`): answers, failures, deaths, exits.

Real child interpreters on pipes. The jobs are this module's functions: a worker gets the
parent's sys.path, so it imports them as the parent does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import BrokenExecutor, CancelledError
from pathlib import Path

import pytest

from monitor.workerpool import WorkerPool

TIMEOUT_S = 30


def double(n: int) -> int:
    return 2 * n


def fail(message: str) -> int:
    raise ValueError(message)


def shout(text: str) -> str:
    print(text * 1000)  # on the worker's stdout, which carries the answers
    os.write(1, b"raw bytes on fd 1\n")
    return text


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def pid() -> int:
    return os.getpid()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_answers_and_failures_come_back_and_no_worker_outlives_shutdown():
    pool = WorkerPool(2)
    try:
        futures = [pool.submit(double, n) for n in range(50)]
        assert [f.result(TIMEOUT_S) for f in futures] == [2 * n for n in range(50)]
        with pytest.raises(ValueError, match="a bad page"):
            pool.submit(fail, "a bad page").result(TIMEOUT_S)
        assert pool.submit(shout, "x").result(TIMEOUT_S) == "x"  # its prints go to stderr
        workers = {pool.submit(pid).result(TIMEOUT_S) for _ in range(20)}
        assert os.getpid() not in workers and all(alive(w) for w in workers)
    finally:
        pool.shutdown(wait=True)
    assert not any(alive(w) for w in workers)
    with pytest.raises(RuntimeError):
        pool.submit(double, 1)


def test_a_worker_that_dies_breaks_its_job_and_those_not_started():
    """As a ProcessPoolExecutor: the job it ran, and every job still queued, fail with
    BrokenExecutor; the pool takes no more jobs; shutdown still reaps every worker."""
    pool = WorkerPool(1)
    try:
        assert pool.submit(double, 2).result(TIMEOUT_S) == 4
        dying = pool.submit(die)
        queued = [pool.submit(double, n) for n in range(5)]
        with pytest.raises(BrokenExecutor):
            dying.result(TIMEOUT_S)
        for future in queued:
            with pytest.raises(BrokenExecutor):
                future.result(TIMEOUT_S)
        with pytest.raises(BrokenExecutor):
            pool.submit(double, 1)
    finally:
        pool.shutdown(wait=True)


def test_shutdown_cancels_the_jobs_not_started_and_waits_for_the_running_one():
    pool = WorkerPool(1)
    running = pool.submit(nap, 0.3)
    queued = [pool.submit(nap, 5) for _ in range(3)]
    time.sleep(0.1)  # the first job is on its way to the worker
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.result(0) == 0.3
    for future in queued:
        with pytest.raises(CancelledError):
            future.result(0)


def test_a_job_that_never_ends_is_killed_with_its_worker_at_shutdown():
    """A parse that never returns (a hostile page, a bug in C) cannot keep a cycle, or the
    daemon, from stopping: after the stop wait its worker is killed, its job is broken."""
    pool = WorkerPool(1, stop_wait_s=0.5)
    (worker,) = (p.pid for p in pool._processes)
    stuck = pool.submit(nap, 600)
    time.sleep(0.3)  # the job is on its way to the worker
    started = time.monotonic()
    pool.shutdown(wait=True)
    assert time.monotonic() - started < 5
    with pytest.raises(BrokenExecutor):
        stuck.result(0)
    assert not alive(worker)


def test_a_worker_imports_what_the_parent_can_import(tmp_path, monkeypatch):
    """The parent's sys.path, changed at run time, is the worker's (bench --git-ref, tests)."""
    (tmp_path / "only_here.py").write_text("def answer():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here

    pool = WorkerPool(1)
    try:
        assert pool.submit(only_here.answer).result(TIMEOUT_S) == 42
    finally:
        pool.shutdown(wait=True)


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """SIGKILL of the parent mid-job: its workers exit on their own, no orphan stays."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path[:0] = {[str(Path(__file__).parent)]!r}
            from monitor.workerpool import WorkerPool
            import test_workerpool as jobs
            pool = WorkerPool(2)
            print(*{{pool.submit(jobs.pid).result(30) for _ in range(20)}}, flush=True)
            pool.submit(jobs.nap, 60)
            import time
            time.sleep(60)
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    workers = [int(w) for w in parent.stdout.readline().split()]
    assert workers and all(alive(w) for w in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + TIMEOUT_S
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers)
