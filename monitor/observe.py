"""What one fetch of a listing means for its entries: pure, no I/O.

The per-page stage (`listing.py`) fetches, archives and, for a 304, reloads the body it
confirms; this module decides: an error, gone, unchanged (the body whose entries the page
already holds: no parse), or ok with the entries extracted.
"""

from __future__ import annotations

import hashlib
import logging

from monitor.config import PageConfig
from monitor.extract import extract_entries, is_html
from monitor.models import FetchResult, PageObservation

log = logging.getLogger("monitor")


def body_key(body: bytes, content_type: str | None, final_url: str, page: PageConfig) -> str:
    """Identifies what extraction depends on: the body, its type, its URL and the selectors."""
    digest = hashlib.sha256(body)
    for part in (content_type or "", final_url, repr(page.select)):
        digest.update(b"\0" + part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def maybe_cut_short(result: FetchResult, body: bytes) -> bool:
    """True when a page's HTML never ends and nothing else says the body was whole.

    A response with neither a Content-Length nor chunked framing (nor a compression with
    its own end mark) ends when the server closes the connection, so a connection lost
    mid-body looks complete: accepting half a page would remove the other half's entries.
    """
    if not result.exchanges:
        return False
    headers = {k.lower(): v.lower() for k, v in result.exchanges[-1].response_headers}
    if "content-length" in headers or "chunked" in headers.get("transfer-encoding", ""):
        return False
    if headers.get("content-encoding", "identity").strip() not in ("", "identity"):
        return False
    text = body.lower()
    return b"<html" in text and b"</html" not in text


def observe_fetch(
    page: PageConfig,
    result: FetchResult,
    *,
    accepted_key: str | None,
    body: bytes | None,
    content_type: str | None,
) -> tuple[PageObservation, str | None]:
    """The page's observation and its body key, from a fetch and its (reloaded) body.

    `body` is the decoded body the answer stands for: the response's own, or for a 304 the
    archived body it confirms (None when the caller knows it is the accepted one, or when
    it could not be had: `result.error` then says why).
    """
    name = page.name
    if result.error is not None:
        return PageObservation(name, "error", detail=result.error), None
    if result.gone:
        detail = f"{result.final_url}: HTTP {result.status}"
        return PageObservation(name, "gone", detail=detail), None
    if result.not_modified and body is None:
        return PageObservation(name, "unchanged"), accepted_key  # no read, no parse
    if body is None:
        detail = f"{result.final_url}: HTTP {result.status} without a body"
        return PageObservation(name, "error", detail=detail), None
    if not is_html(content_type, body):
        detail = f"{result.final_url}: not HTML ({content_type or 'no Content-Type'})"
        return PageObservation(name, "error", detail=detail), None
    if not result.not_modified and maybe_cut_short(result, body):
        detail = (
            f"{result.final_url}: the body may be cut short: no Content-Length, and the "
            "connection closed before </html>"
        )
        return PageObservation(name, "error", detail=detail), None
    key = body_key(body, content_type, result.final_url, page)
    if key == accepted_key:
        return PageObservation(name, "unchanged"), key
    try:
        entries = extract_entries(
            body, base_url=result.final_url, select=page.select, content_type=content_type
        )
    except Exception as error:  # a bug in extraction must not stop the other pages
        log.exception("extracting %s failed", result.final_url)
        detail = f"{result.final_url}: cannot extract: {error}"
        return PageObservation(name, "error", detail=detail), None
    return PageObservation(name, "ok", entries=tuple(entries)), key
