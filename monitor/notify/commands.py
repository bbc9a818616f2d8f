"""`monitor notify test` and `monitor notify status`, and status's notifications line.

Targets are numbered from 1 in config order, as the user counts them; every URL shown
is redacted. The outbox knows a target by its URL's hash, so a reordered config still
finds its deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from msgspec import Struct

from monitor.config import Config, NotifyTarget
from monitor.errors import ConfigError, NoDatabaseYet, StoreError
from monitor.models import format_time
from monitor.notify.message import Message, probe_message
from monitor.notify.outbox import SendResultLike, url_hash
from monitor.notify.redact import redact_url
from monitor.store import open_store
from monitor.store.outbox import NotifyStatusRow

PROBE_TIMEOUT_S = 20.0
GONE = "(no longer in the config)"

Send = Callable[[str, Message, float], SendResultLike]


class ProbeResult(Struct, frozen=True):
    """What `notify test` got from one target."""

    number: int  # from 1, in config order
    url: str  # redacted
    ok: bool
    error: str | None = None

    def line(self) -> str:
        """One line for a person: the target, and whether the message arrived."""
        verdict = "sent" if self.ok else f"FAILED: {self.error or 'delivery failed'}"
        return f"target {self.number} {self.url}: {verdict}"


class TargetStatus(Struct, frozen=True):
    """One target's deliveries, as `notify status` shows them."""

    number: int | None  # from 1, in config order; None: no longer in the config
    url: str  # redacted
    pending: int = 0
    sent: int = 0
    failed: int = 0
    oldest_pending: datetime | None = None
    next_at: datetime | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Stable keys, ISO 8601 UTC times."""
        return {
            "target": self.number,
            "url": self.url,
            "pending": self.pending,
            "sent": self.sent,
            "failed": self.failed,
            "oldest_pending": self.oldest_pending and format_time(self.oldest_pending),
            "next_attempt_at": self.next_at and format_time(self.next_at),
            "last_error": self.last_error,
        }

    def line(self) -> str:
        """`#1 json://host/hook: 2 pending, 10 sent, 0 failed; next attempt …; last error: …`."""
        name = f"#{self.number}" if self.number is not None else "-"
        text = f"{name} {self.url}: {self.pending} pending, {self.sent} sent, {self.failed} failed"
        if self.next_at is not None:
            text += f"; next attempt {format_time(self.next_at)}"
        if self.last_error:
            text += f"; last error: {self.last_error}"
        return text


def select_targets(config: Config, number: int | None) -> list[tuple[int, NotifyTarget]]:
    """(number from 1, target) for every target, or the Nth; ConfigError (exit 2) if none."""
    targets = list(enumerate(config.notify, start=1))
    if not targets:
        raise ConfigError(f"{config.path}: no [[notify]] target (see docs/notify.md)")
    if number is None:
        return targets
    if not 1 <= number <= len(targets):
        raise ConfigError(
            f"--target {number}: {config.path} has {len(targets)} [[notify]] "
            f"target{'s' if len(targets) != 1 else ''} (1 to {len(targets)})"
        )
    return [targets[number - 1]]


def send_probes(
    config: Config, number: int | None, *, now: datetime, send: Send | None = None
) -> list[ProbeResult]:
    """Send the test message to every target (or the Nth), one after the other."""
    chosen = select_targets(config, number)
    if send is None:
        from monitor.notify.send import send as send_apprise  # apprise loads only when used

        send = send_apprise
    message = probe_message(now)
    results = []
    for n, target in chosen:
        result = send(target.url, message, PROBE_TIMEOUT_S)
        results.append(ProbeResult(n, redact_url(target.url), result.ok, result.error))
    return results


def target_statuses(
    targets: Sequence[NotifyTarget], rows: Sequence[NotifyStatusRow]
) -> list[TargetStatus]:
    """Each configured target's counts (zeros if none), then those no longer configured."""
    hashes = [url_hash(t.url) for t in targets]
    found: dict[int | None, list[NotifyStatusRow]] = {}
    for row in rows:
        found.setdefault(_number(row, hashes), []).append(row)
    statuses = [
        _combine(n, redact_url(t.url), found.get(n, [])) for n, t in enumerate(targets, start=1)
    ]
    if None in found:
        statuses.append(_combine(None, GONE, found[None]))
    return statuses


def read_statuses(config: Config) -> list[TargetStatus]:
    """target_statuses() from the store, read-only; zeros when there is no database yet."""
    rows: list[NotifyStatusRow] = []
    try:
        store = open_store(config, write=False)
    except NoDatabaseYet:  # a damaged database is an error, not "nothing queued"
        return target_statuses(config.notify, rows)
    try:
        rows = store.outbox().notify_status()
    except StoreError:
        pass  # a database from before the outbox table: nothing was queued
    finally:
        store.close()
    return target_statuses(config.notify, rows)


def notify_summary(statuses: Sequence[TargetStatus]) -> dict[str, Any] | None:
    """`monitor status`'s notifications: totals, the first target in trouble, each target."""
    if not statuses:
        return None
    troubled = [s for s in statuses if s.last_error and (s.pending or s.failed)]
    problem = None
    if troubled:
        first = troubled[0]
        name = f"target #{first.number}" if first.number is not None else GONE
        problem = f"{name}: {first.last_error}"
    return {
        "pending": sum(s.pending for s in statuses),
        "failed": sum(s.failed for s in statuses),
        "problem": problem,
        "targets": [s.to_json() for s in statuses],
    }


def summary_line(summary: dict[str, Any]) -> str:
    """`notifications: 2 pending, 1 failed (target #2: …)`, from notify_summary()."""
    line = f"notifications: {summary['pending']} pending, {summary['failed']} failed"
    return line + (f" ({summary['problem']})" if summary["problem"] else "")


def _number(row: NotifyStatusRow, hashes: Sequence[str]) -> int | None:
    """The target's number now: by position if its URL is unchanged, else by URL anywhere."""
    if 0 <= row.target < len(hashes) and hashes[row.target] == row.target_url_hash:
        return row.target + 1
    if row.target_url_hash in hashes:
        return hashes.index(row.target_url_hash) + 1
    return None


def _combine(number: int | None, url: str, rows: Sequence[NotifyStatusRow]) -> TargetStatus:
    pending_at = [r.oldest_pending for r in rows if r.oldest_pending is not None]
    next_at = [r.next_at for r in rows if r.next_at is not None]
    errors = [r.last_error for r in rows if r.last_error]
    return TargetStatus(
        number=number,
        url=url,
        pending=sum(r.pending for r in rows),
        sent=sum(r.sent for r in rows),
        failed=sum(r.failed for r in rows),
        oldest_pending=min(pending_at) if pending_at else None,
        next_at=min(next_at) if next_at else None,
        last_error=errors[-1] if errors else None,
    )
