"""Hide the secrets of Apprise URLs, so that none reaches a log, `status` or an error."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote

HIDDEN = "***"

# Schemes whose host and path segments are tokens or secret ids (a Slack token triple, a
# Discord webhook id/token, a Telegram bot token, an ntfy topic anyone could subscribe to).
TOKEN_SCHEMES = frozenset(
    (
        "slack discord tgram telegram ntfy ntfys msteams workflow workflows pover pbul gotify "
        "gotifys join prowl pushed pushjet pjet pushy signal signals matrix matrixs mmost "
        "mmosts rocket rockets zulip gchat ifttt opsgenie pagerduty spush apprise apprises "
        "lametric line revolt guilded feishu lark dingtalk wecombot bark barks ryver twist "
        "flock kumulos office365 azure sns ses mailgun sendgrid sparkpost smtp2go resend "
        "brevo twilio vonage nexmo clicksend d7sms plivo simplepush pushover notica notifico "
        "webexteams wxteams pushplus serverchan qq wxpusher threema whatsapp reddit mastodon "
        "toot misskey bluesky twitter x tweet pushsafer psafer psafers splunk victorops ilert "
        "signl4 pagertree spike squadcast"
    ).split()
)
# Query keys whose value is a secret (Apprise's ?pass=, ?token=, json://'s +Authorization=).
_SECRET_KEY = re.compile(
    r"pass|pwd|token|secret|key|auth|sig|cred|session|cookie|bearer|webhook|hook", re.I
)
# A URL inside a sentence: its trailing punctuation belongs to the sentence.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s'\"<>]*[^\s'\"<>.,;:)]")
_HOSTNAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+\.?$|^localhost$|^\[[0-9A-Fa-f:.]+\]$")


def looks_secret(text: str) -> bool:
    """True for a token-like string: long, or letters and digits mixed past a few characters."""
    if len(text) >= 20:
        return True
    has_digit = any(c.isdigit() for c in text)
    has_alpha = any(c.isalpha() for c in text)
    return len(text) >= 8 and has_digit and has_alpha


def redact_url(url: str) -> str:
    """The URL with its password, tokens and secret query values replaced by ***; never raises."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme):
        return HIDDEN
    scheme = scheme.lower()
    tokens = scheme in TOKEN_SCHEMES
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    out = f"{scheme}://{_redact_netloc(netloc, tokens)}"
    if slash:
        out += "/" + "/".join(_redact_segment(s, tokens) for s in path.split("/"))
    if query:
        out += "?" + _redact_query(query)
    if fragment:
        # Slack's "#channel" is a name, not a secret, unless it looks like a token.
        out += "#" + (HIDDEN if looks_secret(fragment) else _safe(fragment))
    return out


def redact_text(text: str, url: str) -> str:
    """`text` with every secret of `url`, and every URL-looking substring, redacted."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def url_secrets(url: str) -> set[str]:
    """The substrings of `url` that redact_url() hides, to scrub them from any text."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return {url} if len(url) >= 4 else set()
    tokens = scheme.lower() in TOKEN_SCHEMES
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    found: set[str] = set()
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            found.add(password)
        if tokens or looks_secret(user):
            found.add(user)
    found.update(p for p in _hostport_secrets(hostport, tokens))
    found.update(s for s in path.split("/") if _segment_is_secret(s, tokens))
    for key, value in parse_qsl(query, keep_blank_values=True):
        if value and (_SECRET_KEY.search(key) or looks_secret(value)):
            found.add(value)
            found.add(quote(value, safe=""))
    if looks_secret(fragment):
        found.add(fragment)
    found |= {unquote(s) for s in found}  # a plugin may log the decoded form
    # A two-character secret would scrub ordinary words out of an error message.
    return {s for s in found if len(s) >= 3}


def _redact_netloc(netloc: str, tokens: bool) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    out = ""
    if at:
        user, colon, _password = userinfo.partition(":")
        out = HIDDEN if tokens or looks_secret(user) else _safe(user)
        out += (":" + HIDDEN if colon else "") + "@"
    secrets = _hostport_secrets(hostport, tokens)
    host, colon, port = _split_port(hostport)
    out += HIDDEN if host in secrets else _safe(host)
    if colon:
        out += ":" + (HIDDEN if port in secrets else _safe(port))
    return out


def _split_port(hostport: str) -> tuple[str, str, str]:
    if hostport.startswith("["):  # [IPv6]:port
        end = hostport.find("]")
        if end != -1:
            rest = hostport[end + 1 :]
            return hostport[: end + 1], ":" if rest.startswith(":") else "", rest[1:]
    return hostport.partition(":")


def _hostport_secrets(hostport: str, tokens: bool) -> set[str]:
    host, colon, port = _split_port(hostport)
    found: set[str] = set()
    # A token scheme's "host" is often a token ("slack://TokenA/...", "tgram://id:token/"),
    # unless it is a real host name (ntfy://ntfy.example.org/topic).
    if host and not _HOSTNAME.match(host) and (tokens or looks_secret(host)):
        found.add(host)
    if colon and port and not port.isdigit():
        found.add(port)  # "tgram://123456:ABC-token": a bot token read as host:port
    return found


def _segment_is_secret(segment: str, tokens: bool) -> bool:
    if not segment:
        return False
    if tokens:
        # Channel and user names (#general, @someone) say where, not how to get in.
        return not (segment[0] in "#@+" and not looks_secret(segment[1:]))
    return looks_secret(segment)


def _redact_segment(segment: str, tokens: bool) -> str:
    return HIDDEN if _segment_is_secret(segment, tokens) else _safe(segment)


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        hide = bool(value) and (bool(_SECRET_KEY.search(key)) or looks_secret(value))
        parts.append(_safe(key) + (eq + (HIDDEN if hide else _safe(value)) if eq else ""))
    return "&".join(parts)


def _safe(text: str) -> str:
    """Drop control characters, so a hostile URL cannot forge lines in a log."""
    return "".join(c for c in text if c.isprintable())
