"""One message to one Apprise URL, bounded in time; the only module that imports apprise."""

from __future__ import annotations

import contextvars
import logging
import threading
import warnings

import apprise
from apprise.manager_plugins import NotificationManager
from msgspec import Struct

from monitor.notify.message import Message
from monitor.notify.redact import redact_text, redact_url

ERROR_CHARS = 400

# Apprise logs failures, and some plugins log URLs or response bodies: its records never
# reach monitor's own logs. What a failure says comes back, redacted, in SendResult.error.
_APPRISE_LOGGER = logging.getLogger("apprise")
_APPRISE_LOGGER.propagate = False
# Apprise loads its plugins on first use, and on Python 3.11-3.12 its email plugin
# imports the deprecated `imghdr`: load them now, once, with that one warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    NotificationManager().load_modules()  # type: ignore[no-untyped-call]
# One send at a time in this process, and each send's log handler keeps only the records
# logged in its own context: a timed-out send still running elsewhere cannot leak its
# messages (and the secrets of its URL) into the error of the next one.
_SENDING = threading.Lock()
_CURRENT: contextvars.ContextVar[object] = contextvars.ContextVar("monitor_notify_send")


class SendResult(Struct, frozen=True):
    """What one send gave: ok, or an error that names the (redacted) target and the cause."""

    ok: bool
    error: str | None = None


class _Collect(logging.Handler):
    """Keeps the messages apprise logs at WARNING and above for one send."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if _CURRENT.get(None) is not self:
            return
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a malformed record must not break the send
            self.messages.append(str(record.msg))


def send(url: str, message: Message, timeout_s: float) -> SendResult:
    """Send `message` to `url` through Apprise within about `timeout_s`; never raises."""
    with _SENDING:
        collect = _Collect()
        _APPRISE_LOGGER.addHandler(collect)
        level = _APPRISE_LOGGER.level
        if _APPRISE_LOGGER.getEffectiveLevel() > logging.WARNING:
            _APPRISE_LOGGER.setLevel(logging.WARNING)
        token = _CURRENT.set(collect)
        try:
            ok, cause = _send(url, message, timeout_s)
        except Exception as exc:  # a plugin's bug is a failed delivery, not a crash
            ok, cause = False, f"{type(exc).__name__}: {exc}"
        finally:
            _CURRENT.reset(token)
            _APPRISE_LOGGER.removeHandler(collect)
            _APPRISE_LOGGER.setLevel(level)
    if ok:
        return SendResult(ok=True)
    said = "; ".join(dict.fromkeys(m.strip() for m in collect.messages if m.strip()))
    error = f"{redact_url(url)}: " + redact_text(cause + (f" ({said})" if said else ""), url)
    if len(error) > ERROR_CHARS:
        error = error[: ERROR_CHARS - 1] + "…"
    return SendResult(ok=False, error=error)


def _send(url: str, message: Message, timeout_s: float) -> tuple[bool, str]:
    """(ok, cause): one Apprise object for this target, run in a thread we stop waiting for."""
    obj = apprise.Apprise()
    if not obj.add(url):
        return False, "not a usable Apprise URL"
    for service in obj:
        # cto/rto (connect and read timeouts) bound each request of HTTP plugins; the
        # thread below bounds everything else (an SMTP dialogue, a plugin that retries).
        service.socket_connect_timeout = min(service.socket_connect_timeout, timeout_s)
        service.socket_read_timeout = min(service.socket_read_timeout, timeout_s)
    outcome: list[bool] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(
                bool(
                    obj.notify(
                        title=message.title,
                        body=message.body,
                        body_format=apprise.NotifyFormat.TEXT,
                    )
                )
            )
        except Exception as exc:
            failure.append(exc)

    # A daemon thread: a receiver that never answers cannot keep the process alive.
    context = contextvars.copy_context()  # the worker's records are this send's
    worker = threading.Thread(
        target=context.run, args=(run,), name="monitor-notify-send", daemon=True
    )
    worker.start()
    # A little past timeout_s, so that the plugin's own timeout reports first when it can.
    worker.join(timeout_s + 1.0)
    if worker.is_alive():
        return False, f"no answer within {timeout_s:g}s"
    if failure:
        return False, f"{type(failure[0]).__name__}: {failure[0]}"
    if not outcome or not outcome[0]:
        return False, "delivery failed"
    return True, ""
