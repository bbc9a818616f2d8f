"""Logging for the long-running commands: one line per record, logfmt or JSON, to stderr."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_BARE_VALUE = re.compile(r"[\w.:/@+,-]+")
_SYSLOG_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class LineFormatter(logging.Formatter):
    """One line per record: logfmt (`ts=… level=info msg="cycle done" check_id=12`) or JSON."""

    def __init__(self, *, as_json: bool, journal: bool) -> None:
        super().__init__()
        self.as_json = as_json
        self.journal = journal  # systemd reads a leading <N> as the line's priority

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        if self.as_json:
            line = json.dumps(fields, ensure_ascii=False, default=str)
        else:
            line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        if self.journal:
            line = f"<{_SYSLOG_PRIORITY.get(record.levelname, 6)}>{line}"
        return line

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """ts, level, msg, the record's extra={"fields": …}, and the error if there is one."""
        at = datetime.fromtimestamp(record.created, UTC)
        fields: dict[str, Any] = {
            "ts": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        if record.name != "monitor":
            fields["logger"] = record.name
        fields.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            fields["error"] = f"{type(error).__name__}: {error}"
            fields["traceback"] = self.formatException(record.exc_info)
        return {key: value for key, value in fields.items() if value is not None}


def _logfmt_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # JSON string escapes keep a value with spaces, quotes or newlines on one line
    return text if _BARE_VALUE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _stderr_is_journal() -> bool:
    """Whether stderr is systemd's journal stream ($JOURNAL_STREAM names its device:inode)."""
    try:
        device, inode = (int(n) for n in os.environ.get("JOURNAL_STREAM", "").split(":"))
        status = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def configure_logging(level: str, as_json: bool) -> Callable[[], None]:
    """Send the "monitor" and "apscheduler" loggers to stderr; returns a function that undoes it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(as_json=as_json, journal=_stderr_is_journal()))
    numeric = logging.getLevelNamesMapping()[level.upper()]
    # APScheduler says "Running job …" at info for every run: only its warnings, unless debugging
    quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    saved = []
    for name, wanted in (("monitor", numeric), ("apscheduler", quiet)):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(wanted)
        logger.propagate = False

    def restore() -> None:
        for logger, old_level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = propagate
        handler.flush()

    return restore
