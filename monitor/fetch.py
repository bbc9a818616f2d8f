"""Target -> FetchResult with httpx, async: every response kept as it crossed the wire.

A Target is any URL someone wants: a listing page, one page of a paginated listing,
an entry's own page, a web-archive memento. Redirects are followed by hand so that
each hop becomes an HttpExchange for the archive. Bodies are streamed raw (still
content-encoded) and decoded on the fly by `monitor.decoders` under `max_bytes`, so
neither a huge body nor a compression bomb can fill memory. Network trouble is
returned as `FetchResult.error`, never raised.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable
from datetime import datetime

import httpx
from msgspec import Struct
from msgspec.structs import replace

from monitor.config import MonitorSettings
from monitor.decoders import (
    ContentDecoder,
    DecodeError,
    IdentityDecoder,
    decoder_for,
    too_large,
)
from monitor.models import FetchResult, HttpExchange, utc_now
from monitor.netbackend import AsyncioTransport, DeferredTLSContext
from monitor.netfaults import describe_failure, is_transient, secs
from monitor.politeness import HostLimits, RateLimiter, retry_after_s

MAX_REDIRECTS = 10
MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 120.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOT_ERRORS = frozenset({304, 404, 410})  # 304: unchanged; 404/410: the caller's page-gone
ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
ACCEPT_ENCODING = "gzip, deflate, br"
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own


class Validators(Struct, frozen=True):
    """From the last good capture, for conditional requests."""

    etag: str | None = None
    last_modified: str | None = None


class Target(Struct, frozen=True):
    """One URL to fetch, and who asked for it."""

    url: str
    label: str  # a page name, "entry <id>", ...: FetchResult.page, and in messages
    validators: Validators | None = None  # for a conditional request (ETag / Last-Modified)


@functools.cache
def tls_context() -> DeferredTLSContext:
    """httpx's verifying TLS context (certifi, or $SSL_CERT_FILE), one per process.

    Making it costs ~33 ms with the CA bundle: a daemon would pay that on every cycle, and
    a one-off check only at its first https:// connection (DeferredTLSContext).
    """
    return DeferredTLSContext()


def make_client(settings: MonitorSettings) -> httpx.AsyncClient:
    """One client per cycle, shared by every page (its connection pool is the point).

    Its sockets are asyncio's own (`netbackend.py`): httpx's default goes through anyio.
    """
    return httpx.AsyncClient(
        transport=AsyncioTransport(verify=tls_context(), limits=POOL_LIMITS),
        headers={
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        timeout=httpx.Timeout(settings.timeout_s),
        follow_redirects=False,  # fetch_target follows them so that every hop is archived
        http2=False,
    )


# --- one response's body ------------------------------------------------------------------


class _TooLarge(Exception):
    """More raw bytes arrived than max_bytes allows."""


class _Body:
    """One response being read: its raw bytes (at most max_bytes) and, for 2xx, the payload."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.response: httpx.Response | None = None  # set once the headers arrive
        self.raw = bytearray()
        # None: no payload wanted (not a 2xx), or none to decode (identity: the payload is raw)
        self._decoder: ContentDecoder | None = None
        self._payload = bytearray()
        self._error: str | None = None

    def start(self, response: httpx.Response) -> None:
        self.response = response
        if not 200 <= response.status_code < 300:
            return  # only a 2xx payload is used; other bodies are archived raw
        try:
            decoder = decoder_for(response.headers.get("content-encoding", ""), self.max_bytes)
        except DecodeError as exc:
            self._error = str(exc)
            return
        # identity: the raw bytes are the payload, already bounded by feed()
        self._decoder = None if isinstance(decoder, IdentityDecoder) else decoder

    def feed(self, chunk: bytes) -> None:
        room = self.max_bytes - len(self.raw)
        if len(chunk) > room:
            self.raw += chunk[:room]  # the first max_bytes are kept as evidence
            raise _TooLarge
        self.raw += chunk
        if self._decoder is not None:
            self._decode(self._decoder, chunk)

    def _decode(self, decoder: ContentDecoder, data: bytes) -> None:
        try:
            self._payload += decoder.decode(data)
        except DecodeError as exc:
            # stop decoding but keep reading: the raw body is still archived whole
            self._error, self._decoder = str(exc), None
            self._payload = bytearray()

    def payload(self) -> bytes:
        """The decoded body; raises DecodeError when it could not be decoded."""
        if self._error is not None:
            raise DecodeError(self._error)
        if self._decoder is None:
            return bytes(self.raw)
        self._decoder.finish()
        return bytes(self._payload)


# --- one request ------------------------------------------------------------------------


