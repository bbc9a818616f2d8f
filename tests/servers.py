"""A small threaded raw-socket HTTP/1.1 server for faults a normal server cannot produce.

Usage (from any test file)::

    from servers import FaultServer, Respond, Series, closed_url   # tests/ is on sys.path

    with FaultServer() as srv:
        srv.set("/page", Respond(200, b"<html>...</html>", encoding="gzip"))
        srv.set("/flaky", Series(Respond(503), Respond(200, b"ok")))
        url = srv.url("/page")
        ...
        srv.hits("/flaky")                          # requests seen for that path
        srv.requests[-1].headers["if-none-match"]   # request log: method, path, headers

`srv.set(path, what)` may be called again between requests to change the answer; `what`
is a response spec or a callable `(SeenRequest) -> spec`. Unknown paths answer 404.
Every answer carries `Connection: close`: one request per connection, so each fault
hits a fresh connection.

Response specs (frozen dataclasses):

- `Respond(status=200, body=b"", headers=(), *, encoding=None, etag=None,
  last_modified=None, content_length=None, reason=None)`: a normal response. `encoding`
  ("gzip", "br", "deflate") compresses `body` and sets Content-Encoding; pass already
  encoded bytes with `headers={"Content-Encoding": ...}` instead for broken ones.
  With `etag` / `last_modified`, a request whose If-None-Match / If-Modified-Since
  matches gets a 304. `content_length` declares a length other than the body's (the
  connection then closes short).
- `Redirect(location, status=302)`; `srv.chain(prefix, hops, final)` builds a chain of
  `hops` redirects ending in `final`, and two `Redirect`s pointing at each other a loop.
- `Chunked(chunks, headers=())`: Transfer-Encoding: chunked, one chunk per item.
- `Drip(body, chunk_size=1, interval_s=0.1)`: the headers at once, then the body slowly.
- `Delay(seconds, then)`: sleep before the status line, then answer `then`.
- `Reset(body, after)`: send `after` bytes of a `len(body)` body, then a TCP reset.
- `Close()`: read the request, close without answering.
- `Series(spec, ...)`: one spec per request in turn; the last one repeats.

Helpers: `closed_url(path)` (connection refused), `gzip_bytes`, `truncated_gzip`,
`gzip_bomb(decoded_size)`, `brotli_bomb(decoded_size)` (cached, so a test can build
one before it measures memory).

`FaultServer.stop()` (or leaving the `with` block) wakes sleeping handlers, joins every
thread and closes every socket, so no ResourceWarning escapes.
"""

from __future__ import annotations

import functools
import gzip
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Protocol, runtime_checkable

import brotli

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class SeenRequest:
    """One request as the server read it: header names lower-cased."""

    method: str
    path: str  # without the query string
    target: str  # as sent, query included
    headers: dict[str, str] = field(hash=False)


@runtime_checkable
class Spec(Protocol):
    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None: ...


Handler = Spec | Callable[[SeenRequest], Spec]


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _head(status: int, headers: Headers, reason: str | None = None) -> bytes:
    if reason is None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in _pairs(headers)]
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _has(headers: list[tuple[str, str]], name: str) -> bool:
    return any(key.lower() == name for key, _ in headers)


def gzip_bytes(data: bytes) -> bytes:
    """data gzip-compressed (mtime 0, so equal inputs give equal bytes)."""
    return gzip.compress(data, mtime=0)


def truncated_gzip(data: bytes, cut: int = 12) -> bytes:
    """A gzip stream missing its last `cut` bytes (the trailer and some data)."""
    return gzip_bytes(data)[:-cut]


