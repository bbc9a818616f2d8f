"""Entry pages ([pages.detail]): which are due, what an answer means, which events follow.

Pure: rows and answers in, rows and events out; the clock is a parameter (`detail.py`
fetches, archives and records). SPEC.md "Entry pages":

- Only links on the watched site are fetched: the same host as the listing page, or a
  host of its registrable domain, told by the Public Suffix List (bundled with the
  `publicsuffixlist` package, read offline). A "last two labels" rule would count
  `example.co.uk` and `other.co.uk`, or two `*.github.io` sites, as one site and fetch
  other people's pages; an IP address or a single-label host is its own site.
- Each link is due once per slot of `every`: slots are `every` apart, shifted by a stable
  offset hashed from the URL, so 300 entries with `every = "1d"` spread over the day and
  none is fetched twice in one slot, whenever and however often `check` runs. A link seen
  for the first time waits for its first slot, so switching the feature on is no burst.
- An entry removed from every listing keeps being checked for `keep_checking`.
- ok: a 2xx page (or a 304); gone: 404/410, a soft 404, a redirect to the site's home or
  to a listing; error: the rest (network, 5xx, 429, a block page): transient, no event.
  `link-gone` after `confirm_checks` consecutive gone checks (an error in between neither
  counts nor breaks the run: a WAF answering every other request must not hide a 404),
  once per episode; `link-recovered` when a confirmed-gone page answers again;
  `link-changed` when the `content` selector's text differs from the last good check.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from msgspec import Struct
from msgspec.structs import replace
from publicsuffixlist import PublicSuffixList

from monitor.config import DetailConfig, PageConfig
from monitor.models import Change, Event, LinkEventKind
from monitor.signs import read_answer
from monitor.store.detail_rows import LinkCandidate, LinkMemory

LinkOutcome = Literal["ok", "unchanged", "gone", "error"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- which links, and when ------------------------------------------------------------------


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once (a few ms)


def _host(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return host.rstrip(".").lower() or None


def registrable_domain(host: str) -> str:
    """The site a host belongs to: its registrable domain, else the host itself (IPs too)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    return _suffixes().privatesuffix(host) or host


def on_site(link: str, page_url: str) -> bool:
    """True when `link` is http(s) on the listing page's host or registrable domain."""
    link_host, page_host = _host(link), _host(page_url)
    if link_host is None or page_host is None:
        return False
    return link_host == page_host or registrable_domain(link_host) == registrable_domain(page_host)


def slot_offset_ms(url: str, every_s: float) -> int:
    """A link's stable place in the interval, in ms: a hash of its URL modulo `every`."""
    period = max(int(every_s * 1000), 1)
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % period


def next_slot(url: str, every_s: float, after: datetime, *, inclusive: bool = False) -> datetime:
    """The link's first slot after `after` (or at it, with `inclusive`)."""
    period = max(int(every_s * 1000), 1)
    offset = slot_offset_ms(url, every_s)
    at_ms = (after - _EPOCH) // timedelta(milliseconds=1)
    slot = (at_ms - offset) // period * period + offset  # the last slot at or before `after`
    if slot < at_ms or (slot == at_ms and not inclusive):
        slot += period
    return _EPOCH + timedelta(milliseconds=slot)


class DueLink(Struct, frozen=True):
    """An entry page to fetch now: the entry, what is remembered of its page, its config."""

    candidate: LinkCandidate
    memory: LinkMemory
    detail: DetailConfig


class LinkPlan(Struct, frozen=True):
    """What a phase does: the pages to fetch, and rows to write without fetching."""

    due: tuple[DueLink, ...]
    memories: tuple[LinkMemory, ...]  # first seen (their first slot), or no longer checked


def plan_links(
    pages: Sequence[PageConfig],
    candidates: Sequence[LinkCandidate],
    memories: Mapping[str, LinkMemory],
    now: datetime,
) -> LinkPlan:
    """Which entry pages of `pages` are due at `now`, and which rows change without a fetch."""
    configs = {p.name: p for p in pages if p.detail is not None}
    due: list[DueLink] = []
    rows: list[LinkMemory] = []
    watched: set[str] = set()
    for candidate in candidates:
        page = configs.get(candidate.page)
        if page is None or page.detail is None or not on_site(candidate.link, page.url):
            continue
        detail = page.detail
        removed_at = candidate.removed_at if candidate.state == "removed" else None
        if removed_at is not None and now - removed_at > timedelta(seconds=detail.keep_checking_s):
            continue
        watched.add(candidate.entry_id)
        memory = memories.get(candidate.entry_id)
        if memory is None or memory.url != candidate.link:  # a new page: a new history
            first = next_slot(candidate.link, detail.every_s, now, inclusive=True)
            memory = LinkMemory(candidate.entry_id, candidate.link, candidate.page,
                                next_due_at=first)  # fmt: skip
        memory = replace(memory, page=candidate.page, removed_at=removed_at)
        if _due(memory, detail, now):
            due.append(DueLink(candidate, memory, detail))
        elif memory != memories.get(candidate.entry_id):
            rows.append(memory)
    for entry_id, memory in memories.items():  # retired: say so, for status and the timeline
        if entry_id not in watched and memory.next_due_at is not None:
            rows.append(replace(memory, next_due_at=None))
    return LinkPlan(tuple(due), tuple(rows))


