"""SES feedback: what happened to an email after it left, brought back into Journeys.

Emails go out through an SES configuration set whose event destination is an SNS topic;
the feedback function receives every notification, and each one's `Message` is an SES
event record (https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-
contents.html). `messaging.message_tags` put `contact_id`, `workflow_id` and `step_id` on
every email, and SES hands them back in `mail.tags`, so an event finds its contact and,
with `mail.messageId`, the `MessageRecordModel` the send function wrote.

What each event does (`handle`)
-------------------------------
===========  ======================================================================
Open         first open only: sets the message's `opened_at`, enqueues `email_opened`
Click        each link once: appends it to `clicked_links`, enqueues `email_clicked`
             (clicks on our own unsubscribe/preferences links are left to the API)
Bounce       Permanent (hard): the contact's email channel becomes "bounced" and
             `email_bounced` is enqueued. Transient and Undetermined bounces (SES
             has already stopped retrying that one message) change nothing; logged.
Complaint    the channel becomes "complained", `email_complained` is enqueued and, if
             the channel was still subscribed, `unsubscribed` too, so the exits of
             `stop_on_unsubscribe` journeys apply. A `not-spam` report is ignored.
Delivery     first delivery only: sets the message's `delivered_at` and counts the
             step's `delivered`. Nothing is enqueued: no condition reads it, and an
             event per delivered email would double the router's load for nothing.
anything     Send, Reject, DeliveryDelay, Rendering Failure, Subscription: ignored.
===========  ======================================================================

Statistics (`journeys.stats`, counters of the message's workflow and step, from its
record or, for bounces and complaints, its tags): `delivered`, `opened` and `clicked` once
per message, counted by the handler whose conditional write of `delivered_at`,
`opened_at` or the first link won; `bounced` and `complained` once per change of the
channel's status; `unsubscribed` (the step's and the workflow's) when a complaint
unsubscribed a subscribed channel. A redelivered notification finds the write done and
counts nothing.

Bounces and complaints only suppress the channel when the address they name is the
contact's current email address: a team alert about the contact, a message sent to
`to_attribute` (a parent's address) or a bounce of an address the contact has since
replaced must not silence the contact. A hard bounce never overwrites "unsubscribed" or
"complained" (an unsubscribe must survive the contact changing address; the API reverts
only "bounced" to "subscribed" on a new address).

Events go to the router's queue as `{"type": "event", ...}` messages (see
`journeys.router`), with ids derived from the SES message id, the event type and, for
clicks, a hash of the link: ``ses:<messageId>:open``, ``ses:<messageId>:click:<hash>``,
``ses:<messageId>:bounce``, ``ses:<messageId>:complaint``,
``ses:<messageId>:complaint:unsubscribed``. The router processes an id once per contact,
so SNS redeliveries, Lambda retries and concurrent duplicates never count twice. Each
handler reads, enqueues, then writes: a retry after a failed write enqueues again (the
same ids, deduplicated), and a redelivery after a successful write finds the write done
and enqueues nothing, so a queue sees one message per open in the normal case.

An event without a `contact_id` tag, for a contact or message that does not exist (any
more), is logged and skipped: `Outcome.action` is "skipped" with the reason. A
notification that is not an SES event record raises `InvalidFeedback`.

Tables must be bound (`store.bind_tables`) by the caller; `sqs` is created from the
settings when left out. Nothing here reads the environment or does I/O at import.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pynamodb.exceptions import UpdateError

from journeys import aws, clock, events_queue, messaging, stats
from journeys.contacts import BOUNCED, COMPLAINED, SUBSCRIBED
from journeys.contacts import UNSUBSCRIBED as UNSUBSCRIBED_STATUS
from journeys.exceptions import JourneysError
from journeys.settings import MissingSetting, Settings
from journeys.store import ContactRecord, MessageRecordModel, iso

__all__ = [
    "EMAIL_BOUNCED",
    "EMAIL_CLICKED",
    "EMAIL_COMPLAINED",
    "EMAIL_OPENED",
    "UNSUBSCRIBED",
    "Bounce",
    "Click",
    "Complaint",
    "Delivery",
    "InvalidFeedback",
    "Mail",
    "Open",
    "Outcome",
    "SesEvent",
    "event_id",
    "handle",
    "parse_event",
]

log = logging.getLogger(__name__)

#: Names of the events the router receives (triggers, waits, goals and exits use them).
EMAIL_OPENED = "email_opened"
EMAIL_CLICKED = "email_clicked"
EMAIL_BOUNCED = "email_bounced"
EMAIL_COMPLAINED = "email_complained"
#: The event `stop_on_unsubscribe` exits on (as `journeys.api` sends it).
UNSUBSCRIBED = "unsubscribed"

#: The send function records a message at its own clock just before SES accepts it, and
#: SES stamps `mail.timestamp`; the record is looked for this far either side.
SENT_AT_SLACK = timedelta(days=1)
#: The API's signed link endpoint (`steps.UNSUBSCRIBE_PATH`): clicks on it are the API's.
UNSUBSCRIBE_PATH = "/v1/unsubscribe"
#: Feedback types of complaints that are not complaints.
NOT_COMPLAINTS = frozenset({"not-spam"})


class InvalidFeedback(JourneysError, ValueError):
    """A notification that is not an SES event record (retrying cannot help)."""


# --- The SES event record ------------------------------------------------------------------


class _Record(BaseModel):
    # SES adds fields over time: unknown ones are ignored; the names are SES's camelCase.
    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Recipient(_Record):
    email_address: str


class Mail(_Record):
    """The email the event is about."""

    message_id: str = Field(min_length=1)
    timestamp: datetime
    destination: list[str] = Field(default_factory=list)
    #: Message tags, each a list of values (ours: contact_id, workflow_id, step_id).
    tags: dict[str, list[str]] = Field(default_factory=dict)

    def tag(self, name: str) -> str | None:
        values = self.tags.get(name) or []
        return values[0] if values and values[0] else None


class Bounce(_Record):
    bounce_type: str  # Permanent | Transient | Undetermined
    bounce_sub_type: str = ""
    bounced_recipients: list[Recipient] = Field(default_factory=list)
    timestamp: datetime | None = None
    feedback_id: str = ""


class Complaint(_Record):
    complained_recipients: list[Recipient] = Field(default_factory=list)
    timestamp: datetime | None = None
    feedback_id: str = ""
    complaint_feedback_type: str | None = None  # abuse, fraud, not-spam, ... (may be absent)
    complaint_sub_type: str | None = None


class Delivery(_Record):
    timestamp: datetime | None = None
    recipients: list[str] = Field(default_factory=list)


class Open(_Record):
    timestamp: datetime
    user_agent: str = ""


class Click(_Record):
    timestamp: datetime
    link: str = Field(min_length=1)
    user_agent: str = ""


#: The event types that must carry their own object.
_DETAIL = {"Bounce": "bounce", "Complaint": "complaint", "Open": "open", "Click": "click"}


class SesEvent(_Record):
    """One SES event record (event publishing; identity notifications name the type
    `notificationType` and carry no tags, so they end as skipped)."""

    event_type: str = Field(
        min_length=1, validation_alias=AliasChoices("eventType", "notificationType")
    )
    mail: Mail
    bounce: Bounce | None = None
    complaint: Complaint | None = None
    delivery: Delivery | None = None
    open: Open | None = None
    click: Click | None = None

    @model_validator(mode="after")
    def _detail_present(self) -> SesEvent:
        name = _DETAIL.get(self.event_type)
        if name is not None and getattr(self, name) is None:
            raise ValueError(f'{self.event_type} event without its "{name}" object')
        return self


def parse_event(message: str | bytes | Mapping[str, Any]) -> SesEvent:
    """An SES event record from an SNS `Message` (JSON text) or its decoded mapping."""
    try:
        data = json.loads(message) if isinstance(message, str | bytes) else message
    except ValueError as error:
        raise InvalidFeedback(f"SES notification is not JSON: {error}") from None
    if not isinstance(data, Mapping):
        raise InvalidFeedback(f"SES notification must be a JSON object, got {type(data).__name__}")
    try:
        return SesEvent.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'notification'}: {e['msg']}"
            for e in error.errors()
        )
        kind = data.get("eventType") or data.get("notificationType") or "untyped"
        raise InvalidFeedback(f"invalid SES {kind!s} event: {problems}") from None


def event_id(message_id: str, event_type: str, link: str | None = None) -> str:
    """The router event id for `event_type` of SES message `message_id`: the same for
    every redelivery. Clicks add a hash of the link (one event per link)."""
    parts = ["ses", message_id, event_type.lower()]
    if link is not None:
        parts.append(hashlib.sha256(link.encode("utf-8")).hexdigest()[:16])
    return ":".join(parts)


# --- The outcome ----------------------------------------------------------------------------

Action = Literal[
    "delivered", "opened", "clicked", "bounced", "complained", "duplicate", "ignored", "skipped"
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one SES event did."""

    event_type: str
    message_id: str
    contact_id: str | None
    action: Action
    reason: str = ""
    #: Router event ids enqueued, in order.
    events: tuple[str, ...] = ()
    #: Whether the contact's email channel status was changed.
    status_changed: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type,
            "message_id": self.message_id,
            "contact_id": self.contact_id,
            "action": self.action,
            "reason": self.reason,
            "events": list(self.events),
            "status_changed": self.status_changed,
            **self.extra,
        }


