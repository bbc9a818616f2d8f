"""The shared text helpers: counts, clipping, escaping, event titles and CLI lines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.models import Change, Event
from monitor.render import clip, count, describe_event, esc, event_title

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(kind: Any, **fields: Any) -> Event:
    return Event("1", kind, T0, "active", **fields)


@pytest.mark.parametrize(
    ("n", "noun", "plural", "text"),
    [(1, "event", None, "1 event"), (0, "event", None, "0 events"),
     (2, "entry", "entries", "2 entries"), (1, "entry", "entries", "1 entry")],
)
def test_count_agrees_in_number(n: int, noun: str, plural: str | None, text: str) -> None:
    """Counts read as English: one event, two events, two entries."""
    assert count(n, noun, plural) == text


@pytest.mark.parametrize(
    ("text", "limit", "clipped"),
    [("short", 10, "short"), ("one two three four", 12, "one two…"), ("x" * 20, 8, "xxxxxxx…")],
    ids=["fits", "between-words", "one-long-word"],
)
def test_clip_cuts_between_words_within_the_limit(text: str, limit: int, clipped: str) -> None:
    """A long text is cut between words, ellipsis included in the limit."""
    assert clip(text, limit) == clipped
    assert len(clip(text, limit)) <= limit


def test_esc_escapes_markup_and_quotes() -> None:
    """Markup and both quotes are escaped, so text is safe in content and attributes."""
    assert esc("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;/a&gt;"


@pytest.mark.parametrize(
    ("evt", "title"),
    [
        (event("archived", entry_id="e", title="Film Forward"), "Archived: Film Forward"),
        (event("added", entry_id="e", title="", description="Grants for all"),
         "Added: Grants for all"),
        (event("page-error", detail="HTTP 503 after 3 retries"),
         "Page error on 'active': HTTP 503 after 3 retries"),
        (event("page-recovered"), "Page recovered on 'active'"),
        (event("link-gone", entry_id="e", title="Film Forward", detail="HTTP 404"),
         "Link gone: Film Forward"),
        (event("split-in-two", entry_id="e", title="X"), "Split in two: X"),
    ],
    ids=["entry", "untitled", "page-with-detail", "page-no-detail", "link", "unknown-kind"],
)
def test_event_title(evt: Event, title: str) -> None:
    """Titles name the kind's label and the entry, or the page and what happened to it."""
    assert event_title(evt) == title


def test_describe_event_lines() -> None:
    """The CLI's one-liners: detail for page and link events, fields changed, imported mark."""
    page = describe_event(event("page-gone", detail="HTTP 404"))
    assert page.split() == ["page-gone", "active", "HTTP", "404"]
    link = describe_event(event("link-gone", entry_id="e9", title="T", detail="HTTP 410"))
    assert "T: HTTP 410" in link and "[e9]" in link
    changed = describe_event(
        event("changed", entry_id="e1", title="T", changes={"title": Change("S", "T")})
    )
    assert "(title changed)" in changed
    imported = describe_event(event("added", entry_id="e", title="T", source="backfill"))
    assert imported.endswith("(imported from a web archive)")
    assert "(imported" not in changed
