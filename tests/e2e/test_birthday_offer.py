"""Birthday offer on the local stack: the hourly sweep starts it on each contact's birthday.

The sweep function is invoked here at the scenario's journey time, exactly as its
EventBridge schedule invokes it (a Scheduled Event whose `time` is when it fires). The
stack's own schedule is not waited for: its next run only ever moves forward, so once an
earlier scenario has taken journey time past a moment, the schedule stays silent while a
later scenario restarts the clock before it.

Scenarios stand in the days before the harness's workday morning (2026-11-24) so that
advancing journey time by days never makes that schedule catch up hour by hour.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from journeys.local.outbox import OutboxEntry
from tests.helpers.local import Journeys, channels, contact_record, first_run, runs

pytestmark = pytest.mark.e2e

#: Wednesday 18 November 2026, 08:01 in London (GMT): the sweep of this hour sees the
#: 09:00 birthdays of the day.
BIRTHDAY_MORNING = datetime(2026, 11, 18, 8, 1, tzinfo=UTC)
#: Journey time runs at this speed while contacts are set up and the sweep runs, so the
#: sweep still sees 09:00 ahead of it on a busy machine (an hour is 30 real seconds).
SETTING_UP = 120
DAY = 86400
LONDON = "Europe/London"


def sweep(journeys: Journeys) -> int:
    """One run of the hourly sweep at the current journey time, as EventBridge sends it;
    how many messages it enqueued."""
    now = journeys.stack.clock.now()
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/e2e-sweep"],
        "detail": {},
    }
    return int(journeys.stack.invoke("SweepFunction", event)["enqueued"])


def opened(journeys: Journeys, message: OutboxEntry) -> None:
    """The recipient opens `message`: SES publishes an Open event to the feedback topic."""
    sns = journeys.stack.client("sns")
    topic = next(
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].rsplit(":", 1)[-1].startswith("journeys-ses-feedback")
    )
    record = {
        "eventType": "Open",
        "mail": {
            "messageId": message.message_id,
            "timestamp": message.at,
            "destination": [message.to],
            "tags": {
                "contact_id": [message.contact_id],
                "workflow_id": [message.workflow_id],
                "step_id": [message.step_id],
            },
        },
        "open": {"timestamp": journeys.stack.clock.now().isoformat(), "userAgent": "e2e"},
    }
    sns.publish(TopicArn=topic, Message=json.dumps(record))


def email_contact(name: str, birthday: str) -> dict[str, Any]:
    return {
        "attributes": {"first_name": name, "birthday": birthday},
        "channels": {"email": {"address": f"{name.lower()}@example.com", "status": "subscribed"}},
        "time_zone": LONDON,
    }


def test_an_emailable_contact_gets_a_personal_coupon_by_email_and_opening_it_tags_them(
    journeys: Journeys,
) -> None:
    # GIVEN Ana, whose birthday is today, and Ben, whose birthday is tomorrow
    journeys.at(BIRTHDAY_MORNING, speed=SETTING_UP)
    ana = journeys.contact("ana", **email_contact("Ana", "1990-11-18"))
    ben = journeys.contact("ben", **email_contact("Ben", "1988-11-19"))
    # WHEN the hourly sweep runs (twice: a retried run must not start a second journey)
    assert sweep(journeys) >= 1
    sweep(journeys)
    journeys.speed(3600)
    # THEN Ana's journey creates her coupon and emails it to her
    execution = first_run(journeys, "birthday-offer", ana)
    email = journeys.messages(ana, 1)[0]
    assert (email.channel, email.to, email.step_label) == (
        "email",
        "ana@example.com",
        "Email: happy birthday + 20 % off",
    )
    assert email.subject is not None and email.subject.startswith("Happy birthday, Ana!")
    assert "Your personal code: BDAY-7F3K" in email.body  # the sandbox's coupon
    assert [(c.channel, c.to) for c in journeys.calls(ana)] == [
        ("fetch", "POST https://coupons.example.com/v1/coupons")
    ]
    assert len(runs(journeys, "birthday-offer", ana)) == 1
    assert runs(journeys, "birthday-offer", ben) == []
    # WHEN she opens the email and the 3 days to open have passed
    journeys.until(lambda: "Give them 3 days to open" in journeys.path(execution), 10)
    opened(journeys, email)
    journeys.stack.clock.advance(3 * DAY)
    # THEN she is tagged as an opener and waits for the coupon to expire
    journeys.until(lambda: "Wait until the coupon expires" in journeys.path(execution), 10)
    path = journeys.path(execution)
    assert path[path.index("Reachable by email?") :] == [
        "Reachable by email?",
        "Email: happy birthday + 20 % off",
        "Give them 3 days to open",
        "Check: Opened the birthday email?",
        "Opened the birthday email?",
        "Tag: opened birthday email",
        "Wait until the coupon expires",
    ]
    assert "birthday-email-opened" in contact_record(journeys, ana)["tags"]
    assert channels(journeys.sent(ana)) == ["email"]


def test_without_email_the_greeting_goes_by_sms_and_without_any_channel_nothing_is_sent(
    journeys: Journeys,
) -> None:
    # GIVEN two birthdays today: Carl has only a phone, Dora no channel at all
    journeys.at(BIRTHDAY_MORNING, speed=SETTING_UP)
    carl = journeys.contact(
        "carl",
        attributes={"first_name": "Carl", "birthday": "1979-11-18"},
        channels={"sms": {"address": "+447700900123", "status": "subscribed"}},
        time_zone=LONDON,
    )
    dora = journeys.contact("dora", attributes={"first_name": "Dora", "birthday": "2001-11-18"})
    # WHEN the hourly sweep runs
    sweep(journeys)
    journeys.speed(3600)
    # THEN Carl gets his coupon code by SMS
    sms = journeys.messages(carl, 1)[0]
    assert (sms.channel, sms.to, sms.step_label) == (
        "sms",
        "+447700900123",
        "SMS: happy birthday + 20 % off",
    )
    assert sms.body.startswith("Happy birthday Carl! Enjoy 20% off at Example with code BDAY-7F3K")
    carl_execution = first_run(journeys, "birthday-offer", carl)
    journeys.until(lambda: "Give them 3 days to open" in journeys.path(carl_execution), 10)
    assert "Email: happy birthday + 20 % off" not in journeys.path(carl_execution)
    # AND Dora's journey ends without a word (her coupon was still created)
    dora_execution = journeys.finished(first_run(journeys, "birthday-offer", dora))
    assert dora_execution["status"] == "SUCCEEDED"
    path = journeys.path(dora_execution)
    assert path[path.index("Reachable by email?") :] == [
        "Reachable by email?",
        "Check: Reachable by SMS?",
        "Reachable by SMS?",
        "No way to wish happy birthday",
        "Journey completed",
    ]
    assert journeys.sent(dora) == []
    assert channels(journeys.calls(dora)) == ["fetch"]


def test_redeeming_the_coupon_ends_the_journey_tags_the_redeemer_and_tells_customer_care(
    journeys: Journeys,
) -> None:
    # GIVEN Ana got her birthday email and is waiting out the 3 days to open it
    journeys.at(BIRTHDAY_MORNING, speed=SETTING_UP)
    ana = journeys.contact("ana", **email_contact("Ana", "1990-11-18"))
    sweep(journeys)
    journeys.speed(3600)
    execution = first_run(journeys, "birthday-offer", ana)
    journeys.messages(ana, 1)
    journeys.until(lambda: "Give them 3 days to open" in journeys.path(execution), 10)
    # WHEN she redeems another campaign's coupon, then the birthday coupon
    journeys.event(ana, "coupon_redeemed", campaign="black-friday", code="BF-1")
    journeys.event(ana, "coupon_redeemed", campaign="birthday", code="BDAY-7F3K")
    # THEN only the birthday redemption is the goal: the journey ends there, she is tagged
    # and customer care gets a note about her
    finished = journeys.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    path = journeys.path(execution)
    assert path[path.index("Give them 3 days to open") :] == [
        "Give them 3 days to open",
        "Redeemed the birthday offer",
        "Tag: redeemed birthday offer",
        "Tell customer care about the redemption",
        "Goal reached",
    ]
    assert "Opened the birthday email?" not in path
    sent = journeys.messages(ana, 2)
    assert channels(sent) == ["email", "team"]
    alert = sent[1]
    assert alert.to == "customer-care@example.com"
    assert alert.subject == "Birthday offer redeemed by Ana"
    assert "(ana@example.com) just used their birthday coupon" in alert.body
    assert "birthday-redeemer" in contact_record(journeys, ana)["tags"]
