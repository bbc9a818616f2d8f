"""extract_page and extract_text: text rules, skeletons, layouts, next page, page signs, limits."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.config import Selectors
from monitor.extract import (
    EXTRACTOR_VERSION,
    Extraction,
    extract_entries,
    extract_page,
    extract_text,
    limits,
    normalise_text,
)
from monitor.extract.limits import MAX_DEPTH
from monitor.models import Entry

ROW = Selectors(item=".row", title="h2", link="a")


@dataclass(frozen=True)
class Paged:
    """A selector set with a next-page selector (as config's Selectors will have)."""

    item: str
    title: str | None = None
    link: str | None = None
    description: str | None = None
    next: str | None = None


def page(markup: str, *layouts: object, base_url: str = "https://e.org/list") -> Extraction:
    """extract_page on a small UTF-8 page."""
    return extract_page(
        markup.encode(), content_type="text/html", base_url=base_url, layouts=layouts or [ROW]
    )


# -- the text rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Cafe\u0301", "Café"),
        ("\u212b", "\u00c5"),
        ("Inter\u00adnational", "International"),
        ("zero\u200bwidth\u200c\u200djoin\u2060ers\ufeff", "zerowidthjoiners"),
        ("a\xa0\xa0b\u00a0", "a b"),
        ("\u00ad \u200b", ""),
        ("tab\there\r\nline", "tab here line"),
        ("nul\x00 and\x7f del", "nul and del"),
    ],
    ids=["nfd-to-nfc", "angstrom-sign", "soft-hyphen", "zero-width", "nbsp", "only-invisible",
         "white-space", "controls"],
)  # fmt: skip
def test_text_rules(text: str, expected: str) -> None:
    """Text is NFC, without invisible or control characters, each white-space run one space."""
    assert normalise_text(text) == expected


def test_spellings_a_reader_cannot_tell_apart_are_one_entry() -> None:
    """NFD vs NFC, a soft hyphen, a zero-width space and &nbsp; do not change an entry."""
    plain = page("<div class=row><h2>Café Initiative</h2><p>For all museums.</p></div>")
    odd = page(
        "<div class=row><h2>Cafe&#x301;&nbsp;Ini&shy;tia&#8203;tive</h2>"
        "<p>For\u00a0all mu\u00adseums.</p></div>"
    )
    assert odd.entries == plain.entries
    assert plain.entries[0].title == unicodedata.normalize("NFC", "Café Initiative")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_property_text_rules_are_idempotent(text: str) -> None:
    """Normalised text normalises to itself: stored text is already in its final form."""
    once = normalise_text(text)
    assert normalise_text(once) == once


# -- skeleton items ----------------------------------------------------------------------------


def test_skeleton_items_are_not_entries() -> None:
    """An item with no title, no link and no text is skipped, and not counted."""
    markup = (
        "<div class=row><h2>Real</h2></div>"
        "<div class=row><h2> </h2><a>&nbsp;</a></div>"
        "<div class=row><img src=/placeholder.png></div>"
        "<div class=row><a href=/only-a-link></a></div>"
    )
    entries = page(markup).entries
    assert entries == (
        Entry(title="Real", link=None, description=""),
        Entry(title="", link="https://e.org/only-a-link", description=""),
    )


def test_a_link_back_to_the_page_itself_is_no_link() -> None:
    """Items linking to "#", "#anchor" or the listing's own URL have no page of their own:
    their link is None (so they are told apart by their fields, not merged as one entry by
    a shared "link"); links elsewhere, even to the page with a query, are kept."""
    markup = (
        "<div class=row><h2>Open eBooks</h2><a href='#open-ebooks'>more</a></div>"
        "<div class=row><h2>Museums for All</h2><a href='#'>more</a></div>"
        "<div class=row><h2>Focus</h2><a href='https://e.org/list#focus'>more</a></div>"
        "<div class=row><h2>Page 2</h2><a href='/list?page=2'>more</a></div>"
        "<div class=row><h2>Elsewhere</h2><a href='/x#part'>more</a></div>"
        "<div class=row><a href='#'></a></div>"  # nothing else: a skeleton, not an entry
    )
    entries = page(markup).entries
    assert [(e.title, e.link) for e in entries] == [
        ("Open eBooks", None),
        ("Museums for All", None),
        ("Focus", None),
        ("Page 2", "https://e.org/list?page=2"),
        ("Elsewhere", "https://e.org/x#part"),
    ]


