"""The change-log feed (Atom, RSS, JSON Feed) and its atomic publication."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from monitor.durable import write_atomically
from monitor.errors import StoreError
from monitor.feed import (
    FeedFormat,
    FeedInfo,
    diff_words,
    event_html,
    event_iri,
    event_title,
    render_feed,
)
from monitor.models import ENTRY_EVENT_KINDS, PAGE_EVENT_KINDS, Change, Event
from monitor.publish import format_for_path, publish_feed

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INFO = FeedInfo(
    title="IMLS national initiatives: change log",
    feed_id="urn:uuid:5b0c8f1e-3a3d-4b8e-9f60-2f1d8f0f7a11",
    home_url="http://127.0.0.1:8080/",
    self_url="http://127.0.0.1:8080/feed.atom",
)
HOSTILE = "<script>alert(1)</script> & co \"quoted\" 'single' ]]> &amp; <b>bold</b>"
LONG_DESCRIPTION = (
    "A national initiative that supports libraries and museums in building digital "
    "inclusion programs for rural communities across the country."
)


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def make_events() -> list[Event]:
    """One event of each of the nine kinds, newest first (as the store returns them)."""
    at = [T0 + timedelta(hours=h) for h in range(9)]
    return [
        Event(uid(9), "page-anomaly", at[8], "active", detail="3 entries, normal count 12"),
        Event(uid(8), "page-gone", at[7], "archived", detail="HTTP 404"),
        Event(uid(7), "page-recovered", at[6], "active", detail="HTTP 200, 12 entries"),
        Event(uid(6), "page-error", at[5], "active", detail="HTTP 503 after 3 retries"),
        Event(
            uid(5), "removed", at[4], "archived", entry_id="e5", title="Old Program",
            link="https://www.imls.gov/issues/national-initiatives/archives/old-program",
            description="Gone now.", capture_id=5,
        ),
        Event(
            uid(4), "restored", at[3], "active", entry_id="e4", title="Back Again",
            link=None, description="It came back.", capture_id=4,
        ),
        Event(
            uid(3), "changed", at[2], "active", entry_id="e3", title="Digital Inclusion",
            link="https://www.imls.gov/issues/national-initiatives/digital-inclusion",
            description="Grants for libraries and archives",
            changes={
                "description": Change("Grants for museums and libraries",
                                      "Grants for libraries and archives"),
                "link": Change("https://www.imls.gov/issues/digital-inclusion",
                               "https://www.imls.gov/issues/national-initiatives/digital-inclusion"),
            },
            capture_id=3,
        ),
        Event(
            uid(2), "archived", at[1], "archived", entry_id="e2", title="Film Forward",
            link="https://www.imls.gov/issues/national-initiatives/archives/film-forward",
            description="A film program.", capture_id=2,
        ),
        Event(
            uid(1), "added", at[0], "active", entry_id="e1", title="",
            link="https://www.imls.gov/issues/national-initiatives/new",
            description=LONG_DESCRIPTION, capture_id=1,
        ),
    ]


EXPECTED_TITLES = [
    "Page anomaly on 'active': 3 entries, normal count 12",
    "Page gone on 'archived': HTTP 404",
    "Page recovered on 'active': HTTP 200, 12 entries",
    "Page error on 'active': HTTP 503 after 3 retries",
    "Removed: Old Program",
    "Restored: Back Again",
    "Changed: Digital Inclusion",
    "Archived: Film Forward",
    "Added: A national initiative that supports libraries and museums in building digital…",
]


def hostile_event(**fields: Any) -> Event:
    """An entry event whose text comes from a page trying to inject markup."""
    values: dict[str, Any] = {
        "id": uid(42), "kind": "changed", "at": T0, "page": "active", "entry_id": "e42",
        "title": HOSTILE, "link": "https://example.org/x?a=1&b=\"2\"",
        "description": f"Body {HOSTILE}",
        "changes": {
            "title": Change("<script>old()</script>", HOSTILE),
            "description": Change("Body <img src=x onerror=alert(1)>", f"Body {HOSTILE}"),
            "link": Change("javascript:alert(1)", "https://example.org/x?a=1&b=\"2\""),
        },
        "capture_id": 42,
    }
    values.update(fields)
    return Event(**values)


class TagCollector(HTMLParser):
    """Collects the start tags and hrefs of an HTML fragment, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for name, value in attrs if name == "href"]


