"""Events -> the change-log feed: Atom 1.0, JSON Feed 1.1 or RSS 2.0 (pure: no I/O, no clock).

Every string taken from an event (that is, from a watched page) is escaped where it is
rendered: html.escape() inside HTML bodies, XML escaping by lxml (through feedgen) inside
the Atom and RSS documents, json.dumps() in the JSON Feed. Markup in a watched page never
becomes markup in the feed.

Renderings are deterministic: the same events, FeedInfo and `now` give the same bytes
(the feed's own time is the newest event's, never the wall clock), so ETags stay stable.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from feedgen.feed import FeedGenerator
from lxml import etree
from msgspec import Struct

from monitor.diff import DiffOp as DiffOp
from monitor.diff import diff_words as diff_words
from monitor.models import FIELDS, Change, Event, format_time
from monitor.render import (
    IMPORTED_NOTE,
    capture_path,
    clip,
    diff_html,
    entry_path,
    esc,
)
from monitor.render import event_title as event_title
from monitor.render import is_web_url as is_web_url
from monitor.render import web_iri as web_iri

FeedFormat = Literal["atom", "json", "rss"]
FEED_FORMATS: tuple[FeedFormat, ...] = ("atom", "json", "rss")

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
# Authority of the tag: URIs made for event ids that are not UUIDs. ".invalid" is
# reserved (RFC 2606), so these can never clash with tags minted by a real domain owner.
TAG_AUTHORITY = "monitor.invalid,2025"
# A description longer than this is cut in the feed (the timeline and the capture keep it
# whole): one 387 KB description must not make every feed reader download it 200 times.
DESCRIPTION_CHARS = 10_000
# An Atom feed must say when it was updated, even with no entry yet: a fixed time (the Unix
# epoch), not the time of rendering, so that nothing new never reads as something new.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

_FIELD_LABELS = {
    "title": "Title",
    "link": "Link",
    "description": "Description",
    "content": "Page text",
}
# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone surrogates,
# U+FFFE/U+FFFF): lxml refuses them, so they are shown as U+FFFD in Atom and RSS.
# What XML 1.0 cannot carry: the complement of its Char production (#x9 | #xA | #xD |
# [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]) among code points. Written as what it
# excludes: the negated class of what it allows takes ~3 ms to compile, this one 0.3.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MEDIA_TYPES: dict[FeedFormat, str] = {
    "atom": "application/atom+xml",
    "json": "application/feed+json",
    "rss": "application/rss+xml",
}


class FeedInfo(Struct, frozen=True):
    """The feed's own metadata: title, a stable id (an IRI) and the URLs it is known by.

    `base_url` ([feed].base_url, ending in "/") is where the feed and the web pages are
    published: with it, each format links to itself ({base_url}feed.atom, …) and each
    item to its evidence ({base_url}entries/ENTRY_ID, {base_url}captures/CAPTURE_ID/view).
    `home_url` and `self_url`, when given, win over what base_url implies.
    """

    title: str
    feed_id: str  # an IRI, e.g. "urn:uuid:..." (the caller derives it stably from the config)
    home_url: str | None = None  # the web page (monitor serve), if known
    self_url: str | None = None
    base_url: str | None = None
    site_url: str | None = None  # the watched site (a page's URL): RSS's channel <link> at least


def site_base(base_url: str | None) -> str | None:
    """`base_url` with its trailing "/" when it is an http(s) URL, else None."""
    if not is_web_url(base_url) or base_url is None:
        return None
    return base_url if base_url.endswith("/") else base_url + "/"


def feed_self_url(info: FeedInfo, fmt: FeedFormat) -> str | None:
    """The address of this rendering of the feed: self_url, else {base_url}feed.{fmt}."""
    if info.self_url:
        return info.self_url
    base = site_base(info.base_url)
    return f"{base}feed.{fmt}" if base else None


def feed_home_url(info: FeedInfo) -> str | None:
    """The web page the feed belongs to: home_url, else base_url."""
    return info.home_url or site_base(info.base_url)


def event_iri(event: Event) -> str:
    """The entry id of an event in a feed: urn:uuid:… for a UUID, else a tag: URI."""
    try:
        return uuid.UUID(event.id).urn
    except ValueError:
        return f"tag:{TAG_AUTHORITY}:event:{quote(event.id, safe='')}"


def evidence_urls(event: Event, base_url: str | None) -> list[tuple[str, str]]:
    """(label, absolute URL) of the event's evidence on the site: timeline, capture."""
    base = site_base(base_url)
    if base is None:
        return []
    urls: list[tuple[str, str]] = []
    if event.entry_id and not event.is_page_event:
        urls.append(("Timeline of the entry", base + entry_path(event.entry_id)))
    if event.capture_id is not None:
        capture = int(event.capture_id)
        urls.append((f"Archived capture #{capture}", base + capture_path(capture)))
    return urls


