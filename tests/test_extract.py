"""extract: body bytes -> entries, on the IMLS pages, odd charsets, odd links, hostile pages."""

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import monitor.extract.engine
import monitor.extract.text
from monitor.config import Selectors
from monitor.extract import decode_html, extract_entries, is_html, normalise_space
from monitor.models import Entry

FIXTURES = Path(__file__).parent / "fixtures"
IMLS = FIXTURES / "imls-2017"
SCENARIO = FIXTURES / "scenario-basic"
ACTIVE_URL = "https://www.imls.gov/issues/national-initiatives"
ARCHIVED_URL = "https://www.imls.gov/issues/national-initiatives/archives"
IMLS_SELECT = Selectors(
    item=".view-content .views-row",
    title=".views-field-title",
    link="a[href]",
    description=".views-field-body",
)
CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")


def imls(name: str, select: Selectors = IMLS_SELECT) -> list[Entry]:
    """The entries of one imls-2017 page, as the monitor would extract them."""
    url = ACTIVE_URL if name == "active" else ARCHIVED_URL
    body = (IMLS / f"{name}.html").read_bytes()
    return extract_entries(body, base_url=url, select=select, content_type="text/html")


def readme_table() -> dict[str, list[tuple[str, str]]]:
    """(title, absolute link) per page, in page order, from the imls-2017 README's entry table."""
    section = (IMLS / "README.md").read_text(encoding="utf-8").split("## The entries", 1)[1]
    active: list[tuple[int, str, str]] = []
    archived: list[tuple[int, str, str]] = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not (cells[0].isdigit() or cells[1].isdigit()):
            continue
        a_pos, r_pos, title, slug, _on, archived_link, _notes = cells
        slug = slug.strip("`")
        if a_pos:
            active.append((int(a_pos), title, f"{ACTIVE_URL}/{slug}"))
        if r_pos:
            under = "archives/" if archived_link == "archives/" else ""
            archived.append((int(r_pos), title, f"{ACTIVE_URL}/{under}{slug}"))
    return {
        "active": [(title, link) for _, title, link in sorted(active)],
        "archived": [(title, link) for _, title, link in sorted(archived)],
    }


def assert_clean(entry: Entry) -> None:
    """Text is normalised and control-free; a link is absolute http(s) or absent."""
    for text in (entry.title, entry.description):
        assert text == normalise_space(text)
        assert not CONTROL_CHARS.search(text)
    assert entry.link is None or re.match(r"https?://", entry.link)


# -- the imls-2017 pages -----------------------------------------------------------------------


@pytest.mark.parametrize("page,count", [("active", 23), ("archived", 16)])
def test_imls_pages_give_the_readme_titles_and_links(page: str, count: int) -> None:
    """Each imls-2017 page gives the README's entries: its titles and absolute links, in order."""
    expected = readme_table()[page]
    entries = imls(page)
    assert len(expected) == count
    assert [(e.title, e.link) for e in entries] == expected


def test_imls_title_entities_are_decoded() -> None:
    """`Let&rsquo;s Move! Museums &amp; Gardens` is read as the text a reader sees."""
    for page in ("active", "archived"):
        assert "Let’s Move! Museums & Gardens" in [e.title for e in imls(page)]
    descriptions = {e.title: e.description for e in imls("archived")}
    assert "Americans – individuals, businesses and organizations – doing" in (
        descriptions["Champions of Change"]
    )


def test_imls_descriptions_have_no_raw_or_doubled_spaces() -> None:
    """No description keeps a no-break space, a double space, or space at either end."""
    for page in ("active", "archived"):
        for entry in imls(page):
            assert entry.description
            assert "\xa0" not in entry.description
            assert "  " not in entry.description
            assert entry.description == entry.description.strip()
            assert_clean(entry)


@pytest.mark.parametrize(
    "page,title,expected",
    [
        ("active", "National STEM Video Game Challenge", "Game Challenge. The Challenge, now"),
        ("archived", "National STEM Video Game Challenge", "Game Challenge, promoting science"),
        ("active", "StoryCorps: National Medal Stories", "the 2009 winners, personal stories"),
        ("active", "Digging into Data Challenge", "humanities and social sciences."),
    ],
    ids=["stem-active", "stem-archived", "storycorps", "digging-trailing"],
)
def test_imls_no_break_spaces_become_one_space(page: str, title: str, expected: str) -> None:
    """The four paragraphs written with &nbsp; read with one plain space there (none trailing)."""
    description = {e.title: e.description for e in imls(page)}[title]
    assert expected in description
    if title.startswith("Digging"):
        assert description.endswith(expected)


