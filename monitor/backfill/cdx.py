"""The captures of a URL from a CDX server: the Wayback Machine, pywb, OpenWayback.

We speak the CDX API with httpx, the project's one HTTP client, rather than through EDGI's
`wayback` package (requests-based, Wayback-only); its hard-won quirks are applied here:
repeated rows at page boundaries, `-` for an unknown status or length, `:80`/`:443` in
the captured URL, malformed rows skipped rather than fatal, a blank line (text) or an
empty row (JSON) before the resume key, and the blocked-site errors named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime

import httpx
from msgspec import Struct

from monitor.backfill.polite import (
    ArchiveAnswer,
    ArchiveError,
    ArchiveRefused,
    RateLimiter,
    polite_get,
)
from monitor.canonical import canonical_link

PAGE_SIZE = 1000
MAX_PAGES = 10_000  # a resume key that never ends must not loop forever
DEFAULT_FIELDS = ("urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length")
# pywb's JSON names some fields differently.
ALIASES = {"url": "original", "mime": "mimetype", "status": "statuscode"}
_TIMESTAMP = re.compile(r"\d{4,14}")
_WWW_HOST = re.compile(r"^(https?://)www\d*\.", re.IGNORECASE)
_REDUNDANT_PORT = re.compile(r"^(http://[^/:?#]+):80(?=[/?#]|$)|^(https://[^/:?#]+):443(?=[/?#]|$)")


class CdxCapture(Struct, frozen=True):
    """One capture of a page, as the CDX server lists it."""

    timestamp: str  # YYYYMMDDhhmmss, as the archive spells it (memento URLs use it)
    at: datetime  # the same instant, aware UTC
    original: str  # the URL as captured
    mimetype: str
    status: int | None  # None: unknown ("-", e.g. a revisit record)
    digest: str
    length: int | None


class CdxPage(Struct, frozen=True):
    """One answer of the CDX server: its rows as field dicts, and the key to the next page."""

    rows: list[dict[str, str]]
    resume_key: str | None
    skipped: int  # rows that could not be read (wrong width, a warning, broken JSON)


def cdx_time(value: date, *, end: bool = False) -> str:
    """YYYYMMDDhhmmss for `from`/`to`; a date covers its whole day when `end`."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y%m%d%H%M%S")
    return value.strftime("%Y%m%d") + ("235959" if end else "000000")


