"""The event-kind registry: every SPEC kind once, with a label, a tone, a scope and a meaning."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from monitor import models
from monitor.kinds import (
    ENTRY_EVENT_KINDS,
    EVENT_KINDS,
    KINDS,
    LINK_EVENT_KINDS,
    PAGE_EVENT_KINDS,
    EventKind,
    kind_info,
)
from monitor.models import Event

SPEC_KINDS = {
    "entry": ["added", "changed", "archived", "restored", "removed"],
    "page": ["page-error", "page-recovered", "page-gone", "page-anomaly"],
    "link": ["link-gone", "link-recovered", "link-changed"],
}


def test_the_registry_holds_exactly_the_spec_kinds() -> None:
    """The Literal, the tuples and the table name the same twelve kinds, grouped by scope."""
    assert list(ENTRY_EVENT_KINDS) == SPEC_KINDS["entry"]
    assert list(PAGE_EVENT_KINDS) == SPEC_KINDS["page"]
    assert list(LINK_EVENT_KINDS) == SPEC_KINDS["link"]
    assert set(get_args(EventKind)) == set(EVENT_KINDS) == set(KINDS)
    for scope, names in SPEC_KINDS.items():
        assert [kind_info(n).scope for n in names] == [scope] * len(names)


@pytest.mark.parametrize("name", EVENT_KINDS)
def test_every_kind_has_a_label_tone_and_meaning(name: str) -> None:
    """Each kind reads well: a capitalised label, a known tone, a one-sentence meaning."""
    info = kind_info(name)
    assert info.name == name
    assert info.label[0].isupper() and info.tone in ("good", "bad", "warn", "info")
    assert info.meaning.endswith(".")


@pytest.mark.parametrize(
    ("name", "label", "scope"),
    [("page-melted", "Page melted", "page"), ("link-moved", "Link moved", "link"),
     ("split", "Split", "entry"), ("", "Event", "entry")],
    ids=["page-prefix", "link-prefix", "plain", "empty"],
)
def test_an_unknown_kind_gets_a_neutral_record(name: str, label: str, scope: str) -> None:
    """A kind this version does not know never raises: neutral tone, label from its name."""
    info = kind_info(name)
    assert (info.label, info.tone, info.scope) == (label, "info", scope)


def test_models_still_exports_the_kinds() -> None:
    """Code importing the kinds from monitor.models keeps working."""
    assert models.EVENT_KINDS is EVENT_KINDS
    assert models.PAGE_EVENT_KINDS is PAGE_EVENT_KINDS


def test_link_event_json_carries_detail_and_no_description() -> None:
    """A link event's JSON has entry_id, title, link and detail (SPEC "Entry pages")."""
    event = Event("1", "link-gone", datetime(2026, 1, 1, tzinfo=UTC), "active", entry_id="e",
                  title="T", link="https://x.org/t", detail="HTTP 404", capture_id=3)
    assert event.is_link_event and not event.is_page_event
    assert event.to_json() == {
        "id": "1", "kind": "link-gone", "at": "2026-01-01T00:00:00Z", "page": "active",
        "entry_id": "e", "title": "T", "link": "https://x.org/t", "detail": "HTTP 404",
        "capture_id": 3, "source": "check",
    }


def test_imported_event_json_says_backfill() -> None:
    """An event imported from a web archive says so in its JSON: source "backfill"."""
    event = Event("1", "added", datetime(2026, 1, 1, tzinfo=UTC), "active", entry_id="e",
                  title="T", description="", source="backfill")
    assert event.to_json()["source"] == "backfill"