def _due(memory: LinkMemory, detail: DetailConfig, now: datetime) -> bool:
    if memory.last_checked_at is None:
        return memory.next_due_at is not None and memory.next_due_at <= now
    return next_slot(memory.url, detail.every_s, memory.last_checked_at) <= now


# -- what an answer means ---------------------------------------------------------------------


class LinkVerdict(Struct, frozen=True):
    """What one fetch of an entry page says; `detail` in SPEC's words (`HTTP 404`, ...)."""

    outcome: LinkOutcome
    detail: str
    content: str | None = None  # the `content` text of a good HTML page (None: not read)


class PageSigns(Struct, frozen=True):
    """What the fetch edge read from a 2xx HTML body."""

    title: str
    heading: str
    text: str
    content: str | None  # the `content` selector's text; None without a selector


def read_link(
    *,
    requested_url: str,
    final_url: str,
    status: int | None,
    error: str | None,
    signs: PageSigns | None,
    listing_urls: Sequence[str],
) -> LinkVerdict:
    """An entry page's answer as ok, unchanged, gone or error (`signs`: None unless HTML)."""
    if error is not None:
        return LinkVerdict("error", error)
    if status is None:
        return LinkVerdict("error", f"{final_url}: no answer")
    if status in (404, 410):
        return LinkVerdict("gone", f"HTTP {status}")
    if status == 304:
        return LinkVerdict("unchanged", "HTTP 304")
    if not 200 <= status < 300:
        return LinkVerdict("error", f"HTTP {status}")
    if signs is None:  # a PDF, an image: the page is there, its text is not read
        return LinkVerdict("ok", f"HTTP {status}")
    answer = read_answer(
        requested_url=requested_url, final_url=final_url, status=status, title=signs.title,
        heading=signs.heading, text=signs.text, listing_urls=listing_urls,
    )  # fmt: skip
    if answer.kind == "blocked":
        return LinkVerdict("error", answer.detail)
    if answer.kind == "soft404":
        return LinkVerdict("gone", answer.detail)
    return LinkVerdict("ok", f"HTTP {status}", signs.content)


# -- what follows -----------------------------------------------------------------------------


def judge_link(
    due: DueLink,
    verdict: LinkVerdict,
    *,
    now: datetime,
    confirm_checks: int,
    new_id: Callable[[], str],
) -> tuple[LinkMemory, tuple[Event, ...]]:
    """The page's memory after this check, and its events (capture ids set when recorded)."""
    memory = due.memory
    kinds: list[tuple[LinkEventKind, Change | None]] = []
    status, streak, content = memory.status, memory.streak, memory.content
    if verdict.outcome in ("ok", "unchanged"):
        if status == "gone":
            kinds.append(("link-recovered", None))
        status, streak = "ok", 0
        if verdict.outcome == "ok" and verdict.content is not None:
            if content is not None and verdict.content != content:
                kinds.append(("link-changed", Change(content, verdict.content)))
            content = verdict.content  # the first good text is the baseline
    elif verdict.outcome == "gone":
        streak += 1
        if status != "gone" and streak >= confirm_checks:
            status = "gone"
            kinds.append(("link-gone", None))
    elif status != "gone":  # an error ends no gone episode
        status = "error"
    after = replace(
        memory,
        status=status,
        streak=streak,
        content=content,
        last_checked_at=now,
        next_due_at=next_slot(memory.url, due.detail.every_s, now),
        last_detail=verdict.detail,
    )
    candidate = due.candidate
    changed = f"{verdict.detail}: the text of {due.detail.content!r} changed"
    events = tuple(
        Event(
            id=new_id(),
            kind=kind,
            at=now,
            page=candidate.page,
            entry_id=candidate.entry_id,
            title=candidate.title,
            link=candidate.link,
            detail=changed if change is not None else verdict.detail,
            changes={"content": change} if change is not None else None,
        )  # fmt: skip
        for kind, change in kinds
    )
    return after, events
