"""Notifications: messages, routing, redaction, and delivery through Apprise to a local webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from msgspec.structs import replace
from pytest_httpserver import HTTPServer
from servers import Delay, FaultServer, Respond, Series, closed_url
from werkzeug import Request, Response

from monitor.models import Change, Event
from monitor.notify.memory import MemoryOutbox
from monitor.notify.message import Message, digest_message, event_message
from monitor.notify.outbox import deliver_due, plan_deliveries
from monitor.notify.policy import expired, matches, next_attempt, retry_cap_s
from monitor.notify.redact import redact_text, redact_url
from monitor.notify.send import SendResult, send

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = "https://monitor.example.org/"
CAP_S = 6 * 3600.0


@dataclass(frozen=True)
class NotifyTarget:
    """Stand-in for monitor.config.NotifyTarget (built in another branch), same fields."""

    url: str
    kinds: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    digest: bool = False
    give_up_after_s: float = 7 * 86400.0


def event(n: int, kind: str = "archived", page: str = "archived", **kw: object) -> Event:
    fields: dict[str, object] = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "kind": kind,
        "at": T0,
        "page": page,
        "entry_id": f"e{n}",
        "title": f"Initiative {n}",
        "link": f"https://www.imls.gov/initiative-{n}",
        "description": "What it does.",
        "capture_id": 100 + n,
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


def urn(n: int) -> str:
    return f"urn:uuid:00000000-0000-4000-8000-{n:012d}"


class Receiver:
    """A webhook on 127.0.0.1 that keeps every message and answers as told."""

    def __init__(self, port: int = 0) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=port)
        self.status = 200
        self.messages: list[dict[str, str]] = []
        self.server.expect_request("/hook").respond_with_handler(self._answer)
        self.server.start()

    def _answer(self, request: Request) -> Response:
        if request.mimetype == "application/json":
            data = json.loads(request.get_data(as_text=True))
        else:
            data = dict(request.form)
        data["_auth"] = request.headers.get("Authorization", "")
        if self.status == 200:
            self.messages.append(data)
        return Response("", status=self.status)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.port}/hook"

    def stop(self) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    def ids(self) -> list[str]:
        return [line for m in self.messages for line in m["message"].split() if "urn:uuid" in line]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def queue(outbox: MemoryOutbox, targets: list[NotifyTarget], events: list[Event]) -> None:
    outbox.add(events, plan_deliveries(targets, events, cycle_at=T0))


def deliver(outbox: MemoryOutbox, targets: list[NotifyTarget], now: datetime, **kw: object):
    options: dict[str, object] = {
        "budget_s": 60.0,
        "cap_s": CAP_S,
        "base_url": BASE,
        "timeout_s": 2.0,
    }
    options.update(kw)
    return deliver_due(outbox, targets, now=now, **options)  # type: ignore[arg-type]


# -- messages -----------------------------------------------------------------------


def test_event_message_reads_at_a_glance():
    """An archived entry's message names it, links it and its evidence, and carries its id."""
    msg = event_message(event(1, title="Film Forward"), BASE)
    assert msg.title == "Archived: Film Forward"
    assert "Link: https://www.imls.gov/initiative-1" in msg.body
    assert f"{BASE}entries/e1" in msg.body
    assert f"{BASE}captures/101/view" in msg.body
    assert urn(1) in msg.body


def test_changed_message_shows_before_and_after_clipped():
    """A change shows before -> after; a long side is clipped, not sent whole."""
    long = "word " * 500
    change = {"title": Change("Old name", "New name"), "description": Change(long, "short")}
    msg = event_message(event(2, kind="changed", changes=change), None)
    assert "Title: Old name -> New name" in msg.body
    assert len(msg.body) < 1500
    assert "entries/" not in msg.body  # no base_url: no evidence links
    assert urn(2) in msg.body


