"""`monitor try`: what a set of selectors extracts from a page, recording nothing."""

from __future__ import annotations

import pytest
from conftest import ACTIVE_PATH, IMLS, imls_pages, json_lines, run, write_config
from servers import closed_url
from werkzeug import Response

LIST = """<html><body><ul>{items}</ul>{next}</body></html>"""


def listing(titles: list[str], next_path: str | None = None) -> str:
    items = "".join(f'<li class="r"><h3>{t}</h3><a href="/x/{t}">more</a><p>About {t}.</p></li>'
                    for t in titles)  # fmt: skip
    nxt = f'<a rel="next" href="{next_path}">next</a>' if next_path else ""
    return LIST.format(items=items, next=nxt)


def test_try_a_configured_page_records_nothing(site, tmp_path):
    """try --page active prints the 23 IMLS entries and leaves no database or WARC behind."""
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    config = write_config(tmp_path, imls_pages(site))
    result = run(config, "try", "--page", "active", "--json")
    assert result.exit_code == 0, result.stderr
    entries = json_lines(result)
    assert len(entries) == 23 and all(e["title"] for e in entries)
    assert "nothing recorded" in result.stderr
    assert not (tmp_path / "data").exists()
    text = run(config, "try", site.url(ACTIVE_PATH)).stdout  # the page found by its URL
    assert text.count("link: ") == 23
    # ... compared as links are: a fragment, a tracking query, the host's case aside
    same = site.url("").upper().rstrip("/") + ACTIVE_PATH + "?utm_source=x#top"  # HTTP://...
    assert run(config, "try", same).stdout.count("link: ") == 23


def test_try_options_override_and_next_pages_are_followed(site, tmp_path):
    """Selectors on the command line; `--next` follows the listing to its second page."""
    site.serve("/list", listing(["Alpha", "Beta"], "/list?page=2"))
    site.serve("/list2", listing(["Gamma"]))
    site.serve("/list", listing(["Alpha", "Beta"], "/list2"))
    config = write_config(tmp_path, imls_pages(site))
    args = ["try", site.url("/list"), "--item", "li.r", "--title", "h3", "--link", "a[href]",
            "--description", "p", "--next", "a[rel=next]", "--json"]  # fmt: skip
    result = run(config, *args)
    assert result.exit_code == 0, result.stderr
    got = [(e["page"], e["title"], e["description"]) for e in json_lines(result)]
    assert got == [
        (1, "Alpha", "About Alpha."),
        (1, "Beta", "About Beta."),
        (2, "Gamma", "About Gamma."),
    ]
    assert json_lines(result)[0]["link"] == site.url("/x/Alpha")
    # --title overrides one selector of the configured page, keeping the others
    site.serve_file(ACTIVE_PATH, IMLS / "active.html")
    retitled = json_lines(run(config, "try", "--page", "active", "--title", "a", "--json"))
    assert len(retitled) == 23 and all(e["link"] for e in retitled)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--item", "li[", "URL"], "--item"),
        (["--page", "active", "--title", "h3::nope("], "--title"),
        (["URL"], "--item"),
        ([], "URL"),
        (["--page", "nosuch"], "nosuch"),
    ],
)
def test_try_bad_use_is_a_usage_error(site, tmp_path, args, says):
    """A bad selector, no selectors, no URL, an unknown page: exit 2, the option named."""
    config = write_config(tmp_path, imls_pages(site))
    args = [site.url("/elsewhere") if a == "URL" else a for a in args]
    result = run(config, "try", *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert says in result.stderr and "Traceback" not in result.stderr


def test_try_a_page_that_fails_exits_1(site, tmp_path):
    """A page answering 404 is reported with its status, exit 1, nothing recorded."""
    config = write_config(tmp_path, imls_pages(site))
    missing = site.url("/missing")
    result = run(config, "try", missing, "--item", "li")
    assert result.exit_code == 1
    assert result.stderr == f"Error: page 1: {missing}: HTTP 404\n"  # the URL once, no "0 entries"
    assert not (tmp_path / "data").exists()
    refused = closed_url()
    result = run(config, "try", refused, "--item", "li")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: page 1: {refused}: ")
    assert result.stderr.count(refused) == 1 and "entries" not in result.stderr


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ("<html><head><title>Access Denied</title></head><body>You don't have permission."
         "</body></html>", "text/html", 'blocked: "Access Denied"'),
        ("<html><head><title>Page not found | IMLS</title></head><body><h1>Page not found"
         "</h1></body></html>", "text/html", 'soft 404: "Page not found"'),
        ("Just text, no page.", "text/plain", "not HTML (text/plain)"),
    ],
    ids=["block-page", "soft-404", "not-html"],
)
def test_try_says_what_a_check_would_of_a_block_page_a_soft_404_or_not_html(
    site, tmp_path, body, content_type, says
):
    """A block page, a soft 404 or a non-HTML answer is named as check names it (exit 1),
    not reported as "No item matched": the selector is not what is wrong."""
    site.serve("/wall", lambda request: Response(body, content_type=content_type))
    config = write_config(tmp_path, imls_pages(site))
    result = run(config, "try", site.url("/wall"), "--item", "li")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert says in result.stderr and "No item matched" not in result.stderr
    assert result.stderr.count(site.url("/wall")) == 1