def tags_of(fragment: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(fragment)
    collector.close()
    return collector


def parse_xml_feed(data: bytes) -> Any:
    """Parse with feedparser, its own sanitiser off so that our escaping is what is tested."""
    parsed = feedparser.parse(data, sanitize_html=False)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def render(events: list[Event], fmt: FeedFormat, max_entries: int = 200) -> bytes:
    return render_feed(events, INFO, fmt, max_entries=max_entries)


def alternate_links(entry: Any) -> list[str]:
    """The web links of a parsed entry (feedparser falls back to the id for .link)."""
    return [link.href for link in entry.get("links", []) if link.rel == "alternate"]


def item_html(fmt: FeedFormat, item: Any) -> str:
    """The HTML body of one parsed entry: Atom content, RSS description, JSON content_html."""
    if fmt == "json":
        return str(item["content_html"])
    if fmt == "atom":
        return str(item.content[0].value)
    return str(item.summary)


def parsed_items(fmt: FeedFormat, data: bytes) -> list[Any]:
    if fmt == "json":
        return list(json.loads(data)["items"])
    return list(parse_xml_feed(data).entries)


def item_title(fmt: FeedFormat, item: Any) -> str:
    return str(item["title"] if fmt == "json" else item.title)


# --- titles, ids, diffs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "title"),
    list(zip(make_events(), EXPECTED_TITLES, strict=True)),
    ids=[e.kind for e in make_events()],
)
def test_event_title_names_the_kind_and_the_entry(event: Event, title: str) -> None:
    """Each kind reads as a person expects: "Archived: Film Forward", "Page error: active"."""
    assert event_title(event) == title


def test_every_kind_has_a_title() -> None:
    """The entry and page kinds are all covered by the sample events (link kinds below)."""
    assert sorted(e.kind for e in make_events()) == sorted(
        (*ENTRY_EVENT_KINDS, *PAGE_EVENT_KINDS)
    )


@pytest.mark.parametrize(
    ("description", "title"),
    [
        ("Short text.", "Added: Short text."),
        ("x" * 120, "Added: " + "x" * 80 + "…"),
        ("", "Added: https://example.org/p"),
    ],
    ids=["short-whole", "one-long-word-cut-hard", "no-text-uses-link"],
)
def test_untitled_entry_is_named_by_its_description(description: str, title: str) -> None:
    """An entry without a title is named by the start of its description (or its link)."""
    event = Event(uid(1), "added", T0, "active", entry_id="e1", title="",
                  link="https://example.org/p", description=description)
    assert event_title(event) == title


def test_untitled_long_description_is_cut_at_a_word_boundary() -> None:
    """A long description is cut before ~80 characters, between words, with an ellipsis."""
    title = event_title(make_events()[-1]).removeprefix("Added: ")
    assert title.endswith("…") and len(title) <= 81
    assert LONG_DESCRIPTION.startswith(title.removesuffix("…") + " ")


@pytest.mark.parametrize(
    ("event_id", "iri"),
    [
        ("6F1C6F0E-1B1E-4C1B-9D7F-0A1B2C3D4E5F", "urn:uuid:6f1c6f0e-1b1e-4c1b-9d7f-0a1b2c3d4e5f"),
        ("6f1c6f0e1b1e4c1b9d7f0a1b2c3d4e5f", "urn:uuid:6f1c6f0e-1b1e-4c1b-9d7f-0a1b2c3d4e5f"),
        ("42", "tag:monitor.invalid,2025:event:42"),
        ("a b/c", "tag:monitor.invalid,2025:event:a%20b%2Fc"),
    ],
    ids=["uuid-upper", "uuid-hex", "integer", "needs-quoting"],
)
def test_event_iri(event_id: str, iri: str) -> None:
    """An event id becomes urn:uuid:… when it is a UUID and a tag: URI otherwise."""
    assert event_iri(Event(event_id, "page-gone", T0, "active")) == iri


