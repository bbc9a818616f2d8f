"""The one exception tree: every foreseeable failure is a MonitorError with an exit code.

MonitorError (1)            a failure the user can act on
├── ConfigError (2)         config.toml or a command-line option is wrong
├── StoreError (1)          the database or the archive cannot be read or written
│   ├── NoDatabaseYet (1)   no check has recorded anything here yet
│   └── SchemaTooNew (2)    the database was written by a newer monitor: refused
├── LockedError (3)         another cycle holds the data directory's lock
└── CycleCancelled (1)      a stop request arrived while fetching: nothing recorded
"""


class MonitorError(Exception):
    """A failure the user can act on; cli.py prints it without a traceback."""

    exit_code = 1


class ConfigError(MonitorError):
    """The config file or a command-line option is wrong (exit 2)."""

    exit_code = 2


class StoreError(MonitorError):
    """The database or the archive could not be read or written; names the path."""

    exit_code = 1


class NoDatabaseYet(StoreError):
    """No check has recorded anything here yet (no database, or one still being created):
    `status` says "none yet"; a damaged database is a StoreError, never this."""


class SchemaTooNew(StoreError):
    """The database's schema is newer than this version knows: refused, never rewritten."""

    exit_code = 2


class LockedError(MonitorError):
    """Another check cycle holds the data directory's lock (exit 3, apart from page failures)."""

    exit_code = 3


class CycleCancelled(MonitorError):
    """A stop was requested while pages were being fetched: nothing was recorded."""
