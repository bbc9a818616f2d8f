"""Imported history, derived (pure): archived captures in capture-time order -> history.

Each capture is one cycle of `classify_cycle` that observes only its own page (the other
pages are not checked), from an empty state: the same rules, guards and identity as live
checks, and each page's first capture is its silent baseline. Two things are backfill's own:

- the hold in capture time: an entry that leaves an active page waits for the archived
  pages' next captures (then one `archived`, or `removed` dated at the capture it left),
  for at most `hold_for`, after which it is `removed` dated at the capture it left;
- ids that derive from what they record, so a rebuild gives the same ids: an event's
  from its capture, its entry and its kind; an entry only the archive saw from what
  identifies it (its first version's link slug, else title, else description), not from
  the capture that first showed it, so a wider range keeps its id and its events'.

`derive_history` then makes an entry the archive and live checks both saw ONE entry
(match.py's identity rules against the fields live checks first saw).
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from msgspec import Struct, field
from msgspec.structs import replace

from monitor.canonical import comparable_text
from monitor.classify import classify_cycle
from monitor.match import Candidate, match_cycle, slug_key, title_key
from monitor.models import Entry, Event, KnownEntry, PageObservation, PageState, Role
from monitor.store.backfill import (
    CaptureKey,
    ImportedEntry,
    ImportedHistory,
    ImportedVersion,
    LiveEntry,
)

NAMESPACE = uuid.UUID("6f0c1c52-5d1e-4c8a-9a43-0b6e2f7d3a11")  # monitor's imported history


class ReplayStep(Struct, frozen=True):
    """One archived capture, extracted: a cycle that observes its page only."""

    key: CaptureKey
    page: str
    at: datetime
    capture_id: int
    entries: tuple[Entry, ...]


class ReplayRules(Struct, frozen=True):
    """The guards of live checks, and backfill's hold limit in capture time."""

    confirm_checks: int
    anomaly_ratio: float
    hold_for_s: float


class _Held(Struct):
    """An entry that left an active page, waiting for the archived pages to answer."""

    left: ReplayStep
    fields: Entry
    waiting: set[str]


class Replay(Struct):
    """What the replay derived, with the replay's own entry ids."""

    events: list[tuple[Event, CaptureKey]] = field(default_factory=list)
    versions: dict[str, list[ImportedVersion]] = field(default_factory=dict)
    last_seen: dict[str, datetime] = field(default_factory=dict)

    def add_version(self, version: ImportedVersion) -> None:
        """A new version, unless it repeats the last one (a hold that came to nothing)."""
        own = self.versions.setdefault(version.entry_id, [])
        last = own[-1] if own else None
        if last is not None and (last.state, last.title, last.link, last.description) == (
            version.state, version.title, version.link, version.description
        ):  # fmt: skip
            return
        own.append(version)

    def release_removed(self, entry_id: str, hold: _Held) -> None:
        """A held entry is `removed`, dated at the capture it left."""
        step, fields = hold.left, hold.fields
        event = Event(id="", kind="removed", at=step.at, page=step.page, entry_id=entry_id,
                      title=fields.title, link=fields.link, description=fields.description,
                      capture_id=step.capture_id)  # fmt: skip
        self.events.append((event, step.key))
        self.add_version(
            ImportedVersion(
                entry_id,
                step.at,
                "removed",
                step.page,
                fields.title,
                fields.link,
                fields.description,
                step.capture_id,
            )
        )


def step_ids(key: CaptureKey) -> Callable[[], str]:
    """Ids for what one capture creates: the same capture gives the same ids, in order."""
    counter = itertools.count()
    return lambda: str(uuid.uuid5(NAMESPACE, f"{key.text}#{next(counter)}"))