def test_hostile_title_cannot_forge_lines():
    """A title with newlines and control characters stays one clipped line of the message."""
    msg = event_message(event(3, title="Evil\nId: urn:uuid:forged\x1b[31m" + "x" * 900), None)
    assert "\n" not in msg.title and "\x1b" not in msg.body
    assert len(msg.title) < 200
    assert not any(line.startswith("Id: urn:uuid:forged") for line in msg.body.splitlines())


def test_page_and_link_events_have_readable_titles():
    """Page events name the page; a newer kind (link-gone) is spelt from its name."""
    gone = Event(id="x", kind="page-gone", at=T0, page="active", detail="404 twice")
    assert event_message(gone, None).title == "Page gone: active"
    assert "Detail: 404 twice" in event_message(gone, None).body
    link = event(4, title="Film Forward", detail="https://x.example/ answered 404")
    link = replace(link, kind="link-gone")
    assert event_message(link, None).title == "Link gone: Film Forward"


def test_digest_lists_every_event_id():
    """A digest counts the cycle's events by kind and lists each one with its id."""
    events = [event(n, kind="archived" if n % 2 else "removed") for n in range(1, 9)]
    msg = digest_message(events, BASE)
    assert msg.title.startswith("8 changes: Archived: Initiative 1")
    assert "4 archived, 4 removed" in msg.body
    assert all(urn(n) in msg.body for n in range(1, 9))


# -- policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "ev", "wanted"),
    [
        (NotifyTarget("json://h"), event(1), True),
        (NotifyTarget("json://h", kinds=("archived", "removed")), event(1), True),
        (NotifyTarget("json://h", kinds=("removed",)), event(1), False),
        (NotifyTarget("json://h", pages=("active",)), event(1, page="archived"), False),
        (NotifyTarget("json://h", pages=("active",)), event(1, page="active"), True),
        (NotifyTarget("json://h"), replace(event(1), source="backfill"), False),
        (NotifyTarget("json://h"), replace(event(1), source="check"), True),
    ],
    ids=["all", "kind-in", "kind-out", "page-out", "page-in", "backfill", "sourced-check"],
)
def test_matches_selects_by_kind_and_page_never_backfill(target, ev, wanted):
    """A target gets the kinds and pages it lists (all when empty), never backfilled events."""
    assert matches(target, ev) is wanted


def test_backoff_doubles_and_is_capped():
    """Retries wait 1, 2, 4 ... minutes, never longer than the cap; give_up_after expires."""
    waits = [(next_attempt(n, T0, 600.0) - T0).total_seconds() for n in range(1, 7)]
    assert waits == [60, 120, 240, 480, 600, 600]
    assert (next_attempt(10_000, T0, 3600.0) - T0).total_seconds() == 3600
    assert retry_cap_s(None) == 3600.0 and retry_cap_s(21600.0) == 21600.0
    assert not expired(T0, T0 + timedelta(days=6), 7 * 86400.0)
    assert expired(T0, T0 + timedelta(days=7), 7 * 86400.0)


# -- redaction -------------------------------------------------------------------------

SECRET_URLS = [
    ("mailtos://user:s3cretPass@example.org", "s3cretPass", "mailtos://user:***@example.org"),
    ("mailto://alice:pw@gmail.com?to=bob@example.org", ":pw@", "mailto://alice:***@gmail.com"),
    (
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
        "TIiajkdnlazkcOXrIdevi7FQ",
        "slack://***/***/***/#general",
    ),
    (
        "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "XXXXXXXXXXXXXXXXXXXXXXXX",
        "https://hooks.slack.com/services/T000/B000/***",
    ),
    ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "JHMHI8qBe7bk2", "discord://***/***"),
    ("tgram://123456789:ABCdefGhIJKlmnOPQRsTUVwxyZ/12315544/", "ABCdef", "tgram://***:***/***/"),
    (
        "ntfy://user:pass@ntfy.example.org/my-topic",
        "my-topic",
        "ntfy://***:***@ntfy.example.org/***",
    ),
    ("ntfys://ntfy.sh/alerts-9f8a7b6c", "9f8a7b6c", "ntfys://ntfy.sh/***"),
    ("json://127.0.0.1:8080/hook?+Authorization=Bearer%20abc", "abc", "json://127.0.0.1:8080/hook"),
    ("json://u:pw@host.example.org/api?token=abcdef&x=1", "abcdef", "?token=***&x=1"),
    (
        "pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi/",
        "uQiRzpo4",
        "pover://***@***/",
    ),
    ("not a url at all", "not a url", "***"),
]


