"""What the producer and the workers agree on through Redis: pending groups, one producer.

A group is "pending" from the moment the producer enqueues its task until the
task ends: the key monitor:pending:GROUP holds the task's id. The producer sets
it (SET NX, so two ticks never both enqueue) with a TTL of task_timeout plus
the visibility margin; the task sets it again when it starts (its run is
bounded by task_timeout from there) and deletes it when it ends, whatever the
outcome, if it still names this task. A worker killed mid-task leaves the key
to expire, about when Redis hands the task to another worker, which sets it
again. A key that expires while its task still waits in the queue (workers
all busy for longer than the TTL) lets the producer enqueue the group once
more; the second task then finds the group locked or runs one more cycle,
both harmless. The alternative, `celery inspect`, asks every worker and
waits for answers on every tick, and does not see the queue.

The producer lock is monitor:producer, SET NX with a TTL, renewed while the
producer runs, deleted when it stops: a second producer refuses to start, and
one that died frees the lock within PRODUCER_LOCK_TTL_S.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis

from monitor.errors import LockedError, MonitorError

PENDING_PREFIX = "monitor:pending:"
PRODUCER_KEY = "monitor:producer"
PRODUCER_LOCK_TTL_S = 30
PRODUCER_RENEW_S = 10.0

# Delete (or extend) a key only if it still holds our value: never another task's marker.
_DELETE_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""


def connect(broker: str) -> redis.Redis:
    """A client on the broker's Redis (the coordination keys live beside Celery's queues)."""
    return redis.Redis.from_url(broker, socket_timeout=10, socket_connect_timeout=10)


def broker_error(broker: str, error: Exception) -> MonitorError:
    """A Redis failure as a MonitorError naming the key and the server, without a password."""
    return MonitorError(f"cluster.broker: cannot use {_redacted(broker)}: {error}")


def _redacted(url: str) -> str:
    head, at, tail = url.rpartition("@")
    return f"redis://…@{tail}" if at else url


def pending_key(group: str) -> str:
    return PENDING_PREFIX + group


def mark_pending(client: redis.Redis, group: str, task_id: str, ttl_s: float) -> bool:
    """Mark `group` pending for task_id; False if it already was (then enqueue nothing)."""
    return bool(client.set(pending_key(group), task_id, nx=True, ex=max(1, int(ttl_s))))


def refresh_pending(client: redis.Redis, group: str, task_id: str, ttl_s: float) -> None:
    """The task started: it holds the mark for at most ttl_s from now."""
    client.set(pending_key(group), task_id, ex=max(1, int(ttl_s)))


def clear_pending(client: redis.Redis, group: str, task_id: str) -> None:
    """The task ended: the group may be enqueued again (unless the mark is another task's)."""
    client.eval(_DELETE_IF_OURS, 1, pending_key(group), task_id)


def pending_task(client: redis.Redis, group: str) -> str | None:
    """The id of the task the group waits for, if any."""
    value = client.get(pending_key(group))
    return value.decode() if isinstance(value, bytes) else None


class ProducerLock:
    """One producer at a time: monitor:producer, held with a TTL and renewed."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.token = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"

    def acquire(self) -> None:
        """Take the lock; LockedError naming the holder when another producer has it."""
        if not self.client.set(PRODUCER_KEY, self.token, nx=True, ex=PRODUCER_LOCK_TTL_S):
            holder = self.client.get(PRODUCER_KEY)
            shown = holder.decode(errors="replace") if isinstance(holder, bytes) else "unknown"
            raise LockedError(f"a monitor producer is already running ({shown})")

    def renew(self) -> bool:
        """Extend the lock; False if it was lost (expired and taken by another producer)."""
        extended = self.client.eval(
            _EXTEND_IF_OURS, 1, PRODUCER_KEY, self.token, PRODUCER_LOCK_TTL_S
        )
        return bool(extended)

    def release(self) -> None:
        self.client.eval(_DELETE_IF_OURS, 1, PRODUCER_KEY, self.token)