def test_imls_image_rows_link_like_their_title() -> None:
    """A row whose first a[href] is its image gives the same link as its title's anchor."""
    by_title_anchor = Selectors(
        item=IMLS_SELECT.item, title=IMLS_SELECT.title, link=".views-field-title a[href]"
    )
    for page in ("active", "archived"):
        assert [e.link for e in imls(page)] == [e.link for e in imls(page, by_title_anchor)]


def test_imls_unclosed_paragraph_and_empty_paragraph_do_not_leak() -> None:
    """An unclosed <p> stays in its row, and the empty &nbsp; paragraph adds nothing."""
    active = {e.title: e.description for e in imls("active")}
    archived = {e.title: e.description for e in imls("archived")}
    # ConnectED's <p> is unclosed on the active page only: both read the same.
    assert active["ConnectED Library Challenge"] == archived["ConnectED Library Challenge"]
    assert archived["Connecting to Collections"].endswith("essential to the American story.")
    assert active["Open eBooks"].endswith("without checkouts or holds.")
    for title in ("IMLS Focus", "Learning Labs in Libraries and Museums", "Film Forward"):
        assert active[title] == archived[title]
    for title in ("Local Initiatives Support Corporation (LISC)", "Let’s Move! Museums & Gardens"):
        assert active[title] != archived[title]


# -- scenario-basic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step,active_count,archived_count",
    [(1, 4, 4), (2, 4, 5), (3, 5, 3)],
    ids=["step1", "step2", "step3"],
)
def test_scenario_basic_steps(step: int, active_count: int, archived_count: int) -> None:
    """Each step's two pages give the README's counts and the titles of expected.json."""
    expected = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
    after = expected["steps"][step - 1]["entries_after"]
    base = "http://127.0.0.1:8080/issues/national-initiatives"
    for page, count, url in (
        ("active", active_count, base),
        ("archived", archived_count, f"{base}/archives"),
    ):
        body = (SCENARIO / f"step{step}" / f"{page}.html").read_bytes()
        entries = extract_entries(body, base_url=url, select=IMLS_SELECT)
        assert len(entries) == count
        assert sorted(e.title for e in entries) == sorted(after[page])
        for entry in entries:
            assert entry.link is not None and entry.link.startswith(base + "/")
            assert_clean(entry)


def test_scenario_basic_changes_read_as_expected_json_says() -> None:
    """Step 2's changed description and moved link, and step 3's moved link, come out exactly."""
    expected = json.loads((SCENARIO / "expected.json").read_text(encoding="utf-8"))
    host = "http://127.0.0.1:8080"

    def entries(step: int, page: str) -> dict[str, Entry]:
        body = (SCENARIO / f"step{step}" / f"{page}.html").read_bytes()
        url = f"{host}/issues/national-initiatives" + ("/archives" if page == "archived" else "")
        return {e.title: e for e in extract_entries(body, base_url=url, select=IMLS_SELECT)}

    changed = next(e for e in expected["steps"][1]["events"] if e["kind"] == "changed")
    assert entries(1, "active")["Museums for All"].description == (
        changed["before"]["description"]
    )
    assert entries(2, "active")["Museums for All"].description == changed["after"]["description"]
    for step, page, title in ((2, "archived", "IMLS Focus"), (3, "active", "Film Forward")):
        event = next(e for e in expected["steps"][step - 1]["events"] if e["title"] == title)
        assert entries(step, page)[title].link == host + event["link"]


# -- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("  a \t b\n\n c  ", "a b c"),
        ("a\xa0b\xa0\xa0", "a b"),
        ("\u3000a\u2003b\u202f\u205fc\u2028d\u2029e\x85f", "a b c d e f"),
        ("a\u200bb", "ab"),
        ("\u200b", ""),
        ("", ""),
        (" \xa0\n ", ""),
    ],
    ids=["ascii", "nbsp", "unicode-spaces", "zero-width-gone", "zero-width-only", "empty", "blank"],
)
def test_normalise_space(text: str, expected: str) -> None:
    """Every run of Unicode white space is one space, trimmed; U+200B is invisible, so dropped.

    (Changed with SPEC's text rules: U+200B used to be kept as it is.)
    """
    assert normalise_space(text) == expected


