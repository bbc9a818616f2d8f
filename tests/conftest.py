"""Shared test helpers: a config writer, the CLI runner, and a local site whose pages change."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dbservers
import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import monitor.match
from monitor.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
IMLS = FIXTURES / "imls-2017"
SCENARIO = FIXTURES / "scenario-basic"
ACTIVE_PATH = "/issues/national-initiatives"
ARCHIVED_PATH = "/issues/national-initiatives/archives"
IMLS_SELECT = {
    "item": ".view-content .views-row",
    "title": ".views-field-title",
    "link": "a[href]",
    "description": ".views-field-body",
}


@dataclass
class Site:
    """A local web site whose answers a test changes between checks.

    `pages` maps a path to a Response factory (or bytes served as text/html);
    every request is logged in `requests`.
    """

    server: HTTPServer
    pages: dict[str, Callable[[Request], Response] | bytes] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def serve(self, path: str, body: bytes | str | Callable[[Request], Response]) -> None:
        with self.lock:
            self.pages[path] = body.encode() if isinstance(body, str) else body

    def serve_file(self, path: str, file: Path) -> None:
        self.serve(path, file.read_bytes())

    def handle(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(request)
            page = self.pages.get(request.path)
        if page is None:
            return Response("not found", status=404)
        if callable(page):
            return page(request)
        return Response(page, status=200, content_type="text/html; charset=utf-8")


@pytest.fixture
def site() -> Iterator[Site]:
    """A Site on 127.0.0.1 answering every path through Site.handle, one thread per request."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    s = Site(server)
    server.expect_request("").respond_with_handler(s.handle)  # "" matches any path
    try:
        yield s
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def write_config(
    tmp_path: Path,
    pages: list[dict],
    *,
    monitor: dict | None = None,
    feed: dict | None = None,
    schedule: dict | None = None,
    cluster: dict | None = None,
) -> Path:
    """Write a config.toml for the tests (data in tmp_path/data) and return its path.

    With `cluster` (a [cluster] table, as the `cluster` fixture gives), the store is PostgreSQL.
    """
    settings = {"data_dir": "data", "timeout": 5, "retries": 0, "concurrency": 4}
    settings.update(monitor or {})
    lines = ["[monitor]"] + [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    if schedule:
        lines += ["[schedule]"] + [f"{k} = {toml_value(v)}" for k, v in schedule.items()]
    if feed:
        lines += ["[feed]"] + [f"{k} = {toml_value(v)}" for k, v in feed.items()]
    if cluster:
        lines += ["[cluster]"] + [f"{k} = {toml_value(v)}" for k, v in cluster.items()]
    for page in pages:
        lines.append("[[pages]]")
        select = page.get("select", IMLS_SELECT)
        lines += [f"{k} = {toml_value(v)}" for k, v in page.items() if k != "select"]
        lines.append("  [pages.select]")
        lines += [f"  {k} = {toml_value(v)}" for k, v in select.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class KeysEachTime(monitor.match.KeysOnce):
    """match.KeysOnce that computes the keys on each use, an item's or an entry's: the memo's
    oracle (patched in for `KeysOnce`)."""

    def __call__(self, item: object) -> list[object]:
        return monitor.match.tier_keys(item)  # type: ignore[arg-type]

    def of_entry(self, candidate: object) -> list[object]:
        return monitor.match.tier_keys(candidate)  # type: ignore[arg-type]


def child_pids() -> list[int]:
    """This process's live children, from /proc (but a multiprocessing resource tracker,
    which some other test's library may start: one per process, never a parse worker)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        mine = int(fields[1]) == os.getpid() and fields[0] != "Z"
        if mine and b"resource_tracker" not in cmdline:
            children.append(int(entry.name))
    return children


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def imls_pages(site: Site) -> list[dict]:
    """The two IMLS pages, served by `site` at their real paths."""
    return [
        {"name": "active", "url": site.url(ACTIVE_PATH), "role": "active"},
        {"name": "archived", "url": site.url(ARCHIVED_PATH), "role": "archived"},
    ]


def run(config: Path, *args: str) -> Result:
    """Run the real CLI in-process, as a user would type it."""
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def json_lines(result: Result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --- real PostgreSQL and Redis (tests/dbservers.py), started once, only when a test asks ----------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dbservers.Postgres]:
    """A throw-away PostgreSQL for the session; skipped locally (failed under CI) without it."""
    bin_dir = dbservers.postgres_bin()
    if bin_dir is None:
        dbservers.missing("PostgreSQL (initdb, postgres)")
    assert bin_dir is not None
    server = dbservers.start_postgres(bin_dir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[dbservers.Redis]:
    """A throw-away Redis for the session; skipped locally (failed under CI) without it."""
    binary = dbservers.redis_bin()
    if binary is None:
        dbservers.missing("redis-server")
    assert binary is not None
    server = dbservers.start_redis(binary)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: dbservers.Redis) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def postgres_database(postgres_server: dbservers.Postgres) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = f"postgresql://monitor@127.0.0.1:{postgres_server.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://monitor@127.0.0.1:{postgres_server.port}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store a test runs on: the same behaviour is asserted on both."""
    return str(request.param)


@pytest.fixture
def cluster(store_kind: str, request: pytest.FixtureRequest) -> dict | None:
    """The [cluster] table putting the store on a fresh PostgreSQL database; None for SQLite.

    Only the store and the archive directory come from it: no broker is contacted by
    `check` and the reading commands.
    """
    if store_kind == "sqlite":
        return None
    database = request.getfixturevalue("postgres_database")
    return {"database": database, "broker": "redis://127.0.0.1:1/0", "archive": "warc"}
