"""Page guards (pure): what one page's check means for its list of entries.

SPEC.md's page-level rules, one page at a time: does this check's list replace
the page's last known list (accepted), is the page held (error, gone or
anomalous, not yet confirmed, or not checked), or cleared (gone, confirmed)?
Each verdict carries its page events, once per episode. `departures_held`
says, from the verdicts alone, whether an entry leaving an active page must
wait for an archived page to answer (the hold rule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from msgspec import Struct
from msgspec.structs import replace

from monitor.match import KeysOf, distinct_items
from monitor.models import Event, PageEventKind, PageObservation, PageState

BAD_STATUSES = ("error", "gone", "anomaly")


class PageVerdict(Struct, frozen=True):
    """What one page's check means for its entries, and the page events it raises."""

    state: PageState  # the page's new state (members not yet updated)
    accepted: bool  # the observed entries replace the page's list
    cleared: bool  # the page is confirmed gone: its list becomes empty
    baseline: bool  # first good check: record entries, emit no entry events
    events: tuple[tuple[PageEventKind, str], ...]  # (kind, detail)
    # the page's list is known as of this check: accepted, cleared, or answered unchanged
    current: bool = False


def judge_page(
    state: PageState,
    observation: PageObservation | None,
    *,
    confirm_checks: int,
    anomaly_ratio: float,
    keys_of: KeysOf | None = None,
) -> PageVerdict:
    """Apply the page-level guards: accept, hold or clear the page's entries.

    `keys_of` is the cycle's memo of the items' identity keys (match.KeysOnce), if any.
    """
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
        return PageVerdict(
            ok, accepted=False, cleared=False, baseline=False, events=recovered, current=True
        )

    # a featured copy is not one more entry
    count = len(distinct_items(observation.entries, keys_of))
    if not state.baselined:
        if count == 0:
            detail = observation.detail or "no item matched the `item` selector at the first check"
            return _troubled(state, "error", "page-error", detail, confirm_checks)
        ok = replace(state, status="ok", streak=0, normal_count=count, baselined=True)
        return PageVerdict(
            ok, accepted=True, cleared=False, baseline=True, events=recovered, current=True
        )

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
        return PageVerdict(
            ok, accepted=True, cleared=False, baseline=False, events=events, current=True
        )

    ok = replace(state, status="ok", streak=0, normal_count=count)
    return PageVerdict(
        ok, accepted=True, cleared=False, baseline=False, events=recovered, current=True
    )


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
    new_state = replace(state, status=status, streak=streak)
    confirmed_gone = status == "gone" and streak >= confirm_checks
    cleared = confirmed_gone and bool(state.members)
    if cleared:
        # The page is confirmed gone: when it comes back, its entries count afresh.
        new_state = replace(new_state, normal_count=0)
    return PageVerdict(
        new_state,
        accepted=False,
        cleared=cleared,
        baseline=False,
        events=events,
        current=confirmed_gone,
    )


def _recovery_detail(state: PageState, observation: PageObservation) -> str:
    if observation.outcome == "unchanged":
        return f"answered again after {state.status} (unchanged)"
    return (
        f"answered again after {state.status}: {len(distinct_items(observation.entries))} entries"
    )


def judge_pages(
    pages: Sequence[PageState],
    observations: Mapping[str, PageObservation],
    *,
    confirm_checks: int,
    anomaly_ratio: float,
    keys_of: KeysOf | None = None,
) -> dict[str, PageVerdict]:
    """Every configured page's verdict (a page not observed this cycle is held as it was)."""
    return {
        page.name: judge_page(
            page,
            observations.get(page.name),
            confirm_checks=confirm_checks,
            anomaly_ratio=anomaly_ratio,
            keys_of=keys_of,
        )
        for page in pages
    }


def departures_held(verdicts: Iterable[PageVerdict]) -> bool:
    """True when an entry leaving an active page must wait: an archived page's list is not known.

    An archived page in error, gone or anomalous (not yet confirmed), or not checked,
    may or may not list the entry: until it answers, neither `archived` nor `removed`
    can be told. A function of the verdicts alone, so a backfill can apply it at each
    capture time.
    """
    return any(v.state.role == "archived" and not v.current for v in verdicts)


def page_events(
    pages: Sequence[PageState],
    verdicts: Mapping[str, PageVerdict],
    observations: Mapping[str, PageObservation],
    *,
    now: datetime,
    new_id: Callable[[], str],
) -> list[Event]:
    """The page events of the verdicts, in config order."""
    events = []
    for page in pages:
        obs = observations.get(page.name)
        for kind, detail in verdicts[page.name].events:
            events.append(
                Event(
                    id=new_id(),
                    kind=kind,
                    at=now,
                    page=page.name,
                    detail=detail,
                    capture_id=obs.capture_id if obs else None,
                )
            )
    return events