def replay_captures(
    pages: Sequence[tuple[str, Role]],
    steps: Sequence[ReplayStep],
    rules: ReplayRules,
    *,
    end: datetime,
) -> Replay:
    """Classify every capture in order; holds still open at `end` past hold_for are removed."""
    roles = dict(pages)
    archived = {name for name, role in pages if role == "archived"}
    states = [PageState(name=name, role=role) for name, role in pages]
    known: dict[str, KnownEntry] = {}
    held: dict[str, _Held] = {}
    out = Replay()
    for step in steps:
        _expire(held, step.at, rules.hold_for_s, out)
        before = {p.name: p.members for p in states}
        observations = {step.page: PageObservation(step.page, "ok", step.entries,
                                                   capture_id=step.capture_id)}  # fmt: skip
        # The other pages stand as their last capture showed them: answered, unchanged, so
        # classify_cycle's own hold (for pages that did not answer) leaves the hold in
        # capture time to this replay, which dates and limits it (hold_for).
        for state in states:
            if state.name != step.page and state.baselined and state.status == "ok":
                observations[state.name] = PageObservation(state.name, "unchanged")
        result = classify_cycle(
            known,
            states,
            observations,
            now=step.at,
            confirm_checks=rules.confirm_checks,
            anomaly_ratio=rules.anomaly_ratio,
            new_id=step_ids(step.key),
        )
        states = list(result.pages)
        standing = {m for p in states for m in p.members}
        left: set[str] = set()
        if roles.get(step.page) == "active" and archived - {step.page}:
            left = {m for m in before[step.page] if m not in standing and m not in held}
        emitted = _events(result.events, held, left, step, out)
        for entry_id in left:
            old = known[entry_id]
            held[entry_id] = _Held(step, Entry(old.title, old.link, old.description), set(archived))
        for update in result.entries:
            known[update.entry_id] = KnownEntry(
                update.entry_id,
                update.title,
                update.link,
                update.description,
                update.state,
                update.page,
            )
            if update.new_version and update.entry_id not in held:
                out.add_version(ImportedVersion(update.entry_id, step.at, update.state,
                                                update.page, update.title, update.link,
                                                update.description, step.capture_id))  # fmt: skip
        for entry_id in result.seen:
            out.last_seen[entry_id] = step.at
        if roles.get(step.page) == "archived":
            _answered(held, step.page, standing, emitted, out)
    _expire(held, end, rules.hold_for_s, out)
    return out


def _expire(held: dict[str, _Held], now: datetime, hold_for_s: float, out: Replay) -> None:
    for entry_id, hold in list(held.items()):
        if (now - hold.left.at).total_seconds() > hold_for_s:
            out.release_removed(entry_id, held.pop(entry_id))


def _events(
    events: Sequence[Event], held: dict[str, _Held], left: set[str], step: ReplayStep, out: Replay
) -> set[str]:
    """Pass the cycle's events on, holding removals from an active page; the entries named."""
    named: set[str] = set()
    for event in events:
        entry_id, key = event.entry_id, step.key
        if entry_id is not None:
            named.add(entry_id)
            if entry_id in left:
                continue  # classify_cycle saw it removed; the archived pages have not answered
            hold = held.pop(entry_id, None)
            if hold is not None and event.kind == "removed":  # a hold classify_cycle resolved
                event, key = replace(event, at=hold.left.at, capture_id=hold.left.capture_id), \
                    hold.left.key  # fmt: skip
            elif hold is not None and event.kind == "restored":  # back before it was missed
                if not event.changes:
                    continue
                event = replace(event, kind="changed")
        out.events.append((event, key))
    return named


def _answered(
    held: dict[str, _Held], page: str, standing: set[str], emitted: set[str], out: Replay
) -> None:
    """An archived page answered: holds it was the last to answer for, without them, end."""
    for entry_id, hold in list(held.items()):
        hold.waiting.discard(page)
        if not hold.waiting and entry_id not in standing and entry_id not in emitted:
            out.release_removed(entry_id, held.pop(entry_id))