def _text_rule(text: str) -> str:
    """SPEC's text rule as written, one step at a time, for any text."""
    text = monitor.extract.text._INVISIBLE.sub("", text)
    return " ".join(unicodedata.normalize("NFC", text).split())


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F)) | st.text())
def test_ascii_text_is_normalised_by_the_same_rule(text: str) -> None:
    """ASCII text takes a faster path (bytes.translate): every control character, the
    separators U+001C..U+001F that str.split() would take for white space among them, is
    dropped exactly as the rule drops it, and any other text follows the rule itself."""
    assert normalise_space(text) == _text_rule(text)
    assert normalise_space("a\x1cb\x00c\x7fd\te\x0bf") == "abcd e f"


def one(markup: str, select: Selectors | None = None, base_url: str = "https://e.org/p") -> Entry:
    """The single entry of a small page whose items are `.row`."""
    select = select or Selectors(item=".row", title=".t", link="a", description=".d")
    entries = extract_entries(markup.encode("utf-8"), base_url=base_url, select=select)
    assert len(entries) == 1
    return entries[0]


@pytest.mark.parametrize(
    "body,expected",
    [
        ("<p>a</p><p>b</p>", "a b"),
        ("a<br>b", "a b"),
        ("<ul><li>x</li><li>y</li></ul>", "x y"),
        ("<table><tr><td>1</td><td>2</td></tr></table>", "1 2"),
        ("<b>Fo</b>o <i>b</i>ar", "Foo bar"),
        ("a<script>var s = '<p>x</p>';</script>b", "ab"),
        ("a<style>p { color: red }</style><template><p>t</p></template>b", "ab"),
        ("a<!-- comment -->b", "ab"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
        ("caf&eacute; &amp; &#x2019;&#8217;", "café & ’’"),
    ],
    ids=[
        "paragraphs",
        "br",
        "list",
        "cells",
        "inline",
        "script",
        "style-template",
        "comment",
        "escaped-markup",
        "entities",
    ],
)
def test_text_separates_blocks_and_hides_code(body: str, expected: str) -> None:
    """Blocks and <br> separate words, inline tags do not; script/style/template text is hidden."""
    assert one(f"<div class=row><div class=d>{body}</div></div>").description == expected


def test_script_inside_a_title_is_not_part_of_it() -> None:
    """A <script> in a title contributes no text; escaped markup is kept as text."""
    entry = one(
        "<div class=row><h2 class=t><script>document.write('x')</script>Real"
        " &lt;b&gt;title&lt;/b&gt;</h2></div>"
    )
    assert entry.title == "Real <b>title</b>"


def test_description_without_selector_is_item_text_less_title() -> None:
    """Without a description selector, the title element's text (only) is left out."""
    select = Selectors(item=".row", title="h2")
    entry = one(
        "<div class=row><h2>Museums</h2><p>Museums for All: Museums</p><p>open.</p></div>", select
    )
    assert entry == Entry(title="Museums", link=None, description="Museums for All: Museums open.")
    no_title = one("<div class=row><h2>Museums</h2><p>for All</p></div>", Selectors(item=".row"))
    assert no_title == Entry(title="", link=None, description="Museums for All")


def test_selectors_that_match_nothing_give_empty_fields() -> None:
    """A title/description selector with no match gives "", a link selector gives None."""
    assert one("<div class=row><h2 class=t>T</h2>text</div>") == Entry(
        title="T", link=None, description=""
    )
    assert extract_entries(b"<p>no rows</p>", base_url="https://e.org/", select=IMLS_SELECT) == []


def test_invalid_selector_names_the_key() -> None:
    """A broken CSS selector is a configuration error that names the selector."""
    with pytest.raises(ValueError, match=r"select\.title.*'h2\[\['"):
        extract_entries(b"<p>", base_url="https://e.org/", select=Selectors(item="p", title="h2[["))


# -- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markup,base_url,expected",
    [
        ('<a href="x/y?q=1&amp;r=2#frag">', "https://e.org/dir/page", "https://e.org/dir/x/y?q=1&r=2#frag"),
        ('<a href="/root">', "https://e.org/dir/page", "https://e.org/root"),
        ('<a href="//cdn.example.net/x">', "http://e.org/", "http://cdn.example.net/x"),
        ('<a href="#part">', "https://e.org/p?a=1", None),  # the page itself: no link
        ('<a href="other#part">', "https://e.org/p?a=1", "https://e.org/other#part"),
        ('<a href=" \n /spaced\t ">', "https://e.org/", "https://e.org/spaced"),
        ('<a href="https://other.org/abs">', "https://e.org/", "https://other.org/abs"),
        ('<a href="javascript:alert(1)">', "https://e.org/", None),
        ('<a href="  JavaScript:alert(1)">', "https://e.org/", None),
        ('<a href="java\nscript:alert(1)">', "https://e.org/", None),
        ('<a href="data:text/html,<b>x</b>">', "https://e.org/", None),
        ('<a href="mailto:someone@e.org">', "https://e.org/", None),
        ('<a href="ftp://e.org/file">', "https://e.org/", None),
        ('<a href="">', "https://e.org/", None),
        ('<a href="http://[::1">', "https://e.org/", None),
        ("<a>no href</a>", "https://e.org/", None),
        ('<span><a name="x">no</a> <a href="/inner">yes</a></span>', "https://e.org/", "https://e.org/inner"),
    ],
    ids=[
        "relative",
        "root-relative",
        "protocol-relative",
        "in-page-anchor-is-no-link",
        "fragment-kept",
        "whitespace-stripped",
        "absolute",
        "javascript-dropped",
        "javascript-upper-dropped",
        "javascript-split-by-newline-dropped",
        "data-dropped",
        "mailto-dropped",
        "ftp-dropped",
        "empty-href",
        "bad-ipv6",
        "anchor-without-href",
        "first-a-href-inside",
    ],
)  # fmt: skip
def test_links(markup: str, base_url: str, expected: str | None) -> None:
    """The link is the href made absolute against the page URL; only http(s) links are kept."""
    # The title keeps the item an entry when its link is dropped (not a skeleton).
    select = Selectors(item=".row", title="h2", link="a, span")
    assert one(f"<div class=row><h2>T</h2>{markup}</div>", select, base_url).link == expected


