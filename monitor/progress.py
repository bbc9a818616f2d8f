"""The progress line of `monitor check` on a terminal: pages done of total, and which is slow.

Shown only on a TTY, and only once the check has taken more than a moment; redrawn in place
(click.echo on stderr) and cleared when the check ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import click

SHOW_AFTER_S = 1.0  # a quicker check prints no progress at all
TICK_S = 0.5
SLOW_S = 5.0  # a page fetched for longer than this is named as slow


def progress_text(done: int, total: int, waiting: Sequence[str], elapsed_s: float) -> str:
    """ "checked 1/2 pages; waiting 7s for 'archived'" (pure: the line's words)."""
    text = f"checked {done}/{total} pages"
    if waiting:
        names = ", ".join(f"'{n}'" for n in waiting[:3]) + (", …" if len(waiting) > 3 else "")
        slow = " (slow)" if elapsed_s >= SLOW_S else ""
        text += f"; waiting {elapsed_s:.0f}s for {names}{slow}"
    return text


class ProgressLine:
    """A check's progress callback that redraws one line of stderr while the check runs."""

    def __init__(
        self,
        pages: Sequence[str],
        *,
        enabled: bool = True,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.enabled = enabled
        self.pending = list(pages)
        self.total = len(pages)
        self.started = time.monotonic()
        self.shown = False
        self._write = write or (lambda text: click.echo(text, nl=False, err=True))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="progress", daemon=True)

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            if self.shown:
                self._write("\r" + " " * 78 + "\r")

    def __call__(self, page: str, done: int, total: int) -> None:
        """check.run_check's Progress: page `page` is done, `done` of `total`."""
        with self._lock:
            if page in self.pending:
                self.pending.remove(page)
            self.total = total
            self._draw(done)

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:
                self._draw(self.total - len(self.pending))

    def _draw(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        if elapsed < SHOW_AFTER_S:
            return
        text = progress_text(done, self.total, self.pending, elapsed)
        self._write("\r" + text[:78].ljust(78))
        self.shown = True
