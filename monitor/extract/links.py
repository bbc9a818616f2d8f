"""Links as stored: absolute, http(s) only, whatever the page wrote (pure, engine-free)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from monitor.extract.text import CONTROLS

_URL_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_URL_EDGE = "".join(chr(c) for c in range(0x21))  # C0 controls and space


def absolute_link(href: str, base_url: str) -> str | None:
    """`href` made absolute against `base_url` when it is an http(s) URL, else None.

    Only http and https links are kept: a hostile page must not inject a javascript:, data: or
    mailto: URL into the feed or the web page, where a reader would click it.
    """
    # As a browser's URL parser does: tabs and newlines vanish anywhere (so "java\nscript:" is
    # javascript:), leading and trailing controls and spaces are stripped.
    href = _URL_TAB_OR_NEWLINE.sub("", CONTROLS.sub("", href)).strip(_URL_EDGE)
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
