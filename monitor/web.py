"""Read-only HTTP (`monitor serve`): routing, the handler and the server; the change log as a
web page, each entry's timeline, the archived bodies (sandboxed), the feeds and a health
check. Standard library only. The HTML itself is rendered by webpages.py.

The server never writes: each request opens the database, reads, and closes it (sqlite
connections belong to one thread, and opening one is cheap).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from monitor.config import Config
from monitor.errors import MonitorError, StoreError
from monitor.feed import FeedFormat, render_feed
from monitor.lookup import find_entry
from monitor.models import ENTRY_STATES, EVENT_KINDS, format_time, utc_now
from monitor.paths import warc_dir
from monitor.publish import feed_info
from monitor.records import archived_body
from monitor.store import EventQuery, Store, open_store
from monitor.webcaptures import (
    ambiguous_html,
    capture_view_html,
    captures_html,
    entries_html,
    host_allowed,
    neighbours,
)
from monitor.webpages import CSS_HASH, LogQuery, entry_html, error_html, log_html

log = logging.getLogger("monitor.web")

PAGE_SIZE = 100  # events per page of the change log
_MAX_SEQ = 2**63 - 1  # SQLite's largest integer: a `before` past it means nothing
# feedgen switches the process locale while it formats RSS dates: one rendering at a time.
_FEED_LOCK = threading.Lock()
_FEEDS: dict[str, tuple[FeedFormat, str]] = {
    "/feed.atom": ("atom", "application/atom+xml; charset=utf-8"),
    "/feed.json": ("json", "application/feed+json; charset=utf-8"),
    "/feed.rss": ("rss", "application/rss+xml; charset=utf-8"),
}
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
# The stylesheet (webpages.CSS) is allowed by its hash: no inline style attribute or script
# can run.
HTML_CSP = (
    f"default-src 'none'; style-src 'sha256-{CSS_HASH}'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# An archived page is shown as received, so it gets a sandbox: no script runs, nothing loads.
# Framed only by this site's own capture view (/captures/ID/view).
CAPTURE_CSP = (
    "sandbox; default-src 'none'; img-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
VIEW_CSP = HTML_CSP + "; frame-src 'self'"  # the capture view frames /captures/ID
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" '
    b'rx="3" fill="#0b57a4"/><path d="M3 9h3l2-5 2 8 2-3h1" fill="none" stroke="#fff" '
    b'stroke-width="1.6"/></svg>'
)
_CAPTURE_TYPES = ("text/html", "application/xhtml+xml")
_CHARSET = re.compile(r"[A-Za-z0-9._:-]{1,40}")
_CONTROL = {n: f"\\x{n:02x}" for n in (*range(0x20), 0x7F)}


@dataclass(frozen=True)
class Response:
    """One answer: status, body and headers; `etag` asks for a strong ETag and 304s."""

    status: int
    body: bytes
    content_type: str = HTML_TYPE
    csp: str = HTML_CSP
    headers: tuple[tuple[str, str], ...] = ()
    etag: bool = True


def error_page(status: int, heading: str, message: str, *, site_title: str) -> Response:
    """An HTML error page; `heading` and `message` are escaped by the renderer."""
    body = error_html(heading, message, site_title=site_title)
    return Response(status, body.encode("utf-8"), etag=False)


# -- the change log (/) and one entry (/entries/ID) --------------------------------------------


def parse_log_query(query: Mapping[str, list[str]], page_names: Sequence[str]) -> LogQuery:
    """The LogQuery in a parsed query string; values that mean nothing are ignored."""
    kinds = tuple(k for k in EVENT_KINDS if k in query.get("kind", []))
    pages = tuple(p for p in page_names if p in query.get("page", []))
    before = None
    raw = query.get("before", [""])[-1]
    # The length check comes first: int() refuses strings of thousands of digits.
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= _MAX_SEQ:
        before = int(raw)
    return LogQuery(kinds, pages, before)


def log_page(store: Store, config: Config, query: Mapping[str, list[str]]) -> Response:
    """`/`: the pages' status, the filter form and one page of the change log, newest first.

    Pages are keyed by event seq (`?before=SEQ`), so reading an old page costs no more than
    reading the newest one.
    """
    stored = store.page_rows()
    names = list(dict.fromkeys([p.name for p in config.pages] + [r.name for r in stored]))
    wanted = parse_log_query(query, names)
    found = store.events(
        EventQuery(
            kinds=wanted.kinds, pages=wanted.pages, before_seq=wanted.before, limit=PAGE_SIZE + 1
        )
    )
    shown = found[:PAGE_SIZE]
    older = store.event_seq(shown[-1].id) if len(found) > PAGE_SIZE else None
    body = log_html(
        config.feed.title, stored, store.last_check(), wanted, names, shown, older_before=older
    )
    return Response(200, body.encode("utf-8"))


def entry_page(store: Store, config: Config, entry_id: str) -> Response:
    """`/entries/ID`: the entry now, every version with the difference from the one before,
    and its events."""
    site = config.feed.title
    found = find_entry(store, entry_id)
    if len(found.candidates) > 1:
        return Response(404, ambiguous_html(entry_id, found.candidates, site_title=site).encode())
    entry = store.entry(found.entry_id) if found.entry_id else None
    if entry is None:
        return error_page(
            404, "No such entry", f"No entry has the id {entry_id!r}.", site_title=site
        )
    versions = store.versions(entry.id)
    events = list(reversed(store.events(EventQuery(entry_id=entry.id))))
    body = entry_html(entry, versions, events, site_title=site, link=store.entry_page(entry.id),
                      link_checks=store.entry_page_checks(entry.id))  # fmt: skip
    return Response(200, body.encode("utf-8"))


# -- archived bodies, feeds, health -----------------------------------------------------------


def capture_type(declared: str | None) -> str:
    """The Content-Type to serve an archived body with: HTML stays HTML, the rest plain text."""
    media, _, params = (declared or "").partition(";")
    media = media.strip().lower()
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        value = value.strip().strip('"')
        if key.strip().lower() == "charset" and _CHARSET.fullmatch(value):
            charset = value
    chosen = media if media in _CAPTURE_TYPES else "text/plain"
    return f"{chosen}; charset={charset}" if charset else chosen


def capture_body(store: Store, config: Config, capture_id: int) -> Response:
    """`/captures/ID`: the archived body byte for byte, sandboxed so nothing in it runs."""
    site = config.feed.title
    capture = store.capture(capture_id)
    if capture is None:
        return error_page(404, "No such capture", f"No capture #{capture_id}.", site_title=site)
    if capture.warc_file is None:
        why = f"Capture #{capture_id} has no archived response: {capture.error or 'no answer'}."
        return error_page(404, "Nothing archived", why, site_title=site)
    try:
        _, headers, body = archived_body(store, warc_dir(config), capture_id, decoded=True)
    except MonitorError as error:
        log.error("capture #%d: %s", capture_id, error)
        # The reason (with file paths) goes to the log, not to a possibly public page.
        why = (
            f"The body of capture #{capture_id} cannot be shown here: it is too large once "
            f"decoded, or damaged. `monitor show --raw {capture_id}` prints it as archived; "
            "`monitor verify` checks the whole archive."
        )
        return error_page(500, "Capture cannot be shown", why, site_title=site)
    declared = next((v for k, v in headers if k.lower() == "content-type"), capture.content_type)
    extra = (("X-Frame-Options", "SAMEORIGIN"),)
    return Response(200, body, capture_type(declared), CAPTURE_CSP, headers=extra)


CAPTURES_SHOWN = 500  # newest captures listed on /captures


def entries_list(store: Store, config: Config, query: Mapping[str, list[str]]) -> Response:
    """`/entries`: every entry as it stands now, or those of one state (?state=)."""
    state = next((s for s in ENTRY_STATES if s in query.get("state", [])), None)
    body = entries_html(store.entries(state), state, ENTRY_STATES, site_title=config.feed.title)
    return Response(200, body.encode("utf-8"))


def captures_list(store: Store, config: Config, query: Mapping[str, list[str]]) -> Response:
    """`/captures`: the newest captures, of every page or one (?page=)."""
    names = list(dict.fromkeys([p.name for p in config.pages] +
                               [r.name for r in store.page_rows()]))  # fmt: skip
    page = next((n for n in names if n in query.get("page", [])), None)
    rows = store.captures([page] if page else [], CAPTURES_SHOWN)
    body = captures_html(rows, page, names, site_title=config.feed.title)
    return Response(200, body.encode("utf-8"))


def capture_view(store: Store, config: Config, capture_id: int) -> Response:
    """`/captures/ID/view`: a banner over the archived body, framed and sandboxed."""
    site = config.feed.title
    capture = store.capture(capture_id)
    if capture is None:
        return error_page(404, "No such capture", f"No capture #{capture_id}.", site_title=site)
    previous, following = neighbours(capture, store.captures([capture.page]))
    body = capture_view_html(capture, previous, following, site_title=site)
    return Response(200, body.encode("utf-8"), csp=VIEW_CSP)


def feed_response(config: Config, path: str) -> Response:
    """One of the feeds, rendered from the newest [feed].max_entries events.

    Its own address comes from [feed].base_url only, never from the request's Host.
    """
    fmt, content_type = _FEEDS[path]
    with read_store(config) as store:
        events = store.events(EventQuery(limit=config.feed.max_entries))
    base_url = config.feed.base_url
    if base_url:
        info = feed_info(config, home_url=base_url, self_url=base_url + path.lstrip("/"))
    else:
        info = feed_info(config)
    with _FEED_LOCK:
        data = render_feed(events, info, fmt, max_entries=config.feed.max_entries, now=utc_now())
    return Response(200, data, content_type, DATA_CSP)


def health(config: Config) -> Response:
    """`/healthz`: 200 with the last check and each page's status; 503 if the database fails."""
    try:
        with read_store(config) as store:
            last = store.last_check()
            stored = {row.name: row.status for row in store.page_rows()}
    except StoreError as error:
        log.error("healthz: %s", error)
        data: dict[str, Any] = {"ok": False, "error": "the database cannot be read"}
        status = 503
    else:
        pages = {page.name: stored.pop(page.name, "new") for page in config.pages}
        pages.update(stored)  # pages no longer in the config still have a status
        when = format_time(last.finished_at or last.started_at) if last else None
        data, status = {"ok": True, "last_check": when, "pages": pages}, 200
    body = (json.dumps(data) + "\n").encode()
    extra = (("Cache-Control", "no-store"),)
    return Response(status, body, JSON_TYPE, DATA_CSP, headers=extra, etag=False)


