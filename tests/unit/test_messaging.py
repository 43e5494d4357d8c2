"""journeys.messaging without AWS: policy, decisions, signed links, MIME content."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import yaml
from botocore.exceptions import ClientError
from pydantic import ValidationError

from journeys.contacts import ChannelState, ContactView
from journeys.exceptions import ChannelUnreachable, SendDeferred, TransientError
from journeys.messaging import (
    DELIVERABLE_CHANNELS,
    Defer,
    DeliveryOptions,
    LinkSigner,
    Send,
    SendRequest,
    Skip,
    build_email,
    cap_until,
    decide,
    deliver,
    deliver_sms,
    message_tags,
    normalize_address,
    push_message,
    quiet_until,
    sign_link,
    verify_link,
    zone_for,
)
from journeys.templates import (
    TEMPLATE_ADAPTER,
    EmailTemplate,
    PushTemplate,
    SmsTemplate,
    TeamTemplate,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "workflows" / "templates"
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SECRET = b"0123456789abcdef0123456789abcdef"
SIGNER = LinkSigner("https://links.example.com/v1/links", SECRET)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def load_template(name: str) -> Any:
    return TEMPLATE_ADAPTER.validate_python(
        yaml.safe_load((TEMPLATES / f"{name}.yaml").read_text(encoding="utf-8"))
    )


def request(channel: str = "email", **fields: Any) -> SendRequest:
    payload: dict[str, Any] = {
        "contact_id": "c-4711",
        "workflow_id": "cart-abandonment",
        "step_id": "cart-email",
        "step_label": "Email cart reminder",
        "execution_id": "arn:aws:states:us-east-1:123456789012:execution:cart:c-4711",
        "trigger": {"key": "event:added_to_cart", "properties": {"product_name": "Red shoes"}},
        "data": {},
        "channel": channel,
        "template": "some-template",
    }
    payload.update(fields)
    return SendRequest.model_validate(payload)


def contact(**fields: Any) -> ContactView:
    values: dict[str, Any] = {
        "contact_id": "c-4711",
        "attributes": {"first_name": "Zoë"},
        "channels": {
            "email": ChannelState("zoe@example.org"),
            "sms": ChannelState("+44 7700 900123"),
            "push": ChannelState("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1"),
        },
    }
    values.update(fields)
    return ContactView(**values)


EMAIL = EmailTemplate(
    channel="email",
    subject="Hi {{ contact.first_name }}",
    preheader="Your cart is saved",
    html="<p>{{ event.product_name }}</p><a href='{{ links.unsubscribe }}'>Unsubscribe</a>",
    text="{{ event.product_name }}\nUnsubscribe: {{ links.unsubscribe }}\n",
)
RECEIPT = EmailTemplate(
    channel="email", transactional=True, subject="Receipt", html="<p>Paid</p>", text="Paid"
)
SMS = SmsTemplate(channel="sms", text="Hi {{ contact.first_name }}, your cart is waiting.\n")
WHATSAPP = SmsTemplate(channel="whatsapp", text="Hi {{ contact.first_name }}")
PUSH = PushTemplate(channel="push", title="Cart", body="{{ event.product_name }}", url="")
TEAM = TeamTemplate(channel="team", subject="Lead {{ contact.id }}", text="Call them")
POLICY = {
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "frequency_cap": {"max": 3, "per_seconds": 86400},
    "default_time_zone": "Europe/London",
}


# --- SendRequest ---------------------------------------------------------------------------


def _send_payloads() -> Iterator[dict[str, Any]]:
    """The send Task payloads of every compiled reference workflow."""

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            parameters = node.get("Parameters")
            if (
                node.get("Type") == "Task"
                and isinstance(parameters, dict)
                and parameters.get("FunctionName") == "${SendFunctionArn}"
            ):
                yield parameters["Payload"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    for path in sorted((ROOT / "state_machines").glob("*.asl.json")):
        yield from walk(json.loads(path.read_text(encoding="utf-8")))


def test_every_compiled_send_payload_is_a_valid_request() -> None:
    runtime = {
        "contact_id": "c-1",
        "execution_id": "arn:exec",
        "trigger": {"key": "event:x"},
        "data": {},
    }
    payloads = list(_send_payloads())
    assert len(payloads) > 20
    channels = set()
    for payload in payloads:
        filled = {key.removesuffix(".$"): value for key, value in payload.items()}
        filled.update({key: runtime[key] for key in runtime if key in filled})
        parsed = SendRequest.model_validate(filled)
        channels.add(parsed.channel)
        if parsed.channel == "team":
            assert parsed.policy.quiet_hours is None and parsed.policy.frequency_cap is None
    assert {"email", "sms", "push", "team"} <= channels


def test_request_ignores_unknown_fields_and_rejects_unknown_channels() -> None:
    parsed = request(future_field=1, policy={**POLICY, "future_rule": {"x": 1}})
    assert not hasattr(parsed, "future_field")
    assert parsed.policy.frequency_cap is not None and parsed.policy.frequency_cap.max == 3
    with pytest.raises(ValidationError, match="channel"):
        request(channel="pigeon")
    with pytest.raises(ValidationError, match="only allowed for team"):
        request(channel="email", to="someone@example.com")
    with pytest.raises(ValidationError):
        request(policy={"quiet_hours": {"start": "9pm", "end": "08:00"}})
    assert request().policy.quiet_hours is None


# --- Quiet hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2025, 1, 15, 22, 30), utc(2025, 1, 16, 8, 0)),  # evening: ends tomorrow
        (utc(2025, 1, 16, 3, 0), utc(2025, 1, 16, 8, 0)),  # after midnight: ends today
        (utc(2025, 1, 15, 21, 0), utc(2025, 1, 16, 8, 0)),  # exactly at the start: quiet
        (utc(2025, 1, 16, 7, 59, 59), utc(2025, 1, 16, 8, 0)),
        (utc(2025, 1, 16, 8, 0), None),  # exactly at the end: allowed
        (utc(2025, 1, 15, 20, 59, 59), None),
        (utc(2025, 1, 15, 12, 0), None),
    ],
)
def test_quiet_hours_crossing_midnight(now: datetime, expected: datetime | None) -> None:
    assert quiet_until(now, LONDON, "21:00", "08:00") == expected  # London is UTC in winter


def test_quiet_hours_within_a_day() -> None:
    assert quiet_until(utc(2025, 1, 15, 12, 30), UTC, "12:00", "14:00") == utc(2025, 1, 15, 14)
    assert quiet_until(utc(2025, 1, 15, 12, 0), UTC, "12:00", "14:00") == utc(2025, 1, 15, 14)
    assert quiet_until(utc(2025, 1, 15, 14, 0), UTC, "12:00", "14:00") is None
    assert quiet_until(utc(2025, 1, 15, 11, 59), UTC, "12:00", "14:00") is None
    assert quiet_until(utc(2025, 1, 15, 11, 59), UTC, "12:00", "12:00") is None  # empty


def test_quiet_hours_follow_the_zone() -> None:
    # 02:00 UTC is 21:00 in New York (EST, UTC-5): quiet until 08:00 EST = 13:00 UTC.
    assert quiet_until(utc(2025, 1, 16, 2, 0), NEW_YORK, "21:00", "08:00") == utc(2025, 1, 16, 13)
    assert quiet_until(utc(2025, 1, 16, 1, 59), NEW_YORK, "21:00", "08:00") is None
    # Summer: London is UTC+1, so 21:00 local is 20:00 UTC and 08:00 local is 07:00 UTC.
    assert quiet_until(utc(2025, 7, 1, 20, 0), LONDON, "21:00", "08:00") == utc(2025, 7, 2, 7)
    # The night the clocks go forward (30 March 2025): 08:00 BST is 07:00 UTC.
    assert quiet_until(utc(2025, 3, 29, 23, 0), LONDON, "21:00", "08:00") == utc(2025, 3, 30, 7)
    # An end inside the skipped hour (01:30 does not exist that night) ends at 02:30 BST.
    assert quiet_until(utc(2025, 3, 30, 0, 45), LONDON, "00:00", "01:30") == utc(2025, 3, 30, 1, 30)


def test_quiet_hours_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_until(datetime(2025, 1, 15, 22), LONDON, "21:00", "08:00")
    with pytest.raises(ValueError, match="HH:MM"):
        quiet_until(utc(2025, 1, 15, 22), LONDON, "9pm", "08:00")


# --- Frequency cap -------------------------------------------------------------------------

NOW = utc(2025, 1, 15, 12, 0)
DAY = 86400


def test_cap_under_the_limit_allows_sending() -> None:
    assert cap_until([], 3, DAY, NOW) is None
    assert cap_until([NOW - timedelta(hours=1), NOW - timedelta(hours=2)], 3, DAY, NOW) is None


def test_cap_at_the_limit_waits_for_the_oldest_to_leave() -> None:
    sends = [NOW - timedelta(hours=h) for h in (1, 5, 20)]
    assert cap_until(sends, 3, DAY, NOW) == NOW + timedelta(hours=4)  # 20 h ago + 24 h
    # Order does not matter, and at that moment the cap allows it.
    assert cap_until(list(reversed(sends)), 3, DAY, NOW) == NOW + timedelta(hours=4)
    assert cap_until(sends, 3, DAY, NOW + timedelta(hours=4)) is None


def test_cap_over_the_limit_waits_until_enough_have_left() -> None:
    # Five counted sends and a cap of 3: three must leave, the third oldest last.
    sends = [NOW - timedelta(hours=h) for h in (1, 2, 3, 10, 20)]
    assert cap_until(sends, 3, DAY, NOW) == NOW - timedelta(hours=3) + timedelta(days=1)


def test_cap_window_edges() -> None:
    period = timedelta(seconds=DAY)
    exactly_out = NOW - period
    just_in = NOW - period + timedelta(microseconds=1)
    recent = [NOW - timedelta(hours=1), NOW - timedelta(hours=2)]
    assert cap_until([exactly_out, *recent], 3, DAY, NOW) is None
    assert cap_until([just_in, *recent], 3, DAY, NOW) == NOW + timedelta(microseconds=1)
    assert cap_until([NOW], 1, DAY, NOW) == NOW + period  # a send this very moment counts


def test_cap_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        cap_until([], 0, DAY, NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        cap_until([datetime(2025, 1, 15)], 1, DAY, NOW)


# --- decide --------------------------------------------------------------------------------


def test_decide_sends_email_with_signed_links() -> None:
    decision = decide(request(), contact(), EMAIL, [], NOW, signer=SIGNER)
    assert isinstance(decision, Send)
    assert decision.channel == "email" and decision.address == "zoe@example.org"
    assert decision.rendered["subject"] == "Hi Zoë"
    assert decision.rendered["preheader"] == "Your cart is saved"
    assert decision.unsubscribe_url is not None
    assert decision.unsubscribe_url in decision.rendered["text"]
    # The html is autoescaped: & in the URL becomes &amp;.
    assert decision.unsubscribe_url.replace("&", "&amp;") in decision.rendered["html"]
    query = parse_qs(urlsplit(decision.unsubscribe_url).query)
    assert verify_link(query, SECRET) == ("c-4711", "cart-abandonment", "unsubscribe")


def test_decide_transactional_email_has_no_unsubscribe_header() -> None:
    decision = decide(request(), contact(), RECEIPT, [], NOW)
    assert isinstance(decision, Send) and decision.unsubscribe_url is None
    assert decision.transactional


def test_marketing_email_needs_a_signer() -> None:
    with pytest.raises(ValueError, match="unsubscribe"):
        decide(request(), contact(), EMAIL, [], NOW)


@pytest.mark.parametrize(
    ("channels", "reason"),
    [
        ({}, "no-address"),
        ({"email": ChannelState(None)}, "no-address"),
        ({"email": ChannelState("zoe@example.org", "unsubscribed")}, "unsubscribed"),
        ({"email": ChannelState("zoe@example.org", "bounced")}, "bounced"),
        ({"email": ChannelState("zoe@example.org", "complained")}, "complained"),
        ({"email": ChannelState("zoe@example.org", "pending")}, "unreachable"),
        ({"email": ChannelState("not an address")}, "invalid-address"),
    ],
)
def test_decide_skips_unreachable_contacts(
    channels: Mapping[str, ChannelState], reason: str
) -> None:
    decision = decide(request(), contact(channels=channels), EMAIL, [], NOW, signer=SIGNER)
    assert isinstance(decision, Skip) and decision.reason == reason
    assert isinstance(decision.error(), ChannelUnreachable)


def test_skip_comes_before_defer() -> None:
    unsubscribed = contact(channels={"email": ChannelState("zoe@example.org", "unsubscribed")})
    late = utc(2025, 1, 15, 23, 0)
    decision = decide(request(policy=POLICY), unsubscribed, EMAIL, [], late, signer=SIGNER)
    assert isinstance(decision, Skip)


def test_decide_defers_in_quiet_hours() -> None:
    late = utc(2025, 1, 15, 23, 0, 0, 500)
    decision = decide(request(policy=POLICY), contact(), EMAIL, [], late, signer=SIGNER)
    assert decision == Defer(utc(2025, 1, 16, 8, 0))
    assert isinstance(decision, Defer)
    assert decision.timestamp == "2025-01-16T08:00:00Z"
    error = decision.error()
    assert isinstance(error, SendDeferred) and str(error) == "2025-01-16T08:00:00Z"


def test_decide_defers_over_the_cap_and_rounds_up_to_the_second() -> None:
    sends = [NOW - timedelta(hours=1), NOW - timedelta(hours=2), NOW - timedelta(hours=3)]
    sends[2] += timedelta(microseconds=250)
    decision = decide(request(policy=POLICY), contact(), EMAIL, sends, NOW, signer=SIGNER)
    assert decision == Defer(NOW + timedelta(hours=21, seconds=1))


def test_cap_ending_inside_quiet_hours_defers_once_to_their_end() -> None:
    # The cap frees up at 23:00, inside quiet hours: one wait until 08:00, not two.
    sends = [utc(2025, 1, 14, 23, 0)] * 3
    decision = decide(request(policy=POLICY), contact(), EMAIL, sends, NOW, signer=SIGNER)
    assert decision == Defer(utc(2025, 1, 16, 8, 0))


def test_time_zone_contact_then_default_then_utc() -> None:
    ny = contact(time_zone="America/New_York")
    nine_pm_london = utc(2025, 1, 15, 21, 30)  # 16:30 in New York
    allowed = decide(request(policy=POLICY), ny, EMAIL, [], nine_pm_london, signer=SIGNER)
    assert isinstance(allowed, Send)
    held = decide(request(policy=POLICY), contact(), EMAIL, [], nine_pm_london, signer=SIGNER)
    assert isinstance(held, Defer)  # default_time_zone Europe/London
    assert zone_for(contact(time_zone="Mars/Olympus_Mons"), request(policy=POLICY).policy) == LONDON
    assert zone_for(contact(), request().policy) is UTC
    assert zone_for(ny, request(policy=POLICY).policy) == NEW_YORK


def test_to_attribute_recipients() -> None:
    parent = request(channel="sms", to_attribute="parent_phone")
    with_parent = contact(attributes={"first_name": "Zoë", "parent_phone": "+44 (0)7700-900456"})
    sent = decide(parent, with_parent, SMS, [], NOW)
    assert isinstance(sent, Send) and sent.address == "+447700900456"

    # A national number without a country code cannot be sent to.
    with_parent = contact(attributes={"parent_phone": "07700 900456"})
    skipped = decide(parent, with_parent, SMS, [], NOW)
    assert isinstance(skipped, Skip) and skipped.reason == "invalid-address"

    missing = decide(parent, contact(), SMS, [], NOW)
    assert isinstance(missing, Skip) and missing.reason == "no-address"

    # The contact's own SMS status decides for their journey's messages to others ...
    for status in ("unsubscribed", "complained"):
        opted_out = contact(
            attributes={"parent_phone": "+447700900456"},
            channels={"sms": ChannelState("+447700900123", status)},
        )
        decision = decide(parent, opted_out, SMS, [], NOW)
        assert isinstance(decision, Skip) and decision.reason == status
    # ... but a bounce on the contact's own number says nothing about the parent's,
    bounced = contact(
        attributes={"parent_phone": "+447700900456"},
        channels={"sms": ChannelState("+447700900123", "bounced")},
    )
    assert isinstance(decide(parent, bounced, SMS, [], NOW), Send)
    # unless it is the same number.
    same = contact(
        attributes={"parent_phone": "+447700900123"},
        channels={"sms": ChannelState("+447700900123", "bounced")},
    )
    assert decide(parent, same, SMS, [], NOW) == Skip("bounced", "sms is bounced")
    # A contact with no phone of their own can still have their parent texted.
    no_phone = contact(attributes={"parent_phone": "+447700900456"}, channels={})
    assert isinstance(decide(parent, no_phone, SMS, [], NOW), Send)


def test_team_alerts_ignore_reachability_and_policy() -> None:
    nobody = contact(
        channels={"email": ChannelState("zoe@example.org", "unsubscribed")},
        attributes={"owner_email": "owner@example.com"},
    )
    midnight = utc(2025, 1, 16, 0, 0)
    full = [midnight - timedelta(minutes=m) for m in range(10)]
    fixed = request(channel="team", to="sales@example.com", policy=POLICY)
    decision = decide(fixed, nobody, TEAM, full, midnight)
    assert decision == Send(
        "team", "sales@example.com", {"subject": "Lead c-4711", "text": "Call them"}
    )

    owner = request(channel="team", to_attribute="owner_email")
    decision = decide(owner, nobody, TEAM, [], NOW)
    assert isinstance(decision, Send) and decision.address == "owner@example.com"

    missing = decide(owner, contact(), TEAM, [], NOW)
    assert isinstance(missing, Skip) and missing.reason == "no-address"
    # Never the contact's own address when the alert names no recipient.
    nowhere = decide(request(channel="team"), contact(), TEAM, [], NOW)
    assert isinstance(nowhere, Skip) and nowhere.reason == "no-address"


def test_sms_whatsapp_templates_are_interchangeable_others_are_not() -> None:
    decision = decide(request(channel="sms"), contact(), WHATSAPP, [], NOW)
    assert isinstance(decision, Send) and decision.rendered == {"text": "Hi Zoë"}
    with pytest.raises(ValueError, match="template"):
        decide(request(channel="email"), contact(), SMS, [], NOW, signer=SIGNER)


def test_push_decision_drops_empty_optional_fields() -> None:
    decision = decide(request(channel="push"), contact(), PUSH, [], NOW)
    assert isinstance(decision, Send)
    assert decision.rendered == {"title": "Cart", "body": "Red shoes"}


def test_addresses_are_normalized() -> None:
    assert normalize_address("sms", "0044 7700 900123") == "+447700900123"
    assert normalize_address("sms", "+1 (415) 555-0100") == "+14155550100"
    assert normalize_address("sms", "+44 (0)20 7946 0000") == "+442079460000"
    assert normalize_address("sms", "07700 900123") is None  # no country code
    assert normalize_address("email", " zoe@example.org ") == "zoe@example.org"
    assert normalize_address("email", "zoe@localhost") is None
    assert normalize_address("push", "token-1") == "token-1"


def test_real_template_renders_with_contact_event_data_and_links() -> None:
    template = load_template("cart-reminder-email")
    data = {
        "similar": {
            "products": [
                {"name": "Blue <shoes>", "price": "£40", "url": "https://shop.example.com/b"},
                {"name": "Green shoes", "price": "£45", "url": "https://shop.example.com/g"},
            ]
        }
    }
    decision = decide(request(data=data), contact(), template, [], NOW, signer=SIGNER)
    assert isinstance(decision, Send)
    rendered = decision.rendered
    assert rendered["subject"] == "Zoë, you left something in your cart"
    assert "You left <strong>Red shoes</strong>" in rendered["html"]
    assert "Blue &lt;shoes&gt;" in rendered["html"]  # html is autoescaped
    assert "- Blue <shoes> (£40): https://shop.example.com/b" in rendered["text"]  # text is not
    assert f"Unsubscribe: {decision.unsubscribe_url}" in rendered["text"]

    raw = build_email(
        "Shop <news@example.com>", decision.address, rendered, decision.unsubscribe_url
    )
    parsed = parse(raw)
    assert parsed["Subject"] == "Zoë, you left something in your cart"
    assert parsed["List-Unsubscribe"] == f"<{decision.unsubscribe_url}>"
    html_part = parsed.get_body(preferencelist=("html",))
    assert html_part is not None
    assert content(html_part).startswith("<span style=")  # the preheader, hidden


def test_missing_values_render_empty_not_fail() -> None:
    template = load_template("cart-reminder-email")
    bare = contact(attributes={})
    decision = decide(request(trigger={"key": "event:x"}), bare, template, [], NOW, signer=SIGNER)
    assert isinstance(decision, Send)
    assert decision.rendered["subject"] == "Hi, you left something in your cart"
    assert "some items" in decision.rendered["text"]


# --- Signed links --------------------------------------------------------------------------


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_link_round_trip() -> None:
    url = sign_link("https://x.example.com/l", "preferences", "c 1/ü&x", "wf", SECRET)
    assert url.startswith("https://x.example.com/l?action=preferences&")
    assert verify_link(query_of(url), SECRET) == ("c 1/ü&x", "wf", "preferences")
    assert verify_link(parse_qs(urlsplit(url).query), SECRET) == ("c 1/ü&x", "wf", "preferences")
    with_query = sign_link("https://x.example.com/l?src=email", "unsubscribe", "c", "wf", SECRET)
    assert "?src=email&action=unsubscribe&" in with_query
    assert verify_link(query_of(with_query), SECRET) == ("c", "wf", "unsubscribe")


@pytest.mark.parametrize(
    "tamper",
    [
        {"contact": "c-4712"},
        {"workflow": "other"},
        {"action": "preferences"},
        {"action": "delete"},
        {"sig": "A" * 43},
        {"sig": "ü" * 43},
        {"sig": ""},
    ],
)
def test_tampered_links_fail(tamper: dict[str, str]) -> None:
    query = query_of(sign_link("https://x.example.com", "unsubscribe", "c-4711", "wf", SECRET))
    assert verify_link({**query, **tamper}, SECRET) is None


def test_links_need_the_right_secret() -> None:
    query = query_of(sign_link("https://x.example.com", "unsubscribe", "c-4711", "wf", SECRET))
    assert verify_link(query, b"another secret") is None
    assert verify_link(query, b"") is None
    assert verify_link({k: v for k, v in query.items() if k != "sig"}, SECRET) is None
    # Rotation: links signed with the old secret still work while it is listed.
    assert verify_link(query, b"new secret", previous_secrets=[SECRET]) is not None
    with pytest.raises(ValueError, match="forgeable"):
        sign_link("https://x.example.com", "unsubscribe", "c", "wf", b"")
    with pytest.raises(ValueError, match="unknown link action"):
        sign_link("https://x.example.com", "delete", "c", "wf", SECRET)


# --- MIME ----------------------------------------------------------------------------------

RENDERED = {
    "subject": "Grüße, Zoë — 20 % off",
    "html": "<html><head></head><body><p>Hallo Zoë</p></body></html>",
    "text": "Hallo Zoë",
    "preheader": "Nur heute",
}
UNSUBSCRIBE = sign_link(
    "https://links.example.com/v1/links", "unsubscribe", "c-4711-" + "x" * 60, "wf", SECRET
)


def content(part: EmailMessage) -> str:
    """A part's decoded text with its wire line ends (CRLF) read as newlines."""
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_marketing_email_structure() -> None:
    sent_at = utc(2025, 1, 15, 12, 0)
    raw = build_email(
        "Café Shop <news@example.com>", "zoe@example.org", RENDERED, UNSUBSCRIBE, date=sent_at
    )
    assert raw.isascii() and b"\r\n" in raw  # 7-bit clean, CRLF
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Grüße, Zoë — 20 % off"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 encoded in the header
    assert message["From"].addresses[0].display_name == "Café Shop"
    assert message["To"] == "zoe@example.org"
    assert message["Date"].datetime == sent_at
    assert message["Message-ID"].endswith("@example.com>")
    assert message["MIME-Version"] == "1.0"
    # One-click unsubscribe (RFC 8058), the URL kept whole on one line.
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>\r\n".encode() in raw
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert content(parts[0]) == "Hallo Zoë\n"
    html_body = content(parts[1])
    assert html_body.startswith('<html><head></head><body>\n<span style="display:none')
    assert ">Nur heute</span><p>Hallo Zoë</p>" in html_body


