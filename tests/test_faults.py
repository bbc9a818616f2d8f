"""Network faults through `monitor check`: each is one page event, never a lost entry.

Every case runs the same story against real local servers: a baseline check, the
fault (checked twice: one event per episode), then the good answer again. The
faulty page is served by a FaultServer that can also be stopped, or replaced by a
listener whose backlog is full; a second page, on another server, stays healthy
throughout, so a fault never stops the rest of the cycle.
"""

from __future__ import annotations

import html
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import json_lines, run, write_config
from servers import (
    Close,
    Delay,
    Drip,
    FaultServer,
    Redirect,
    Reset,
    Respond,
    SeenRequest,
    Series,
    brotli_bomb,
    gzip_bomb,
    truncated_gzip,
)

TITLES = (
    "Open eBooks",
    "Museums for All",
    "Café Culture",  # not ASCII: a wrong charset shows on it
    "Film Forward",
    "Let’s Move! Museums & Gardens",
    "Community Salute",
)
ARCHIVED_TITLES = ("IMLS Focus", "WebWise", "Big Read")
MAX_BYTES = 100_000
SETTINGS = {"timeout": 0.5, "retries": 0, "max_bytes": MAX_BYTES, "confirm_checks": 3}


def slug(title: str) -> str:
    """The title's ASCII letters and digits, dashed, as a CMS makes a URL path."""
    kept = "".join(c if c.isascii() and c.isalnum() else " " for c in title.lower())
    return "-".join(kept.split())


def listing(titles: tuple[str, ...], prefix: str = "/items") -> str:
    """A listing page in the IMLS layout, one row per title."""
    rows = "".join(
        f'<div class="views-row"><div class="views-field-title">'
        f'<a href="{prefix}/{slug(t)}">{html.escape(t)}</a></div>'
        f'<div class="views-field-body"><p>About {html.escape(t)}.</p></div></div>'
        for t in titles
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>List</title></head>'
        f'<body><div class="view-content">{rows}</div></body></html>'
    )


GOOD = listing(TITLES).encode("utf-8")


def good() -> Respond:
    return Respond(200, GOOD)


class PortServer(FaultServer):
    """A FaultServer on a given port, so that one can take over from another."""

    def __init__(self, port: int = 0) -> None:
        super().__init__()
        self._wanted_port = port

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self._wanted_port))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._acceptor.start()


@dataclass(frozen=True)
class Garbage:
    """Answer with bytes that are not HTTP at all."""

    data: bytes

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        conn.sendall(self.data)


