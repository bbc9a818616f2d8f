"""`monitor serve`'s HTTP server: threads, Host checks, ETags (each path's answer: web.py)."""

from __future__ import annotations

import hashlib
import logging
import signal
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from monitor.config import Config
from monitor.errors import MonitorError, NoDatabaseYet, StoreError
from monitor.web import CONTROL_ESCAPES, Response, error_page, respond
from monitor.webcaptures import host_allowed

log = logging.getLogger("monitor.web")


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes do not matter."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


class _Handler(BaseHTTPRequestHandler):
    server: MonitorServer
    protocol_version = "HTTP/1.1"
    server_version = "monitor"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection gives its thread back after this

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            # A bare "GET /path" would be answered by the body alone: no status, no headers,
            # so no sandbox around an archived page. No client of ours speaks 0.9: refuse.
            self.request_version = "HTTP/1.0"
            self.close_connection = True
            self.send_error(400, "HTTP/0.9 is not served: send HTTP/1.0 or 1.1")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>; every method but GET and HEAD gets a 405.
        if name.startswith("do_"):
            return self._reject_method
        raise AttributeError(name)

    def _reject_method(self) -> None:
        self.close_connection = True  # the request may carry a body we do not read
        response = error_page(
            405,
            "Method not allowed",
            "This server is read-only: it answers GET and HEAD only.",
            site_title=self.server.config.feed.title,
        )
        self._send(response, head=False, extra=(("Allow", "GET, HEAD"),))

    def _answer(self, *, head: bool) -> None:
        config = self.server.config
        if not self._host_allowed():
            self.close_connection = True
            response = error_page(
                400,
                "Unknown host",
                "This server answers only to its own address (or a name in [serve].allowed_hosts).",
                site_title=config.feed.title,
            )
            self._send(response, head=head)
            return
        try:
            response = respond(config, self.path)
        except NoDatabaseYet:
            response = error_page(
                503,
                "No check yet",
                "No check has been recorded yet: the change log appears after the first one.",
                site_title=config.feed.title,
            )
        except StoreError as error:
            log.error("%s: %s", self.path.translate(CONTROL_ESCAPES), error)
            response = error_page(
                503,
                "Database unavailable",
                "The change log cannot be read right now; try again shortly.",
                site_title=config.feed.title,
            )
        except Exception:  # a bug must not stop the server: log it, answer 500, go on
            log.exception("error answering %s", self.path.translate(CONTROL_ESCAPES))
            response = error_page(
                500, "Server error", "Something went wrong.", site_title=config.feed.title
            )
        self._send(response, head=head)

    def _host_allowed(self) -> bool:
        """The Host names this server (DNS rebinding defence); see webcaptures.host_allowed.

        Two Host headers are refused (RFC 9112, 3.2), and a request in absolute form
        (`GET http://host/path`) names its host in the target: that one must pass too.
        """
        server = self.server
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            return False
        named = [hosts[0] if hosts else None]
        if not self.path.startswith("/"):
            named.append(urlsplit(self.path).netloc or None)
        return all(
            host_allowed(host, bound=server.server_name, port=server.server_port,
                         allowed=server.config.serve.allowed_hosts)  # fmt: skip
            for host in named
        )

    def _send(
        self, response: Response, *, head: bool, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        status, body = response.status, response.body
        headers = [*response.headers, *extra]
        if response.etag and status == 200:
            etag = _etag(body)
            headers += [("ETag", etag), ("Cache-Control", "no-cache")]
            if _etag_matches(self.headers.get("If-None-Match"), etag):
                status, body = 304, b""
        self.send_response(status)
        if status != 304:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", response.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors (bad request line, headers too long...) in our own page."""
        self.close_connection = True
        # A request line too broken to name its version would get a bare HTTP/0.9 answer.
        self.request_version = "HTTP/1.1"
        response = error_page(
            code,
            message or "Error",
            explain or "The request could not be understood.",
            site_title=self.server.config.feed.title,
        )
        self._send(response, head=self.command == "HEAD")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- http.server's name
        if not self.server.quiet:
            line = (format % args).translate(CONTROL_ESCAPES)
            sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] {line}\n")


class MonitorServer(ThreadingHTTPServer):
    """The HTTP server of `monitor serve`: one thread per connection, the config attached."""

    daemon_threads = True

    def __init__(self, config: Config, host: str, port: int, *, quiet: bool = False) -> None:
        self.config = config
        self.quiet = quiet
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is nothing to report; anything else is."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up in DNS; the address is enough.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    @property
    def authority(self) -> str:
        host = self.server_name
        return f"[{host}]:{self.server_port}" if ":" in host else f"{host}:{self.server_port}"

    @property
    def url(self) -> str:
        return f"http://{self.authority}/"


def make_server(
    config: Config, host: str = "127.0.0.1", port: int = 8080, *, quiet: bool = False
) -> MonitorServer:
    """A bound, not yet serving, server; MonitorError when the address cannot be used."""
    try:
        return MonitorServer(config, host, port, quiet=quiet)
    except OSError as error:
        reason = error.strerror or str(error)
        raise MonitorError(f"cannot listen on {host}:{port}: {reason}") from error


def serve_forever(config: Config, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the socket and return."""
    server = make_server(config, host, port)
    print(f"Serving {server.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # SIGTERM stops the server as Ctrl-C does (KeyboardInterrupt out of its select loop).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
