"""A local web archive for backfill tests: a CDX server and mementos, from a declared history.

Usage (tests/ is on sys.path)::

    from fake_archive import ArchivedCapture, FakeArchive, imls_history

    with FakeArchive(imls_history()) as archive:
        archive.cdx_url            # http://127.0.0.1:PORT/cdx/search/cdx
        archive.memento_template   # http://127.0.0.1:PORT/web/{timestamp}id_/{url}
        ...
        archive.requests           # every request: path, query, logical time, answer status

The CDX server speaks Wayback's API: `url` (exact URL, scheme and `www.` ignored),
`output=json` (array of arrays with a header row; `fl` picks and orders fields),
`filter=[!]field:regex` (repeatable), `collapse=digest` (adjacent rows only), `from`/`to`,
`limit`, `showResumeKey`/`resumeKey`. Without `output=json` it answers classic text lines.
Options make it misbehave as real servers do: `style="pywb"` (JSON objects one per line,
resume keys ignored), `collapse=False`/`filters=False` (parameters ignored), `noise=True`
(a warning row of the wrong width and blank lines), `throttle=N` (the first N requests
get `throttle_status`, 429, with `retry_after`), `refuse=True` (403 to everything).

Mementos at `/web/{timestamp}id_/{url}` replay the capture's bytes with Memento-Datetime,
X-Archive-Src and a Link rel="original", as Wayback does; a timestamp with no capture
redirects (302) to the nearest one, a URL never captured gets Wayback's "Hrm." 404 page.
A capture's `playback` makes it one of Wayback's error pages, `redirect_to` a redirect to
another memento.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from archive_history import REDESIGN_SELECT, ArchivedCapture, digest_of, imls_history

__all__ = [
    "REDESIGN_SELECT",
    "ArchivedCapture",
    "FakeArchive",
    "SeenRequest",
    "digest_of",
    "imls_history",
]

FIELDS = ("urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length")
PYWB_NAMES = {"original": "url", "mimetype": "mime", "statuscode": "status"}
HRM_PAGE = (
    b"<!DOCTYPE html><html><head><title>Wayback Machine</title></head><body>"
    b"<h2>Hrm.</h2><p>The Wayback Machine has not archived that URL.</p></body></html>"
)
EXCLUDED_PAGE = (
    b"<!DOCTYPE html><html><head><title>Wayback Machine</title></head><body>"
    b"<p>Sorry.</p><p>This URL has been excluded from the Wayback Machine.</p></body></html>"
)
_MEMENTO = re.compile(r"^/web/(\d{1,14})(?:[a-z]{2}_)?/(.+)$")


@dataclass(frozen=True)
class SeenRequest:
    """One request the fake archive got, and what it answered."""

    path: str
    query: tuple[tuple[str, str], ...]
    at: float  # the archive's clock when it arrived (a test's logical clock if given)
    status: int
    kind: Literal["cdx", "memento", "other"]

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


def _key(url: str) -> str:
    """URLs the archive counts as one (Wayback matches SURTs: scheme and www. ignored)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.rstrip("/") or ""
    return host + path + (f"?{parts.query}" if parts.query else "")


def _urlkey(url: str) -> str:
    parts = urlsplit(url)
    host = ",".join(reversed((parts.hostname or "").lower().removeprefix("www.").split(".")))
    return f"{host}){parts.path.lower() or '/'}"


