"""The send Lambda on moto: consent, quiet hours, frequency caps, retries, real delivery."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from journeys import steps
from journeys.exceptions import SendDeferred
from journeys.settings import get_settings
from journeys.store import ContactRecord, MessageRecordModel, iso, messages_since
from tests.functional.conftest import SENDER
from tests.helpers.aws import REGION
from tests.helpers.lambdas import invoke

QUIET = {"quiet_hours": {"start": "21:00", "end": "08:00"}, "default_time_zone": "Europe/London"}


def sent_emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def sent_sms() -> list[Any]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


@pytest.fixture
def contact(aws: dict[str, Any]) -> None:
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    ContactRecord(
        "c-1",
        attributes={"first_name": "Ada", "cart_items": 2},
        channels={
            "email": {"address": "ada@example.com", "status": "subscribed"},
            "sms": {"address": "+447700900123", "status": "subscribed"},
        },
        time_zone="Europe/London",
    ).save()


def request(
    template: str = "cart-reminder-email", channel: str = "email", **extra: Any
) -> dict[str, Any]:
    return {
        "contact_id": "c-1",
        "workflow_id": "cart-abandonment",
        "step_id": "cart-email",
        "step_label": "Email cart reminder",
        "execution_id": "arn:exec:1",
        "trigger": {"key": "event:added_to_cart", "properties": {"product_name": "Red shoes"}},
        "data": {},
        "channel": channel,
        "template": template,
        "state_entered_at": "2026-11-22T10:00:00.000Z",
        **extra,
    }


def send_at(moment: datetime, **fields: Any) -> dict[str, Any]:
    return steps.send(
        steps.SendStepRequest.model_validate(request(**fields)), get_settings(), now=moment
    )


def test_email_goes_out_with_one_click_unsubscribe(contact: None) -> None:
    # WHEN the step runs through the Lambda
    result = invoke("send", request())
    # THEN SES got a personalised email with RFC 8058 headers, and the send is recorded
    assert result["status"] == "sent"
    [message] = sent_emails()
    parsed = email.message_from_string(message.raw_data)
    assert parsed["To"] == "ada@example.com"
    assert parsed["Subject"] == "Ada, you left something in your cart"
    assert parsed["List-Unsubscribe"].startswith("<https://journeys.example.com/v1/unsubscribe?")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [m.step_id for m in messages_since("c-1", datetime.now(UTC) - timedelta(hours=1))] == [
        "cart-email"
    ]


def test_a_lambda_retry_never_sends_twice(contact: None) -> None:
    first = invoke("send", request())
    again = invoke("send", request())
    assert again == first
    assert len(sent_emails()) == 1
    # A new attempt (a deferred send coming back, a loop round) does send.
    invoke("send", request(state_entered_at="2026-11-22T11:00:00.000Z"))
    assert len(sent_emails()) == 2


def test_quiet_hours_defer_until_morning_local_time(contact: None) -> None:
    late = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 22:30 in London
    with pytest.raises(SendDeferred) as deferred:
        send_at(late, policy=QUIET)
    assert str(deferred.value) == "2026-11-23T08:00:00Z"
    assert sent_emails() == []


def test_frequency_cap_counts_every_workflow(contact: None) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for hours, workflow in ((5, "welcome-series"), (2, "lead-nurture")):
        at = now - timedelta(hours=hours)
        MessageRecordModel(
            "c-1",
            f"{iso(at)}#{workflow}",
            message_id=workflow,
            workflow_id=workflow,
            step_id="x",
            channel="email",
            sent_at=iso(at),
        ).save()
    cap = {"frequency_cap": {"max": 2, "per_seconds": 86400}}
    with pytest.raises(SendDeferred) as deferred:
        send_at(now, policy=cap)
    assert str(deferred.value) == "2026-11-23T07:00:00Z"  # when the oldest leaves the day


def test_unsubscribed_contacts_get_nothing(contact: None) -> None:
    ContactRecord(
        "c-1", channels={"email": {"address": "ada@example.com", "status": "unsubscribed"}}
    ).save()
    result = send_at(datetime.now(UTC))
    assert result["status"] == "skipped" and result["reason"] == "unsubscribed"
    assert sent_emails() == []


def test_sms_goes_through_sns(contact: None) -> None:
    result = send_at(
        datetime(2026, 11, 22, 12, 0, tzinfo=UTC), template="app-downloads-sms", channel="sms"
    )
    assert result["status"] == "sent"
    [(phone, text, *_)] = sent_sms()
    assert phone == "+447700900123"
    assert "app" in text.lower()


def test_channels_without_delivery_yet_are_skipped_not_failed(contact: None) -> None:
    result = send_at(datetime.now(UTC), template="window-shoppers-on-site", channel="on_site")
    assert result == {
        "status": "skipped",
        "reason": "channel-not-deliverable-yet",
        "channel": "on_site",
    }