@functools.cache
def gzip_bomb(decoded_size: int) -> bytes:
    """A gzip body of zeros that decodes to decoded_size bytes (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(decoded_size >> 20)]
    parts.append(compressor.compress(bytes(decoded_size & ((1 << 20) - 1))))
    parts.append(compressor.flush())
    return b"".join(parts)


@functools.cache
def brotli_bomb(decoded_size: int) -> bytes:
    """A br body of zeros that decodes to decoded_size bytes (about 5000:1)."""
    return bytes(brotli.compress(bytes(decoded_size), quality=1))


def _encode(body: bytes, encoding: str | None) -> bytes:
    if encoding is None:
        return body
    if encoding == "gzip":
        return gzip_bytes(body)
    if encoding == "br":
        return bytes(brotli.compress(body))
    if encoding == "deflate":
        return zlib.compress(body)
    raise ValueError(f"Respond: unknown encoding {encoding!r}")


@dataclass(frozen=True)
class Respond:
    """A normal response; see the module docstring."""

    status: int = 200
    body: bytes = b""
    headers: Headers = ()
    encoding: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_length: int | None = None
    reason: str | None = None

    def is_unchanged(self, request: SeenRequest) -> bool:
        if self.etag is not None and "if-none-match" in request.headers:
            tags = [tag.strip() for tag in request.headers["if-none-match"].split(",")]
            return self.etag in tags or "*" in tags
        modified = request.headers.get("if-modified-since")
        return self.last_modified is not None and modified == self.last_modified

    def head(self, body_length: int) -> bytes:
        headers = _pairs(self.headers)
        if self.etag is not None:
            headers.append(("ETag", self.etag))
        if self.last_modified is not None:
            headers.append(("Last-Modified", self.last_modified))
        if not _has(headers, "content-type"):
            headers.append(("Content-Type", "text/html; charset=utf-8"))
        if self.encoding is not None:
            headers.append(("Content-Encoding", self.encoding))
        if not _has(headers, "content-length") and not _has(headers, "transfer-encoding"):
            length = body_length if self.content_length is None else self.content_length
            headers.append(("Content-Length", str(length)))
        return _head(self.status, headers, self.reason)

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        if self.is_unchanged(request):
            validators = [("ETag", self.etag)] if self.etag else []
            if self.last_modified:
                validators.append(("Last-Modified", self.last_modified))
            conn.sendall(_head(304, validators))
            return
        body = _encode(self.body, self.encoding)
        conn.sendall(self.head(len(body)) + body)


@dataclass(frozen=True)
class Redirect:
    """A redirect to `location` (relative or absolute)."""

    location: str
    status: int = 302

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        conn.sendall(_head(self.status, [("Location", self.location), ("Content-Length", "0")]))


@dataclass(frozen=True)
class Chunked:
    """A body in Transfer-Encoding: chunked, one chunk per item of `chunks`."""

    chunks: tuple[bytes, ...]
    headers: Headers = ()

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        headers = [*_pairs(self.headers), ("Transfer-Encoding", "chunked")]
        conn.sendall(_head(200, headers))
        for chunk in self.chunks:
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.sendall(b"0\r\n\r\n")


@dataclass(frozen=True)
class Drip:
    """The headers at once, then `chunk_size` bytes of the body every `interval_s`."""

    body: bytes
    chunk_size: int = 1
    interval_s: float = 0.1

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        conn.sendall(_head(200, [("Content-Length", str(len(self.body)))]))
        for start in range(0, len(self.body), self.chunk_size):
            conn.sendall(self.body[start : start + self.chunk_size])
            if stop.wait(self.interval_s):
                return


@dataclass(frozen=True)
class Delay:
    """Sleep `seconds` before the status line, then answer `then`."""

    seconds: float
    then: Spec = field(default_factory=Respond)

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        if not stop.wait(self.seconds):
            self.then.serve(conn, request, stop)


@dataclass(frozen=True)
class Reset:
    """Declare `len(body)` bytes, send `after` of them, then reset the connection."""

    body: bytes
    after: int

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        head = _head(200, [("Content-Length", str(len(self.body)))])
        conn.sendall(head + self.body[: self.after])
        stop.wait(0.2)  # let the client read what was sent: a reset discards unread data
        # linger 0: close() sends RST instead of FIN
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass(frozen=True)
class Close:
    """Close the connection without sending a byte."""

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        return


class Series:
    """One spec per request in turn; the last one repeats."""

    def __init__(self, *specs: Spec) -> None:
        self._specs = specs
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, request: SeenRequest) -> Spec:
        with self._lock:
            spec = self._specs[min(self._next, len(self._specs) - 1)]
            self._next += 1
            return spec


def closed_url(path: str = "/") -> str:
    """A loopback URL on a port nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def _read_request(conn: socket.socket) -> SeenRequest | None:
    """The request's line and headers (we never expect a request body), None if cut short."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 1 << 20:
            return None
        data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return SeenRequest(method, target.split("?", 1)[0], target, headers)


class FaultServer:
    """The server: `with FaultServer() as srv`; see the module docstring."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._acceptor = threading.Thread(target=self._accept_loop, name="FaultServer")
        self.port = 0  # known once started

    def __enter__(self) -> FaultServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free loopback port and start accepting (`with` does this)."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # the accept loop polls for stop()
        self.port = self._listener.getsockname()[1]
        self._acceptor.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path: str, what: Handler) -> None:
        """Answer requests for `path` with a spec, or a callable giving one per request."""
        with self._lock:
            self._routes[path] = what

    def chain(self, prefix: str, hops: int, final: Handler) -> str:
        """`hops` redirects prefix0 -> prefix1 -> ... -> prefix{hops}, which answers `final`."""
        for n in range(hops):
            self.set(f"{prefix}{n}", Redirect(f"{prefix}{n + 1}"))
        self.set(f"{prefix}{hops}", final)
        return self.url(f"{prefix}0")

    def hits(self, path: str) -> int:
        """How many requests for `path` the server has read."""
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def stop(self) -> None:
        """Wake every handler, join every thread, close every socket."""
        self._stop.set()
        if self._acceptor.is_alive():
            self._acceptor.join()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="FaultServer-conn")
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)  # bounds a send to a client that stopped reading
            try:
                request = _read_request(conn)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                    handler = self._routes.get(request.path, Respond(404, b"not found"))
                spec = handler if isinstance(handler, Spec) else handler(request)
                spec.serve(conn, request, self._stop)
            except OSError:
                pass  # the client went away mid-answer: expected when testing faults