def parse_timestamp(text: str) -> datetime | None:
    """A CDX timestamp (4 to 14 digits, padded) as aware UTC; None if it is no date."""
    if not _TIMESTAMP.fullmatch(text):
        return None
    padded = text + "0101000000"[len(text) - 4 :] if len(text) < 14 else text
    try:
        return datetime.strptime(padded, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None  # e.g. month 00, seen in some 2000-era crawls


def _json_rows(values: list[object]) -> CdxPage:
    """Wayback's `[[header...], [row...], ..., [], [resume key]]`."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    skipped = 0
    resume_key = None
    for i, value in enumerate(values):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            skipped += 1
        elif not value:
            # The empty row separates the resume key (alone on the last row) from the rows.
            rest = values[i + 1 :]
            if rest and isinstance(rest[0], list) and rest[0] and isinstance(rest[0][0], str):
                resume_key = rest[0][0]
            break
        elif header is None:
            header = [ALIASES.get(str(name), str(name)) for name in value]
        elif len(value) != len(header):
            skipped += 1  # a warning or a truncated row
        else:
            rows.append(dict(zip(header, value, strict=True)))
    return CdxPage(rows, resume_key, skipped)


def _salvage_json_lines(lines: list[str]) -> list[object]:
    """Rows of a broken JSON array (cut short, a stray line): Wayback writes one per line."""
    values: list[object] = []
    for line in lines:
        text = line.strip().rstrip(",")
        if text.startswith("[["):
            text = text[1:]
        if text.endswith("]]"):
            text = text[:-1]
        try:
            values.append(json.loads(text))
        except ValueError:
            values.append(None)
    return values


def _object_rows(lines: list[str]) -> CdxPage:
    """pywb's `output=json`: one JSON object per line."""
    rows: list[dict[str, str]] = []
    skipped = 0
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            skipped += 1
            continue
        rows.append({ALIASES.get(k, k): str(v) for k, v in value.items() if isinstance(k, str)})
    return CdxPage(rows, None, skipped)


def _text_rows(lines: list[str]) -> CdxPage:
    """The classic space-separated CDX lines; a blank line, then the resume key."""
    rows: list[dict[str, str]] = []
    skipped = 0
    for i, line in enumerate(lines):
        if not line.strip():
            rest = [rest for rest in lines[i + 1 :] if rest.strip()]
            return CdxPage(rows, rest[0].strip() if rest else None, skipped)
        fields = line.split(" ")
        if len(fields) < len(DEFAULT_FIELDS):
            skipped += 1
            continue
        rows.append(dict(zip(DEFAULT_FIELDS, fields, strict=False)))
    return CdxPage(rows, None, skipped)


def parse_cdx_page(body: bytes) -> CdxPage:
    """The rows of one CDX answer in any of the three formats servers send; never raises."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return CdxPage([], None, 0)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, list):
        return _json_rows(value)
    lines = text.splitlines()
    if text.startswith("[") and not text.startswith("[{"):
        return _json_rows(_salvage_json_lines(lines))
    if text.startswith("{"):
        return _object_rows([line for line in lines if line.strip()])
    return _text_rows(lines)


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def capture_from_row(row: dict[str, str]) -> CdxCapture | None:
    """A CdxCapture from one row's fields; None for a row that names no usable capture."""
    timestamp = row.get("timestamp", "")
    at = parse_timestamp(timestamp)
    original = row.get("original", "")
    if at is None or not original.lower().startswith(("http://", "https://")):
        return None  # EDGI's wayback skips mailto: and data: "URLs" a crawler once captured
    original = _REDUNDANT_PORT.sub(lambda m: m.group(1) or m.group(2), original)
    return CdxCapture(
        timestamp=timestamp,
        at=at,
        original=original,
        mimetype=row.get("mimetype", ""),
        status=_number(row.get("statuscode")),
        digest=row.get("digest", ""),
        length=_number(row.get("length")),
    )


def same_resource(original: str, url: str) -> bool:
    """A CDX row's URL names the watched page: equal as canonical links, and "www." aside
    (as the archive's SURT key compares them). A server that matches by prefix or by host
    also lists other pages: those are never the page's history."""
    return _www_apart(canonical_link(original)) == _www_apart(canonical_link(url))


def _www_apart(link: str | None) -> str | None:
    return _WWW_HOST.sub(r"\1", link) if link is not None else None


def _wanted(capture: CdxCapture, since: str | None, until: str | None) -> bool:
    """Our own filters, for a server that ignores `filter`, `from` or `to`."""
    mimetype = capture.mimetype.split(";")[0].strip().lower()
    if mimetype != "text/html" or capture.status not in (200, None):
        return False
    stamp = capture.timestamp.ljust(14, "0")
    return (since is None or stamp >= since) and (until is None or stamp <= until)


def collapse_digests(captures: Iterable[CdxCapture]) -> Iterator[CdxCapture]:
    """One capture per run of identical digests: A A B A gives A B A, as `collapse=digest`."""
    last: str | None = None
    for capture in captures:
        if capture.digest and capture.digest == last:
            continue
        last = capture.digest
        yield capture


def _query(url: str, since: str | None, until: str | None, page_size: int) -> list[tuple[str, str]]:
    params = [
        ("url", url),
        ("output", "json"),
        ("filter", "statuscode:200"),
        ("filter", "mimetype:text/html"),
        ("collapse", "digest"),
        ("limit", str(page_size)),
        ("showResumeKey", "true"),
    ]
    if since is not None:
        params.append(("from", since))
    if until is not None:
        params.append(("to", until))
    return params


def _check_answer(response: ArchiveAnswer, url: str) -> None:
    if response.status == 200:
        return
    head = response.body[:10_000]
    if b"AdministrativeAccessControlException" in head:
        raise ArchiveRefused(f"{url}: the archive blocks this site (CDX search)")
    if b"RobotAccessControlException" in head:
        raise ArchiveRefused(f"{url}: the archive hides this site (its robots.txt)")
    raise ArchiveError(f"{url}: the CDX server answered HTTP {response.status}")


async def list_captures(
    client: httpx.AsyncClient,
    cdx_url: str,
    url: str,
    *,
    since: date | None,
    until: date | None,
    limiter: RateLimiter,
    page_size: int = PAGE_SIZE,
) -> list[CdxCapture]:
    """Every successful HTML capture of `url` in time order, one per run of identical digests.

    Pages with `showResumeKey`/`resumeKey` (Wayback: no key, no more); a server that
    never sends one but fills a page (pywb, OpenWayback) is paged by `from` the last
    timestamp seen.
    Stops when a page brings nothing new. Raises ArchiveError/ArchiveRefused naming `url`.
    """
    since_s = cdx_time(since) if since is not None else None
    until_s = cdx_time(until, end=True) if until is not None else None
    params = _query(url, since_s, until_s, page_size)
    seen: set[tuple[str, str, str]] = set()
    found: list[CdxCapture] = []
    keys: set[str] = set()
    for _ in range(MAX_PAGES):
        response = await polite_get(client, cdx_url, limiter, params=params)
        _check_answer(response, url)
        page = parse_cdx_page(response.body)
        if not page.rows and page.skipped:  # every line unreadable: an HTML page, a login...
            start = response.body[:60].decode("utf-8", "replace").strip()
            raise ArchiveError(f"{url}: the CDX server's answer is not a CDX index "
                               f"(it starts {start!r}): is cdx_url right?")  # fmt: skip
        new = 0
        last: str | None = None
        for row in page.rows:
            capture = capture_from_row(row)
            if capture is None:
                continue
            last = max(last or capture.timestamp, capture.timestamp)
            key = (capture.timestamp, capture.digest, capture.original)
            if key in seen:
                continue  # the row a resume key or a `from` page repeats
            seen.add(key)
            new += 1
            if _wanted(capture, since_s, until_s) and same_resource(capture.original, url):
                found.append(capture)
        if new == 0:
            break
        if page.resume_key is not None and page.resume_key not in keys:
            keys.add(page.resume_key)
            params = [*_query(url, since_s, until_s, page_size), ("resumeKey", page.resume_key)]
        elif not keys and len(page.rows) + page.skipped >= page_size and last is not None:
            # No resume keys from this server (pywb, OpenWayback): page on by date.
            params = _query(url, last, until_s, page_size)
        else:
            break
    found.sort(key=lambda c: c.timestamp.ljust(14, "0"))
    return list(collapse_digests(found))