@pytest.mark.parametrize(
    "base,expected",
    [
        ("https://mirror.example.net/root/", "https://mirror.example.net/root/x"),
        ("/sub/", "https://e.org/sub/x"),
        ("javascript:alert(1)//", "https://e.org/dir/x"),
    ],
    ids=["absolute-base", "relative-base", "javascript-base-ignored"],
)
def test_base_href_is_honoured(base: str, expected: str) -> None:
    """A <base href> in the page changes what relative links resolve against (http(s) only)."""
    markup = f'<head><base href="{base}"></head><div class=row><a href="x">x</a></div>'
    assert one(markup, Selectors(item=".row", link="a"), "https://e.org/dir/page").link == expected


def test_scope_selector_is_a_configuration_error() -> None:
    """`:scope` is refused, naming the key: Lexbor's selectors have no :scope.

    (Changed with the Lexbor engine: soupsieve read :scope relative to each item. Selectors
    inside an item are already relative to it, so `:scope > h2` is written `h2` or `* > h2`.)
    """
    with pytest.raises(ValueError, match=r"select\.title.*':scope > h2'"):
        one("<div class=row><h2>T</h2></div>", Selectors(item=".row", title=":scope > h2"))


def test_missing_link_selector_gives_no_link() -> None:
    """Without a link selector an entry has no link, even when the item holds an anchor."""
    assert one('<div class=row><a href="/x">x</a></div>', Selectors(item=".row")).link is None


# -- charsets and content types ----------------------------------------------------------------

CAFE = "café “quoted” ’"


