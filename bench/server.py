"""Synthetic IMLS-style listing pages on 127.0.0.1, for bench.py; runs as its own process.

Page i lives at /list/i. Each page is rendered from (i, version): ~25 entries in the
IMLS Drupal layout (`.view-content .views-row` with title, link and body) plus page
chrome padded to ~40 KB. Answers carry a strong ETag and a Last-Modified and honour
If-None-Match / If-Modified-Since with 304. Control endpoints (POST) change pages
between cycles, so the server's CPU never counts as the measured process's:

    POST /_control/change?k=K&seed=S   K pages, picked by seed, move to their next version
    POST /_control/reset               every page back to version 0
    GET  /_control/stats               requests served so far (by status), as JSON

Usage: python bench/server.py --pages N --entries E --port-file PATH [--gzip]
"""

# ruff: noqa: E501 -- the page templates copy the real page's long lines of markup

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import random
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

BASE_TIME = 1_700_000_000  # Last-Modified of version 0; each version is an hour later
PATH_PREFIX = "/issues/national-initiatives"

_WORDS = (
    "library museum national initiative partnership community learning digital access "
    "collection preservation archive public program grant award youth literacy heritage "
    "research workforce training science technology engineering health information civic "
    "rural tribal family early childhood reading broadband data service innovation network "
    "humanities arts education cultural history outreach engagement resource knowledge "
    "leadership collaboration federal agency institute support project exhibit story"
).split()


@dataclass(frozen=True)
class Mutation:
    """What one version step does to a page: entries edited, added and removed."""

    edits: int = 1
    adds: int = 1
    removes: int = 1


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:]


def _entry(page: int, slug: str, seed: int) -> dict[str, str]:
    rng = random.Random(f"{page}/{slug}/{seed}")
    title = _sentence(rng, rng.randint(3, 8)).title()
    body = ". ".join(_sentence(rng, rng.randint(10, 18)) for _ in range(rng.randint(2, 3))) + "."
    return {"slug": slug, "title": title, "body": body, "image": str(rng.random() < 0.3)}


def page_entries(page: int, version: int, entries: int, mutation: Mutation) -> list[dict]:
    """The entries of page `page` at `version`: version 0, then each step's edits applied."""
    rows = [_entry(page, f"initiative-{page}-{j}", 0) for j in range(entries)]
    for step in range(1, version + 1):
        rng = random.Random(f"step/{page}/{step}")
        for _ in range(min(mutation.removes, max(0, len(rows) - 1))):
            rows.pop(rng.randrange(len(rows)))
        for n in range(mutation.edits):
            row = rows[rng.randrange(len(rows))]
            row["body"] += f" Updated in revision {step}.{n}: {_sentence(rng, 8)}."
        for n in range(mutation.adds):
            rows.insert(rng.randrange(len(rows) + 1), _entry(page, f"new-{page}-{step}-{n}", 0))
    return rows


_HEAD = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML+RDFa 1.0//EN"
  "http://www.w3.org/MarkUp/DTD/xhtml-rdfa-1.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" version="XHTML+RDFa 1.0" dir="ltr">
<head profile="http://www.w3.org/1999/xhtml/vocab">
  <meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<link rel="shortcut icon" href="/sites/all/themes/imls/favicon.ico" type="image/vnd.microsoft.icon" />
<meta name="viewport" content="width=device-width, initial-scale=1.0" />
<meta name="Generator" content="Drupal 7 (http://drupal.org)" />
<link rel="canonical" href="{path}" />
  <title>National Initiatives &amp; Partnerships ({page}) | Institute of Museum and Library Services</title>
