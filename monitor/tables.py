"""What the reading commands print: aligned tables, CSV, colour by event kind, word diffs.

Pure functions (rows in, text out), except `colour_on`, which looks at the environment and
the stream. Colour goes through click.style, so `click.echo(color=False)` or a pipe strips it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from monitor.diff import diff_words
from monitor.kinds import kind_info
from monitor.models import Event, format_time
from monitor.render import clip, event_what

if TYPE_CHECKING:  # the readers' rows: `monitor check` prints its lines without them
    from monitor.store.reading import CaptureRow, EntryRow, VersionRow

TONE_COLOURS = {"good": "green", "bad": "red", "warn": "yellow", "info": "blue"}
DIFF_CONTEXT_CHARS = 120  # unchanged text kept on each side of a change
Paint = Callable[[str], str]


def colour_on(*, err: bool = False) -> bool:
    """Colour for a terminal only: never when piped, never with NO_COLOR set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stderr if err else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint_kind(kind: str, text: str, *, colour: bool) -> str:
    """`text` in the colour of the kind's tone (kinds.py), or as it is without colour."""
    if not colour:
        return text
    return click.style(text, fg=TONE_COLOURS.get(kind_info(kind).tone, "blue"), bold=True)


def stamp(at: datetime) -> str:
    """A time to the second, as people read it: 2026-11-25 16:37:45Z."""
    return format_time(at).replace("T", " ")