@pytest.mark.parametrize(
    ("before", "after", "ops"),
    [
        ("same words", "same words", [("equal", "same words")]),
        ("", "", []),
        ("", "new text", [("insert", "new text")]),
        ("old text", "", [("delete", "old text")]),
        ("a b", "a b c", [("equal", "a b"), ("insert", " c")]),
        (
            "The quick brown fox",
            "The slow brown fox",
            [("equal", "The "), ("delete", "quick"), ("insert", "slow"), ("equal", " brown fox")],
        ),
        (
            "one two three four",
            "one 2 3 four",
            [("equal", "one "), ("delete", "two three"), ("insert", "2 3"), ("equal", " four")],
        ),
        (
            "Grants for museums and libraries",
            "Grants for libraries and archives",
            [
                ("equal", "Grants for "),
                ("delete", "museums"),
                ("insert", "libraries"),
                ("equal", " and "),
                ("delete", "libraries"),
                ("insert", "archives"),
            ],
        ),
    ],
    ids=["unchanged", "both-empty", "all-new", "all-gone", "append-word", "replace-word",
         "replace-run-across-space", "two-replacements"],
)
def test_diff_words(before: str, after: str, ops: list[tuple[str, str]]) -> None:
    """Word diffs keep whitespace and group a run of replaced words into one change."""
    assert diff_words(before, after) == ops


@given(st.text(alphabet="ab \n", max_size=30), st.text(alphabet="ab \n", max_size=30))
def test_diff_words_rebuilds_both_texts(before: str, after: str) -> None:
    """Equal+deleted chunks give back the old text, equal+inserted ones the new text."""
    ops = diff_words(before, after)
    assert "".join(t for op, t in ops if op != "insert") == before
    assert "".join(t for op, t in ops if op != "delete") == after
    assert all(t for _, t in ops)


# --- the HTML body -------------------------------------------------------------------


def test_event_html_shows_a_word_diff_and_link_change() -> None:
    """A changed entry shows its description and what changed, before and after."""
    body = event_html(make_events()[6])
    assert "<p>Grants for libraries and archives</p>" in body
    assert "Grants for <del>museums</del><ins>libraries</ins> and" in body
    assert "<del>libraries</del><ins>archives</ins>" in body
    assert (
        '<a href="https://www.imls.gov/issues/digital-inclusion">'
        "https://www.imls.gov/issues/digital-inclusion</a> → "
        '<a href="https://www.imls.gov/issues/national-initiatives/digital-inclusion">'
    ) in body


