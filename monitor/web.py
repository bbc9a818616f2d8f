"""Read-only HTTP (`monitor serve`): routing, the handler and the server; the change log as a
web page, each entry's timeline, the archived bodies (sandboxed), the feeds and a health
check. Standard library only. The HTML itself is rendered by webpages.py.

The server never writes: each request opens the database, reads, and closes it (sqlite
connections belong to one thread, and opening one is cheap).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from msgspec import Struct

from monitor.config import Config
from monitor.decoders import DecodeError
from monitor.errors import MonitorError, StoreError
from monitor.extract.charset import is_html
from monitor.feed import FeedFormat, render_feed
from monitor.lookup import find_entry
from monitor.models import ENTRY_STATES, EVENT_KINDS, format_time
from monitor.paths import warc_dir
from monitor.publish import feed_info
from monitor.records import archived_body
from monitor.store import EventQuery, Store, open_store
from monitor.webcaptures import (
    ambiguous_html,
    capture_view_html,
    captures_html,
    entries_html,
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
CONTROL_ESCAPES = {n: f"\\x{n:02x}" for n in (*range(0x20), 0x7F)}


class Response(Struct, frozen=True):
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
        _, headers, body = archived_body(store, warc_dir(config), capture_id, decoded=True,
                                         max_bytes=config.monitor.max_bytes)  # fmt: skip
    except DecodeError as error:  # the body as the server sent it: a bomb, a broken coding
        why = (f"The body of capture #{capture_id} cannot be shown here: {_decode_problem(error)}"
               f". `monitor show --raw {capture_id}` prints it as archived.")  # fmt: skip
        return error_page(422, "Capture cannot be decoded", why, site_title=site)
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
    if declared is None and capture.original_capture_id is not None:
        # A 304's body is the one it confirms, and so is its type (the 304 names none).
        original = store.capture(capture.original_capture_id)
        declared = original.content_type if original is not None else None
    if declared is None and is_html(None, body):  # no type sent: HTML if the check read it so
        declared = "text/html"
    extra = (("X-Frame-Options", "SAMEORIGIN"),)
    return Response(200, body, capture_type(declared), CAPTURE_CSP, headers=extra)


def _decode_problem(error: DecodeError) -> str:
    """What was wrong with the body's coding, from the decoder's own words (no paths)."""
    cause = error.__cause__ if isinstance(error.__cause__, DecodeError) else error
    return str(cause)


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
        data = render_feed(events, info, fmt, max_entries=config.feed.max_entries)
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
