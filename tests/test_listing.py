"""Listings as a person reads them: split over pages, behind a block page, or gone in disguise.

Through the real CLI against a local site: a listing with `select.next` is all its pages
together; a WAF page or a not-found page served with 200 is never read as a shorter list.
"""

from __future__ import annotations

import html

import pytest
from conftest import json_lines, run, write_config
from werkzeug import Response

SELECT = {"item": "li.entry", "title": "h3", "link": "a[href]", "next": "a[rel=next]"}


def listing_page(titles: list[str], next_path: str | None = None, title: str = "Grants") -> str:
    items = "".join(
        f'<li class="entry"><h3><a href="/grants/{t.lower().replace(" ", "-")}">{html.escape(t)}'
        f"</a></h3><p>About {html.escape(t)}, a program that runs for years.</p></li>"
        for t in titles
    )
    pager = f'<a rel="next" href="{next_path}">Next ›</a>' if next_path else ""
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
        f"<ul>{items}</ul><nav>{pager}</nav></body></html>"
    )


def paged(site, titles: list[str], per_page: int = 3) -> None:
    """Serve `titles` as /grants?page=N, `per_page` a page, each linking to the next."""
    chunks = [titles[i : i + per_page] for i in range(0, len(titles), per_page)] or [[]]
    pages = {}
    for n, chunk in enumerate(chunks, start=1):
        nxt = f"/grants?page={n + 1}" if n < len(chunks) else None
        pages[n] = listing_page(chunk, nxt)

    def handler(request):
        n = int(request.args.get("page", "1"))
        if n not in pages:
            return Response("not found", status=404)
        return Response(pages[n], content_type="text/html; charset=utf-8")

    site.serve("/grants", handler)


def config_for(tmp_path, site, **page):
    entry = {"name": "grants", "url": site.url("/grants"), "role": "active", "select": SELECT}
    entry.update(page)
    return write_config(tmp_path, [entry], monitor={"confirm_checks": 2})


NAMES = [f"Program {c}" for c in "ABCDEFG"]


def test_a_paginated_listing_is_read_whole(site, tmp_path):
    """Entries on page 2 and 3 are entries: `monitor entries` lists all seven."""
    paged(site, NAMES)
    config = config_for(tmp_path, site)
    assert run(config, "check").exit_code == 0
    titles = [e["title"] for e in json_lines(run(config, "entries", "--json"))]
    assert sorted(titles) == NAMES


def test_an_entry_pushed_to_page_two_is_not_removed(site, tmp_path):
    """A new entry at the top pushes one from page 1 to page 2: one `added`, nothing else."""
    paged(site, NAMES)
    config = config_for(tmp_path, site)
    run(config, "check")
    paged(site, ["Program New", *NAMES])
    events = json_lines(run(config, "check", "--json"))
    assert [(e["kind"], e["title"]) for e in events] == [("added", "Program New")]


def test_a_failing_second_page_makes_the_listing_an_error(site, tmp_path):
    """Page 2 answering 503 is a page-error naming page 2; no entry is removed."""
    paged(site, NAMES)
    config = config_for(tmp_path, site)
    run(config, "check")
    first = listing_page(NAMES[:3], "/grants?page=2")

    def broken(request):
        if request.args.get("page", "1") == "1":
            return Response(first, content_type="text/html")
        return Response("busy", status=503)

    site.serve("/grants", broken)
    for _ in range(3):
        result = run(config, "check", "--json")
        assert result.exit_code == 1
    events = json_lines(run(config, "log", "--json"))
    assert [e["kind"] for e in events] == ["page-error"]
    assert events[0]["detail"].startswith("page 2 of the listing:")
    assert len(json_lines(run(config, "entries", "--json", "--state", "active"))) == 7


def test_a_next_link_to_another_host_is_an_error(site, tmp_path):
    """A pager leading off the site is refused, not followed."""
    site.serve("/grants", listing_page(NAMES[:3], "http://elsewhere.example/grants?page=2"))
    config = config_for(tmp_path, site)
    result = run(config, "check", "--json")
    assert result.exit_code == 1
    (event,) = json_lines(result)
    assert event["kind"] == "page-error"
    assert "another host" in event["detail"]


def test_max_pages_with_a_next_link_still_ahead_is_an_error(site, tmp_path):
    """max_pages bounds the walk; a listing longer than that is an error, never a short list."""
    paged(site, NAMES, per_page=2)  # four pages
    config = config_for(tmp_path, site, max_pages=2)
    result = run(config, "check", "--json")
    assert result.exit_code == 1
    assert "max_pages (2)" in json_lines(result)[0]["detail"]


