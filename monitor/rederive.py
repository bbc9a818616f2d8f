"""An engine change is never an event: stored entries re-read by the new extractor, silently.

A page's accepted entries were read from an archived body by some version of the
extraction engine (`pages.extractor`). When that differs from `EXTRACTOR_VERSION`, before
the cycle, the accepted body (every page of a listing: `pages.accepted_captures`) is read
back from the archive and extracted again; its entries take the new fields without an
event or a version, and the page's accepted key becomes that body's key under the new
engine. The cycle that follows compares the new check's body with that, so edits made
meanwhile are still reported and the engine's own differences never are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from msgspec.structs import replace

from monitor.config import Config, PageConfig
from monitor.decoders import decode_payload
from monitor.errors import MonitorError
from monitor.extract import EXTRACTOR_VERSION
from monitor.models import Entry, PageObservation, PageState
from monitor.observe import Body, listing_entries, listing_key
from monitor.parsing import extract_listing_page
from monitor.paths import warc_dir
from monitor.store import CycleState, PageMemory, Rederived, Store

__all__ = ["rederive_page", "rederive_stale", "stale_pages"]

log = logging.getLogger("monitor")


def stale_pages(pages: Sequence[PageConfig], state: CycleState) -> list[PageConfig]:
    """The pages whose accepted entries another engine version extracted."""
    stale = []
    for page in pages:
        memory = state.pages.get(page.name)
        if memory is None:  # a page of another group: not this cycle's
            continue
        if memory.accepted_key and memory.accepted_captures and memory.state.members:
            if memory.extractor != EXTRACTOR_VERSION:
                stale.append(page)
    return stale


def rederive_page(
    page: PageConfig, memory: PageMemory, bodies: Sequence[Body]
) -> Rederived | None:
    """The page's members with the new engine's fields; None when they cannot be paired."""
    extractions = []
    for body in bodies:
        extraction = extract_listing_page(page, body)
        if isinstance(extraction, PageObservation):
            return None
        extractions.append(extraction)
    entries = listing_entries(extractions)
    members, fields = _pair(memory.state.members, memory.state.member_fields, entries)
    if not members:
        return None
    key = listing_key(page, bodies)
    same_body = memory.body_key == memory.accepted_key
    return Rederived(page.name, members, fields, key, key if same_body else None,
                     EXTRACTOR_VERSION, held=memory.state.held)  # fmt: skip


def _pair(
    members: Sequence[str], old: Sequence[Entry | None], entries: Sequence[Entry]
) -> tuple[tuple[str, ...], tuple[Entry, ...]]:
    """Each stored member with its new fields: by position when the counts agree, else by
    link, then title (a member the new engine does not find keeps its old fields)."""
    if len(entries) == len(members):
        return tuple(members), tuple(entries)
    free = list(entries)
    paired_ids, paired = [], []
    for i, member in enumerate(members):
        before = old[i] if i < len(old) else None
        found = None
        if before is not None:
            found = next((e for e in free if e.link and e.link == before.link), None)
            found = found or next((e for e in free if e.title == before.title), None)
        if found is not None:
            free.remove(found)
            paired_ids.append(member)
            paired.append(found)
        elif before is not None:
            paired_ids.append(member)
            paired.append(before)
    return tuple(paired_ids), tuple(paired)


def rederive_stale(config: Config, store: Store, state: CycleState) -> CycleState:
    """Re-derive every stale page (before the cycle, in its own transaction); the state after.

    A page whose archived body cannot be read is left as it is (logged): its next
    accepted body brings it to the new engine.
    """
    stale = stale_pages(config.pages, state)
    if not stale:
        return state
    warc = warc_dir(config)  # [cluster].archive with a cluster
    fields = store.member_fields([page.name for page in stale])
    done = []
    for page in stale:
        memory = state.pages[page.name]
        memory = replace(memory, state=replace(memory.state, member_fields=fields[page.name]))
        try:
            bodies = [_archived_body(store, warc, c, config.monitor.max_bytes)
                      for c in memory.accepted_captures]  # fmt: skip
        except MonitorError as error:
            log.warning("%s: cannot re-read the accepted body with the new engine: %s",
                        page.name, error)  # fmt: skip
            continue
        rederived = rederive_page(page, memory, bodies)
        if rederived is not None:
            done.append(rederived)
    if not done:
        return state
    store.record_rederived(done)
    return store.read_cycle_state([PageState(name=p.name, role=p.role) for p in config.pages])


def _archived_body(store: Store, warc: Path, capture_id: int, max_bytes: int) -> Body:
    """One archived page of an accepted body, decoded (a revisit: its original's body)."""
    from monitor.archive import read_capture  # warcio: only when a body is re-read

    row = store.capture(capture_id)
    if row is not None and row.record_type == "revisit" and row.original_capture_id:
        row = store.capture(row.original_capture_id)
    if row is None or row.warc_file is None or row.warc_offset is None:
        raise MonitorError(f"capture {capture_id}: no archived response to read")
    record = read_capture(warc, row.warc_file, row.warc_offset)
    data = decode_payload(record.headers, record.raw_payload, max_bytes)
    return Body(row.target_uri, row.content_type, data)
