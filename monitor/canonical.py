"""The forms in which fields are compared (pure): canonical links and comparable text.

Stored values stay as found; these forms only decide whether two values are the same
(SPEC.md "Entries, identity and states"). Text is compared in the form the extractor
now stores, so entries stored by an older version, before it normalised text, compare
equal to the same text extracted today.

Nothing here is cached: a cycle computes each item's forms once (match.KeysOnce), and an
entry's from the item it still is. A cache across cycles held ~3 MB at 1,000 pages and
missed every time on a page of more entries than it held.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

# Query parameters that say who sent the reader, not which page it is.
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid"})
TRACKING_PREFIX = "utm_"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that are invisible and carry no meaning: soft hyphen, zero-width
# space/non-joiner/joiner, word joiner, byte-order mark.
INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
# A link with nothing to canonicalise but its scheme, trailing slash and port (most links):
# lower-case http(s), a plain lower-case host, a port written plainly, a path, no query or
# fragment.
PLAIN_LINK = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-z0-9.-]+)(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<path>/[^?#\s]*)?"
)
def comparable_text(text: str) -> str:
    """Text in the form it is compared: NFC, invisible characters dropped, spaces collapsed."""
    if not text.isascii():  # ASCII has no other normal form and no invisible characters
        text = INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    collapsed = " ".join(text.split())  # str.split's whitespace is re's \s: the same collapse
    return text if collapsed == text else collapsed  # clean text: no copy


def canonical_link(link: str | None) -> str | None:
    """The link as it is compared: None for no link.

    Fragment and tracking parameters dropped, scheme and host lower-cased with http
    and https the same, the default port dropped, a trailing `/` of the path ignored.
    """
    if not link:
        return None
    plain = PLAIN_LINK.fullmatch(link)
    if plain:  # the general answer below, without parsing (a test holds them equal)
        scheme, host, port, path = plain.groups()
        if port is not None:
            if int(port) > 65535:  # not a port: the parse below keeps the link as found
                return _canonical_parsed(link)
            if port != str(DEFAULT_PORTS[scheme]):
                host = f"{host}:{port}"
        return f"http://{host}{(path or '').rstrip('/') or '/'}"
    return _canonical_parsed(link)


def _canonical_parsed(link: str) -> str:
    try:
        parts = urlsplit(link.strip())
        port = parts.port
    except ValueError:  # a hostile or broken URL ("http://[x", ":99999"): compared as found
        return link.strip()
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:  # mailto:, a relative link, ...: only the fragment goes
        return link.strip().split("#", 1)[0]
    host = (parts.hostname or "").lower()
    if parts.username is not None or parts.password is not None:
        host = f"{parts.netloc.rsplit('@', 1)[0]}@{host}"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    query = canonical_query(parts.query)
    return f"http://{host}{path}{'?' + query if query else ''}"


def canonical_query(query: str) -> str:
    """The query without tracking parameters, the others kept as found and in order."""
    kept = []
    for pair in query.split("&"):
        if not pair:
            continue
        name = unquote(pair.split("=", 1)[0]).strip().lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIX):
            continue
        kept.append(pair)
    return "&".join(kept)


def same_link(a: str | None, b: str | None) -> bool:
    """True when two links are the same link once canonical."""
    return a == b or canonical_link(a) == canonical_link(b)  # most links did not change


def same_text(a: str, b: str) -> bool:
    """True when two texts differ only in invisible ways (normal form, invisibles, spaces)."""
    return a == b or comparable_text(a) == comparable_text(b)