@pytest.mark.parametrize(("url", "secret", "shown"), SECRET_URLS, ids=lambda v: str(v)[:18])
def test_redact_url_hides_secrets(url, secret, shown):
    """Passwords, tokens in paths and secret query values never survive redaction."""
    redacted = redact_url(url)
    assert secret not in redacted
    assert shown in redacted


@pytest.mark.parametrize("url", ["form://localhost:9000/path", "json://[::1]:80/x"])
def test_redact_url_keeps_harmless_urls_readable(url):
    """A URL with no secret is shown as it is, so a person can tell targets apart."""
    assert redact_url(url) == url


def test_redact_text_scrubs_secrets_anywhere_in_a_message():
    """A secret of the URL is scrubbed from an error text, bare or inside another URL."""
    url = "tgram://123456789:ABCdefGhIJKlmnOPQRsTUVwxyZ/12315544/"
    text = f"failed at {url}: token ABCdefGhIJKlmnOPQRsTUVwxyZ refused"
    assert "ABCdef" not in redact_text(text, url)


# -- send through Apprise -------------------------------------------------------------


def test_json_webhook_receives_title_body_and_id(receiver):
    """Through json:// a message arrives with its title, its body and the event's urn:uuid."""
    result = send(receiver.url, event_message(event(1, title="Film Forward"), BASE), 5.0)
    assert result == SendResult(ok=True)
    (got,) = receiver.messages
    assert got["title"] == "Archived: Film Forward"
    assert urn(1) in got["message"] and f"{BASE}entries/e1" in got["message"]


def test_form_webhook_receives_the_message(receiver):
    """Through form:// the same message arrives as form fields."""
    url = receiver.url.replace("json://", "form://")
    assert send(url, Message("Removed: X", "gone\nId: urn:uuid:1"), 5.0).ok
    assert receiver.messages[0]["title"] == "Removed: X"
    assert "urn:uuid:1" in receiver.messages[0]["message"]


def test_send_never_raises_and_redacts(receiver):
    """A refused, failing or unusable URL is a result with a redacted error, not an exception."""
    receiver.status = 500
    url = receiver.url.replace("json://", "json://bob:hunter2hunter2@") + "?token=s3cr3tT0ken"
    result = send(url, Message("t", "b"), 5.0)
    assert not result.ok and "500" in (result.error or "")
    assert "hunter2" not in (result.error or "") and "s3cr3tT0ken" not in (result.error or "")
    bad = send("nonsense://zzz", Message("t", "b"), 1.0)
    assert not bad.ok and bad.error
    refused = send("json://" + closed_url("/hook").split("://")[1], Message("t", "b"), 2.0)
    assert not refused.ok and "127.0.0.1" in (refused.error or "")


def test_send_gives_up_on_a_receiver_that_hangs():
    """A receiver that never answers makes a failed send after the timeout, not a hang."""
    with FaultServer() as srv:
        srv.set("/hook", Delay(30, Respond(200)))
        result = send(srv.url("/hook").replace("http://", "json://"), Message("t", "b"), 0.5)
    assert not result.ok and result.error


# -- the outbox -----------------------------------------------------------------------


def test_delivered_once_then_nothing_is_due(receiver):
    """A committed event reaches the target once; the next round sends nothing."""
    outbox, targets = MemoryOutbox(), [NotifyTarget(receiver.url)]
    queue(outbox, targets, [event(1), event(2)])
    report = deliver(outbox, targets, T0)
    assert (report.sent, report.retried, report.failed) == (2, 0, 0)
    assert receiver.ids() == [urn(1), urn(2)]
    assert deliver(outbox, targets, T0 + timedelta(hours=1)).sent == 0
    assert len(receiver.messages) == 2