def test_a_pager_that_loops_stops_at_a_page_already_seen(site, tmp_path):
    """A `next` link back to page 1 ends the listing instead of walking forever."""
    site.serve("/grants", listing_page(NAMES[:3], "/grants"))
    config = config_for(tmp_path, site)
    assert run(config, "check").exit_code == 0
    assert len(json_lines(run(config, "entries", "--json"))) == 3


def test_a_second_page_redirected_back_to_the_first_is_an_error_not_a_shorter_list(
    site, tmp_path
):
    """Page 2 answering with a redirect to page 1 (a pager the site stopped serving): page 1
    still says there is more, so the listing is a page-error naming page 2, and none of
    the entries on the later pages is removed, however few were left on page 1."""
    paged(site, NAMES, per_page=4)  # page 1 keeps 4 of 7: above anomaly_ratio
    config = config_for(tmp_path, site)
    assert run(config, "check").exit_code == 0
    first = listing_page(NAMES[:4], "/grants?page=2")

    def back_to_one(request):
        if request.args.get("page", "1") == "1":
            return Response(first, content_type="text/html")
        return Response("", status=302, headers={"Location": site.url("/grants")})

    site.serve("/grants", back_to_one)
    result = run(config, "check", "--json")
    assert result.exit_code == 1
    (event,) = json_lines(result)
    assert event["kind"] == "page-error"
    assert event["detail"].startswith("page 2 of the listing: ")
    assert "a page of the listing already read" in event["detail"]
    assert len(json_lines(run(config, "entries", "--json", "--state", "active"))) == 7


def test_a_304_with_nothing_to_confirm_is_an_error_not_an_empty_baseline(site, tmp_path):
    """A server (a CDN) answering 304 to a first request that sent no validators confirms
    no body: a page-error (exit 1), not a baseline of 0 entries that then stays "ok"."""
    site.serve("/grants", lambda request: Response(status=304))
    config = config_for(tmp_path, site)
    result = run(config, "check", "--json")
    assert result.exit_code == 1
    (event,) = json_lines(result)
    assert event["kind"] == "page-error" and "HTTP 304" in event["detail"]
    assert "no earlier body" in event["detail"]
    paged(site, NAMES)  # then it answers: the first real check is the baseline, silently
    assert run(config, "check", "--json").exit_code == 0
    assert len(json_lines(run(config, "entries", "--json"))) == 7


BLOCK_PAGES = {
    "cloudflare": (
        "<html><head><title>Just a moment...</title></head><body>"
        "<h1>Checking your browser before accessing the site.</h1></body></html>"
    ),
    "akamai": (
        "<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>"
        "You don't have permission to access this server. Reference #18.5c1d</body></html>"
    ),
    "incapsula": (
        "<html><head><title>Request unsuccessful. Incapsula incident ID: 1234</title></head>"
        "<body>Request unsuccessful.</body></html>"
    ),
    # captcha walls whose words say nothing of blocking: told by their widget
    "hcaptcha": (
        "<html><head><title>Please verify</title>"
        '<script src="https://hcaptcha.com/1/api.js" async></script></head><body>'
        '<form method="post"><div class="h-captcha" data-sitekey="10000000-ffff"></div>'
        "<button>Continue</button></form></body></html>"
    ),
    "recaptcha": (
        "<html><head><title>Verification</title>"
        '<script src="https://www.google.com/recaptcha/api.js"></script></head><body>'
        '<form><div class="g-recaptcha" data-sitekey="6Lc"></div><input type="submit"></form>'
        "</body></html>"
    ),
}


@pytest.mark.parametrize("body", BLOCK_PAGES.values(), ids=BLOCK_PAGES.keys())
def test_a_block_page_is_an_error_that_keeps_the_entries(site, tmp_path, body):
    """A 200 WAF page is `page-error` "blocked: …", once, however long; nothing is removed."""
    site.serve("/grants", listing_page(NAMES[:3]))
    config = config_for(tmp_path, site)
    run(config, "check")
    site.serve("/grants", body)
    for _ in range(4):
        assert run(config, "check").exit_code == 1
    events = json_lines(run(config, "log", "--json"))
    assert [e["kind"] for e in events] == ["page-error"]
    assert events[0]["detail"].startswith("blocked:")
    assert len(json_lines(run(config, "entries", "--json", "--state", "active"))) == 3


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (BLOCK_PAGES["akamai"], 'blocked: Akamai ("Access Denied") (HTTP 403)'),
        (BLOCK_PAGES["hcaptcha"], 'blocked: hCaptcha ("Please verify") (HTTP 403)'),
        ("<html><head><title>Forbidden</title></head><body><p>Go away.</p></body></html>",
         "HTTP 403 FORBIDDEN"),
    ],
    ids=["akamai", "captcha", "plain-403"],
)
def test_a_block_page_answered_with_an_error_status_says_blocked(site, tmp_path, body, detail):
    """A WAF's page sent with 403 is a page-error whose detail says `blocked:` (and the
    status); a plain 403 page keeps the status as its detail."""
    site.serve("/grants", listing_page(NAMES[:3]))
    config = config_for(tmp_path, site)
    run(config, "check")
    site.serve("/grants", lambda request: Response(body, status=403, content_type="text/html"))
    result = run(config, "check", "--json")
    (event,) = json_lines(result)
    assert result.exit_code == 1 and event["kind"] == "page-error"
    assert event["detail"].endswith(detail) and event["detail"].startswith(
        "blocked:" if detail.startswith("blocked:") else site.url("/grants"))