<link type="text/css" rel="stylesheet" href="/sites/default/files/css/css_xE-rWrJf-fncB6ztZfd2huxqgxu4WO.css" media="all" />
<script type="text/javascript" src="/sites/default/files/js/js_xvYJgU6LChHqbcSh4y1AvdXfD5QBIwT3GVGVUeuksbM.js"></script>
<script type="text/javascript">
<!--//--><![CDATA[//><!--
jQuery.extend(Drupal.settings, {{"basePath":"\\/","pathPrefix":"","ajaxPageState":{{"theme":"imls","theme_token":"n6ZJHqu4k0XcN9b7L2Ua"}},"googleanalytics":{{"trackOutbound":1,"trackMailto":1}}}});
//--><!]]>
</script>
</head>
<body class="html not-front not-logged-in one-sidebar sidebar-first page-issues page-issues-national-initiatives" >
  <div id="skip-link">
    <a href="#main-content" class="element-invisible element-focusable">Skip to main content</a>
  </div>
  <div id="page-wrapper"><div id="page">
  <div id="header" class="without-secondary-menu"><div class="section clearfix">
    <a href="/" title="Home" rel="home" id="logo"><img src="/sites/all/themes/imls/logo.png" alt="Institute of Museum and Library Services" width=262 height=66 /></a>
    <div class="region region-header">
"""

_VIEW_START = """  </div></div></div>
  <div id="main-wrapper" class="clearfix"><div id="main" class="clearfix">
  <div id="content" class="column"><div class="section">
    <a id="main-content"></a>
    <h1 class="title" id="page-title">National Initiatives &amp; Partnerships</h1>
  <div class="region region-content">
  <div id="block-system-main" class="block block-system">
  <div class="content">
<div class="view view-national-initiatives view-id-national_initiatives view-display-id-page">
      <div class="view-content">
"""

_ROW = """  <div class="views-row views-row-{n} views-row-{parity}">
  {image}
  <div class="views-field views-field-title">        <span class="field-content"><a href="{prefix}/{slug}">{title}</a></span>  </div>

  <div class="views-field views-field-body">        <div class="field-content"><p>{body}</p>
</div>  </div>  </div>
"""

_IMAGE = (
    '<div class="views-field views-field-field-image">        <div class="field-content">'
    '<a href="{prefix}/{slug}"><img typeof="foaf:Image" src="/sites/default/files/styles/'
    'thumbnail/public/{slug}.png?itok=Qx3v8r2B" width=100 height=100 alt="{title} logo" />'
    "</a></div>  </div>"
)

_VIEW_END = """    </div>
  <div class="item-list"><ul class="pager"><li class="pager-current first">1</li></ul></div>
</div>  </div>
</div>
  </div>
  </div></div>
"""

_FOOT = """  </div></div>
  <div id="footer-wrapper"><div class="section">
    <div id="footer" class="clearfix">
      <p>Institute of Museum and Library Services, 955 L'Enfant Plaza North, SW, Suite 4000,
      Washington, DC 20024-2135. Tel: 202-653-IMLS (4657).</p>
    </div>
  </div></div>
</div></div>
</body>
</html>
"""


def _menu(page: int, budget: int) -> str:
    """Navigation chrome of about `budget` bytes: a mega-menu, as Drupal sites carry."""
    rng = random.Random(f"menu/{page}")
    items: list[str] = []
    size = 0
    while size < budget:
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 4)))
        slug = words.replace(" ", "-")
        n = len(items)
        items.append(f'<li class="leaf menu-{n}"><a href="/{slug}" title="{words}">{words}</a></li>')
        size += len(items[-1]) + 1
    return (
        '<div id="block-menu-block-1" class="block block-menu-block"><div class="content">'
        '<ul class="menu">\n' + "\n".join(items) + "\n</ul></div></div>\n"
    )


def render_page(
    page: int, version: int, entries: int, mutation: Mutation, target_bytes: int = 40_000
) -> bytes:
    """Page `page` at `version` as UTF-8 HTML, padded with menu chrome to ~target_bytes."""
    path = f"{PATH_PREFIX}/list-{page}"
    rows = []
    for n, row in enumerate(page_entries(page, version, entries, mutation), start=1):
        fields = {"prefix": PATH_PREFIX, "slug": row["slug"], "title": row["title"]}
        image = _IMAGE.format(**fields) if row["image"] == "True" else ""
        parity = "odd" if n % 2 else "even"
        rows.append(_ROW.format(n=n, parity=parity, image=image, body=row["body"], **fields))
    head = _HEAD.format(path=path, page=page)
    core = head + _VIEW_START + "".join(rows) + _VIEW_END + _FOOT
    menu = _menu(page, target_bytes - len(core.encode()) - 120)
    html = head + menu + _VIEW_START + "".join(rows) + _VIEW_END + _FOOT
    return html.encode("utf-8")


@dataclass
class Rendered:
    body: bytes
    gzipped: bytes | None
    etag: str
    last_modified: str


@dataclass
class Site:
    """Every page's current version and its rendered bytes (rendered once per version)."""

    pages: int
    entries: int
    mutation: Mutation
    use_gzip: bool
    versions: list[int] = field(default_factory=list)
    cache: dict[tuple[int, int], Rendered] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.versions = [0] * self.pages

    def rendered(self, page: int) -> Rendered:
        key = (page, self.versions[page])
        if key not in self.cache:
            body = render_page(page, key[1], self.entries, self.mutation)
            self.cache[key] = Rendered(
                body=body,
                gzipped=gzip.compress(body, 6, mtime=0) if self.use_gzip else None,
                etag='"' + hashlib.sha1(body).hexdigest()[:20] + '"',
                last_modified=formatdate(BASE_TIME + key[1] * 3600 + page, usegmt=True),
            )
        return self.cache[key]

    def change(self, k: int, seed: int) -> list[int]:
        chosen = sorted(random.Random(seed).sample(range(self.pages), min(k, self.pages)))
        for page in chosen:
            self.versions[page] += 1
        return chosen

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n


