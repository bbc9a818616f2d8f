"""Content-Encoding: every decoder, used by every path that decodes (as httpx's `_decoders.py`).

`fetch.py` feeds a `decoder_for(...)` chunk by chunk as the body streams in;
`decode_payload` feeds the same decoders a whole stored body (the archive's raw
payload). One implementation, so the two cannot disagree: a gzip body of several
members (RFC 1952 2.2) is every member on both paths. Each decoder refuses to
produce more than `max_bytes` in all, so a compression bomb stops there.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Protocol

import brotli

from monitor.errors import MonitorError

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_GZIP_MAGIC = b"\x1f\x8b"


class DecodeError(MonitorError):
    """A body's Content-Encoding could not be undone; the message says why."""


class ContentDecoder(Protocol):
    """Undoes one coding (or a stack of them) on a body fed in pieces."""

    def decode(self, data: bytes) -> bytes:
        """The decoded bytes this piece completes; DecodeError if corrupt or too large."""
        ...

    def finish(self) -> None:
        """Raises DecodeError when the body ended before its coding did (truncated)."""
        ...


def too_large(max_bytes: int, coding: str | None = None) -> str:
    """The message for a body past max_bytes, raw or once decoded."""
    what = f"body larger than max_bytes ({max_bytes} bytes)"
    return f"{what} once decoded ({coding})" if coding else what


def content_codings(value: str) -> list[str]:
    """The codings a Content-Encoding value lists, lower-cased, last applied first; no identity."""
    names = [name.strip().lower() for name in value.split(",")]
    return [name for name in reversed(names) if name not in ("", "identity")]


class _Limit:
    """Counts output against max_bytes: `room()` is what a decompressor may still produce."""

    def __init__(self, max_bytes: int, coding: str | None) -> None:
        self.max_bytes = max_bytes
        self.coding = coding
        self.size = 0

    def room(self) -> int:
        # one byte past the limit proves the body too large without decoding the rest
        return self.max_bytes - self.size + 1

    def add(self, out: bytes) -> bytes:
        self.size += len(out)
        if self.size > self.max_bytes:
            raise DecodeError(too_large(self.max_bytes, self.coding))
        return out