def event_html(event: Event, base_url: str | None = None) -> str:
    """The HTML body of a feed item (pure, deterministic); every string is escaped.

    The same event and base_url always give the same string, so it may be cached or
    stored with the event.
    """
    parts: list[str] = []
    if event.source == "backfill":
        parts.append(f"<p><em>{esc(IMPORTED_NOTE.capitalize())}.</em></p>")
    if event.is_page_event:
        parts.append(f"<p>{esc(event.detail or 'no detail recorded')}</p>")
        parts.append(f"<p>Page: {esc(event.page)}</p>")
    else:
        if event.is_link_event:
            parts.append(f"<p>{esc(event.detail or 'no detail recorded')}</p>")
        if event.description:
            parts.append(f"<p>{esc(clip(event.description, DESCRIPTION_CHARS))}</p>")
        if event.link:
            parts.append(f"<p>Link: {_link_html(event.link)}</p>")
        if event.changes:
            parts.append(event.changes_html or changes_html(event.changes))
        meta = f"Page: {esc(event.page)}"
        if event.entry_id:
            meta += f" · Entry: {esc(event.entry_id)}"
        parts.append(f"<p>{meta}</p>")
    evidence = evidence_urls(event, base_url)
    if evidence:
        links = " · ".join(f'<a href="{esc(url)}">{esc(label)}</a>' for label, url in evidence)
        parts.append(f"<p>Evidence: {links}</p>")
    elif event.capture_id is not None:
        parts.append(f"<p>Capture: #{int(event.capture_id)}</p>")
    return "\n".join(parts)


def _link_html(url: str | None) -> str:
    """A link as <a href> when it is http(s), else as escaped text ("none" when absent)."""
    if url is None:
        return "<em>none</em>"
    href = web_iri(url)
    return f'<a href="{esc(href)}">{esc(url)}</a>' if href else esc(url)


def changes_html(changes: Mapping[str, Change]) -> str:
    """A list item per changed field: a word diff for text, before -> after for links.

    The cycle computes it once per event and stores it (Event.changes_html): the diff is
    bounded, but 200 huge ones in every rendering of the feed would still add up.
    """
    ordered = [name for name in FIELDS if name in changes]
    ordered += sorted(name for name in changes if name not in FIELDS)
    items: list[str] = []
    for name in ordered:
        change = changes[name]
        label = esc(_FIELD_LABELS.get(name, name))
        if name == "link":
            body = f"{_link_html(change.before)} → {_link_html(change.after)}"
        else:
            body = diff_html(diff_words(change.before or "", change.after or ""))
        items.append(f"<li>{label}: {body}</li>")
    return "<p>What changed:</p>\n<ul>\n" + "\n".join(items) + "\n</ul>"


