"""The floors bench.py compares `monitor check` against, each run in its own process.

download: one httpx.AsyncClient, a semaphore of --concurrency, every URL fetched and its
          body hashed (sha256); with --state, the ETag/Last-Modified of the last run are
          sent back (If-None-Match / If-Modified-Since), as a smart downloader would.
parse:    the same, plus BeautifulSoup+lxml selection of each new body's entries
          (item, then title/link/description inside each item, get_text): the least any
          tool that extracts the entries must do. A 304 has nothing new to parse.

With --no-ca-bundle the client loads no CA bundle (~30 ms): plain http:// needs none, and
the monitor loads it only at its first https:// connection; the tightest floor of a
one-off check of local pages.

Usage: python bench/floor.py {download,parse} --urls FILE --concurrency C [--state FILE]
       [--no-ca-bundle] [--item SEL --title SEL --link SEL --description SEL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import urljoin

import httpx


def select_entries(text: str, base_url: str, sel: argparse.Namespace) -> list[tuple]:
    """(title, link, description) of every item: what extraction must produce at least."""
    from bs4 import BeautifulSoup  # the parse floor's: the download floor imports httpx only

    soup = BeautifulSoup(text, "lxml")
    rows = []
    for item in soup.select(sel.item):
        title = item.select_one(sel.title)
        link = item.select_one(sel.link)
        body = item.select_one(sel.description)
        rows.append(
            (
                title.get_text(" ", strip=True) if title is not None else "",
                urljoin(base_url, str(link.get("href"))) if link is not None else None,
                body.get_text(" ", strip=True) if body is not None else "",
            )
        )
    return rows


async def run(args: argparse.Namespace) -> dict[str, int]:
    urls = Path(args.urls).read_text().split()
    state_path = Path(args.state) if args.state else None
    state: dict[str, list] = {}
    if state_path is not None and state_path.exists():
        state = json.loads(state_path.read_text())
    limit = asyncio.Semaphore(args.concurrency)
    counts = {"200": 0, "304": 0, "other": 0, "entries": 0, "bytes": 0}
    digests: dict[str, str] = {}

    async def one(client: httpx.AsyncClient, url: str) -> None:
        headers = {}
        etag, last_modified = state.get(url, (None, None))
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with limit:
            response = await client.get(url, headers=headers)
            body = response.content
        if response.status_code == 304:
            counts["304"] += 1
            return
        if response.status_code != 200:
            counts["other"] += 1
            return
        counts["200"] += 1
        counts["bytes"] += len(body)
        digests[url] = hashlib.sha256(body).hexdigest()
        state[url] = [response.headers.get("etag"), response.headers.get("last-modified")]
        if args.mode == "parse":
            counts["entries"] += len(select_entries(response.text, str(response.url), args))

    # verify=False: an SSL context with no CA bundle loaded; the URLs are plain http://
    verify = not args.no_ca_bundle
    async with httpx.AsyncClient(timeout=30, verify=verify) as client:
        await asyncio.gather(*(one(client, url) for url in urls))
    if state_path is not None:
        state_path.write_text(json.dumps(state))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("download", "parse", "imports"))
    parser.add_argument("--urls")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--state")
    parser.add_argument("--no-ca-bundle", action="store_true", help="load no CA bundle")
    parser.add_argument("--item", default=".view-content .views-row")
    parser.add_argument("--title", default=".views-field-title")
    parser.add_argument("--link", default="a[href]")
    parser.add_argument("--description", default=".views-field-body")
    args = parser.parse_args()
    if args.mode == "imports":  # the fixed cost: interpreter start and imports only
        import lxml.etree  # noqa: F401

        return
    counts = asyncio.run(run(args))
    json.dump(counts, sys.stdout)


if __name__ == "__main__":
    main()
