"""Typed rows <-> database rows of a check cycle, shared by both stores.

The readers' rows are in reading.py, the entry pages' in detail_rows.py, the outbox's in
outbox.py: each loaded only where it is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.errors import StoreError
from monitor.models import Change, Event, format_time, parse_time
from monitor.store.base import CaptureRecord, EventQuery, PageUpdate

Row = Mapping[str, Any]

# entries are listed active first, then archived, then removed (then in insertion order)
STATE_ORDER = "CASE state WHEN 'active' THEN 0 WHEN 'archived' THEN 1 ELSE 2 END"

# Each query lists the rows whose reference does not check out (the same SQL on both stores).
DANGLING = {
    "event points at a missing entry": "SELECT e.id FROM events e LEFT JOIN entries n "
    "ON n.id = e.entry_id WHERE e.entry_id IS NOT NULL AND n.id IS NULL",
    "event points at a missing capture": "SELECT e.id FROM events e LEFT JOIN captures c "
    "ON c.id = e.capture_id WHERE e.capture_id IS NOT NULL AND c.id IS NULL",
    "placement points at a missing entry": "SELECT p.entry_id AS id FROM placements p "
    "LEFT JOIN entries n ON n.id = p.entry_id WHERE n.id IS NULL",
    "version points at a missing entry": "SELECT v.entry_id AS id FROM entry_versions v "
    "LEFT JOIN entries n ON n.id = v.entry_id WHERE n.id IS NULL",
    "check never finished": "SELECT id FROM checks WHERE finished_at IS NULL",
    "revisit without its original": "SELECT id FROM captures WHERE record_type = "
    "'revisit' AND original_capture_id IS NULL",
    "revisit points at a missing capture": "SELECT c.id FROM captures c LEFT JOIN captures o "
    "ON o.id = c.original_capture_id WHERE c.original_capture_id IS NOT NULL AND o.id IS NULL",
    "version points at a missing capture": "SELECT v.entry_id AS id FROM entry_versions v "
    "LEFT JOIN captures c ON c.id = v.capture_id WHERE v.capture_id IS NOT NULL AND c.id IS NULL",
}


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
        "changes_html": event.changes_html,
    }


def event_from_row(row: Row, where: str) -> Event:
    """An Event from an events row; a row no monitor wrote (edited by hand, or a damaged
    page of the file) is a StoreError naming `where` (the database) and the event."""
    try:
        changes = None
        if row["changes"]:
            changes = {
                k: Change(v["before"], v["after"]) for k, v in json.loads(row["changes"]).items()
            }
    except (ValueError, TypeError, AttributeError, KeyError):
        raise _damaged(where, row, "its changes are not the JSON object monitor writes") from None
    try:
        at = parse_time(row["at"])
    except (ValueError, TypeError):
        raise _damaged(where, row, f"its time {row['at']!r} is not an ISO 8601 time") from None
    return Event(
        id=row["id"],
        kind=row["kind"],
        at=at,
        page=row["page"],
        entry_id=row["entry_id"],
        title=row["title"],
        link=row["link"],
        description=row["description"],
        changes=changes,
        detail=row["detail"],
        capture_id=row["capture_id"],
        source=row["source"] or "check",
        changes_html=row.get("changes_html"),
    )


def _damaged(where: str, row: Row, what: str) -> StoreError:
    return StoreError(f"{where}: event {row['id']}: {what}; the database is damaged")


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


def page_fetch_columns(
    update: PageUpdate, capture_id: int | None, bodies: Sequence[int] | None = None
) -> dict[str, Any]:
    """The pages columns a checked page's fetch sets (validators and key only when known).

    `bodies`: the page's captures this cycle that hold a body (a listing's pages, in
    order): when its entries are accepted, they are the bodies a new engine re-reads.
    """
    checked = format_time(update.checked_at)
    columns: dict[str, Any] = {
        "url": update.url,
        "last_checked_at": checked,
        "last_detail": update.detail,
        "last_capture_id": capture_id,
    }
    if update.ok:
        columns["last_ok_at"] = checked
    if update.validators is not None:
        columns["etag"], columns["last_modified"], columns["body_key"] = update.validators
    if update.accept == "set":
        columns["accepted_key"] = update.accepted_key
        columns["extractor"] = update.extractor
        columns["accepted_captures"] = json.dumps(list(bodies or []))
    elif update.accept == "clear":
        columns["accepted_key"] = None
        columns["extractor"] = None
        columns["accepted_captures"] = None
    return columns


def optional_time(value: str | None) -> Any:
    """A stored time read back, None for NULL."""
    return parse_time(value) if value else None


def events_sql(query: EventQuery, mark: str) -> tuple[str, list[Any]]:
    """The events query of both stores, newest first (by time, then seq); `mark` is the
    dialect's placeholder ("?" for SQLite, "%s" for psycopg)."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if query.before_seq is not None:
        # Keyset on (at, seq), the order shown: imported events come in after live ones.
        where.append(
            f"(at, seq) < (SELECT at, seq FROM events WHERE seq = {mark} "
            f"UNION ALL SELECT '9999', {mark} LIMIT 1)"
        )
        params.extend([query.before_seq, query.before_seq])
    if query.since is not None:
        where.append(f"at >= {mark}")
        params.append(format_time(query.since))
    for column, values in (("kind", query.kinds), ("page", query.pages)):
        if values:
            where.append(f"{column} IN ({', '.join(mark for _ in values)})")
            params.extend(values)
    if query.entry_id is not None:
        where.append(f"entry_id = {mark}")
        params.append(query.entry_id)
    sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY at DESC, seq DESC"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    return sql, params
