"""Hostile and broken HTML through `monitor check`, and extract + classify as one function.

The first half serves each page from a local FaultServer and runs the real CLI: what a
watched page sends can be wrong in every way, and the record must stay right. The
second half runs extraction and classification together on generated pages
(hypothesis), as a check cycle does, without the network and the database.
"""

from __future__ import annotations

import html
import itertools
import random
import sqlite3
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import json_lines, run, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import FaultServer, Respond, SeenRequest, brotli_bomb

from monitor.classify import classify_cycle
from monitor.config import Selectors
from monitor.extract import extract_entries
from monitor.models import EVENT_KINDS, KnownEntry, PageObservation, PageState

BASE = "https://www.imls.gov/issues/national-initiatives"
SELECT = Selectors(
    item=".view-content .views-row",
    title=".views-field-title",
    link="a[href]",
    description=".views-field-body",
)


@dataclass(frozen=True)
class Row:
    """One entry as a page spells it: title and description as HTML, and its link."""

    title: str
    href: str
    description: str

    def html(self) -> str:
        return (
            f'<div class="views-row"><div class="views-field-title"><a href="{self.href}">'
            f'{self.title}</a></div><div class="views-field-body"><p>{self.description}</p>'
            "</div></div>"
        )


def row(n: int, title: str | None = None) -> Row:
    """Row n, plainly spelt: a unique title, link and description."""
    title = title if title is not None else f"Initiative number {n}"
    return Row(
        html.escape(title), f"/items/initiative-{n}", f"What initiative {n} does, in a sentence."
    )


def page(rows: list[Row] | list[str], *, before: str = "", after: str = "") -> bytes:
    """A listing page in the IMLS layout around the rows (Row objects or raw HTML)."""
    items = "\n".join(r.html() if isinstance(r, Row) else r for r in rows)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Initiatives</title></head>'
        f'<body>{before}<div class="view-content">\n{items}\n</div>{after}</body></html>'
    ).encode()


ROWS = [row(n) for n in range(8)]


@dataclass
class Watched:
    """One watched page served by a FaultServer, and the config that watches it."""

    server: FaultServer
    config: Path

    def serve(self, body: bytes | object) -> None:
        spec = Respond(200, body) if isinstance(body, bytes) else body
        self.server.set("/list", spec)  # type: ignore[arg-type]

    def check(self, *args: str) -> tuple[int, list[dict]]:
        """Run `monitor check --json`: its exit code and its events; never a traceback."""
        result = run(self.config, "check", "--json", *args)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        return result.exit_code, json_lines(result)

    def entries(self, state: str = "active") -> list[dict]:
        """`monitor entries --json` less last_seen (which every good check moves on)."""
        rows = json_lines(run(self.config, "entries", "--state", state, "--json"))
        return [{k: v for k, v in r.items() if k != "last_seen"} for r in rows]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watched]:
    """A page at /list watched with a 20 MB max_bytes, confirm_checks 2, not yet checked."""
    with FaultServer() as server:
        config = write_config(
            tmp_path,
            [{"name": "list", "url": server.url("/list"), "role": "active"}],
            monitor={"max_bytes": 20_000_000, "timeout": 60, "confirm_checks": 2},
        )
        yield Watched(server, config)


def baseline(watched: Watched, rows: list[Row] = ROWS) -> None:
    watched.serve(page(rows))
    assert watched.check() == (0, [])


def kinds(events: list[dict]) -> Counter:
    return Counter(e["kind"] for e in events)


# -- hostile pages: no crash, nothing lost ------------------------------------------------

