"""Content type and charset: is a body HTML, and what text it decodes to, as a browser would."""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

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
