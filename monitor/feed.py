"""Events -> the change-log feed: Atom 1.0, JSON Feed 1.1 or RSS 2.0 (pure: no I/O, no clock).

Every string taken from an event (that is, from a watched page) is escaped where it is
rendered: html.escape() inside HTML bodies, XML escaping by lxml (through feedgen) inside
the Atom and RSS documents, json.dumps() in the JSON Feed. Markup in a watched page never
becomes markup in the feed.

Renderings are deterministic: the same events, FeedInfo and `now` give the same bytes
(the feed's own time is the newest event's, never the wall clock), so ETags stay stable.
"""

from __future__ import annotations

import difflib
import html
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from feedgen.feed import FeedGenerator

from monitor.models import FIELDS, Change, Event, EventKind, format_time

FeedFormat = Literal["atom", "json", "rss"]
FEED_FORMATS: tuple[FeedFormat, ...] = ("atom", "json", "rss")
DiffOp = Literal["equal", "insert", "delete"]

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# Authority of the tag: URIs made for event ids that are not UUIDs. ".invalid" is
# reserved (RFC 2606), so these can never clash with tags minted by a real domain owner.
TAG_AUTHORITY = "monitor.invalid,2025"
TITLE_SNIPPET_CHARS = 80

_KIND_LABELS: dict[EventKind, str] = {
    "added": "Added",
    "changed": "Changed",
    "archived": "Archived",
    "restored": "Restored",
    "removed": "Removed",
    "page-error": "Page error",
    "page-recovered": "Page recovered",
    "page-gone": "Page gone",
    "page-anomaly": "Page anomaly",
}
_FIELD_LABELS = {"title": "Title", "link": "Link", "description": "Description"}
# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone surrogates,
# U+FFFE/U+FFFF): lxml refuses them, so they are shown as U+FFFD in Atom and RSS.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WORDS = re.compile(r"\s+|\S+")
_MEDIA_TYPES: dict[FeedFormat, str] = {
    "atom": "application/atom+xml",
    "json": "application/feed+json",
    "rss": "application/rss+xml",
}


@dataclass(frozen=True)
class FeedInfo:
    """The feed's own metadata: title, a stable id (an IRI) and the URLs it is known by."""

    title: str
    feed_id: str  # an IRI, e.g. "urn:uuid:..." (the caller derives it stably from the config)
    home_url: str | None = None  # the web page (monitor serve), if known
    self_url: str | None = None


def event_title(event: Event) -> str:
    """The title a person reads: "Archived: Film Forward", "Page error: active"."""
    label = _KIND_LABELS[event.kind]
    if event.is_page_event:
        return f"{label}: {event.page}"
    return f"{label}: {_entry_name(event)}"


def _entry_name(event: Event) -> str:
    """The entry's title, else the start of its description, else its link or id."""
    if event.title:
        return event.title
    if event.description:
        return _snippet(event.description, TITLE_SNIPPET_CHARS)
    return event.link or event.entry_id or "untitled entry"


def _snippet(text: str, limit: int) -> str:
    """The text whole when short, else cut at a word boundary before `limit` with "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    cut = head.rfind(" ")
    # One very long word (a URL, say) has no boundary worth keeping: cut it hard.
    if cut < limit // 2:
        cut = limit
    return text[:cut].rstrip(" ,;:.-") + "…"


def event_iri(event: Event) -> str:
    """The entry id of an event in a feed: urn:uuid:… for a UUID, else a tag: URI."""
    try:
        return uuid.UUID(event.id).urn
    except ValueError:
        return f"tag:{TAG_AUTHORITY}:event:{quote(event.id, safe='')}"


def diff_words(before: str, after: str) -> list[tuple[DiffOp, str]]:
    """Word-level difference: joining equal+delete gives `before`, equal+insert `after`."""
    old = _WORDS.findall(before)
    new = _WORDS.findall(after)
    # Whitespace is junk so that it never anchors a match: "two three" -> "2 3" reads as
    # one replacement rather than two split by a matching space. autojunk off: with long
    # texts it would also junk common words, and the result would depend on the length.
    matcher = difflib.SequenceMatcher(str.isspace, old, new, autojunk=False)
    ops: list[tuple[DiffOp, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append_op(ops, "equal", "".join(old[i1:i2]))
            continue
        _append_op(ops, "delete", "".join(old[i1:i2]))
        _append_op(ops, "insert", "".join(new[j1:j2]))
    return ops


def _append_op(ops: list[tuple[DiffOp, str]], op: DiffOp, text: str) -> None:
    """Add one chunk, skipping empty ones and merging with a previous chunk of its kind."""
    if not text:
        return
    if ops and ops[-1][0] == op:
        ops[-1] = (op, ops[-1][1] + text)
    else:
        ops.append((op, text))


# How every rendering marks an event imported from a web archive (source "backfill").
IMPORTED = "imported from a web archive"


def event_html(event: Event) -> str:
    """The HTML body of a feed entry; every string from the event is escaped."""
    if event.is_page_event:
        detail = event.detail or "no detail recorded"
        return f"<p>{_esc(detail)}</p>\n<p>Page: {_esc(event.page)}</p>"
    parts: list[str] = []
    if event.description:
        parts.append(f"<p>{_esc(event.description)}</p>")
    if event.link:
        parts.append(f"<p>Link: {_link_html(event.link)}</p>")
    if event.changes:
        parts.append(_changes_html(event.changes))
    meta = f"Page: {_esc(event.page)}"
    if event.entry_id:
        meta += f" · Entry: {_esc(event.entry_id)}"
    if event.source == "backfill":
        meta += f" · {IMPORTED}"
    parts.append(f"<p>{meta}</p>")
    return "\n".join(parts)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host and no white space or control chars."""
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _link_html(url: str | None) -> str:
    """A link as <a href> when it is http(s), else as escaped text ("none" when absent)."""
    if url is None:
        return "<em>none</em>"
    if is_web_url(url):
        return f'<a href="{_esc(url)}">{_esc(url)}</a>'
    return _esc(url)


