"""Notifications: events -> messages -> an outbox delivered through Apprise, never lost.

message and policy are pure; redact hides secrets of Apprise URLs; send is the only
module that imports apprise; outbox plans and delivers against the store's Outbox
protocol; memory holds an in-memory Outbox (the reference for a store's behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from monitor.config import Config
    from monitor.models import Event
    from monitor.notify.outbox import NewDelivery


def queued_deliveries(
    config: Config, events: Sequence[Event], now: datetime
) -> tuple[NewDelivery, ...]:
    """The notifications to queue with a phase's events, in its transaction: a cycle's or
    an entry-page phase's (none without [[notify]], and then no notify module is loaded)."""
    if not config.notify or not events:
        return ()
    from monitor.notify.outbox import plan_deliveries

    return tuple(plan_deliveries(config.notify, events, cycle_at=now))