def table_lines(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    paint: Mapping[int, Callable[[str, str], str]] | None = None,
) -> list[str]:
    """Rows under a header row, columns padded to their widest cell; the last is not padded.

    `paint[i](cell, padded)` styles column i after padding, so colour never skews widths.
    """
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    last = len(headers) - 1

    def line(cells: Sequence[str], styled: bool) -> str:
        out = []
        for i, cell in enumerate(cells):
            padded = cell if i == last else cell.ljust(widths[i])
            if styled and paint and i in paint:
                padded = paint[i](cell, padded)
            out.append(padded)
        return "  ".join(out).rstrip()

    return [line([h.upper() for h in headers], False), *(line(r, True) for r in rows)]


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV (RFC 4180, the csv module's quoting) with a header row; None is an empty cell."""
    import csv  # only --csv needs it; `monitor check` prints its lines from this module

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return out.getvalue()


# -- the columns of each listing: the same in every release (scripts read them by name) ----

EVENT_COLUMNS = (
    "id", "at", "kind", "page", "entry_id", "title", "link", "description", "detail",
    "changed_fields", "capture_id", "source",
)  # fmt: skip
ENTRY_COLUMNS = (
    "entry_id", "state", "page", "title", "link", "description",
    "first_seen", "last_seen", "last_changed", "versions",
)  # fmt: skip
VERSION_COLUMNS = (
    "entry_id", "version", "at", "state", "page", "title", "link", "description", "capture_id",
)  # fmt: skip
CAPTURE_COLUMNS = (
    "id", "at", "page", "url", "status", "record_type", "original_capture_id", "body_bytes",
    "content_type", "error",
)  # fmt: skip
STATUS_COLUMNS = ("page", "status", "entries", "last_checked_at", "last_ok_at", "detail", "summary")


def event_csv_row(e: Event) -> list[Any]:
    changed = " ".join(e.changes) if e.changes else None
    return [e.id, format_time(e.at), e.kind, e.page, e.entry_id, e.title, e.link,
            e.description, e.detail, changed, e.capture_id, e.source]  # fmt: skip


def entry_csv_row(r: EntryRow) -> list[Any]:
    return [r.id, r.state, r.page, r.title, r.link, r.description, format_time(r.first_seen),
            format_time(r.last_seen), format_time(r.last_changed), r.versions]  # fmt: skip


def version_csv_row(entry_id: str, v: VersionRow) -> list[Any]:
    return [entry_id, v.version, format_time(v.at), v.state, v.page, v.title, v.link,
            v.description, v.capture_id]  # fmt: skip


def capture_csv_row(c: CaptureRow) -> list[Any]:
    return [c.id, format_time(c.at), c.page, c.target_uri, c.status, c.record_type,
            c.original_capture_id, c.body_bytes, c.content_type, c.error]  # fmt: skip


def status_csv_rows(pages: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    keys = ("name", "status", "entries", "last_checked_at", "last_ok_at", "detail", "summary")
    return [[page.get(key) for key in keys] for page in pages]


# -- text -----------------------------------------------------------------------------------


def event_line(event: Event, *, colour: bool, page_width: int = 10) -> str:
    """One line of `monitor log`: time to the second, kind (coloured), page, what happened."""
    kind = paint_kind(event.kind, f"{event.kind:<15}", colour=colour)
    return f"{stamp(event.at)}  {kind} {event.page:<{page_width}} {event_what(event)}".rstrip()


def diff_text(before: str, after: str, *, colour: bool) -> str:
    """A word diff for a terminal: red/green with colour, else [-removed-]{+added+}."""
    parts: list[str] = []
    ops = diff_words(before, after)
    for index, (op, text) in enumerate(ops):
        if op == "equal":
            parts.append(_context(text, first=index == 0, last=index == len(ops) - 1))
        elif op == "delete":
            parts.append(
                click.style(text, fg="red", strikethrough=True) if colour else f"[-{text}-]"
            )
        elif op == "insert":
            parts.append(
                click.style(text, fg="green", underline=True) if colour else f"{{+{text}+}}"
            )
        else:
            parts.append(f" ({text})")
    return "".join(parts)


def _context(text: str, *, first: bool, last: bool) -> str:
    """An unchanged run, cut to the words near the changes around it."""
    keep = DIFF_CONTEXT_CHARS
    if len(text) <= 2 * keep + 20:
        return text
    head = "" if first else text[:keep]
    tail = "" if last else text[-keep:]
    return f"{head}…{tail}"


def change_lines(
    fields: Mapping[str, tuple[str | None, str | None]], *, colour: bool, indent: str = "    "
) -> list[str]:
    """One line per changed field: a word diff of text fields, before → after of the rest."""
    lines = []
    for name, (before, after) in fields.items():
        if name in ("title", "description"):
            body = diff_text(before or "", after or "", colour=colour)
        else:
            body = f"{before or '-'} → {after or '-'}"
        lines.append(f"{indent}{name}: {body}")
    return lines


def version_changes(
    before: VersionRow, after: VersionRow
) -> dict[str, tuple[str | None, str | None]]:
    """The fields that differ between two consecutive versions of an entry."""
    changes: dict[str, tuple[str | None, str | None]] = {}
    for name in ("state", "page", "title", "link", "description"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes[name] = (old, new)
    return changes


def baseline_lines(pages: Sequence[tuple[str, str, int]], new: Set[str]) -> list[str]:
    """For each (name, status, entries) page checked for the first time: what it recorded."""
    lines = []
    for name, status, entries in pages:
        if name in new and status == "ok":
            noun = "entry" if entries == 1 else "entries"
            lines.append(f"'{name}': first check, recorded {entries} {noun} (no events: baseline)")
    return lines


def history_lines(
    entry: EntryRow, versions: Sequence[VersionRow], events: Sequence[Event], *, colour: bool
) -> list[str]:
    """`monitor history`: the entry now, each version with its word diff, then its events."""
    lines = [
        f"{entry.title or clip(entry.description, 70)}  [{entry.id}]",
        f"  now {entry.state} on {entry.page}; first seen {stamp(entry.first_seen)}",
        "Versions:",
    ]
    previous: VersionRow | None = None
    for version in versions:
        lines.append(
            f"  v{version.version}  {stamp(version.at)}  {version.state:<8} {version.page}"
        )
        if previous is None:
            lines.append(f"      title: {version.title}")
            lines.append(f"      link: {version.link or '-'}")
            lines.append(f"      description: {version.description}")
        else:
            changes = version_changes(previous, version)
            lines += change_lines(changes, colour=colour, indent="      ") or ["      (no change)"]
        previous = version
    lines.append("Events:")
    lines += [f"  {event_line(e, colour=colour)}" for e in events] or ["  none"]
    return lines
