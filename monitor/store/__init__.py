"""The store: a typed interface (`base.py`) and its implementations, chosen by the config.

SQLite (`sqlite.py`) is the zero-setup default; with `[cluster]` the store is PostgreSQL
(`postgres.py`), imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.paths import DataDir
from monitor.store.base import (
    CaptureRecord,
    CycleRecord,
    CycleState,
    EventQuery,
    LastResponse,
    PageMemory,
    PageUpdate,
    RecordedCycle,
    Rederived,
    Store,
)
from monitor.store.sqlite import SCHEMA_VERSION, SqliteStore

if TYPE_CHECKING:
    from monitor.config import Config

__all__ = [
    "SCHEMA_VERSION",
    "CaptureRecord",
    "CycleRecord",
    "CycleState",
    "EventQuery",
    "LastResponse",
    "PageMemory",
    "PageUpdate",
    "RecordedCycle",
    "Rederived",
    "SqliteStore",
    "Store",
    "open_store",
]


def open_store(config: Config, *, write: bool) -> Store:
    """The configured store; readers (write=False) open an existing one, read-only.

    With [cluster], PostgreSQL at cluster.database (psycopg is imported only then).
    """
    from monitor.cluster.settings import cluster_of  # imports no cluster library

    cluster = cluster_of(config)
    if cluster is not None:
        from monitor.store.postgres import PostgresStore

        return PostgresStore(cluster.database, create=write)
    return SqliteStore(DataDir(config.monitor.data_dir).db, create=write)
