"""How hard fetching may press on one site: requests in flight per host, and a rate hook.

A check cycle fetches a few listing pages, but entry pages and a web archive's
mementos are many URLs of one host: `HostLimits` keeps at most `per_host` of
them in flight at once whatever the overall concurrency, and a `RateLimiter`
(implemented elsewhere, e.g. N requests a minute for backfill) is awaited
before each request. `fetch_target` applies both to every request it makes,
redirect hops and retries included.
"""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC, datetime
from typing import Protocol

import httpx

DEFAULT_PER_HOST = 2


class RateLimiter(Protocol):
    """Paces requests: `acquire` returns once a request to `url` may start."""

    async def acquire(self, url: str) -> None: ...


def host_key(url: str) -> str:
    """The host (and port, when not the scheme's default) a URL's requests go to."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return ""  # the request itself will fail and say why
    port = parsed.port
    return f"{parsed.host}:{port}" if port is not None else parsed.host


class HostLimits:
    """At most `per_host` requests in flight to any one host; share one per cycle (event loop)."""

    def __init__(self, per_host: int = DEFAULT_PER_HOST) -> None:
        if per_host < 1:
            raise ValueError(f"per_host must be at least 1, not {per_host}")
        self.per_host = per_host
        self._slots: dict[str, asyncio.Semaphore] = {}

    def slot(self, url: str) -> asyncio.Semaphore:
        """The semaphore guarding url's host: `async with limits.slot(url): ...`."""
        key = host_key(url)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = asyncio.Semaphore(self.per_host)
        return slot


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After (seconds or HTTP-date) asks for; None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