@pytest.mark.parametrize(
    "body,content_type,expected",
    [
        (f"<p>{CAFE}</p>".encode(), "text/html; charset=utf-8", CAFE),
        ("<p>café</p>".encode("latin-1"), "text/html; charset=ISO-8859-1", "café"),
        (b"<p>\x93quoted\x94</p>", "text/html; charset=iso-8859-1", "“quoted”"),
        (
            f'<meta charset="windows-1252"><p>{CAFE}</p>'.encode("cp1252"),
            "text/html",
            CAFE,
        ),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            f"<p>{CAFE}".encode("cp1252"),
            None,
            CAFE,
        ),
        (f"\ufeff<p>{CAFE}</p>".encode("utf-16-le"), "text/html; charset=iso-8859-1", CAFE),
        (f"\ufeff<p>{CAFE}</p>".encode("utf-16-be"), None, CAFE),
        (f"\ufeff<p>{CAFE}</p>".encode(), "text/html; charset=windows-1252", CAFE),
        ("<p>café</p>".encode("latin-1"), "text/html; charset=utf-8", "caf\ufffd"),
        (f"<p>{CAFE}</p>".encode(), "text/html; charset=x-foo", CAFE),
        ("<p>café</p>".encode("cp1252"), "text/html; charset=x-foo", "café"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">'
            "<p>日本語のページ</p>".encode("shift_jis"),
            "text/html",
            "日本語のページ",
        ),
        ('<meta charset="utf-16"><p>café</p>'.encode(), None, "café"),
        (b'<meta charset="utf-7"><p>+ADw-b+AD4-</p>', None, "+ADw-b+AD4-"),
        ("<p>café</p>".encode(), 'text/html; charset="UTF-8"', "café"),
        (b"<p>caf\xe9 \x81</p>", None, "café \ufffd"),
    ],
    ids=[
        "utf8-header",
        "latin1-header",
        "latin1-header-is-windows-1252",
        "windows-1252-meta-only",
        "windows-1252-http-equiv",
        "utf16le-bom-beats-header",
        "utf16be-bom",
        "utf8-bom-beats-header",
        "header-lies-utf8",
        "unknown-label-utf8-body",
        "unknown-label-latin1-body",
        "shift-jis-meta",
        "meta-utf16-in-ascii-is-utf8",
        "utf7-not-honoured",
        "quoted-charset",
        "undecodable-byte",
    ],
)
def test_decode_html(body: bytes, content_type: str | None, expected: str) -> None:
    """The body decodes by BOM, then header, then <meta>, then UTF-8, then windows-1252."""
    text = decode_html(body, content_type)
    assert expected in text
    entries = extract_entries(
        body, base_url="https://e.org/", select=Selectors(item="p"), content_type=content_type
    )
    assert [e.description for e in entries] == [expected]


@pytest.mark.parametrize(
    "content_type,body,expected",
    [
        ("text/html; charset=utf-8", b"<p>x</p>", True),
        ("TEXT/HTML", b"", True),
        ("application/xhtml+xml", b"<html/>", True),
        (None, b"<!DOCTYPE html><html>", True),
        ("text/plain", b"\n  <html><body>", True),
        ("application/octet-stream", b"<!-- generated --><div>", True),
        (None, b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">', True),
        ("text/html; charset=utf-16", "<p>x</p>".encode("utf-16-le"), True),
        ("text/html", "\ufeff<p>x</p>".encode("utf-16-le"), True),
        ("text/plain", b"just some words", False),
        ("application/pdf", b"<html>", False),
        ("text/html", b"%PDF-1.7\n%\xe2\xe3", False),
        ("application/json", b'{"html": "<p>"}', False),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00", False),
        ("text/html", b"\x1f\x8b\x08\x00gzip", False),
        (None, bytes(range(256)) * 4, False),
        ("application/rss+xml", b"<?xml version='1.0'?><rss>", False),
    ],
    ids=[
        "html",
        "html-upper-empty",
        "xhtml",
        "missing-sniffed",
        "plain-sniffed",
        "octet-stream-comment",
        "xml-prolog-xhtml",
        "utf16-declared",
        "utf16-bom",
        "plain-text",
        "pdf-type",
        "pdf-body-labelled-html",
        "json",
        "png",
        "gzip-still-encoded",
        "binary-no-type",
        "rss",
    ],
)
def test_is_html(content_type: str | None, body: bytes, expected: bool) -> None:
    """HTML is declared HTML or a generic type that sniffs as HTML, and never a binary body."""
    assert is_html(content_type, body) is expected


# -- hostile pages -----------------------------------------------------------------------------


def test_hundred_thousand_nested_divs() -> None:
    """100 000 nested <div>s neither raise nor hide the item at the bottom."""
    depth = 100_000
    body = b"<div>" * depth + b"<p class=row><a href=/deep>deep</a></p>" + b"</div>" * depth
    select = Selectors(item=".row", link="a")
    entries = extract_entries(body, base_url="https://e.org/", select=select)
    assert entries == [Entry(title="", link="https://e.org/deep", description="deep")]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00" * 1000,
        b"\xff\xfe\x00\x00garbage",
        bytes(range(256)) * 40,
        b"<div class=row>" * 5000,
        b"<<<>>><div class=row <a href='/x' </a",
        b"<?xml version='1.0'?><rss><item class=row>x</item></rss>",
        b"http://example.org/only-a-url",
        b"page.html",
        b"<div class=row><![CDATA[x]]><!DOCTYPE x><?pi?></div>",
    ],
    ids=[
        "empty",
        "nuls",
        "utf32-bom",
        "binary",
        "unclosed-5000",
        "broken-tags",
        "xml",
        "looks-like-url",
        "looks-like-filename",
        "declarations",
    ],
)
def test_odd_bodies_never_raise(body: bytes) -> None:
    """Empty, binary, broken or non-HTML bodies give a (possibly empty) list of clean entries."""
    for entry in extract_entries(body, base_url="https://e.org/", select=IMLS_SELECT):
        assert_clean(entry)
    for entry in extract_entries(body, base_url="https://e.org/", select=Selectors(item=".row")):
        assert_clean(entry)