@contextmanager
def read_store(config: Config) -> Iterator[Store]:
    """The database, opened for this request only (never created), closed afterwards."""
    store = open_store(config, write=False)
    try:
        yield store
    finally:
        store.close()


_ENTRY_PATH = re.compile(r"/entries/([^/]{1,200})")
_CAPTURE_PATH = re.compile(r"/captures/([0-9]{1,15})(/view)?")


def respond(config: Config, target: str) -> Response:
    """The answer to a GET of `target` (path and query), as the handler sends it."""
    site = config.feed.title
    if target.startswith("/"):  # origin form; urlsplit would read "//x" as a host
        path, _, query_string = target.partition("?")
    else:  # absolute form, as proxies send it
        parts = urlsplit(target)
        path, query_string = parts.path or "/", parts.query
    try:
        query = parse_qs(query_string, max_num_fields=200)
    except ValueError:
        return error_page(400, "Bad request", "Too many query parameters.", site_title=site)
    if path in _FEEDS:
        return feed_response(config, path)
    if path == "/healthz":
        return health(config)
    if path == "/favicon.svg":
        return Response(200, ICON, "image/svg+xml", DATA_CSP)
    entry = _ENTRY_PATH.fullmatch(path)
    capture = _CAPTURE_PATH.fullmatch(path)
    lists = {"/entries": entries_list, "/captures": captures_list}
    if path not in ("/", *lists) and entry is None and capture is None:
        return error_page(404, "Not found", "There is no page at this address.", site_title=site)
    with read_store(config) as store:
        if entry is not None:
            return entry_page(store, config, unquote(entry[1]))
        if capture is not None and capture[2]:
            return capture_view(store, config, int(capture[1]))
        if capture is not None:
            return capture_body(store, config, int(capture[1]))
        if path in lists:
            return lists[path](store, config, query)
        return log_page(store, config, query)


