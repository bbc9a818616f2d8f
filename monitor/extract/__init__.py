"""Body bytes + content type + selectors -> entries: pure (no I/O, no clock), never raises.

A watched page is untrusted input. Whatever bytes it sends (binary garbage, NUL bytes, a lying
charset, 100 000 nested tags, a 10 MB text node, 100 000 rows), extraction returns, in bounded
time: one decode (charset.py), one parse into the HTML5 tree a browser builds (Lexbor through
selectolax: implicit <tbody>, auto-closed <p>, so selectors copied from a browser's developer
tools match the same elements), one selection per selector inside each item (engine.py), and
the text rules of SPEC (text.py). The limits on hostile markup are in limits.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct
from selectolax.lexbor import LexborHTMLParser

from monitor.entry import Entry
from monitor.extract import engine
from monitor.extract.charset import decode_html, is_html
from monitor.extract.text import normalise_space, normalise_text
from monitor.signs import CHALLENGE_WIDGETS, SHORT_TEXT

__all__ = [
    "EXTRACTOR_VERSION",
    "Extraction",
    "decode_html",
    "extract_entries",
    "extract_page",
    "extract_text",
    "is_html",
    "normalise_space",
    "normalise_text",
]

# Goes into the body key: when it changes, stored entries are re-derived silently.
# lexbor-2: a link back to the page itself ("#", "#anchor") is no link (links.own_link).
EXTRACTOR_VERSION = "lexbor-2"
# The start of a page's visible text kept for block-page and soft-404 signs.
TEXT_CHARS = 4000


TYPE_CHECKING = False  # typing's, without importing typing: a parse worker never needs it
if TYPE_CHECKING:
    from typing import Protocol

    class Selectors(Protocol):
        """What extraction reads of monitor.config.Selectors (`next` is optional)."""

        @property
        def item(self) -> str: ...
        @property
        def title(self) -> str | None: ...
        @property
        def link(self) -> str | None: ...
        @property
        def description(self) -> str | None: ...


class Extraction(Struct, frozen=True):
    """What one page says: its entries, which layout found them, its next page, its signs."""

    entries: tuple[Entry, ...]
    layout: int | None  # index into `layouts` of the selector set whose item matched; None: none
    next_url: str | None  # absolute URL of layouts[layout].next's first match, if any
    title: str  # the document <title>, normalised
    heading: str  # the first <h1>, normalised
    text: str  # the start of the visible body text, normalised, at most TEXT_CHARS characters
    # (its text nodes joined by spaces: "<b>Fo</b>o" reads "Fo o" here, unlike in entries)
    challenge: str = ""  # a short page with no entry: the vendor of its captcha widget, if any


def _fields(select: Selectors) -> engine.Fields:
    """The selectors of one layout, each checked: a bad one raises ValueError naming its key."""
    for key in ("item", "title", "link", "description", "next"):
        selector = getattr(select, key, None)
        if selector:
            engine.check_selector(selector, key)
    return engine.Fields(select.item, select.title, select.link, select.description)


def extract_page(
    body: bytes, *, content_type: str | None, base_url: str, layouts: Sequence[Selectors]
) -> Extraction:
    """Everything extraction reads from one page: the first layout whose item matches wins.

    `base_url` is the final URL (after redirects). Never raises on a body; raises ValueError
    only for a selector Lexbor cannot evaluate, a configuration mistake, not the page's.
    """
    fields = [_fields(select) for select in layouts]
    tree = engine.parse(decode_html(body, content_type))
    base = engine.document_base(tree, base_url)
    entries: list[Entry] = []
    layout: int | None = None
    next_url: str | None = None
    for index, field in enumerate(fields):
        items = tree.css(field.item)
        if items:
            layout = index
            entries = engine.read_items(tree, items, field, base, base_url)
            next_selector = getattr(layouts[index], "next", None)
            if next_selector:
                found = tree.css_first(next_selector)
                next_url = engine.href_of(found, base) if found is not None else None
            break
    # Every text node apart: cheap (no marking of the whole page), and for the signs of a
    # block page or a soft 404 a word split at an inline tag ("<b>Fo</b>o") does not matter.
    text = _start_of(
        tree.body.text(deep=True, separator=" ") if tree.body is not None else "", TEXT_CHARS
    )
    return Extraction(
        entries=tuple(entries),
        layout=layout,
        next_url=next_url,
        title=_first_text(tree, "title"),
        heading=_first_text(tree, "h1"),
        text=text,
        challenge="" if entries or len(text) >= SHORT_TEXT else _challenge(tree),
    )


def _challenge(tree: LexborHTMLParser) -> str:
    """The vendor of the first captcha widget on the page, or "" (signs.CHALLENGE_WIDGETS)."""
    for vendor, selector in CHALLENGE_WIDGETS:
        if tree.css_first(selector) is not None:
            return vendor
    return ""


def _first_text(tree: LexborHTMLParser, selector: str) -> str:
    """The normalised text of the first element matching `selector`, or ""."""
    node = tree.css_first(selector)
    if node is None:
        return ""
    engine.mark_blocks(node)
    return engine.node_text(node)


def _start_of(text: str, limit: int) -> str:
    """The first `limit` characters of normalised `text`, normalising no more than needed."""
    size = limit * 2
    while True:
        start = normalise_text(text[:size])
        if len(start) >= limit or size >= len(text):
            return start[:limit].rstrip(" ")
        size *= 4


def extract_entries(
    body: bytes, *, base_url: str, select: Selectors, content_type: str | None = None
) -> list[Entry]:
    """The entries of a page with one selector set, in document order; [] when nothing matches."""
    page = extract_page(body, content_type=content_type, base_url=base_url, layouts=[select])
    return list(page.entries)


def extract_text(body: bytes, *, content_type: str | None, selector: str | None) -> str:
    """An entry page's text: of the elements `selector` matches (joined), or the whole body's.

    An element inside another match is read once, as part of the outer one. Raises ValueError
    only for a selector Lexbor cannot evaluate.
    """
    if selector:
        engine.check_selector(selector, "content")
    tree = engine.parse(decode_html(body, content_type))
    if tree.root is not None:
        engine.mark_blocks(tree.root)
    if not selector:
        return engine.node_text(tree.body) if tree.body is not None else ""
    matches = tree.css(selector)
    owners = engine.Owners({node.mem_id for node in matches})
    outer = [node for node in matches if owners.of(node) is None]
    return normalise_text(" ".join(engine.node_text(node) for node in outer))