def test_event_html_escapes_everything_from_the_page() -> None:
    """Markup, quotes and entities from a page show as text; only http(s) links are links."""
    body = event_html(hostile_event())
    collected = tags_of(body)
    assert "script" not in collected.tags and "img" not in collected.tags
    assert "b" not in collected.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in body
    assert "&quot;quoted&quot; &#x27;single&#x27; ]]&gt;" in body
    assert "&amp;amp;" in body  # a literal "&amp;" on the page stays literal
    # The entry's link, then the new link of the link change; the old one is javascript:.
    # A quote cannot stand in a URI: it is percent-encoded in the href, shown as found.
    assert collected.hrefs == ["https://example.org/x?a=1&b=%222%22"] * 2
    assert "https://example.org/x?a=1&amp;b=&quot;2&quot;" in body
    assert "javascript:alert(1)" in body and 'href="javascript' not in body


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_an_entry_link_is_a_valid_uri_in_every_format(fmt: FeedFormat) -> None:
    """A link holding what a URI cannot (quotes, <, >, {, |, non-ASCII) is written
    percent-encoded, in the item's link and in its content; what is already encoded stays."""
    link = 'https://evil.example/<script>alert(13)</script>/"a"{b|c}/caf\u00e9?q=%41'
    want = "https://evil.example/%3Cscript%3Ealert(13)%3C/script%3E/%22a%22%7Bb%7Cc%7D/caf%C3%A9?q=%41"
    event = Event(uid(1), "added", T0, "active", entry_id="e1", title="T", link=link,
                  description="d")  # fmt: skip
    data = render_feed([event], BASE_INFO, fmt, max_entries=9)
    (item,) = parsed_items(fmt, data)
    item_link = item["url"] if fmt == "json" else item.link
    assert item_link == want
    assert want in tags_of(item_html(fmt, item)).hrefs


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_an_entry_link_with_a_space_keeps_its_href_encoded(fmt: FeedFormat) -> None:
    """A page's href may hold a space (a browser follows it as %20): the item still links
    to it, percent-encoded; a link with a control character stays no link at all."""
    spaced = Event(uid(1), "added", T0, "active", entry_id="e1", title="T",
                   link="https://example.org/annual report 2017.pdf", description="d")  # fmt: skip
    data = render_feed([spaced], BASE_INFO, fmt, max_entries=9)
    (item,) = parsed_items(fmt, data)
    want = "https://example.org/annual%20report%202017.pdf"
    assert (item["url"] if fmt == "json" else item.link) == want
    assert want in tags_of(item_html(fmt, item)).hrefs
    broken = replace(spaced, link="https://example.org/a\tb")
    (item,) = parsed_items(fmt, render_feed([broken], BASE_INFO, fmt, max_entries=9))
    assert not [h for h in tags_of(item_html(fmt, item)).hrefs if "example.org/a" in h]
    assert "example.org/a" not in str(item.get("url") if fmt == "json" else item.get("link"))


def test_page_event_html_carries_the_escaped_detail() -> None:
    """A page event's body says what happened, escaped."""
    event = Event(uid(1), "page-error", T0, "active", detail="HTTP 500 <b>oops</b> & more")
    body = event_html(event)
    assert "HTTP 500 &lt;b&gt;oops&lt;/b&gt; &amp; more" in body
    assert "b" not in tags_of(body).tags


# --- Atom and RSS ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_xml_feed_lists_every_event_newest_first(fmt: FeedFormat) -> None:
    """Atom and RSS carry one entry per event: id, title, kind, link, body, newest first."""
    events = make_events()
    parsed = parse_xml_feed(render(events, fmt))
    entries = parsed.entries
    assert [e.id for e in entries] == [f"urn:uuid:{e.id}" for e in events]
    assert [e.title for e in entries] == EXPECTED_TITLES
    assert [[t.term for t in e.tags] for e in entries] == [[e.kind] for e in events]
    assert [alternate_links(e) for e in entries] == [[e.link] if e.link else [] for e in events]
    published = [e.published_parsed for e in entries]
    assert published == sorted(published, reverse=True)
    assert parsed.feed.title == INFO.title
    archived = item_html(fmt, entries[7])
    assert "<p>A film program.</p>" in archived
    changed = item_html(fmt, entries[6])
    assert "<del>museums</del><ins>libraries</ins>" in changed
    assert "HTTP 503 after 3 retries" in item_html(fmt, entries[3])


def test_atom_feed_metadata() -> None:
    """The Atom feed has the configured id, the newest event's time and its own links."""
    data = render(make_events(), "atom")
    parsed = parse_xml_feed(data)
    assert parsed.version == "atom10"
    assert parsed.feed.id == INFO.feed_id
    assert parsed.feed.updated == "2025-03-01T20:00:00+00:00"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {"self": INFO.self_url, "alternate": INFO.home_url}
    assert parsed.entries[0].updated == "2025-03-01T20:00:00+00:00"


