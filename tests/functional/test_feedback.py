"""SES feedback on moto: a real send, then the events SES would publish about it, through
the service and the Lambda; what lands on the message, the contact and the router's queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from journeys import feedback, messaging, router, stats, steps
from journeys.exceptions import TransientError
from journeys.settings import Settings, get_settings
from journeys.store import ContactRecord, MessageRecordModel, iso
from tests.functional.conftest import SENDER
from tests.helpers.aws import ACCOUNT, REGION, drain
from tests.helpers.lambdas import invoke

SENT_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LATER = SENT_AT + timedelta(days=1)  # "now" for the service: events are never after it
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:journeys-feedback-test"
ADA = "ada@example.com"


@dataclass
class World:
    settings: Settings
    sqs: Any
    queue_url: str

    def drain(self) -> list[dict[str, Any]]:
        """Every message now on the router's queue, each checked by the router's parser."""
        bodies = drain(self.sqs, self.queue_url)
        for body in bodies:
            router.parse_message(body)  # the router accepts it as it is
        return bodies


@pytest.fixture
def world(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="journeys-events-test")["QueueUrl"]
    monkeypatch.setenv("EVENTS_QUEUE_URL", url)
    get_settings.cache_clear()
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    ContactRecord(
        "c-1",
        attributes={"first_name": "Ada", "cart_items": 2},
        channels={"email": {"address": ADA, "status": "subscribed"}},
        updated_at=iso(SENT_AT - timedelta(days=1)),
    ).save()
    yield World(get_settings(), sqs, url)


def send_request(**extra: Any) -> steps.SendStepRequest:
    return steps.SendStepRequest.model_validate(
        {
            "contact_id": "c-1",
            "workflow_id": "cart-abandonment",
            "step_id": "cart-email",
            "step_label": "Email cart reminder",
            "execution_id": "arn:exec:1",
            "trigger": {"key": "event:added_to_cart", "properties": {"product_name": "Shoes"}},
            "channel": "email",
            "template": "cart-reminder-email",
            "state_entered_at": iso(SENT_AT),
            **extra,
        }
    )


def send(world: World, at: datetime = SENT_AT) -> str:
    """Send the cart reminder through SES (moto); its SES message id."""
    result = steps.send(send_request(), world.settings, now=at)
    assert result["status"] == "sent", result
    return str(result["message_id"])


def ses_record(
    event_type: str, message_id: str, contact_id: str = "c-1", address: str = ADA, **detail: Any
) -> dict[str, Any]:
    """The event record SES publishes about a message the send function sent: its tags
    come back as lists, next to SES's own."""
    request = send_request(contact_id=contact_id)
    tags = {name: [value] for name, value in messaging.message_tags(request).items()}
    return {
        "eventType": event_type,
        "mail": {
            "timestamp": iso(SENT_AT + timedelta(seconds=1)),
            "source": SENDER,
            "sendingAccountId": ACCOUNT,
            "messageId": message_id,
            "destination": [address],
            "headersTruncated": False,
            "commonHeaders": {"from": [SENDER], "to": [address], "subject": "Your cart"},
            "tags": {"ses:configuration-set": ["journeys-test"], **tags},
        },
        **detail,
    }


def delivered(address: str = ADA) -> dict[str, Any]:
    return {
        "delivery": {
            "timestamp": iso(SENT_AT + timedelta(seconds=2)),
            "processingTimeMillis": 1042,
            "recipients": [address],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        }
    }


def opened(at: datetime) -> dict[str, Any]:
    return {"open": {"ipAddress": "192.0.2.1", "timestamp": iso(at), "userAgent": "Mail"}}


def clicked(link: str, at: datetime) -> dict[str, Any]:
    return {"click": {"ipAddress": "192.0.2.1", "link": link, "timestamp": iso(at)}}


def bounced(bounce_type: str = "Permanent", address: str = ADA) -> dict[str, Any]:
    return {
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General" if bounce_type == "Permanent" else "MailboxFull",
            "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}],
            "timestamp": iso(SENT_AT + timedelta(seconds=3)),
            "feedbackId": "fb-1",
        }
    }


def complained(feedback_type: str = "abuse") -> dict[str, Any]:
    return {
        "complaint": {
            "complainedRecipients": [{"emailAddress": ADA}],
            "timestamp": iso(SENT_AT + timedelta(minutes=30)),
            "feedbackId": "fb-2",
            "complaintFeedbackType": feedback_type,
        }
    }


