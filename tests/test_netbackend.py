"""The sockets under every fetch (monitor/netbackend.py): HTTPS, keep-alive, dropped connections.

A keep-alive HTTP/1.1 server on 127.0.0.1, plain or TLS (a throw-away CA from trustme),
answers a listing page; the monitor's own client (and, end to end, `monitor check` in a
fresh process trusting that CA through $SSL_CERT_FILE) fetches it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from conftest import IMLS, write_config

from monitor.config import MonitorSettings
from monitor.fetch import Target, fetch_target
from monitor.netbackend import AsyncioTransport, DeferredTLSContext

PAGE = (IMLS / "active.html").read_bytes()
ROOT = Path(__file__).parent.parent


class KeepAliveServer:
    """HTTP/1.1 with keep-alive (no `Connection: close`), optionally TLS.

    A connection left idle for `idle_close_s` is closed without a word, as servers do.
    `connections` counts the TCP connections accepted.
    """

    def __init__(self, tls: ssl.SSLContext | None = None, idle_close_s: float = 30.0) -> None:
        self.tls = tls
        self.idle_close_s = idle_close_s
        self.connections = 0
        self.closed = 0  # connections ended (by either side)
        self.requests = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def url(self, path: str = "/list", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(self.idle_close_s)
            buffer = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)  # raises TimeoutError once idle too long
                    if not data:
                        return
                    buffer += data
                _, buffer = buffer.split(b"\r\n\r\n", 1)
                self.requests += 1
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                        f"Content-Length: {len(PAGE)}\r\n\r\n").encode()  # fmt: skip
                conn.sendall(head + PAGE)
        except (OSError, ssl.SSLError):
            pass  # idle timeout, a client hanging up, a failed handshake: the connection ends
        finally:
            conn.close()
            self.closed += 1

    def close(self) -> None:
        self._stop.set()
        self._accepter.join()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server(ca: trustme.CA, *names: str) -> KeepAliveServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return KeepAliveServer(tls=context)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[KeepAliveServer]:
    server = _tls_server(ca, "localhost", "127.0.0.1")
    yield server
    server.close()


def _client_trusting(ca: trustme.CA) -> httpx.AsyncClient:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    return httpx.AsyncClient(transport=AsyncioTransport(verify=context, limits=limits))


def _settings() -> MonitorSettings:
    return MonitorSettings(timeout_s=5, retries=0)


async def _fetch_all(client: httpx.AsyncClient, urls: list[str], pause_s: float = 0.0) -> list:
    results = []
    async with client:
        for url in urls:
            results.append(await fetch_target(client, Target(url, "list"), _settings()))
            await asyncio.sleep(pause_s)
    return results


def test_https_page_is_fetched_whole_over_one_kept_alive_connection(ca, tls_server):
    """Over TLS, three fetches in a row reuse one connection, and each body is the page."""
    results = asyncio.run(_fetch_all(_client_trusting(ca), [tls_server.url()] * 3))
    assert [r.error for r in results] == [None, None, None]
    assert all(r.exchanges[-1].raw_body == PAGE for r in results)
    assert tls_server.connections == 1 and tls_server.requests == 3


def test_a_certificate_for_another_host_is_refused(ca):
    """The certificate is checked: a host it was not issued for is an error naming it."""
    server = _tls_server(ca, "elsewhere.test")
    try:
        (result,) = asyncio.run(_fetch_all(_client_trusting(ca), [server.url()]))
    finally:
        server.close()
    assert result.error is not None and "certificate" in result.error.lower()
    assert server.requests == 0


def test_an_untrusted_certificate_is_refused(tls_server):
    """A certificate from a CA the client does not trust is an error, never a page."""
    other = trustme.CA()
    (result,) = asyncio.run(_fetch_all(_client_trusting(other), [tls_server.url()]))
    assert result.error is not None and "certificate" in result.error.lower()
    assert tls_server.requests == 0


def _client_with(context: ssl.SSLContext | DeferredTLSContext) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    return httpx.AsyncClient(transport=AsyncioTransport(verify=context, limits=limits))


def test_the_monitors_context_loads_its_trust_at_the_first_tls_connection(
    ca, tls_server, tmp_path, monkeypatch
):
    """No TLS context is made (nor CA loaded) until a TLS connection needs one; then
    $SSL_CERT_FILE is trusted, and the context serves the connections after it."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = DeferredTLSContext()
    client = _client_with(context)
    assert not context.made  # an http:// cycle stops here
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # read when first used, not before
    first, second = asyncio.run(_fetch_all(client, [tls_server.url(), tls_server.url("/b")]))
    assert first.error is None and first.exchanges[-1].raw_body == PAGE
    assert second.error is None
    made = context.context()
    assert made.cert_store_stats()["x509_ca"] == 1
    assert made.verify_mode == ssl.CERT_REQUIRED and made.check_hostname


