"""The word diff and the feed on huge descriptions: the old SequenceMatcher against diff.py.

The case from review: one entry with a 387 KB description, every 37th word edited. The
text is synthetic (seeded): words drawn from a Zipf-like vocabulary, as prose is, so that
common words repeat thousands of times and rare ones once.

The old diff runs in a child process, stopped after --old-timeout seconds; --sizes times
both diffs on smaller texts too, to show how each grows.

Usage: python bench/diff.py [--kb 387] [--sizes 25,50,100] [--every 37] [--events 200]
       [--old-timeout 120] [--no-old]
"""

from __future__ import annotations

import argparse
import difflib
import multiprocessing
import random
import re
import time
from datetime import UTC, datetime, timedelta

from monitor.diff import diff_words
from monitor.feed import FeedInfo, render_feed
from monitor.models import Change, Event

_WORDS = re.compile(r"\s+|\S+")


def old_diff_words(before: str, after: str) -> list[tuple[str, str]]:
    """The diff as feed.diff_words computed it before diff.py: SequenceMatcher over all words."""
    old = _WORDS.findall(before)
    new = _WORDS.findall(after)
    matcher = difflib.SequenceMatcher(str.isspace, old, new, autojunk=False)
    ops: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append(("equal", "".join(old[i1:i2])))
        else:
            ops.append(("delete", "".join(old[i1:i2])))
            ops.append(("insert", "".join(new[j1:j2])))
    return ops


def synthetic_text(kb: int, seed: int) -> str:
    """About `kb` KB of prose-like text: Zipf-distributed words, sentences, paragraphs."""
    rng = random.Random(seed)
    vocabulary = [_word(rng) for _ in range(20_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    words: list[str] = []
    size = 0
    while size < kb * 1000:
        chunk = rng.choices(vocabulary, weights, k=1000)
        words += chunk
        size += sum(len(w) + 1 for w in chunk)
    for i in range(0, len(words), 17):
        words[i] += "."
    return " ".join(words)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))


def edit_every(text: str, every: int, seed: int) -> str:
    """The text with every `every`-th word replaced by another."""
    rng = random.Random(seed)
    words = text.split(" ")
    for i in range(every - 1, len(words), every):
        words[i] = "edited" + _word(rng)
    return " ".join(words)


def timed(label: str, func: object, *args: object) -> float:
    start = time.perf_counter()
    func(*args)  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"  {label:<56} {elapsed:8.3f} s", flush=True)
    return elapsed


def _old_in_child(before: str, after: str, result: multiprocessing.SimpleQueue[float]) -> None:
    start = time.perf_counter()
    old_diff_words(before, after)
    result.put(time.perf_counter() - start)


def timed_old(before: str, after: str, timeout_s: float) -> None:
    """The old diff in a child process (timed there), stopped after `timeout_s`."""
    result: multiprocessing.SimpleQueue[float] = multiprocessing.SimpleQueue()
    child = multiprocessing.Process(target=_old_in_child, args=(before, after, result))
    child.start()
    child.join(timeout_s)
    label = "old: SequenceMatcher over whole word lists"
    if child.is_alive():
        child.terminate()
        child.join()
        print(f"  {label:<56} > {timeout_s:.0f} s (stopped)", flush=True)
    else:
        print(f"  {label:<56} {result.get():8.3f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kb", type=int, default=387)
    parser.add_argument("--sizes", default="25,50,100", help="smaller texts to time too")
    parser.add_argument("--every", type=int, default=37)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--old-timeout", type=float, default=120)
    parser.add_argument("--no-old", action="store_true", help="skip the slow old diff")
    args = parser.parse_args()

    sizes = [int(k) for k in args.sizes.split(",") if k] + [args.kb]
    for kb in sizes:
        before = synthetic_text(kb, seed=1)
        after = edit_every(before, args.every, seed=2)
        print(
            f"one description: {len(before) / 1000:.0f} KB, {len(before.split()):,} words, "
            f"every {args.every}th word edited"
        )
        if not args.no_old:
            timed_old(before, after, args.old_timeout)
        timed("new: diff_words (capped at 200 changed words)", diff_words, before, after)
        uncapped = "new: diff_words, uncapped"
        timed(uncapped, lambda b=before, a=after: diff_words(b, a, max_changed_words=None))
        full = diff_words(before, after, max_changed_words=None)
        assert "".join(t for op, t in full if op != "insert") == before
        assert "".join(t for op, t in full if op != "delete") == after

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        Event(
            f"00000000-0000-4000-8000-{n:012d}", "changed", t0 + timedelta(minutes=n), "active",
            entry_id=f"e{n}", title=f"Entry {n}", link=f"https://example.org/{n}",
            description=after, changes={"description": Change(before, after)}, capture_id=n,
        )
        for n in range(args.events)
    ]
    info = FeedInfo("bench", "urn:uuid:1", base_url="https://example.org/imls/")
    print(f"feed of {args.events} such changed events (render_feed, as `monitor feed` does):")
    for fmt in ("atom", "json", "rss"):
        timed(
            f"{fmt}: first rendering (event HTML not cached)",
            lambda fmt=fmt: _render(events, info, fmt),
        )
        timed(f"{fmt}: again (event HTML cached)", lambda fmt=fmt: _render(events, info, fmt))
        _clear_cache()


def _render(events: list[Event], info: FeedInfo, fmt: str) -> None:
    render_feed(events, info, fmt, max_entries=len(events))  # type: ignore[arg-type]


def _clear_cache() -> None:
    from monitor.feed import _html_for_key

    _html_for_key.cache_clear()


if __name__ == "__main__":
    main()
