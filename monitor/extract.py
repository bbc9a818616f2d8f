"""Body bytes + content type + selectors -> entries: pure (no I/O, no clock), never raises.

A watched page is untrusted input. Whatever bytes it sends (binary garbage, NUL bytes, a lying
charset, 100 000 nested tags, a 5 MB text node, 100 000 rows), extraction returns a list of
entries, possibly empty, in time linear in the size of the page: one decode, one parse with
lxml, one CSS selection per selector (inside each entry, or over the page when entries nest),
one walk over each entry's own part of the tree.
"""

from __future__ import annotations

import codecs
import gc
import re
from collections.abc import Container, Iterator, Sequence
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag
from bs4.element import CData, NavigableString, PageElement
from bs4.exceptions import ParserRejectedMarkup

from monitor.config import Selectors
from monitor.models import Entry

# -- text --------------------------------------------------------------------------------------

# Unicode's White_Space property, exactly: ASCII tab..carriage return and space, NEL, the no-break
# space, the Zs spaces and the line/paragraph separators. Not U+200B..U+200D, U+2060 or U+FEFF:
# Unicode classes them as format characters (Cf), not white space, and the joiners carry meaning
# in emoji and Indic scripts, so they are kept as they are. Not U+001C..U+001F either, which
# Python's str.split() treats as white space but Unicode does not (extraction drops them as
# control characters).
_SPACE_CHARS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_RUN = re.compile(f"[{_SPACE_CHARS}]+")
# C0 and C1 control characters that are not white space (NUL included): never text a user wrote.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]+")

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


def normalise_space(text: str) -> str:
    """`text` with each run of Unicode white space (U+00A0 too, not U+200B) as 1 space, trimmed."""
    return _SPACE_RUN.sub(" ", text).strip(" ")


def _clean_text(text: str) -> str:
    """Extracted text as stored: control characters dropped, white space normalised."""
    return normalise_space(_CONTROLS.sub("", text))


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


# -- content type and charset ------------------------------------------------------------------

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types a misconfigured server sends for anything: the body decides (WHATWG MIME sniffing).
_GENERIC_TYPES = frozenset(
    {
        "",
        "text/plain",
        "application/octet-stream",
        "binary/octet-stream",
        "application/unknown",
        "application/x-unknown-content-type",
        "unknown/unknown",
    }
)
_BINARY_SIGNATURES = (
    b"%PDF-",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"\xff\xd8\xff",  # JPEG
    b"PK\x03\x04",  # zip, docx, xlsx
    b"\x1f\x8b",  # gzip: a body still content-encoded
    b"(\xb5/\xfd",  # zstd
    b"BZh",
    b"\xfd7zXZ\x00",
    b"RIFF",  # webp, wav, avi
    b"OggS",
    b"\x00\x00\x01\x00",  # ico
)
# WHATWG's "binary data bytes": control bytes that no text encoding but UTF-16/32 produces.
_BINARY_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_NOT_BINARY_BYTES = bytes(b for b in range(256) if b not in _BINARY_BYTES)
# WHATWG's HTML sniffing patterns: a body starting (after white space) with one of these tags,
# followed by a space or ">" (or "!" after "<!--"), is HTML.
_HTML_START = re.compile(
    r"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p)"
    r"[\s>/]|<!--",
    re.IGNORECASE,
)
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
_SNIFF_BYTES = 1024


def _media_type(content_type: str | None) -> str:
    """The lower-case type/subtype of a Content-Type value ("" when missing)."""
    match = re.match(r"\s*([^\s;,]*)", content_type or "")
    return match.group(1).lower() if match else ""


def _header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type value, unquoted, or None."""
    match = re.search(r";\s*charset\s*=\s*[\"']?([^\s;,\"']+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def _bom(body: bytes) -> tuple[str, int] | None:
    """The encoding a byte order mark names and the BOM's length, or None."""
    for mark, codec in _BOMS:
        if body.startswith(mark):
            return codec, len(mark)
    return None


def _looks_binary(head: bytes, content_type: str | None) -> bool:
    """True when the start of a body is a known binary format or mostly non-text bytes."""
    if head.lstrip().startswith(_BINARY_SIGNATURES):
        return True
    if _bom(head) is not None or (_codec_for(_header_charset(content_type)) or "").startswith(
        "utf-16"
    ):
        return False  # UTF-16 text is full of NUL bytes
    # A stray NUL in a real page is tolerated; more than 1 byte in 20 is not text.
    return len(head.translate(None, _NOT_BINARY_BYTES)) * 20 > len(head)


def _sniffs_as_html(head: bytes) -> bool:
    """True when a body's first bytes look like HTML (WHATWG patterns, or an XHTML prolog)."""
    bom = _bom(head)
    text = head[bom[1] :].decode(bom[0], "replace") if bom else head.decode("latin-1")
    text = text.lstrip()
    if _HTML_START.match(text):
        return True
    return text.startswith("<?xml") and re.search(r"<html[\s>]", text, re.IGNORECASE) is not None


def is_html(content_type: str | None, body: bytes) -> bool:
    """True when the body is an HTML page: declared HTML, or a missing/generic type that sniffs so.

    A body that is a PDF, an image, an archive or otherwise binary is never HTML, whatever the
    server says; JSON, XML feeds, images and other specific types are not either.
    """
    head = body[:_SNIFF_BYTES]
    if _looks_binary(head, content_type):
        return False
    media = _media_type(content_type)
    if media in _HTML_TYPES:
        return True
    return media in _GENERIC_TYPES and _sniffs_as_html(head)