# -- the server ---------------------------------------------------------------------------------


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
        except StoreError as error:
            log.error("%s: %s", self.path.translate(_CONTROL), error)
            response = error_page(
                503,
                "Database unavailable",
                "The change log cannot be read right now; try again shortly.",
                site_title=config.feed.title,
            )
        except Exception:  # a bug must not stop the server: log it, answer 500, go on
            log.exception("error answering %s", self.path.translate(_CONTROL))
            response = error_page(
                500, "Server error", "Something went wrong.", site_title=config.feed.title
            )
        try:
            self._send(response, head=head)
        except ConnectionError:  # the client went away mid-answer: nothing left to tell it
            self.close_connection = True

    def _host_allowed(self) -> bool:
        """The Host names this server (DNS rebinding defence); see webcaptures.host_allowed."""
        server = self.server
        return host_allowed(
            self.headers.get("Host"),
            bound=server.server_name,
            port=server.server_port,
            allowed=server.config.serve.allowed_hosts,
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
            line = (format % args).translate(_CONTROL)
            sys.stderr.write(f"{self.address_string()} [{self.log_date_time_string()}] {line}\n")


class MonitorServer(ThreadingHTTPServer):
    """The HTTP server of `monitor serve`: one thread per connection, the config attached."""

    daemon_threads = True

    def __init__(self, config: Config, host: str, port: int, *, quiet: bool = False) -> None:
        self.config = config
        self.quiet = quiet
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

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
