"""Match and classify (pure): last known state + this cycle's observations -> events.

Two steps, both without I/O or clock:

1. `judge_page` applies SPEC.md's page-level guards to each page on its own:
   does this check's list of entries replace the page's last known list
   (accepted), or is the page held (error, gone or anomalous, not yet
   confirmed), or cleared (gone, confirmed)? It also emits the page events,
   once per episode.
2. `classify_cycle` matches every accepted item to an entry ever seen
   (`match.py`'s tiers), works out each entry's new state from all pages
   together (so a move between pages is one event), and emits entry events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from monitor.match import Candidate, match_cycle
from monitor.models import (
    Change,
    CycleResult,
    Entry,
    EntryState,
    EntryUpdate,
    Event,
    EventKind,
    KnownEntry,
    PageEventKind,
    PageObservation,
    PageState,
)

BAD_STATUSES = ("error", "gone", "anomaly")


@dataclass(frozen=True)
class PageVerdict:
    """What one page's check means for its entries, and the page events it raises."""

    state: PageState  # the page's new state (members not yet updated)
    accepted: bool  # the observed entries replace the page's list
    cleared: bool  # the page is confirmed gone: its list becomes empty
    baseline: bool  # first good check: record entries, emit no entry events
    events: tuple[tuple[PageEventKind, str], ...]  # (kind, detail)


def judge_page(
    state: PageState,
    observation: PageObservation | None,
    *,
    confirm_checks: int,
    anomaly_ratio: float,
) -> PageVerdict:
    """Apply the page-level guards: accept, hold or clear the page's entries."""
    if observation is None:  # not checked this cycle: keeps its last known entries
        return PageVerdict(state, accepted=False, cleared=False, baseline=False, events=())
    outcome = observation.outcome
    if outcome == "error":
        return _troubled(state, "error", "page-error", observation.detail, confirm_checks)
    if outcome == "gone":
        return _troubled(state, "gone", "page-gone", observation.detail, confirm_checks)

    recovered: tuple[tuple[PageEventKind, str], ...] = ()
    if state.status in BAD_STATUSES:
        recovered = (("page-recovered", _recovery_detail(state, observation)),)
    if outcome == "unchanged":
        ok = replace(state, status="ok", streak=0)
        return PageVerdict(ok, accepted=False, cleared=False, baseline=False, events=recovered)

    count = len(observation.entries)
    if not state.baselined:
        if count == 0:
            detail = observation.detail or "no item matched the `item` selector at the first check"
            return _troubled(state, "error", "page-error", detail, confirm_checks)
        ok = replace(state, status="ok", streak=0, normal_count=count, baselined=True)
        return PageVerdict(ok, accepted=True, cleared=False, baseline=True, events=recovered)

    if state.normal_count > 0 and count < anomaly_ratio * state.normal_count:
        detail = f"{count} entries, last normal count {state.normal_count}"
        streak = state.streak + 1 if state.status == "anomaly" else 1
        events: tuple[tuple[PageEventKind, str], ...] = ()
        if state.status != "anomaly":
            events = (("page-anomaly", detail),)
        if streak < confirm_checks:
            held = replace(state, status="anomaly", streak=streak)
            return PageVerdict(held, accepted=False, cleared=False, baseline=False, events=events)
        # Confirmed: the smaller page is the new normal; the episode ends without page-recovered.
        ok = replace(state, status="ok", streak=0, normal_count=count)
        return PageVerdict(ok, accepted=True, cleared=False, baseline=False, events=events)

    ok = replace(state, status="ok", streak=0, normal_count=count)
    return PageVerdict(ok, accepted=True, cleared=False, baseline=False, events=recovered)


def _troubled(
    state: PageState,
    status: str,
    kind: PageEventKind,
    detail: str,
    confirm_checks: int,
) -> PageVerdict:
    """An error or gone check: one event per episode; gone clears after confirm_checks."""
    same_episode = state.status == status
    streak = state.streak + 1 if same_episode else 1
    events: tuple[tuple[PageEventKind, str], ...] = () if same_episode else ((kind, detail),)
    new_state = replace(state, status=status, streak=streak)  # type: ignore[arg-type]
    cleared = status == "gone" and streak >= confirm_checks and bool(state.members)
    if cleared:
        # The page is confirmed gone: when it comes back, its entries count afresh.
        new_state = replace(new_state, normal_count=0)
    return PageVerdict(new_state, accepted=False, cleared=cleared, baseline=False, events=events)


def _recovery_detail(state: PageState, observation: PageObservation) -> str:
    if observation.outcome == "unchanged":
        return f"answered again after {state.status} (unchanged)"
    return f"answered again after {state.status}: {len(observation.entries)} entries"