# --- Handling ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    event: SesEvent
    contact_id: str
    settings: Settings
    now: datetime
    sqs: Any

    @property
    def message_id(self) -> str:
        return self.event.mail.message_id

    def outcome(self, action: Action, reason: str = "", **fields: Any) -> Outcome:
        return Outcome(
            self.event.event_type, self.message_id, self.contact_id, action, reason, **fields
        )

    def skip(self, reason: str, detail: str) -> Outcome:
        log.info(
            "SES %s event skipped: %s",
            self.event.event_type,
            detail,
            extra={"message_id": self.message_id, "contact_id": self.contact_id},
        )
        return self.outcome("skipped", reason)

    def moment(self, at: datetime | None) -> datetime:
        """When it happened: the event's time, else the send's, never after now."""
        return min(_utc(at or self.event.mail.timestamp), self.now)


def handle(
    event: SesEvent | str | bytes | Mapping[str, Any],
    settings: Settings,
    now: datetime | None = None,
    sqs: Any = None,
) -> Outcome:
    """Apply one SES event record (see the module notes). Safe to call again with the
    same record: nothing is counted twice."""
    if not isinstance(event, SesEvent):
        event = parse_event(event)
    now = _utc(now or clock.now())
    handler = _HANDLERS.get(event.event_type)
    if handler is None:
        return Outcome(
            event.event_type,
            event.mail.message_id,
            event.mail.tag("contact_id"),
            "ignored",
            "event-type-not-handled",
        )
    tagged = event.mail.tag("contact_id")
    contact_id = messaging.decode_tag_value(tagged) if tagged else None
    if contact_id is None:
        log.info(
            "SES %s event without a contact_id tag (not sent by a journey)",
            event.event_type,
            extra={"message_id": event.mail.message_id},
        )
        return Outcome(event.event_type, event.mail.message_id, None, "skipped", "no-contact-tag")
    return handler(_Context(event, contact_id, settings, now, sqs))


