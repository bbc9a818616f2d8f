"""Worker processes on pipes: the `concurrent.futures.Executor` that `parsing.py` parses in.

Each worker is a child interpreter running `parse_worker.serve`: a job crosses its stdin
as a frame (length, then pickle) of (function, arguments), and the answer comes back on
its stdout as a frame of (ok, value). A worker runs one job at a time, fed by one thread
of the parent, so a worker that dies (a segfault of the parser, a kill) took exactly one
job with it: that job's future, and every job not yet started, fail with
`BrokenExecutor`, as a `ProcessPoolExecutor`'s do, and the executor takes no more jobs.

Why not `ProcessPoolExecutor` with spawn: it starts multiprocessing's resource tracker
(a 12 MB process of its own), every worker imports multiprocessing and concurrent.futures
(~4 MB and ~40 ms each), and the parent's main script is run again in each worker (the
`monitor` console script: the whole CLI, ~7 MB more). Here a worker imports
`monitor.parse_worker` and what extraction needs, nothing else: ~17 MB, against ~33 MB
for one spawn worker and its tracker.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future
from typing import IO, Any

from monitor.parse_worker import receive_frame, send_frame

# The child's first line is the parent's sys.path (a test, or bench's --git-ref, may have
# changed it), as JSON; then it serves jobs until its stdin closes.
BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.stdin.buffer.readline()); "
    "from monitor.parse_worker import serve; serve()"
)
# How long shutdown waits for the running jobs, then for the workers to exit: a job still
# running then (a parse that never ends on a hostile page) is killed with its worker, so a
# cycle, or the daemon, can always stop.
STOP_WAIT_S = 10.0

Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class WorkerPool(Executor):
    """`workers` child processes, each fed one job at a time by a thread of this process."""

    def __init__(self, workers: int, *, stop_wait_s: float = STOP_WAIT_S) -> None:
        self._stop_wait_s = stop_wait_s
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._closing = False
        self._processes: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(workers):
                self._processes.append(_start_worker())
        except BaseException:
            self._stop_processes()
            raise
        self._feeders = [
            threading.Thread(target=self._feed, args=(p,), name="parse-feeder", daemon=True)
            for p in self._processes
        ]
        for feeder in self._feeders:
            feeder.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            raise TypeError("WorkerPool.submit takes positional arguments only")
        with self._lock:
            if self._broken is not None:
                raise BrokenExecutor(self._broken)
            if self._closing:
                raise RuntimeError("cannot submit a job after shutdown")
            future: Future[Any] = Future()
            self._jobs.put((future, fn, args))
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more jobs; with `wait`, the running ones end (or are killed after the stop
        wait, failing with BrokenExecutor) and every worker has exited."""
        with self._lock:
            self._closing = True
            if cancel_futures:
                for future, _, _ in self._drain():
                    future.cancel()
        for _ in self._feeders:
            self._jobs.put(None)  # each feeder stops after its current job
        if wait:
            deadline = time.monotonic() + self._stop_wait_s
            for feeder in self._feeders:
                feeder.join(max(0.0, deadline - time.monotonic()))
            for process, feeder in zip(self._processes, self._feeders, strict=True):
                if feeder.is_alive():  # its job outlived the wait: it goes with its worker
                    process.kill()
            for feeder in self._feeders:
                feeder.join()
            self._stop_processes()

    def _feed(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                answered, value = _exchange(process.stdin, process.stdout, fn, args)
            except (OSError, EOFError):  # the worker died
                self._break(f"a parse worker exited (code {process.poll()}) during a job")
                future.set_exception(BrokenExecutor(self._broken))
                return
            except Exception as error:  # the job could not be pickled: its own failure
                future.set_exception(error)
                continue
            if answered:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _break(self, reason: str) -> None:
        """No more jobs: every job not started fails (the running ones end on their own)."""
        with self._lock:
            if self._broken is None:
                self._broken = reason
            for future, _, _ in self._drain():
                if future.set_running_or_notify_cancel():
                    future.set_exception(BrokenExecutor(reason))

    def _drain(self) -> list[Job]:
        jobs, stops = [], 0
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stops += 1
            else:
                jobs.append(job)
        for _ in range(stops):  # a feeder's stop is not a job: it stays queued
            self._jobs.put(None)
        return jobs

    def _stop_processes(self) -> None:
        """Close every worker's stdin (it exits at once) and reap it."""
        for process in self._processes:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:  # a broken pipe to a dead worker
                        pass
        for process in self._processes:
            try:
                process.wait(self._stop_wait_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start_worker() -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP, str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
    )
    assert process.stdin is not None
    try:
        process.stdin.write(json.dumps(sys.path).encode() + b"\n")
        process.stdin.flush()
    except OSError:
        process.kill()
        process.wait()
        raise
    return process


def _exchange(
    to_worker: IO[bytes], from_worker: IO[bytes], fn: Callable[..., Any], args: tuple[Any, ...]
) -> tuple[bool, Any]:
    """Send one job, read its answer: (True, result) or (False, the exception it raised).

    EOFError or OSError: the worker is gone. An answer read whole that does not unpickle
    is that job's failure only: the next frame starts where this one ended.
    """
    send_frame(to_worker, pickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL))
    frame = receive_frame(from_worker)
    if frame is None:
        raise EOFError("the worker closed its output")
    answered, value = pickle.loads(frame)
    return bool(answered), value