def test_the_monitors_context_verifies_like_httpxs(ca, tls_server, tmp_path, monkeypatch):
    """Deferred is not lax: a CA it was not told to trust, or another host, is refused."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    (untrusted,) = asyncio.run(_fetch_all(_client_with(DeferredTLSContext()), [tls_server.url()]))
    assert untrusted.error is not None and "certificate" in untrusted.error.lower()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    elsewhere = _tls_server(ca, "elsewhere.test")
    try:
        (wrong_host,) = asyncio.run(
            _fetch_all(_client_with(DeferredTLSContext()), [elsewhere.url()])
        )
    finally:
        elsewhere.close()
    assert wrong_host.error is not None and "certificate" in wrong_host.error.lower()
    assert tls_server.requests == 0 and elsewhere.requests == 0


def test_a_connection_the_server_dropped_while_idle_is_not_reused():
    """A server closing idle keep-alive connections silently never costs a failed fetch."""
    server = KeepAliveServer(idle_close_s=0.1)
    try:
        client = httpx.AsyncClient(transport=AsyncioTransport(
            verify=ssl.create_default_context(), limits=httpx.Limits()))  # fmt: skip
        results = asyncio.run(_fetch_all(client, [server.url()] * 3, pause_s=0.4))
    finally:
        server.close()
    assert [r.error for r in results] == [None, None, None]  # retries = 0: no second chance
    assert server.connections == 3


def _client(max_connections: int, max_keepalive: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
    return httpx.AsyncClient(transport=AsyncioTransport(verify=ssl.create_default_context(),
                                                        limits=limits))  # fmt: skip


async def _fetch_together(client: httpx.AsyncClient, urls: list[str]) -> list:
    async with client:
        return await asyncio.gather(
            *(fetch_target(client, Target(url, "list"), _settings()) for url in urls)
        )


def _wait_for(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_more_requests_than_connections_queue_and_share_the_pool():
    """12 fetches at once through a pool of 2: every one is whole, over 2 connections only."""
    server = KeepAliveServer()
    try:
        results = asyncio.run(_fetch_together(_client(2, 2), [server.url()] * 12))
    finally:
        server.close()
    assert [r.error for r in results] == [None] * 12
    assert all(r.exchanges[-1].raw_body == PAGE for r in results)
    assert server.connections == 2 and server.requests == 12


def test_idle_connections_beyond_the_keepalive_limit_are_closed():
    """After a burst over 4 connections, at most max_keepalive_connections (1) stay open."""
    server = KeepAliveServer()
    try:

        async def burst_then_linger() -> list:
            client = _client(4, 1)
            async with client:
                results = await asyncio.gather(
                    *(fetch_target(client, Target(server.url(), "list"), _settings())
                      for _ in range(8))  # fmt: skip
                )
                # the client is still open: its pool alone decided what to close
                await asyncio.to_thread(_wait_for, lambda: server.connections - server.closed <= 1)
                return [results, server.connections, server.connections - server.closed]

        results, opened, still_open = asyncio.run(burst_then_linger())
    finally:
        server.close()
    assert [r.error for r in results] == [None] * 8
    assert opened > 1  # the burst did use several connections
    assert still_open == 1


def test_a_full_pool_closes_an_idle_connection_to_reach_another_host():
    """With room for one connection, a fetch of a second origin replaces the idle first one."""
    server = KeepAliveServer()
    urls = [server.url(), server.url(host="localhost"), server.url()]
    try:
        sequential = asyncio.run(_fetch_all(_client(1, 1), urls))
        together = asyncio.run(_fetch_together(_client(1, 1), urls))
    finally:
        server.close()
    assert [r.error for r in sequential + together] == [None] * 6
    assert server.requests == 6


def test_monitor_check_over_https_end_to_end(ca, tls_server, tmp_path):
    """`monitor check` of an https:// page, trusting a CA through $SSL_CERT_FILE, records it."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    config = write_config(tmp_path, [{"name": "active", "url": tls_server.url(host="localhost"),
                                      "role": "active"}])  # fmt: skip
    env = {**os.environ, "SSL_CERT_FILE": str(ca_file)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "check", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 120
    entries = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "entries", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    rows = [json.loads(line) for line in entries.stdout.splitlines()]
    assert len(rows) > 10 and all(row["state"] == "active" for row in rows)


class StallingServer(KeepAliveServer):
    """Answers with headers and the first half of the page, then holds the connection
    without a word until released: a response in flight for as long as a test needs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                buffer = b""
                while not self._stop.is_set():
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    _, buffer = buffer.split(b"\r\n\r\n", 1)
                    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                            f"Content-Length: {len(PAGE)}\r\n\r\n").encode()  # fmt: skip
                    half = len(PAGE) // 2
                    conn.sendall(head + PAGE[:half])
                    self.release.wait(timeout=10)
                    conn.sendall(PAGE[half:])
            except OSError:
                return

    def close(self) -> None:
        self.release.set()
        super().close()


def test_a_request_waiting_for_a_full_pool_times_out_with_a_pool_error():
    """With its one connection busy, another request waits for the pool's timeout and
    fails as httpx's PoolTimeout; once the connection is free, requests go through again."""
    server = StallingServer()

    async def scenario() -> tuple[str, bytes]:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        client = httpx.AsyncClient(
            transport=AsyncioTransport(verify=ssl.create_default_context(), limits=limits),
            timeout=httpx.Timeout(5.0, pool=0.2),
        )
        async with client:
            async with client.stream("GET", server.url()) as busy:
                with pytest.raises(httpx.PoolTimeout) as waited:
                    await client.get(server.url())
                server.release.set()
                body = await busy.aread()
            assert body == PAGE
            after = await client.get(server.url())
            return type(waited.value).__name__, after.content

    try:
        name, after = asyncio.run(scenario())
    finally:
        server.close()
    assert name == "PoolTimeout" and after == PAGE
    assert server.connections == 1  # the connection served both, kept alive between


def test_a_fetch_cancelled_mid_body_leaves_the_pool_usable():
    """A fetch cancelled while its body arrives (a deadline, the daemon stopping) closes
    its connection; the next fetch through the same client opens another and succeeds."""
    server = StallingServer()

    async def scenario() -> list:
        client = _client(1, 1)
        async with client:
            first = asyncio.create_task(
                fetch_target(client, Target(server.url(), "list"), _settings())
            )
            await asyncio.to_thread(_wait_for, lambda: server.connections == 1)
            await asyncio.sleep(0.1)  # the headers and half the body are in
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            server.release.set()  # the next response is sent whole
            return [await fetch_target(client, Target(server.url(), "list"), _settings())]

    try:
        (second,) = asyncio.run(scenario())
    finally:
        server.close()
    assert second.error is None and second.exchanges[-1].raw_body == PAGE
    assert server.connections == 2  # the cancelled response's connection was not reused


def test_httpcore_still_names_the_primitives_the_monitor_replaces():
    """httpcore's pool and HTTP/1.1 connection use asyncio's Lock and Event in the monitor
    (no anyio under them): an httpcore that renamed them shows here, not as lost speed."""
    from monitor.netbackend import use_asyncio_primitives

    assert use_asyncio_primitives() is True


def test_closing_a_connection_again_after_a_cancelled_close_is_quiet():
    """A fetch cancelled while closing its connection (the daemon's stop) leaves asyncio's
    shared close future cancelled; the pool closing that connection afterwards must not
    take that for its own cancellation (before: CancelledError in place of the cycle's
    CycleCancelled). A cancel of the closing task itself still propagates."""
    from monitor.netbackend import AsyncioStream

    async def scenario() -> bool:
        accepted: list[asyncio.StreamWriter] = []
        server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        stream = AsyncioStream(reader, writer)
        first = asyncio.create_task(stream.aclose())
        await asyncio.sleep(0)  # it awaits the close future
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await stream.aclose()  # the pool's close of the same connection
        for peer in accepted:
            peer.close()
            await peer.wait_closed()
        server.close()
        await server.wait_closed()
        return first.cancelled()

    assert asyncio.run(scenario()) is True