def _open(context: _Context) -> Outcome:
    detail = context.event.open
    assert detail is not None
    record = _find_message(context)
    if record is None:
        return context.skip("unknown-message", "no message record for this contact")
    if record.opened_at:
        return context.outcome("duplicate", "already-opened")
    at = context.moment(detail.timestamp)
    ids = _enqueue(context, [(EMAIL_OPENED, "", _message_properties(record))], at)
    try:
        record.update(
            actions=[MessageRecordModel.opened_at.set(iso(at))],
            condition=MessageRecordModel.contact_id.exists()
            & MessageRecordModel.opened_at.does_not_exist(),
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        # Another open got there first (same event id, so one event in the router).
    else:
        _count(record.workflow_id, record.step_id, "opened")
    return context.outcome("opened", events=ids)


def _delivery(context: _Context) -> Outcome:
    detail = context.event.delivery
    record = _find_message(context)
    if record is None:
        return context.skip("unknown-message", "no message record for this contact")
    if record.delivered_at:
        return context.outcome("duplicate", "already-delivered")
    at = context.moment(detail.timestamp if detail is not None else None)
    try:
        record.update(
            actions=[MessageRecordModel.delivered_at.set(iso(at))],
            condition=MessageRecordModel.contact_id.exists()
            & MessageRecordModel.delivered_at.does_not_exist(),
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        return context.outcome("duplicate", "already-delivered")  # a concurrent duplicate won
    _count(record.workflow_id, record.step_id, "delivered")
    return context.outcome("delivered")


def _click(context: _Context) -> Outcome:
    detail = context.event.click
    assert detail is not None
    link = detail.link
    base = context.settings.public_base_url
    if base and link.startswith(base + UNSUBSCRIBE_PATH):
        return context.outcome("ignored", "unsubscribe-link")
    record = _find_message(context)
    if record is None:
        return context.skip("unknown-message", "no message record for this contact")
    if link in record.clicked_links:
        return context.outcome("duplicate", "link-already-clicked")
    at = context.moment(detail.timestamp)
    first_click = not record.clicked_links
    properties = {**_message_properties(record), "link": link}
    ids = _enqueue(context, [(EMAIL_CLICKED, link, properties)], at)
    links = MessageRecordModel.clicked_links
    try:
        record.update(
            actions=[links.set((links | []).append([link]))],
            condition=MessageRecordModel.contact_id.exists() & ~links.contains(link),
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
    else:
        if first_click:  # the step's statistic counts messages clicked, not links
            _count(record.workflow_id, record.step_id, "clicked")
    return context.outcome("clicked", events=ids)


def _bounce(context: _Context) -> Outcome:
    detail = context.event.bounce
    assert detail is not None
    if detail.bounce_type != "Permanent":
        log.info(
            "soft bounce (%s/%s) recorded nowhere: SES stopped retrying this one message",
            detail.bounce_type,
            detail.bounce_sub_type,
            extra={"message_id": context.message_id, "contact_id": context.contact_id},
        )
        return context.outcome("ignored", "soft-bounce", extra={"bounce_type": detail.bounce_type})
    named = [r.email_address for r in detail.bounced_recipients]
    return _suppress(
        context,
        addresses=named or context.event.mail.destination,
        status=BOUNCED,
        replaces=(SUBSCRIBED,),
        at=detail.timestamp,
        events=[
            (
                EMAIL_BOUNCED,
                {"bounce_type": detail.bounce_type, "bounce_sub_type": detail.bounce_sub_type},
            )
        ],
    )


def _complaint(context: _Context) -> Outcome:
    detail = context.event.complaint
    assert detail is not None
    feedback_type = (detail.complaint_feedback_type or "").lower()
    if feedback_type in NOT_COMPLAINTS:
        return context.outcome("ignored", "not-a-complaint")
    named = [r.email_address for r in detail.complained_recipients]
    complained: dict[str, Any] = {"feedback_type": feedback_type} if feedback_type else {}
    return _suppress(
        context,
        addresses=named or context.event.mail.destination,
        status=COMPLAINED,
        replaces=(SUBSCRIBED, UNSUBSCRIBED_STATUS, BOUNCED),
        at=detail.timestamp,
        events=[(EMAIL_COMPLAINED, complained)],
        unsubscribe=True,
    )


def _suppress(
    context: _Context,
    *,
    addresses: Sequence[str],
    status: str,
    replaces: Sequence[str],
    at: datetime | None,
    events: Sequence[tuple[str, dict[str, Any]]],
    unsubscribe: bool = False,
) -> Outcome:
    """Mark the contact's email channel `status` (from one of `replaces`) if `addresses`
    include its current address, and enqueue `events` (plus `unsubscribed` when the
    channel was subscribed and `unsubscribe`)."""
    try:
        contact = ContactRecord.get(context.contact_id, consistent_read=True)
    except ContactRecord.DoesNotExist:
        return context.skip("unknown-contact", "the contact does not exist")
    channel = contact.view().channels.get("email")
    current = channel.address if channel is not None else None
    if not current or _normal(current) not in {_normal(a) for a in addresses}:
        return context.skip(
            "not-the-contact-address",
            "the address is not the contact's email (a team alert, a to_attribute "
            "recipient, or an address since replaced)",
        )
    assert channel is not None
    action: Action = "bounced" if status == BOUNCED else "complained"
    was = channel.status
    if was == status:
        # A redelivery (the write comes after the enqueue, so that was done), or another
        # message of an address already marked: nothing new to say.
        return context.outcome("duplicate", f"already-{status}", extra={"was": was})
    properties = {
        "workflow_id": context.event.mail.tag("workflow_id") or "",
        "step_id": context.event.mail.tag("step_id") or "",
        "message_id": context.message_id,
    }
    planned = [(name, "", {**properties, **more}) for name, more in events]
    if unsubscribe and was == SUBSCRIBED:
        planned.append(
            (
                UNSUBSCRIBED,
                "",
                {
                    "channel": "email",
                    "source": "complaint",
                    "workflow_id": properties["workflow_id"],
                },
            )
        )
    moment = context.moment(at)
    ids = _enqueue(context, planned, moment)
    changed = was in replaces and _set_status(context, current, status, replaces)
    if changed:  # once per change: a redelivery finds the status already set
        workflow_id, step_id = properties["workflow_id"], properties["step_id"]
        _count(workflow_id, step_id, "bounced" if status == BOUNCED else "complained")
        if unsubscribe and was == SUBSCRIBED:
            stats.count_unsubscribe(workflow_id, step_id or None)
    return context.outcome(action, events=ids, status_changed=changed, extra={"was": was})


def _set_status(context: _Context, address: str, status: str, replaces: Sequence[str]) -> bool:
    """SET channels.email.status, if the address and a replaceable status are still there
    (a concurrent change wins). Bumps `updated_at`, so an API write planned on the old
    state plans again."""
    email: Any = ContactRecord.channels["email"]
    allowed: Any = email["status"].does_not_exist() if SUBSCRIBED in replaces else None
    for old in replaces:
        allowed = email["status"] == old if allowed is None else allowed | (email["status"] == old)
    try:
        ContactRecord(context.contact_id).update(
            actions=[email["status"].set(status), ContactRecord.updated_at.set(iso(context.now))],
            condition=ContactRecord.contact_id.exists() & (email["address"] == address) & allowed,
        )
    except UpdateError as error:
        if not _condition_failed(error):
            raise
        log.info(
            "email status not changed to %s: the channel changed meanwhile",
            status,
            extra={"contact_id": context.contact_id},
        )
        return False
    log.info(
        "email channel of %s is now %s",
        context.contact_id,
        status,
        extra={"message_id": context.message_id},
    )
    return True


_HANDLERS = {
    "Delivery": _delivery,
    "Open": _open,
    "Click": _click,
    "Bounce": _bounce,
    "Complaint": _complaint,
}


# --- Helpers ----------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _normal(address: str) -> str:
    return parseaddr(address)[1].strip().lower() or address.strip().lower()


def _condition_failed(error: UpdateError) -> bool:
    return str(getattr(error, "cause_response_code", "")) == "ConditionalCheckFailedException"


def _find_message(context: _Context) -> MessageRecordModel | None:
    """The contact's record of this SES message (sort key "<sent_at>#<message_id>"),
    looked for within `SENT_AT_SLACK` of the time SES accepted it."""
    sent = _utc(context.event.mail.timestamp)
    model = MessageRecordModel
    for record in model.query(
        context.contact_id,
        model.sort_key.between(iso(sent - SENT_AT_SLACK), iso(sent + SENT_AT_SLACK)),
        filter_condition=model.message_id == context.message_id,
        consistent_read=True,
    ):
        if record.channel == "email":
            return record
    return None


def _count(workflow_id: str, step_id: str, metric: stats.StepMetric) -> None:
    if workflow_id and step_id:
        stats.record(workflow_id, stats.step_metric(step_id, metric))


def _message_properties(record: MessageRecordModel) -> dict[str, Any]:
    return {
        "workflow_id": record.workflow_id,
        "step_id": record.step_id,
        "message_id": record.message_id,
    }


def _enqueue(
    context: _Context, planned: Sequence[tuple[str, str, dict[str, Any]]], at: datetime
) -> tuple[str, ...]:
    """Send the router one event message per (name, link, properties); their ids."""
    if not planned:
        return ()
    queue_url = context.settings.events_queue_url
    if not queue_url:
        raise MissingSetting("EVENTS_QUEUE_URL is not set: feedback cannot reach the router")
    messages = []
    for name, link, properties in planned:
        kind = context.event.event_type if name != UNSUBSCRIBED else "complaint:unsubscribed"
        messages.append(
            {
                "type": "event",
                "event_id": event_id(context.message_id, kind, link or None),
                "contact_id": context.contact_id,
                "name": name,
                "properties": properties,
                "occurred_at": iso(at),
            }
        )
    sqs = context.sqs or aws.client("sqs", context.settings.region)
    # The ids are deterministic: if some never go, the retried invocation sends the lot
    # again and the router keeps one of each.
    events_queue.enqueue(
        sqs, queue_url, [json.dumps(message, separators=(",", ":")) for message in messages]
    )
    return tuple(str(message["event_id"]) for message in messages)
