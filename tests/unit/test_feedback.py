"""SES feedback without AWS: parsing the event records SES publishes to SNS, event ids, and
the events that are decided before any table is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from journeys import feedback
from journeys.settings import Settings

MESSAGE_ID = "0100018c2f3e4a5b-7c6d5e4f-1a2b-4c3d-9e8f-0123456789ab-000000"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SETTINGS = Settings(
    region="us-east-1",
    contacts_table="contacts",
    events_table="events",
    messages_table="messages",
    waits_table="waits",
    entries_table="entries",
    public_base_url="https://journeys.example.com",
    events_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/events",
)


def mail(**tags: list[str]) -> dict[str, Any]:
    """The `mail` object of a journey email, as SES publishes it (tags as lists)."""
    return {
        "timestamp": "2026-11-22T10:00:01.123Z",
        "source": "Shop <journeys@example.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": MESSAGE_ID,
        "destination": ["ada@example.com"],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Shop <journeys@example.com>"},
            {"name": "To", "value": "ada@example.com"},
            {"name": "Subject", "value": "Ada, you left something in your cart"},
            {"name": "List-Unsubscribe-Post", "value": "List-Unsubscribe=One-Click"},
        ],
        "commonHeaders": {
            "from": ["Shop <journeys@example.com>"],
            "to": ["ada@example.com"],
            "messageId": MESSAGE_ID,
            "subject": "Ada, you left something in your cart",
        },
        "tags": {
            "ses:configuration-set": ["journeys-test"],
            "ses:source-ip": ["192.0.2.10"],
            "ses:from-domain": ["example.com"],
            "ses:caller-identity": ["journeys-send"],
            "contact_id": ["c-1"],
            "workflow_id": ["cart-abandonment"],
            "step_id": ["cart-email"],
            **tags,
        },
    }


OPEN = {
    "eventType": "Open",
    "mail": mail(),
    "open": {
        "ipAddress": "192.0.2.1",
        "timestamp": "2026-11-22T10:05:19.652Z",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
    },
}
CLICK = {
    "eventType": "Click",
    "click": {
        "ipAddress": "192.0.2.1",
        "link": "https://shop.example.com/cart?utm_source=journeys",
        "linkTags": {"campaign": ["cart"]},
        "timestamp": "2026-11-22T10:06:25.570Z",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
    },
    "mail": mail(),
}
HARD_BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "ada@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-11-22T10:00:03.669Z",
        "feedbackId": "0100018c2f3e5000-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; a8-60.smtp-out.amazonses.com",
    },
    "mail": mail(),
}
SOFT_BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Transient",
        "bounceSubType": "MailboxFull",
        "bouncedRecipients": [{"emailAddress": "ada@example.com", "status": "4.2.2"}],
        "timestamp": "2026-11-22T11:00:03.669Z",
        "feedbackId": "0100018c2f3e5001-61b59c11-9236-11e6-8f96-7be8aexample-000000",
    },
    "mail": mail(),
}
COMPLAINT = {
    "eventType": "Complaint",
    "complaint": {
        "feedbackId": "0100018c2f3e6000-0d1c1d6a-6a57-4d02-a3fc-example-000000",
        "complaintSubType": None,
        "complainedRecipients": [{"emailAddress": "ada@example.com"}],
        "timestamp": "2026-11-22T10:30:00.000Z",
        "userAgent": "Yahoo!-Mail-Feedback/2.0",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2026-11-22T10:29:58.000Z",
    },
    "mail": mail(),
}
DELIVERY = {
    "eventType": "Delivery",
    "mail": mail(),
    "delivery": {
        "timestamp": "2026-11-22T10:00:02.133Z",
        "processingTimeMillis": 1010,
        "recipients": ["ada@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "a8-60.smtp-out.amazonses.com",
    },
}


def test_an_open_is_parsed_with_its_tags_and_time() -> None:
    event = feedback.parse_event(json.dumps(OPEN))
    assert event.event_type == "Open"
    assert event.mail.message_id == MESSAGE_ID
    assert event.mail.tag("contact_id") == "c-1"
    assert event.mail.tag("workflow_id") == "cart-abandonment"
    assert event.mail.tag("step_id") == "cart-email"
    assert event.mail.tag("missing") is None
    assert event.open is not None
    assert event.open.timestamp == datetime(2026, 11, 22, 10, 5, 19, 652000, tzinfo=UTC)


def test_a_click_carries_its_link() -> None:
    event = feedback.parse_event(CLICK)
    assert event.click is not None
    assert event.click.link == "https://shop.example.com/cart?utm_source=journeys"


def test_bounces_complaints_and_deliveries_are_parsed() -> None:
    bounce = feedback.parse_event(HARD_BOUNCE).bounce
    assert bounce is not None
    assert (bounce.bounce_type, bounce.bounce_sub_type) == ("Permanent", "General")
    assert [r.email_address for r in bounce.bounced_recipients] == ["ada@example.com"]
    complaint = feedback.parse_event(COMPLAINT).complaint
    assert complaint is not None
    assert complaint.complaint_feedback_type == "abuse"
    assert complaint.complaint_sub_type is None
    assert [r.email_address for r in complaint.complained_recipients] == ["ada@example.com"]
    delivery = feedback.parse_event(DELIVERY).delivery
    assert delivery is not None and delivery.recipients == ["ada@example.com"]


def test_identity_notifications_name_the_type_differently() -> None:
    # Feedback notifications set on the identity (not the configuration set) say
    # notificationType and carry no tags.
    data = {**HARD_BOUNCE, "notificationType": "Bounce", "mail": mail()}
    del data["eventType"]
    data["mail"].pop("tags")
    event = feedback.parse_event(data)
    assert event.event_type == "Bounce" and event.mail.tags == {}
    outcome = feedback.handle(event, SETTINGS, now=NOW)
    assert (outcome.action, outcome.reason) == ("skipped", "no-contact-tag")


def test_fields_ses_adds_later_are_ignored() -> None:
    data = {**OPEN, "newTopLevel": {"x": 1}, "open": {**OPEN["open"], "deviceType": "phone"}}
    assert feedback.parse_event(data).open is not None


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        (json.dumps({"mail": mail()}), "eventType: Field required"),
        (json.dumps({"eventType": "Open"}), "invalid SES Open event: mail: Field required"),
        (
            json.dumps({"eventType": "Open", "mail": {**mail(), "messageId": ""}}),
            "mail.messageId",
        ),
        (json.dumps({"eventType": "Open", "mail": mail()}), 'without its "open" object'),
        (
            json.dumps({**CLICK, "click": {"timestamp": "2026-11-22T10:06:25Z"}}),
            "click.link: Field required",
        ),
        (json.dumps({**OPEN, "open": {"timestamp": "yesterday"}}), "open.timestamp"),
    ],
)
def test_malformed_notifications_raise_a_clear_error(message: str, says: str) -> None:
    with pytest.raises(feedback.InvalidFeedback) as error:
        feedback.parse_event(message)
    assert says in str(error.value)
    with pytest.raises(feedback.InvalidFeedback):
        feedback.handle(message, SETTINGS, now=NOW)


def test_event_ids_are_deterministic_and_one_per_link() -> None:
    assert feedback.event_id(MESSAGE_ID, "Open") == f"ses:{MESSAGE_ID}:open"
    assert feedback.event_id(MESSAGE_ID, "Open") == feedback.event_id(MESSAGE_ID, "Open")
    first = feedback.event_id(MESSAGE_ID, "Click", "https://shop.example.com/a")
    assert first == feedback.event_id(MESSAGE_ID, "Click", "https://shop.example.com/a")
    assert first.startswith(f"ses:{MESSAGE_ID}:click:") and len(first.rsplit(":", 1)[1]) == 16
    assert first != feedback.event_id(MESSAGE_ID, "Click", "https://shop.example.com/b")
    assert feedback.event_id("other", "Open") != feedback.event_id(MESSAGE_ID, "Open")
    # Router event ids are at most 512 characters; SES message ids are about 60.
    assert len(feedback.event_id("x" * 100, "Click", "https://e.com/" + "y" * 5000)) < 512


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"eventType": "Send", "mail": mail(), "send": {}}, "event-type-not-handled"),
        (
            {"eventType": "Reject", "mail": mail(), "reject": {"reason": "Bad content"}},
            "event-type-not-handled",
        ),
        (
            {"eventType": "DeliveryDelay", "mail": mail(), "deliveryDelay": {}},
            "event-type-not-handled",
        ),
        (SOFT_BOUNCE, "soft-bounce"),
        (
            {**HARD_BOUNCE, "bounce": {**HARD_BOUNCE["bounce"], "bounceType": "Undetermined"}},
            "soft-bounce",
        ),
        (
            {
                **COMPLAINT,
                "complaint": {**COMPLAINT["complaint"], "complaintFeedbackType": "not-spam"},
            },
            "not-a-complaint",
        ),
        (
            {
                **CLICK,
                "click": {
                    **CLICK["click"],
                    "link": "https://journeys.example.com/v1/unsubscribe?action=unsubscribe&contact=c-1&workflow=w&sig=x",
                },
            },
            "unsubscribe-link",
        ),
    ],
)
def test_events_that_change_nothing_touch_no_table_and_send_nothing(
    record: dict[str, Any], reason: str
) -> None:
    # No tables are bound and no SQS client exists: reaching either would fail.
    class NoQueue:
        def send_message_batch(self, **_: Any) -> Any:
            raise AssertionError("nothing may be enqueued")

    outcome = feedback.handle(record, SETTINGS, now=NOW, sqs=NoQueue())
    assert outcome.action == "ignored"
    assert outcome.reason == reason
    assert outcome.events == ()
    assert outcome.message_id == MESSAGE_ID


def test_an_email_sent_outside_journeys_is_skipped() -> None:
    data = {**OPEN, "mail": {**mail(), "tags": {"ses:configuration-set": ["journeys-test"]}}}
    outcome = feedback.handle(data, SETTINGS, now=NOW)
    assert (outcome.action, outcome.reason, outcome.contact_id) == (
        "skipped",
        "no-contact-tag",
        None,
    )


def test_the_summary_is_flat_and_json_ready() -> None:
    outcome = feedback.Outcome("Open", MESSAGE_ID, "c-1", "opened", events=("ses:x:open",))
    assert json.loads(json.dumps(outcome.summary())) == {
        "event_type": "Open",
        "message_id": MESSAGE_ID,
        "contact_id": "c-1",
        "action": "opened",
        "reason": "",
        "events": ["ses:x:open"],
        "status_changed": False,
    }
