"""Delivery on moto: SES v2 raw email, SMS and mobile push through SNS."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from journeys.contacts import ChannelState, ContactView
from journeys.exceptions import ChannelUnreachable
from journeys.messaging import (
    Clients,
    DeliveryOptions,
    LinkSigner,
    Send,
    SendRequest,
    build_email,
    decide,
    deliver,
    deliver_email,
    deliver_push,
    deliver_sms,
    message_tags,
    push_endpoint,
    verify_link,
)
from journeys.templates import TEMPLATE_ADAPTER

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
SENDER = "Journeys Shop <news@shop.example.com>"
SECRET = b"functional-test-secret-0123456789"
SIGNER = LinkSigner("https://links.shop.example.com/v1/links", SECRET)
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sesv2 = boto3.client("sesv2", region_name=REGION)
        sesv2.create_email_identity(EmailIdentity="shop.example.com")  # the sending domain
        sesv2.create_configuration_set(ConfigurationSetName="journeys")
        yield {"sesv2": sesv2, "sns": boto3.client("sns", region_name=REGION)}


def sent_emails() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def parse(raw: str) -> EmailMessage:
    message = email.message_from_string(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def request(channel: str, template: str, **fields: Any) -> SendRequest:
    return SendRequest.model_validate(
        {
            "contact_id": "c-4711",
            "workflow_id": "cart-abandonment",
            "step_id": f"cart-{channel}",
            "step_label": f"{channel} cart reminder",
            "execution_id": "arn:aws:states:us-east-1:123456789012:execution:cart:c-4711",
            "trigger": {"key": "event:added_to_cart", "properties": {"product_name": "Red shoes"}},
            "data": {},
            "channel": channel,
            "template": template,
            **fields,
        }
    )


def template(name: str) -> Any:
    source = (ROOT / "workflows" / "templates" / f"{name}.yaml").read_text(encoding="utf-8")
    return TEMPLATE_ADAPTER.validate_python(yaml.safe_load(source))


def contact(**channels: ChannelState) -> ContactView:
    return ContactView(
        contact_id="c-4711",
        attributes={"first_name": "Zoë", "owner_email": "owner@shop.example.com"},
        channels=channels,
        time_zone="Europe/London",
    )


def test_raw_email_keeps_one_click_unsubscribe(aws: dict[str, Any]) -> None:
    url = SIGNER.links("c-4711", "cart-abandonment")["unsubscribe"]
    rendered = {"subject": "Grüße, Zoë", "text": "Hallo", "html": "<p>Hallo</p>"}
    raw = build_email(SENDER, "zoe@example.org", rendered, url, preheader="Nur heute")

    message_id = deliver_email(raw, "journeys", aws["sesv2"], tags={"contact_id": "c 4711"})

    [sent] = sent_emails()
    assert sent.id == message_id
    assert sent.source == "news@shop.example.com"  # moto keeps the address of From
    assert "zoe@example.org" in sent.destinations
    message = parse(sent.raw_data)
    assert message["Subject"] == "Grüße, Zoë"
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


def test_unverified_sender_is_rejected_not_retried(aws: dict[str, Any]) -> None:
    raw = build_email(
        "news@elsewhere.example", "zoe@example.org", {"subject": "s", "text": "t"}, None
    )
    with pytest.raises(ClientError, match="MessageRejected"):
        deliver_email(raw, None, aws["sesv2"])


def test_decided_marketing_email_end_to_end(aws: dict[str, Any]) -> None:
    decision = decide(
        request("email", "cart-reminder-email"),
        contact(email=ChannelState("zoe@example.org")),
        template("cart-reminder-email"),
        [],
        NOW,
        signer=SIGNER,
    )
    assert isinstance(decision, Send)
    options = DeliveryOptions(sender=SENDER, configuration_set="journeys")
    tags = message_tags(request("email", "cart-reminder-email"))

    message_id = deliver(decision, options, Clients(sesv2=aws["sesv2"]), now=NOW, tags=tags)

    [sent] = sent_emails()
    assert sent.id == message_id
    message = parse(sent.raw_data)
    assert message["Subject"] == "Zoë, you left something in your cart"
    assert message["Date"].datetime == NOW
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert verify_link(parse_qs(urlsplit(unsubscribe).query), SECRET) == (
        "c-4711",
        "cart-abandonment",
        "unsubscribe",
    )
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and unsubscribe in text.get_content()


def test_team_alert_goes_by_plain_email(aws: dict[str, Any]) -> None:
    # The contact unsubscribed from email: the alert to their owner still goes out.
    decision = decide(
        request("team", "salesmanago-nurturing-owner-alert", to_attribute="owner_email"),
        contact(email=ChannelState("zoe@example.org", "unsubscribed")),
        template("salesmanago-nurturing-owner-alert"),
        [],
        NOW,
    )
    assert isinstance(decision, Send)
    deliver(decision, DeliveryOptions(sender=SENDER), Clients(sesv2=aws["sesv2"]))

    [sent] = sent_emails()
    message = parse(sent.raw_data)
    assert message["To"] == "owner@shop.example.com"
    assert message.get_content_type() == "text/plain"
    assert "List-Unsubscribe" not in message


def test_sms_is_recorded_by_sns(aws: dict[str, Any]) -> None:
    published: list[dict[str, Any]] = []
    aws["sns"].meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: published.append(params)
    )

    message_id = deliver_sms("+447700900123", "Your cart is waiting", aws["sns"])

    sms = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    assert sms[message_id] == ("+447700900123", "Your cart is waiting")
    # moto does not keep message attributes of SMS; check what was asked for instead.
    assert published[0]["MessageAttributes"]["AWS.SNS.SMS.SMSType"] == {
        "DataType": "String",
        "StringValue": "Promotional",
    }


def test_decided_sms_end_to_end(aws: dict[str, Any]) -> None:
    decision = decide(
        request("sms", "course-progress-reports-parent-sms", to_attribute="parent_phone"),
        ContactView(
            contact_id="c-1", attributes={"first_name": "Ann", "parent_phone": "+44 7700 900456"}
        ),
        template("course-progress-reports-parent-sms"),
        [],
        NOW,
    )
    assert isinstance(decision, Send)
    message_id = deliver(decision, DeliveryOptions(sender=SENDER), Clients(sns=aws["sns"]))
    phone, text = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages[message_id]
    assert phone == "+447700900456"
    assert text == decision.rendered["text"]


def platform_application(sns: Any) -> str:
    response = sns.create_platform_application(
        Name="shop-android", Platform="GCM", Attributes={"PlatformCredential": "fcm-key"}
    )
    return str(response["PlatformApplicationArn"])


def test_push_to_a_platform_endpoint(aws: dict[str, Any]) -> None:
    application = platform_application(aws["sns"])
    endpoint = aws["sns"].create_platform_endpoint(
        PlatformApplicationArn=application, Token="device-token-1"
    )["EndpointArn"]

    message_id = deliver_push(
        endpoint, "Your cart", "Red shoes", "https://shop.example.com/cart", aws["sns"]
    )

    recorded = sns_backends[DEFAULT_ACCOUNT_ID][REGION].platform_endpoints[endpoint].messages
    document = json.loads(recorded[message_id])
    fcm = json.loads(document["GCM"])["fcmV1Message"]["message"]
    assert fcm["notification"] == {"title": "Your cart", "body": "Red shoes"}
    assert fcm["data"] == {"url": "https://shop.example.com/cart"}
    assert json.loads(document["APNS"])["aps"]["alert"]["title"] == "Your cart"


def test_decided_push_with_a_device_token_end_to_end(aws: dict[str, Any]) -> None:
    application = platform_application(aws["sns"])
    decision = decide(
        request("push", "cart-reminder-push"),
        contact(push=ChannelState("device-token-2")),
        template("cart-reminder-push"),
        [],
        NOW,
    )
    assert isinstance(decision, Send)
    options = DeliveryOptions(sender=SENDER, push_application_arn=application)

    message_id = deliver(decision, options, Clients(sns=aws["sns"]))

    endpoint = push_endpoint("device-token-2", application, aws["sns"])  # idempotent
    recorded = sns_backends[DEFAULT_ACCOUNT_ID][REGION].platform_endpoints[endpoint].messages
    document = json.loads(recorded[message_id])
    assert document["default"] == f"{decision.rendered['title']}: {decision.rendered['body']}"


def test_disabled_endpoint_is_unreachable(aws: dict[str, Any]) -> None:
    application = platform_application(aws["sns"])
    endpoint = aws["sns"].create_platform_endpoint(
        PlatformApplicationArn=application, Token="device-token-3"
    )["EndpointArn"]
    aws["sns"].set_endpoint_attributes(EndpointArn=endpoint, Attributes={"Enabled": "false"})
    with pytest.raises(ChannelUnreachable, match="EndpointDisabled"):
        deliver_push(endpoint, "t", "b", None, aws["sns"])
