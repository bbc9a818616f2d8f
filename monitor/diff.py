"""A word diff in bounded time, whatever the size of the texts (pure).

difflib.SequenceMatcher over whole word lists is quadratic on realistic text: a 387 KB
description with every 37th word edited took 30 s. Here, as in git's patience diff:

1. the common prefix and suffix are trimmed (most edits touch a small part of a text);
2. a large middle is split at anchors, words (else runs of 4 words) that occur exactly
   once in each text, kept in order by a longest increasing subsequence, O(n log n);
3. each piece between anchors is split again until it is small, and a small piece is
   diffed by SequenceMatcher (so short texts diff exactly as they always did).

A work budget bounds the whole: past it, a piece is reported as replaced whole (still a
correct diff, only coarser). Past `max_changed_words`, detail stops and one "omitted" op
says how many more words changed; since nothing past the cap is shown, a long text is
diffed by growing windows from its start, and the rest is only counted (a lower bound:
the words found in only one of the two rests).
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Literal

# "omitted" is the last op of a capped diff; its text is the summary a person reads.
DiffOp = Literal["equal", "insert", "delete", "omitted"]
Diff = list[tuple[DiffOp, str]]

MAX_CHANGED_WORDS = 200  # detail shown before the rest is summarised
MAX_WORK = 3_000_000  # token visits and SequenceMatcher cells, for one diff
LEAF_CELLS = 4_096  # a piece this small (tokens before x tokens after) goes to SequenceMatcher
BIG_CELLS = 250_000  # a piece with no anchor still goes to SequenceMatcher up to this size
ANCHOR_RUNS = (1, 4)  # unique words first; in repetitive text, unique runs of 4 words
WINDOW_CHARS = 16_384  # a capped diff of longer texts starts with windows this long

_TOKENS = re.compile(r"\s+|\S+")
_Region = tuple[int, int, int, int]  # old[alo:ahi] against new[blo:bhi]


def diff_words(
    before: str, after: str, *, max_changed_words: int | None = MAX_CHANGED_WORDS
) -> Diff:
    """Word-level difference: equal+delete texts join to `before`, equal+insert to `after`.

    Each run of replaced words is one delete followed by one insert. When more than
    `max_changed_words` words changed, the ops stop there and end with one
    ("omitted", "… 1,234 more words changed") (then the texts are not rebuilt whole).
    """
    if max_changed_words is None:
        return _diff_texts(before, after, stop_after=None)[0]
    # Past the cap nothing more is shown, so a long text is first diffed by its start:
    # a window of each text, growing until it holds more than the cap of changes.
    window = WINDOW_CHARS
    while window < max(len(before), len(after)):
        ops, stopped = _diff_texts(
            before[:window], after[:window], stop_after=max_changed_words
        )
        if stopped is None:  # it reached the window's end, where the cut may invent changes
            ops = _settled(ops)
        if changed_words(ops) > max_changed_words:
            used_before = sum(len(t) for op, t in ops if op != "insert")
            used_after = sum(len(t) for op, t in ops if op != "delete")
            unseen = _word_gap(before[used_before:], after[used_after:])
            return cap_diff(ops, max_changed_words, unseen=unseen)
        window *= 2
    ops, rest = _diff_texts(before, after, stop_after=max_changed_words)
    return cap_diff(ops, max_changed_words, unseen=rest)


def _diff_texts(before: str, after: str, *, stop_after: int | None) -> tuple[Diff, int | None]:
    """The diff of two whole texts, and what _diff_tokens says of the part not compared."""
    ops = _Builder()
    unseen = _diff_tokens(
        _TOKENS.findall(before), _TOKENS.findall(after), ops, stop_after=stop_after
    )
    return ops.finish(), unseen


def _settled(ops: Diff) -> Diff:
    """A window's diff without its end, which the window's cut may have made up."""
    end = len(ops)
    while end and ops[end - 1][0] != "equal":
        end -= 1
    # The last equal run may end in a word cut in two by the window: drop it as well.
    return ops[: max(end - 1, 0)]


def _word_gap(before: str, after: str) -> int:
    """At least how many words differ between two texts: those only one of them has."""
    # Sets, not multisets: set arithmetic runs in C, and a lower bound is all that is said.
    words_a = set(before.split())
    words_b = set(after.split())
    return len(words_a - words_b) + len(words_b - words_a)


def changed_words(ops: Sequence[tuple[DiffOp, str]]) -> int:
    """How many words the inserted and deleted chunks hold."""
    return sum(len(text.split()) for op, text in ops if op in ("insert", "delete"))


def cap_diff(
    ops: Sequence[tuple[DiffOp, str]], max_changed_words: int, *, unseen: int | None = None
) -> Diff:
    """The ops up to `max_changed_words` changed words, then an "omitted" summary.

    `unseen`: when the diff was stopped early, at least this many more words changed in
    the part not compared (the summary then says "at least").
    """
    shown = 0
    capped: Diff = []
    for index, (op, text) in enumerate(ops):
        if op not in ("insert", "delete"):
            capped.append((op, text))
            continue
        words = len(text.split())
        if shown + words <= max_changed_words:
            capped.append((op, text))
            shown += words
            continue
        room = max_changed_words - shown
        if room > 0:
            capped.append((op, _first_words(text, room)))
        rest = words - room + changed_words(ops[index + 1 :]) + (unseen or 0)
        least = "at least " if unseen is not None else ""
        noun = "word" if rest == 1 else "words"
        capped.append(("omitted", f"… {least}{rest:,} more {noun} changed"))
        return capped
    if unseen:  # stopped exactly at the cap, with more changes not compared
        capped.append(("omitted", f"… at least {unseen:,} more words changed"))
    return capped


def _first_words(text: str, count: int) -> str:
    """The start of `text` up to and including its `count`-th word."""
    seen = 0
    for match in _TOKENS.finditer(text):
        if not match.group().isspace():
            seen += 1
            if seen == count:
                return text[: match.end()]
    return text


class _Builder:
    """Collects ops in order: equal runs merged, each run of changes as one delete + insert."""

    def __init__(self) -> None:
        # Pieces are joined once at the end: concatenating as we go would be quadratic.
        self.pieces: list[tuple[DiffOp, list[str]]] = []
        self.deleted: list[str] = []
        self.inserted: list[str] = []
        self.changed = 0  # words deleted or inserted so far

    def equal(self, tokens: Sequence[str]) -> None:
        if not tokens:
            return
        self._flush()
        if self.pieces and self.pieces[-1][0] == "equal":
            self.pieces[-1][1].extend(tokens)
        else:
            self.pieces.append(("equal", list(tokens)))

    def change(self, deleted: Sequence[str], inserted: Sequence[str]) -> None:
        self.deleted.extend(deleted)
        self.inserted.extend(inserted)
        self.changed += _word_count(deleted) + _word_count(inserted)

    def _flush(self) -> None:
        if self.deleted:
            self.pieces.append(("delete", self.deleted))
        if self.inserted:
            self.pieces.append(("insert", self.inserted))
        self.deleted, self.inserted = [], []

    def finish(self) -> Diff:
        self._flush()
        return [(op, "".join(tokens)) for op, tokens in self.pieces]


def _word_count(tokens: Sequence[str]) -> int:
    """Words among tokens, which alternate between words and runs of white space."""
    if not tokens:
        return 0
    starts_with_word = not tokens[0].isspace()
    return (len(tokens) + starts_with_word) // 2


def _word_positions(tokens: Sequence[str], lo: int, hi: int) -> range:
    """The indices of the words in tokens[lo:hi] (tokens alternate, so every other one)."""
    if lo < hi and tokens[lo].isspace():
        lo += 1
    return range(lo, hi, 2)


def _unseen_changes(old: Sequence[str], new: Sequence[str], alo: int, blo: int) -> int:
    """At least how many words differ in old[alo:] and new[blo:] (see _word_gap)."""
    words_a = {old[i] for i in _word_positions(old, alo, len(old))}
    words_b = {new[j] for j in _word_positions(new, blo, len(new))}
    return len(words_a - words_b) + len(words_b - words_a)


def _diff_tokens(
    old: Sequence[str], new: Sequence[str], out: _Builder, *, stop_after: int | None
) -> int | None:
    """Diff two token lists into `out`, left to right, within MAX_WORK.

    With `stop_after`, stops once more words than that changed and returns at least how
    many words changed in the rest (None when it went to the end).
    """
    budget = MAX_WORK
    # A stack of pieces still to diff, the leftmost on top; an anchor is a piece of one
    # equal token on each side, which the prefix trim below turns into an equal op.
    stack: list[_Region] = [(0, len(old), 0, len(new))]
    while stack:
        if stop_after is not None and out.changed > stop_after:
            # What is left is contiguous: old[alo:] against new[blo:] of the next piece.
            return _unseen_changes(old, new, stack[-1][0], stack[-1][2])
        alo, ahi, blo, bhi = stack.pop()
        start = alo
        while alo < ahi and blo < bhi and old[alo] == new[blo]:
            alo, blo = alo + 1, blo + 1
        out.equal(old[start:alo])
        end = ahi
        while alo < ahi and blo < bhi and old[ahi - 1] == new[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
        if ahi < end:
            stack.append((ahi, end, bhi, bhi + end - ahi))  # the suffix: all equal, comes last
        cells = (ahi - alo) * (bhi - blo)
        if cells == 0:
            out.change(old[alo:ahi], new[blo:bhi])
            continue
        if cells <= LEAF_CELLS and budget >= cells:
            budget -= cells
            _diff_leaf(old[alo:ahi], new[blo:bhi], out)
            continue
        anchors: list[tuple[int, int]] = []
        if budget > 0:
            budget -= len(ANCHOR_RUNS) * (ahi - alo + bhi - blo)
            anchors = _anchors(old, new, (alo, ahi, blo, bhi))
        if anchors:
            stack.extend(reversed(_split(anchors, (alo, ahi, blo, bhi))))
        elif cells <= BIG_CELLS and budget >= cells:
            budget -= cells
            _diff_leaf(old[alo:ahi], new[blo:bhi], out)
        else:
            out.change(old[alo:ahi], new[blo:bhi])
    return None


def _split(anchors: Sequence[tuple[int, int]], region: _Region) -> list[_Region]:
    """The pieces of `region` between anchors, each anchor a one-token piece, left to right."""
    alo, ahi, blo, bhi = region
    pieces: list[_Region] = []
    for i, j in anchors:
        pieces.append((alo, i, blo, j))
        pieces.append((i, i + 1, j, j + 1))
        alo, blo = i + 1, j + 1
    pieces.append((alo, ahi, blo, bhi))
    return [p for p in pieces if p[0] < p[1] or p[2] < p[3]]


def _diff_leaf(old: Sequence[str], new: Sequence[str], out: _Builder) -> None:
    """A small piece through SequenceMatcher, white space as junk."""
    # Junk never anchors a match: "two three" -> "2 3" reads as one replacement rather
    # than two split by a matching space. autojunk off: it would junk common words too.
    matcher = difflib.SequenceMatcher(str.isspace, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.equal(old[i1:i2])
        else:
            out.change(old[i1:i2], new[j1:j2])


def _anchors(old: Sequence[str], new: Sequence[str], region: _Region) -> list[tuple[int, int]]:
    """Token positions (i, j) of words that start a run unique in both pieces, in order."""
    alo, ahi, blo, bhi = region
    words_a = _word_positions(old, alo, ahi)
    words_b = _word_positions(new, blo, bhi)
    for run in ANCHOR_RUNS:
        keys_a = _run_keys(old, words_a, run)
        keys_b = _run_keys(new, words_b, run)
        count_a = Counter(keys_a)
        count_b = Counter(keys_b)
        where_b = {key: words_b[p] for p, key in enumerate(keys_b) if count_b[key] == 1}
        pairs = [
            (words_a[p], where_b[key])
            for p, key in enumerate(keys_a)
            if count_a[key] == 1 and key in where_b
        ]
        if pairs:
            return _increasing(pairs)
    return []


def _run_keys(tokens: Sequence[str], words: Sequence[int], run: int) -> list[Hashable]:
    """The key of the run of `run` words starting at each word (a word itself for 1)."""
    texts = [tokens[i] for i in words]
    if run == 1:
        return list(texts)
    return [tuple(texts[p : p + run]) for p in range(len(texts) - run + 1)]


def _increasing(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of `pairs` (sorted by first) whose seconds increase."""
    tails: list[int] = []  # the second of the last pair of the best run of each length
    tail_index: list[int] = []
    back: list[int] = [-1] * len(pairs)
    for index, (_, j) in enumerate(pairs):
        length = bisect_left(tails, j)
        if length == len(tails):
            tails.append(j)
            tail_index.append(index)
        else:
            tails[length] = j
            tail_index[length] = index
        back[index] = tail_index[length - 1] if length else -1
    chain: list[tuple[int, int]] = []
    index = tail_index[-1] if tail_index else -1
    while index >= 0:
        chain.append(pairs[index])
        index = back[index]
    chain.reverse()
    return chain
