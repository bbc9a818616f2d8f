"""Markup made safe to hand to Lexbor: its one cost that grows faster than the page, bounded.

Lexbor builds the HTML5 tree in time linear in the page except in one place: each block start
tag (div, p, section, li...) looks down the stack of open elements for a <p> to close, so a page
of N nested elements costs N^2 (100 000 nested <div>s: 19 s; 10 000: 0.15 s). Browsers bound
the same thing (Blink flattens the tree past 512 levels). Two bounds, applied to the decoded
text before the parse:

- A run of more than MAX_RUN identical start tags in a row (attributes and all; or identical
  end tags) keeps its first MAX_RUN: the hostile shape (`<div>` * 100 000 around the rows)
  keeps its rows.
- On a page of more than DEPTH_GATE tags, the nesting is estimated (end tags closing their
  nearest open namesake, the common implied closings of p, li, dt, dd, tr, td, th and option
  modelled); past MAX_DEPTH levels, tags are dropped (their text stays). Pages with fewer
  tags cost at most DEPTH_GATE^2 stack steps (about 0.6 s), so are left as they are.

Normal pages are untouched: a listing's nesting is tens of levels deep. Both bounds read the
page's tags once (`_TOKEN`), and prove in passes of C speed that most pages need neither: no
run as long as MAX_RUN, nesting far from MAX_DEPTH (`_nesting_bound`). The walk in Python,
one step a tag, is left to the pages that may need it.

This is an estimate, not a bound: it reads tags with a regular expression (end tags inside
comments, scripts or attribute values count) and lets an end tag close its element through
one that the HTML5 algorithm would stop at (`<span><div></span>` repeated nests two levels
a repeat). What bounds a big page's parse is `monitor/parseguard.py`'s deadline.
"""

from __future__ import annotations

import operator
import re
from itertools import filterfalse, islice

MAX_RUN = 4096
DEPTH_GATE = 20_000
MAX_DEPTH = 4096