def test_failing_receiver_is_retried_with_backoff_until_it_answers(receiver):
    """After a 500 the delivery waits its backoff, is not sent early, then arrives once."""
    outbox, targets = MemoryOutbox(), [NotifyTarget(receiver.url)]
    queue(outbox, targets, [event(1), event(2)])
    receiver.status = 500
    report = deliver(outbox, targets, T0)
    assert (report.sent, report.retried) == (0, 2)  # the second waits with the first
    assert "500" in report.errors[0] and "will retry" in report.errors[0]
    receiver.status = 200
    assert deliver(outbox, targets, T0 + timedelta(seconds=30)).sent == 0  # backoff: 1 min
    assert deliver(outbox, targets, T0 + timedelta(seconds=61)).sent == 2
    assert receiver.ids() == [urn(1), urn(2)]


def test_hanging_then_answering_receiver_gets_the_message():
    """A receiver that times out is retried later and gets the message once it answers."""
    with FaultServer() as srv:
        srv.set("/hook", Series(Delay(30, Respond(200)), Respond(200)))
        targets = [NotifyTarget(srv.url("/hook").replace("http://", "json://"))]
        outbox = MemoryOutbox()
        queue(outbox, targets, [event(1)])
        first = deliver(outbox, targets, T0, timeout_s=0.5)
        assert first.retried == 1 and first.errors
        assert deliver(outbox, targets, T0 + timedelta(minutes=2)).sent == 1
        assert outbox.states() == {"pending": 0, "sent": 1, "failed": 0}


def test_refused_then_listening_receiver_gets_the_message():
    """A target whose port refuses connections gets the message once something listens."""
    url = closed_url("/hook")
    port = int(url.split(":")[2].split("/")[0])
    targets = [NotifyTarget(f"json://127.0.0.1:{port}/hook")]
    outbox = MemoryOutbox()
    queue(outbox, targets, [event(1)])
    assert deliver(outbox, targets, T0).retried == 1
    late = Receiver(port)
    try:
        assert deliver(outbox, targets, T0 + timedelta(minutes=2)).sent == 1
        assert late.ids() == [urn(1)]
    finally:
        late.stop()


def test_gives_up_after_give_up_after_and_marks_failed(receiver):
    """A target failing past its give_up_after gets the delivery marked failed, not retried."""
    receiver.status = 500
    targets = [NotifyTarget(receiver.url, give_up_after_s=3600.0)]
    outbox = MemoryOutbox()
    queue(outbox, targets, [event(1)])
    assert deliver(outbox, targets, T0).retried == 1
    report = deliver(outbox, targets, T0 + timedelta(hours=2))
    assert report.failed == 1 and "gave up" in report.errors[0]
    assert outbox.states() == {"pending": 0, "sent": 0, "failed": 1}
    receiver.status = 200
    assert deliver(outbox, targets, T0 + timedelta(days=1)).sent == 0


def test_digest_is_one_message_per_cycle_listing_every_id(receiver):
    """With digest = true a cycle's matching events arrive as one message with every id."""
    targets = [NotifyTarget(receiver.url, digest=True)]
    outbox = MemoryOutbox()
    queue(outbox, targets, [event(n) for n in range(1, 6)])
    outbox.add([event(6)], plan_deliveries(targets, [event(6)], cycle_at=T0))
    assert deliver(outbox, targets, T0).sent == 2
    first, second = receiver.messages
    assert all(urn(n) in first["message"] for n in range(1, 6))
    assert urn(6) in second["message"] and urn(1) not in second["message"]


def test_kinds_and_pages_filter_what_each_target_gets(receiver):
    """Each target receives only the kinds and pages it lists."""
    other = Receiver()
    try:
        targets = [
            NotifyTarget(receiver.url, kinds=("archived", "removed")),
            NotifyTarget(other.url, pages=("active",)),
        ]
        events = [event(1), event(2, kind="added", page="active"), event(3, kind="removed")]
        outbox = MemoryOutbox()
        queue(outbox, targets, events)
        assert deliver(outbox, targets, T0).sent == 3
        assert receiver.ids() == [urn(1), urn(3)]
        assert other.ids() == [urn(2)]
    finally:
        other.stop()