class _Hop(Struct, frozen=True):
    """One request of an attempt: the response (as an exchange) if any, and what went wrong."""

    url: str
    exchange: HttpExchange | None = None
    status: int | None = None
    headers: httpx.Headers | None = None
    location: str | None = None  # set for a redirect to follow
    body: bytes | None = None
    error: str | None = None
    transient: bool = False


def _pairs(raw: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


def _exchange(body: _Body, started_at: datetime, truncated: str | None) -> HttpExchange:
    response = body.response
    assert response is not None
    request = response.request
    return HttpExchange(
        method=request.method,
        url=str(request.url),
        request_headers=_pairs(request.headers.raw),
        http_version=response.http_version,
        status=response.status_code,
        reason=response.reason_phrase,
        response_headers=_pairs(response.headers.raw),
        raw_body=bytes(body.raw),
        started_at=started_at,
        truncated=truncated,
    )


def _failed(
    url: str, body: _Body, started_at: datetime, what: str, truncated: str, transient: bool
) -> _Hop:
    """A hop that went wrong; the partial response, if one began, is kept for the archive."""
    response = body.response
    if response is None:
        return _Hop(url=url, error=what, transient=transient)
    return _Hop(
        url=url,
        exchange=_exchange(body, started_at, truncated),
        status=response.status_code,
        headers=response.headers,
        error=what,
        transient=transient,
    )


class _Ask(Struct, frozen=True):
    """How every request of one fetch is made."""

    settings: MonitorSettings
    clock: Callable[[], datetime]
    headers: dict[str, str]
    limits: HostLimits | None = None
    rate_limiter: RateLimiter | None = None


async def _fetch_hop(client: httpx.AsyncClient, url: str, ask: _Ask) -> _Hop:
    """GET one URL when its host has room and the rate allows; never raises."""
    # waiting for a turn is not the server's slowness: it happens before any deadline starts
    if ask.rate_limiter is not None:
        await ask.rate_limiter.acquire(url)
    if ask.limits is None:
        return await _request(client, url, ask)
    async with ask.limits.slot(url):
        return await _request(client, url, ask)


async def _request(client: httpx.AsyncClient, url: str, ask: _Ask) -> _Hop:
    """GET one URL, streaming its body under max_bytes and a deadline; never raises."""
    settings = ask.settings
    started_at = ask.clock()
    timeout_s = settings.timeout_s
    body = _Body(settings.max_bytes)
    try:
        # Until the headers: httpx's connect and read timeouts fire first; this is a backstop
        # for headers that trickle in. After them: httpx's read timeout is per read, so a
        # slow drip would never trip it; the whole body gets timeout_s.
        async with asyncio.timeout(2 * timeout_s) as deadline:
            async with client.stream("GET", url, headers=ask.headers) as response:
                deadline.reschedule(asyncio.get_running_loop().time() + timeout_s)
                body.start(response)
                async for chunk in response.aiter_raw():
                    body.feed(chunk)
    except _TooLarge:
        return _failed(url, body, started_at, too_large(settings.max_bytes), "length", False)
    except TimeoutError:
        if body.response is None:
            what = f"too slow: no response within {secs(2 * timeout_s)}"
        else:
            what = f"too slow: no complete response within {secs(timeout_s)}"
        return _failed(url, body, started_at, what, "time", True)
    except httpx.HTTPError as exc:
        truncated = "time" if isinstance(exc, httpx.TimeoutException) else "disconnect"
        started = body.response is not None
        what = describe_failure(exc, timeout_s, started=started, bytes_read=len(body.raw))
        return _failed(url, body, started_at, what, truncated, is_transient(exc))
    except httpx.InvalidURL as exc:
        return _Hop(url=url, error=f"invalid URL ({exc})")
    return _judge(url, body, started_at)


def _judge(url: str, body: _Body, started_at: datetime) -> _Hop:
    """A complete response as a hop: a redirect to follow, a result, or an error by status."""
    response = body.response
    assert response is not None
    status = response.status_code
    hop = _Hop(
        url=url,
        exchange=_exchange(body, started_at, None),
        status=status,
        headers=response.headers,
    )
    location = response.headers.get("location", "").strip()
    if status in REDIRECT_STATUSES and location:
        return replace(hop, location=location)
    if 200 <= status < 300:
        try:
            return replace(hop, body=body.payload())
        except DecodeError as exc:
            return replace(hop, error=str(exc))
    if status in NOT_ERRORS:
        return hop
    # The server's own words go into an event's detail (terminals, web pages, messages):
    # printable characters only. The archive keeps the status line as it was received.
    reason = "".join(c for c in response.reason_phrase if c.isprintable())[:200].strip()
    what = f"HTTP {status} {reason or httpx.codes.get_reason_phrase(status)}".rstrip()
    if status in REDIRECT_STATUSES:
        what += " without Location"
    return replace(hop, error=what, transient=status == 429 or 500 <= status <= 599)


# --- one attempt: the redirect chain -----------------------------------------------------


class _Attempt(Struct, frozen=True):
    """One try at a target: every response of its redirect chain, and how it ended."""

    exchanges: tuple[HttpExchange, ...]
    final: _Hop
    error: str | None = None  # "URL: what happened"
    transient: bool = False


async def _attempt(client: httpx.AsyncClient, url: str, ask: _Ask) -> _Attempt:
    """Request a URL and follow its redirects by hand, keeping every response."""
    start = url
    seen = {url}
    exchanges: list[HttpExchange] = []
    redirects = 0
    while True:
        hop = await _fetch_hop(client, url, ask)
        if hop.exchange is not None:
            exchanges.append(hop.exchange)
        if hop.error is not None:
            return _Attempt(tuple(exchanges), hop, f"{hop.url}: {hop.error}", hop.transient)
        if hop.location is None:
            return _Attempt(tuple(exchanges), hop)
        redirects += 1
        if redirects > MAX_REDIRECTS:
            return _Attempt(tuple(exchanges), hop, f"{start}: too many redirects ({redirects})")
        try:
            url = str(httpx.URL(hop.url).join(hop.location))
        except httpx.InvalidURL as exc:
            error = f"{hop.url}: bad redirect Location {hop.location!r} ({exc})"
            return _Attempt(tuple(exchanges), hop, error)
        if url in seen:
            return _Attempt(tuple(exchanges), hop, f"{start}: redirect loop (back to {url})")
        seen.add(url)


# --- one target: retries -------------------------------------------------------------------


def _asked_wait(attempt: _Attempt, now: datetime) -> float | None:
    """The Retry-After of a 429 or 5xx answer, in seconds."""
    final = attempt.final
    if final.headers is None or final.status is None:
        return None
    if final.status != 429 and final.status < 500:
        return None
    return retry_after_s(final.headers.get("retry-after"), now)


def _retries_note(retries: int) -> str:
    if retries == 0:
        return ""
    return f"{retries} retry" if retries == 1 else f"{retries} retries"


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if validators is not None and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators is not None and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


async def fetch_target(
    client: httpx.AsyncClient,
    target: Target,
    settings: MonitorSettings,
    *,
    limits: HostLimits | None = None,
    rate_limiter: RateLimiter | None = None,
    backoff_s: float = 0.5,
    clock: Callable[[], datetime] = utc_now,
) -> FetchResult:
    """Fetch one URL, following redirects and retrying transient failures; never raises.

    404/410 and 304 are results, not errors (FetchResult.gone / .not_modified).
    Callers bound how many run at once (settings.concurrency); `limits` bounds those
    in flight per host and `rate_limiter` paces them, for every request made (each
    redirect hop and retry), when a caller fetches many URLs of one site.
    """
    started_at = clock()
    t0 = time.monotonic()
    ask = _Ask(settings, clock, _conditional_headers(target.validators), limits, rate_limiter)
    attempts = 0
    refusal = ""
    while True:
        attempts += 1
        # Only the last attempt's exchanges reach the result: the earlier ones failed
        # transiently, and the archive records the answer the target was judged on.
        attempt = await _attempt(client, target.url, ask)
        if not attempt.transient or attempts > settings.retries:
            break
        wait = min(MAX_BACKOFF_S, backoff_s * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
        asked = _asked_wait(attempt, clock())
        if asked is not None and asked > MAX_RETRY_AFTER_S:
            refusal = (
                f"; server asked to retry after {secs(asked)},"
                f" over the {secs(MAX_RETRY_AFTER_S)} limit"
            )
            break
        await asyncio.sleep(max(wait, asked or 0.0))
    return _result(target, attempt, attempts, refusal, started_at, time.monotonic() - t0)


def _result(
    target: Target,
    attempt: _Attempt,
    attempts: int,
    refusal: str,
    started_at: datetime,
    elapsed_s: float,
) -> FetchResult:
    final = attempt.final
    headers = final.headers if final.headers is not None else httpx.Headers()
    error = attempt.error
    if error is not None:
        retries = _retries_note(attempts - 1)
        if retries:
            error += f", {retries}" if " after " in error else f" after {retries}"
        error += refusal
    return FetchResult(
        page=target.label,
        url=target.url,
        final_url=final.url,  # the last URL asked: the last response's, when one came
        started_at=started_at,
        elapsed_s=elapsed_s,
        attempts=attempts,
        exchanges=attempt.exchanges,
        status=final.status,
        body=final.body if error is None else None,
        content_type=headers.get("content-type"),
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        error=error,
    )
