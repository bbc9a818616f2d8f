"""The HTML of `monitor serve`: the stylesheet, the layout, the change log, an entry's timeline
and word diffs. Pure functions: plain values in, str out; no Store, no I/O (web.py reads and
answers).

Every string from the database came from a watched page: it is escaped where it is rendered
(html.escape, quote=True) and only an http(s) URL ever becomes a link.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from msgspec import Struct

from monitor.diff import diff_words
from monitor.kinds import kind_info
from monitor.models import EVENT_KINDS, Change, Event, format_time
from monitor.render import IMPORTED_NOTE, clip, web_iri
from monitor.render import count as _count
from monitor.render import diff_html as _diff_ops_html
from monitor.render import esc as _esc

if TYPE_CHECKING:  # the row types only: rendering never opens the database
    from monitor.store.detail_rows import LinkCheckRow, LinkMemory
    from monitor.store.reading import CheckRow, EntryRow, PageRow, VersionRow

_REL = 'rel="nofollow noopener noreferrer"'

CSS = """
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
iframe.capture{display:block;width:100%;height:75vh;border:1px solid var(--line)}
.site nav a{margin-right:.5rem}
@media (max-width:40rem){.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;
clip-path:inset(50%)}
.stack tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}
.stack td{display:block;border:0;padding:.1rem .25rem}
.stack td::before{content:attr(data-label) ": ";font-weight:600}
dl{grid-template-columns:1fr}dd{margin-bottom:.4rem}}
"""
# The stylesheet is allowed by its hash (web.py's Content-Security-Policy): no inline style
# attribute or script can run. Computed here, from the very string every page embeds.
CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

_STATUS_LABELS = {
    "ok": ("OK", "good"),
    "new": ("not checked yet", "info"),
    "error": ("error", "bad"),
    "gone": ("gone (404/410)", "bad"),
    "anomaly": ("anomaly", "warn"),
}


# -- rendering helpers --------------------------------------------------------------------


def _link(url: str | None, text: str | None = None) -> str:
    """An outside link when `url` is http(s); otherwise the URL as plain, escaped text."""
    if not url:
        return '<span class="muted">none</span>'
    shown = _esc(text if text is not None else url)
    href = web_iri(url)
    if href is not None:
        return f'<a href="{_esc(href)}" {_REL}>{shown}</a>'
    return shown


def _time(at: datetime) -> str:
    stamp = format_time(at)
    return f'<time datetime="{stamp}">{stamp[:10]} {stamp[11:16]}&nbsp;UTC</time>'


def _stored_time(at: datetime | str | None) -> str:
    """A time (or format_time's output), or "never"."""
    if not at:
        return '<span class="muted">never</span>'
    text = at if isinstance(at, str) else format_time(at)
    return f'<time datetime="{_esc(text)}">{_esc(text[:10])} {_esc(text[11:16])}&nbsp;UTC</time>'


def _entry_name(title: str | None, description: str | None, fallback: str) -> str:
    return title or clip(description or "", 80) or fallback


def _entry_href(entry_id: str) -> str:
    return f"/entries/{quote(entry_id, safe='')}"


def _kind_badge(kind: str) -> str:
    tone = kind_info(kind).tone
    return f'<span class="badge {tone}">{_esc(kind)}</span>'


def diff_html(before: str, after: str) -> str:
    """A word diff of two texts as HTML: removed words in <del>, added words in <ins>."""
    return _diff_ops_html(diff_words(before, after), empty='<span class="muted">empty</span>')


def _change_items(changes: Mapping[str, Change | tuple[str | None, str | None]]) -> str:
    """A <ul> with one item per changed field: a word diff for text, before → after otherwise."""
    items = []
    for name, change in changes.items():
        before, after = (change.before, change.after) if isinstance(change, Change) else change
        if name in ("title", "description", "content"):
            body = diff_html(before or "", after or "")
        elif name == "link":
            body = f"{_link(before)} → {_link(after)}"
        else:
            body = f"<del>{_esc(before or '')}</del> → <ins>{_esc(after or '')}</ins>"
        items.append(f"<li><strong>{_esc(name)}</strong>: {body}</li>")
    return '<ul class="changes">' + "".join(items) + "</ul>"


def layout_html(title: str, body: str, *, site_title: str) -> str:
    """A whole HTML page: feed autodiscovery, the stylesheet, the site header and `body`."""
    site = _esc(site_title)
    feeds = (
        f'<link rel="alternate" type="application/atom+xml" title="{site} (Atom)" '
        'href="/feed.atom">\n'
        f'<link rel="alternate" type="application/feed+json" title="{site} (JSON Feed)" '
        'href="/feed.json">\n'
        f'<link rel="alternate" type="application/rss+xml" title="{site} (RSS)" href="/feed.rss">'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_esc(title)}</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
{feeds}
<style>{CSS}</style>
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header class="site">
<a href="/">{site}</a>
<nav aria-label="Sections"><a href="/">Change log</a> <a href="/entries">Entries</a>
<a href="/captures">Captures</a></nav>
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


def error_html(heading: str, message: str, *, site_title: str) -> str:
    """An HTML error page; `heading` and `message` are escaped here."""
    home = '<p><a href="/">The change log</a></p>'
    body = f"<h1>{_esc(heading)}</h1>\n<p>{_esc(message)}</p>\n{home}"
    return layout_html(heading, body, site_title=site_title)


# -- the change log (/) -------------------------------------------------------------------


class LogQuery(Struct, frozen=True):
    """The filters of `/` and where its page starts: before event seq `before` (keyset)."""

    kinds: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    before: int | None = None  # only events with a smaller seq; None: the newest ones

    def href(self, before: int | None = None) -> str:
        """The URL of the log with these filters, starting before seq `before`."""
        params = [("kind", k) for k in self.kinds] + [("page", p) for p in self.pages]
        if before is not None:
            params.append(("before", str(before)))
        return "/?" + urlencode(params) if params else "/"


def _event_cell(event: Event, *, link_entry: bool = True) -> str:
    """What happened, for one row of an events table."""
    parts, links = [], []
    if event.is_page_event:
        detail = _esc(event.detail or "no detail recorded")
        parts.append(f"<strong>Page '{_esc(event.page)}'</strong>: {detail}")
    else:
        name = _esc(_entry_name(event.title, event.description, event.entry_id or "entry"))
        if link_entry and event.entry_id:
            parts.append(f'<a href="{_entry_href(event.entry_id)}">{name}</a>')
        else:
            parts.append(f"<strong>{name}</strong>")
        if event.description and event.description != event.title:
            parts.append(f'<p class="muted">{_esc(clip(event.description, 160))}</p>')
        if event.changes:
            fields = ", ".join(_esc(name) for name in event.changes)
            summary = f"<summary>Changed: {fields}</summary>"
            parts.append(f"<details>{summary}{_change_items(event.changes)}</details>")
        if web_iri(event.link) is not None:
            links.append(_link(event.link, "page on the site ↗"))
    if event.is_link_event and event.detail:
        parts.append(f"<p>{_esc(event.detail)}</p>")
    if event.source == "backfill":
        parts.append(f'<p class="muted">({IMPORTED_NOTE})</p>')
    if event.capture_id is not None:
        links.append(f'<a href="/captures/{int(event.capture_id)}/view">archived copy</a>')
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


def _pages_status(pages: Sequence[PageRow], last: CheckRow | None) -> str:
    """The header of `/`: when the last check ran and how each page fared."""
    if last is None:
        when = "<p>No check has run yet: run <code>monitor check</code>.</p>"
    else:
        when = (
            f"<p>Last check: {_stored_time(last.finished_at or last.started_at)} "
            f"({_count(last.events, 'event')}).</p>"
        )
    rows = []
    for page in pages:
        label, tone = _STATUS_LABELS.get(page.status, (page.status, "info"))
        rows.append(
            [
                _link(page.url, page.name),
                _esc(page.role),
                f'<span class="badge {tone}">{_esc(label)}</span>',
                str(page.entry_count),
                _stored_time(page.last_checked_at),
                _esc(page.last_detail or ""),
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


def log_html(
    site_title: str,
    pages: Sequence[PageRow],
    last_check: CheckRow | None,
    query: LogQuery,
    page_names: Sequence[str],
    events: Sequence[Event],
    *,
    older_before: int | None,
) -> str:
    """`/`: the pages' status, the filter form and `events` (newest first); `older_before` is
    the seq the "Older events" link starts before, None when there are no older events."""
    parts = [f"<h1>{_esc(site_title)}</h1>", _pages_status(pages, last_check)]
    parts.append('<h2 id="log">Change log</h2>' + _filter_form(query, page_names))
    paged = query.before is not None or older_before is not None
    if events:
        counted = _count(len(events), "event")
        if paged:
            counted += f" from {_time(events[-1].at)} to {_time(events[0].at)}"
        parts.append(f"<p>{counted}, newest first.</p>")
        parts.append(events_table(events))
    elif query.kinds or query.pages or query.before is not None:
        parts.append("<p>No events match these filters on this page.</p>")
    else:
        parts.append(
            "<p>No events yet. The first check of a page is its baseline: it records the "
            "entries and reports no events; later checks report what changed.</p>"
        )
    links = []
    if query.before is not None:
        links.append(f'<a href="{_esc(query.href())}" rel="first">← Newest events</a>')
    if older_before is not None:
        older = _esc(query.href(older_before))
        links.append(f'<a href="{older}" rel="next">Older events →</a>')
    if links:
        nav = '<nav class="pager" aria-label="Pages of the change log">'
        parts.append(nav + "".join(links) + "</nav>")
    heading = site_title if query.before is None else f"{site_title} (older events)"
    return layout_html(heading, "\n".join(parts), site_title=site_title)


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


def entry_html(
    entry: EntryRow,
    versions: Sequence[VersionRow],
    events: Sequence[Event],
    *,
    site_title: str,
    link: LinkMemory | None = None,
    link_checks: Sequence[LinkCheckRow] = (),
) -> str:
    """`/entries/ID`: the entry now, every version with the difference from the one before,
    its events (given oldest first), and its own page's checks ([pages.detail])."""
    name = _entry_name(entry.title, entry.description, entry.id)
    state = f'<span class="badge {kind_info(entry.state).tone}">{_esc(entry.state)}</span>'
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
    parts += [_version_section(v, versions[i - 1] if i else None) for i, v in enumerate(versions)]
    parts.append(f'<h2 id="events">Events ({len(events)}, oldest first)</h2>')
    if events:
        parts.append(events_table(events, link_entry=False))
    else:
        parts.append("<p>None: the entry has not changed since it was first recorded.</p>")
    if link is not None:
        parts.append(_entry_page_section(link, link_checks))
    return layout_html(name, "\n".join(parts), site_title=site_title)


def _entry_page_section(link: LinkMemory, checks: Sequence[LinkCheckRow]) -> str:
    """The entry's own page: its status now and every check of it, newest first."""
    label, tone = _STATUS_LABELS.get(link.status, (link.status, "info"))
    due = _time(link.next_due_at) if link.next_due_at else "no longer checked"
    rows = []
    for checked in reversed(checks):
        capture = (
            f'<a href="/captures/{int(checked.capture_id)}">archived copy</a>'
            if checked.capture_id is not None
            else ""
        )
        rows.append([_time(checked.at), _esc(checked.status), _esc(checked.detail or ""), capture])
    return (
        f'<h2 id="entry-page">Its page ({len(checks)} checks)</h2>'
        f"<p>{_link(link.url)}: <span class=\"badge {tone}\">{_esc(label)}</span>; "
        f"next check {due}</p>"
        + _table(["Time", "Status", "What it answered", "Capture"], rows)
    )