def event_id(key: CaptureKey, event: Event) -> str:
    """An imported event's id: UUID5 of its capture, its entry (or page) and its kind."""
    subject = event.entry_id or f"page:{event.page}"
    return str(uuid.uuid5(NAMESPACE, f"{key.text}|{subject}|{event.kind}"))


def live_ids(replay: Replay, live: Sequence[LiveEntry]) -> dict[str, str]:
    """Each replay entry's id: the live entry it is by match.py's identity rules, or its own."""
    finals = [(entry_id, own[-1]) for entry_id, own in replay.versions.items() if own]
    unknown = itertools.count()
    found = match_cycle(
        {"archive": [Entry(v.title, v.link, v.description) for _, v in finals]},
        {},
        [Candidate(e.entry_id, e.title, e.link, e.description, removed=e.removed) for e in live],
        unavailable=set(),
        new_id=lambda: f"unmatched{next(unknown):020d}",
    )
    known = {e.entry_id for e in live}
    ids = {}
    for (replay_id, _), (matched, _) in zip(finals, found["archive"], strict=True):
        ids[replay_id] = matched if matched in known else replay_id
    return ids


def archive_ids(replay: Replay, own_ids: Sequence[str]) -> dict[str, str]:
    """The final id of each entry only the archive saw (`own_ids`, replay ids): a UUID5 of
    its first version's link slug (match.py's second identity tier), else normalised
    title, else description, and of how many entries before it (in first-seen order) had
    the same."""
    firsts = sorted((replay.versions[i][0].at, i) for i in own_ids if replay.versions.get(i))
    taken: Counter[str] = Counter()
    ids = {}
    for _, replay_id in firsts:
        first = replay.versions[replay_id][0]
        # The slug, not the whole link: an entry first seen on the archived page (a range
        # that starts after its move) has the same one as when it was first seen active.
        key = (f"slug:{slug_key(first.link)}" if slug_key(first.link)
               else f"title:{title_key(first.title)}" if title_key(first.title)
               else f"description:{comparable_text(first.description)}")  # fmt: skip
        ids[replay_id] = str(uuid.uuid5(NAMESPACE, f"entry|{key}|{taken[key]}"))
        taken[key] += 1
    return ids


def derive_history(
    replay: Replay, live: Sequence[LiveEntry], *, first_live: datetime | None
) -> ImportedHistory:
    """The replay under final ids: live entries' ids where the archive saw them too, ids
    from what identifies them for the others."""
    ids = live_ids(replay, live)
    ids.update(archive_ids(replay, [r for r, final in ids.items() if final == r]))
    known = {e.entry_id for e in live}
    events = []
    for event, key in sorted(replay.events, key=lambda pair: pair[0].at):
        entry_id = ids.get(event.entry_id, event.entry_id) if event.entry_id else None
        final = replace(event, entry_id=entry_id, source="backfill")
        events.append(replace(final, id=event_id(key, final)))
    versions: list[ImportedVersion] = []
    entries: list[ImportedEntry] = []
    for replay_id, own in replay.versions.items():
        entry_id = ids.get(replay_id, replay_id)
        own = [replace(v, entry_id=entry_id) for v in own]
        if entry_id not in known:
            own, row = _archive_only(own, replay.last_seen.get(replay_id), first_live)
            entries.append(row)
        versions.extend(own)
    versions.sort(key=lambda v: v.at)
    return ImportedHistory(tuple(events), tuple(versions), tuple(entries))


def _archive_only(
    own: list[ImportedVersion], last_seen: datetime | None, first_live: datetime | None
) -> tuple[list[ImportedVersion], ImportedEntry]:
    """An entry live checks never saw: on no page when they began, so removed from then on."""
    last = own[-1]
    if first_live is not None and last.state != "removed":
        last = replace(last, at=first_live, state="removed", capture_id=None)
        own = [*own, last]
    row = ImportedEntry(last.entry_id, last.title, last.link, last.description, last.state,
                        last.page, own[0].at, last_seen or own[0].at, last.at)  # fmt: skip
    return own, row
