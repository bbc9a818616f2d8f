"""Classify (pure): last known state + this cycle's observations -> events.

`classify_cycle` runs four steps, each a pure function without I/O or clock:

1. judge pages (`judge.py`): accept, hold or clear each page's list; page events;
2. match (`match.py`): every accepted item to an entry ever seen, or a new one;
3. standing (`place_entries`): each page's new list, with the entries held back by
   the hold rule (an entry leaving an active page while an archived page has not
   answered stays where it was);
4. transitions (`entry_outcomes`): each entry's new state from all pages together
   (so a move between pages is one event), its fields from the page it stands on,
   compared in canonical form (`canonical.py`), and the entry events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from msgspec import Struct
from msgspec.structs import replace

from monitor.canonical import same_link, same_text
from monitor.judge import (
    PageVerdict,
    departures_held,
    judge_page,
    judge_pages,
    page_events,
)
from monitor.match import Candidate, KeysOnce, match_cycle
from monitor.models import (
    Change,
    CycleResult,
    Entry,
    EntryState,
    EntryUpdate,
    Event,
    EventKind,
    KnownEntry,
    PageObservation,
    PageState,
)

__all__ = ["PageVerdict", "Placement", "classify_cycle", "judge_page", "place_entries"]

Lists = dict[str, tuple[tuple[str, Entry | None], ...]]  # page -> (entry id, fields) in order
# Reads the named pages' member fields (the store's `member_fields`).
FieldsLoader = Callable[[Sequence[str]], Mapping[str, tuple[Entry | None, ...]]]


class Placement(Struct, frozen=True):
    """Where entries stand after the cycle: each page's list, and what was seen or held."""

    lists: Mapping[str, tuple[tuple[str, Entry | None], ...]]  # every configured page
    seen: tuple[str, ...]  # entries on a page whose list was accepted this cycle
    held: tuple[str, ...]  # entries kept on an active page by the hold rule
    holding_pages: tuple[str, ...]  # accepted pages whose list keeps a held entry


def classify_cycle(
    known: Mapping[str, KnownEntry] | Callable[[], Mapping[str, KnownEntry]],
    pages: Sequence[PageState],
    observations: Mapping[str, PageObservation],
    *,
    now: datetime,
    confirm_checks: int,
    anomaly_ratio: float,
    new_id: Callable[[], str],
    member_fields: FieldsLoader | None = None,
) -> CycleResult:
    """Classify one cycle: all configured pages in config order, the checked ones observed.

    `known` (every entry ever seen) may be a function that loads it: it is only
    called when some page's entries changed, so an unchanged cycle never loads them.
    With `member_fields`, the pages carry their members alone and the fields are read
    for the pages the cycle decides on: those whose list changed, and those where an
    entry of theirs also stands (at 1,000 pages, a few dozen of them, not 25,000 rows).
    """
    # The observed items' identity keys, computed once for the guards and the matching (each
    # pass would compute them again), and taken from them for the entries ever seen.
    keys_of = KeysOnce()
    verdicts = judge_pages(
        pages,
        observations,
        confirm_checks=confirm_checks,
        anomaly_ratio=anomaly_ratio,
        keys_of=keys_of,
    )
    events = page_events(pages, verdicts, observations, now=now, new_id=new_id)
    released = released_pages(pages, verdicts)
    if not released and not any(v.accepted or v.cleared for v in verdicts.values()):
        # No page's list of entries changed: no entry can have changed either.
        return CycleResult(
            events=tuple(events), entries=(), pages=tuple(verdicts[p.name].state for p in pages)
        )
    if callable(known):
        known = known()
    changed = _changed_pages(pages, verdicts, released)
    if member_fields is not None:  # a departure held on its page keeps the fields it had
        pages = _with_fields(pages, member_fields(changed))
    placement = place_entries(
        known, pages, verdicts, observations, new_id=new_id, keys_of=keys_of, released=released
    )
    if member_fields is not None:  # an entry's fields come from the first page it stands on
        pages, placement = _fields_where_standing(pages, changed, placement, member_fields)
    updates, entry_events = entry_outcomes(
        known, pages, verdicts, placement, observations, now=now, new_id=new_id, changed=changed
    )
    held = set(placement.held)
    new_pages = tuple(
        replace(
            verdicts[p.name].state,
            members=tuple(entry_id for entry_id, _ in placement.lists[p.name]),
            member_fields=tuple(fields for _, fields in placement.lists[p.name]),
            held=(
                frozenset(i for i, _ in placement.lists[p.name] if i in held)
                if p.name in changed
                else p.held
            ),
        )
        for p in pages
    )
    return CycleResult(
        events=tuple(events + entry_events),
        entries=tuple(updates),
        pages=new_pages,
        seen=placement.seen,
        accepted_pages=tuple(p.name for p in pages if verdicts[p.name].accepted),
        cleared_pages=tuple(p.name for p in pages if verdicts[p.name].cleared),
        holding_pages=placement.holding_pages,
        released_pages=tuple(released),
    )


