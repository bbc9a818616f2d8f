"""Checks of URL values: pages and archives (http), feed base, Apprise targets, cluster servers."""

from __future__ import annotations

import re
import warnings
from urllib.parse import SplitResult, urlsplit, urlunsplit

from monitor.config.values import Invalid, show, text

_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?"
    r"|\[[0-9a-f:.]+\]"
)


# Query parameters that carry secrets (libpq's password=, Redis' ?password=, tokens).
_SECRET_PARAM = re.compile(r"((?:^|&)[^=&]*(?:pass|secret|token|key)[^=&]*=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` with the password of its user part, and secret-looking parameters, made ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a URL that cannot be parsed)"
    if password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    return urlunsplit(parts._replace(query=_SECRET_PARAM.sub(r"\1***", parts.query)))


def _split(url: str, problem: str) -> SplitResult:
    """`url` split into parts; Invalid(problem) when it has white space or cannot be split."""
    if any(char.isspace() or ord(char) < 0x20 for char in url):
        raise Invalid(problem)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        raise Invalid(problem) from None
    try:
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number 0-65535
    except ValueError:
        raise Invalid(
            f"has a port that is not a number from 0 to 65535, got {show(redact_url(url))}"
        ) from None
    return parts


def http_url(value: object) -> str:
    """An absolute http:// or https:// URL with a host."""
    url = text(value)
    problem = (
        f"must be an absolute http:// or https:// URL with a host, got {show(redact_url(url))}"
    )
    parts = _split(url, problem)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid(problem)
    return url


def page_url(value: object) -> str:
    """A watched page: http(s), a host, a port if any from 1, and no user or password (the
    URL is written into events, captures, feeds and the archive: a secret there would be
    published)."""
    url = http_url(value)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            "must not hold a user name or password: the URL is shown in events, feeds and "
            f"the archive, got {show(redact_url(url))}"
        )
    if parts.port == 0:
        raise Invalid(f"has port 0, which no server listens on, got {show(url)}")
    return url


def base_url(value: object) -> str:
    """The public address of the feed and web pages: http(s), no query, ends with "/"."""
    url = http_url(value)
    parts = urlsplit(url)
    if parts.query or parts.fragment or "#" in url or url.rstrip("?") != url:
        raise Invalid(f"must have no query or fragment (links are added to it), got {show(url)}")
    if parts.username is not None or parts.password is not None:
        raise Invalid(f"must not hold a user name or password, got {show(redact_url(url))}")
    return url if url.endswith("/") else url + "/"


def memento_url(value: object) -> str:
    """A URL template with {timestamp} and {url}, which str.format fills in."""
    template = text(value)
    missing = [field for field in ("{timestamp}", "{url}") if field not in template]
    if missing:
        raise Invalid(f"must contain {' and '.join(missing)}, got {show(template)}")
    try:
        example = template.format(timestamp="20200101000000", url="https://example.org/")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise Invalid(
            "may name no field but {timestamp} and {url} in braces (write a literal brace "
            f"as {{{{ or }}}}), got {show(template)}"
        ) from None
    problem = (
        "must be an absolute http:// or https:// URL with a host once {timestamp} and {url} "
        f"are filled in, got {show(redact_url(template))}"
    )
    parts = _split(example, problem)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid(problem)
    return template


def host_name(value: object) -> str:
    """A host name or IP address as sent in a Host header (no scheme, no port), lower-cased."""
    host = text(value).lower()
    if not _HOST.fullmatch(host) or len(host) > 253:
        raise Invalid(
            "must be a host name such as 'monitor.example.org' or an IP address, "
            f"without scheme or port, got {show(host)}"
        )
    return host


_DATABASE_SCHEMES = ("postgresql", "postgres")
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")


def database_url(value: object) -> str:
    """A PostgreSQL connection URL (libpq's form: the host may be left to a query parameter)."""
    url = text(value)
    problem = (
        "must be a postgresql:// URL such as 'postgresql://user@host/db', "
        f"got {show(redact_url(url))}"
    )
    parts = _split(url, problem)
    if parts.scheme.lower() not in _DATABASE_SCHEMES or not parts.netloc and not parts.path:
        raise Invalid(problem)
    return url


def broker_url(value: object) -> str:
    """A Celery broker URL: Redis (redis://, rediss://) or AMQP (amqp://, amqps://), with a host."""
    url = text(value)
    problem = (
        "must be a redis://, rediss://, amqp:// or amqps:// URL with a host, such as "
        f"'redis://queue.example.org:6379/0', got {show(redact_url(url))}"
    )
    parts = _split(url, problem)
    scheme = parts.scheme.lower()
    if scheme not in _BROKER_SCHEMES or not parts.hostname:
        raise Invalid(problem)
    if scheme.startswith("redis") and not re.fullmatch(r"/?(?:[0-9]{1,5})?", parts.path):
        raise Invalid(
            f"the path of a Redis URL is a database number such as /0, got {show(redact_url(url))}"
        )
    return url


def apprise_url(value: object) -> str:
    """A URL Apprise can send to; messages show only its scheme (tokens hide anywhere in it)."""
    url = text(value)
    scheme, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise Invalid(
            "must be an Apprise URL such as 'mailtos://user:pass@example.org' or "
            "'json://host/path' (see https://github.com/caronc/apprise/wiki)"
        )
    # Imported here: loading Apprise's plugins takes a second, paid only by configs that notify.
    import apprise

    with warnings.catch_warnings():
        # Apprise's plugins import modules deprecated in 3.11 (imghdr): not the user's problem
        warnings.simplefilter("ignore", DeprecationWarning)
        target = apprise.Apprise.instantiate(url)
        # NotificationManager carries no annotations; schemas() returns a list of str
        known = apprise.NotificationManager().schemas()  # type: ignore[no-untyped-call]
    if target is None:
        if scheme.lower() not in known:
            raise Invalid(
                f"Apprise knows no service '{scheme[:40]}://' "
                "(see https://github.com/caronc/apprise/wiki)"
            )
        raise Invalid(
            f"Apprise cannot use this '{scheme[:40]}://' URL: a part it needs is missing or wrong "
            "(see the service's page at https://github.com/caronc/apprise/wiki)"
        )
    return url
