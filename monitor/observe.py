"""What fetching a listing means for its entries: pure, no I/O.

The per-page stage (`listing.py`) fetches, archives and, for a 304, reloads the body it
confirms; the functions here decide: an error, gone, a block page or a soft 404 (never a
shorter listing), unchanged (the body whose entries the page already holds: no parse), or
ok with the entries of every page of the listing together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from msgspec import Struct

from monitor.config import PageConfig
from monitor.decoders import decode_payload
from monitor.errors import MonitorError
from monitor.extract import EXTRACTOR_VERSION, Extraction, extract_page, is_html
from monitor.models import Entry, FetchResult, PageObservation
from monitor.signs import SHORT_TEXT, Answer, read_answer


class Body(Struct, frozen=True):
    """One page of a listing as it was answered: the decoded body and where it came from."""

    url: str  # the final URL (after redirects)
    content_type: str | None
    data: bytes


def listing_key(page: PageConfig, bodies: Sequence[Body]) -> str:
    """Identifies what extraction depends on: every body, its type and URL, the selectors,
    and the engine's version (a new engine re-derives, `rederive.py`)."""
    digest = hashlib.sha256(EXTRACTOR_VERSION.encode())
    for body in bodies:
        digest.update(hashlib.sha256(body.data).digest())
        for part in (body.content_type or "", body.url):
            digest.update(b"\0" + part.encode("utf-8", "surrogatepass"))
    digest.update(b"\0" + repr(page.all_layouts).encode("utf-8", "surrogatepass"))
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


def answer_problem(
    page: PageConfig, result: FetchResult, body: Body | None
) -> PageObservation | None:
    """The observation when the answer itself rules out reading entries; None when it can be read.

    `body` is the decoded body the answer stands for (for a 304, the archived body it
    confirms), None when there is none to read.
    """
    name = page.name
    if result.error is not None:
        return PageObservation(name, "error", detail=_blocked_error(result) or result.error)
    if result.gone:
        return PageObservation(name, "gone", detail=f"{result.final_url}: HTTP {result.status}")
    if body is None:
        detail = f"{result.final_url}: HTTP {result.status} without a body"
        return PageObservation(name, "error", detail=detail)
    if not is_html(body.content_type, body.data):
        detail = f"{result.final_url}: not HTML ({body.content_type or 'no Content-Type'})"
        return PageObservation(name, "error", detail=detail)
    if not result.not_modified and maybe_cut_short(result, body.data):
        detail = (
            f"{result.final_url}: the body may be cut short: no Content-Length, and the "
            "connection closed before </html>"
        )
        return PageObservation(name, "error", detail=detail)
    return None


# The statuses a WAF or captcha wall answers with, besides 200 (signs.py reads those).
BLOCK_STATUSES = frozenset({401, 403, 405, 406, 429, 503})
BLOCK_PAGE_BYTES = 256 * 1024  # an interstitial is small: a larger error body is not read


def _blocked_error(result: FetchResult) -> str | None:
    """A failed answer whose page is a named block page (Akamai's "Access Denied" with a
    403, a captcha wall with a 429...): its `blocked:` detail, with the status; else None."""
    last = result.exchanges[-1] if result.exchanges else None
    if last is None or last.status not in BLOCK_STATUSES or last.truncated:
        return None
    content_type = next((v for k, v in last.response_headers if k.lower() == "content-type"), None)
    try:
        body = decode_payload(last.response_headers, last.raw_body, BLOCK_PAGE_BYTES)
    except MonitorError:
        return None
    if not body or not is_html(content_type, body):
        return None
    # At most BLOCK_PAGE_BYTES: parsed here however it nests (the worst shape measured,
    # `<i><div></i>` repeated to 256 KB, takes 0.86 s), not in parseguard's child.
    signs = extract_page(body, content_type=content_type, base_url=last.url, layouts=())
    answer = read_signs(signs, requested_url=last.url, final_url=last.url, status=200)
    # Only a named wall (a vendor, a captcha): a plain "Forbidden" page of a 403 says no more
    # than its status, which the detail already gives.
    if answer.kind != "blocked" or answer.detail.startswith('blocked: "'):
        return None
    return f"{answer.detail} (HTTP {last.status})"


def sign_problem(
    page: PageConfig, requested_url: str, result: FetchResult, extraction: Extraction
) -> PageObservation | None:
    """A block page (an error) or a soft 404 (gone), never read as a shorter listing."""
    answer = read_signs(
        extraction,
        requested_url=requested_url,
        final_url=result.final_url,
        status=result.status or 200,
    )
    if answer.kind == "blocked":
        return PageObservation(page.name, "error", detail=answer.detail)
    if answer.kind == "soft404":
        return PageObservation(page.name, "gone", detail=answer.detail)
    return None


def read_signs(
    extraction: Extraction, *, requested_url: str, final_url: str, status: int
) -> Answer:
    """What a listing's answer is (signs.read_answer), its entries' own words set apart."""
    return read_answer(
        requested_url=requested_url,
        final_url=final_url,
        status=status,
        title=extraction.title,
        heading=extraction.heading,
        text=extraction.text,
        # Only a short page's text is read for block words (signs.SHORT_TEXT): a listing's
        # entries are set apart there, and no string is built for the others.
        entry_texts=[f"{e.title} {e.description}" for e in extraction.entries]
        if len(extraction.text.strip()) < SHORT_TEXT else (),
        challenge=extraction.challenge,
    )


def listing_entries(extractions: Sequence[Extraction]) -> tuple[Entry, ...]:
    """The entries of every page of a listing together, in page order."""
    return tuple(entry for extraction in extractions for entry in extraction.entries)