def test_a_captcha_wall_names_its_widget(site, tmp_path):
    """The detail says which widget made it a block page, with the page's title."""
    site.serve("/grants", listing_page(NAMES[:3]))
    config = config_for(tmp_path, site)
    run(config, "check")
    site.serve("/grants", BLOCK_PAGES["hcaptcha"])
    (event,) = json_lines(run(config, "check", "--json"))
    assert event["detail"] == 'blocked: hCaptcha ("Please verify")'


@pytest.mark.parametrize(
    "words",
    [
        "Why sites ask you to verify you are human, and what it costs readers.",
        "Solve the captcha puzzle game with your library card.",
        "Checking your browser history: a privacy workshop.",
        "Enable JavaScript and cookies to continue reading our e-books.",
    ],
)
def test_an_entry_that_talks_like_a_block_page_is_still_an_entry(site, tmp_path, words):
    """A short listing whose new entry quotes a block page's words is read, and the entry
    is `added`: the listing is never taken for a block page and frozen there."""
    site.serve("/grants", listing_page(NAMES[:3]))
    config = config_for(tmp_path, site)
    run(config, "check")
    item = (f'<li class="entry"><h3><a href="/grants/privacy">Online privacy</a></h3>'
            f"<p>{html.escape(words)}</p></li>")  # fmt: skip
    site.serve("/grants", listing_page(NAMES[:3]).replace("</ul>", item + "</ul>"))
    result = run(config, "check", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(e["kind"], e["title"]) for e in json_lines(result)] == [("added", "Online privacy")]


def test_a_listing_with_a_captcha_in_its_sign_up_form_is_a_listing(site, tmp_path):
    """A reCAPTCHA beside the entries (a newsletter form) does not make the page a wall."""
    form = ('<form><input name="email"><div class="g-recaptcha" data-sitekey="6Lc"></div>'
            "</form>")  # fmt: skip
    site.serve("/grants", listing_page(NAMES[:3]).replace("<nav>", form + "<nav>"))
    config = config_for(tmp_path, site)
    assert run(config, "check").exit_code == 0
    site.serve("/grants", listing_page(NAMES[:4]).replace("<nav>", form + "<nav>"))
    result = run(config, "check", "--json")
    assert result.exit_code == 0
    assert [(e["kind"], e["title"]) for e in json_lines(result)] == [("added", "Program D")]


def test_a_not_found_page_served_with_200_is_gone(site, tmp_path):
    """A 200 "Page not found" is `page-gone` "soft 404: …"; removals wait for confirmation."""
    site.serve("/grants", listing_page(NAMES[:3]))
    config = config_for(tmp_path, site)
    run(config, "check")
    site.serve("/grants", listing_page([], title="Page not found | Example Agency"))
    first = json_lines(run(config, "check", "--json"))
    assert [e["kind"] for e in first] == ["page-gone"]
    assert first[0]["detail"].startswith("soft 404:")
    assert json_lines(run(config, "entries", "--json", "--state", "removed")) == []
    second = json_lines(run(config, "check", "--json"))  # confirm_checks = 2
    assert sorted(e["kind"] for e in second) == ["removed"] * 3


def test_a_redirect_to_the_home_page_is_gone(site, tmp_path):
    """A listing that now redirects to the site's home page is a soft 404, not an empty list."""
    site.serve("/grants", listing_page(NAMES[:3]))
    config = config_for(tmp_path, site)
    run(config, "check")
    site.serve("/grants", lambda request: Response("", status=302, headers={"Location": "/"}))
    site.serve("/", "<html><head><title>Example Agency</title></head><body>Welcome</body></html>")
    (event,) = json_lines(run(config, "check", "--json"))
    assert event["kind"] == "page-gone"
    assert event["detail"].startswith("soft 404: redirected to")


def test_a_listing_that_mentions_not_found_is_still_a_listing(site, tmp_path):
    """An entry whose text says "not found" does not make its listing a soft 404."""
    titles = ["Lost and found", "Page not found errors explained", "Program C"]
    site.serve("/grants", listing_page(titles))
    config = config_for(tmp_path, site)
    assert run(config, "check").exit_code == 0
    assert len(json_lines(run(config, "entries", "--json"))) == 3
