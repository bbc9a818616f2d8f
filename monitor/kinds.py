"""The event kinds of SPEC.md, spelt once: name, label, tone, scope and meaning of each.

Every renderer (CLI, feeds, web page, status) reads this table, so a new kind is added
here and nowhere else. `kind_info()` never raises: an event of a kind this version does
not know (a newer database, a typo in a stored row) still renders, with a neutral record.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

EntryEventKind = Literal["added", "changed", "archived", "restored", "removed"]
PageEventKind = Literal["page-error", "page-recovered", "page-gone", "page-anomaly"]
LinkEventKind = Literal["link-gone", "link-recovered", "link-changed"]
EventKind = Literal[
    "added",
    "changed",
    "archived",
    "restored",
    "removed",
    "page-error",
    "page-recovered",
    "page-gone",
    "page-anomaly",
    "link-gone",
    "link-recovered",
    "link-changed",
]
Scope = Literal["entry", "page", "link"]
Tone = Literal["good", "bad", "warn", "info"]


class KindInfo(Struct, frozen=True):
    """One kind of event: how it is titled, coloured, grouped and explained."""

    name: str
    label: str  # the title prefix in the feed and on the web page: "Archived"
    tone: Tone  # colour / CSS class
    scope: Scope  # what the event is about: an entry, a listing page, an entry's own page
    meaning: str  # one sentence for docs and help


_KINDS: tuple[KindInfo, ...] = (
    KindInfo("added", "Added", "good", "entry", "An entry never seen before appeared."),
    KindInfo(
        "changed", "Changed", "warn", "entry",
        "An entry's title, description or link changed; the event carries before and after.",
    ),
    KindInfo("archived", "Archived", "info", "entry", "An entry moved to the archived list."),
    KindInfo("restored", "Restored", "good", "entry", "An entry is active again."),
    KindInfo("removed", "Removed", "bad", "entry", "An entry is on no page any more."),
    KindInfo(
        "page-error", "Page error", "bad", "page",
        "A page could not be fetched or extracted; its entries keep their state.",
    ),
    KindInfo(
        "page-recovered", "Page recovered", "good", "page",
        "A page answered normally again after an error, a 404 or an anomaly.",
    ),
    KindInfo("page-gone", "Page gone", "bad", "page", "A page answered 404 or 410."),
    KindInfo(
        "page-anomaly", "Page anomaly", "warn", "page",
        "A page listed far fewer entries than its normal count.",
    ),
    KindInfo("link-gone", "Link gone", "bad", "link", "An entry's own page is confirmed gone."),
    KindInfo(
        "link-recovered", "Link recovered", "good", "link", "An entry's own page answers again."
    ),
    KindInfo(
        "link-changed", "Link changed", "warn", "link",
        "The watched text of an entry's own page changed.",
    ),
)
KINDS: dict[str, KindInfo] = {info.name: info for info in _KINDS}

ENTRY_EVENT_KINDS: tuple[EntryEventKind, ...] = (
    "added",
    "changed",
    "archived",
    "restored",
    "removed",
)
PAGE_EVENT_KINDS: tuple[PageEventKind, ...] = (
    "page-error",
    "page-recovered",
    "page-gone",
    "page-anomaly",
)
LINK_EVENT_KINDS: tuple[LinkEventKind, ...] = ("link-gone", "link-recovered", "link-changed")
EVENT_KINDS: tuple[EventKind, ...] = (*ENTRY_EVENT_KINDS, *PAGE_EVENT_KINDS, *LINK_EVENT_KINDS)


def kind_info(name: str) -> KindInfo:
    """The record of a kind; for an unknown one a neutral record (never raises)."""
    known = KINDS.get(name)
    if known is not None:
        return known
    # Scope by prefix, so that a future "page-…" kind still reads as a page event.
    scope: Scope = "entry"
    if name.startswith("page-"):
        scope = "page"
    elif name.startswith("link-"):
        scope = "link"
    label = name.replace("-", " ").replace("_", " ").strip().capitalize() or "Event"
    return KindInfo(name, label, "info", scope, "An event of a kind this version does not know.")
