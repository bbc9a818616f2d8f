"""An Outbox in memory: the reference for the stores' semantics, and the tests' outbox."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from msgspec import Struct
from msgspec.structs import replace

from monitor.models import Event
from monitor.notify.outbox import Delivery, NewDelivery

DeliveryState = Literal["pending", "sent", "failed"]


class DeliveryRecord(Struct, frozen=True):
    """A delivery and what became of it, as `monitor notify status` shows it."""

    delivery: Delivery
    state: DeliveryState = "pending"
    last_error: str | None = None
    last_at: datetime | None = None


class MemoryOutbox:
    """Deliveries and events in dicts; each call is "committed" at once, as a store's are."""

    def __init__(self) -> None:
        self.records: dict[int, DeliveryRecord] = {}
        self.stored_events: dict[str, Event] = {}
        self._next_id = 1

    def add(self, events: Iterable[Event], planned: Iterable[NewDelivery]) -> list[int]:
        """Record a cycle's events and its planned deliveries (one transaction in a store)."""
        for event in events:
            self.stored_events[event.id] = event
        ids = []
        for new in planned:
            joined = self._joinable(new)
            if joined is not None:  # a digest joining one still unsent (NewDelivery.joins)
                more = tuple(i for i in new.event_ids if i not in joined.event_ids)
                grown = replace(joined, event_ids=joined.event_ids + more)
                self.records[joined.id] = replace(self.records[joined.id], delivery=grown)
                ids.append(joined.id)
                continue
            delivery = Delivery(
                id=self._next_id,
                target=new.target,
                target_url_hash=new.target_url_hash,
                event_ids=new.event_ids,
                created_at=new.created_at,
                attempts=0,
                next_at=new.next_at,
            )
            self.records[delivery.id] = DeliveryRecord(delivery)
            ids.append(delivery.id)
            self._next_id += 1
        return ids

    def _joinable(self, new: NewDelivery) -> Delivery | None:
        """The digest `new` joins: its target's newest queued at `new.joins`, never tried."""
        if new.joins is None:
            return None
        for record in sorted(self.records.values(), key=lambda r: -r.delivery.id):
            d = record.delivery
            same_target = (d.target, d.target_url_hash) == (new.target, new.target_url_hash)
            if (same_target and record.state == "pending" and d.attempts == 0
                    and d.created_at == new.joins and d.next_at == d.created_at):  # fmt: skip
                return d
        return None

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries with next_at <= now, oldest first, bar those queued after one
        to the same target that waits: a target gets them in order."""
        pending = sorted((r.delivery for r in self.records.values() if r.state == "pending"),
                         key=lambda d: d.id)  # fmt: skip
        waiting: set[str] = set()  # targets with an earlier delivery not due yet
        ready = []
        for delivery in pending:
            if delivery.target_url_hash in waiting:
                continue
            if delivery.next_at > now:
                waiting.add(delivery.target_url_hash)
            else:
                ready.append(delivery)
        return ready[:limit]

    def mark_sent(self, delivery_id: int, at: datetime) -> None:
        record = self.records[delivery_id]
        self.records[delivery_id] = replace(
            record,
            delivery=replace(record.delivery, attempts=record.delivery.attempts + 1),
            state="sent",
            last_at=at,
        )

    def mark_retry(self, delivery_id: int, at: datetime, next_at: datetime, error: str) -> None:
        record = self.records[delivery_id]
        delivery = replace(record.delivery, attempts=record.delivery.attempts + 1, next_at=next_at)
        self.records[delivery_id] = replace(record, delivery=delivery, last_error=error, last_at=at)

    def mark_failed(self, delivery_id: int, at: datetime, error: str) -> None:
        record = self.records[delivery_id]
        self.records[delivery_id] = replace(record, state="failed", last_error=error, last_at=at)

    def events(self, ids: Sequence[str]) -> list[Event]:
        return [self.stored_events[i] for i in ids if i in self.stored_events]

    def states(self) -> dict[DeliveryState, int]:
        """How many deliveries are pending, sent and failed."""
        counts: dict[DeliveryState, int] = {"pending": 0, "sent": 0, "failed": 0}
        for record in self.records.values():
            counts[record.state] += 1
        return counts
