"""`monitor serve` in a real headless Chromium (Debian's package): what a person sees, and that
nothing from a watched page ever runs, over scenario-basic plus a hostile page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from test_web import HOSTILE_DESCRIPTION, HOSTILE_TITLE, Served, serving_scenario

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 375, "height": 740}
TITLE_OF_THE_PAGE = "National Initiatives & Partnerships | Institute of Museum and Library Services"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def served(
    make_httpserver: HTTPServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """scenario-basic and the hostile page, checked through the CLI and served on 127.0.0.1."""
    with serving_scenario(make_httpserver, tmp_path_factory.mktemp("browser")) as data:
        yield data


class Watched:
    """A browser page that records every dialog and console error it raises."""

    def __init__(self, browser: Any, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    w = Watched(browser, DESKTOP)
    yield w
    w.context.close()


def computed(page: Any, selector: str, prop: str) -> str:
    return str(page.locator(selector).first.evaluate(f"e => getComputedStyle(e)['{prop}']"))


def test_log_page_shows_the_events_as_text(served, watched, tmp_path):
    """/ lists every event; the hostile title reads as literal text and nothing runs."""
    page = watched.page
    page.goto(served.url)
    rows = page.locator("table.events tbody tr")
    assert rows.count() == len(served.events)
    names = page.locator("table.events tbody tr td:nth-child(4) > a").all_inner_texts()
    assert HOSTILE_TITLE in names[:2]  # the last check's two events come first
    assert page.get_by_text(HOSTILE_TITLE, exact=True).first.is_visible()
    assert HOSTILE_DESCRIPTION in page.locator("main").inner_text()
    assert {"Community Salute", "Film Forward", "WebWise Conference"} <= set(names)
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("img").count() == 0 and page.locator("script").count() == 0
    # The stylesheet is allowed by its hash: it applies, and the policy reports nothing.
    assert computed(page, "th", "backgroundColor") != "rgba(0, 0, 0, 0)"
    assert watched.errors == [] and watched.dialogs == []
    page.screenshot(path=tmp_path / "log.png", full_page=True)


def test_filter_form_narrows_the_log(served, watched):
    """Ticking a kind and pressing Show lists only the events of that kind."""
    page = watched.page
    page.goto(served.url)
    page.get_by_label("removed", exact=True).check()
    page.get_by_label("archived", exact=True).first.check()
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/?kind=archived&kind=removed")
    kinds = page.locator("table.events tbody tr td:nth-child(2)").all_inner_texts()
    assert sorted(kinds) == ["archived", "removed"]


def test_entry_page_highlights_the_difference(served, watched, tmp_path):
    """Clicking an entry opens its timeline; removed and added words are marked, not by colour
    alone: struck through and underlined, on a tinted background."""
    page = watched.page
    page.goto(served.url)
    page.get_by_role("link", name="Community Catalyst Program", exact=True).first.click()
    page.wait_for_url("**/entries/*")
    assert page.locator("h1").inner_text() == "Community Catalyst Program"
    latest = page.locator("section.version").last
    deleted, inserted = latest.locator("ul.changes del"), latest.locator("ul.changes ins")
    assert deleted.is_visible() and inserted.is_visible()
    assert (deleted.inner_text(), inserted.inner_text()) == ("Initiative", "Program")
    plain = page.locator("section.version dd").first
    style = "e => [getComputedStyle(e).textDecorationLine, getComputedStyle(e).backgroundColor]"
    normal = plain.evaluate(style)
    del_style, ins_style = deleted.evaluate(style), inserted.evaluate(style)
    assert "line-through" in del_style[0] and "underline" in ins_style[0]
    assert del_style[1] != normal[1] and ins_style[1] != normal[1] != del_style[1]
    assert watched.errors == [] and watched.dialogs == []
    page.screenshot(path=tmp_path / "entry.png", full_page=True)


def test_hostile_entry_page_runs_nothing(served, watched):
    """The hostile entry's page shows its markup as text; its javascript: link is not a link."""
    page = watched.page
    page.goto(served.url)
    page.get_by_role("link", name=HOSTILE_TITLE, exact=True).first.click()
    page.wait_for_url("**/entries/*")
    assert page.locator("h1").inner_text() == HOSTILE_TITLE
    assert page.locator("a[href^='javascript']").count() == 0
    assert "javascript:alert(1)" in page.locator("main").inner_text()
    assert page.evaluate("window.__pwned === undefined")
    assert watched.dialogs == []


def test_archived_page_scripts_do_not_run(served, watched, tmp_path):
    """An archived copy is shown, but its inline scripts never run and nothing loads."""
    page = watched.page
    answered: list[str] = []
    blocked: list[tuple[str, str]] = []
    page.on("response", lambda response: answered.append(response.url))
    page.on("requestfailed", lambda request: blocked.append((request.url, request.failure)))
    capture_id = served.event("added", HOSTILE_TITLE)["capture_id"]
    url = f"{served.url}captures/{capture_id}"
    page.goto(url)
    assert "Community Catalyst Program" in page.locator("body").inner_text()
    assert page.locator("#pwned").count() == 0
    assert page.title() == TITLE_OF_THE_PAGE  # not "pwned"
    assert page.evaluate("window.__pwned === undefined")
    assert watched.dialogs == []
    assert any("sandboxed" in error and "allow-scripts" in error for error in watched.errors)
    # The page's stylesheets and images are refused by the policy before any request leaves.
    assert answered == [url]
    assert blocked and {failure for _, failure in blocked} == {"csp"}
    page.screenshot(path=tmp_path / "capture.png")


def test_log_page_fits_a_phone(served, browser, tmp_path):
    """On a 375px-wide screen the change log needs no sideways scrolling."""
    phone = Watched(browser, PHONE)
    try:
        phone.page.goto(served.url)
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        assert phone.page.locator("table.events tbody tr").first.is_visible()
        phone.page.screenshot(path=tmp_path / "phone.png", full_page=True)
    finally:
        phone.context.close()


def test_capture_view_frames_the_page_and_nothing_in_it_runs(served, watched):
    """The framed view shows the archived page under its banner; the page's scripts never run."""
    page = watched.page
    capture_id = served.event("added", HOSTILE_TITLE)["capture_id"]
    page.goto(f"{served.url}captures/{capture_id}/view")
    assert page.locator("h1").inner_text().startswith(f"Capture #{capture_id}")
    frame = page.frame_locator("iframe.capture")
    assert "Community Catalyst Program" in frame.locator("body").inner_text()
    assert frame.locator("#pwned").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    assert watched.dialogs == []


@pytest.mark.parametrize("path", ["entries", "captures"])
def test_lists_fit_a_phone(served, browser, path):
    """/entries and /captures need no sideways scrolling on a 375px-wide screen."""
    phone = Watched(browser, PHONE)
    try:
        phone.page.goto(served.url + path)
        assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert phone.page.locator("table tbody tr").first.is_visible()
    finally:
        phone.context.close()


def test_screenshot_for_the_readme(served, browser):
    """With MONITOR_SCREENSHOT=PATH, the change log as a reader sees it is saved to PATH."""
    target = os.environ.get("MONITOR_SCREENSHOT")
    viewer = Watched(browser, {"width": 1100, "height": 1250})
    try:
        viewer.page.goto(served.url + "?kind=added&kind=changed&kind=archived&kind=removed"
                         "&kind=restored")  # fmt: skip
        assert viewer.page.locator("table.events tbody tr").count() > 0
        if target:
            viewer.page.screenshot(path=target)
    finally:
        viewer.context.close()