def _changes_html(changes: Mapping[str, Change]) -> str:
    """A list item per changed field: a word diff for text, before -> after for links."""
    ordered = [name for name in FIELDS if name in changes]
    ordered += sorted(name for name in changes if name not in FIELDS)
    items: list[str] = []
    for name in ordered:
        change = changes[name]
        label = _esc(_FIELD_LABELS.get(name, name))
        if name == "link":
            body = f"{_link_html(change.before)} → {_link_html(change.after)}"
        else:
            body = _diff_html(change.before or "", change.after or "")
        items.append(f"<li>{label}: {body}</li>")
    return "<p>What changed:</p>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def _diff_html(before: str, after: str) -> str:
    """A word diff as HTML: removed words in <del>, added words in <ins>."""
    rendered: list[str] = []
    for op, text in diff_words(before, after):
        if op == "equal":
            rendered.append(_esc(text))
        elif op == "delete":
            rendered.append(f"<del>{_esc(text)}</del>")
        else:
            rendered.append(f"<ins>{_esc(text)}</ins>")
    return "".join(rendered) or "<em>empty</em>"


def render_feed(
    events: Sequence[Event],
    info: FeedInfo,
    fmt: FeedFormat,
    *,
    max_entries: int,
    now: datetime,
) -> bytes:
    """The feed as bytes (UTF-8): newest event first, at most `max_entries` entries.

    Events are sorted by time, newest first; the sort is stable, so events of the same
    time keep the order given (callers pass them newest first, as the store reads them).
    The feed's updated time is the newest event's, or `now` when there is none.
    """
    if now.tzinfo is None:
        raise ValueError(f"render_feed: now must be timezone-aware, got {now!r}")
    chosen = sorted(events, key=lambda e: _utc(e.at), reverse=True)[: max(max_entries, 0)]
    updated = _utc(chosen[0].at) if chosen else _utc(now)
    if fmt == "json":
        return _render_json(chosen, info)
    if fmt in ("atom", "rss"):
        return _render_xml(chosen, info, fmt, updated)
    raise ValueError(f"unknown feed format {fmt!r}: expected one of {', '.join(FEED_FORMATS)}")


def _utc(at: datetime) -> datetime:
    """Aware UTC to the second, as format_time() writes it (one precision in all formats)."""
    return at.astimezone(UTC).replace(microsecond=0)


def _xml(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _render_xml(
    events: Sequence[Event], info: FeedInfo, fmt: FeedFormat, updated: datetime
) -> bytes:
    """Atom or RSS through feedgen, entries in the order given."""
    fg = FeedGenerator()
    fg.id(_xml(info.feed_id))
    fg.title(_xml(info.title))
    fg.description(_xml(f"Change log: {info.title}"))
    # Atom needs an author on the feed when entries have none.
    fg.author(name="monitor")
    fg.generator("monitor")
    # feedgen's RSS <link> is the last link added: self first, so the web page wins.
    if info.self_url:
        fg.link(href=_xml(info.self_url), rel="self", type=_MEDIA_TYPES[fmt])
    if info.home_url:
        fg.link(href=_xml(info.home_url), rel="alternate", type="text/html")
    elif not info.self_url and fmt == "rss":
        # RSS requires a channel <link>; with no known URL the feed's own id (an IRI) is
        # the one stable reference there is.
        fg.link(href=_xml(info.feed_id), rel="alternate")
    # Both default to the wall clock: set them so that a rendering depends on its input only.
    fg.updated(updated)
    fg.lastBuildDate(updated)
    for event in events:
        _add_xml_entry(fg, event)
    if fmt == "atom":
        data: bytes = fg.atom_str(pretty=True, encoding="UTF-8")
    else:
        data = fg.rss_str(pretty=True, encoding="UTF-8")
    return data



def _add_xml_entry(fg: Any, event: Event) -> None:
    """One Atom <entry> / RSS <item> for one event."""
    at = _utc(event.at)
    # feedgen prepends by default; appending keeps the (newest first) order given.
    fe = fg.add_entry(order="append")
    fe.id(_xml(event_iri(event)))
    fe.title(_xml(event_title(event)))
    fe.updated(at)
    fe.published(at)
    fe.category(term=event.kind)
    if not event.is_page_event and is_web_url(event.link):
        fe.link(href=_xml(event.link or ""), rel="alternate")
    fe.content(_xml(event_html(event)), type="html")


def _render_json(events: Sequence[Event], info: FeedInfo) -> bytes:
    """JSON Feed 1.1, keys in a fixed order, UTF-8."""
    feed: dict[str, Any] = {"version": JSON_FEED_VERSION, "title": info.title}
    if info.home_url:
        feed["home_page_url"] = info.home_url
    if info.self_url:
        feed["feed_url"] = info.self_url
    feed["description"] = f"Change log: {info.title}"
    feed["items"] = [_json_item(event) for event in events]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_item(event: Event) -> dict[str, Any]:
    """One JSON Feed item: the rendered event plus its fields under _monitor."""
    item: dict[str, Any] = {"id": event_iri(event)}
    if not event.is_page_event and is_web_url(event.link):
        item["url"] = event.link
    item["title"] = event_title(event)
    item["content_html"] = event_html(event)
    item["date_published"] = format_time(event.at)
    item["tags"] = [event.kind]
    item["_monitor"] = event.to_json()
    return item