def test_nul_and_control_characters_are_removed() -> None:
    """NUL bytes and other control characters never reach a title or description."""
    entry = one(
        "<div class=row><h2 class=t>Open\x00 e\x01Books\x7f</h2>"
        "<p class=d>line\x0bone\x0c\r\ntwo\x1f &#1;three&#x81; &#x9f;</p></div>"
    )
    assert entry.title == "Open eBooks"
    # &#x9f; is not a control character in HTML: it stands for windows-1252's 0x9F.
    assert entry.description == "line one two three Ÿ"


def test_unclosed_rows_each_keep_their_own_fields() -> None:
    """Rows never closed nest in each other; each still gets only its own title, link and text."""
    rows = "".join(
        f"<div class=row><h2><a href=/e{i}>Title {i}</a></h2><p>Text {i}.</p>" for i in range(300)
    )
    body = f"<div class=list>{rows}</div>".encode()
    for select in (Selectors(item=".row", title="h2", link="a"), Selectors(".row", "h2", "a", "p")):
        entries = extract_entries(body, base_url="https://e.org/", select=select)
        assert entries == [
            Entry(title=f"Title {i}", link=f"https://e.org/e{i}", description=f"Text {i}.")
            for i in range(300)
        ]


def test_rows_deep_in_the_page_keep_their_own_fields() -> None:
    """Rows side by side under 5 000 nested <div>s each get their own title, link and text."""
    rows = "".join(
        f"<div class=row><h2><a href=/e{i}>Title {i}</a></h2><p>Text {i}.</p></div>"
        for i in range(300)
    )
    body = b"<div>" * 5000 + rows.encode() + b"</div>" * 5000
    for select in (Selectors(item=".row", title="h2", link="a"), Selectors(".row", "h2", "a", "p")):
        entries = extract_entries(body, base_url="https://e.org/", select=select)
        assert entries == [
            Entry(title=f"Title {i}", link=f"https://e.org/e{i}", description=f"Text {i}.")
            for i in range(300)
        ]


def test_rows_some_nested_some_not_keep_their_own_fields() -> None:
    """A row left open around the next one does not take that row's title and link as its own."""
    expected = [
        Entry(title=f"Title {i}", link=f"https://e.org/e{i}", description=f"Text {i}.")
        for i in range(6)
    ]
    expected[1] = Entry(title="", link=None, description="Text 1.")
    rows = [
        f"<div class=row><h2><a href=/e{i}>Title {i}</a></h2><p>Text {i}.</p>" for i in range(6)
    ]
    rows[1] = "<div class=row><p>Text 1.</p>"  # no title, no link; closed after row 2
    markup = rows[0] + "</div>" + rows[1] + rows[2] + "</div></div>" + "</div>".join(rows[3:])
    entries = extract_entries(
        f"<nav><a href=/home>Home</a></nav>{markup}</div>".encode(),
        base_url="https://e.org/",
        select=Selectors(".row", "h2", "a", "p"),
    )
    assert entries == expected


def test_five_megabyte_text_node_is_kept_whole() -> None:
    """A 5 MB text node is extracted whole, normalised, not truncated."""
    words = ("word\xa0 \n" * 600_000).encode()
    body = b"<div class=row><h2>t</h2><p>" + words + b"</p></div>"
    [entry] = extract_entries(body, base_url="https://e.org/", select=Selectors(".row", "h2"))
    assert entry.description == " ".join(["word"] * 600_000)


