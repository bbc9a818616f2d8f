"""Markup made safe to hand to Lexbor: its one cost that grows faster than the page, bounded.

Lexbor builds the HTML5 tree in time linear in the page except in one place: each block start
tag (div, p, section, li...) looks down the stack of open elements for a <p> to close, so a page
of N nested elements costs N^2 (100 000 nested <div>s: 19 s; 10 000: 0.15 s). Browsers bound
the same thing (Blink flattens the tree past 512 levels). Two bounds, applied to the decoded
text before the parse:

- A run of more than MAX_RUN identical start tags in a row (attributes and all; or identical
  end tags) keeps its first MAX_RUN: the hostile shape (`<div>` * 100 000 around the rows)
  keeps its rows.
- On a page of more than DEPTH_GATE tags, the nesting is estimated in one pass (end tags closing
  their nearest open namesake, the common implied closings of p, li, dt, dd, tr, td, th and
  option modelled); past MAX_DEPTH levels, tags are dropped (their text stays). Pages with
  fewer tags cost at most DEPTH_GATE^2 stack steps (about 0.6 s), so are left as they are.

Normal pages are untouched: a listing's nesting is tens of levels deep.

This is an estimate, not a bound: it reads tags with a regular expression (end tags inside
comments, scripts or attribute values count) and lets an end tag close its element through
one that the HTML5 algorithm would stop at (`<span><div></span>` repeated nests two levels
a repeat). What bounds a big page's parse is `monitor/parseguard.py`'s deadline.
"""

from __future__ import annotations

import re

MAX_RUN = 4096
DEPTH_GATE = 20_000
MAX_DEPTH = 4096

# A run of the same tag, attributes and all, twice or more in a row (white space between);
# possessive, and the scan goes on after a run: linear.
_START_RUN = re.compile(r"((<[a-zA-Z][^<>]*+>)\s*+)(?:\2\s*+)++")
_END_RUN = re.compile(r"((</[a-zA-Z][^<>]*+>)\s*+)(?:\2\s*+)++")
_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/>]*)[^<>]*>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
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


def _keep_first(match: re.Match[str]) -> str:
    """A run of identical tags, cut to its first MAX_RUN (each tag holds one "<")."""
    run = match.group(0)
    return match.group(1) * MAX_RUN if run.count("<") > MAX_RUN else run


def bound_markup(text: str) -> str:
    """`text` with over-long runs of identical tags cut and, on big pages, nesting bounded."""
    tags = text.count("<")  # an upper bound of the tags: one pass of memchr's speed
    if tags > MAX_RUN:
        text = _START_RUN.sub(_keep_first, text)
        text = _END_RUN.sub(_keep_first, text)
        tags = text.count("<")
    if tags <= DEPTH_GATE:
        return text
    return _bound_depth(text)


def _bound_depth(text: str) -> str:
    """`text` less the tags that would open (or close) an element deeper than MAX_DEPTH."""
    # The walk reads (closing, name) pairs, not match objects: a third faster on a page of
    # 160,000 tags (175-185 -> 107-124 ms). The tags to cut are found again, as matches with
    # their spans, only on the rare page that has some.
    cut = _tags_to_cut(_TAG.findall(text))
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


def _tags_to_cut(tags: list[tuple[str, str]]) -> set[int]:
    """The ordinals of the tags (start, or end of a dropped start) past MAX_DEPTH levels."""
    stack: list[tuple[str, bool]] = []  # open elements: name, whether its start tag was dropped
    cut: set[int] = set()
    for ordinal, (closing, name) in enumerate(tags):
        name = name.lower()
        if closing:
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
        if name in _VOID:
            continue
        closes = _CLOSES.get(name, frozenset())
        while stack and stack[-1][0] in closes:
            stack.pop()
        dropped = len(stack) >= MAX_DEPTH
        if dropped:
            cut.add(ordinal)
        stack.append((name, dropped))
    return cut