def test_a_page_of_skeletons_has_no_entries_but_its_layout() -> None:
    """Skeleton rows still say which layout the page is in; they just give no entry."""
    extraction = page("<div class=row></div>" * 5)
    assert (extraction.entries, extraction.layout) == ((), 0)


# -- layouts and the next page -----------------------------------------------------------------


def test_layouts_are_tried_in_order() -> None:
    """The first layout whose item matches gives the entries; its index is reported."""
    old = Selectors(item="li.old", title="b")
    new = Selectors(item=".row", title="h2")
    markup = "<ul><li class=old><b>Old</b></ul>"
    assert page(markup, new, old).layout == 1
    assert [e.title for e in page(markup, new, old).entries] == ["Old"]
    both = markup + "<div class=row><h2>New</h2></div>"
    assert [e.title for e in page(both, new, old).entries] == ["New"]
    assert page("<p>neither</p>", new, old).layout is None


def test_next_url_is_the_absolute_link_of_the_layouts_next() -> None:
    """The next page is the first `next` match's href, made absolute against <base href>."""
    select = Paged(item=".row", title="h2", next="a[rel=next], .pager-next a")
    markup = (
        '<head><base href="https://e.org/dir/"></head>'
        "<div class=row><h2>One</h2></div>"
        '<ul class=pager><li class=pager-next><a href="?page=2">next</a></ul>'
    )
    assert page(markup, select).next_url == "https://e.org/dir/?page=2"
    assert page("<div class=row><h2>One</h2></div>", select).next_url is None
    javascript = '<div class=row><h2>x</h2></div><a rel=next href="javascript:go()">'
    assert page(javascript, select).next_url is None


def test_next_comes_from_the_layout_that_matched() -> None:
    """A page read with its second layout takes that layout's next link, not the first's."""
    first = Paged(item=".row", next="a.first")
    second = Paged(item="li", next="a.second")
    markup = "<ul><li>x</ul><a class=first href=/1>1</a><a class=second href=/2>2</a>"
    assert page(markup, first, second).next_url == "https://e.org/2"


# -- title, heading, text ----------------------------------------------------------------------


def test_title_heading_and_text_of_the_page() -> None:
    """The <title>, the first <h1> and the start of the visible text, each normalised."""
    markup = (
        "<html><head><title> Page&nbsp;not   found </title><style>h1{}</style></head>"
        "<body><script>var x = 1;</script><h1>Sorry</h1><h1>Second</h1>"
        "<p>The page you asked for<br>is gone.</p></body></html>"
    )
    extraction = page(markup)
    assert extraction.title == "Page not found"
    assert extraction.heading == "Sorry"
    assert extraction.text == "Sorry Second The page you asked for is gone."


def test_text_is_cut_at_4000_characters() -> None:
    """A 10 MB text node gives the first 4000 characters of the normalised text."""
    extraction = page("<p>" + "word\xa0 \n" * 1_300_000)
    assert len(extraction.text) <= 4000
    assert extraction.text.startswith("word word")
    assert "  " not in extraction.text


def test_extract_text_of_an_entry_page() -> None:
    """extract_text reads the selected elements once each, joined, or the whole body."""
    body = (
        b"<nav>Menu</nav><main><h1>Initiative</h1><div class=x><p>Body</p>"
        b"<div class=x>inner</div></div></main><div class=x>last</div>"
    )
    assert extract_text(body, content_type="text/html", selector="main") == "Initiative Body inner"
    assert extract_text(body, content_type="text/html", selector=".x") == "Body inner last"
    assert extract_text(body, content_type=None, selector=None) == (
        "Menu Initiative Body inner last"
    )
    assert extract_text(body, content_type=None, selector=".none") == ""
    with pytest.raises(ValueError, match="select.content"):
        extract_text(body, content_type=None, selector="p[[")


def test_extractor_version_names_the_engine() -> None:
    """The version that goes into the body key names the engine."""
    assert EXTRACTOR_VERSION.startswith("lexbor-")


# -- the HTML5 tree ----------------------------------------------------------------------------


