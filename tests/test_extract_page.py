"""extract_page and extract_text: text rules, skeletons, layouts, next page, page signs, limits."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
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


@pytest.mark.parametrize("seed", range(6))
def test_the_depth_bound_cuts_what_its_rules_say(seed: int) -> None:
    """On deep, messy markup (end tags for the top, for elements a few levels down, strays;
    implied closings; void elements; upper case), the bound cuts exactly the tags its rules
    name: the same text as a walk written plainly from them."""
    rnd = random.Random(seed)
    names = ["div", "span", "section", "p", "li", "td", "tr", "option", "dd", "br", "img", "DIV"]
    parts: list[str] = []
    opened: list[str] = []
    close_rate = rnd.choice([0.1, 0.2, 0.25])  # each seed nests past MAX_DEPTH
    for _ in range(limits.DEPTH_GATE + 2_000):
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
            parts.append("text")
    markup = "".join(parts)
    bounded = limits.bound_markup(markup)
    assert bounded != markup  # some tags were cut
    assert bounded == _reference_bound_depth(markup)
