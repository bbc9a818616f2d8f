"""Text helpers shared by every renderer of events: the CLI, the feeds, the web page, status.

Pure: strings in, strings out. Whatever comes from a watched page goes through `esc()`
before it lands in HTML; the plain-text helpers (`event_title`, `describe_event`) return
text that the caller escapes for its medium.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from monitor.diff import DiffOp
from monitor.kinds import kind_info
from monitor.models import Event

TITLE_SNIPPET_CHARS = 80  # an untitled entry is named by this much of its description
TITLE_DETAIL_CHARS = 120  # a page event's title carries this much of its detail
DIFF_CONTEXT_CHARS = 160  # unchanged text kept on each side of a change in a diff
IMPORTED_NOTE = "imported from a web archive"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 event", "2 events"; `plural` for nouns that do not take an s ("entries")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def clip(text: str, limit: int) -> str:
    """The text whole if it fits in `limit` characters, else cut between words with "…"."""
    if len(text) <= limit:
        return text
    room = max(limit - 1, 1)
    cut = text.rfind(" ", 0, room + 1)
    # One very long word (a URL, say) has no boundary worth keeping: cut it hard.
    if cut < room // 2:
        cut = room
    return text[:cut].rstrip(" ,;:.-") + "…"


def esc(text: object) -> str:
    """HTML-escaped text, quotes included (safe in element content and attribute values)."""
    return html.escape(str(text), quote=True)


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host and no white space or control chars."""
    if not url or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


# What a URI keeps as it is: its reserved and unreserved characters, and "%" (a link is
# stored as found, maybe already percent-encoded). The rest (spaces, quotes, <, >, {, |,
# non-ASCII...) is percent-encoded (UTF-8): an href written is a valid URI, and an IRI.
_URI_KEEPS = "!#$%&'()*+,/:;=?@[]~"


def web_iri(url: str | None) -> str | None:
    """An http(s) link as an href: characters a URI cannot hold percent-encoded (a space
    inside it too, as a browser does; the entry keeps its link as found); None for any
    other scheme, or a link with control characters."""
    if not url or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    href = quote(url.strip(), safe=_URI_KEEPS)
    return href if is_web_url(href) else None


def entry_path(entry_id: str) -> str:
    """The entry's timeline, relative to the site's root: "entries/ENTRY_ID"."""
    return f"entries/{quote(entry_id, safe='')}"


def capture_path(capture_id: int) -> str:
    """One archived capture's page (its banner over the body, or the error of a fetch that
    got no answer), relative to the site's root: "captures/ID/view"."""
    return f"captures/{int(capture_id)}/view"


def entry_name(event: Event) -> str:
    """The entry's title, else the start of its description, else its link or id."""
    if event.title:
        return event.title
    if event.description:
        return clip(event.description, TITLE_SNIPPET_CHARS + 1)
    return event.link or event.entry_id or "untitled entry"


def event_title(event: Event) -> str:
    """The title a person reads: "Archived: Film Forward", "Page error on 'active': HTTP 503"."""
    label = kind_info(event.kind).label
    if event.is_page_event:
        title = f"{label} on '{event.page}'"
        detail = " ".join((event.detail or "").split())
        return f"{title}: {clip(detail, TITLE_DETAIL_CHARS)}" if detail else title
    return f"{label}: {entry_name(event)}"


def describe_event(event: Event) -> str:
    """One line for the CLI: kind, page, then the detail or the entry and what changed."""
    return f"{event.kind:<15} {event.page:<10} {event_what(event)}".rstrip()


def event_what(event: Event) -> str:
    """What happened, in one line: the detail of a page event, else the entry and its edits."""
    if event.is_page_event:
        text = event.detail or ""
    else:
        text = event.title or clip(event.description or "", 70)
        if event.is_link_event and event.detail:
            text += f": {event.detail}"
        if event.changes:
            text += f"  ({', '.join(event.changes)} changed)"
        text += f"  [{event.entry_id}]"
    if event.source == "backfill":
        text += f"  ({IMPORTED_NOTE})"
    return text.strip()


def diff_html(ops: Sequence[tuple[DiffOp, str]], *, empty: str = "<em>empty</em>") -> str:
    """A word diff as HTML: removed words in <del>, added in <ins>, long equal runs cut."""
    parts: list[str] = []
    last = len(ops) - 1
    for index, (op, text) in enumerate(ops):
        if op == "equal":
            parts.append(esc(_context(text, first=index == 0, last=index == last)))
        elif op == "delete":
            parts.append(f"<del>{esc(text)}</del>")
        elif op == "insert":
            parts.append(f"<ins>{esc(text)}</ins>")
        else:
            parts.append(f" <em>{esc(text)}</em>")
    return "".join(parts) or empty


def _context(text: str, *, first: bool, last: bool) -> str:
    """An unchanged run as context: only its ends near the changes around it."""
    keep = DIFF_CONTEXT_CHARS
    if len(text) <= 2 * keep + 40:
        return text
    if first and last:  # nothing changed: the start of the text is enough
        return _head(text, keep) + " …"
    head = "" if first else _head(text, keep)
    tail = "" if last else _tail(text, keep)
    return f"{head} … {tail}".strip(" ")


def _head(text: str, keep: int) -> str:
    cut = text.rfind(" ", 0, keep)
    return text[: cut if cut > keep // 2 else keep]


def _tail(text: str, keep: int) -> str:
    start = len(text) - keep
    cut = text.find(" ", start)
    return text[cut + 1 if 0 <= cut < start + keep // 2 else start :]
