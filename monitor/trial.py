"""`monitor try`: fetch one listing with some selectors and show what they extract.

Nothing is recorded: no database, no WARC, no lock. The fetch is the monitor's own
(fetch_target: same user agent, timeout, retries, size limit) and so is extraction
(extract_page), so what `try` shows is what a check would see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from msgspec import Struct
from msgspec.structs import replace

from monitor.canonical import canonical_link
from monitor.config import Config
from monitor.config.model import MonitorSettings, PageConfig, Selectors
from monitor.errors import ConfigError
from monitor.extract.engine import selector_error
from monitor.fetch import Target, fetch_target, make_client
from monitor.models import Entry
from monitor.observe import Body, answer_problem, sign_problem
from monitor.parseguard import guarded_extract_page

SELECTOR_KEYS = ("item", "title", "link", "description", "next")


class TrialPage(Struct, frozen=True):
    """One page of the listing as fetched: its URL, status and the entries it gave."""

    number: int
    url: str
    status: int | None
    entries: tuple[Entry, ...]


class Trial(Struct, frozen=True):
    """What trying the selectors gave: the pages read, and why reading stopped early."""

    page: PageConfig
    pages: tuple[TrialPage, ...]
    problem: str | None  # the fetch failed, the next link left the host, max_pages reached...

    @property
    def entries(self) -> list[tuple[int, Entry]]:
        return [(p.number, e) for p in self.pages for e in p.entries]


def _same_url(a: str, b: str) -> bool:
    """The same page, as links compare (SPEC: fragment, tracking query, case of the scheme
    and host, default port and a trailing "/" aside)."""
    return a.rstrip("/") == b.rstrip("/") or canonical_link(a) == canonical_link(b)


def trial_page(
    config: Config | None,
    url: str | None,
    page_name: str | None,
    overrides: Mapping[str, str | None],
) -> PageConfig:
    """The page to try: --page's (or the configured page at URL), each option overriding one.

    Raises ConfigError (exit 2) naming the option for a bad selector, an unknown page, or
    nothing to extract with.
    """
    pages = list(config.pages) if config else []
    base: PageConfig | None = None
    if page_name is not None:
        base = next((p for p in pages if p.name == page_name), None)
        if base is None:
            known = ", ".join(p.name for p in pages) or "none"
            raise ConfigError(f"--page {page_name!r}: no such page (pages: {known})")
    elif url is not None:
        base = next((p for p in pages if _same_url(p.url, url)), None)
    if url is None and base is None:
        raise ConfigError("give a URL to try, or --page NAME of a configured page")
    for key, value in overrides.items():
        if value is not None and (error := selector_error(value)) is not None:
            raise ConfigError(f"--{key}: invalid CSS selector {value!r}: {error}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if base is None:
        if "item" not in given:
            raise ConfigError(
                f"no configured page has the URL {url}: give its selectors, at least --item"
            )
        base = PageConfig("try", url or "", "active", Selectors(item=given["item"]))
    select = replace(base.select, **given)
    scheme = urlsplit(url or base.url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"URL {url!r}: not an http(s) URL")
    layouts = base.layouts if not given else ()
    return replace(base, url=url or base.url, select=select, layouts=layouts)


def run_trial(page: PageConfig, settings: MonitorSettings) -> Trial:
    """Fetch the listing (following `next` up to max_pages) and extract; records nothing."""
    return asyncio.run(_trial(page, settings))


async def _trial(page: PageConfig, settings: MonitorSettings) -> Trial:
    read: list[TrialPage] = []
    url, seen = page.url, set()
    host = urlsplit(page.url).hostname
    async with make_client(settings) as client:
        while True:
            seen.add(url.rstrip("/"))
            result = await fetch_target(client, Target(url, page.name), settings)
            if result.error or result.body is None or result.status != 200:
                why = result.error or f"HTTP {result.status}"
                if not why.startswith(url):  # fetch errors name the URL already
                    why = f"{url}: {why}"
                return Trial(page, tuple(read), f"page {len(read) + 1}: {why}")
            number = len(read) + 1
            # What a check would make of the answer: not HTML, cut short, a block page or
            # a soft 404 is said as such, never "no item matched" (a selector to blame).
            body = Body(result.final_url, result.content_type, result.body)
            refused = answer_problem(page, result, body)
            if refused is not None:
                return Trial(page, tuple(read), f"page {number}: {refused.detail}")
            try:
                extraction = guarded_extract_page(
                    result.body,
                    content_type=result.content_type,
                    base_url=result.final_url,
                    layouts=page.all_layouts,
                )
            except Exception as error:  # a hostile page's parse past the deadline, a crash
                return Trial(page, tuple(read), f"page {number}: {url}: cannot extract: {error}")
            sign = sign_problem(page, url, result, extraction)
            if sign is not None:
                where = "" if sign.detail.startswith(url) else f"{url}: "
                return Trial(page, tuple(read), f"page {number}: {where}{sign.detail}")
            read.append(TrialPage(number, result.final_url, result.status, extraction.entries))
            nxt = extraction.next_url
            if not nxt or nxt.rstrip("/") in seen:
                return Trial(page, tuple(read), None)
            if urlsplit(nxt).hostname != host:
                return Trial(page, tuple(read), f"the next-page link leads to another host: {nxt}")
            if number >= page.max_pages:
                return Trial(
                    page, tuple(read), f"max_pages ({page.max_pages}) reached; next: {nxt}"
                )
            url = nxt


def trial_lines(trial: Trial) -> list[str]:
    """The entries found, numbered, with their link and the start of their description."""
    lines: list[str] = []
    for index, (number, entry) in enumerate(trial.entries, start=1):
        where = f" (page {number})" if len(trial.pages) > 1 else ""
        lines.append(f"{index:>3}. {entry.title or '(no title)'}{where}")
        if entry.link:
            lines.append(f"     link: {entry.link}")
        if entry.description:
            text = entry.description
            lines.append(f"     description: {text[:157] + '…' if len(text) > 160 else text}")
    return lines


def selectors_used(page: PageConfig) -> Sequence[tuple[str, str]]:
    """The selectors tried, for the summary: (key, selector) of each one set."""
    return [(k, v) for k in SELECTOR_KEYS if (v := getattr(page.select, k, None))]
