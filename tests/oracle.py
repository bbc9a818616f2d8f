"""The oracle: the BeautifulSoup + lxml extraction monitor used before Lexbor, kept for tests.

The differential tests (test_extract_engines.py) run it against monitor.extract on the same
pages: the two must give the same entries except where the HTML5 tree is the right one. It
shares the package's charset, link and text rules, so only the engine is compared.

The original module docstring follows.

Body bytes + content type + selectors -> entries: pure (no I/O, no clock), never raises.

A watched page is untrusted input. Whatever bytes it sends (binary garbage, NUL bytes, a lying
charset, 100 000 nested tags, a 5 MB text node, 100 000 rows), extraction returns a list of
entries, possibly empty, in time linear in the size of the page: one decode, one parse with
lxml, one CSS selection per selector (inside each entry, or over the page when entries nest),
one walk over each entry's own part of the tree.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Container, Iterator, Sequence
from functools import lru_cache

import soupsieve
from bs4 import BeautifulSoup, Tag
from bs4.element import CData, NavigableString, PageElement
from bs4.exceptions import ParserRejectedMarkup

from monitor.config import Selectors
from monitor.extract.charset import decode_html
from monitor.extract.links import absolute_link, own_link
from monitor.extract.text import CONTROLS as _CONTROLS
from monitor.extract.text import normalise_text
from monitor.models import Entry

# -- text --------------------------------------------------------------------------------------

# Elements whose text runs on with the text around them; every other element (p, div, li, td,
# h1, unknown custom elements...) and <br> separate words, as a browser lays them out.
_INLINE_TAGS = frozenset(
    "a abbr acronym b bdi bdo big blink cite code data del dfn em font i ins kbd label mark "
    "nobr q s samp small span strike strong sub sup time tt u var wbr".split()
)
# Their contents are code or inert markup, never shown as text.
_HIDDEN_TAGS = frozenset({"script", "style", "template"})
# Exactly the string types BeautifulSoup's get_text() keeps: not comments, doctypes, processing
# instructions, nor the Script/Stylesheet/TemplateString/ruby-annotation subclasses.
_TEXT_TYPES = (NavigableString, CData)


def _clean_text(text: str) -> str:
    """Extracted text as stored: the package's text rules, so only the engine differs."""
    return normalise_text(text)


def _element_text(root: Tag, skip: Container[int], exclude: Tag | None = None) -> str:
    """The text of `root`'s descendants, block boundaries and <br> as spaces.

    Elements whose id() is in `skip` (entries nested in this one) and `exclude` (the title) are
    left out, as a word break. Iterative: 100 000 nested elements cannot exhaust the stack.
    """
    parts: list[str] = []
    # Each level: the children still to visit, and whether leaving it ends a block.
    stack: list[tuple[Iterator[PageElement], bool]] = [(iter(root.contents), False)]
    while stack:
        children, is_block = stack[-1]
        node = next(children, None)
        if node is None:
            stack.pop()
            if is_block:
                parts.append(" ")
        elif isinstance(node, Tag):
            if node is exclude or id(node) in skip:
                parts.append(" ")
            elif node.name not in _HIDDEN_TAGS:
                block = node.name not in _INLINE_TAGS
                if block:
                    parts.append(" ")
                stack.append((iter(node.contents), block))
        elif isinstance(node, NavigableString) and type(node) in _TEXT_TYPES:
            parts.append(node)
    return _clean_text("".join(parts))