class PlainHttpPort:
    """A plain-HTTP port that answers anything it is sent (a TLS hello too) with a 400.

    As nginx or werkzeug do: an https:// client then fails its TLS handshake at once.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="PlainHttpPort")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass  # the client gave up first: nothing to answer

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


@dataclass(frozen=True)
class CloseDelimited:
    """A 200 whose body has no declared length: it ends where the server closes."""

    body: bytes

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        conn.sendall(head + b"Connection: close\r\n\r\n" + self.body)


@dataclass(frozen=True)
class ChunkedCut:
    """A chunked body whose last chunk never comes: the server closes after a few."""

    body: bytes

    def serve(self, conn: socket.socket, request: SeenRequest, stop: threading.Event) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
        chunk = self.body[: len(self.body) // 2]
        conn.sendall(head + b"\r\n" + b"%x\r\n%s\r\n" % (len(chunk), chunk))


@dataclass
class Rig:
    """The faulty page's server (replaceable), the healthy page's, and the config."""

    server: PortServer
    port: int
    config: Path
    healthy: FaultServer
    plain: PlainHttpPort
    blockers: list[socket.socket] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, spec: object) -> None:
        self.server.set("/list", spec)  # type: ignore[arg-type]

    def refuse(self) -> None:
        """Nothing listens on the port any more: connecting is refused."""
        self.server.stop()

    def fill_backlog(self) -> None:
        """A listener that never accepts, its backlog full: a connect never completes."""
        self.server.stop()
        listener = socket.create_server(("127.0.0.1", self.port), backlog=0)
        self.blockers.append(listener)
        for _ in range(3):  # Linux queues backlog + 1 handshakes, then drops SYNs
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.blockers.append(filler)
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except TimeoutError:
            return  # as wanted: a connect now hangs
        except OSError as error:
            pytest.skip(f"this kernel refuses, not drops, connections past the backlog: {error}")
        pytest.skip("this kernel still accepts connections past a full backlog")

    def restore(self) -> None:
        """The good page again, from a fresh server on the same port if the old one is down."""
        for sock in self.blockers:
            sock.close()
        self.blockers.clear()
        if self.server._stop.is_set():
            self.server = PortServer(self.port)
            self.server.start()
        self.set(good())

    def close(self) -> None:
        for sock in self.blockers:
            sock.close()
        self.server.stop()
        self.healthy.stop()
        self.plain.close()


@dataclass(frozen=True)
class Fault:
    """One row of the table: how to break the page, and what the user must then see."""

    apply: Callable[[Rig], None]
    event: str | None  # the page event of the first faulty check
    detail: str = ""  # a part of its detail
    entry_events: tuple[str, ...] = ()  # entry events the fault may rightly cause
    settings: dict = field(default_factory=dict)
    hits: int | None = None  # requests for the page during the first faulty check

    @property
    def exit_code(self) -> int:
        return 1 if self.event in ("page-error", "page-gone") else 0


def answer(spec: object) -> Callable[[Rig], None]:
    return lambda rig: rig.set(spec)


def loop(rig: Rig) -> None:
    rig.server.set("/elsewhere", Redirect("/list"))
    rig.set(Redirect("/elsewhere"))


def long_chain(rig: Rig) -> None:
    rig.server.chain("/hop", 11, good())
    rig.set(Redirect("/hop0"))  # 12 redirects in all, the limit being 10


def to_tls(rig: Rig) -> None:
    # The site "moved to https", but the https port speaks plain HTTP.
    rig.set(Redirect(f"https://127.0.0.1:{rig.plain.port}/list", status=301))


def status(code: int, **headers: str) -> Callable[[Rig], None]:
    pairs = tuple((k.replace("_", "-"), v) for k, v in headers.items())
    return answer(Respond(code, b"<html><body>oops</body></html>", pairs))


GZIP = (("Content-Encoding", "gzip"),)
LATIN1_BODY = listing(TITLES).replace('charset="utf-8"', "").encode("cp1252")

FAULTS = {
    "connection-refused": Fault(Rig.refuse, "page-error", "connection refused"),
    "connect-timeout": Fault(Rig.fill_backlog, "page-error", "connect timeout"),
    "reset-mid-body": Fault(answer(Reset(GOOD, len(GOOD) // 2)), "page-error", "mid-body"),
    "body-shorter-than-content-length": Fault(
        answer(Respond(200, GOOD, content_length=len(GOOD) + 500)), "page-error", "mid-body"
    ),
    "close-before-response": Fault(answer(Close()), "page-error", "without a response"),
    "chunked-body-without-its-last-chunk": Fault(
        answer(ChunkedCut(GOOD)), "page-error", "mid-body"
    ),
    # No length declared: the body ends at the close, so a cut one looks whole but for its
    # HTML, which never ends. Accepted, its missing entries would be removed.
    "undeclared-length-body-cut-short": Fault(
        answer(CloseDelimited(GOOD[: len(GOOD) * 2 // 3])), "page-error", "may be cut short"
    ),
    "undeclared-length-body-whole": Fault(answer(CloseDelimited(GOOD)), None),
    "not-http-at-all": Fault(answer(Garbage(b"SSH-2.0-OpenSSH_9.6\r\n")), "page-error"),
    "read-timeout": Fault(answer(Delay(5, good())), "page-error", "timeout after 0.5s"),
    "slow-drip": Fault(answer(Drip(GOOD, 100, 0.1)), "page-error", "too slow"),
    "header-flood": Fault(answer(Respond(200, GOOD, [("X-Junk", "j" * 200_000)])), "page-error"),
    "http-500": Fault(status(500), "page-error", "HTTP 500 Internal Server Error"),
    "http-502": Fault(status(502), "page-error", "HTTP 502 Bad Gateway"),
    "http-503": Fault(status(503), "page-error", "HTTP 503 Service Unavailable"),
    "http-503-retry-after-retried-then-failed": Fault(
        status(503, Retry_After="1"),
        "page-error",
        "after 1 retry",
        settings={"retries": 1},
        hits=2,
    ),
    "http-503-retry-after-then-ok": Fault(
        answer(Series(Respond(503, b"", (("Retry-After", "1"),)), good())),
        None,
        settings={"retries": 1},
        hits=2,
    ),
    "http-500-retry-after-too-long": Fault(
        status(500, Retry_After="3600"),
        "page-error",
        "over the 120s limit",
        settings={"retries": 1},
        hits=1,
    ),
    "http-429": Fault(status(429), "page-error", "HTTP 429 Too Many Requests"),
    "http-429-retry-after": Fault(
        status(429, Retry_After="1"), "page-error", "HTTP 429", settings={"retries": 1}, hits=2
    ),
    "http-403": Fault(status(403), "page-error", "HTTP 403 Forbidden"),
    "redirect-loop": Fault(loop, "page-error", "redirect loop"),
    "redirect-12-hops": Fault(long_chain, "page-error", "too many redirects"),
    "redirect-without-location": Fault(status(302), "page-error", "without Location"),
    "redirect-to-an-invalid-url": Fault(
        answer(Redirect("http://[::1")), "page-error", "Invalid URL in location header"
    ),
    "redirect-to-ftp": Fault(
        answer(Redirect("ftp://127.0.0.1/list")), "page-error", "unsupported URL"
    ),
    "status-999": Fault(
        answer(Garbage(b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n")), "page-error", "HTTP 999"
    ),
    "content-length-not-a-number": Fault(
        answer(Garbage(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n" + GOOD)),
        "page-error",
    ),
    "http-404": Fault(status(404), "page-gone", "HTTP 404"),
    "http-410": Fault(status(410), "page-gone", "HTTP 410"),
    "empty-200": Fault(answer(Respond(200, b"")), "page-anomaly", "0 entries"),
    "selectors-broken-by-redesign": Fault(
        answer(Respond(200, GOOD.replace(b"views-row", b"card"))), "page-anomaly", "0 entries"
    ),
    "pdf-instead-of-html": Fault(
        answer(
            Respond(
                200, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", [("Content-Type", "application/pdf")]
            )
        ),
        "page-error",
        "not HTML (application/pdf)",
    ),
    "json-instead-of-html": Fault(
        answer(Respond(200, b'{"items": []}', [("Content-Type", "application/json")])),
        "page-error",
        "not HTML (application/json)",
    ),
    "pdf-labelled-html": Fault(
        answer(Respond(200, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj")), "page-error", "not HTML"
    ),
    "truncated-gzip": Fault(
        answer(Respond(200, truncated_gzip(GOOD), GZIP)), "page-error", "truncated gzip"
    ),
    "unknown-content-encoding": Fault(
        answer(Respond(200, GOOD, (("Content-Encoding", "zstd"),))),
        "page-error",
        "unsupported Content-Encoding 'zstd'",
    ),
    "gzip-bomb": Fault(
        answer(Respond(200, gzip_bomb(50_000_000), GZIP)), "page-error", "max_bytes"
    ),
    "brotli-bomb": Fault(
        answer(Respond(200, brotli_bomb(50_000_000), (("Content-Encoding", "br"),))),
        "page-error",
        "max_bytes",
    ),
    "body-over-max-bytes": Fault(
        answer(Respond(200, GOOD + b" " * MAX_BYTES)), "page-error", "max_bytes"
    ),
    "tls-to-a-plain-http-port": Fault(to_tls, "page-error", "SSL"),
    "unasked-304": Fault(answer(Respond(304)), None),
    "invalid-charset-label": Fault(
        answer(Respond(200, GOOD, [("Content-Type", "text/html; charset=x-no-such-thing")])),
        None,
    ),
    # Decoded as the header says, as a browser does: each byte that is not UTF-8 ("é", "’")
    # becomes U+FFFD, so the two entries holding one read differently: one `changed` each,
    # same entries (their links hold), and `changed` back once the page is right again.
    "mislabelled-charset": Fault(
        answer(Respond(200, LATIN1_BODY)), None, entry_events=("changed", "changed")
    ),
}


@pytest.fixture
def rig(tmp_path: Path, fault: Fault) -> Iterator[Rig]:
    """The faulty page (6 active entries) and a healthy one (3 archived), not yet checked."""
    healthy = FaultServer()
    healthy.start()
    healthy.set("/list", Respond(200, listing(ARCHIVED_TITLES, prefix="/archives").encode()))
    server = PortServer()
    server.start()
    server.set("/list", good())
    pages = [
        {"name": "list", "url": server.url("/list"), "role": "active"},
        {"name": "archive", "url": healthy.url("/list"), "role": "archived"},
    ]
    config = write_config(tmp_path, pages, monitor={**SETTINGS, **fault.settings})
    rig = Rig(server, server.port, config, healthy, PlainHttpPort())
    try:
        yield rig
    finally:
        rig.close()


def counts(config: Path) -> dict[str, int]:
    """How many entries stand in each state, as `monitor entries` says."""
    states = Counter(e["state"] for e in json_lines(run(config, "entries", "--json")))
    return {s: states[s] for s in ("active", "archived", "removed")}


def assert_clean(result) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output


@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
def test_fault_is_one_page_event_and_loses_nothing(rig: Rig, fault: Fault):
    """A fault gives its page event once, the exit code SPEC says, removes nothing, and heals."""
    baseline = run(rig.config, "check", "--json")
    assert baseline.exit_code == 0, baseline.stderr
    assert json_lines(baseline) == []
    before = counts(rig.config)
    assert before == {"active": 6, "archived": 3, "removed": 0}

    fault.apply(rig)
    hits = rig.server.hits("/list")
    first = run(rig.config, "check", "--json")
    assert_clean(first)
    events = json_lines(first)
    page_events = [e for e in events if e["kind"].startswith("page-")]
    entry_events = sorted(e["kind"] for e in events if not e["kind"].startswith("page-"))
    if fault.event is None:
        assert page_events == []
    else:
        (event,) = page_events
        assert (event["kind"], event["page"]) == (fault.event, "list")
        assert fault.detail in event["detail"]
        assert "Traceback" not in event["detail"]
    assert entry_events == sorted(fault.entry_events)
    assert first.exit_code == fault.exit_code, first.stderr
    if fault.hits is not None:
        assert rig.server.hits("/list") - hits == fault.hits
    assert counts(rig.config) == before  # nothing removed, nothing added

    again = run(rig.config, "check", "--json")  # the same fault again: the same episode
    assert_clean(again)
    assert json_lines(again) == []
    assert again.exit_code == fault.exit_code
    assert counts(rig.config) == before

    rig.restore()
    healed = run(rig.config, "check", "--json")
    assert_clean(healed)
    assert healed.exit_code == 0, healed.stderr
    kinds = sorted(e["kind"] for e in json_lines(healed))
    assert kinds == sorted(
        ([] if fault.event is None else ["page-recovered"]) + list(fault.entry_events)
    )
    assert counts(rig.config) == before
    verify = run(rig.config, "verify")
    assert verify.exit_code == 0, verify.stdout + verify.stderr


def test_https_url_on_a_plain_http_port_is_a_page_error_from_the_start(tmp_path):
    """A page configured as https:// on a plain-HTTP port is a page-error naming TLS, exit 1."""
    plain = PlainHttpPort()
    url = f"https://127.0.0.1:{plain.port}/list"
    config = write_config(
        tmp_path, [{"name": "list", "url": url, "role": "active"}], monitor=SETTINGS
    )
    try:
        result = run(config, "check", "--json")
    finally:
        plain.close()
    assert_clean(result)
    assert result.exit_code == 1
    (event,) = json_lines(result)
    assert event["kind"] == "page-error" and "SSL" in event["detail"]
    assert url in event["detail"]