@pytest.mark.slow
def test_hundred_thousand_entries() -> None:
    """A page of 100 000 rows gives 100 000 entries, in order."""
    body = b"<ul>" + b"".join(b"<li><a href=/e%d>E%d</a></li>" % (i, i) for i in range(100_000))
    select = Selectors(item="li", link="a")
    entries = extract_entries(body, base_url="https://e.org/", select=select)
    assert len(entries) == 100_000
    assert entries[0] == Entry(title="", link="https://e.org/e0", description="E0")
    assert entries[-1] == Entry(title="", link="https://e.org/e99999", description="E99999")


# -- properties (hypothesis) -------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)
WORDS = st.lists(
    st.text(st.characters(categories=("L", "M", "N", "P", "S")), min_size=1, max_size=6),
    min_size=1,
    max_size=6,
)
SLUGS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True)
SPACE_RUNS = st.one_of(
    st.text(alphabet=" \t\n\r\x0c\xa0\u2003\u3000", min_size=1, max_size=3),
    st.sampled_from(["&nbsp;", "&#160;", "&#xA0;", " &nbsp;\n", "&#x2003;", "<br>", "<br/> "]),
)


@dataclass(frozen=True)
class Row:
    title: list[str]
    slug: str
    description: list[str]

    @property
    def entry(self) -> Entry:
        """The entry as extracted: its words joined, in Unicode NFC (SPEC's text rules)."""
        return Entry(
            title=unicodedata.normalize("NFC", " ".join(self.title)),
            link=f"https://e.org/items/{self.slug}",
            description=unicodedata.normalize("NFC", " ".join(self.description)),
        )


ROWS = st.builds(Row, WORDS, SLUGS, WORDS)


def row_html(row: Row, title: str | None = None, description: str | None = None) -> str:
    """One item of the generated page, plainly spelt unless spellings are given."""
    if title is None:
        title = " ".join(map(html.escape, row.title))
    if description is None:
        description = " ".join(map(html.escape, row.description))
    return (
        f'<div class="views-row">\n<div class="views-field-title"><a href="/items/{row.slug}">'
        f'{title}</a></div>\n<div class="views-field-body"><p>{description}</p></div></div>'
    )


def page_html(rows: list[str]) -> bytes:
    """A generated page in the imls-2017 layout."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head><body>'
        '<div class="view-content">' + "\n".join(rows) + "</div></body></html>"
    ).encode()


@st.composite
def spelt(draw: st.DrawFn, words: list[str], paragraphs: bool) -> str:
    """The words as HTML spelt differently: other white space, nbsp, entities, paragraph breaks."""
    gaps = SPACE_RUNS | st.just("</p>\n<p>") if paragraphs else SPACE_RUNS
    parts = [draw(st.just("") | SPACE_RUNS)]
    for index, word in enumerate(words):
        if index:
            parts.append(draw(gaps))
        for char in word:
            forms = [html.escape(char), f"&#{ord(char)};", f"&#x{ord(char):X};"]
            parts.append(draw(st.sampled_from(forms)))
    parts.append(draw(st.just("") | SPACE_RUNS))
    return "".join(parts)


def extract_generated(body: bytes, select: Selectors = IMLS_SELECT) -> list[Entry]:
    return extract_entries(body, base_url="https://e.org/list", select=select)


@PROPERTY_SETTINGS
@given(st.binary(max_size=3000))
def test_property_never_raises_on_any_bytes(body: bytes) -> None:
    """Any bytes at all give a list of clean entries, never an exception."""
    for select in (IMLS_SELECT, Selectors(item="*", link="*")):
        for entry in extract_entries(body, base_url="https://e.org/", select=select):
            assert_clean(entry)


FRAGMENTS = st.sampled_from(
    [
        '<div class="view-content">',
        '<div class="views-row">',
        '<div class="views-field-title">',
        '<div class="views-field-body">',
        "</div>",
        "<p>",
        "</p>",
        '<a href="/x">',
        '<a href="javascript:alert(1)">',
        "<a href=>",
        "</a>",
        '<base href="/b/">',
        "<script>",
        "</script>",
        "<style>",
        "<template>",
        "<!--",
        "-->",
        "<![CDATA[",
        "<?xml version='1.0'?>",
        "<!DOCTYPE html>",
        "&nbsp;",
        "&#0;",
        "&#x110000;",
        "&amp",
        "&",
        "<",
        ">",
        "\x00",
        "\xa0",
        "\u200b",
        "\ufeff",
        "<br>",
        "<table><tr><td>",
        "<svg><foreignObject>",
        "<math>",
    ]
)


@PROPERTY_SETTINGS
@given(
    st.lists(FRAGMENTS | st.text(max_size=8), max_size=60),
    st.sampled_from(["utf-8", "utf-16", "cp1252", "shift_jis"]),
    st.sampled_from([None, "text/html", "text/html; charset=utf-8", "text/html; charset=x-foo"]),
)
def test_property_never_raises_on_generated_html(
    parts: list[str], encoding: str, content_type: str | None
) -> None:
    """Markup assembled from item fragments and junk, in any encoding, never raises."""
    body = "".join(parts).encode(encoding, "replace")
    for entry in extract_entries(
        body, base_url="https://e.org/", select=IMLS_SELECT, content_type=content_type
    ):
        assert_clean(entry)


@PROPERTY_SETTINGS
@given(st.lists(ROWS, min_size=1, max_size=5), st.data())
def test_property_spelling_never_changes_an_entry(rows: list[Row], data: st.DataObject) -> None:
    """White space, no-break spaces, entities and paragraph breaks in a row change nothing."""
    plain = extract_generated(page_html([row_html(row) for row in rows]))
    assert plain == [row.entry for row in rows]
    respelt = [
        row_html(
            row,
            title=data.draw(spelt(row.title, paragraphs=False)),
            description=data.draw(spelt(row.description, paragraphs=True)),
        )
        for row in rows
    ]
    assert extract_generated(page_html(respelt)) == plain


@PROPERTY_SETTINGS
@given(st.lists(ROWS, min_size=1, max_size=6), st.data())
def test_property_reordering_rows_only_reorders_entries(
    rows: list[Row], data: st.DataObject
) -> None:
    """Shuffling a page's rows shuffles its entries the same way and changes nothing else."""
    order = data.draw(st.permutations(range(len(rows))))
    entries = extract_generated(page_html([row_html(row) for row in rows]))
    shuffled = extract_generated(page_html([row_html(rows[i]) for i in order]))
    assert shuffled == [entries[i] for i in order]