def released_pages(pages: Sequence[PageState], verdicts: Mapping[str, PageVerdict]) -> list[str]:
    """The pages not read this cycle whose held members go now: every archived page's list
    is known again, so each entry held there is where those lists say (archived), or gone.

    A page read this cycle (accepted) decides its holds afresh (`hold_departures`), and a
    cleared one keeps nothing.
    """
    if departures_held(verdicts.values()):
        return []
    return [
        p.name
        for p in pages
        if p.held and not verdicts[p.name].accepted and not verdicts[p.name].cleared
    ]


def _changed_pages(
    pages: Sequence[PageState], verdicts: Mapping[str, PageVerdict], released: Sequence[str]
) -> list[str]:
    """The pages whose list changed this cycle: accepted, cleared, or released."""
    return [
        p.name
        for p in pages
        if verdicts[p.name].accepted or verdicts[p.name].cleared or p.name in released
    ]


def _with_fields(
    pages: Sequence[PageState], fields: Mapping[str, tuple[Entry | None, ...]]
) -> list[PageState]:
    return [replace(p, member_fields=fields[p.name]) if p.name in fields else p for p in pages]


def _fields_where_standing(
    pages: Sequence[PageState],
    changed_pages: Sequence[str],
    placement: Placement,
    member_fields: FieldsLoader,
) -> tuple[list[PageState], Placement]:
    """The unchanged pages on which an entry of a changed page also stands, with their
    fields: `entry_outcomes` takes an entry's fields from the first page it stands on."""
    changed = set(changed_pages)
    relevant = _relevant_entries(pages, changed, placement)
    sharing = [
        p.name
        for p in pages
        if p.name not in changed and any(entry_id in relevant for entry_id in p.members)
    ]
    if not sharing:
        return list(pages), placement
    pages = _with_fields(pages, member_fields(sharing))
    lists = dict(placement.lists)
    for page in pages:
        if page.name in sharing:  # an unchanged page's list is its members, as they were
            lists[page.name] = tuple(zip(page.members, _padded(page), strict=True))
    return pages, replace(placement, lists=lists)


def _relevant_entries(
    pages: Sequence[PageState], changed: set[str], placement: Placement
) -> set[str]:
    """Entries on a page whose list changed, before or after this cycle."""
    relevant = {i for p in pages if p.name in changed for i in p.members}
    relevant.update(i for name in changed for i, _ in placement.lists[name])
    return relevant


def active_first(pages: Sequence[PageState]) -> list[PageState]:
    """Pages in the order that decides an entry's state and fields: active ones first."""
    return [p for p in pages if p.role == "active"] + [p for p in pages if p.role == "archived"]