def _fields(capture: ArchivedCapture) -> dict[str, str]:
    return {
        "urlkey": _urlkey(capture.url),
        "timestamp": capture.timestamp,
        "original": capture.url,
        "mimetype": capture.mimetype,
        "statuscode": str(capture.status),
        "digest": capture.digest,
        "length": str(len(capture.body)),
    }


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class FakeArchive:
    """A CDX server and a memento server on 127.0.0.1, in a thread, from a declared history."""

    def __init__(
        self,
        history: Iterable[ArchivedCapture],
        *,
        style: Literal["wayback", "pywb"] = "wayback",
        fields: Sequence[str] = FIELDS,
        collapse: bool = True,
        filters: bool = True,
        noise: bool = False,
        throttle: int = 0,
        throttle_status: int = 429,
        retry_after: str | None = "7",
        refuse: bool = False,
        prefix: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.history = sorted(history, key=lambda c: c.timestamp)
        # Computed once: thousands of rows are filtered again on every CDX request.
        self._index = [(c, _key(c.url), _fields(c)) for c in self.history]
        self.style = style
        self.fields = tuple(fields)
        self.collapse = collapse
        self.filters = filters
        self.noise = noise
        self.throttle = throttle
        self.throttle_status = throttle_status
        self.retry_after = retry_after
        self.refuse = refuse
        self.prefix = prefix  # match URLs by prefix (matchType=prefix, as some servers do)
        self.clock = clock
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeArchive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cdx_url(self) -> str:
        return f"{self.base}/cdx/search/cdx"

    @property
    def memento_template(self) -> str:
        return f"{self.base}/web/{{timestamp}}id_/{{url}}"

    def cdx_requests(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.kind == "cdx"]

    def memento_requests(self) -> list[SeenRequest]:
        return [r for r in self.requests if r.kind == "memento"]

    # --- answers -----------------------------------------------------------------------

    def answer(self, target: str) -> tuple[_Answer, Literal["cdx", "memento", "other"]]:
        """The answer to one request target (path and query); also used by the handler."""
        parts = urlsplit(target)
        kind: Literal["cdx", "memento", "other"] = "other"
        if parts.path == "/cdx/search/cdx":
            kind = "cdx"
        elif _MEMENTO.match(target):
            kind = "memento"
        with self._lock:
            throttled = self.throttle > 0
            self.throttle -= 1 if throttled else 0
        if self.refuse:
            body = b"AdministrativeAccessControlException: Blocked Site Error"
            return _Answer(403, body), kind
        if throttled:
            headers = (("Retry-After", self.retry_after),) if self.retry_after else ()
            return _Answer(self.throttle_status, b"Too Many Requests", headers), kind
        if kind == "cdx":
            return self._cdx(parse_qsl(parts.query, keep_blank_values=True)), kind
        if kind == "memento":
            return self._memento(target), kind
        return _Answer(404, b"not found"), kind

    def _rows(
        self, query: list[tuple[str, str]]
    ) -> list[tuple[ArchivedCapture, dict[str, str]]]:
        params = dict(query)
        wanted = _key(params.get("url", ""))
        rows = [(c, fields) for c, key, fields in self._index
                if key == wanted or (self.prefix and key.startswith(wanted))]  # fmt: skip
        if self.filters:
            for value in (v for k, v in query if k == "filter"):
                negate = value.startswith("!")
                name, _, pattern = value.lstrip("!").partition(":")
                matcher = re.compile(pattern)
                rows = [r for r in rows if bool(matcher.fullmatch(r[1].get(name, ""))) != negate]
        since = params.get("from", "").ljust(14, "0")
        until = params.get("to", "").ljust(14, "9") if params.get("to") else "9" * 14
        rows = [r for r in rows if since <= r[0].timestamp <= until]
        if self.collapse and params.get("collapse") == "digest":
            digests = [fields["digest"] for _, fields in rows]
            rows = [r for i, r in enumerate(rows) if i == 0 or digests[i - 1] != digests[i]]
        return rows

    def _cdx(self, query: list[tuple[str, str]]) -> _Answer:
        params = dict(query)
        rows = self._rows(query)
        offset = 0
        resume = params.get("resumeKey")
        if self.style == "wayback" and resume and resume.startswith("fake+"):
            offset = int(resume.removeprefix("fake+"))
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else len(rows)
        page = rows[offset : offset + limit]
        more = offset + limit < len(rows) and self.style == "wayback"
        key = f"fake+{offset + limit}" if more and params.get("showResumeKey") == "true" else None
        fields = [f for f in params.get("fl", ",".join(self.fields)).split(",") if f]
        if self.style == "pywb":
            lines = [json.dumps({PYWB_NAMES.get(f, f): row[f] for f in fields}) for _, row in page]
            body = ("\n".join(lines) + "\n").encode()
            return _Answer(200, body, (("Content-Type", "text/x-ndjson"),))
        table = [[row[f] for f in fields] for _, row in page]
        if params.get("output") != "json":
            text = "".join(" ".join(row) + "\n" for row in table)
            return _Answer(200, (text + (f"\n{key}\n" if key else "")).encode())
        out: list[list[str]] = [fields, *table] if table else []
        if self.noise and out:
            out.insert(2, ["warning", "some rows were skipped"])
        if key:
            out += [[], [key]]
        text = "[" + ",\n".join(json.dumps(row) for row in out) + "]\n"
        if self.noise:
            text += "\n\n"
        return _Answer(200, text.encode(), (("Content-Type", "application/json"),))

    def _memento(self, target: str) -> _Answer:
        match = _MEMENTO.match(target)
        assert match is not None
        timestamp, url = match.group(1).ljust(14, "0"), match.group(2)
        captures = [c for c in self.history if _key(c.url) == _key(url)]
        if not captures:
            return _Answer(404, HRM_PAGE, (("Content-Type", "text/html"),))
        exact = next((c for c in captures if c.timestamp == timestamp), None)
        if exact is None:  # Wayback sends a near miss to the nearest capture
            nearest = min(captures, key=lambda c: abs(int(c.timestamp) - int(timestamp)))
            location = f"{self.base}/web/{nearest.timestamp}id_/{url}"
            return _Answer(302, b"", (("Location", location),))
        if exact.redirect_to is not None:
            location = f"{self.base}/web/{exact.redirect_to}id_/{url}"
            return _Answer(302, b"", (("Location", location),))
        if exact.playback == "not-archived":
            return _Answer(404, HRM_PAGE, (("Content-Type", "text/html"),))
        if exact.playback == "excluded":
            return _Answer(200, EXCLUDED_PAGE, (("Content-Type", "text/html"),))
        headers = (
            ("Content-Type", f"{exact.mimetype}; charset=utf-8"),
            ("Memento-Datetime", format_datetime(exact.at, usegmt=True)),
            ("X-Archive-Src", f"fake-{exact.timestamp}.warc.gz"),
            ("Link", f'<{exact.url}>; rel="original"'),
        )
        return _Answer(exact.status, exact.body, headers)

    def _record(self, target: str, status: int, kind: Literal["cdx", "memento", "other"]) -> None:
        parts = urlsplit(target)
        seen = SeenRequest(
            parts.path,
            tuple(parse_qsl(parts.query, keep_blank_values=True)),
            self.clock(),
            status,
            kind,
        )
        with self._lock:
            self.requests.append(seen)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        archive = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer: headers and body apart meet delayed ACKs (40 ms each).
            wbufsize = -1
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                answer, kind = archive.answer(self.path)
                archive._record(self.path, answer.status, kind)
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep pytest's output for failures

        return Handler
