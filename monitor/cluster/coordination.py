"""What the producer and the workers agree on through Redis: pending groups, one producer.

A group is "pending" from the moment the producer enqueues its task until the
task ends: the key monitor:pending:GROUP holds the task's id. The producer sets
it (SET NX, so two ticks never both enqueue) with a TTL of task_timeout plus
the visibility margin; the task sets it again when it starts (its run is
bounded by task_timeout from there) and deletes it when it ends, whatever the
outcome, if it still names this task. A worker killed mid-task leaves the key
to expire, about when Redis hands the task to another worker, which sets it
again. When the key has expired but the group's last task (monitor:enqueued:GROUP)
still waits in the broker's queue, or unacknowledged (no worker running, or all
busy for longer than the TTL), the producer marks it pending again and enqueues
nothing: a group is never queued twice, however long the workers are away. The
alternative, `celery inspect`, asks every worker and waits for answers on every
tick, and does not see the queue.

The producer lock is monitor:producer, SET NX with a TTL, renewed while the
producer runs, deleted when it stops: a second producer refuses to start, and
one that died frees the lock within PRODUCER_LOCK_TTL_S. A renewal that finds no
lock at all (Redis restarted without its data) takes it again: only another
producer's lock stops this one.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import redis

from monitor.errors import LockedError, MonitorError

PENDING_PREFIX = "monitor:pending:"
ENQUEUED_PREFIX = "monitor:enqueued:"  # the id of each group's last task enqueued
# Where kombu's Redis transport keeps a queue's messages (a list named after the queue)
# and the delivered, not yet acknowledged ones (a hash of [message, exchange, key]).
UNACKED_KEY = "unacked"
PRODUCER_KEY = "monitor:producer"
NEXT_RUN_KEY = "monitor:producer:next_run_at"  # for `monitor status`, renewed with the lock
PRODUCER_LOCK_TTL_S = 30
PRODUCER_RENEW_S = 10.0

# Delete (or extend) a key only if it still holds our value: never another task's marker.
_DELETE_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# The producer lock: extended while ours, taken again if gone (Redis restarted without its
# data, or the key expired while Redis was out of reach); 0 only if another producer has it.
_RENEW_OR_RETAKE = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end
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


def remember_enqueued(client: redis.Redis, group: str, task_id: str) -> None:
    """The group's task just sent: what still_queued() looks for."""
    client.set(ENQUEUED_PREFIX + group, task_id)


def still_queued(client: redis.Redis, group: str, queue: str) -> str | None:
    """The id of the group's last task if it still waits in `queue`, or was delivered and
    not acknowledged (a worker runs it, or died running it): then it will run."""
    raw = client.get(ENQUEUED_PREFIX + group)
    if not isinstance(raw, bytes):
        return None
    task_id = raw.decode()
    messages = [*client.lrange(queue, 0, -1), *client.hvals(UNACKED_KEY)]
    return task_id if any(_task_id(m) == task_id for m in messages) else None


def _task_id(message: bytes | str) -> str | None:
    """The Celery task id of a message as kombu stores it (JSON; unacked: in a list)."""
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    headers = data.get("headers") if isinstance(data, dict) else None
    task_id = headers.get("id") if isinstance(headers, dict) else None
    return task_id if isinstance(task_id, str) else None


def pending_task(client: redis.Redis, group: str) -> str | None:
    """The id of the task the group waits for, if any."""
    value = client.get(pending_key(group))
    return value.decode() if isinstance(value, bytes) else None


def announce_next_run(client: redis.Redis, when: str | None) -> None:
    """The producer's next enqueue time, for `monitor status`; gone with the producer."""
    if when is None:
        client.delete(NEXT_RUN_KEY)
    else:
        client.set(NEXT_RUN_KEY, when, ex=PRODUCER_LOCK_TTL_S)


def producer_status(broker: str) -> dict[str, str | None]:
    """Who holds the producer lock ("" when nobody), and its next enqueue time, if known."""
    client = connect(broker)
    try:
        holder, when = client.get(PRODUCER_KEY), client.get(NEXT_RUN_KEY)
    except (redis.RedisError, OSError) as error:
        raise broker_error(broker, error) from None
    finally:
        client.close()
    return {
        "holder": holder.decode(errors="replace") if isinstance(holder, bytes) else "",
        "next_run_at": when.decode() if isinstance(when, bytes) and holder else None,
    }


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
        """Extend the lock, or take it again if nobody holds it (a restarted Redis); False
        only when another producer holds it."""
        kept = self.client.eval(_RENEW_OR_RETAKE, 1, PRODUCER_KEY, self.token, PRODUCER_LOCK_TTL_S)
        return bool(kept)

    def release(self) -> None:
        self.client.eval(_DELETE_IF_OURS, 1, PRODUCER_KEY, self.token)