def test_transactional_email_has_no_list_unsubscribe() -> None:
    message = parse(build_email("news@example.com", "zoe@example.org", RENDERED, None))
    assert "List-Unsubscribe" not in message
    assert "List-Unsubscribe-Post" not in message


def test_team_alert_email_is_plain_text() -> None:
    raw = build_email(
        "alerts@example.com", "sales@example.com", {"subject": "Lead", "text": "Call"}, None
    )
    message = parse(raw)
    assert message.get_content_type() == "text/plain"
    assert content(message) == "Call\n"


def test_email_headers_cannot_be_injected() -> None:
    rendered = {**RENDERED, "subject": "Hi\r\nBcc: victim@example.com"}
    message = parse(build_email("news@example.com", "zoe@example.org", rendered, UNSUBSCRIBE))
    assert message["Subject"] == "Hi Bcc: victim@example.com"
    assert "Bcc" not in message


def test_preheader_argument_and_missing_body_tag() -> None:
    rendered = {"subject": "s", "text": "t", "html": "<p>x</p>"}
    message = parse(
        build_email("a@example.com", "b@example.com", rendered, None, preheader="P & Q")
    )
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    assert ">P &amp; Q</span>\n<p>x</p>" in content(html_part)


def test_unsubscribe_url_must_be_https() -> None:
    with pytest.raises(ValueError, match="https"):
        build_email("a@example.com", "b@example.com", RENDERED, "http://links.example.com/u")
    local = "http://localhost:3000/u?x=1"
    message = parse(build_email("a@example.com", "b@example.com", RENDERED, local))
    assert message["List-Unsubscribe"] == f"<{local}>"


