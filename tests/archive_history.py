"""Declared histories for the fake web archive, and the IMLS pages' history from 2015 to 2019.

`imls_history()` is what the Wayback Machine could hold of the two IMLS listing pages,
built from `fixtures/scenario-basic/` and `fixtures/imls-2017/`. In capture order
(A: the active page, R: the archived page), what each capture is there for:

- 20150612093000 A, scenario step 1, captured as `http://www.imls.gov:80/...`: the first.
- 20150612094510 R, step 1: the first.
- 20150801120000 A, step 1's bytes again: collapsed away (same digest), never fetched.
- 20150801120005 A, a 503 capture; 20150901000000 A, a text/plain one: filtered out.
- 20151103101500 A, step 2: Museums for All edited (`changed`), Community Salute new
  (`added`), IMLS Focus gone (held: R's last capture does not list it).
- 20151105080000 R, step 2: IMLS Focus under /archives/: `archived`, dated here.
- 20160410143000 A, step 3: Film Forward on the active page: `restored`.
- 20160412090000 R, step 3: Film Forward and WebWise Conference gone: WebWise `removed`.
- 20160901000000 A, step 2's bytes again (A -> B -> A, kept): Film Forward leaves, held,
  and `removed` dated here, as R's next capture comes after the 90 days of `hold_for`.
- 20161120000000 A, the archive's "Hrm." page (404): an archive error page, skipped.
- 20170215120000 A, 20170215121500 R: imls-2017 (23 and 16 entries): many `added`,
  WebWise Conference back (`archived`).
- 20170301000000 R: redirects to the memento of 20170215121500, two weeks away: an
  archive error, skipped.
- 20170815000000 A, imls-2017 edited: Museums for All's description and Digging into
  Data's title (`changed`), Learning Labs gone (`archived`: it stands on R), Consumer
  Financial Protection Bureau gone (held).
- 20170816000000 R, imls-2017's bytes again (after the redirect's row, so kept): the
  Bureau is not there: `removed`, dated at the capture it left (20170815000000).
- 20190320000000 A, 20190320000500 R: a redesign, same entries in other markup
  (`REDESIGN_SELECT` fits it): no entry with the 2017 selectors: recorded, skipped.

The exact events are the lead's classification; the table says what each capture is for.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

FIXTURES = Path(__file__).parent / "fixtures"
ACTIVE_URL = "https://www.imls.gov/issues/national-initiatives"
ARCHIVED_URL = "https://www.imls.gov/issues/national-initiatives/archives"
# Selectors that fit the 2019 redesign (for `[[pages.layouts]]` tests).
REDESIGN_SELECT = {
    "item": ".initiative-list .initiative-card",
    "title": ".card-title",
    "link": "a[href]",
    "description": ".card-summary",
}

Playback = Literal["memento", "not-archived", "excluded"]


def digest_of(body: bytes) -> str:
    """The CDX digest of a body: base32 SHA-1, as Heritrix and Wayback write it."""
    return base64.b32encode(hashlib.sha1(body).digest()).decode()


@dataclass(frozen=True)
class ArchivedCapture:
    """One capture in the fake archive's history."""

    timestamp: str  # YYYYMMDDhhmmss
    url: str  # the URL as captured (CDX `original`)
    body: bytes
    status: int = 200
    mimetype: str = "text/html"
    playback: Playback = "memento"  # or the archive's own error page instead of the bytes
    redirect_to: str | None = None  # the memento redirects to this timestamp's memento
    note: str = ""  # what this capture shows, for people reading a failing test

    @property
    def digest(self) -> str:
        return digest_of(self.body)

    @property
    def at(self) -> datetime:
        return datetime.strptime(self.timestamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _page(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def _rows(page: bytes) -> list[tuple[int, int]]:
    """(start, end) of each `views-row` block of a Drupal listing page."""
    starts = [m.start() for m in re.finditer(rb'\n  <div class="views-row ', page)]
    close = page.index(b"\n    </div>", starts[-1])
    return list(zip(starts, [*starts[1:], close], strict=True))


def drop_entry(page: bytes, slug: str) -> bytes:
    """The page without the row whose title links to `.../slug`."""
    for start, end in _rows(page):
        if f'/{slug}">'.encode() in page[start:end]:
            return page[:start] + page[end:]
    raise ValueError(f"no row links to {slug}")


def redesign(page: bytes, title: str) -> bytes:
    """The same entries in a 2019-style markup the 2017 selectors do not match."""
    cards = []
    for start, end in _rows(page):
        row = page[start:end].decode()
        link = re.search(r'views-field-title">.*?<a href="([^"]+)">(.*?)</a>', row, re.S)
        body = re.search(r'views-field-body">\s*<div class="field-content">(.*?)</div>', row, re.S)
        if link is None or body is None:
            continue
        cards.append(
            f'<li class="initiative-card"><h3 class="card-title"><a href="{link.group(1)}">'
            f'{link.group(2)}</a></h3><div class="card-summary">{body.group(1)}</div></li>'
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} | IMLS</title></head><body><main>"
        f'<h1>{html.escape(title)}</h1><ul class="initiative-list">\n'
        + "\n".join(cards)
        + "\n</ul></main></body></html>\n"
    ).encode()


def imls_history(
    active_url: str = ACTIVE_URL, archived_url: str = ARCHIVED_URL
) -> list[ArchivedCapture]:
    """The two IMLS pages as a web archive holds them, 2015-2019 (see the module's table)."""
    old_active = active_url.replace("https://", "http://").replace(
        "www.imls.gov/", "www.imls.gov:80/"
    )
    step = "scenario-basic/step{}/{}.html"
    s1a, s1r = _page(step.format(1, "active")), _page(step.format(1, "archived"))
    s2a, s2r = _page(step.format(2, "active")), _page(step.format(2, "archived"))
    s3a, s3r = _page(step.format(3, "active")), _page(step.format(3, "archived"))
    a17, r17 = _page("imls-2017/active.html"), _page("imls-2017/archived.html")
    a17_edited = drop_entry(
        drop_entry(a17, "learning-labs-libraries-and-museums"),
        "consumer-financial-protection-bureau",
    )
    a17_edited = a17_edited.replace(
        b"build lifelong museum habits.</p>",
        b"build lifelong museum habits. More than 300 museums now take part.</p>",
    ).replace(b"Digging into Data Challenge</a>", b"Digging into Data Challenge 2017</a>")
    a, r = active_url, archived_url
    return [
        ArchivedCapture("20150612093000", old_active, s1a, note="step 1, old-style URL"),
        ArchivedCapture("20150612094510", r, s1r, note="step 1"),
        ArchivedCapture("20150801120000", a, s1a, note="step 1 again: same digest"),
        ArchivedCapture("20150801120005", a, b"busy", status=503, note="not 200"),
        ArchivedCapture("20150901000000", a, b"plain", mimetype="text/plain", note="not HTML"),
        ArchivedCapture("20151103101500", a, s2a, note="step 2"),
        ArchivedCapture("20151105080000", r, s2r, note="step 2: IMLS Focus archived"),
        ArchivedCapture("20160410143000", a, s3a, note="step 3: Film Forward restored"),
        ArchivedCapture("20160412090000", r, s3r, note="step 3: WebWise removed"),
        ArchivedCapture("20160901000000", a, s2a, note="step 2 again: A->B->A kept"),
        ArchivedCapture(
            "20161120000000", a, s2a + b"<!-- x -->", playback="not-archived", note="Hrm."
        ),
        ArchivedCapture("20170215120000", a, a17, note="imls-2017"),
        ArchivedCapture("20170215121500", r, r17, note="imls-2017"),
        ArchivedCapture(
            "20170301000000",
            r,
            r17 + b"<!-- march -->",
            redirect_to="20170215121500",
            note="redirect two weeks away",
        ),
        ArchivedCapture("20170815000000", a, a17_edited, note="edits, a move, a removal"),
        ArchivedCapture("20170816000000", r, r17, note="imls-2017 again, CFPB not there"),
        ArchivedCapture(
            "20190320000000", a, redesign(a17_edited, "National Initiatives"), note="redesign"
        ),
        ArchivedCapture(
            "20190320000500", r, redesign(r17, "Archived National Initiatives"), note="redesign"
        ),
    ]