NESTED = 100_000
LAUGHS = (
    '<!DOCTYPE html [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)
HOSTILE = {
    # body, and the page event it must give (None: read as before, no event at all)
    "100k-nested-divs-around-the-rows": (
        page(ROWS, before="<div>" * NESTED, after="</div>" * NESTED), None
    ),
    "100k-unclosed-divs-after-the-rows": (page(ROWS, after="<div>" * NESTED), None),
    "100k-nested-spans-in-a-title": (
        page([Row("<span>" * NESTED + ROWS[0].title, ROWS[0].href, ROWS[0].description),
              *ROWS[1:]]),
        None,
    ),
    "rows-never-closed": (page([r.html().removesuffix("</div>") for r in ROWS]), None),
    "billion-laughs-doctype": (
        page(ROWS, before="<p>&lol3;</p>").replace(b"<!DOCTYPE html>", LAUGHS.encode()), None
    ),
    "fake-rows-inside-a-script": (
        page(ROWS, after=f"<script>document.write('{row(99).html()}')</script>"), None
    ),
    "fake-rows-inside-a-comment": (page(ROWS, after=f"<!-- {row(99).html()} -->"), None),
    "megabyte-attribute": (page(ROWS, before=f'<div data-x="{"x" * 2_000_000}"></div>'), None),
    "megabyte-text-node-outside-the-rows": (page(ROWS, after="word " * 400_000), None),
    "invalid-utf8-outside-the-rows": (
        page(ROWS).replace(b"<body>", b"<body><p>\xff\xfe\xc3\x28\xe2\x82</p>"), None
    ),
    "nul-bytes-inside-words": (page(ROWS).replace(b"Initiative", b"Ini\x00tia\x00tive"), None),
    "unclosed-comment-hides-every-row": (
        page(ROWS).replace(b"<body>", b"<body><!--"), "page-anomaly"
    ),
    "binary-garbage": (random.Random(7).randbytes(50_000), "page-error"),
    "nul-every-other-byte": (page(ROWS).decode().encode("utf-16-le"), "page-error"),
}


@pytest.mark.parametrize(("body", "event"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_page_never_crashes_nor_loses_entries(watched, body, event):
    """A hostile page gives no traceback, at most its page event, and never removes an entry."""
    baseline(watched)
    before = watched.entries()
    watched.serve(body)
    code, events = watched.check()
    assert [e["kind"] for e in events] == ([event] if event else [])
    assert code == (1 if event == "page-error" else 0)
    assert watched.entries() == before  # nothing removed, nothing changed
    watched.serve(page(ROWS))
    code, events = watched.check()
    assert (code, [e["kind"] for e in events]) == (0, ["page-recovered"] if event else [])


def test_markup_in_a_title_is_stored_and_shown_as_text(watched):
    """An entity-encoded <script> in a title is text: stored, logged and fed as such."""
    baseline(watched)
    title = '<script>alert("owned")</script> <b>Grants</b> & more'
    description = "<img src=x onerror=alert(1)> A description with markup as text."
    hostile = Row(html.escape(title), "/items/grants", html.escape(description))
    watched.serve(page([*ROWS, hostile]))
    code, events = watched.check()
    assert code == 0
    (added,) = events
    assert (added["kind"], added["title"], added["description"]) == ("added", title, description)

    (stored,) = [e for e in watched.entries() if e["link"].endswith("/items/grants")]
    assert (stored["title"], stored["description"]) == (title, description)
    shown = run(watched.config, "log")
    assert title in shown.stdout  # plain text in the terminal, as it was on the page
    history = json_lines(run(watched.config, "history", stored["entry_id"], "--json"))
    assert history[0]["entry"]["title"] == title

    atom = run(watched.config, "feed").stdout_bytes
    assert b"<script" not in atom and b"<img" not in atom
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = ET.fromstring(atom).find("a:entry", ns)
    assert entry is not None
    assert entry.findtext("a:title", namespaces=ns) == f"Added: {title}"
    content = entry.findtext("a:content", namespaces=ns) or ""
    assert "<img" not in content and "&lt;img src=x" in content  # escaped inside the HTML


def respell(text: str, rng: random.Random) -> str:
    """The same text spelt otherwise: entities, runs of odd white space, no-break spaces."""
    out = []
    for char in text:
        if char == " ":
            out.append(rng.choice(["  ", "\n\t", "&nbsp;", "&#160;", "\u2003", " \r\n "]))
        elif char.isalnum() and rng.random() < 0.3:
            out.append(rng.choice([f"&#{ord(char)};", f"&#x{ord(char):x};"]))
        else:
            out.append(html.escape(char))
    return rng.choice(["", " ", "\n  "]) + "".join(out) + rng.choice(["", "\t", "&nbsp;\n"])


def test_entries_spelt_otherwise_are_no_event(watched):
    """Entries differing only in white space and entities between checks give no event."""
    baseline(watched)
    rng = random.Random(11)
    for _ in range(3):
        respelt = [
            Row(
                respell(html.unescape(r.title), rng),
                " " + r.href.replace("-", "&#45;") + "\n",
                respell(html.unescape(r.description), rng),
            )
            for r in ROWS
        ]
        watched.serve(page(respelt))
        assert watched.check() == (0, [])
    assert [e["title"] for e in watched.entries()] == [html.unescape(r.title) for r in ROWS]


def test_a_page_reordered_on_every_request_is_no_event(watched):
    """A page that shuffles its entries on every request gives no event, check after check."""
    rng = random.Random(3)
    rows = [row(n) for n in range(30)]

    def shuffled(request: SeenRequest) -> Respond:
        order = rows[:]
        rng.shuffle(order)
        return Respond(200, page(order))

    watched.serve(shuffled)
    for _ in range(5):
        assert watched.check() == (0, [])
    assert len(watched.entries()) == 30


def test_every_link_changes_but_no_title_is_changed_not_added_and_removed(watched):
    """When every entry's link changes but not its title, each is one `changed` event."""
    baseline(watched)
    moved = [Row(r.title, f"/programs/{n * 7 + 1000}", r.description) for n, r in enumerate(ROWS)]
    watched.serve(page(moved))
    code, events = watched.check()
    assert code == 0
    assert kinds(events) == Counter({"changed": len(ROWS)})
    assert all(set(e["changes"]) == {"link"} for e in events)
    assert all(e["changes"]["link"]["after"].endswith(f"/programs/{n * 7 + 1000}")
               for n, e in enumerate(sorted(events, key=lambda e: e["title"])))
    assert len(watched.entries()) == len(ROWS) and not watched.entries("removed")


def test_megabyte_description_is_kept_whole_and_its_edit_is_one_event(watched):
    """A megabyte-long description is stored whole; an edit at its very end is one `changed`."""
    words = " ".join(f"w{i}" for i in range(200_000))  # about 1.3 MB
    long_row = Row("A very long one", "/items/long", words)
    baseline(watched, [*ROWS, long_row])
    (stored,) = [e for e in watched.entries() if e["title"] == "A very long one"]
    assert stored["description"] == words
    watched.serve(page([*ROWS, Row(long_row.title, long_row.href, words + " end")]))
    code, events = watched.check()
    assert (code, kinds(events)) == (0, Counter({"changed": 1}))
    assert events[0]["changes"]["description"]["after"] == words + " end"


def test_nul_bytes_never_reach_the_record(watched):
    """NUL bytes inside a page's words are dropped: the words read whole, with no event."""
    baseline(watched)
    watched.serve(page(ROWS).replace(b"number", b"num\x00ber\x00"))
    assert watched.check() == (0, [])
    assert all("\x00" not in e["title"] + e["description"] for e in watched.entries())
    assert all("number" in e["title"] for e in watched.entries())


def test_an_archived_compression_bomb_is_not_inflated_by_show(watched):
    """A bomb is refused and archived as sent: `show` will not inflate it; `show --raw` will."""
    baseline(watched)
    bomb = brotli_bomb(300_000_000)
    watched.serve(Respond(200, bomb, (("Content-Encoding", "br"),)))
    code, events = watched.check()
    assert (code, [e["kind"] for e in events]) == (1, ["page-error"])
    assert "max_bytes" in events[0]["detail"]
    capture = json_lines(run(watched.config, "snapshots", "--json"))[0]
    shown = run(watched.config, "show", str(capture["id"]))
    assert shown.exit_code == 1 and shown.stdout_bytes == b""
    assert f"show --raw {capture['id']}" in shown.stderr
    raw = run(watched.config, "show", "--raw", str(capture["id"]))
    assert raw.exit_code == 0 and raw.stdout_bytes == bomb


@pytest.mark.slow
def test_hundred_thousand_entries(watched):
    """A page of 100 000 entries is recorded whole; one more and one fewer is two events."""
    rows = [f'<div class="views-row"><a href="/e/{n}">Entry {n}</a></div>' for n in range(100_000)]
    select = {"item": ".views-row", "title": "a", "link": "a"}
    url = watched.server.url("/list")
    config = write_config(
        watched.config.parent,
        [{"name": "list", "url": url, "role": "active", "select": select}],
        monitor={"max_bytes": 20_000_000, "timeout": 60},
    )
    watched.config = config
    watched.serve(page(rows))
    assert watched.check() == (0, [])
    conn = sqlite3.connect(config.parent / "data" / "monitor.db")
    try:
        count = conn.execute("SELECT count(*) FROM entries WHERE state = 'active'").fetchone()
        assert count == (100_000,)
    finally:
        conn.close()
    extra = '<div class="views-row"><a href="/e/new">Entry new</a></div>'
    watched.serve(page([*rows[:50_000], extra, *rows[50_001:]]))
    code, events = watched.check()
    assert code == 0
    assert sorted((e["kind"], e["title"]) for e in events) == [
        ("added", "Entry new"),
        ("removed", "Entry 50000"),
    ]


# -- extract + classify together, on generated pages (hypothesis) -----------------------------

NOW = datetime(2026, 11, 25, tzinfo=UTC)


class Pipeline:
    """Bodies -> extract_entries -> classify_cycle, keeping state between cycles as store does."""

    def __init__(self) -> None:
        self.known: dict[str, KnownEntry] = {}
        self.pages = [PageState("active", "active"), PageState("archived", "archived")]
        self.ids = (f"{i:032x}" for i in itertools.count(1))

    def check(self, active: bytes, archived: bytes) -> list[tuple[str, str | None]]:
        """One cycle of both pages; its events as (kind, title)."""
        observations = {}
        for name, body in (("active", active), ("archived", archived)):
            url = f"{BASE}/archives" if name == "archived" else BASE
            entries = extract_entries(body, base_url=url, select=SELECT, content_type=None)
            observations[name] = PageObservation(name, "ok", entries=tuple(entries))
        result = classify_cycle(
            self.known,
            self.pages,
            observations,
            now=NOW,
            confirm_checks=2,
            anomaly_ratio=0.0,  # the round trips may empty a page: that is not an anomaly here
            new_id=lambda: next(self.ids),
        )
        for update in result.entries:
            self.known[update.entry_id] = KnownEntry(
                update.entry_id, update.title, update.link, update.description,
                update.state, update.page,
            )
        self.pages = list(result.pages)
        assert all(e.kind in EVENT_KINDS for e in result.events)
        return [(e.kind, e.title) for e in result.events]


SLUGS = st.lists(st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=1, max_size=10,
                 unique=True)
PROPERTIES = settings(max_examples=200, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def slug_row(slug: str, *, archived: bool = False, edit: int = 0) -> Row:
    """The entry named by slug; on the archived page its link moves under /archives/."""
    title = f"Program {slug}" + (f" (rev {edit})" if edit else "")
    href = f"/issues/national-initiatives/{'archives/' if archived else ''}{slug}"
    # Descriptions under match.SIMILARITY_MIN_CHARS: no two entries are told apart by
    # text similarity here, only by link and title (similar texts would rightly match).
    return Row(html.escape(title), href, f"About {slug}.")


def pages_for(states: dict[str, str], edits: dict[str, int] | None = None) -> tuple[bytes, bytes]:
    """The two pages for slug -> "active" | "archived" (others on neither page)."""
    edits = edits or {}
    active = [slug_row("anchor-a")] + [
        slug_row(s, edit=edits.get(s, 0)) for s, where in states.items() if where == "active"
    ]
    archived = [slug_row("anchor-b", archived=True)] + [
        slug_row(s, archived=True, edit=edits.get(s, 0))
        for s, where in states.items()
        if where == "archived"
    ]
    return page(active), page(archived)


@PROPERTIES
@given(
    st.lists(
        st.binary(max_size=400)
        | st.lists(
            st.sampled_from(["<div class='views-row'>", "</div>", "<a href='/x'>", "</a>",
                             "<div class='views-field-title'>", "<!--", "<p>", "\x00", "&nbsp;",
                             "<div class='view-content'>", "<script>", "&#0;", "\xff"])
            | st.text(max_size=6),
            max_size=30,
        ).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
        min_size=2,
        max_size=6,
    )
)
def test_property_no_input_breaks_extract_and_classify(bodies):
    """Any bytes at all, cycle after cycle on both pages, never raise; the first cycle is silent."""
    pipeline = Pipeline()
    pipeline.check(*pages_for({"seed": "active"}))
    for active, archived in itertools.pairwise(bodies):
        pipeline.check(active, archived)


@PROPERTIES
@given(SLUGS, st.data())
def test_property_reordering_and_respelling_never_make_events(slugs, data):
    """Shuffled rows, other white space and entities, on both pages, over cycles: no event."""
    split = data.draw(st.integers(0, len(slugs)))
    states = {s: "active" if i < split else "archived" for i, s in enumerate(slugs)}
    pipeline = Pipeline()
    assert pipeline.check(*pages_for(states)) == []
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(2):
        bodies = []
        for where in ("active", "archived"):
            rows = [slug_row("anchor-a" if where == "active" else "anchor-b",
                             archived=where == "archived")]
            rows += [slug_row(s, archived=where == "archived") for s in states
                     if states[s] == where]
            rng.shuffle(rows)
            respelt = [Row(respell(html.unescape(r.title), rng), r.href,
                           respell(r.description, rng)) for r in rows]
            bodies.append(page(respelt))
        assert pipeline.check(*bodies) == []


TRANSITIONS = {
    (None, "active"): "added",
    (None, "archived"): "added",
    ("active", "archived"): "archived",
    ("removed", "archived"): "archived",
    ("archived", "active"): "restored",
    ("removed", "active"): "restored",
    ("active", "removed"): "removed",
    ("archived", "removed"): "removed",
}


@PROPERTIES
@given(
    SLUGS,
    st.lists(
        st.tuples(
            st.dictionaries(st.integers(0, 9), st.sampled_from(["active", "archived", "removed"])),
            st.sets(st.integers(0, 9)),
        ),
        min_size=1,
        max_size=5,
    ),
    st.data(),
)
def test_property_round_trips_give_exactly_the_expected_events(slugs, steps, data):
    """Adds, edits, moves to and from the archive, removals and returns: one event each."""
    start = data.draw(st.dictionaries(st.sampled_from(slugs), st.sampled_from(["active",
                                                                               "archived"])))
    pipeline = Pipeline()
    assert pipeline.check(*pages_for(start)) == []
    # What a reader expects, modelled apart from the code: each entry's state, title revision.
    state: dict[str, str] = dict(start)
    edits: dict[str, int] = {}
    for moves, edited in steps:
        after = dict(state)
        for index, where in moves.items():
            slug = slugs[index % len(slugs)]
            if where != "removed" or slug in after:
                after[slug] = where
            if after.get(slug) == "removed" and slug not in state:
                del after[slug]  # added and removed again before any check: never seen
        new_edits = dict(edits)
        for index in edited:
            slug = slugs[index % len(slugs)]
            if after.get(slug, "removed") != "removed" and slug in state:
                new_edits[slug] = new_edits.get(slug, 0) + 1
        expected = []
        for slug in slugs:
            before_state, after_state = state.get(slug), after.get(slug)
            title = f"Program {slug}" + (f" (rev {new_edits[slug]})" if new_edits.get(slug) else "")
            if before_state == after_state:
                if after_state not in (None, "removed") and new_edits.get(slug) != edits.get(slug):
                    expected.append(("changed", title))
                continue
            kind = TRANSITIONS[before_state, after_state]
            # a removed entry keeps the title it was last seen with
            expected.append((kind, title if after_state != "removed" else
                             f"Program {slug}" + (f" (rev {edits[slug]})" if edits.get(slug)
                                                  else "")))
        shown = {s: w for s, w in after.items() if w != "removed"}
        assert sorted(pipeline.check(*pages_for(shown, new_edits))) == sorted(expected)
        state, edits = after, new_edits