# --- Delivery helpers without AWS ----------------------------------------------------------


def test_push_message_structure() -> None:
    document = json.loads(push_message("Title", "Body", "https://shop.example.com/cart"))
    assert document["default"] == "Title: Body"
    fcm = json.loads(document["GCM"])["fcmV1Message"]["message"]
    assert fcm["notification"] == {"title": "Title", "body": "Body"}
    assert fcm["data"] == {"url": "https://shop.example.com/cart"}
    apns = json.loads(document["APNS"])
    assert apns == {
        "aps": {"alert": {"title": "Title", "body": "Body"}},
        "url": "https://shop.example.com/cart",
    }
    assert document["APNS_SANDBOX"] == document["APNS"]
    assert (
        "data"
        not in json.loads(json.loads(push_message("T", "B", None))["GCM"])["fcmV1Message"][
            "message"
        ]
    )


def test_deliverable_channels_and_undeliverable_ones() -> None:
    assert sorted(DELIVERABLE_CHANNELS) == ["email", "push", "sms", "team"]
    send = Send("web_push", "https://push.example.com/sub", {"title": "t", "body": "b"})
    with pytest.raises(ValueError, match="no delivery for channel 'web_push'"):
        deliver(send, DeliveryOptions(sender="news@example.com"))


def test_message_tags() -> None:
    assert message_tags(request()) == {
        "contact_id": "c-4711",
        "workflow_id": "cart-abandonment",
        "step_id": "cart-email",
    }


class FailingClient:
    def __init__(self, code: str, status: int = 400) -> None:
        self.error = ClientError(
            {
                "Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "Publish",
        )

    def publish(self, **_: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("Throttling", 400, TransientError),
        ("InternalError", 500, TransientError),
        ("Whatever", 503, TransientError),
        ("EndpointDisabled", 400, ChannelUnreachable),
        ("InvalidParameter", 400, ClientError),
    ],
)
def test_aws_errors_are_mapped(code: str, status: int, raised: type[Exception]) -> None:
    with pytest.raises(raised):
        deliver_sms("+447700900123", "hi", client=FailingClient(code, status))


@pytest.mark.parametrize("contact_id", ["c-1", "ada@example.com", "user:42", "Zoë Ω/7", "b32.x"])
def test_contact_ids_survive_ses_tags(contact_id: str) -> None:
    from journeys.messaging import _TAG_CHARS, decode_tag_value, encode_tag_value

    tagged = encode_tag_value(contact_id)
    assert not _TAG_CHARS.search(tagged)  # SES accepts it as is
    assert decode_tag_value(tagged) == contact_id
