"""Links as stored: absolute, http(s) only, whatever the page wrote (pure, engine-free)."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from monitor.extract.text import ASCII_CONTROLS, CONTROLS

_URL_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_URL_EDGE = "".join(chr(c) for c in range(0x21))  # C0 controls and space
_ASCII_DROPPED = ASCII_CONTROLS + b"\t\n\r"  # what both regexes remove of ASCII
# Links as most pages write them, resolved without urljoin (~40% of extraction's time):
# a path from the root, or an http(s) URL, of plain characters, with no query, no
# fragment, no parameters, and no empty or dot segment (urljoin drops and resolves those).
# test_absolute_link_shortcut_agrees_with_urljoin holds both ways equal.
_SEGMENT = r"[\w\-~%!$&'()*+,=:@][\w\-.~%!$&'()*+,=:@]*"
_ROOTED_PATH = re.compile(rf"(?:/{_SEGMENT})+/?", re.ASCII)
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?:/[\w\-.~%!$&'()*+,=:@/]*)?",
    re.ASCII,
)


def absolute_link(href: str, base_url: str) -> str | None:
    """`href` made absolute against `base_url` when it is an http(s) URL, else None.

    Only http and https links are kept: a hostile page must not inject a javascript:, data: or
    mailto: URL into the feed or the web page, where a reader would click it.
    """
    href = cleaned_href(href)
    if not href:
        return None
    if _PLAIN_URL.fullmatch(href):  # urljoin gives an absolute URL with a host back as is
        return href
    if _ROOTED_PATH.fullmatch(href) and (origin := _origin(base_url)) is not None:
        return origin + href
    return _joined(href, base_url)


def cleaned_href(href: str) -> str:
    """As a browser's URL parser does: tabs and newlines vanish anywhere (so "java\nscript:"
    is javascript:), leading and trailing controls and spaces are stripped."""
    if href.isascii():  # most links: the same deletions at C speed
        return href.encode("ascii").translate(None, _ASCII_DROPPED).decode("ascii").strip(_URL_EDGE)
    return _URL_TAB_OR_NEWLINE.sub("", CONTROLS.sub("", href)).strip(_URL_EDGE)


@lru_cache(maxsize=64)
def _origin(base_url: str) -> str | None:
    """`scheme://netloc` of an http(s) base URL with a host, as urljoin keeps them; else None."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _joined(href: str, base_url: str) -> str | None:
    """The general case: urljoin, then only http(s) URLs with a host."""
    try:
        url = urljoin(base_url, href)
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 literal)
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def own_link(link: str | None, page_url: str) -> str | None:
    """An item's link, or None when it leads back to the page it is on ("#", "#anchor",
    the page's own URL): such an item has no page of its own, and a listing of in-page
    anchors must not become one entry because its items share that "link"."""
    if link is None:
        return None
    if link.partition("#")[0] == page_url.partition("#")[0]:
        return None
    return link