def _response(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_JSON = [("Content-Type", "application/json")]


def answer(site: Site, method: str, target: str, headers: dict[str, str]) -> bytes:
    """The whole HTTP response to one request."""
    url = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    if url.path == "/_control/change" and method == "POST":
        changed = site.change(int(query.get("k", "0")), int(query.get("seed", "0")))
        return _response("200 OK", _JSON, json.dumps(changed).encode())
    if url.path == "/_control/reset" and method == "POST":
        site.versions = [0] * site.pages
        return _response("200 OK", [], b"ok")
    if url.path == "/_control/stats":
        return _response("200 OK", _JSON, json.dumps(site.stats).encode())
    prefix = f"{PATH_PREFIX}/list-"
    number = url.path[len(prefix):] if url.path.startswith(prefix) else ""
    if not number.isdigit() or int(number) >= site.pages:
        site.count("404")
        return _response("404 Not Found", [("Content-Type", "text/plain")], b"not found")
    page = site.rendered(int(number))
    validators = [("ETag", page.etag), ("Last-Modified", page.last_modified)]
    inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
    if (inm is not None and page.etag in [t.strip() for t in inm.split(",")]) or (
        inm is None and ims == page.last_modified
    ):
        site.count("304")
        return _response("304 Not Modified", validators, b"")
    site.count("200")
    wants_gzip = page.gzipped is not None and "gzip" in headers.get("accept-encoding", "")
    body = page.gzipped if wants_gzip and page.gzipped is not None else page.body
    site.count("body_bytes", len(body))
    extra = [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")] if wants_gzip else []
    return _response(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), *validators, *extra],
        body,
    )


async def _serve_connection(
    site: Site, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if int(headers.get("content-length", "0")):
                await reader.readexactly(int(headers["content-length"]))
            writer.write(answer(site, method, target, headers))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(args: argparse.Namespace) -> None:
    mutation = Mutation(args.edits, args.adds, args.removes)
    site = Site(args.pages, args.entries, mutation, args.gzip)
    for page in range(args.pages):  # render version 0 up front: the first cycle pays no render
        site.rendered(page)
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(site, r, w), "127.0.0.1", 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    Path(args.port_file).write_text(str(port))
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--entries", type=int, default=25)
    parser.add_argument("--edits", type=int, default=1, help="entries edited per change step")
    parser.add_argument("--adds", type=int, default=1, help="entries added per change step")
    parser.add_argument("--removes", type=int, default=1, help="entries removed per change step")
    parser.add_argument("--gzip", action="store_true", help="gzip bodies when asked")
    parser.add_argument("--port-file", required=True)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
