"""httpcore's network backend on plain asyncio streams: the sockets under every fetch.

httpx runs on httpcore, whose default backend under asyncio goes through anyio. That
layer costs about a third of a fetch's CPU here (a cancel scope per read and write,
and a `getpeername` plus a `poll` for every pooled connection each time the pool
assigns a request: encode/httpx#3215, encode/httpcore#930). Watching hundreds of pages
a cycle, the monitor pays it on every page, so it plugs this backend into httpcore's
documented seam (`network_backend`) instead: the same httpcore pool, HTTP/1.1 parser
and exceptions, on asyncio's own streams. TLS is `StreamWriter.start_tls` (Python
3.11), with the handshake under the connect timeout.

A connection's idle check reads the stream's own state (EOF seen, data waiting):
asyncio reads the socket as data arrives, so the socket itself says nothing.

The TLS context is httpx's verifying one, made at the first TLS connection
(`DeferredTLSContext`): a one-off check of http:// pages never pays for it.

httpcore's own locks and events go through anyio too, whatever the network backend:
`use_asyncio_primitives` puts asyncio's in their place (see there why that is sound).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import sys
import threading
import types
import typing
from collections.abc import Iterable

import httpcore
import httpcore._async.connection
import httpcore._async.connection_pool
import httpcore._async.http11
import httpcore._synchronization
import httpx

READ_LIMIT = 1 << 16  # the stream's buffer; httpcore reads 64 KiB at a time
# Happy Eyeballs (RFC 8305), as anyio connects: a host whose IPv6 address is blackholed
# is reached over IPv4 after 250 ms instead of timing out on the first address.
HAPPY_EYEBALLS_DELAY_S = 0.25


class DeferredTLSContext:
    """httpx's verifying TLS context, made when the first TLS connection needs it.

    Making any `ssl.SSLContext` initialises OpenSSL (~2.5 ms, ~10 M instructions) and
    loading the CA bundle costs ~30 ms more: a config of http:// pages needs neither, and a
    one-off check of two pages takes ~0.17 s in all. httpx hands this object to httpcore
    unchanged (it passes any context it does not build itself), and httpcore only sets its
    ALPN protocols and hands it to the stream's `start_tls`, where `AsyncioStream` asks for
    the real one (`context()`).

    What is trusted is what httpx trusts: $SSL_CERT_FILE, else $SSL_CERT_DIR, else
    certifi's bundle, read when the context is made; the host name is checked and a
    certificate required (PROTOCOL_TLS_CLIENT's defaults), as there.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the daemon's threads share one context
        self._context: ssl.SSLContext | None = None
        self._alpn: list[str] | None = None

    @property
    def made(self) -> bool:
        return self._context is not None

    def set_alpn_protocols(self, protocols: Iterable[str]) -> None:
        with self._lock:
            self._alpn = list(protocols)
            if self._context is not None:
                self._context.set_alpn_protocols(self._alpn)

    def context(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._context = _verifying_context()
                if self._alpn is not None:
                    self._context.set_alpn_protocols(self._alpn)
            return self._context


def _verifying_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if os.environ.get("SSL_CERT_FILE"):
        context.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
    elif os.environ.get("SSL_CERT_DIR"):
        context.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
    else:
        import certifi  # httpx's own dependency

        context.load_verify_locations(cafile=certifi.where())
    keylog = os.environ.get("SSLKEYLOGFILE")  # as ssl.create_default_context does
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection, as httpcore reads and writes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as error:
            raise httpcore.ReadTimeout("timed out reading the response") from error
        except (OSError, ssl.SSLError) as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as error:
            raise httpcore.WriteTimeout("timed out sending the request") from error
        except (OSError, ssl.SSLError) as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass  # the peer went first: the connection is closed all the same
        except asyncio.CancelledError:
            # Python 3.11's streams share one close future per connection: a task cancelled
            # while awaiting it (a fetch, at a stop) cancels it for every later aclose. Only
            # a cancel of this task is ours to raise; the transport is closing either way.
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                if isinstance(ssl_context, DeferredTLSContext):
                    ssl_context = ssl_context.context()
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as error:
            await self.aclose()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from error
        except (OSError, ssl.SSLError) as error:
            await self.aclose()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":  # on an idle connection: the server closed it, or misspoke
            return self._reader.at_eof() or self._writer.is_closing() or _buffered(self._reader)
        names = {"ssl_object": "ssl_object", "client_addr": "sockname",
                 "server_addr": "peername", "socket": "socket"}  # fmt: skip
        return self._writer.get_extra_info(names[info]) if info in names else None


def _is_address(host: str) -> bool:
    """True for an IP address (127.0.0.1, ::1, [::1]), False for a name to resolve."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _buffered(reader: asyncio.StreamReader) -> bool:
    """Bytes the server sent on a connection with no request out (asyncio has no public
    accessor for the buffer; its length is all that is read)."""
    buffer = getattr(reader, "_buffer", b"")
    return len(buffer) > 0


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens AsyncioStreams: httpcore's connect, with its timeouts and exceptions."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        # An address has nothing to race; and Python 3.11's race (asyncio.staggered) drops
        # the socket of an attempt that connects just as the timeout cancels it, unclosed.
        delay = None if _is_address(host) else HAPPY_EYEBALLS_DELAY_S
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=local, limit=READ_LIMIT, happy_eyeballs_delay=delay
                )
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from error
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=READ_LIMIT)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from error
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, its assignment pass linear in connections and requests.

    httpcore 1.0 runs `_assign_requests_to_connections` each time a request enters or
    leaves the pool, and its keep-alive check counts every connection once per idle
    connection: O(connections²) per request, ~11% of a 1000-page cycle here with 16
    connections. This is the same pass in one walk (encode/httpcore#1035, open
    upstream; merged as pydantic/httpx2#974): closed and expired connections dropped,
    idle ones beyond max_keepalive_connections closed oldest first (idle ones counted,
    as documented, not all connections), then queued requests assigned in order.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        kept: list[httpcore.AsyncConnectionInterface] = []
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():
                closing.append(connection)
            else:
                kept.append(connection)
        surplus = sum(1 for c in kept if c.is_idle()) - self._max_keepalive_connections
        if surplus > 0:
            for connection in [c for c in kept if c.is_idle()][:surplus]:
                kept.remove(connection)
                closing.append(connection)
        self._connections[:] = kept

        queued = [request for request in self._requests if request.is_queued()]
        if not queued:
            return closing
        # Assigning a request leaves a connection's availability as it was (httpcore's
        # pass hands one idle connection to several requests and lets the losers retry),
        # so one snapshot serves every request of the pass.
        available = [c for c in self._connections if c.is_available()]
        for pool_request in queued:
            origin = pool_request.request.url.origin
            reuse = next((c for c in available if c.can_handle_request(origin)), None)
            if reuse is not None:
                pool_request.assign_to_connection(reuse)
                continue
            if len(self._connections) >= self._max_connections:
                idle = next((c for c in self._connections if c.is_idle()), None)
                if idle is None:
                    continue  # the pool is full: the request waits for a release
                self._connections.remove(idle)  # make room: close an idle connection
                closing.append(idle)
                if idle in available:
                    available.remove(idle)
            connection = self.create_connection(origin)
            self._connections.append(connection)
            pool_request.assign_to_connection(connection)
            if connection.is_available():  # an HTTP/2 connection may take more requests
                available.append(connection)
        return closing

    async def _close_connections(self, closing: list[httpcore.AsyncConnectionInterface]) -> None:
        # httpcore shields the closing from cancellation with an anyio cancel scope (and
        # asks sniffio which event loop runs) twice per request, and there is nearly
        # always nothing to close.
        if closing:
            await super()._close_connections(closing)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (its request/response mapping and exceptions) over AsyncioBackend."""

    def __init__(
        self, *, verify: ssl.SSLContext | DeferredTLSContext, limits: httpx.Limits
    ) -> None:
        # httpx and httpcore pass a context they did not make through untouched (see
        # DeferredTLSContext): typed as theirs, for them
        context = typing.cast(ssl.SSLContext, verify)
        super().__init__(verify=context, limits=limits)
        # httpx builds its pool in __init__ with no way to name a backend: replace it.
        # Checked, so that an httpx that keeps its pool elsewhere fails here, loudly.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport no longer keeps its pool in _pool")
        self._pool = LinearPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )


# --- httpcore's synchronization, on asyncio's own primitives ------------------------------


class AsyncioLock:
    """httpcore's AsyncLock (an async context manager) as an asyncio.Lock."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncioLock:
        await self._lock.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


class AsyncioEvent:
    """httpcore's AsyncEvent (a request waiting for a connection) as an asyncio.Event; the
    pool's timeout raises httpcore's PoolTimeout, as there."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError as error:
            raise httpcore.PoolTimeout("timed out waiting for a connection") from error


class NoShield:
    """httpcore's AsyncShieldCancellation where no anyio cancel scope exists: a no-op."""

    def __enter__(self) -> NoShield:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


# httpcore's modules -> the names each uses, and what replaces them
_HTTPCORE_PRIMITIVES: dict[types.ModuleType, dict[str, type]] = {
    httpcore._async.connection: {"AsyncLock": AsyncioLock},
    httpcore._async.connection_pool: {"AsyncEvent": AsyncioEvent,
                                      "AsyncShieldCancellation": NoShield},
    httpcore._async.http11: {"AsyncLock": AsyncioLock, "AsyncShieldCancellation": NoShield},
}  # fmt: skip


def use_asyncio_primitives() -> bool:
    """Give httpcore's HTTP/1.1 connections and pool asyncio's Lock and Event, in place of
    anyio's; True once they have them, False (nothing changed) on an httpcore whose modules
    no longer name httpcore 1.0's primitives.

    httpcore picks trio's or anyio's primitives for its async locks and events, so under
    asyncio every request creates an anyio Event and takes an anyio Lock, and the first
    one imports anyio's asyncio backend: ~100 M instructions, 9% of a one-off check of two
    pages (bench/README.md, "speed 7"), and ~0.3 M a request. The swap is sound for the
    monitor's processes, which run httpcore on asyncio alone and open no anyio cancel
    scope: the lock and event behave as anyio's do there, and the shield has nothing to
    shield from (anyio's shield does not hold back asyncio's own `Task.cancel`). The same
    change is proposed upstream (encode/httpcore#922). HTTP/2 (never enabled here) keeps
    anyio's.
    """
    original = httpcore._synchronization
    for module, names in _HTTPCORE_PRIMITIVES.items():
        for name, replacement in names.items():
            current = getattr(module, name, None)
            if current is None or current not in (replacement, getattr(original, name, None)):
                return False
    for module, names in _HTTPCORE_PRIMITIVES.items():
        for name, replacement in names.items():
            setattr(module, name, replacement)
    return True


use_asyncio_primitives()