@PROPERTY_SETTINGS
@given(st.lists(ROWS, min_size=1, max_size=4))
def test_property_default_description_is_item_text_less_title(rows: list[Row]) -> None:
    """Without a description selector, each row's description is its text less its title."""
    select = Selectors(item=IMLS_SELECT.item, title=IMLS_SELECT.title, link=IMLS_SELECT.link)
    assert extract_generated(page_html([row_html(row) for row in rows]), select) == [
        row.entry for row in rows
    ]


SELECTIONS = [
    IMLS_SELECT,
    Selectors(
        item=".views-row",
        title=".views-row > div:first-child",
        link="div a[href]",
        description=":not(.views-field-title) > p, p + p",
    ),
    Selectors(item="p", title="a:first-of-type", link="a", description="a ~ br, td"),
    Selectors(item="a, td", title="*", link="a[href]"),
]


ROW_PARTS = {
    "row": '<div class="views-row">',
    "end": "</div>",
    "title": '<div class="views-field-title">Title {i}</div>',
    "link": '<a href="/e{i}">e{i}</a>',
    "body": '<div class="views-field-body"><p>Body {i}</p></div>',
    "text": "text {i}",
}


def rows_markup(parts: list[str]) -> bytes:
    """Rows opened and closed in any order (so some nest), each field numbered by its place."""
    return "".join(ROW_PARTS[part].format(i=i) for i, part in enumerate(parts)).encode()


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.lists(st.sampled_from(sorted(ROW_PARTS)), min_size=1, max_size=40).map(rows_markup),
        st.lists(FRAGMENTS | st.text(max_size=8), min_size=1, max_size=60).map(
            lambda parts: "".join(parts).encode()
        ),
    ),
    st.sampled_from(SELECTIONS),
)
def test_property_selection_inside_rows_matches_selection_over_the_page(
    body: bytes, select: Selectors
) -> None:
    """Selecting inside each row gives the entries one selection over the whole page gives."""
    entries = extract_entries(body, base_url="https://e.org/", select=select)
    with pytest.MonkeyPatch.context() as patch:
        # As if rows were always nested: every page takes the whole-page selection.
        patch.setattr(monitor.extract.engine, "items_nest", lambda items, owners: True)
        assert extract_entries(body, base_url="https://e.org/", select=select) == entries
