"""`monitor backfill`: a page's history from a web archive that speaks the CDX API.

`cdx` lists the captures, `memento` fetches one and tells the archive's own error pages
from it, `polite` keeps every request within the archive's patience.
"""

from monitor.backfill.cdx import CdxCapture, list_captures
from monitor.backfill.memento import (
    Memento,
    archive_error_reason,
    fetch_memento,
    is_archive_error_page,
    memento_url,
)
from monitor.backfill.polite import (
    ArchiveAnswer,
    ArchiveError,
    ArchiveRefused,
    RateLimiter,
    RetryPolicy,
    polite_get,
)

__all__ = [
    "ArchiveAnswer",
    "ArchiveError",
    "ArchiveRefused",
    "CdxCapture",
    "Memento",
    "RateLimiter",
    "RetryPolicy",
    "archive_error_reason",
    "fetch_memento",
    "is_archive_error_page",
    "list_captures",
    "memento_url",
    "polite_get",
]