def test_selectors_match_the_tree_a_browser_builds() -> None:
    """tbody is implied and an unclosed <p> ends at the next block, as in developer tools."""
    markup = (
        "<table><tr class=row><td><h2>T</h2><a href=/t>t</a></td></tr></table>"
        "<p class=row><h2>Not in the p</h2>"
    )
    select = Selectors(item="table > tbody > tr.row", title="h2", link="a")
    assert extract_entries(markup.encode(), base_url="https://e.org/", select=select) == [
        Entry(title="T", link="https://e.org/t", description="t")
    ]
    paragraphs = extract_entries(
        markup.encode(), base_url="https://e.org/", select=Selectors(item="p.row", title="h2")
    )
    assert paragraphs == []  # the <p> is empty: a skeleton


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markup",
    [
        "<div>" * 100_000 + "<div class=row><h2>Deep</h2></div>" + "</div>" * 100_000,
        "<div class=row><h2>Deep</h2></div>" + "<section>" * 100_000,
        "<div class=row><h2>Deep</h2></div>" + "<div><span>" * 60_000,
    ],
    ids=["100k-nested-around", "100k-unclosed-after", "alternating-120k"],
)
def test_deep_nesting_is_bounded_and_keeps_the_rows(markup: str) -> None:
    """Nesting far past any real page is cut (see limits.py); the rows still read."""
    assert [e.title for e in page(markup).entries] == ["Deep"]


def test_rows_never_closed_past_the_depth_limit_end_in_the_last_one() -> None:
    """20 000 rows never closed: the first MAX_DEPTH are entries, the last takes the rest's text."""
    markup = "".join(f"<div class=row><a href=/e{i}>e{i}</a>" for i in range(20_000))
    entries = page(markup).entries
    assert len(entries) == MAX_DEPTH
    assert entries[0] == Entry(title="", link="https://e.org/e0", description="e0")
    assert entries[-1].description.endswith("e19999")


def _reference_bound_depth(text: str) -> str:
    """limits.py's depth bound as its docstring states it, one match object per tag: the
    oracle of its faster walk."""
    stack: list[tuple[str, bool]] = []
    cuts: list[tuple[int, int]] = []
    for match in limits._TAG.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if closing:
            for index in range(len(stack) - 1, max(len(stack) - limits._NEAR, 0) - 1, -1):
                if stack[index][0] == name:
                    if stack[index][1]:
                        cuts.append(match.span())
                    del stack[index:]
                    break
            continue
        if name in limits._VOID:
            continue
        while stack and stack[-1][0] in limits._CLOSES.get(name, frozenset()):
            stack.pop()
        stack.append((name, len(stack) >= MAX_DEPTH))
        if stack[-1][1]:
            cuts.append(match.span())
    kept, position = [], 0
    for start, end in cuts:
        kept.append(text[position:start])
        position = end
    return "".join(kept) + text[position:]


def _reference_bound_markup(text: str) -> str:
    """bound_markup as limits.py's docstring states it, with no shortcut: every run looked for
    with the regular expressions, every page past the gate walked tag by tag."""
    if text.count("<") > limits.MAX_RUN:
        text = limits._START_RUN.sub(limits._keep_first, text)
        text = limits._END_RUN.sub(limits._keep_first, text)
    return text if text.count("<") <= limits.DEPTH_GATE else _reference_bound_depth(text)


def _messy_markup(rnd: random.Random, tags: int, close_rate: float) -> str:
    """Tags opened and closed at random: end tags for the top, for elements a few levels
    down, strays; implied closings; void elements; upper and mixed case; stray "<"."""
    names = ["div", "span", "section", "p", "li", "td", "tr", "option", "dd", "br", "img", "DIV",
             "Img", "BR", "ul", "table", "x-y"]  # fmt: skip
    parts: list[str] = []
    opened: list[str] = []
    for _ in range(tags):
        if opened and rnd.random() < close_rate:
            back = rnd.choice([1, 1, 1, 2, 3, 9, 12])
            name = opened[-back] if back <= len(opened) else rnd.choice(names)
            del opened[-back:]
            parts.append(f"</{name}>")
        else:
            name = rnd.choice(names)
            opened.append(name)
            parts.append(f"<{name} id=x{len(parts)}>" if rnd.random() < 0.2 else f"<{name}>")
        if rnd.random() < 0.05:
            parts.append(rnd.choice(["text", "a < b", "<!-- c -->", "<x<y>", "<", "</>"]))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(6))