# A run of the same tag, attributes and all, twice or more in a row (white space between);
# possessive, and the scan goes on after a run: linear.
_START_RUN = re.compile(r"((<[a-zA-Z][^<>]*+>)\s*+)(?:\2\s*+)++")
_END_RUN = re.compile(r"((</[a-zA-Z][^<>]*+>)\s*+)(?:\2\s*+)++")
_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)[^<>]*>")
# _TAG's matches (the same, possessive: no backtracking can find another), as one string
# each: "div", "/DIV". Strings are not tracked by the cyclic collector, tuples are.
_TOKEN = re.compile(r"<(/?[a-zA-Z][^\s/>]*+)[^<>]*+>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_VOID_TOKENS = _VOID | {name.upper() for name in _VOID}  # as most pages write them
# Start tags that close an open element of a name in the value (when it is near the top).
_CLOSES: dict[str, frozenset[str]] = {
    "li": frozenset({"li", "p"}),
    "dt": frozenset({"dt", "dd", "p"}),
    "dd": frozenset({"dt", "dd", "p"}),
    "tr": frozenset({"tr", "td", "th"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "option": frozenset({"option"}),
    "p": frozenset({"p"}),
    "div": frozenset({"p"}),
    "ul": frozenset({"p"}),
    "ol": frozenset({"p"}),
    "table": frozenset({"p"}),
}
_NEAR = 8  # how far down the stack an implied or explicit closing is looked for
# An element, one token a line, whose content is elements closed in turn, three levels deep
# with it at most (<a><b><c></c></b><b></b></a>; voids are gone by then): the walk opens no
# more than those levels inside it, whatever it closes there (see _nesting_bound).
_LINE = r"[^/\n][^\n]*+"  # a start tag's line
_CLOSED = re.compile(
    rf"^({_LINE})\n(?:({_LINE})\n(?:({_LINE})\n/\3\n)*+/\2\n)*+/\1\n", re.MULTILINE
)
_CLOSED_LEVELS = 3
_CLOSED_PASSES = 4


def _keep_first(match: re.Match[str]) -> str:
    """A run of identical tags, cut to its first MAX_RUN (each tag holds one "<")."""
    run = match.group(0)
    return match.group(1) * MAX_RUN if run.count("<") > MAX_RUN else run


def bound_markup(text: str) -> str:
    """`text` with over-long runs of identical tags cut and, on big pages, nesting bounded."""
    tags = text.count("<")  # an upper bound of the tags: one pass of memchr's speed
    if tags <= MAX_RUN:
        return text
    tokens = _TOKEN.findall(text)
    if _may_hold_a_run(tokens):
        text = _START_RUN.sub(_keep_first, text)
        text = _END_RUN.sub(_keep_first, text)
        tags = text.count("<")
        tokens = _TOKEN.findall(text) if tags > DEPTH_GATE else tokens
    if tags <= DEPTH_GATE or _nesting_bound(tokens) < MAX_DEPTH:
        return text
    cut, _ = _walk("\n".join(tokens).lower().split("\n"))
    if not cut:
        return text
    parts: list[str] = []
    position = 0
    for ordinal, match in enumerate(_TAG.finditer(text)):  # the same tags, in the same order
        if ordinal in cut:
            parts.append(text[position : match.start()])
            position = match.end()
    parts.append(text[position:])
    return "".join(parts)


def _may_hold_a_run(tokens: list[str]) -> bool:
    """False when no run of identical tags is longer than MAX_RUN (True: there may be one).

    A run's tags are consecutive equal tokens; its first one only may be lost, read as the
    end of a tag before it (`<x<div>`).
    """
    same = bytes(map(operator.eq, tokens, islice(tokens, 1, None)))  # 1 where equal to the next
    return b"\x01" * (MAX_RUN - 1) in same


def _nesting_bound(tokens: list[str]) -> int:
    """At least the deepest nesting `_walk` finds in `tokens`, found at C speed on most pages.

    Void start tags go (the walk passes them by), then elements that close themselves with all
    their content (`_CLOSED`), in a few passes over the tokens, one a line; the walk runs over
    what is left. Removing such an element can only leave more elements open than the walk
    of the whole would (its start tag's implied closings and its end tag do not happen), and
    inside it the walk opened at most its levels (each element in it is closed by its own end
    tag, or earlier): the deepest nesting is at most what is left's plus the levels removed.
    """
    lines = "\n".join(filterfalse(_VOID_TOKENS.__contains__, tokens)).lower() + "\n"
    removed = 0
    for _ in range(_CLOSED_PASSES):
        reduced = _CLOSED.sub("", lines)
        removed += _CLOSED_LEVELS
        if len(reduced) == len(lines):
            break
        lines = reduced
    _, deepest = _walk(lines[:-1].split("\n") if len(lines) > 1 else [])
    return deepest + removed


def _walk(tokens: list[str]) -> tuple[set[int], int]:
    """The ordinals of the tags (start, or end of a dropped start) past MAX_DEPTH levels, and
    the deepest nesting reached. `tokens` are _TOKEN's, lower-cased."""
    stack: list[tuple[str, bool]] = []  # open elements: name, whether its start tag was dropped
    cut: set[int] = set()
    deepest = 0
    for ordinal, token in enumerate(tokens):
        if token[0] == "/":
            name = token[1:]
            if stack and stack[-1][0] == name:  # most end tags close the element on top
                if stack.pop()[1]:
                    cut.add(ordinal)
                continue
            for index in range(len(stack) - 2, max(len(stack) - _NEAR, 0) - 1, -1):
                if stack[index][0] == name:
                    if stack[index][1]:
                        cut.add(ordinal)
                    del stack[index:]
                    break
            continue
        if token in _VOID:
            continue
        closes = _CLOSES.get(token, frozenset())
        while stack and stack[-1][0] in closes:
            stack.pop()
        dropped = len(stack) >= MAX_DEPTH
        if dropped:
            cut.add(ordinal)
        stack.append((token, dropped))
        deepest = max(deepest, len(stack))
    return cut, deepest