class IdentityDecoder:
    """No coding: the bytes as they come, still under max_bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._limit = _Limit(max_bytes, None)

    def decode(self, data: bytes) -> bytes:
        return self._limit.add(data)

    def finish(self) -> None:
        return None


class GzipDecoder:
    """gzip, every member of it; bytes after the last member that are no member are ignored.

    urllib3's GzipDecoder and browsers concatenate the members too and ignore trailing
    garbage; zlib alone (and httpx) stops after the first member and drops the rest.
    """

    def __init__(self, max_bytes: int, coding: str = "gzip") -> None:
        self._limit = _Limit(max_bytes, coding)
        self._coding = coding
        self._d = zlib.decompressobj(_GZIP_WBITS)
        self._fed = False
        self._held = b""  # the start of what may be a next member's magic, split by a chunk
        self._trailing = False  # garbage after the last member: the rest is ignored

    def decode(self, data: bytes) -> bytes:
        out = bytearray()
        data, self._held = self._held + data, b""
        while data and not self._trailing:
            if self._d.eof:  # between members
                if len(data) < len(_GZIP_MAGIC) and _GZIP_MAGIC.startswith(data):
                    self._held = data  # one byte: wait for the next chunk to tell
                    break
                if not data.startswith(_GZIP_MAGIC):
                    self._trailing = True
                    break
                self._d = zlib.decompressobj(_GZIP_WBITS)
            self._fed = True
            try:
                piece = self._d.decompress(data, self._limit.room())
            except zlib.error as exc:
                raise DecodeError(f"corrupt {self._coding} body ({exc})") from None
            out += self._limit.add(piece)
            rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            if not piece and rest == data:
                break  # no progress: never spin
            data = rest
        return bytes(out)

    def finish(self) -> None:
        if self._fed and not self._d.eof:
            raise DecodeError(f"truncated {self._coding} body")


class DeflateDecoder:
    """deflate: zlib-wrapped as RFC 9110 says, or raw deflate as many servers send it."""

    def __init__(self, max_bytes: int) -> None:
        self._limit = _Limit(max_bytes, "deflate")
        self._d: zlib._Decompress | None = None  # chosen once two bytes have come
        self._held = b""

    def decode(self, data: bytes) -> bytes:
        if self._d is None:
            data, self._held = self._held + data, b""
            if len(data) < 2:
                self._held = data
                return b""
            # a zlib header: compression method 8 and a check value divisible by 31 (RFC 1950)
            wrapped = data[0] & 0x0F == 8 and int.from_bytes(data[:2]) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        out = bytearray()
        while data and not self._d.eof:
            try:
                piece = self._d.decompress(data, self._limit.room())
            except zlib.error as exc:
                raise DecodeError(f"corrupt deflate body ({exc})") from None
            out += self._limit.add(piece)
            rest = self._d.unconsumed_tail
            if not piece and rest == data:
                break
            data = rest
        return bytes(out)

    def finish(self) -> None:
        if self._held or (self._d is not None and not self._d.eof):
            raise DecodeError("truncated deflate body")


class BrotliDecoder:
    """br, its output bounded as it is produced (brotli >= 1.2's output_buffer_limit)."""

    def __init__(self, max_bytes: int) -> None:
        self._limit = _Limit(max_bytes, "br")
        self._d = brotli.Decompressor()
        self._fed = False

    def decode(self, data: bytes) -> bytes:
        self._fed = self._fed or bool(data)
        out = bytearray()
        while True:
            try:
                piece = self._d.process(data, output_buffer_limit=self._limit.room())
            except brotli.error as exc:
                raise DecodeError(f"corrupt br body ({exc})") from None
            data = b""  # drain with empty input until it can take more
            out += self._limit.add(piece)
            if self._d.can_accept_more_data() or not piece:
                return bytes(out)

    def finish(self) -> None:
        if self._fed and not self._d.is_finished():
            raise DecodeError("truncated br body")


class StackedDecoder:
    """Several codings, undone in turn (the last applied first); each bounded by max_bytes."""

    def __init__(self, decoders: Sequence[ContentDecoder]) -> None:
        self._decoders = tuple(decoders)

    def decode(self, data: bytes) -> bytes:
        for decoder in self._decoders:
            data = decoder.decode(data)
        return data

    def finish(self) -> None:
        for decoder in self._decoders:
            decoder.finish()


def decoder_for(content_encoding: str, max_bytes: int) -> ContentDecoder:
    """The decoder undoing a Content-Encoding value; DecodeError for a coding we lack."""
    decoders: list[ContentDecoder] = []
    for name in content_codings(content_encoding):
        if name in ("gzip", "x-gzip"):
            decoders.append(GzipDecoder(max_bytes, "gzip"))
        elif name == "deflate":
            decoders.append(DeflateDecoder(max_bytes))
        elif name == "br":
            decoders.append(BrotliDecoder(max_bytes))
        else:
            raise DecodeError(f"unsupported Content-Encoding {name!r}")
    if not decoders:
        return IdentityDecoder(max_bytes)
    return decoders[0] if len(decoders) == 1 else StackedDecoder(decoders)


def decode_payload(headers: Sequence[tuple[str, str]], raw: bytes, max_bytes: int) -> bytes:
    """The body with its Content-Encoding undone; DecodeError (a MonitorError) past max_bytes.

    A body cut short (a truncated capture) decodes to as much as it holds.
    """
    # several Content-Encoding headers are one comma-separated list (RFC 9110 5.3)
    value = ",".join(v for name, v in headers if name.lower() == "content-encoding")
    decoded = decoder_for(value, max_bytes).decode(raw)
    # no finish(): an archived body cut short is still worth showing up to where it stops
    return decoded