def sns_event(*records: dict[str, Any]) -> dict[str, Any]:
    """What SNS hands the function: one record per notification, the SES JSON as text."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{TOPIC_ARN}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": f"95df01b4-ee98-5cb9-9903-4c221d41eb5{index}",
                    "TopicArn": TOPIC_ARN,
                    "Subject": None,
                    "Message": json.dumps(record),
                    "Timestamp": iso(SENT_AT + timedelta(minutes=1)),
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
            for index, record in enumerate(records)
        ]
    }


def message(message_id: str) -> MessageRecordModel:
    [record] = [
        r
        for r in MessageRecordModel.query("c-1", consistent_read=True)
        if r.message_id == message_id
    ]
    return record


def email_status() -> str:
    return ContactRecord.get("c-1", consistent_read=True).view().channels["email"].status


def sent_emails() -> int:
    return len(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def test_an_open_is_recorded_and_enqueued_once_however_often_it_arrives(world: World) -> None:
    message_id = send(world)
    first_open = SENT_AT + timedelta(minutes=5)
    record = ses_record("Open", message_id, **opened(first_open))
    # WHEN SNS delivers the notification twice, then the contact opens the email again
    again = ses_record("Open", message_id, **opened(first_open + timedelta(hours=1)))
    outcomes = [
        feedback.handle(record, world.settings, now=LATER, sqs=world.sqs),
        feedback.handle(record, world.settings, now=LATER, sqs=world.sqs),
        feedback.handle(again, world.settings, now=LATER, sqs=world.sqs),
    ]
    # THEN the first open is on the message, and the router got exactly one event
    assert [o.action for o in outcomes] == ["opened", "duplicate", "duplicate"]
    assert message(message_id).opened_at == iso(first_open)
    assert world.drain() == [
        {
            "type": "event",
            "event_id": f"ses:{message_id}:open",
            "contact_id": "c-1",
            "name": "email_opened",
            "properties": {
                "workflow_id": "cart-abandonment",
                "step_id": "cart-email",
                "message_id": message_id,
            },
            "occurred_at": iso(first_open),
        }
    ]
    # AND `opened:` decisions now see it
    decision = steps.evaluate(
        steps.EvaluateRequest.model_validate(
            {
                **send_request().model_dump(),
                "entered_at": SENT_AT - timedelta(hours=1),
                "paths": [{"branch": "yes", "condition": {"opened": "cart-email"}}],
            }
        ),
        now=SENT_AT + timedelta(hours=2),
    )
    assert decision == {"branch": "yes"}


def test_a_click_records_each_link_once(world: World) -> None:
    message_id = send(world)
    cart = "https://shop.example.com/cart?utm_source=journeys"
    shoes = "https://shop.example.com/p/red-shoes"
    at = SENT_AT + timedelta(minutes=7)
    for link in (cart, cart, shoes):
        feedback.handle(ses_record("Click", message_id, **clicked(link, at)), world.settings)
    assert message(message_id).clicked_links == [cart, shoes]
    events = world.drain()
    assert [(e["name"], e["properties"]["link"]) for e in events] == [
        ("email_clicked", cart),
        ("email_clicked", shoes),
    ]
    assert events[0]["event_id"] == feedback.event_id(message_id, "Click", cart)
    assert events[0]["properties"]["step_id"] == "cart-email"
    assert len({e["event_id"] for e in events}) == 2


def test_a_hard_bounce_means_nothing_more_on_email(world: World) -> None:
    message_id = send(world)
    assert sent_emails() == 1
    # WHEN SES reports a hard bounce through SNS to the Lambda
    [outcome] = invoke("feedback", sns_event(ses_record("Bounce", message_id, **bounced())))
    # THEN the channel is suppressed and journeys hear of it
    assert outcome["action"] == "bounced" and outcome["status_changed"] is True
    assert email_status() == "bounced"
    contact = ContactRecord.get("c-1", consistent_read=True)
    assert contact.updated_at != iso(SENT_AT - timedelta(days=1))  # API writes plan again
    [event] = world.drain()
    assert event["name"] == "email_bounced"
    assert event["event_id"] == f"ses:{message_id}:bounce"
    assert event["properties"]["bounce_type"] == "Permanent"
    # AND the next send on that channel is skipped: she receives nothing more
    later = SENT_AT + timedelta(days=2)
    result = steps.send(send_request(state_entered_at=iso(later)), world.settings, now=later)
    assert result["status"] == "skipped" and result["reason"] == "bounced"
    assert sent_emails() == 1
    # AND a redelivery changes and enqueues nothing
    [again] = invoke("feedback", sns_event(ses_record("Bounce", message_id, **bounced())))
    assert again["action"] == "duplicate"
    assert world.drain() == []


def test_a_soft_bounce_changes_nothing(world: World) -> None:
    message_id = send(world)
    record = ses_record("Bounce", message_id, **bounced("Transient"))
    outcome = feedback.handle(record, world.settings)
    assert (outcome.action, outcome.reason) == ("ignored", "soft-bounce")
    assert email_status() == "subscribed"
    assert world.drain() == []


def test_a_complaint_suppresses_the_channel_and_unsubscribes(world: World) -> None:
    message_id = send(world)
    record = ses_record("Complaint", message_id, **complained())
    outcome = feedback.handle(record, world.settings)
    assert outcome.action == "complained" and outcome.status_changed
    assert email_status() == "complained"
    events = world.drain()
    assert [e["name"] for e in events] == ["email_complained", "unsubscribed"]
    assert events[0]["properties"]["feedback_type"] == "abuse"
    # The same shape as the API's unsubscribe: stop_on_unsubscribe exits apply.
    assert events[1]["event_id"] == f"ses:{message_id}:complaint:unsubscribed"
    assert events[1]["properties"] == {
        "channel": "email",
        "source": "complaint",
        "workflow_id": "cart-abandonment",
    }
    later = SENT_AT + timedelta(days=1)
    result = steps.send(send_request(state_entered_at=iso(later)), world.settings, now=later)
    assert result["reason"] == "complained"
    # Redelivered: nothing new.
    assert feedback.handle(record, world.settings).action == "duplicate"
    assert world.drain() == []


def test_a_complaint_after_an_unsubscribe_does_not_unsubscribe_again(world: World) -> None:
    message_id = send(world)
    ContactRecord("c-1", channels={"email": {"address": ADA, "status": "unsubscribed"}}).save()
    outcome = feedback.handle(ses_record("Complaint", message_id, **complained()), world.settings)
    assert outcome.action == "complained" and outcome.status_changed
    assert email_status() == "complained"
    assert [e["name"] for e in world.drain()] == ["email_complained"]


def test_a_hard_bounce_never_overwrites_an_unsubscribe(world: World) -> None:
    # An unsubscribe must survive a later change of address (the API reverts "bounced").
    message_id = send(world)
    ContactRecord("c-1", channels={"email": {"address": ADA, "status": "unsubscribed"}}).save()
    outcome = feedback.handle(ses_record("Bounce", message_id, **bounced()), world.settings)
    assert outcome.action == "bounced" and not outcome.status_changed
    assert email_status() == "unsubscribed"
    assert [e["name"] for e in world.drain()] == ["email_bounced"]


def test_a_bounce_of_another_address_leaves_the_contact_alone(world: World) -> None:
    # A team alert, a to_attribute recipient, or the address she has since replaced.
    message_id = send(world)
    record = ses_record("Bounce", message_id, **bounced(address="Old <ADA@old.example.com>"))
    outcome = feedback.handle(record, world.settings)
    assert (outcome.action, outcome.reason) == ("skipped", "not-the-contact-address")
    assert email_status() == "subscribed"
    assert world.drain() == []
    # The address is compared as an address: case and display names do not matter.
    same = ses_record("Bounce", message_id, **bounced(address="Ada <ADA@Example.com>"))
    assert feedback.handle(same, world.settings).action == "bounced"


def test_unknown_contacts_and_messages_are_skipped_not_failed(world: World) -> None:
    message_id = send(world)
    at = SENT_AT + timedelta(minutes=5)
    unknown_message = feedback.handle(ses_record("Open", "not-ours", **opened(at)), world.settings)
    assert (unknown_message.action, unknown_message.reason) == ("skipped", "unknown-message")
    record = ses_record("Bounce", message_id, **bounced())
    record["mail"]["tags"]["contact_id"] = ["deleted-contact"]
    unknown_contact = feedback.handle(record, world.settings)
    assert (unknown_contact.action, unknown_contact.reason) == ("skipped", "unknown-contact")
    click = ses_record("Click", message_id, **clicked("https://shop.example.com", at))
    click["mail"]["tags"]["contact_id"] = ["deleted-contact"]
    assert feedback.handle(click, world.settings).reason == "unknown-message"
    assert world.drain() == []
    assert message(message_id).opened_at is None


def test_an_sqs_refusal_fails_the_event_and_the_retry_completes_it(world: World) -> None:
    message_id = send(world)
    record = ses_record("Open", message_id, **opened(SENT_AT + timedelta(minutes=5)))

    class Refusing:
        def send_message_batch(self, **arguments: Any) -> Any:
            return {"Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]}

    with pytest.raises(TransientError):
        feedback.handle(record, world.settings, sqs=Refusing())
    assert message(message_id).opened_at is None  # not marked: the retry must enqueue
    assert feedback.handle(record, world.settings).action == "opened"
    assert [e["name"] for e in world.drain()] == ["email_opened"]


def test_the_lambda_handles_every_record_and_fails_on_a_malformed_one(world: World) -> None:
    message_id = send(world)
    good = ses_record("Open", message_id, **opened(SENT_AT + timedelta(minutes=5)))
    event = sns_event(good)
    event["Records"].insert(0, sns_event({"eventType": "Open"})["Records"][0])
    with pytest.raises(feedback.InvalidFeedback, match="mail: Field required"):
        invoke("feedback", event)
    # The good record was still handled (and its retry is harmless).
    assert message(message_id).opened_at is not None
    assert [e["name"] for e in world.drain()] == ["email_opened"]
    delivery = ses_record("Delivery", message_id, delivery={"recipients": [ADA]})
    outcomes = invoke("feedback", sns_event(delivery, good))
    assert [(o["action"], o["reason"]) for o in outcomes] == [
        ("delivered", ""),  # recorded and counted, not enqueued
        ("duplicate", "already-opened"),
    ]
    assert world.drain() == []


def test_a_delivery_is_recorded_and_counted_once(world: World) -> None:
    message_id = send(world)
    record = ses_record("Delivery", message_id, **delivered())
    # WHEN SNS delivers the notification twice
    first = feedback.handle(record, world.settings, now=LATER, sqs=world.sqs)
    again = feedback.handle(record, world.settings, now=LATER, sqs=world.sqs)
    # THEN the message records SES's delivery time, the step counts one, the router hears
    # nothing
    assert (first.action, again.action, again.reason) == (
        "delivered",
        "duplicate",
        "already-delivered",
    )
    assert message(message_id).delivered_at == iso(SENT_AT + timedelta(seconds=2))
    assert stats.read("cart-abandonment").steps["cart-email"].delivered == 1
    assert world.drain() == []


def test_feedback_counts_every_step_metric_once_and_the_rates_follow(world: World) -> None:
    # GIVEN the cart reminder sent to Ada, and to Bob whose address bounces
    bob = "bob@example.com"
    ContactRecord("c-2", channels={"email": {"address": bob, "status": "subscribed"}}).save()
    to_ada = send(world)
    result = steps.send(send_request(contact_id="c-2"), world.settings, now=SENT_AT)
    assert result["status"] == "sent", result
    to_bob = str(result["message_id"])
    at = SENT_AT + timedelta(minutes=5)
    cart, shoes = "https://shop.example.com/cart", "https://shop.example.com/p/red-shoes"
    notifications = [
        ses_record("Delivery", to_ada, **delivered()),
        ses_record("Open", to_ada, **opened(at)),
        ses_record("Click", to_ada, **clicked(cart, at)),
        ses_record("Click", to_ada, **clicked(shoes, at)),  # a second link: not a second click
        ses_record("Complaint", to_ada, **complained()),
        ses_record("Bounce", to_bob, contact_id="c-2", address=bob, **bounced(address=bob)),
    ]
    # WHEN SES publishes them through SNS to the Lambda
    outcomes = invoke("feedback", sns_event(*notifications))
    assert [o["action"] for o in outcomes] == [
        "delivered",
        "opened",
        "clicked",
        "clicked",
        "complained",
        "bounced",
    ]
    # THEN the step counts each once, and the rates use their denominators
    read = stats.read("cart-abandonment")
    step = read.steps["cart-email"]
    assert step.model_dump() == {
        "sent": 2,
        "skipped": 0,
        "delivered": 1,
        "opened": 1,
        "clicked": 1,
        "bounced": 1,
        "complained": 1,
        "unsubscribed": 1,  # the complaint unsubscribed Ada
        "delivery_rate": 0.5,  # over sent
        "bounce_rate": 0.5,  # over sent
        "open_rate": 1.0,  # over delivered
        "click_rate": 1.0,
        "complaint_rate": 1.0,
        "unsubscribe_rate": 1.0,
        "engagement_denominator": "delivered",
    }
    assert read.totals.unsubscribed == 1
    # AND SNS redelivering every notification changes nothing
    again = invoke("feedback", sns_event(*notifications))
    assert {o["action"] for o in again} == {"duplicate"}
    assert stats.read("cart-abandonment") == read
    world.drain()
