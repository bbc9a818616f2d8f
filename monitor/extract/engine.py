"""Lexbor (selectolax): decoded text -> the HTML5 tree a browser builds -> items and their fields.

One parse per page, script, style and template elements removed. The subtrees whose text is
read (each item's title and description elements, or the item when its description is its
whole text) get a space before and after each block element (mark_blocks), so that Lexbor's
own text() (C, fast) separates words where a browser's layout does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

from msgspec import Struct
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from monitor.entry import Entry
from monitor.extract.limits import bound_markup
from monitor.extract.links import absolute_link, own_link
from monitor.extract.text import normalise_text

# Elements whose text runs on with the text around them; every other element (p, div, li, td,
# h1, unknown custom elements...) and <br> separate words, as a browser lays them out.
INLINE_TAGS = frozenset(
    "a abbr acronym b bdi bdo big blink cite code data del dfn em font i ins kbd label mark "
    "nobr q s samp small span strike strong sub sup time tt u var wbr".split()
)
# Their contents are code or inert markup, never shown as text.
HIDDEN_TAGS = ["script", "style", "template"]
_NOT_BOUNDARIES = INLINE_TAGS | {"html", "head", "body", "br"}


class Fields(Struct, frozen=True):
    """The selectors of one layout, as the engine reads them."""

    item: str
    title: str | None
    link: str | None
    description: str | None


@lru_cache(maxsize=512)
def selector_error(selector: str) -> str | None:
    """Why Lexbor cannot use `selector` (e.g. ":scope" or a syntax error), or None when it can."""
    try:
        LexborHTMLParser("<p>").css(selector)
    except SelectolaxError as exc:
        return str(exc) or "cannot parse it"
    return None


def check_selector(selector: str, key: str) -> None:
    """Raise ValueError naming `key` when `selector` is not a CSS selector Lexbor can evaluate."""
    error = selector_error(selector)
    if error is not None:
        raise ValueError(f"select.{key}: invalid CSS selector {selector!r}: {error}")


def parse(text: str) -> LexborHTMLParser:
    """The HTML5 tree of decoded text, without its script, style and template elements."""
    # Control characters are left to the parser (a NUL in text is dropped, in an attribute it
    # becomes U+FFFD) and to the text and link rules: a regex pass over the page costs as much
    # as the parse.
    tree = LexborHTMLParser(bound_markup(text).encode("utf-8", "replace"))
    tree.strip_tags(HIDDEN_TAGS, recursive=True)
    return tree


def mark_blocks(node: LexborNode) -> None:
    """Put a space before and after each block element under `node` (and after each <br>).

    Then Lexbor's own text() (C, fast) separates words exactly where a browser's layout does,
    and inline elements (<b>Fo</b>o) run on. Done on the subtrees that are read: an item's
    title and description elements (or the item), an entry page's selected elements (a third
    of the cost of a parse for a whole page). A space marked twice reads as one.
    """
    for element in node.traverse():
        tag = element.tag
        if tag is None or tag[0] == "-":  # "-comment", "-text": not elements
            continue
        if tag == "br":
            element.insert_after(" ")
        elif tag not in _NOT_BOUNDARIES:
            element.insert_before(" ")
            element.insert_after(" ")


def node_text(node: LexborNode, skip: set[int] | None = None, path: set[int] | None = None) -> str:
    """The normalised text of `node`, leaving out the nodes whose mem_id is in `skip` (a space).

    `path` holds the mem_ids of the elements between `node` and the skipped ones: only those are
    walked in Python, every other subtree is read by Lexbor in one call.
    """
    if not skip:
        return normalise_text(node.text(deep=True))
    path = path or set()
    parts: list[str] = []
    stack: list[Iterator[LexborNode]] = [node.iter(include_text=True)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        mem_id = child.mem_id
        if mem_id in skip:
            parts.append(" ")
        elif mem_id in path:
            stack.append(child.iter(include_text=True))
        else:
            parts.append(child.text(deep=True))
    return normalise_text("".join(parts))


def ancestors_below(node: LexborNode, top: int) -> Iterator[int]:
    """The mem_ids of `node`'s ancestors, nearest first, stopping before the one `top`."""
    parent = node.parent
    while parent is not None and parent.mem_id != top:
        yield parent.mem_id
        parent = parent.parent


def href_of(element: LexborNode, base_url: str) -> str | None:
    """The link an element stands for: its own href, or its first a[href]'s, made absolute."""
    href = element.attrs.get("href")
    if href is None:
        anchor = first_inside(element, "a[href]")
        href = anchor.attrs.get("href") if anchor is not None else None
    return absolute_link(href, base_url) if isinstance(href, str) else None


def document_base(tree: LexborHTMLParser, base_url: str) -> str:
    """The URL relative links resolve against: the first <base href> if http(s), else base_url."""
    base = tree.css_first("base[href]")
    href = base.attrs.get("href") if base is not None else None
    if isinstance(href, str):
        return absolute_link(href, base_url) or base_url
    return base_url