def test_the_depth_bound_cuts_what_its_rules_say(seed: int) -> None:
    """On deep, messy markup, the bound cuts exactly the tags its rules name: the same text
    as a walk written plainly from them."""
    rnd = random.Random(seed)
    close_rate = rnd.choice([0.1, 0.2, 0.25])  # each seed nests past MAX_DEPTH
    markup = _messy_markup(rnd, limits.DEPTH_GATE + 2_000, close_rate)
    bounded = limits.bound_markup(markup)
    assert bounded != markup  # some tags were cut
    assert bounded == _reference_bound_depth(markup)


def _tower(rnd: random.Random, levels: int) -> str:
    """`levels` nested divs, each holding small closed elements or voids, around rows, then
    a tail of voids that takes the page past DEPTH_GATE."""
    content = ["<p>x</p>", "<span><a href=/x>y</a><img></span>", "<ul><li>a<li><b>b</b></ul>",
               "<div><section><p><i>d</i></p></section></div>", "<br>", "<li>", ""]  # fmt: skip
    opening = "".join(f"<div id=d{level}>{rnd.choice(content)}" for level in range(levels))
    rows = "<div class=row><h2>T</h2><p>one <b>two</b></p></div>" * 3
    return f"<html><body>{opening}{rows}{'</div>' * levels}{'<br>' * limits.DEPTH_GATE}"


def _runs(rnd: random.Random, length: int) -> str:
    """Runs of identical tags around MAX_RUN long, white space between varying, the first
    tag of one read as the end of a junk tag before it (`<x<div>`)."""
    tag = rnd.choice(["<div>", "</div>", "<span class=a>", "<br>", "<li>", "</p >"])
    run = "".join(tag + rnd.choice(["", " ", "\n"]) for _ in range(length))
    return f"<main>{'<x' if rnd.random() < 0.5 else ''}{run}<div class=row><h2>T</h2></div>"


@pytest.mark.parametrize("seed", range(16))
def test_the_bound_takes_its_shortcuts_only_where_its_rules_change_nothing(seed: int) -> None:
    """The shortcuts (no run looked for, no walk) are taken on pages the rules leave as they
    are, never on one they change: on pages around MAX_RUN and MAX_DEPTH, shallow or deep, the
    bound gives what its rules written plainly give."""
    rnd = random.Random(seed)
    kind = seed % 4
    if kind == 0:  # nesting within a few levels of MAX_DEPTH, either side
        markup = _tower(rnd, MAX_DEPTH + rnd.randint(-12, 4))
    elif kind == 1:  # runs one short of the cut, at it, one past it
        markup = _runs(rnd, limits.MAX_RUN + rnd.choice([-1, 0, 1, 2]))
    elif kind == 2:  # messy markup past the gate that a walk finds shallow or deep
        markup = _messy_markup(rnd, limits.DEPTH_GATE + 500, rnd.choice([0.3, 0.45, 0.5]))
    else:  # a run inside a page past the gate
        markup = _messy_markup(rnd, limits.DEPTH_GATE, 0.5) + _runs(rnd, limits.MAX_RUN + 2)
    assert limits.bound_markup(markup) == _reference_bound_markup(markup)


_TOKENS = ["div", "/div", "p", "/p", "li", "/li", "td", "tr", "/tr", "span", "/span", "br", "img",
           "/br", "ul", "/ul", "b", "/b"]  # fmt: skip
# Tags in motifs repeated a few times: nests, ladders, end tags that find nothing.
_MOTIFS = st.tuples(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=4), st.integers(1, 14))


@settings(max_examples=400, deadline=None)
@given(st.lists(_MOTIFS, max_size=24).map(lambda ms: [t for motif, n in ms for t in motif * n]))
@example(["div"] * 12 + ["/div"] * 12)  # removed in as many passes as are made, at its limit
@example(["div"] * 13 + ["/div"] * 13)
@example(["ul", "b"] + ["span", "/p"] * 9 + ["/b", "/ul", "li"])  # inner end tags that miss
@example(["p", "div", "/div", "/p"] * 3)  # an implied closing inside what goes
def test_the_nesting_bound_is_never_below_the_walks(tokens: list[str]) -> None:
    """What lets a page skip the walk: its C-speed bound is never below the deepest nesting
    the walk finds, whatever the tags."""
    _, deepest = limits._walk(tokens)
    assert limits._nesting_bound(tokens) >= deepest