def test_an_entry_moving_while_the_archive_is_down_is_held_then_archived(tmp_path):
    """An entry leaving the active page while the archive errs is held, then archived.

    SPEC.md's hold rule (docs/reliability.md): while the archive cannot be read, where
    the entry went is unknown, so nothing is said; the archive's answer gives one event.
    """
    moving = listing(ARCHIVED_TITLES + ("Film Forward",), prefix="/archives")
    with FaultServer() as server:
        server.set("/active", good())
        server.set("/archive", Respond(200, listing(ARCHIVED_TITLES, prefix="/archives").encode()))
        pages = [
            {"name": "list", "url": server.url("/active"), "role": "active"},
            {"name": "archive", "url": server.url("/archive"), "role": "archived"},
        ]
        config = write_config(tmp_path, pages, monitor=SETTINGS)
        assert run(config, "check").exit_code == 0
        server.set(
            "/active",
            Respond(200, listing(tuple(t for t in TITLES if t != "Film Forward")).encode()),
        )
        server.set("/archive", Respond(503))
        during = [e["kind"] for e in json_lines(run(config, "check", "--json"))]
        server.set("/archive", Respond(200, moving.encode()))
        after = [e["kind"] for e in json_lines(run(config, "check", "--json"))]
    assert (sorted(during), sorted(after)) == (["page-error"], ["archived", "page-recovered"])