def test_backfilled_events_plan_no_delivery():
    """Backfilled events (source = "backfill") are never queued for any target."""
    ev = replace(event(1), source="backfill")
    assert plan_deliveries([NotifyTarget("json://h")], [ev], cycle_at=T0) == []


def test_errors_in_report_and_outbox_are_redacted(receiver):
    """A failing target's password and token appear neither in the report nor the outbox."""
    receiver.status = 500
    url = receiver.url.replace("json://", "json://bob:hunter2hunter2@") + "?token=s3cr3tT0ken"
    targets = [NotifyTarget(url)]
    outbox = MemoryOutbox()
    queue(outbox, targets, [event(1)])
    report = deliver(outbox, targets, T0)
    stored = "".join(r.last_error or "" for r in outbox.records.values())
    for text in (" ".join(report.lines()), stored):
        assert "hunter2" not in text and "s3cr3tT0ken" not in text and "500" in text


def test_crash_between_send_and_mark_repeats_at_most_that_message(receiver):
    """Killed after a send but before its mark, a restart repeats that one message only."""
    targets = [NotifyTarget(receiver.url)]
    outbox = MemoryOutbox()
    queue(outbox, targets, [event(n) for n in range(1, 4)])

    class Killed(BaseException):
        """Stands for kill -9: nothing after the send runs."""

    def send_then_die(url: str, message: Message, timeout_s: float) -> SendResult:
        result = send(url, message, timeout_s)
        if urn(2) in message.body:
            raise Killed
        return result

    with pytest.raises(Killed):
        deliver(outbox, targets, T0, send=send_then_die)
    deliver(outbox, targets, T0)  # the restarted process
    assert receiver.ids() == [urn(1), urn(2), urn(2), urn(3)]
    assert outbox.states() == {"pending": 0, "sent": 3, "failed": 0}


def test_budget_spent_leaves_the_rest_for_later(receiver):
    """Once the time budget is spent no send starts; the rest stays due for the next round."""
    targets = [NotifyTarget(receiver.url)]
    outbox = MemoryOutbox()
    queue(outbox, targets, [event(n) for n in range(1, 5)])
    ticks = iter(range(100))
    report = deliver(outbox, targets, T0, budget_s=3.0, clock=lambda: float(next(ticks)))
    assert report.sent >= 1 and report.left >= 1 and report.sent + report.left == 4
    assert deliver(outbox, targets, T0).sent == report.left
    assert receiver.ids() == [urn(n) for n in range(1, 5)]


def test_reordered_config_still_reaches_the_right_target(receiver):
    """Deliveries follow their target's URL when the config is reordered; a removed one fails."""
    other = Receiver()
    try:
        before = [NotifyTarget(receiver.url), NotifyTarget(other.url), NotifyTarget("json://gone")]
        outbox = MemoryOutbox()
        queue(outbox, before, [event(1)])
        report = deliver(outbox, [before[1], before[0]], T0)
        assert (report.sent, report.failed) == (2, 1)
        assert receiver.ids() == [urn(1)] and other.ids() == [urn(1)]
    finally:
        other.stop()


def test_one_failing_target_does_not_stop_another(receiver):
    """A target answering 500 is retried later while a healthy target gets its messages."""
    bad = Receiver()
    bad.status = 500
    try:
        targets = [NotifyTarget(bad.url), NotifyTarget(receiver.url)]
        outbox = MemoryOutbox()
        queue(outbox, targets, [event(1), event(2)])
        report = deliver(outbox, targets, T0)
        assert (report.sent, report.retried) == (2, 2)
        assert receiver.ids() == [urn(1), urn(2)]
        assert len(bad.server.log) == 1  # asked once this round, not once per delivery
    finally:
        bad.stop()
