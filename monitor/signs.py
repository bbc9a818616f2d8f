"""What a 2xx answer really is: the page, a block page, or a not-found page (a soft 404).

Pure: strings in, an `Answer` out; the caller fetches, parses and normalises whitespace.
SPEC.md ("Events", "Entry pages"): a block page is a `page-error` whose detail starts
`blocked:`, a soft 404 a `page-gone` whose detail starts `soft 404:`.

The signs follow EDGI's web-monitoring projects, which sort millions of captures of
US government pages:
- web-monitoring-task-sheets `analyst_sheets/analyze.py` `get_version_status`: the
  title is split on " | " and " - " and each part judged alone; a part that is a
  standard status line ("404 Not Found"), "DDD" / "error DDD", "(page|file) not
  found", "this page isn't available", "access denied" or "restricted access"
  gives that status; a redirect from a non-root path to the same host's root
  (`ROOT_PAGE_PATTERN = ^/((index|home)(\\.\\w+)?)?$`, hosts compared as SURTs, so
  "www." and the scheme do not count) is a 404, while a redirect to another
  host's root is not (their test: waterdata.usgs.gov/nwis -> www.usgs.gov/ is OK).
- web-monitoring-processing `web_monitoring/utils.py` `estimate_snapshot_quality`:
  blocking by Cloudflare (`cf-mitigated: challenge`, a title naming Cloudflare),
  AWS WAF (`x-amzn-waf-action: captcha|challenge`), Akamai, CloudFront, and a
  body naming an IP address or a blocklist. Those are header signs; the captured
  bodies behind them are the vendors' pages matched here by title and short text.
- web-monitoring-diff has no such rules (it compares, it does not judge).
Beyond EDGI: the vendor pages' own wording (Incapsula, Sucuri, AWS WAF, captcha
walls), and a few non-English not-found titles.

False positives matter more than misses: only the title's parts and the first heading
are read for not-found, whole parts only for block phrases, and the body text only
when the page is as short as an interstitial, and never where the phrase is an entry's
own words. A listing whose entry says "not found" or "verify you are human", a page
titled "Access to collections", an article about captchas stay pages. A captcha
widget (reCAPTCHA, hCaptcha, Turnstile...) says blocked only on a short page where
the selectors found no entry: a listing may carry one in a sign-up form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from msgspec import Struct

from monitor.canonical import canonical_query

AnswerKind = Literal["page", "blocked", "soft404"]

# An interstitial says little: a longer visible text is a real page whatever it mentions.
SHORT_TEXT = 1500
_MAX_TITLE = 1000  # hostile titles can be megabytes; the signs are in the first words
_MAX_TEXT = 8192
_MAX_QUOTE = 100


class Answer(Struct, frozen=True):
    """What a fetched answer means; detail starts "blocked:" or "soft 404:" when not a page."""

    kind: AnswerKind
    detail: str = ""


PAGE = Answer("page")

# The challenge widgets of captcha walls, as CSS (read by extraction on short pages that
# list no entry): the vendor's name, then the markers its embed code always carries.
CHALLENGE_WIDGETS: tuple[tuple[str, str], ...] = (
    ("reCAPTCHA", ".g-recaptcha, script[src*='/recaptcha/'], iframe[src*='/recaptcha/']"),
    ("hCaptcha", ".h-captcha, script[src*='hcaptcha.com'], iframe[src*='hcaptcha.com']"),
    ("Turnstile", ".cf-turnstile, script[src*='challenges.cloudflare.com/turnstile']"),
    ("Cloudflare challenge", "#challenge-form, script[src*='/cdn-cgi/challenge-platform/']"),
    ("AWS WAF", "script[src*='awswaf.com'], #captcha-container"),
    ("DataDome", "script[src*='captcha-delivery.com'], iframe[src*='captcha-delivery.com']"),
    ("PerimeterX", "#px-captcha"),
    ("captcha", "[data-sitekey], .frc-captcha"),
)

# EDGI splits titles on "|" and runs of "-"; en and em dashes, "::" and "»" are as common.
_TITLE_PARTS = re.compile(r"\s+(?:-+|–|—|\||::|»|·)\s+")


class _Pattern:
    """A case-insensitive pattern, compiled at its first use.

    Compiling this module's ~30 patterns costs ~3 ms, and a cycle of unchanged pages (a
    one-off check from cron, most often) judges no answer: it only pays for them then.
    """

    __slots__ = ("_source", "_compiled")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: re.Pattern[str] | None = None

    def _pattern(self) -> re.Pattern[str]:
        if self._compiled is None:  # two threads may both compile: the same pattern
            self._compiled = re.compile(self._source, re.IGNORECASE)
        return self._compiled

    def search(self, text: str) -> re.Match[str] | None:
        return self._pattern().search(text)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        return self._pattern().fullmatch(text)


def _rx(pattern: str) -> _Pattern:
    return _Pattern(pattern)


# (who, a whole title part or heading, or None) and (who, short text, or None), in order:
# vendor pages before the generic words that they also contain.
_BLOCK_PARTS: tuple[tuple[str, _Pattern], ...] = (
    ("Cloudflare challenge", _rx(r"just a moment(?:\.\.\.|…)?|checking your browser.*")),
    ("Cloudflare", _rx(r"attention required!?|sorry, you have been blocked")),
    ("Sucuri", _rx(r"sucuri website firewall")),
    ("Incapsula", _rx(r"request unsuccessful\.?(?: incapsula incident id: .*)?")),
    ("AWS WAF", _rx(r"request blocked\.?")),
    ("Imperva", _rx(r"pardon our interruption(?:\.\.\.|…)?")),
    (
        "captcha",
        _rx(
            r"captcha|human verification|bot verification|security check"
            r"|verify(?:ing)? (?:that )?you are (?:a )?human\.?|are you a (?:robot|human)\??"
        ),
    ),
    # EDGI's title words for 403: "access denied", "restricted access"
    ("", _rx(r"access denied\.?|restricted access|(?:error )?403(?: forbidden)?|forbidden")),
    ("", _rx(r"(?:error )?429(?: too many requests)?|too many requests|you have been blocked")),
)
_BLOCK_TEXT: tuple[tuple[str, _Pattern], ...] = (
    ("Cloudflare challenge", _rx(r"enable javascript and cookies to continue")),
    ("Cloudflare challenge", _rx(r"checking (?:if the site connection is secure|your browser)")),
    ("Cloudflare", _rx(r"cloudflare ray id|performance & security by cloudflare")),
    ("Incapsula", _rx(r"incapsula incident id|^request unsuccessful\b")),
    ("Sucuri", _rx(r"sucuri website firewall")),
    ("AWS WAF", _rx(r"\brequest blocked\b.*\b(?:cloudfront|aws)\b")),
    ("Akamai", _rx(r"^access denied\b.*\breference #\d+\.[0-9a-f.]+")),
    (
        "captcha",
        _rx(
            r"\b(?:solve|complete|enter|fill in|type)\b[^.]{0,40}\bcaptcha\b|i['’]m not a robot"
            r"|verify(?:ing)? (?:that )?you are (?:a )?human|press & hold"
        ),
    ),
    # EDGI (ERDDAP blocking): a body naming the caller's IP address or a blocklist
    ("", _rx(r"\byour ip address\b.*\b(?:blocked|bl[oa]ck ?listed)\b|\bbl[oa]cklist")),
)
# The vendor behind a generic block word, told by the text (Akamai's "Reference #...").
_AKAMAI_REFERENCE = _rx(r"\breference #\d+\.[0-9a-f.]+")

# "page you are looking for", "page you requested", "page you're trying to reach"...
_WHICH_PAGE = (
    r"(?: (?:that )?you(?: are| were|['’]re)? (?:looking for|requested|trying to (?:reach|find))"
    r"| requested)?"
)
_NOT_FOUND_PARTS: tuple[_Pattern, ...] = (
    # EDGI: a standard status line, "DDD", "error DDD" or "DDD error"
    _rx(r"(?:http )?(?:error:? )?(?:404|410)(?: error)?(?: ?[-–—:|]? (?:not found|gone))?\.?"),
    _rx(r"not found\.?|page missing|nothing (?:was )?found here\.?"),
)
_NOT_FOUND_WORDS: tuple[_Pattern, ...] = (
    # EDGI: "(page|file)( was)? not found", "this page isn't available"
    _rx(
        r"\b(?:page|file|file or directory|document|resource|url)"
        r"(?: you (?:are|were) looking for| you requested| requested)?"
        r"(?: was| is| has been| could be)? not found\b"
    ),
    _rx(r"\bthis page isn['’]t available\b"),
    # "page [you are looking for] could not be found / does not exist", and "we can't
    # find that page": the wordings of common CMS and framework defaults
    _rx(rf"\bpage{_WHICH_PAGE} (?:cannot|can['’]t|could not|couldn['’]t) be found\b"),
    _rx(rf"\bpage{_WHICH_PAGE} (?:does not|doesn['’]t|did not|didn['’]t|no longer) exists?\b"),
    _rx(r"\b(?:we|i) (?:cannot|can['’]t|can not|could not|couldn['’]t) find (?:that|the|this) "
        r"page\b"),  # fmt: skip
    # not from EDGI (English only there): the same words in common site languages
    _rx(r"\bseite (?:wurde )?nicht gefunden\b|\bp[aá]gina no encontrada\b"),
    _rx(r"\bpage (?:non trouv[ée]e|introuvable)\b|\bpagina non trovata\b"),
    _rx(r"\bp[aá]gina n[aã]o encontrada\b|\bpagina niet gevonden\b"),
)

# EDGI's ROOT_PAGE_PATTERN, plus IIS's default.aspx and an empty path (no "/" at all)
_HOME_PATH = _rx(r"/?(?:(?:index|home|default)(?:\.\w+)?)?")
_WWW = re.compile(r"^www\d*\.")


def read_answer(
    *,
    requested_url: str,
    final_url: str,
    status: int,
    title: str,
    heading: str,
    text: str,
    listing_urls: Sequence[str] = (),
    entry_texts: Sequence[str] = (),
    challenge: str = "",
) -> Answer:
    """What a 2xx answer is; any other status is left to the caller (Answer("page")).

    `entry_texts`: the text of each entry the page's selectors found (a block phrase in
    one of them is the listing's own words); `challenge`: the vendor of a captcha widget
    on the page (CHALLENGE_WIDGETS), "" for none.
    """
    if not 200 <= status < 300:
        return PAGE
    title, heading, text = title[:_MAX_TITLE], heading[:_MAX_TITLE], text[:_MAX_TEXT]
    # a heading is read in parts as a title is ("Error 404 - Not Found")
    parts = [p for p in (*_TITLE_PARTS.split(title.strip()), heading.strip(),
                         *_TITLE_PARTS.split(heading.strip())) if p]  # fmt: skip
    shown = title.strip() or heading.strip()
    blocked = _blocked(parts, text.strip(), shown, entry_texts, challenge)
    if blocked is not None:
        return blocked  # a block page hides what the page is: never gone
    moved = _redirected_away(requested_url, final_url, listing_urls)
    if moved is not None:
        return Answer("soft404", f"soft 404: {moved}")
    part = _not_found(parts)
    return PAGE if part is None else Answer("soft404", f"soft 404: {_quote(part)}")


def _not_found(parts: Sequence[str]) -> str | None:
    """The title part or heading that says not found, if one does."""
    # words first: "404 - File or directory not found." is quoted by its words, not "404"
    for part in parts:
        if any(pattern.search(part) for pattern in _NOT_FOUND_WORDS):
            return part
    for part in parts:
        if any(pattern.fullmatch(part) for pattern in _NOT_FOUND_PARTS):
            return part
    return None


def _blocked(
    parts: Sequence[str], text: str, shown: str, entry_texts: Sequence[str], challenge: str
) -> Answer | None:
    """A block page, told by a whole title part or heading, or by a short page's text or
    captcha widget (never by an entry's words, nor by a widget beside entries)."""
    for who, pattern in _BLOCK_PARTS:
        if any(pattern.fullmatch(part) for part in parts):
            if not who and _AKAMAI_REFERENCE.search(text):
                who = "Akamai"
            return _block(who, shown)
    if len(text) >= SHORT_TEXT:
        return None
    for who, pattern in _BLOCK_TEXT:
        match = pattern.search(text)
        if match is not None and not any(pattern.search(said) for said in entry_texts):
            return _block(who, shown or match.group(0))
    if challenge and not entry_texts:
        return _block(challenge, shown or "a captcha")
    return None


def _block(who: str, quoted: str) -> Answer:
    what = f"{who} ({_quote(quoted)})" if who else _quote(quoted)
    return Answer("blocked", f"blocked: {what}")


def _quote(text: str) -> str:
    """A title or phrase as a detail quotes it: one line, no control characters, bounded."""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if len(text) > _MAX_QUOTE:
        text = text[: _MAX_QUOTE - 1].rstrip() + "…"
    return f'"{text}"'


def _redirected_away(requested: str, final: str, listing_urls: Sequence[str]) -> str | None:
    """How a redirect shows the page gone: to its site's home, or to a listing; else None."""
    asked, got = _url_key(requested), _url_key(final)
    if asked is None or got is None or asked == got:
        return None
    (asked_site, asked_path, _), (got_site, got_path, got_query) = asked, got
    if got in {_url_key(url) for url in listing_urls}:
        return f"redirected to the listing {final}"
    if (
        asked_site == got_site
        and not _HOME_PATH.fullmatch(asked_path)
        and _HOME_PATH.fullmatch(got_path)
        and not got_query
    ):
        return f"redirected to {final}"
    return None


def _url_key(url: str) -> tuple[str, str, str] | None:
    """(site, path, query) as EDGI's SURT compares them: no scheme, "www.", port 80/443 or "/"."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    site = _WWW.sub("", host)
    if port is not None and port not in (80, 443):
        site = f"{site}:{port}"
    path = parts.path.rstrip("/") if parts.path not in ("", "/") else ""
    return site, path, canonical_query(parts.query)  # ?utm_source=... is the same page