# Labels browsers accept that Python's codec registry does not know.
_EXTRA_LABELS = {
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "ms932": "cp932",
    "csshiftjis": "cp932",
    "ms_kanji": "cp932",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859-8",
    "csiso88598i": "iso8859-8",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-roman": "mac-roman",
    "x-gbk": "gbk",
    "x-euc-jp": "euc_jp",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "unicode": "utf-16-le",
    "ucs-2": "utf-16-le",
}
# What browsers decode a label as (WHATWG Encoding): "iso-8859-1" and "us-ascii" are
# windows-1252, "shift_jis" is Microsoft's superset, "utf-16" without a BOM is little-endian...
_BROWSER_EQUIVALENT = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "latin-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "gb2312": "gbk",
    "big5": "big5hkscs",
    "utf-16": "utf-16-le",
}
# The encodings of the WHATWG Encoding standard, as Python codec names. Anything else (utf-7,
# base64, rot-13, unicode-escape...) is treated as an unknown label: a hostile page must not pick
# a decoder no browser would use.
_BROWSER_CODECS = frozenset(
    [
        "utf-8",
        "utf-16-le",
        "utf-16-be",
        "cp866",
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "mac-cyrillic",
        "cp874",
        "gbk",
        "gb18030",
        "big5hkscs",
        "euc_jp",
        "iso2022_jp",
        "cp932",
        "cp949",
        *(f"cp{n}" for n in range(1250, 1259)),
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)),
    ]
)


@lru_cache(maxsize=256)
def _codec_for(label: str | None) -> str | None:
    """The Python codec a charset label stands for in a browser, or None when unknown."""
    if not label or len(label) > 40:
        return None
    label = label.strip().lower()
    name = _EXTRA_LABELS.get(label)
    if name is None:
        try:
            name = codecs.lookup(label).name
        except (LookupError, ValueError):  # ValueError: a NUL inside the label
            return None
    name = _BROWSER_EQUIVALENT.get(name, name)
    return name if name in _BROWSER_CODECS else None


_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([-\w.:]+)", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([-\w.:]+)", re.IGNORECASE)
# How far into the body to look for <meta charset>. Browsers look at 1024 bytes; real pages put
# it after long comments and scripts often enough that a little more is worth it.
_PRESCAN_BYTES = 4096


def _declared_codec(body: bytes) -> str | None:
    """The codec named by <meta charset>/<meta http-equiv> (or an XML prolog) near the start."""
    head = body[:_PRESCAN_BYTES]
    for pattern in (_META_CHARSET, _XML_ENCODING):
        match = pattern.search(head)
        codec = _codec_for(match.group(1).decode("ascii")) if match else None
        if codec is not None:
            # A declaration readable as ASCII cannot be UTF-16: browsers read UTF-8 then.
            return "utf-8" if codec.startswith("utf-16") else codec
    return None


def decode_html(body: bytes, content_type: str | None) -> str:
    """The body as text: BOM, header charset, <meta> charset, UTF-8 if valid, else windows-1252.

    Never raises. An unknown label is skipped; a known label is trusted as browsers trust it,
    bytes it cannot decode becoming U+FFFD (rather than guessing again, which would turn every
    curly quote of the page into something else the day one stray byte appears).
    """
    bom = _bom(body)
    if bom is not None:
        codec, start = bom
    else:
        start = 0
        codec = _codec_for(_header_charset(content_type)) or _declared_codec(body) or ""
    if not codec:
        try:
            # The sniff: what UnicodeDammit does when no chardet is installed, made explicit
            # so the result never depends on which detector happens to be importable.
            return body.decode("utf-8")
        except UnicodeDecodeError:
            codec = "cp1252"
    try:
        return body[start:].decode(codec, "replace")
    except (UnicodeError, LookupError):
        return body[start:].decode("cp1252", "replace")


# -- links -------------------------------------------------------------------------------------

_URL_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_URL_EDGE = "".join(chr(c) for c in range(0x21))  # C0 controls and space
_BASE_TAG = re.compile(r"<base[\s/>]", re.IGNORECASE)


def _absolute_link(href: str, base_url: str) -> str | None:
    """`href` made absolute against `base_url` when it is an http(s) URL, else None.

    Only http and https links are kept: a hostile page must not inject a javascript:, data: or
    mailto: URL into the feed or the web page, where a reader would click it.
    """
    # As a browser's URL parser does: tabs and newlines vanish anywhere (so "java\nscript:" is
    # javascript:), leading and trailing controls and spaces are stripped.
    href = _URL_TAB_OR_NEWLINE.sub("", href).strip(_URL_EDGE)
    if not href:
        return None
    try:
        url = urljoin(base_url, href)
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 literal)
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def _document_base(soup: BeautifulSoup, text: str, base_url: str) -> str:
    """The URL relative links resolve against: the first <base href> if http(s), else base_url."""
    if not _BASE_TAG.search(text):  # skip a tree search on the pages (nearly all) without one
        return base_url
    base = soup.find("base", href=True)
    href = base.get("href") if isinstance(base, Tag) else None
    if isinstance(href, str):
        return _absolute_link(href, base_url) or base_url
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
    return _absolute_link(href, base_url) if isinstance(href, str) else None


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
        if select.description:
            element = found["description"].get(item_id)
            description = _element_text(element, nested) if element is not None else ""
        else:
            # The item's text less the title element's own text (not a string replace, which
            # would also cut the title's words out of a sentence that quotes them).
            description = _element_text(item, nested, exclude=title_element)
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