@pytest.mark.parametrize(
    ("info", "channel_link"),
    [
        (INFO, INFO.home_url),
        (FeedInfo("t", "urn:uuid:1", self_url="http://h/feed.rss"), "http://h/feed.rss"),
        (FeedInfo("t", "urn:uuid:1", site_url="https://www.imls.gov/x"), "https://www.imls.gov/x"),
        (FeedInfo("t", "urn:uuid:1"), "urn:uuid:1"),
    ],
    ids=["web-page", "feed-url-only", "watched-site", "nothing-known-uses-feed-id"],
)
def test_rss_channel_link(info: FeedInfo, channel_link: str) -> None:
    """RSS's required channel link is the web page, else the feed URL, else the watched
    site (a URL, as RSS 2.0 asks), else the feed id."""
    data = render_feed(make_events(), info, "rss", max_entries=5)
    parsed = parse_xml_feed(data)
    assert parsed.version == "rss20"
    assert parsed.feed.link == channel_link
    assert parsed.entries[0].guidislink is False


# --- JSON Feed ---------------------------------------------------------------------------


def test_json_feed_items_carry_the_event() -> None:
    """JSON Feed 1.1: one item per event, newest first, the event itself under _monitor."""
    events = make_events()
    feed = json.loads(render(events, "json"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == INFO.title
    assert feed["home_page_url"] == INFO.home_url
    assert feed["feed_url"] == INFO.self_url
    items = feed["items"]
    assert [i["id"] for i in items] == [f"urn:uuid:{e.id}" for e in events]
    assert [i["title"] for i in items] == EXPECTED_TITLES
    assert [i["tags"] for i in items] == [[e.kind] for e in events]
    assert [i.get("url") for i in items[4:]] == [
        events[4].link, None, events[6].link, events[7].link, events[8].link
    ]
    assert items[0]["date_published"] == "2025-03-01T20:00:00Z"
    assert [i["_monitor"] for i in items] == [e.to_json() for e in events]
    page, changed = items[3]["_monitor"], items[6]["_monitor"]
    assert list(page) == ["id", "kind", "at", "page", "detail", "capture_id", "source"]
    assert page["detail"] == "HTTP 503 after 3 retries"
    assert list(changed) == [
        "id", "kind", "at", "page", "entry_id", "title", "link", "description", "changes",
        "capture_id", "source",
    ]
    assert changed["changes"]["description"] == {
        "before": "Grants for museums and libraries",
        "after": "Grants for libraries and archives",
    }
    assert "<del>museums</del><ins>libraries</ins>" in items[6]["content_html"]


def test_json_feed_is_utf8_not_ascii_escaped() -> None:
    """The JSON Feed is UTF-8 text: non-ASCII titles are written as themselves."""
    event = Event(uid(1), "added", T0, "active", entry_id="e", title="Bibliothèque — café",
                  description="")
    data = render([event], "json")
    assert "Added: Bibliothèque — café".encode() in data


# --- hostile text, in all three formats ---------------------------------------------------


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
@pytest.mark.parametrize(
    "title",
    [
        "<script>alert(1)</script> & co",
        HOSTILE,
        "Tom &amp; Jerry &lt;3",
        "]]><![CDATA[<script>x</script>]]>",
    ],
    ids=["script-and-amp", "everything", "literal-entities", "cdata-break"],
)
def test_hostile_title_reads_back_as_text(fmt: FeedFormat, title: str) -> None:
    """A title full of markup reads back, after a feed reader parses it, as the same text."""
    event = hostile_event(title=title)
    (item,) = parsed_items(fmt, render([event], fmt))
    assert item_title(fmt, item) == f"Changed: {title}"


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_hostile_content_has_no_markup_from_the_page(fmt: FeedFormat) -> None:
    """No <script>, <img> or <b> from the page becomes an element in any entry's body."""
    (item,) = parsed_items(fmt, render([hostile_event()], fmt))
    body = item_html(fmt, item)
    collected = tags_of(body)
    assert not {"script", "img", "b"} & set(collected.tags)
    assert {"del", "ins", "a"} <= set(collected.tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert all(href.startswith("https://") for href in collected.hrefs)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_control_characters_do_not_break_xml(fmt: FeedFormat) -> None:
    """Control characters XML cannot carry are shown as U+FFFD; the feed still parses."""
    event = hostile_event(title="Bell\x07 and\x1b escape", description="Tab\there\x0bvt")
    (entry,) = parse_xml_feed(render([event], fmt)).entries
    assert entry.title == "Changed: Bell\ufffd and\ufffd escape"
    assert "Tab\there\ufffdvt" in item_html(fmt, entry)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_exactly_the_characters_xml_forbids_are_replaced(fmt: FeedFormat) -> None:
    """At each edge of XML 1.0's Char ranges, a character outside them becomes U+FFFD and
    one inside is kept as it is."""
    allowed = [0x9, 0xA, 0xD, 0x20, 0x7E, 0xD7FF, 0xE000, 0xFFFD, 0x10000, 0x10FFFF]
    forbidden = [0x0, 0x8, 0xB, 0xC, 0xE, 0x1F, 0xD800, 0xDFFF, 0xFFFE, 0xFFFF]
    title = "".join(f"[{chr(c)}]" for c in allowed + forbidden)
    (entry,) = parse_xml_feed(render([hostile_event(title=title)], fmt)).entries
    kept = "".join(f"[{chr(c)}]" for c in allowed)
    assert entry.title == "Changed: " + kept + "[\ufffd]" * len(forbidden)


def test_control_characters_survive_in_json() -> None:
    """JSON can carry control characters, so _monitor keeps the event's text exactly."""
    event = hostile_event(title="Bell\x07")
    (item,) = json.loads(render([event], "json"))["items"]
    assert item["_monitor"]["title"] == "Bell\x07"


# --- order, limits, stability ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_max_entries_keeps_the_newest(fmt: FeedFormat) -> None:
    """At most max_entries entries are written: the newest ones."""
    events = make_events()
    items = parsed_items(fmt, render(events, fmt, max_entries=3))
    ids = [i["id"] if fmt == "json" else i.id for i in items]
    assert ids == [event_iri(e) for e in events[:3]]


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_events_are_sorted_newest_first_ties_keep_their_order(fmt: FeedFormat) -> None:
    """Events given out of order come out newest first; events of one instant keep their order."""
    a = Event(uid(1), "page-error", T0, "active", detail="a")
    b = Event(uid(2), "page-gone", T0 + timedelta(hours=1), "archived", detail="b")
    c = Event(uid(3), "page-anomaly", T0 + timedelta(hours=1), "active", detail="c")
    items = parsed_items(fmt, render([a, b, c], fmt))
    ids = [i["id"] if fmt == "json" else i.id for i in items]
    assert ids == [event_iri(b), event_iri(c), event_iri(a)]


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_rendering_is_byte_identical(fmt: FeedFormat) -> None:
    """The same events render to the same bytes, in any order of the same times."""
    events = make_events()
    assert render(events, fmt) == render(events, fmt)
    assert render(sorted(events, key=lambda e: e.at), fmt) == render(events, fmt)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_empty_event_list_renders_a_valid_feed(fmt: FeedFormat) -> None:
    """With no events yet the feed is still valid, dated at a fixed time (the Unix epoch),
    not at the time of rendering: an empty feed rewritten later is the same file."""
    parsed = parse_xml_feed(render([], fmt))
    assert parsed.entries == []
    assert parsed.feed.title == INFO.title
    assert parsed.feed.updated_parsed[:6] == (1970, 1, 1, 0, 0, 0)


def test_empty_event_list_renders_a_valid_json_feed() -> None:
    """With no events yet the JSON Feed has an empty item list."""
    feed = json.loads(render([], "json"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1" and feed["items"] == []



# --- publishing ------------------------------------------------------------------------------


def test_write_atomically_replaces_the_file_whole(tmp_path: Path) -> None:
    """The file holds exactly the new bytes, and no temp file stays beside it."""
    path = tmp_path / "changes.atom"
    path.write_bytes(b"old content that is longer than the new one")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["changes.atom"]


def test_write_atomically_into_a_file_names_the_path(tmp_path: Path) -> None:
    """A path whose parent is a file fails with a StoreError naming the path."""
    parent = tmp_path / "not-a-dir"
    parent.write_bytes(b"x")
    path = parent / "changes.atom"
    with pytest.raises(StoreError, match=str(path)):
        write_atomically(path, b"data")
    assert os.listdir(tmp_path) == ["not-a-dir"]


def test_write_atomically_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    """When the final rename fails (the target is a directory) the temp file is removed."""
    target = tmp_path / "feed.atom"
    target.mkdir()
    with pytest.raises(StoreError, match=str(target)):
        write_atomically(target, b"data")
    assert os.listdir(tmp_path) == ["feed.atom"]
    assert target.is_dir() and os.listdir(target) == []


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("changes.atom", "atom"),
        ("changes.xml", "atom"),
        ("changes.json", "json"),
        ("changes.rss", "rss"),
        ("CHANGES.RSS", "rss"),
        ("changes", "atom"),
    ],
    ids=["atom", "xml", "json", "rss", "upper-case", "no-suffix"],
)
def test_publish_feed_picks_the_format_from_the_suffix(
    tmp_path: Path, name: str, fmt: FeedFormat
) -> None:
    """publish_feed writes the format the file name asks for, the same bytes as render_feed."""
    path = tmp_path / name
    events = make_events()
    assert format_for_path(path) == fmt
    publish_feed(path, events, INFO, max_entries=4)
    assert path.read_bytes() == render(events, fmt, max_entries=4)
    if fmt == "json":
        assert len(json.loads(path.read_bytes())["items"]) == 4
    else:
        assert len(parse_xml_feed(path.read_bytes()).entries) == 4


# --- base_url: self links and evidence links ----------------------------------------------

BASE = "https://example.org/imls/"
BASE_INFO = FeedInfo(title="IMLS change log", feed_id="urn:uuid:1", base_url=BASE)


def link_events() -> list[Event]:
    """The three link kinds, newest first."""
    return [
        Event(uid(12), "link-changed", T0 + timedelta(hours=3), "active", entry_id="e3",
              title="Digital Inclusion", link="https://www.imls.gov/di",
              detail="the page's text changed",
              changes={"content": Change("Apply by May.", "Apply by <b>June</b>.")},
              capture_id=12),
        Event(uid(11), "link-recovered", T0 + timedelta(hours=2), "active", entry_id="e2",
              title="Film Forward", link="https://www.imls.gov/ff", detail="HTTP 200",
              capture_id=11),
        Event(uid(10), "link-gone", T0 + timedelta(hours=1), "active", entry_id="e2",
              title="Film Forward", link="https://www.imls.gov/ff",
              detail='soft 404: "Page not found"', capture_id=10),
    ]


def test_atom_with_base_url_links_to_itself_and_the_site() -> None:
    """With base_url, Atom's rel=self is {base_url}feed.atom and its alternate base_url."""
    parsed = parse_xml_feed(render_feed(make_events(), BASE_INFO, "atom", max_entries=9))
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {"self": BASE + "feed.atom", "alternate": BASE}


def test_rss_with_base_url_links_to_the_site_and_itself() -> None:
    """With base_url, RSS's channel link is base_url and atom:link rel=self {base_url}feed.rss."""
    data = render_feed(make_events(), BASE_INFO, "rss", max_entries=9)
    parsed = parse_xml_feed(data)
    assert parsed.feed.link == BASE
    assert b'<atom:link href="https://example.org/imls/feed.rss" rel="self"' in data


def test_json_feed_with_base_url_has_its_feed_url() -> None:
    """With base_url, JSON Feed's feed_url is {base_url}feed.json, home_page_url base_url."""
    feed = json.loads(render_feed(make_events(), BASE_INFO, "json", max_entries=9))
    assert (feed["feed_url"], feed["home_page_url"]) == (BASE + "feed.json", BASE)


def test_without_base_url_there_is_no_absolute_self_link() -> None:
    """Without base_url (and no URL given) no format claims an address or links evidence."""
    info = FeedInfo(title="t", feed_id="urn:uuid:1")
    parsed = parse_xml_feed(render_feed(make_events(), info, "atom", max_entries=9))
    assert not [link for link in parsed.feed.get("links", []) if link.rel == "self"]
    assert all(link.rel == "alternate" for e in parsed.entries for link in e.get("links", []))
    feed = json.loads(render_feed(make_events(), info, "json", max_entries=9))
    assert "feed_url" not in feed and "home_page_url" not in feed
    assert not any("/captures/" in item["content_html"] for item in feed["items"])


def test_atom_items_link_to_the_timeline_and_the_capture() -> None:
    """Each Atom entry has rel=related links to its entry's timeline and its capture."""
    parsed = parse_xml_feed(render_feed(make_events(), BASE_INFO, "atom", max_entries=9))
    related = [
        [link.href for link in e.get("links", []) if link.rel == "related"]
        for e in parsed.entries
    ]
    archived, page_error = related[7], related[3]
    assert archived == [BASE + "entries/e2", BASE + "captures/2/view"]
    assert page_error == []  # a page event without a capture has no evidence to link


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_every_format_links_the_evidence_in_the_content(fmt: FeedFormat) -> None:
    """In all three formats the item's body links the entry's timeline and the capture."""
    data = render_feed(make_events(), BASE_INFO, fmt, max_entries=9)
    hrefs = tags_of(item_html(fmt, parsed_items(fmt, data)[7])).hrefs
    assert BASE + "entries/e2" in hrefs and BASE + "captures/2/view" in hrefs


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_a_hostile_entry_id_stays_inside_its_link(fmt: FeedFormat) -> None:
    """An entry id with quotes and markup is quoted in the URL: no element, no attribute."""
    event = hostile_event(entry_id='e"><script>x()</script>')
    data = render_feed([event], BASE_INFO, fmt, max_entries=9)
    (item,) = parsed_items(fmt, data)
    collected = tags_of(item_html(fmt, item))
    assert "script" not in collected.tags
    assert BASE + "entries/e%22%3E%3Cscript%3Ex%28%29%3C%2Fscript%3E" in collected.hrefs


# --- kinds the feed does not know, link events, imported events -----------------------------


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_an_unknown_kind_renders_instead_of_raising(fmt: FeedFormat) -> None:
    """An event of a kind this version does not know (a newer database) still renders."""
    unknown: Any = "entry-split"
    event = Event(uid(1), unknown, T0, "active", entry_id="e1", title="Split", description="")
    (item,) = parsed_items(fmt, render([event], fmt))
    assert item_title(fmt, item) == "Entry split: Split"


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_link_events_render_with_their_detail(fmt: FeedFormat) -> None:
    """link-gone, link-recovered and link-changed carry their detail; the diff is escaped."""
    items = parsed_items(fmt, render(link_events(), fmt))
    assert [item_title(fmt, i) for i in items] == [
        "Link changed: Digital Inclusion", "Link recovered: Film Forward",
        "Link gone: Film Forward",
    ]
    gone = item_html(fmt, items[2])
    assert "soft 404: &quot;Page not found&quot;" in gone
    changed = item_html(fmt, items[0])
    assert "<del>May.</del><ins>&lt;b&gt;June&lt;/b&gt;.</ins>" in changed
    assert "b" not in tags_of(changed).tags


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_imported_events_are_marked(fmt: FeedFormat) -> None:
    """An event imported from a web archive says so in its body; a live one does not."""
    live, imported = make_events()[7], replace(make_events()[7], id=uid(77), source="backfill")
    items = parsed_items(fmt, render([imported, live], fmt))
    assert "Imported from a web archive." in item_html(fmt, items[0])
    assert "Imported" not in item_html(fmt, items[1])


def test_a_huge_description_is_cut_and_its_diff_summarised() -> None:
    """A 400 KB description edited all over gives a bounded body that says what it left out."""
    words = [f"w{i % 4000}" for i in range(60_000)]
    before = " ".join(words)
    after = " ".join("edited" if i % 37 == 36 else w for i, w in enumerate(words))
    event = hostile_event(description=after, changes={"description": Change(before, after)})
    body = event_html(event)
    assert "more words changed" in body
    assert len(body) < 150_000 < len(after)