def first_inside(item: LexborNode, selector: str) -> LexborNode | None:
    """The first element inside `item` (never the item itself) that `selector` matches."""
    match = item.css_first(selector)
    if match is None or match.mem_id != item.mem_id:
        return match
    matches = item.css(selector)
    return matches[1] if len(matches) > 1 else None


class Owners:
    """Each element's nearest enclosing item, found by walking up once (memoised: linear)."""

    def __init__(self, item_ids: set[int]) -> None:
        self.item_ids = item_ids
        self.memo: dict[int, int | None] = {}

    def of(self, node: LexborNode) -> int | None:
        """The mem_id of the nearest item strictly above `node`, or None."""
        path: list[int] = []
        owner: int | None = None
        parent = node.parent
        while parent is not None:
            mem_id = parent.mem_id
            if mem_id in self.item_ids:
                owner = mem_id
                break
            if mem_id in self.memo:
                owner = self.memo[mem_id]
                break
            path.append(mem_id)
            parent = parent.parent
        for mem_id in path:
            self.memo[mem_id] = owner
        return owner


def items_nest(items: Sequence[LexborNode], owners: Owners) -> bool:
    """True when some item is inside another (a page whose rows are never closed)."""
    return any(owners.of(item) is not None for item in items)


def first_per_item(
    scope: LexborHTMLParser | LexborNode, selector: str, owners: Owners
) -> dict[int, LexborNode]:
    """For each item (by mem_id), the first element matching `selector` that is its own.

    One selection over `scope` (the items' parent, or the document), each match given to its
    nearest enclosing item: one selector compiled and one walk in C, not one per item (a third
    of the cost on a listing of 25 rows); an outer row never takes an inner row's title, and no
    subtree is searched twice (linear where per-item selection is quadratic).
    """
    first: dict[int, LexborNode] = {}
    for match in scope.css(selector):
        owner = owners.of(match)
        if owner is not None and owner not in first:
            first[owner] = match
    return first


def _common_parent(items: Sequence[LexborNode]) -> LexborNode | None:
    """The parent of every item when they have one (a listing's rows), else None."""
    parent = items[0].parent
    if parent is None:
        return None
    parent_id = parent.mem_id
    for item in items:
        above = item.parent
        if above is None or above.mem_id != parent_id:
            return None
    return parent


def read_items(
    tree: LexborHTMLParser,
    items: Sequence[LexborNode],
    fields: Fields,
    base_url: str,
    page_url: str | None = None,
) -> list[Entry]:
    """One Entry per item, in document order; skeletons (no title, link nor text) left out.
    A link back to `page_url` itself is no link (links.own_link)."""
    page_url = base_url if page_url is None else page_url
    owners = Owners({item.mem_id for item in items})
    nested = items_nest(items, owners)
    if nested and tree.root is not None:  # items inside items: mark each element once
        mark_blocks(tree.root)
    scope = (None if nested else _common_parent(items)) or tree
    found = {
        key: first_per_item(scope, selector, owners) if selector else {}
        for key, selector in (
            ("title", fields.title),
            ("link", fields.link),
            ("description", fields.description),
        )
    }
    # Entries nested in an entry are theirs, not its: each item's text skips its inner items.
    inner: dict[int, list[LexborNode]] = {}
    if nested:
        for item in items:
            owner = owners.of(item)
            if owner is not None:
                inner.setdefault(owner, []).append(item)
    entries = []
    for item in items:
        item_id = item.mem_id
        inside = inner.get(item_id, [])
        title_element = found["title"].get(item_id)
        description_element = found["description"].get(item_id)
        if not nested:  # only the subtrees read are marked (the item's: when it is read whole)
            read = (title_element, description_element) if fields.description else (item,)
            for top in read:
                if top is not None:
                    mark_blocks(top)
        title = _text_of(title_element, item_id, inside)
        link_element = found["link"].get(item_id)
        link = href_of(link_element, base_url) if link_element is not None else None
        link = own_link(link, page_url)
        if fields.description:
            description = _text_of(description_element, item_id, inside)
        else:
            # The item's text less the title element's own text (not a string replace, which
            # would also cut the title's words out of a sentence that quotes them).
            left_out = [*inside, title_element] if title_element is not None else inside
            description = _text_of(item, item_id, left_out)
        if title or link or description:
            entries.append(Entry(title=title, link=link, description=description))
    return entries


def _text_of(top: LexborNode | None, item_id: int, left_out: Sequence[LexborNode]) -> str:
    """The text of `top` (an item or an element in it) less the `left_out` elements inside it."""
    if top is None:
        return ""
    top_id = top.mem_id
    skip: set[int] = set()
    path: set[int] = set()
    for node in left_out:
        if node.mem_id == top_id:
            return ""  # the title is the item itself: nothing is left
        walked: list[int] = []
        parent = node.parent
        while parent is not None and parent.mem_id not in (top_id, item_id):
            walked.append(parent.mem_id)
            parent = parent.parent
        if parent is not None and parent.mem_id == top_id:  # node is inside top
            skip.add(node.mem_id)
            path.update(walked)
    return node_text(top, skip, path)
