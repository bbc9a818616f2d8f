"""Read-only HTTP (`monitor serve`): the change log as a web page, each entry's timeline, the
archived bodies (sandboxed), the feeds and a health check. Standard library only.

Every string from the database came from a watched page: it is escaped where it is rendered
(html.escape, quote=True) and only an http(s) URL ever becomes a link. The server never
writes: each request opens the database, reads, and closes it (sqlite connections belong to
one thread, and opening one is cheap).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from monitor.config import Config
from monitor.errors import MonitorError, StoreError
from monitor.feed import FeedFormat, diff_words, is_web_url, render_feed
from monitor.models import EVENT_KINDS, Change, Event, format_time, utc_now
from monitor.publish import feed_info
from monitor.records import archived_body
from monitor.store import Store, VersionRow

log = logging.getLogger("monitor.web")

PAGE_SIZE = 100  # events per page of the change log
MAX_PAGE_NUMBER = 100_000
# feedgen switches the process locale while it formats RSS dates: one rendering at a time.
_FEED_LOCK = threading.Lock()
_FEEDS: dict[str, tuple[FeedFormat, str]] = {
    "/feed.atom": ("atom", "application/atom+xml; charset=utf-8"),
    "/feed.json": ("json", "application/feed+json; charset=utf-8"),
    "/feed.rss": ("rss", "application/rss+xml; charset=utf-8"),
}
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
_REL = 'rel="nofollow noopener noreferrer"'

_CSS = """
:root{color-scheme:light;--fg:#1b1b1b;--muted:#4d4d4d;--line:#cfd4da;--soft:#f2f4f7;--link:#0b57a4}
*{box-sizing:border-box}
body{margin:0;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#fff}
a{color:var(--link)}
:focus-visible{outline:3px solid #c25e00;outline-offset:2px}
.skip{position:absolute;left:-100vw}.skip:focus{left:1rem;top:.5rem;background:#fff;padding:.5rem}
.site,main,footer{max-width:72rem;margin:0 auto;padding:.75rem 1rem}
.site{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;justify-content:space-between;
border-bottom:1px solid var(--line)}
.site a{font-weight:600}
h1{font-size:1.6rem;line-height:1.25;margin:.75rem 0;overflow-wrap:anywhere}
h2{font-size:1.25rem;margin:2rem 0 .5rem}h3{font-size:1.05rem;margin:1.25rem 0 .25rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;border-bottom:1px solid var(--line)}
th{background:var(--soft)}td:last-child{overflow-wrap:anywhere}
.events td:nth-child(-n+3){white-space:nowrap}.events p,.events ul{margin:.15rem 0}
.muted,footer{color:var(--muted)}
.badge{display:inline-block;padding:0 .4rem;border:1px solid currentColor;border-radius:.3rem;
font-size:.85rem;font-weight:600;white-space:nowrap}
.good{color:#0a5c2b}.warn{color:#6b4500}.bad{color:#a11212}.info{color:#34398c}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
del{background:#ffe1e1;color:#6e0909;text-decoration:line-through;text-decoration-thickness:2px}
ins{background:#d9f3e1;color:#0a4a21;text-decoration:underline;text-decoration-thickness:2px}
del::before,del::after,ins::before,ins::after{position:absolute;width:1px;height:1px;
overflow:hidden;clip-path:inset(50%);white-space:nowrap}
del::before{content:" [removed: "}ins::before{content:" [added: "}
del::after,ins::after{content:"] "}
form{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin:1rem 0}
fieldset{border:1px solid var(--line);border-radius:.3rem;margin:0;padding:.25rem .75rem .5rem}
label{display:inline-block;margin-right:.75rem;white-space:nowrap}
button{font:inherit;padding:.35rem 1rem;border:1px solid var(--link);border-radius:.3rem;
background:var(--link);color:#fff}
.pager{display:flex;gap:1.5rem;margin:1rem 0}
details{margin:.15rem 0}del+ins{margin-left:.3em}
.version{border-top:1px solid var(--line);margin-top:1rem}
@media (max-width:40rem){.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;
clip-path:inset(50%)}
.stack tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}
.stack td{display:block;border:0;padding:.1rem .25rem}
.stack td::before{content:attr(data-label) ": ";font-weight:600}
dl{grid-template-columns:1fr}dd{margin-bottom:.4rem}}
"""
# The stylesheet is allowed by its hash: no inline style attribute or script can run.
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
HTML_CSP = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# An archived page is shown as received, so it gets a sandbox: no script runs, nothing loads.
CAPTURE_CSP = "sandbox; default-src 'none'; img-src 'none'; style-src 'unsafe-inline'"
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" '
    b'rx="3" fill="#0b57a4"/><path d="M3 9h3l2-5 2 8 2-3h1" fill="none" stroke="#fff" '
    b'stroke-width="1.6"/></svg>'
)
_CAPTURE_TYPES = ("text/html", "application/xhtml+xml")
_CHARSET = re.compile(r"[A-Za-z0-9._:-]{1,40}")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])")
_PORT = re.compile(r"(?::[0-9]{1,5})?")
_CONTROL = {n: f"\\x{n:02x}" for n in (*range(0x20), 0x7F)}
_STATUS_LABELS = {
    "ok": ("OK", "good"),
    "new": ("not checked yet", "info"),
    "error": ("error", "bad"),
    "gone": ("gone (404/410)", "bad"),
    "anomaly": ("anomaly", "warn"),
}
_KIND_TONES = {
    "added": "good",
    "restored": "good",
    "page-recovered": "good",
    "changed": "warn",
    "page-anomaly": "warn",
    "archived": "info",
    "removed": "bad",
    "page-error": "bad",
    "page-gone": "bad",
}


@dataclass(frozen=True)
class Response:
    """One answer: status, body and headers; `etag` asks for a strong ETag and 304s."""

    status: int
    body: bytes
    content_type: str = HTML_TYPE
    csp: str = HTML_CSP
    headers: tuple[tuple[str, str], ...] = ()
    etag: bool = True


# -- rendering helpers --------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _link(url: str | None, text: str | None = None) -> str:
    """An outside link when `url` is http(s); otherwise the URL as plain, escaped text."""
    if not url:
        return '<span class="muted">none</span>'
    shown = _esc(text if text is not None else url)
    if is_web_url(url):
        return f'<a href="{_esc(url)}" {_REL}>{shown}</a>'
    return shown


def _time(at: datetime) -> str:
    stamp = format_time(at)
    return f'<time datetime="{stamp}">{stamp[:10]} {stamp[11:16]}&nbsp;UTC</time>'


def _stored_time(text: str | None) -> str:
    """A time as the database stores it (format_time's output), or "never"."""
    if not text:
        return '<span class="muted">never</span>'
    return f'<time datetime="{_esc(text)}">{_esc(text[:10])} {_esc(text[11:16])}&nbsp;UTC</time>'


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _entry_name(title: str | None, description: str | None, fallback: str) -> str:
    return title or _clip(description or "", 80) or fallback


def _entry_href(entry_id: str) -> str:
    return f"/entries/{quote(entry_id, safe='')}"


def _kind_badge(kind: str) -> str:
    tone = _KIND_TONES.get(kind, "info")
    return f'<span class="badge {tone}">{_esc(kind)}</span>'


def diff_html(before: str, after: str) -> str:
    """A word diff of two texts as HTML: removed words in <del>, added words in <ins>."""
    parts = []
    for op, text in diff_words(before, after):
        if op == "equal":
            parts.append(_esc(text))
        else:
            tag = "del" if op == "delete" else "ins"
            parts.append(f"<{tag}>{_esc(text)}</{tag}>")
    return "".join(parts) or '<span class="muted">empty</span>'


def _change_items(changes: Mapping[str, Change | tuple[str | None, str | None]]) -> str:
    """A <ul> with one item per changed field: a word diff for text, before → after otherwise."""
    items = []
    for name, change in changes.items():
        before, after = (change.before, change.after) if isinstance(change, Change) else change
        if name in ("title", "description"):
            body = diff_html(before or "", after or "")
        elif name == "link":
            body = f"{_link(before)} → {_link(after)}"
        else:
            body = f"<del>{_esc(before or '')}</del> → <ins>{_esc(after or '')}</ins>"
        items.append(f"<li><strong>{_esc(name)}</strong>: {body}</li>")
    return '<ul class="changes">' + "".join(items) + "</ul>"


def _layout(title: str, body: str, *, site_title: str) -> bytes:
    """A whole HTML page: feed autodiscovery, the stylesheet, the site header and `body`."""
    site = _esc(site_title)
    feeds = (
        f'<link rel="alternate" type="application/atom+xml" title="{site} (Atom)" '
        'href="/feed.atom">\n'
        f'<link rel="alternate" type="application/feed+json" title="{site} (JSON Feed)" '
        'href="/feed.json">\n'
        f'<link rel="alternate" type="application/rss+xml" title="{site} (RSS)" href="/feed.rss">'
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_esc(title)}</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
{feeds}
<style>{_CSS}</style>
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header class="site">
<a href="/">{site}</a>
<nav aria-label="Feeds">Follow: <a href="/feed.atom">Atom</a> · <a href="/feed.json">JSON Feed</a>
· <a href="/feed.rss">RSS</a></nav>
</header>
<main id="main">
{body}
</main>
<footer><p>A read-only view of the monitor's record. Titles, descriptions and links are
shown as text, as they were found on the watched pages.</p></footer>
</body>
</html>
"""
    return page.encode("utf-8")


def error_page(status: int, heading: str, message: str, *, site_title: str) -> Response:
    """An HTML error page; `heading` and `message` are escaped here."""
    home = '<p><a href="/">The change log</a></p>'
    body = f"<h1>{_esc(heading)}</h1>\n<p>{_esc(message)}</p>\n{home}"
    return Response(status, _layout(heading, body, site_title=site_title), etag=False)


# -- the change log (/) -------------------------------------------------------------------


@dataclass(frozen=True)
class LogQuery:
    """The filters of `/`, checked: unknown kinds and pages, and bad numbers, are dropped."""

    kinds: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    number: int = 1  # which page of PAGE_SIZE events, from 1

    def href(self, number: int) -> str:
        params = [("kind", k) for k in self.kinds] + [("page", p) for p in self.pages]
        if number > 1:
            params.append(("p", str(number)))
        return "/?" + urlencode(params) if params else "/"


def parse_log_query(query: Mapping[str, list[str]], page_names: Sequence[str]) -> LogQuery:
    """The LogQuery in a parsed query string; values that mean nothing are ignored."""
    kinds = tuple(k for k in EVENT_KINDS if k in query.get("kind", []))
    pages = tuple(p for p in page_names if p in query.get("page", []))
    number = 1
    raw = query.get("p", ["1"])[-1]
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE_NUMBER:
        number = int(raw)
    return LogQuery(kinds, pages, number)


def _event_cell(event: Event, *, link_entry: bool = True) -> str:
    """What happened, for one row of an events table."""
    parts, links = [], []
    if event.is_page_event:
        detail = _esc(event.detail or "no detail recorded")
        parts.append(f"<strong>Page {_esc(event.page)}</strong>: {detail}")
    else:
        name = _esc(_entry_name(event.title, event.description, event.entry_id or "entry"))
        if link_entry and event.entry_id:
            parts.append(f'<a href="{_entry_href(event.entry_id)}">{name}</a>')
        else:
            parts.append(f"<strong>{name}</strong>")
        if event.description and event.description != event.title:
            parts.append(f'<p class="muted">{_esc(_clip(event.description))}</p>')
        if event.changes:
            fields = ", ".join(_esc(name) for name in event.changes)
            summary = f"<summary>Changed: {fields}</summary>"
            parts.append(f"<details>{summary}{_change_items(event.changes)}</details>")
        if is_web_url(event.link):
            links.append(_link(event.link, "page on the site ↗"))
    if event.capture_id is not None:
        links.append(f'<a href="/captures/{int(event.capture_id)}">archived copy</a>')
    if links:
        parts.append(f"<p>{' · '.join(links)}</p>")
    return "".join(parts)


def _table(headings: Sequence[str], rows: Sequence[Sequence[str]], *, css: str = "") -> str:
    """A table of HTML cells; on a narrow screen each row stacks into labelled lines."""
    head = "".join(f'<th scope="col">{h}</th>' for h in headings)
    body = "\n".join(
        "<tr>"
        + "".join(f'<td data-label="{h}">{c}</td>' for h, c in zip(headings, row, strict=True))
        + "</tr>"
        for row in rows
    )
    opening = f'<table class="stack {css}"><thead><tr>{head}</tr></thead>'
    return f"{opening}\n<tbody>\n{body}\n</tbody></table>"


def events_table(events: Sequence[Event], *, link_entry: bool = True) -> str:
    """A table of events: time, kind, page, what happened."""
    rows = [
        [_time(e.at), _kind_badge(e.kind), _esc(e.page), _event_cell(e, link_entry=link_entry)]
        for e in events
    ]
    return _table(["Time", "Kind", "Page", "What happened"], rows, css="events")


def _pages_status(pages: Sequence[Mapping[str, Any]], last: Mapping[str, Any] | None) -> str:
    """The header of `/`: when the last check ran and how each page fared."""
    if last is None:
        when = "<p>No check has run yet: run <code>monitor check</code>.</p>"
    else:
        when = (
            f"<p>Last check: {_stored_time(last.get('finished_at') or last.get('started_at'))} "
            f"({_count(int(last.get('events') or 0), 'event')}).</p>"
        )
    rows = []
    for page in pages:
        label, tone = _STATUS_LABELS.get(str(page["status"]), (str(page["status"]), "info"))
        rows.append(
            [
                _link(page["url"], page["name"]),
                _esc(page["role"]),
                f'<span class="badge {tone}">{_esc(label)}</span>',
                str(int(page["entry_count"] or 0)),
                _stored_time(page["last_checked_at"]),
                _esc(page["last_detail"] or ""),
            ]
        )
    headings = ["Page", "Role", "Status", "Entries", "Last checked", "Detail"]
    table = _table(headings, rows, css="pages")
    heading = '<h2 id="status">Pages watched</h2>'
    return f'<section aria-labelledby="status">{heading}{when}{table}</section>'


def _filter_form(query: LogQuery, page_names: Sequence[str]) -> str:
    def box(name: str, value: str, chosen: Sequence[str]) -> str:
        checked = " checked" if value in chosen else ""
        return (
            f'<label><input type="checkbox" name="{name}" value="{_esc(value)}"{checked}> '
            f"{_esc(value)}</label>"
        )

    kinds = "".join(box("kind", k, query.kinds) for k in EVENT_KINDS)
    pages = "".join(box("page", p, query.pages) for p in page_names)
    return (
        '<form method="get" action="/" aria-label="Filter the change log">'
        f"<fieldset><legend>Kind</legend>{kinds}</fieldset>"
        f"<fieldset><legend>Page</legend>{pages}</fieldset>"
        '<p><button type="submit">Show</button> <a href="/">Clear filters</a></p></form>'
    )


def log_page(store: Store, config: Config, query: Mapping[str, list[str]]) -> Response:
    """`/`: the pages' status, the filter form and one page of the change log, newest first."""
    stored = store.pages()
    names = list(dict.fromkeys([p.name for p in config.pages] + [r["name"] for r in stored]))
    wanted = parse_log_query(query, names)
    start = (wanted.number - 1) * PAGE_SIZE
    found = store.events(kinds=wanted.kinds, pages=wanted.pages, limit=start + PAGE_SIZE + 1)
    shown = found[start : start + PAGE_SIZE]
    title = config.feed.title
    parts = [f"<h1>{_esc(title)}</h1>", _pages_status(stored, store.last_check())]
    parts.append('<h2 id="log">Change log</h2>' + _filter_form(wanted, names))
    more = len(found) > start + PAGE_SIZE
    if shown:
        counted = _count(len(shown), "event")
        if start or more:
            counted = f"Events {start + 1}–{start + len(shown)}"
        parts.append(f"<p>{counted}, newest first.</p>")
        parts.append(events_table(shown))
    elif wanted.kinds or wanted.pages or wanted.number > 1:
        parts.append("<p>No events match these filters on this page.</p>")
    else:
        parts.append(
            "<p>No events yet. The first check of a page is its baseline: it records the "
            "entries and reports no events; later checks report what changed.</p>"
        )
    links = []
    if wanted.number > 1:
        links.append(f'<a href="{_esc(wanted.href(wanted.number - 1))}" rel="prev">← Newer</a>')
    if more:
        links.append(f'<a href="{_esc(wanted.href(wanted.number + 1))}" rel="next">Older →</a>')
    if links:
        nav = '<nav class="pager" aria-label="Pages of the change log">'
        parts.append(nav + "".join(links) + "</nav>")
    heading = title if wanted.number == 1 else f"{title} (page {wanted.number})"
    return Response(200, _layout(heading, "\n".join(parts), site_title=title))


# -- one entry (/entries/ID) ----------------------------------------------------------------


def _version_changes(before: VersionRow, after: VersionRow) -> dict[str, tuple[str | None, str]]:
    """The fields that differ between two consecutive versions, before and after."""
    changes: dict[str, tuple[str | None, str]] = {}
    for name in ("state", "page", "title", "link", "description"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes[name] = (old, new)
    return changes


def _version_section(version: VersionRow, previous: VersionRow | None) -> str:
    capture = (
        f'<a href="/captures/{int(version.capture_id)}">capture #{int(version.capture_id)}</a>'
        if version.capture_id is not None
        else '<span class="muted">not recorded</span>'
    )
    rows = [
        ("State", _esc(version.state)),
        ("Page", _esc(version.page)),
        ("Title", _esc(version.title) or '<span class="muted">none</span>'),
        ("Link", _link(version.link)),
        ("Description", _esc(version.description)),
        ("Observed in", capture),
    ]
    fields = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    changed = ""
    if previous is not None:
        changes = _version_changes(previous, version)
        changed = (
            f"<h4>What changed since version {previous.version}</h4>{_change_items(changes)}"
            if changes
            else ""
        )
    return (
        f'<section class="version" aria-labelledby="v{version.version}">'
        f'<h3 id="v{version.version}">Version {version.version} · {_time(version.at)}</h3>'
        f"{changed}<dl>{fields}</dl></section>"
    )


def entry_page(store: Store, config: Config, entry_id: str) -> Response:
    """`/entries/ID`: the entry now, every version with the difference from the one before,
    and its events."""
    site = config.feed.title
    entry = store.entry(entry_id)
    if entry is None:
        return error_page(
            404, "No such entry", f"No entry has the id {entry_id!r}.", site_title=site
        )
    versions = store.versions(entry_id)
    events = list(reversed(store.events(entry_id=entry_id)))
    name = _entry_name(entry.title, entry.description, entry.id)
    state = f'<span class="badge {_KIND_TONES.get(entry.state, "info")}">{_esc(entry.state)}</span>'
    summary = [
        ("State now", f"{state} on page {_esc(entry.page)}"),
        ("Link", _link(entry.link)),
        ("Description", _esc(entry.description)),
        ("First seen", _time(entry.first_seen)),
        ("Last seen", _time(entry.last_seen)),
        ("Last changed", _time(entry.last_changed)),
        ("Entry id", f"<code>{_esc(entry.id)}</code>"),
    ]
    parts = [
        f"<h1>{_esc(name)}</h1>",
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in summary) + "</dl>",
        f'<h2 id="versions">Versions ({len(versions)})</h2>',
        '<p class="muted">Differences are marked: removed words are struck through, added '
        "words are underlined.</p>",
    ]
    parts += [
        _version_section(v, versions[i - 1] if i else None) for i, v in enumerate(versions)
    ]
    parts.append(f'<h2 id="events">Events ({len(events)}, oldest first)</h2>')
    if events:
        parts.append(events_table(events, link_entry=False))
    else:
        parts.append("<p>None: the entry has not changed since it was first recorded.</p>")
    return Response(200, _layout(name, "\n".join(parts), site_title=site))


# -- archived bodies, feeds, health -----------------------------------------------------------


def capture_type(declared: str | None) -> str:
    """The Content-Type to serve an archived body with: HTML stays HTML, the rest plain text."""
    media, _, params = (declared or "").partition(";")
    media = media.strip().lower()
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        value = value.strip().strip('"')
        if key.strip().lower() == "charset" and _CHARSET.fullmatch(value):
            charset = value
    chosen = media if media in _CAPTURE_TYPES else "text/plain"
    return f"{chosen}; charset={charset}" if charset else chosen


def capture_body(store: Store, config: Config, capture_id: int) -> Response:
    """`/captures/ID`: the archived body byte for byte, sandboxed so nothing in it runs."""
    site = config.feed.title
    capture = store.capture(capture_id)
    if capture is None:
        return error_page(404, "No such capture", f"No capture #{capture_id}.", site_title=site)
    if capture.warc_file is None:
        why = f"Capture #{capture_id} has no archived response: {capture.error or 'no answer'}."
        return error_page(404, "Nothing archived", why, site_title=site)
    try:
        _, headers, body = archived_body(
            store, config.monitor.data_dir / "warc", capture_id, decoded=True
        )
    except MonitorError as error:
        log.error("capture #%d: %s", capture_id, error)
        why = f"The body of capture #{capture_id} cannot be read: run `monitor verify`."
        return error_page(500, "Archive unreadable", why, site_title=site)
    declared = next((v for k, v in headers if k.lower() == "content-type"), capture.content_type)
    extra = (("X-Frame-Options", "DENY"),)
    return Response(200, body, capture_type(declared), CAPTURE_CSP, headers=extra)


def feed_response(config: Config, path: str, base_url: str) -> Response:
    """One of the feeds, rendered from the newest [feed].max_entries events."""
    fmt, content_type = _FEEDS[path]
    with read_store(config) as store:
        events = store.events(limit=config.feed.max_entries)
    info = feed_info(config, home_url=base_url, self_url=base_url + path.lstrip("/"))
    with _FEED_LOCK:
        data = render_feed(events, info, fmt, max_entries=config.feed.max_entries, now=utc_now())
    return Response(200, data, content_type, DATA_CSP)


def health(config: Config) -> Response:
    """`/healthz`: 200 with the last check and each page's status; 503 if the database fails."""
    try:
        with read_store(config) as store:
            last = store.last_check()
            stored = {row["name"]: row["status"] for row in store.pages()}
    except StoreError as error:
        log.error("healthz: %s", error)
        data: dict[str, Any] = {"ok": False, "error": "the database cannot be read"}
        status = 503
    else:
        pages = {page.name: stored.pop(page.name, "new") for page in config.pages}
        pages.update(stored)  # pages no longer in the config still have a status
        when = (last.get("finished_at") or last.get("started_at")) if last else None
        data, status = {"ok": True, "last_check": when, "pages": pages}, 200
    body = (json.dumps(data) + "\n").encode()
    extra = (("Cache-Control", "no-store"),)
    return Response(status, body, JSON_TYPE, DATA_CSP, headers=extra, etag=False)


@contextmanager
def read_store(config: Config) -> Iterator[Store]:
    """The database, opened for this request only (never created), closed afterwards."""
    store = Store(config.monitor.data_dir / "monitor.db", create=False)
    try:
        yield store
    finally:
        store.close()


_ENTRY_PATH = re.compile(r"/entries/([^/]{1,200})")
_CAPTURE_PATH = re.compile(r"/captures/([0-9]{1,15})")


def respond(config: Config, target: str, *, base_url: str) -> Response:
    """The answer to a GET of `target` (path and query), as the handler sends it."""
    site = config.feed.title
    if target.startswith("/"):  # origin form; urlsplit would read "//x" as a host
        path, _, query_string = target.partition("?")
    else:  # absolute form, as proxies send it
        parts = urlsplit(target)
        path, query_string = parts.path or "/", parts.query
    try:
        query = parse_qs(query_string, max_num_fields=200)
    except ValueError:
        return error_page(400, "Bad request", "Too many query parameters.", site_title=site)
    if path in _FEEDS:
        return feed_response(config, path, base_url)
    if path == "/healthz":
        return health(config)
    if path == "/favicon.svg":
        return Response(200, ICON, "image/svg+xml", DATA_CSP)
    entry = _ENTRY_PATH.fullmatch(path)
    capture = _CAPTURE_PATH.fullmatch(path)
    if path != "/" and entry is None and capture is None:
        return error_page(404, "Not found", "There is no page at this address.", site_title=site)
    with read_store(config) as store:
        if entry is not None:
            return entry_page(store, config, unquote(entry[1]))
        if capture is not None:
            return capture_body(store, config, int(capture[1]))
        return log_page(store, config, query)


# -- the server ---------------------------------------------------------------------------------


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes do not matter."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


class _Handler(BaseHTTPRequestHandler):
    server: MonitorServer
    protocol_version = "HTTP/1.1"
    server_version = "monitor"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection gives its thread back after this

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>; every method but GET and HEAD gets a 405.
        if name.startswith("do_"):
            return self._reject_method
        raise AttributeError(name)

    def _reject_method(self) -> None:
        self.close_connection = True  # the request may carry a body we do not read
        response = error_page(
            405,
            "Method not allowed",
            "This server is read-only: it answers GET and HEAD only.",
            site_title=self.server.config.feed.title,
        )
        self._send(response, head=False, extra=(("Allow", "GET, HEAD"),))

    def _answer(self, *, head: bool) -> None:
        config = self.server.config
        try:
            response = respond(config, self.path, base_url=self._base_url())
        except StoreError as error:
            log.error("%s: %s", self.path.translate(_CONTROL), error)
            response = error_page(
                503,
                "Database unavailable",
                "The change log cannot be read right now; try again shortly.",
                site_title=config.feed.title,
            )
        except Exception:  # a bug must not stop the server: log it, answer 500, go on
            log.exception("error answering %s", self.path.translate(_CONTROL))
            response = error_page(
                500, "Server error", "Something went wrong.", site_title=config.feed.title
            )
        try:
            self._send(response, head=head)
        except ConnectionError:  # the client went away mid-answer: nothing left to tell it
            self.close_connection = True

    def _base_url(self) -> str:
        """This server's URL as the client named it (Host), when the name is plausible.

        Behind a TLS proxy, X-Forwarded-Proto: https makes the feeds' own links https.
        """
        host = (self.headers.get("Host") or "").strip()
        name, port = host, ""
        if ":" in host and not host.endswith("]"):
            name, _, rest = host.rpartition(":")
            port = ":" + rest
        if not (_HOST.fullmatch(name) and _PORT.fullmatch(port)):
            host = self.server.authority
        forwarded = (self.headers.get("X-Forwarded-Proto") or "").strip().lower()
        scheme = "https" if forwarded == "https" else "http"
        return f"{scheme}://{host}/"

    def _send(
        self, response: Response, *, head: bool, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        status, body = response.status, response.body
        headers = [*response.headers, *extra]
        if response.etag and status == 200:
            etag = _etag(body)
            headers += [("ETag", etag), ("Cache-Control", "no-cache")]
            if _etag_matches(self.headers.get("If-None-Match"), etag):
                status, body = 304, b""
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", response.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors (bad request line, headers too long...) in our own page."""
        self.close_connection = True
        # A request line too broken to name its version would get a bare HTTP/0.9 answer.
        self.request_version = "HTTP/1.1"
        response = error_page(
            code,
            message or "Error",
            explain or "The request could not be understood.",
            site_title=self.server.config.feed.title,
        )
        self._send(response, head=self.command == "HEAD")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- http.server's name
        if not self.server.quiet:
            line = (format % args).translate(_CONTROL)
            sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] {line}\n")


class MonitorServer(ThreadingHTTPServer):
    """The HTTP server of `monitor serve`: one thread per connection, the config attached."""

    daemon_threads = True

    def __init__(self, config: Config, host: str, port: int, *, quiet: bool = False) -> None:
        self.config = config
        self.quiet = quiet
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up in DNS; the address is enough.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    @property
    def authority(self) -> str:
        host = self.server_name
        return f"[{host}]:{self.server_port}" if ":" in host else f"{host}:{self.server_port}"

    @property
    def url(self) -> str:
        return f"http://{self.authority}/"


def make_server(
    config: Config, host: str = "127.0.0.1", port: int = 8080, *, quiet: bool = False
) -> MonitorServer:
    """A bound, not yet serving, server; MonitorError when the address cannot be used."""
    try:
        return MonitorServer(config, host, port, quiet=quiet)
    except OSError as error:
        reason = error.strerror or str(error)
        raise MonitorError(f"cannot listen on {host}:{port}: {reason}") from error


def serve_forever(config: Config, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the socket and return."""
    server = make_server(config, host, port)
    print(f"Serving {server.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # SIGTERM stops the server as Ctrl-C does (KeyboardInterrupt out of its select loop).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
