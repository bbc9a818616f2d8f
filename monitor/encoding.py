"""Content-Encoding: undo gzip, deflate, br on a body, never past max_bytes.

`decode_payload` decodes a whole stored body (the archive's raw payload);
`fetch.py` decodes while streaming with its own decoders, but both read the
Content-Encoding header through `content_codings`, so they agree on which
codings apply and in what order.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import brotli

from monitor.errors import MonitorError

_GZIP_WBITS = 16 + zlib.MAX_WBITS


def content_codings(value: str) -> list[str]:
    """The codings a Content-Encoding value lists, lower-cased, last applied first; no identity."""
    names = [name.strip().lower() for name in value.split(",")]
    return [name for name in reversed(names) if name not in ("", "identity")]


def decode_payload(headers: Sequence[tuple[str, str]], raw: bytes, max_bytes: int) -> bytes:
    """The body with its Content-Encoding undone; MonitorError past max_bytes decoded.

    A body cut short (a truncated capture) decodes to as much as it holds.
    """
    # several Content-Encoding headers are one comma-separated list (RFC 9110 5.3)
    value = ",".join(v for name, v in headers if name.lower() == "content-encoding")
    data = raw
    for coding in content_codings(value):
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, _GZIP_WBITS, max_bytes, coding)
        elif coding == "deflate":
            data = _inflate(data, _deflate_wbits(data), max_bytes, coding)
        elif coding == "br":
            data = _unbrotli(data, max_bytes)
        else:
            raise MonitorError(f"cannot decode a body with Content-Encoding {coding!r}")
    if len(data) > max_bytes:
        raise MonitorError(f"body is larger than max_bytes ({max_bytes})")
    return data


def _deflate_wbits(data: bytes) -> int:
    # "deflate" is meant to be zlib-wrapped (RFC 9110) but some servers send raw deflate
    zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and int.from_bytes(data[:2]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


def _inflate(data: bytes, wbits: int, max_bytes: int, coding: str) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    while True:
        try:
            chunk = inflater.decompress(pending, max_bytes + 1 - len(out))
        except zlib.error as error:
            raise MonitorError(f"cannot decode the {coding} body: {error}") from error
        out += chunk
        if len(out) > max_bytes:
            raise MonitorError(f"{coding} body decodes to more than max_bytes ({max_bytes})")
        pending = inflater.unconsumed_tail
        if inflater.eof:
            rest = inflater.unused_data
            if wbits != _GZIP_WBITS or not rest.startswith(b"\x1f\x8b"):
                return bytes(out)
            # a gzip body may hold several members (RFC 1952); they concatenate
            inflater, pending = zlib.decompressobj(wbits), rest
        elif not pending and not chunk:
            return bytes(out)  # input exhausted before the end: a body cut short


def _unbrotli(data: bytes, max_bytes: int) -> bytes:
    decompressor = brotli.Decompressor()
    out = bytearray()
    pending = data
    while True:
        try:
            # output_buffer_limit (brotli >= 1.2) keeps a brotli bomb from ever expanding
            chunk = decompressor.process(pending, output_buffer_limit=max_bytes + 1 - len(out))
        except brotli.error as error:
            raise MonitorError(f"cannot decode the br body: {error}") from error
        pending = b""
        out += chunk
        if len(out) > max_bytes:
            raise MonitorError(f"br body decodes to more than max_bytes ({max_bytes})")
        if decompressor.is_finished():
            return bytes(out)
        if not chunk and decompressor.can_accept_more_data():
            return bytes(out)  # input exhausted before the end: a body cut short