def _own_elements(root: Tag, skip: Container[int]) -> Iterator[Tag]:
    """`root`'s descendant elements in document order, not entering those whose id() is in skip."""
    stack: list[Iterator[PageElement]] = [iter(root.contents)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif isinstance(node, Tag) and id(node) not in skip:
            yield node
            stack.append(iter(node.contents))


# -- links -------------------------------------------------------------------------------------

_BASE_TAG = re.compile(r"<base[\s/>]", re.IGNORECASE)


def _document_base(soup: BeautifulSoup, text: str, base_url: str) -> str:
    """The URL relative links resolve against: the first <base href> if http(s), else base_url."""
    if not _BASE_TAG.search(text):  # skip a tree search on the pages (nearly all) without one
        return base_url
    base = soup.find("base", href=True)
    href = base.get("href") if isinstance(base, Tag) else None
    if isinstance(href, str):
        return absolute_link(href, base_url) or base_url
    return base_url


def _link_of(element: Tag, base_url: str, skip: Container[int]) -> str | None:
    """The link of the element matched by select.link: its href, or its first a[href]'s."""
    href = element.get("href")
    if href is None:
        anchor = next(
            (e for e in _own_elements(element, skip) if e.name == "a" and e.has_attr("href")),
            None,
        )
        href = anchor.get("href") if anchor is not None else None
    return absolute_link(href, base_url) if isinstance(href, str) else None


# -- selection ---------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _compile(selector: str, key: str) -> soupsieve.SoupSieve:
    """A compiled CSS selector; a bad one is a configuration mistake, named as such."""
    try:
        return soupsieve.compile(selector)
    except soupsieve.SelectorSyntaxError as exc:
        raise ValueError(f"select.{key}: invalid CSS selector {selector!r}: {exc}") from exc


# Per-item selection starts each select_one with a walk from the item to the root (soupsieve
# finds the document that way), so it stays linear only while items sit this shallow on average.
# The IMLS pages' rows are 15 levels deep; rows deeper than this on average take the
# document-wide way, which walks no element twice (3,000 rows under 5,000 <div>s: 0.3 s, where
# per-item selection takes 6 s).
_MAX_MEAN_ITEM_DEPTH = 64


def _items_apart(items: Sequence[Tag], item_ids: Container[int]) -> bool:
    """True when no item is inside another and items sit shallow: per-item selection is exact.

    Each item's ancestors are walked up to the first one already seen, so the check is linear.
    """
    depth_of: dict[int, int] = {}  # element id -> its depth (the root is 1); item ancestors only
    budget = _MAX_MEAN_ITEM_DEPTH * len(items)
    for item in items:
        path: list[int] = []
        node = item.parent
        while node is not None and id(node) not in depth_of:
            if id(node) in item_ids:
                return False
            path.append(id(node))
            node = node.parent
        depth = depth_of[id(node)] if node is not None else 0
        for node_id in reversed(path):
            depth += 1
            depth_of[node_id] = depth
        budget -= depth + 1
        if budget < 0:
            return False
    return True


def _first_in_items(
    soup: BeautifulSoup,
    items: Sequence[Tag],
    item_ids: Container[int],
    selector: str,
    key: str,
    apart: bool,
) -> dict[int, Tag]:
    """For each item (by id), the first element matching `selector` inside it.

    When items are `apart` (none inside another), a select_one per item: it looks at each
    item's own elements only, where one selection over the document also matches every menu
    link. Otherwise one selection over the whole document, each match given to its nearest
    enclosing item: an entry nested inside another (a page whose rows are never closed) keeps
    its own title, link and text, and the outer entry does not take them. Linear, where a
    select_one per item walks to the root each time and goes quadratic on such a page (each
    nested row is one level deeper than the last).
    """
    compiled = _compile(selector, key)
    # :scope is relative to each item: only a per-item select can honour it.
    if apart or ":scope" in selector:
        found = ((id(item), compiled.select_one(item)) for item in items)
        return {item_id: match for item_id, match in found if match is not None}
    owner_of: dict[int, int | None] = {}  # element id -> id of its nearest enclosing item
    first: dict[int, Tag] = {}
    for match in compiled.select(soup):
        path: list[int] = []
        owner: int | None = None
        node = match.parent
        while node is not None:
            node_id = id(node)
            if node_id in item_ids:
                owner = node_id
                break
            if node_id in owner_of:
                owner = owner_of[node_id]
                break
            path.append(node_id)
            node = node.parent
        for node_id in path:  # remembered, so no element is walked twice: linear overall
            owner_of[node_id] = owner
        if owner is not None and owner not in first:
            first[owner] = match
    return first


def _entries_from(text: str, parser: str, base_url: str, select: Selectors) -> list[Entry]:
    """Parse once with `parser`, select once per selector, build one Entry per item."""
    # A big page's tree is hundreds of thousands of new objects, which the cyclic GC would walk
    # again and again as it grows (a quarter of the time on a 10,000-entry page), though none of
    # it is garbage before the end. So the GC pauses for this page (harmless to the coroutines
    # waiting meanwhile), and the tree is taken apart at the end so that reference counting
    # frees it at once: no collection ever walks it, and trees do not pile up between them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    soup: BeautifulSoup | None = None
    try:
        soup = BeautifulSoup(text, parser)
        return _entries_of(soup, text, base_url, select)
    finally:
        if soup is not None:
            _take_apart(soup)
        if gc_was_enabled:
            gc.enable()


def _take_apart(soup: BeautifulSoup) -> None:
    """Break every link of a parsed tree (its reference cycles), as Tag.decompose() does.

    soup.decompose() itself stops at the root, which is not linked to its first child; and
    decompose() on each top-level child looks its index up, quadratic with html.parser on a page
    of 100 000 top-level rows. One walk along the document order instead, each element's
    attributes cleared once it has been passed.
    """
    for element in soup.descendants:  # the walk reads the next element before yielding this one
        element.__dict__.clear()
    soup.__dict__.clear()


def _entries_of(soup: BeautifulSoup, text: str, base_url: str, select: Selectors) -> list[Entry]:
    """One Entry per item of a parsed page, in document order."""
    items: list[Tag] = _compile(select.item, "item").select(soup)
    item_ids = {id(item) for item in items}
    apart = _items_apart(items, item_ids)
    found = {
        key: _first_in_items(soup, items, item_ids, selector, key, apart) if selector else {}
        for key, selector in (
            ("title", select.title),
            ("link", select.link),
            ("description", select.description),
        )
    }
    base = _document_base(soup, text, base_url)
    # Entries nested in an entry are theirs, not its: every walk below skips all items (a walk
    # never meets its own item, which is where it starts or above).
    nested = item_ids
    entries = []
    for item in items:
        item_id = id(item)
        title_element = found["title"].get(item_id)
        title = _element_text(title_element, nested) if title_element is not None else ""
        link_element = found["link"].get(item_id)
        link = _link_of(link_element, base, nested) if link_element is not None else None
        link = own_link(link, base_url)
        if select.description:
            element = found["description"].get(item_id)
            description = _element_text(element, nested) if element is not None else ""
        else:
            # The item's text less the title element's own text (not a string replace, which
            # would also cut the title's words out of a sentence that quotes them).
            description = _element_text(item, nested, exclude=title_element)
        if title or link or description:  # a skeleton item is not an entry (SPEC)
            entries.append(Entry(title=title, link=link, description=description))
    return entries


# -- the stage ---------------------------------------------------------------------------------

_XML_DECLARATION = re.compile(r"<\?xml[^>]*>?", re.IGNORECASE)


def _prepare(text: str) -> str:
    """Decoded text made safe to hand to BeautifulSoup.

    Control characters go (lxml turns a NUL into U+FFFD, and none is ever text). XML
    declarations, meaningless in HTML, become a space: BeautifulSoup warns about them, and a
    warning must not reach the monitor's log (or fail a test run with warnings as errors). So does
    a short document with no "<" and no newline, which BeautifulSoup takes for a file name or URL.
    """
    text = _XML_DECLARATION.sub(" ", _CONTROLS.sub("", text))
    if len(text) <= 256 and "<" not in text and "\n" not in text:
        text += "\n"
    return text


def extract_entries(
    body: bytes, *, base_url: str, select: Selectors, content_type: str | None = None
) -> list[Entry]:
    """The entries of a page, in document order; [] when nothing matches. Never raises on a body.

    `base_url` is the final URL (after redirects). Raises ValueError only for an invalid CSS
    selector, which is a configuration mistake, not the page's.
    """
    for key, selector in (
        ("item", select.item),
        ("title", select.title),
        ("link", select.link),
        ("description", select.description),
    ):
        if selector:
            _compile(selector, key)
    text = _prepare(decode_html(body, content_type))
    # lxml first: fast, and as lenient as a browser. BeautifulSoup builds its tree without
    # recursion today, but if a version of it (or soupsieve) recursed on a hostile page's
    # nesting, html.parser builds the tree differently; failing both, the page has no entries.
    for parser in ("lxml", "html.parser"):
        try:
            return _entries_from(text, parser, base_url, select)
        except (RecursionError, ParserRejectedMarkup):
            continue
    return []
