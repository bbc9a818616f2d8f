"""Throw-away PostgreSQL and Redis servers for the cluster tests, on 127.0.0.1 and free ports.

Each runs from Debian's binaries (apt-get install postgresql redis-server) in a temp
directory and is stopped at the end of the test session. Missing binaries skip the
tests that need them locally, but fail them under CI=true, so CI never silently skips
the cluster tests. As root, PostgreSQL (which refuses to run as root) runs as the
`postgres` user, or `nobody`, through runuser.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing(what: str) -> None:
    """Skip the test for want of `what`, or fail it under CI (which must run every test)."""
    message = f"{what} not found: apt-get install postgresql redis-server"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} in {START_TIMEOUT_S}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin holding initdb and postgres, else initdb on PATH."""

    def version(initdb: str) -> int:
        name = Path(initdb).parent.parent.name  # /usr/lib/postgresql/15/bin/initdb
        return int(name) if name.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _unprivileged_user() -> str | None:
    """As root, the user PostgreSQL runs as (it refuses root); None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a `postgres` nor a `nobody` user")


@dataclass
class Postgres:
    """A running throw-away PostgreSQL; `url` has user `monitor`, database `monitor`."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"postgresql://monitor@127.0.0.1:{self.port}/monitor"

    def stop(self) -> None:
        _stop(self.proc)  # SIGTERM: PostgreSQL's "smart" shutdown


def start_postgres(bin_dir: Path) -> Postgres:
    """initdb into a fresh temp dir, start postgres on a free port, create database `monitor`."""
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    data, sockets, log = root / "data", root / "run", root / "postgres.log"
    sockets.mkdir()
    user = _unprivileged_user()
    prefix = ["runuser", "-u", user, "--"] if user else []
    if user:
        entry = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(root, 0o700)
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "monitor", "-A", "trust",
         "-E", "UTF8", "--no-locale", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    with open(log, "wb") as out:
        if user:
            os.chown(log, pwd.getpwnam(user).pw_uid, -1)
        proc = subprocess.Popen(
            [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Postgres(proc, port, root)
    try:
        _wait_for_port(port, proc, log, "postgres")
        _create_database(server)
    except BaseException:
        server.stop()
        raise
    return server


def _create_database(server: Postgres) -> None:
    """CREATE DATABASE monitor, retrying while the server still says it is starting up."""
    import psycopg

    admin = f"postgresql://monitor@127.0.0.1:{server.port}/postgres"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute("CREATE DATABASE monitor")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- Redis ------------------------------------------------------------------------------------


def redis_bin() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


@dataclass
class Redis:
    """A running throw-away Redis, no persistence; `url` is database 0."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        _stop(self.proc)


def start_redis(binary: Path) -> Redis:
    """redis-server on a free port of 127.0.0.1, in a temp dir, saving nothing to disk."""
    root = Path(tempfile.mkdtemp(prefix="monitor-redis-"))
    port = free_port()
    log = root / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(root)],
            stdout=out, stderr=subprocess.STDOUT, cwd=root,
        )  # fmt: skip
    server = Redis(proc, port, root)
    try:
        _wait_for_port(port, proc, log, "redis-server")
    except BaseException:
        server.stop()
        raise
    return server