def classify_cycle(
    known: Mapping[str, KnownEntry] | Callable[[], Mapping[str, KnownEntry]],
    pages: Sequence[PageState],
    observations: Mapping[str, PageObservation],
    *,
    now: datetime,
    confirm_checks: int,
    anomaly_ratio: float,
    new_id: Callable[[], str],
) -> CycleResult:
    """Classify one cycle: all configured pages in config order, the checked ones observed.

    `known` (every entry ever seen) may be a function that loads it: it is only
    called when some page's entries changed, so an unchanged cycle never loads them.
    """
    verdicts = {
        page.name: judge_page(
            page,
            observations.get(page.name),
            confirm_checks=confirm_checks,
            anomaly_ratio=anomaly_ratio,
        )
        for page in pages
    }
    events: list[Event] = []
    for page in pages:
        for page_kind, detail in verdicts[page.name].events:
            obs = observations.get(page.name)
            events.append(
                Event(
                    id=new_id(),
                    kind=page_kind,
                    at=now,
                    page=page.name,
                    detail=detail,
                    capture_id=obs.capture_id if obs else None,
                )
            )
    if not any(v.accepted or v.cleared for v in verdicts.values()):
        # No page's list of entries changed: no entry can have changed either.
        return CycleResult(
            events=tuple(events),
            entries=(),
            pages=tuple(verdicts[p.name].state for p in pages),
        )
    if callable(known):
        known = known()
    # Active pages first: an entry on both an active and an archived page takes
    # its fields from the active one.
    ordered = [p for p in pages if p.role == "active"] + [p for p in pages if p.role == "archived"]
    accepted = [p for p in ordered if verdicts[p.name].accepted]
    held_members = {
        entry_id
        for p in pages
        if not verdicts[p.name].accepted and not verdicts[p.name].cleared
        for entry_id in p.members
    }
    candidates = [
        Candidate(e.entry_id, e.title, e.link, e.description, removed=e.state == "removed")
        for e in known.values()
    ]
    matched = match_cycle(
        {p.name: observations[p.name].entries for p in accepted},
        {p.name: p.members for p in accepted},
        candidates,
        unavailable=held_members,
        new_id=new_id,
    )

    new_members: dict[str, tuple[str, ...]] = {}
    new_fields: dict[str, tuple[Entry | None, ...]] = {}
    for page in pages:
        verdict = verdicts[page.name]
        if verdict.accepted:
            new_members[page.name] = tuple(entry_id for entry_id, _ in matched[page.name])
            new_fields[page.name] = tuple(entry for _, entry in matched[page.name])
        elif verdict.cleared:
            new_members[page.name], new_fields[page.name] = (), ()
        else:
            new_members[page.name], new_fields[page.name] = page.members, page.member_fields

    # Where each entry stands now, in the order that decides its state and fields.
    observed: dict[str, dict[str, Entry]] = {}
    for page in accepted:
        for entry_id, entry in matched[page.name]:
            observed.setdefault(entry_id, {})[page.name] = entry
    # What each page shows of each member, as recorded when its list was last accepted.
    shown = {
        p.name: {m: f for m, f in zip(p.members, p.member_fields, strict=False) if f is not None}
        for p in pages
        if not verdicts[p.name].accepted
    }
    standing: dict[str, list[PageState]] = {}
    for page in ordered:
        for entry_id in new_members[page.name]:
            standing.setdefault(entry_id, []).append(page)

    # Entries on the configured pages before or after this cycle. An entry that
    # stood only on a page since dropped from the config is left as it was:
    # no longer watching a page is not evidence that its entries went away.
    involved = [i for p in pages for i in p.members] + list(standing)
    updates: list[EntryUpdate] = []
    entry_events: list[Event] = []
    seen: list[str] = []
    for entry_id in dict.fromkeys(involved):
        old = known.get(entry_id)
        places = standing.get(entry_id, [])
        state: EntryState = _state_of(places)
        if places:
            home = places[0]
            fields = observed.get(entry_id, {}).get(home.name)
            if fields is None:  # its page is unchanged, held or unchecked: as it shows it
                fields = shown.get(home.name, {}).get(entry_id)
            if fields is None:  # not recorded (a database from before v3): as last known
                assert old is not None
                fields = Entry(old.title, old.link, old.description)
            page_name = home.name
            capture_id = _capture(observations, page_name)
            baseline = verdicts[page_name].baseline
        else:
            assert old is not None
            fields = Entry(old.title, old.link, old.description)
            page_name = old.page
            capture_id = _capture(observations, page_name)
            baseline = False
        if entry_id in observed:
            seen.append(entry_id)

        if old is None:
            kind: EventKind | None = None if baseline else "added"
            changes: dict[str, Change] = {}
            new_version = True
        else:
            changes = _changes(old, fields)
            kind = _transition(old.state, state, bool(changes))
            new_version = bool(changes) or old.state != state
            if baseline and state != "removed":
                # A page's baseline records what it finds; it reports nothing.
                kind = None
            if not new_version and old.page == page_name:
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
            entry_events.append(
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

    new_pages = tuple(
        replace(
            verdicts[p.name].state, members=new_members[p.name], member_fields=new_fields[p.name]
        )
        for p in pages
    )
    return CycleResult(
        events=tuple(events + entry_events),
        entries=tuple(updates),
        pages=new_pages,
        seen=tuple(seen),
        accepted_pages=tuple(p.name for p in accepted),
        cleared_pages=tuple(p.name for p in pages if verdicts[p.name].cleared),
    )


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
    pairs = {
        "title": (old.title, new.title),
        "link": (old.link, new.link),
        "description": (old.description, new.description),
    }
    return {name: Change(a, b) for name, (a, b) in pairs.items() if a != b}


def _transition(before: EntryState, after: EntryState, changed: bool) -> EventKind | None:
    """The event kind for a known entry, or None when nothing a reader cares about moved."""
    if before == after:
        return "changed" if changed else None
    if after == "archived":
        return "archived"
    if after == "active":
        return "restored"
    return "removed"
