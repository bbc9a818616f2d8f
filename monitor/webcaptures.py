"""The HTML of `monitor serve`'s lists and framed captures: `/entries`, `/captures` and
`/captures/ID/view` (a banner over the archived body in a sandboxed iframe), and the Host
check that keeps the server out of reach of DNS rebinding. Pure: rows in, str out.

Every string from the database came from a watched page: it is escaped where it is rendered.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlencode

from monitor.render import esc
from monitor.store.reading import CaptureRow, EntryRow
from monitor.webpages import (
    _entry_href,
    _entry_name,
    _link,
    _table,
    _time,
    layout_html,
)

_HOST_PORT = re.compile(
    r"(?P<name>\[[0-9A-Fa-f:.]{2,45}\]|[^:\[\]]{1,253})(?::(?P<port>[0-9]{1,5}))?"
)
_STATE_TONES = {"active": "good", "archived": "info", "removed": "bad"}


# -- Host check ----------------------------------------------------------------------------


def host_allowed(host: str | None, *, bound: str, port: int, allowed: Sequence[str]) -> bool:
    """Whether a request's Host names this server: the bound address or localhost (with its
    port, or none), or a name of [serve].allowed_hosts (any port). Anything else is refused,
    so that a page reached through a rebound DNS name cannot read the server."""
    match = _HOST_PORT.fullmatch((host or "").strip())
    if match is None:
        return False
    name = match["name"].lower().rstrip(".").strip("[]")
    given = match["port"]
    if name in allowed:
        return True
    if given is not None and int(given) != port:
        return False
    bound = bound.lower().strip("[]")
    if name in (bound, "localhost"):
        return True
    # Bound to every address: any IP literal reaches it (a rebound DNS name never is one).
    if bound in ("0.0.0.0", "::"):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True
    return False


# -- /entries --------------------------------------------------------------------------------


def _state_badge(state: str) -> str:
    return f'<span class="badge {_STATE_TONES.get(state, "info")}">{esc(state)}</span>'


def _filter_links(base: str, key: str, values: Sequence[str], chosen: str | None) -> str:
    links = []
    for value in (None, *values):
        label = value or "all"
        href = base + ("?" + urlencode({key: value}) if value else "")
        if value == chosen:
            links.append(f'<strong aria-current="page">{esc(label)}</strong>')
        else:
            links.append(f'<a href="{esc(href)}">{esc(label)}</a>')
    return f'<nav class="pager" aria-label="Filter by {key}">' + " ".join(links) + "</nav>"


def entries_html(
    rows: Sequence[EntryRow], state: str | None, states: Sequence[str], *, site_title: str
) -> str:
    """`/entries`: every entry as it stands now (or those in one state), with its timeline link."""
    cells = [
        [
            f'<a href="{_entry_href(r.id)}">{esc(_entry_name(r.title, r.description, r.id))}</a>',
            _state_badge(r.state),
            esc(r.page),
            _time(r.last_changed),
            _link(r.link, "on the site ↗") if r.link else '<span class="muted">none</span>',
        ]
        for r in rows
    ]
    which = f" ({esc(state)})" if state else ""
    parts = [f"<h1>Entries{which}</h1>", _filter_links("/entries", "state", states, state)]
    if cells:
        parts.append(f"<p>{len(cells)} entries: active first, then archived, then removed.</p>")
        parts.append(_table(["Entry", "State", "Page", "Last changed", "Link"], cells))
    else:
        parts.append("<p>No entries here yet.</p>")
    return layout_html(f"Entries{' ' + state if state else ''}", "\n".join(parts),
                       site_title=site_title)  # fmt: skip


def ambiguous_html(typed: str, candidates: Sequence[str], *, site_title: str) -> str:
    """An id prefix shared by several entries: the candidates, each a link."""
    items = "".join(f'<li><a href="{_entry_href(c)}"><code>{esc(c)}</code></a></li>'
                    for c in candidates)  # fmt: skip
    body = (
        f"<h1>Several entries</h1><p>Several entry ids start with <code>{esc(typed)}</code>:"
        f"</p><ul>{items}</ul>"
    )
    return layout_html("Several entries", body, site_title=site_title)


# -- /captures and /captures/ID/view -------------------------------------------------------------


def _status(capture: CaptureRow) -> str:
    if capture.status is None:
        return f'<span class="bad">no answer: {esc(capture.error or "")}</span>'
    what = f"HTTP {int(capture.status)}"
    if capture.record_type == "revisit":
        original = capture.original_capture_id
        what += " (unchanged" + (f", same body as #{int(original)}" if original else "") + ")"
    return esc(what)


def captures_html(
    rows: Sequence[CaptureRow], page: str | None, pages: Sequence[str], *, site_title: str
) -> str:
    """`/captures`: the archived captures, newest first, each linked to its framed view."""
    cells = [
        [
            f'<a href="/captures/{int(c.id)}/view">#{int(c.id)}</a>',
            _time(c.at),
            esc(c.page),
            _status(c),
            esc(c.target_uri),
        ]
        for c in rows
    ]
    which = f" of {esc(page)}" if page else ""
    parts = [f"<h1>Captures{which}</h1>", _filter_links("/captures", "page", pages, page)]
    if cells:
        parts.append(f"<p>{len(cells)} captures, newest first.</p>")
        parts.append(_table(["Capture", "Time", "Page", "Answer", "URL"], cells))
    else:
        parts.append("<p>No captures here yet.</p>")
    return layout_html("Captures", "\n".join(parts), site_title=site_title)


def capture_view_html(
    capture: CaptureRow,
    previous: CaptureRow | None,
    following: CaptureRow | None,
    *,
    site_title: str,
) -> str:
    """A banner (URL, time, status, previous/next capture of the page) over the archived body,
    which is shown in a sandboxed iframe: nothing in it runs."""
    nav = []
    if previous is not None:
        nav.append(f'<a href="/captures/{int(previous.id)}/view" rel="prev">← previous capture</a>')
    if following is not None:
        nav.append(f'<a href="/captures/{int(following.id)}/view" rel="next">next capture →</a>')
    nav.append(f'<a href="/captures?{esc(urlencode({"page": capture.page}))}">all of '
               f"{esc(capture.page)}</a>")  # fmt: skip
    rows = [
        ("URL", _link(capture.target_uri)),
        ("Time", _time(capture.at)),
        ("Answer", _status(capture)),
        ("Page", esc(capture.page)),
    ]
    fields = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    parts = [
        f"<h1>Capture #{int(capture.id)} of {esc(capture.page)}</h1>",
        f'<dl class="banner">{fields}</dl>',
        '<nav class="pager" aria-label="Other captures">' + " ".join(nav) + "</nav>",
    ]
    if capture.warc_file is None:
        parts.append(f"<p>Nothing was archived: {esc(capture.error or 'no answer')}.</p>")
    else:
        body = f"/captures/{int(capture.id)}"
        parts.append(
            f'<p class="muted">As received, with nothing in it allowed to run or load. '
            f'<a href="{body}">The body alone</a>.</p>'
            f'<iframe class="capture" src="{body}" sandbox="" referrerpolicy="no-referrer" '
            f'title="The archived page, capture #{int(capture.id)}"></iframe>'
        )
    return layout_html(f"Capture #{int(capture.id)}", "\n".join(parts), site_title=site_title)


def neighbours(
    capture: CaptureRow, same_page: Sequence[CaptureRow]
) -> tuple[CaptureRow | None, CaptureRow | None]:
    """The capture of the same URL before and after this one (final exchanges only), by id:
    a listing's captures in turn, not its entries' own pages (captured under its name too)."""
    mine = [c for c in same_page if c.url == capture.url and (c.final or c.id == capture.id)]
    ordered = sorted(mine, key=lambda c: c.id)
    ids = [c.id for c in ordered]
    if capture.id not in ids:
        return None, None
    at = ids.index(capture.id)
    previous = ordered[at - 1] if at > 0 else None
    following = ordered[at + 1] if at + 1 < len(ordered) else None
    return previous, following
