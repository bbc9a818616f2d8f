"""Events -> the text of a notification, readable at a glance (pure: no I/O, no clock).

Messages are plain text (Apprise converts it for HTML and Markdown receivers, escaping
as it goes). Text from watched pages is clipped and stripped of control characters, so
a hostile title cannot forge lines of the message or flood a receiver.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from msgspec import Struct

from monitor.models import Event, format_time
from monitor.render import capture_path, entry_path

TITLE_CHARS = 120  # a subject line, a chat preview
VALUE_CHARS = 240  # one side of a before/after
DESCRIPTION_CHARS = 300
DIGEST_TITLES = 5  # names shown in a digest's title before "..."

# Same words as the feed's titles ("Archived: Film Forward", "Page error: active");
# a kind not listed here (a newer one) is spelt from its name: "link-gone" -> "Link gone".
_LABELS = {"page-error": "Page error", "page-recovered": "Page recovered"}


class Message(Struct, frozen=True):
    """One notification: a title (subject) and a plain-text body."""

    title: str
    body: str


def event_urn(event_id: str) -> str:
    """The event's id as receivers see it for dropping repeats: urn:uuid:<id>."""
    try:
        return uuid.UUID(event_id).urn
    except ValueError:
        return "urn:uuid:" + quote(clean(event_id, 200), safe="-")


def event_title(event: Event) -> str:
    """ "Archived: Film Forward", "Page gone: active": the kind, then what it is about."""
    label = _LABELS.get(event.kind, event.kind.replace("-", " ").capitalize())
    if event.kind.startswith("page-"):
        return f"{label}: {clean(event.page, TITLE_CHARS)}"
    name = event.title or event.description or event.link or event.entry_id or "untitled entry"
    return f"{label}: {clean(name, TITLE_CHARS)}"


def event_message(event: Event, base_url: str | None) -> Message:
    """The message for one event: what happened, before/after, links, and its urn:uuid id."""
    title = event_title(event)
    return Message(title=title, body="\n".join([title, "", *_event_lines(event, base_url)]))


def digest_message(events: Sequence[Event], base_url: str | None) -> Message:
    """One message for a cycle's events: a count by kind, then each event with its id."""
    counts = Counter(e.kind for e in events)
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    names = [event_title(e) for e in events[:DIGEST_TITLES]]
    more = f" and {len(events) - DIGEST_TITLES} more" if len(events) > DIGEST_TITLES else ""
    noun = "change" if len(events) == 1 else "changes"
    title = clean(f"{len(events)} {noun}: " + "; ".join(names) + more, 2 * TITLE_CHARS)
    body = [f"{len(events)} {noun} ({summary})"]
    for event in events:
        body += ["", f"- {event_title(event)}"]
        body += [f"  {line}" for line in _event_lines(event, base_url)]
    return Message(title=title, body="\n".join(body))


def probe_message(now: datetime) -> Message:
    """The message `monitor notify test` sends: says what it is, carries no event."""
    return Message(
        title="monitor: test notification",
        body=f"A test message from monitor, sent at {format_time(now)}. "
        "Notifications of this target will look like this one.",
    )


def _event_lines(event: Event, base_url: str | None) -> list[str]:
    lines = [f"Page: {clean(event.page, TITLE_CHARS)}"]
    if event.link:
        lines.append(f"Link: {clean(event.link, VALUE_CHARS)}")
    for name, change in sorted((event.changes or {}).items()):
        before = clean(change.before, VALUE_CHARS) if change.before is not None else "(none)"
        after = clean(change.after, VALUE_CHARS) if change.after is not None else "(none)"
        lines.append(f"{clean(name, 40).capitalize()}: {before} -> {after}")
    if event.kind == "added" and event.description:
        lines.append(f"Description: {clean(event.description, DESCRIPTION_CHARS)}")
    if event.detail:
        lines.append(f"Detail: {clean(event.detail, VALUE_CHARS)}")
    if base_url:
        root = base_url if base_url.endswith("/") else base_url + "/"
        if event.entry_id:
            lines.append(f"Entry: {root}{entry_path(event.entry_id)}")
        if event.capture_id is not None:
            lines.append(f"Capture: {root}{capture_path(event.capture_id)}")
    lines.append(f"At: {format_time(event.at)}")
    lines.append(f"Id: {event_urn(event.id)}")
    return lines


def clean(text: str, limit: int) -> str:
    """`text` on one line (control characters and runs of spaces made one space), clipped."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    if cut < limit // 2:  # one long word (a URL): cut it hard
        cut = limit - 1
    return flat[:cut].rstrip(" ,;:.-") + "…"