def place_entries(
    known: Mapping[str, KnownEntry],
    pages: Sequence[PageState],
    verdicts: Mapping[str, PageVerdict],
    observations: Mapping[str, PageObservation],
    *,
    new_id: Callable[[], str],
    keys_of: KeysOnce | None = None,
    released: Sequence[str] = (),
) -> Placement:
    """Each page's new list: matched if accepted, empty if cleared, else as it was (less
    its held members when `released`); then holds."""
    accepted = [p for p in active_first(pages) if verdicts[p.name].accepted]
    unavailable = {
        entry_id
        for p in pages
        if not verdicts[p.name].accepted and not verdicts[p.name].cleared
        for entry_id in p.members
        if not (p.name in released and entry_id in p.held)
    }
    candidates = [
        Candidate(e.entry_id, e.title, e.link, e.description, removed=e.state == "removed")
        for e in known.values()
    ]
    matched = match_cycle(
        {p.name: observations[p.name].entries for p in accepted},
        {p.name: p.members for p in accepted},
        candidates,
        unavailable=unavailable,
        new_id=new_id,
        keys_of=keys_of,
    )
    lists: Lists = {}
    for page in pages:
        if page.name in matched:
            lists[page.name] = tuple((i, fields) for i, fields in matched[page.name])
        elif verdicts[page.name].cleared:
            lists[page.name] = ()
        else:
            gone = page.held if page.name in released else frozenset()  # left at its last read
            lists[page.name] = tuple(
                (i, fields)
                for i, fields in zip(page.members, _padded(page), strict=True)
                if i not in gone
            )
    seen = tuple(dict.fromkeys(i for p in accepted for i, _ in matched[p.name]))
    if not departures_held(verdicts.values()):
        return Placement(lists=lists, seen=seen, held=(), holding_pages=())
    return hold_departures(pages, verdicts, Placement(lists, seen, held=(), holding_pages=()))


def hold_departures(
    pages: Sequence[PageState], verdicts: Mapping[str, PageVerdict], placement: Placement
) -> Placement:
    """The placement with departures held back on the active page they left (the hold rule).

    Held: an entry that left an active page and stands on no page whose list is known.
    One still on an active page, or on a page whose list is current (then it is
    archived), needs no hold.
    """
    lists = dict(placement.lists)
    placed = {
        entry_id
        for p in pages
        if p.role == "active" or verdicts[p.name].current
        for entry_id, _ in lists[p.name]
    }
    held: list[str] = []
    holding: list[str] = []
    for page in pages:
        verdict = verdicts[page.name]
        if page.role != "active" or not (verdict.accepted or verdict.cleared):
            continue
        back = [
            (entry_id, fields)
            for entry_id, fields in zip(page.members, _padded(page), strict=True)
            if entry_id not in placed
        ]
        if back:
            lists[page.name] += tuple(back)  # at the end: order never makes events
            placed.update(entry_id for entry_id, _ in back)
            held += [entry_id for entry_id, _ in back]
            holding.append(page.name)
    return replace(placement, lists=lists, held=tuple(held), holding_pages=tuple(holding))


def _padded(page: PageState) -> tuple[Entry | None, ...]:
    """The page's member fields, one per member (None where not recorded)."""
    missing = len(page.members) - len(page.member_fields)
    return page.member_fields[: len(page.members)] + (None,) * max(missing, 0)


