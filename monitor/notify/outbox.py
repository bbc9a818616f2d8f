"""The outbox: what a committed cycle owes each target, and the loop that delivers it.

A cycle writes its deliveries (plan_deliveries) in the transaction that writes its
events; after the commit, deliver_due() sends what is due. Each mark_* is committed on
its own by the store, so a process killed between a send and its mark repeats that one
message and nothing else: every event is delivered at least once, and at most twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from msgspec import Struct, field

from monitor.models import Event
from monitor.notify.message import Message, digest_message, event_message
from monitor.notify.policy import Target, expired, matches, next_attempt
from monitor.notify.redact import redact_url

SEND_TIMEOUT_S = 30.0
MIN_SEND_S = 1.0  # a send is given at least this long, even at the end of a budget
BATCH = 200  # deliveries read per round; a backlog larger than this waits for the next call

SendFn = Callable[[str, Message, float], "SendResultLike"]


class SendResultLike(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def error(self) -> str | None: ...


class NewDelivery(Struct, frozen=True):
    """A delivery a cycle adds to the outbox: its events for one target, due at once."""

    target: int  # index of the target in config order (0-based)
    target_url_hash: str
    event_ids: tuple[str, ...]
    created_at: datetime
    next_at: datetime
    # A digest that joins this target's digest queued at `joins` (the listing cycle of the
    # same `monitor check`) while it is still unsent: one message for the whole check.
    joins: datetime | None = None


class Delivery(Struct, frozen=True):
    """One pending message: one event (or a digest of a cycle's events) for one target."""

    id: int
    target: int  # index of the target in config order (0-based), stable while config unchanged
    target_url_hash: str  # sha256 of the target URL, so a reordered config is detected
    event_ids: tuple[str, ...]
    created_at: datetime
    attempts: int
    next_at: datetime


class Outbox(Protocol):
    """The store's side of delivery; each mark_* is committed on its own."""

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries with next_at <= now, oldest first (by id)."""
        ...

    def mark_sent(self, delivery_id: int, at: datetime) -> None: ...

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None:
        """One more attempt failed: attempts += 1, keep `error`, wait until next_at."""
        ...

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None:
        """Given up: never due again; `status` shows it with `error`."""
        ...

    def events(self, ids: Sequence[str]) -> list[Event]:
        """The events of these ids that exist, in the order of `ids`."""
        ...


class DeliveryReport(Struct, frozen=True):
    """What one deliver_due() call did; errors are redacted and name the target (from 1)."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    left: int = 0  # due but not tried: the time budget ran out
    errors: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """One line per problem, for stderr."""
        return [f"notify: {e}" for e in self.errors] + (
            [f"notify: {self.left} deliveries left for later (time budget spent)"]
            if self.left
            else []
        )


def url_hash(url: str) -> str:
    """sha256 of a target URL: recognises a target after the config is reordered."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def plan_deliveries(
    targets: Sequence[Target],
    events: Sequence[Event],
    *,
    cycle_at: datetime,
    joins: datetime | None = None,
) -> list[NewDelivery]:
    """What a committed cycle adds: one delivery per matching event and target, or one digest.

    `joins`: the entry-page phase of a `check` passes its cycle's time, so that a digest
    target's link events join the cycle's digest (SPEC: one message per cycle).
    """
    planned: list[NewDelivery] = []
    for index, target in enumerate(targets):
        ids = [e.id for e in events if matches(target, e)]
        if not ids:
            continue
        hashed = url_hash(target.url)
        if target.digest:
            planned.append(NewDelivery(index, hashed, tuple(ids), cycle_at, cycle_at, joins))
        else:
            planned += [NewDelivery(index, hashed, (i,), cycle_at, cycle_at) for i in ids]
    return planned


def deliver_due(
    outbox: Outbox,
    targets: Sequence[Target],
    *,
    now: datetime,
    budget_s: float,
    cap_s: float,
    base_url: str | None,
    send: SendFn | None = None,
    timeout_s: float = SEND_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
    stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Send what is due, target by target in turn; no send starts once budget_s is spent.

    Each send's timeout is cut to what is left of the budget (at least MIN_SEND_S), so a
    target that hangs holds the caller about budget_s at most. A target that fails is not
    asked again in this call: its other due deliveries wait with it (mark_retry). Once
    stop() is true no send starts: what is left stays due.
    """
    if send is None:
        from monitor.notify.send import send as send_apprise  # apprise loads only when used

        send = send_apprise
    start = clock()
    hashes = {url_hash(t.url): i for i, t in enumerate(targets)}
    counts = {"sent": 0, "retried": 0, "failed": 0}
    errors: list[str] = []
    down: dict[int, tuple[datetime, str]] = {}  # target -> (next_at, why) after a failure
    pending = _round_robin(outbox.due(now, BATCH))
    for n, delivery in enumerate(pending):
        if clock() - start >= budget_s or (stop is not None and stop()):
            return _report(counts, errors, left=len(pending) - n)
        at = now + timedelta(seconds=clock() - start)
        index = _resolve(delivery, targets, hashes)
        if index is None:
            outbox.mark_failed(delivery.id, at, "target no longer in the config")
            counts["failed"] += 1
            continue
        target = targets[index]
        if index in down:
            next_at, why = down[index]
            outbox.mark_retry(delivery.id, at, next_at, f"not tried: {why}")
            counts["retried"] += 1
            continue
        # send() may take its timeout plus a second: the budget's rest, less that second.
        left_s = max(budget_s - (clock() - start) - 1.0, MIN_SEND_S)
        outcome, final = _attempt(outbox, delivery, target, base_url, send, min(timeout_s, left_s))
        at = now + timedelta(seconds=clock() - start)
        if outcome is None:
            outbox.mark_sent(delivery.id, at)
            counts["sent"] += 1
            continue
        label = f"target {index + 1} ({redact_url(target.url)})"
        if final or expired(delivery.created_at, at, target.give_up_after_s):
            outbox.mark_failed(delivery.id, at, outcome)
            counts["failed"] += 1
            errors.append(f"{label}: gave up: {outcome}")
            continue
        next_at = next_attempt(delivery.attempts + 1, at, cap_s)
        outbox.mark_retry(delivery.id, at, next_at, outcome)
        down[index] = (next_at, f"an earlier delivery to this target failed: {outcome}")
        counts["retried"] += 1
        errors.append(f"{label}: will retry: {outcome}")
    return _report(counts, errors, left=0)


def _attempt(
    outbox: Outbox,
    delivery: Delivery,
    target: Target,
    base_url: str | None,
    send: SendFn,
    timeout_s: float,
) -> tuple[str | None, bool]:
    """(None, _) when the message was delivered, else (why not, redacted; whether final)."""
    events = outbox.events(delivery.event_ids)
    if not events:
        return "its events are no longer in the store", True
    if target.digest or len(events) > 1:
        message = digest_message(events, base_url)
    else:
        message = event_message(events[0], base_url)
    result = send(target.url, message, timeout_s)
    if result.ok:
        return None, False
    return result.error or "delivery failed", False


def _resolve(delivery: Delivery, targets: Sequence[Target], hashes: dict[str, int]) -> int | None:
    """The target's index now: by position if its URL is unchanged, else by URL anywhere."""
    if 0 <= delivery.target < len(targets):
        if url_hash(targets[delivery.target].url) == delivery.target_url_hash:
            return delivery.target
    return hashes.get(delivery.target_url_hash)


def _round_robin(deliveries: list[Delivery]) -> list[Delivery]:
    """Oldest first per target, targets taking turns: one slow target cannot starve the rest."""
    queues: dict[int, list[Delivery]] = {}
    for d in deliveries:
        queues.setdefault(d.target, []).append(d)
    ordered: list[Delivery] = []
    while queues:
        for key in list(queues):
            ordered.append(queues[key].pop(0))
            if not queues[key]:
                del queues[key]
    return ordered


def _report(counts: dict[str, int], errors: list[str], *, left: int) -> DeliveryReport:
    return DeliveryReport(
        sent=counts["sent"],
        retried=counts["retried"],
        failed=counts["failed"],
        left=left,
        errors=tuple(errors),
    )
