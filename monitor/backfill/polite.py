"""Polite requests to a web archive: one at a time, at most N a minute, backing off when asked.

The archive is someone else's free service: every request (CDX pages, mementos, redirects
and retries alike) goes through one `RateLimiter`, and a 429 or 503 pauses every request,
not only the one that got it. The clock and the sleep are parameters, so tests run on
logical time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from msgspec import Struct

from monitor.errors import MonitorError
from monitor.politeness import retry_after_s

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WINDOW_S = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Wayback's 429s carry no Retry-After; EDGI's wayback package waits a minute then too.
DEFAULT_RATE_LIMIT_WAIT_S = 60.0


class ArchiveError(MonitorError):
    """The archive could not be read (network, 5xx after retries, an unreadable answer)."""

    exit_code = 1


class ArchiveRefused(ArchiveError):
    """The archive refuses us (403, a block, or 429 past our retries): going on would be rude."""


class RetryPolicy(Struct, frozen=True):
    """How often and how long to retry a 429, a 5xx or a network error."""

    retries: int = 4
    backoff_s: float = 2.0
    max_wait_s: float = 300.0  # a Retry-After asking for more than this is a refusal


DEFAULT_RETRY = RetryPolicy()


class RateLimiter:
    """At most `rate_per_minute` request starts in any 60 s, evenly spaced, one at a time."""

    def __init__(
        self,
        rate_per_minute: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not rate_per_minute > 0:
            raise ValueError(f"rate_per_minute must be positive, not {rate_per_minute!r}")
        self._interval_s = WINDOW_S / rate_per_minute
        # Even spacing alone allows ceil(rate) starts in a window; the deque makes it floor.
        self._window: deque[float] = deque(maxlen=max(1, int(rate_per_minute)))
        self._clock = clock
        self._sleep = sleep
        self.wall = wall  # reads a Retry-After given as an HTTP date
        self._lock = asyncio.Lock()
        self._not_before = float("-inf")
        self.starts: list[float] = []  # the logical time of every request started

    def pause(self, seconds: float) -> None:
        """Let no request start in the next `seconds` (the archive asked us to wait)."""
        self._not_before = max(self._not_before, self._clock() + seconds)

    def _earliest(self) -> float:
        earliest = self._not_before
        if self._window:
            earliest = max(earliest, self._window[-1] + self._interval_s)
            if len(self._window) == self._window.maxlen:
                earliest = max(earliest, self._window[0] + WINDOW_S)
        return earliest

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Wait for the right to send one request; held until the request is done."""
        async with self._lock:
            while (wait := self._earliest() - self._clock()) > 0:
                await self._sleep(wait)
            now = self._clock()
            self._window.append(now)
            self.starts.append(now)
            yield now


MAX_BYTES = 10_000_000


class ArchiveAnswer(Struct, frozen=True):
    """One response from the archive, its body read (and content-decoded) under a limit."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def is_memento(self) -> bool:
        """True for an archived response: its status is the capture's, not the archive's."""
        return "memento-datetime" in self.headers


async def _read(client: httpx.AsyncClient, request: httpx.Request, max_bytes: int) -> ArchiveAnswer:
    async with client.stream(request.method, request.url, headers=request.headers) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise ArchiveError(f"{request.url}: answer larger than {max_bytes} bytes")
        return ArchiveAnswer(str(request.url), response.status_code, response.headers, bytes(body))


def _wait_for(
    response: ArchiveAnswer | None, attempt: int, policy: RetryPolicy, now: datetime
) -> float:
    backoff = policy.backoff_s * 2.0**attempt
    if response is None:
        return backoff
    asked = retry_after_s(response.headers.get("retry-after"), now)
    if asked is None and response.status == 429:
        asked = DEFAULT_RATE_LIMIT_WAIT_S
    return max(backoff, asked or 0.0)


def _refusal(url: str, answer: ArchiveAnswer) -> str | None:
    """Why the archive refuses this request, or None if it does not."""
    if answer.status != 403 or answer.is_memento:
        return None
    blocked = b"AccessControlException" in answer.body[:10_000]
    why = "it blocks this site" if blocked else "403 Forbidden"
    return f"{url}: the archive refused the request ({why})"


async def polite_get(
    client: httpx.AsyncClient,
    url: str,
    limiter: RateLimiter,
    *,
    params: list[tuple[str, str]] | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
    max_bytes: int = MAX_BYTES,
) -> ArchiveAnswer:
    """GET through the limiter, retrying 429/5xx/network errors; the body is read.

    A memento (a response with Memento-Datetime) is returned as is whatever its status:
    an archived 429 is a capture, not the archive asking us to slow down. Redirects are
    not followed. Raises ArchiveRefused (403, a wait longer than allowed, 429 after every
    retry) or ArchiveError (5xx or network after every retry), naming the URL.
    """
    request = client.build_request(
        "GET", url, params=httpx.QueryParams(tuple(params)) if params else None
    )
    shown = str(request.url)
    problem = ""
    for attempt in range(policy.retries + 1):
        response: ArchiveAnswer | None = None
        async with limiter.slot():
            try:
                response = await _read(client, request, max_bytes)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if response is not None:
            if response.is_memento or response.status not in RETRY_STATUSES:
                if why := _refusal(shown, response):
                    raise ArchiveRefused(why)
                return response
            problem = f"HTTP {response.status}"
        wait_s = _wait_for(response, attempt, policy, limiter.wall())
        if wait_s > policy.max_wait_s:
            raise ArchiveRefused(
                f"{shown}: the archive asks us to wait {wait_s:.0f}s ({problem}), "
                f"more than the {policy.max_wait_s:.0f}s we wait"
            )
        if attempt == policy.retries:
            break
        limiter.pause(wait_s)
    note = f"after {policy.retries} retries" if policy.retries else "no retries"
    if problem == "HTTP 429":
        raise ArchiveRefused(f"{shown}: the archive keeps answering 429 Too Many Requests ({note})")
    raise ArchiveError(f"{shown}: {problem} ({note})")