def render_feed(
    events: Sequence[Event],
    info: FeedInfo,
    fmt: FeedFormat,
    *,
    max_entries: int,
) -> bytes:
    """The feed as bytes (UTF-8): newest event first, at most `max_entries` entries.

    Events are sorted by time, newest first; the sort is stable, so events of the same
    time keep the order given (callers pass them newest first, as the store reads them).
    The feed's updated time is the newest event's, or EMPTY_FEED_UPDATED when there is none:
    the bytes depend on the events and `info` alone, so a rewritten file is the same file
    and `monitor serve`'s ETag holds until an event comes.
    """
    chosen = sorted(events, key=lambda e: _utc(e.at), reverse=True)[: max(max_entries, 0)]
    updated = _utc(chosen[0].at) if chosen else EMPTY_FEED_UPDATED
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
    self_url = feed_self_url(info, fmt)
    home_url = feed_home_url(info)
    # feedgen's RSS <link> is the last link added: self first, so the web page wins; the
    # self link becomes RSS's atom:link rel="self".
    if self_url:
        fg.link(href=_xml(self_url), rel="self", type=_MEDIA_TYPES[fmt])
    if home_url:
        fg.link(href=_xml(home_url), rel="alternate", type="text/html")
    elif not self_url and fmt == "rss":
        # RSS requires a channel <link>, "the URL of the website": with no page of ours
        # known, the watched site's; with none at all, the feed's own id (an IRI).
        fg.link(href=_xml(web_iri(info.site_url) or info.feed_id), rel="alternate")
    # Both default to the wall clock: set them so that a rendering depends on its input only.
    fg.updated(updated)
    fg.lastBuildDate(updated)
    for event in events:
        _add_xml_entry(fg, event, info.base_url)
    if fmt == "atom":
        data: bytes = fg.atom_str(pretty=True, encoding="UTF-8")
    else:
        data = fg.rss_str(pretty=True, encoding="UTF-8")
    return data


def _add_xml_entry(fg: Any, event: Event, base_url: str | None) -> None:
    """One Atom <entry> / RSS <item> for one event."""
    at = _utc(event.at)
    # feedgen prepends by default; appending keeps the (newest first) order given.
    fe = fg.add_entry(order="append")
    fe.id(_xml(event_iri(event)))
    fe.title(_xml(event_title(event)))
    fe.updated(at)
    fe.published(at)
    fe.category(term=_xml(event.kind))
    href = None if event.is_page_event else web_iri(event.link)
    if href:
        fe.link(href=_xml(href), rel="alternate")
    evidence = evidence_urls(event, base_url)
    if evidence:
        fe.register_extension("evidence", _EvidenceLinks, atom=True, rss=False)
        fe.evidence.links = [(_xml(label), _xml(url)) for label, url in evidence]
    fe.content(_xml(event_html(event, base_url)), type="html")


class _EvidenceLinks:
    """A feedgen entry extension: Atom <link rel="related"> to the event's evidence.

    feedgen's own entry links lose their rel, type and title when written (it reuses the
    loop variable for the element), so these are added to the finished element instead.
    """

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, entry: Any) -> Any:
        for label, url in self.links:
            # Unqualified, like every element feedgen writes under its Atom xmlns.
            etree.SubElement(entry, "link", href=url, rel="related", type="text/html", title=label)
        return entry

    def extend_rss(self, item: Any) -> Any:
        return item


def _render_json(events: Sequence[Event], info: FeedInfo) -> bytes:
    """JSON Feed 1.1, keys in a fixed order, UTF-8."""
    feed: dict[str, Any] = {"version": JSON_FEED_VERSION, "title": info.title}
    home_url = feed_home_url(info)
    self_url = feed_self_url(info, "json")
    if home_url:
        feed["home_page_url"] = home_url
    if self_url:
        feed["feed_url"] = self_url
    feed["description"] = f"Change log: {info.title}"
    feed["items"] = [_json_item(event, info.base_url) for event in events]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _json_item(event: Event, base_url: str | None) -> dict[str, Any]:
    """One JSON Feed item: the rendered event plus its fields under _monitor."""
    item: dict[str, Any] = {"id": event_iri(event)}
    href = None if event.is_page_event else web_iri(event.link)
    if href:
        item["url"] = href
    item["title"] = event_title(event)
    item["content_html"] = event_html(event, base_url)
    item["date_published"] = format_time(event.at)
    item["tags"] = [event.kind]
    item["_monitor"] = event.to_json()
    return item