def entry_outcomes(
    known: Mapping[str, KnownEntry],
    pages: Sequence[PageState],
    verdicts: Mapping[str, PageVerdict],
    placement: Placement,
    observations: Mapping[str, PageObservation],
    *,
    now: datetime,
    new_id: Callable[[], str],
    changed: Sequence[str],
) -> tuple[list[EntryUpdate], list[Event]]:
    """Each involved entry's new version (if any) and its event (if any); `changed`: the
    pages whose list changed this cycle."""
    # Entries on a page whose list changed, before or after this cycle: any other
    # entry stands where it stood, so its state and fields are as recorded. An entry
    # that stood only on a page since dropped from the config is left as it was:
    # no longer watching a page is not evidence that its entries went away.
    relevant = _relevant_entries(pages, set(changed), placement)
    standing: dict[str, list[PageState]] = {}  # of the relevant entries: where they stand
    shows: dict[str, dict[str, Entry | None]] = {}
    for page in active_first(pages):
        shows[page.name] = {}
        for entry_id, fields in placement.lists[page.name]:
            if entry_id in relevant:
                standing.setdefault(entry_id, []).append(page)
                shows[page.name].setdefault(entry_id, fields)
    # In the order events come out: members of every page before the cycle, then the rest.
    involved = dict.fromkeys(
        [i for p in pages for i in p.members if i in relevant] + list(standing)
    )
    updates: list[EntryUpdate] = []
    events: list[Event] = []
    for entry_id in involved:
        old = known.get(entry_id)
        places = standing.get(entry_id, [])
        if places:
            page_name = places[0].name
            fields = shows[page_name][entry_id]
            baseline = verdicts[page_name].baseline
        else:
            page_name, fields, baseline = (old.page if old else ""), None, False
        if fields is None:  # removed, or not recorded (a database from before v3): as last known
            assert old is not None
            fields = Entry(old.title, old.link, old.description)
        capture_id = _capture(observations, page_name)
        if capture_id is None and old is not None:
            # It stands on a page not read this cycle (an archived page it was already on):
            # the evidence is the capture of the page it left.
            capture_id = _capture(observations, old.page)
        state = _state_of(places)
        kind, changes, new_version = _outcome(old, state, fields, baseline=baseline)
        if old is not None and not new_version and old.page == page_name:
            continue
        updates.append(
            EntryUpdate(
                entry_id=entry_id,
                title=fields.title,
                link=fields.link,
                description=fields.description,
                state=state,
                page=page_name,
                capture_id=capture_id,
                is_new=old is None,
                new_version=new_version,
            )
        )
        if kind is not None:
            events.append(
                Event(
                    id=new_id(),
                    kind=kind,
                    at=now,
                    page=page_name,
                    entry_id=entry_id,
                    title=fields.title,
                    link=fields.link,
                    description=fields.description,
                    changes=changes or None,
                    capture_id=capture_id,
                )
            )
    return updates, events


def _outcome(
    old: KnownEntry | None, state: EntryState, fields: Entry, *, baseline: bool
) -> tuple[EventKind | None, dict[str, Change], bool]:
    """The event kind (None: no event) and field changes of one entry, and whether its
    fields or state differ from the version stored (a new entry's always do)."""
    if old is None:
        return (None if baseline else "added"), {}, True
    changes = _changes(old, fields)
    kind = _transition(old.state, state, bool(changes))
    if baseline and state != "removed":
        kind = None  # a page's baseline records what it finds; it reports nothing
    # Fields that differ only in canonical form are stored as found, without an event.
    new_version = old.fields != (fields.title, fields.link, fields.description)
    return kind, changes, new_version or old.state != state


def _state_of(places: Sequence[PageState]) -> EntryState:
    if any(p.role == "active" for p in places):
        return "active"
    if places:
        return "archived"
    return "removed"


def _capture(observations: Mapping[str, PageObservation], page: str) -> int | None:
    obs = observations.get(page)
    return obs.capture_id if obs else None


def _changes(old: KnownEntry, new: Entry) -> dict[str, Change]:
    """The fields that changed, compared in canonical form; each with its before and after."""
    changes = {}
    if not same_text(old.title, new.title):
        changes["title"] = Change(old.title, new.title)
    if not same_link(old.link, new.link):
        changes["link"] = Change(old.link, new.link)
    if not same_text(old.description, new.description):
        changes["description"] = Change(old.description, new.description)
    return changes


def _transition(before: EntryState, after: EntryState, changed: bool) -> EventKind | None:
    """The event kind for a known entry, or None when nothing a reader cares about moved."""
    if before == after:
        return "changed" if changed else None
    if after == "archived":
        return "archived"
    if after == "active":
        return "restored"
    return "removed"
