"""Typed rows <-> database rows: one place for every column name, shared by both stores."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from monitor.models import (
    CaptureRow,
    Change,
    EntryRow,
    Event,
    VersionRow,
    format_time,
    parse_time,
)
from monitor.notify.outbox import Delivery, NewDelivery
from monitor.store.base import CaptureRecord, CheckRow, NotifyStatusRow, PageRow

Row = Mapping[str, Any]


def _time(value: str | None) -> Any:
    return parse_time(value) if value else None


def event_row(check_id: int, event: Event) -> dict[str, Any]:
    """The events table's columns for one event."""
    changes = None
    if event.changes:
        changes = json.dumps(
            {k: {"before": c.before, "after": c.after} for k, c in event.changes.items()},
            ensure_ascii=False,
        )
    return {
        "id": event.id,
        "check_id": check_id,
        "kind": event.kind,
        "at": format_time(event.at),
        "page": event.page,
        "entry_id": event.entry_id,
        "title": event.title,
        "link": event.link,
        "description": event.description,
        "changes": changes,
        "detail": event.detail,
        "capture_id": event.capture_id,
        "source": event.source,
    }


def event_from_row(row: Row) -> Event:
    """An Event from an events row."""
    changes = None
    if row["changes"]:
        changes = {
            k: Change(v["before"], v["after"]) for k, v in json.loads(row["changes"]).items()
        }
    return Event(
        id=row["id"],
        kind=row["kind"],
        at=parse_time(row["at"]),
        page=row["page"],
        entry_id=row["entry_id"],
        title=row["title"],
        link=row["link"],
        description=row["description"],
        changes=changes,
        detail=row["detail"],
        capture_id=row["capture_id"],
        source=row["source"] or "check",
    )


def capture_row(check_id: int, capture: CaptureRecord) -> dict[str, Any]:
    """The captures table's columns for one capture record (original_capture_id apart)."""
    return {
        "check_id": check_id,
        "page": capture.page,
        "url": capture.url,
        "target_uri": capture.target_uri,
        "final": int(capture.final),
        "at": format_time(capture.at),
        "status": capture.status,
        "error": capture.error,
        "content_type": capture.content_type,
        "etag": capture.etag,
        "last_modified": capture.last_modified,
        "body_bytes": capture.body_bytes,
        "payload_digest": capture.payload_digest,
        "record_type": capture.record_type,
        "record_id": capture.record_id,
        "refers_to": capture.refers_to,
        "warc_file": capture.warc_file,
        "warc_offset": capture.warc_offset,
        "warc_length": capture.warc_length,
        "truncated": capture.truncated,
        "elapsed_s": round(capture.elapsed_s, 3) if capture.elapsed_s is not None else None,
        "attempts": capture.attempts,
        "source_uri": None,
    }


def entry_from_row(r: Row) -> EntryRow:
    """An EntryRow from an entries row."""
    return EntryRow(
        r["id"],
        r["title"],
        r["link"],
        r["description"],
        r["state"],
        r["page"],
        parse_time(r["first_seen"]),
        parse_time(r["last_seen"]),
        parse_time(r["last_changed"]),
        r["versions"],
    )


def version_from_row(r: Row) -> VersionRow:
    """A VersionRow from an entry_versions row."""
    return VersionRow(
        r["version"],
        parse_time(r["at"]),
        r["state"],
        r["page"],
        r["title"],
        r["link"],
        r["description"],
        r["capture_id"],
    )


def capture_from_row(r: Row) -> CaptureRow:
    """A CaptureRow from a captures row."""
    return CaptureRow(
        id=r["id"],
        check_id=r["check_id"],
        page=r["page"],
        url=r["url"],
        target_uri=r["target_uri"],
        final=bool(r["final"]),
        at=parse_time(r["at"]),
        status=r["status"],
        error=r["error"],
        content_type=r["content_type"],
        body_bytes=r["body_bytes"],
        payload_digest=r["payload_digest"],
        record_type=r["record_type"],
        record_id=r["record_id"],
        original_capture_id=r["original_capture_id"],
        warc_file=r["warc_file"],
        warc_offset=r["warc_offset"],
        truncated=r["truncated"],
    )


def page_from_row(r: Row) -> PageRow:
    """A PageRow from a pages row."""
    return PageRow(
        name=r["name"],
        url=r["url"],
        role=r["role"],
        status=r["status"],
        streak=r["streak"],
        normal_count=r["normal_count"],
        entry_count=r["entry_count"] or 0,
        last_checked_at=_time(r["last_checked_at"]),
        last_ok_at=_time(r["last_ok_at"]),
        last_detail=r["last_detail"],
        last_capture_id=r["last_capture_id"],
    )


def check_from_row(r: Row) -> CheckRow:
    """A CheckRow from a checks row."""
    return CheckRow(
        id=r["id"],
        started_at=parse_time(r["started_at"]),
        finished_at=_time(r["finished_at"]),
        pages=tuple(json.loads(r["pages"])),
        events=r["events"],
        failures=r["failures"],
        warc_file=r["warc_file"],
    )


def delivery_row(new: NewDelivery) -> dict[str, Any]:
    """The outbox table's columns for one delivery a cycle queues (status pending)."""
    return {
        "target": new.target,
        "target_hash": new.target_url_hash,
        "event_ids": json.dumps(list(new.event_ids)),
        "created_at": format_time(new.created_at),
        "next_at": format_time(new.next_at),
    }


def delivery_from_row(row: Row) -> Delivery:
    """A Delivery from an outbox row."""
    return Delivery(
        id=row["id"],
        target=row["target"],
        target_url_hash=row["target_hash"],
        event_ids=tuple(json.loads(row["event_ids"])),
        created_at=parse_time(row["created_at"]),
        attempts=row["attempts"],
        next_at=parse_time(row["next_at"]),
    )


def notify_status_from_row(row: Row) -> NotifyStatusRow:
    """A NotifyStatusRow from a row of NOTIFY_STATUS_SQL (shared by both stores)."""
    return NotifyStatusRow(
        target=row["target"],
        target_url_hash=row["target_hash"],
        pending=int(row["pending"] or 0),
        sent=int(row["sent"] or 0),
        failed=int(row["failed"] or 0),
        oldest_pending=_time(row["oldest_pending"]),
        next_at=_time(row["next_at"]),
        last_error=row["last_error"],
    )


# Per (target, URL hash): counts by state, the oldest pending, the next attempt, and the
# newest error of a delivery not sent. Plain SQL that SQLite and PostgreSQL both run.
NOTIFY_STATUS_SQL = """
SELECT o.target, o.target_hash,
       sum(CASE WHEN o.status = 'pending' THEN 1 ELSE 0 END) AS pending,
       sum(CASE WHEN o.status = 'sent' THEN 1 ELSE 0 END) AS sent,
       sum(CASE WHEN o.status = 'failed' THEN 1 ELSE 0 END) AS failed,
       min(CASE WHEN o.status = 'pending' THEN o.created_at END) AS oldest_pending,
       min(CASE WHEN o.status = 'pending' THEN o.next_at END) AS next_at,
       (SELECT e.last_error FROM outbox e
         WHERE e.target = o.target AND e.target_hash = o.target_hash
           AND e.status <> 'sent' AND e.last_error IS NOT NULL
         ORDER BY e.id DESC LIMIT 1) AS last_error
FROM outbox o
GROUP BY o.target, o.target_hash
ORDER BY o.target, o.target_hash
"""
