"""Entry ids people type: a whole id, or a unique prefix of at least MIN_PREFIX characters."""

from __future__ import annotations

from msgspec import Struct

from monitor.store.base import ReadStore

MIN_PREFIX = 4  # shorter prefixes match too much to be meant
MAX_CANDIDATES = 10  # an ambiguous prefix lists this many of its matches


class EntryLookup(Struct, frozen=True):
    """What a typed id names: one entry (`entry_id`), or none, or several (`candidates`)."""

    typed: str
    entry_id: str | None
    candidates: tuple[str, ...] = ()

    @property
    def too_short(self) -> bool:
        """The typed text names no entry and is too short to be read as a prefix."""
        return self.entry_id is None and len(self.typed) < MIN_PREFIX

    @property
    def problem(self) -> str | None:
        """Why the typed id names no single entry, in words; None when it does."""
        if self.entry_id is not None:
            return None
        if len(self.candidates) > 1:
            more = "…" if len(self.candidates) >= MAX_CANDIDATES else ""
            listed = ", ".join(self.candidates) + more
            return f"{self.typed!r} is the start of several entry ids: {listed}; type more of it"
        if len(self.typed) < MIN_PREFIX:
            return f"no entry {self.typed!r} (a prefix needs at least {MIN_PREFIX} characters)"
        return f"no entry {self.typed!r} (no entry id is or starts with it)"


def find_entry(store: ReadStore, typed: str) -> EntryLookup:
    """The entry a typed id names: exactly, else as the unique prefix of one id."""
    typed = typed.strip()
    if not typed:
        return EntryLookup(typed, None)
    if store.entry(typed) is not None:
        return EntryLookup(typed, typed)
    if len(typed) < MIN_PREFIX:
        return EntryLookup(typed, None)
    found = store.entry_ids(typed, limit=MAX_CANDIDATES)
    if len(found) == 1:
        return EntryLookup(typed, found[0])
    return EntryLookup(typed, None, tuple(found))
