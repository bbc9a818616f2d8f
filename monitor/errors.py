"""The one exception tree: every foreseeable failure is a MonitorError with an exit code."""


class MonitorError(Exception):
    """A failure the user can act on; cli.py prints it without a traceback."""

    exit_code = 1


class ConfigError(MonitorError):
    """The config file or a command-line option is wrong (exit 2)."""

    exit_code = 2


class StoreError(MonitorError):
    """The database or the archive could not be read or written; names the path."""

    exit_code = 1


class LockedError(MonitorError):
    """Another check cycle holds the data directory's lock."""

    exit_code = 1
