"""A capture's original bytes from the archive, and the archive's own pages told apart from it.

An archive answers a memento URL with its own page when it cannot play the capture back:
Wayback's "Hrm. The Wayback Machine has not archived that URL" (404), "This URL has been
excluded" (200 or 403), or a redirect to another capture, sometimes years away. Signs, as
EDGI's `wayback` package reads them: a memento carries `Memento-Datetime` (Wayback also
`X-Archive-Src`, and a `Link` rel="original"); an archive error carries neither, or
`X-Archive-Wayback-Runtime-Error`; a redirect between mementos names a timestamp.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timedelta
from urllib.parse import urljoin

import httpx
from msgspec import Struct

from monitor.backfill.cdx import CdxCapture, parse_timestamp
from monitor.backfill.polite import ArchiveAnswer, RateLimiter, polite_get

MAX_REDIRECTS = 5
# Wayback redirects a memento URL to the nearest capture; seconds away is the same one,
# days away is not (EDGI's wayback allows 24 h for a redirect's target).
NEAR = timedelta(hours=24)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MEMENTO_PATH = re.compile(r"/(\d{4,14})(?:[a-z]{2}_)?/")
_ERROR_TEXTS = (
    b"Wayback Machine has not archived that URL",
    b"This URL has been excluded",
    b"AdministrativeAccessControlException",
    b"RobotAccessControlException",
    b"Blocked Site Error",
    b"Resource Not In Archive",  # OpenWayback
    b"could not be found in this collection",  # pywb
    b"Url Not Found",  # pywb
)


class Memento(Struct, frozen=True):
    """What the archive answered for one capture: the bytes, or why they are not the capture."""

    capture: CdxCapture
    url: str  # the memento URL asked for (a WARC record's WARC-Source-URI)
    final_url: str  # after any redirect between mementos
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    redirects: tuple[str, ...]  # the memento URLs redirected through, in order
    archive_error: str | None  # set: this is the archive's own page, skip it

    @property
    def at(self) -> datetime:
        """The capture's own time (a WARC record's WARC-Date)."""
        return self.capture.at


def memento_url(template: str, capture: CdxCapture) -> str:
    """The template with `{timestamp}` and `{url}` filled in; the URL raw, as `id_` wants it."""
    return template.replace("{timestamp}", capture.timestamp).replace("{url}", capture.original)


def memento_time(url: str, headers: httpx.Headers | None = None) -> datetime | None:
    """The capture time a memento answer claims: Memento-Datetime, else its URL's timestamp."""
    if headers is not None and (value := headers.get("memento-datetime")):
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return when
    match = _MEMENTO_PATH.search(httpx.URL(url).path)
    return parse_timestamp(match.group(1)) if match else None


def archive_error_reason(capture: CdxCapture, answer: ArchiveAnswer) -> str | None:
    """Why this answer is the archive's own page and not `capture`; None if it is the capture."""
    runtime_error = answer.headers.get("x-archive-wayback-runtime-error")
    if runtime_error:
        return f"the archive could not play it back: {runtime_error}"
    claimed = memento_time(answer.url, answer.headers) if answer.is_memento else None
    if claimed is not None and abs(claimed - capture.at) > NEAR:
        return f"the archive served the capture of {claimed:%Y-%m-%d %H:%M:%S} instead"
    if answer.is_memento or "x-archive-src" in answer.headers:
        return None
    head = answer.body[:200_000]
    for text in _ERROR_TEXTS:
        if text in head:
            return f"the archive's own error page ({text.decode()!r}, HTTP {answer.status})"
    if answer.status != 200:
        return f"the archive answered HTTP {answer.status}, not the capture"
    return None  # a plain 200 from a server that sends no memento headers


def is_archive_error_page(capture: CdxCapture, answer: ArchiveAnswer) -> bool:
    """True when the archive answered with its own error page instead of the capture."""
    return archive_error_reason(capture, answer) is not None


def _redirect_problem(capture: CdxCapture, start: str, target: str) -> str | None:
    if httpx.URL(target).host != httpx.URL(start).host:
        return f"the archive redirected out of itself, to {target}"
    claimed = memento_time(target)
    if claimed is None:
        return f"the archive redirected to {target}, not a memento"
    if abs(claimed - capture.at) > NEAR:
        return f"the archive redirected to the capture of {claimed:%Y-%m-%d %H:%M:%S} instead"
    return None


async def fetch_memento(
    client: httpx.AsyncClient, template: str, capture: CdxCapture, limiter: RateLimiter
) -> Memento:
    """The capture's original bytes, following redirects between nearby mementos.

    Never raises for an archive error page (see `Memento.archive_error`); raises
    ArchiveRefused/ArchiveError when the archive refuses or cannot be reached.
    """
    start = memento_url(template, capture)
    url, redirects, problem = start, [start], None
    while True:
        answer = await polite_get(client, url, limiter)
        location = answer.headers.get("location")
        if answer.status not in REDIRECTS or not location:
            problem = archive_error_reason(capture, answer)
            break
        target = urljoin(url, location)
        problem = _redirect_problem(capture, start, target)
        if problem is None and target in redirects:
            problem = f"the archive's redirects loop at {target}"
        if problem is None and len(redirects) > MAX_REDIRECTS:
            problem = f"more than {MAX_REDIRECTS} redirects"
        if problem is not None:
            break
        url = target
        redirects.append(url)
    return Memento(
        capture=capture,
        url=start,
        final_url=url,
        status=answer.status,
        headers=tuple(answer.headers.multi_items()),
        body=answer.body,
        redirects=tuple(redirects[1:]),
        archive_error=problem,
    )
