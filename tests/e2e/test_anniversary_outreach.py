"""Customer anniversary on the local stack: the hourly sweep starts it every year on the
day a contact became a customer.

The sweep function is invoked at the scenario's journey time, as its EventBridge schedule
invokes it (see test_birthday_offer.py for why the stack's own schedule is not waited
for). Scenarios stand in the weeks before the harness's workday morning (2026-11-24), in
London's winter time (local time is UTC).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.local import Journeys, after, channels, contact_record, first_run, sweep

pytestmark = pytest.mark.e2e

#: Wednesday 4 November 2026, 09:01 in London: this hour's sweep sees the 10:00
#: anniversaries of the day.
WEDNESDAY_MORNING = datetime(2026, 11, 4, 9, 1, tzinfo=UTC)
#: Saturday 7 November 2026, 09:01 in London.
SATURDAY_MORNING = datetime(2026, 11, 7, 9, 1, tzinfo=UTC)
#: Journey time while contacts are set up, the sweep runs and journeys take their first
#: steps (an hour is 6 real seconds): a busy machine must not carry them past an hour.
SETTING_UP = 600
DAY = 86400
LONDON = "Europe/London"


def customer(name: str, since: str, **extra: Any) -> dict[str, Any]:
    attributes = {"first_name": name, "customer_since": since, **extra.pop("attributes", {})}
    return {
        "attributes": attributes,
        "channels": {"email": {"address": f"{name.lower()}@example.com", "status": "subscribed"}},
        "time_zone": LONDON,
        **extra,
    }


def waited_until(journeys: Journeys, execution: dict[str, Any], label: str) -> str:
    """When the scheduled Wait `label` was to end (the schedule function's answer). The
    send after it runs a moment later in real time, which at 3600x is up to an hour of
    journey time, so the plan is read rather than the outbox's clock."""
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    for event in events:
        details = event.get("stateEnteredEventDetails") or {}
        if details.get("name") == label:
            return str(json.loads(details["input"])["schedule"]["until"])
    raise AssertionError(f"{execution['name']} never entered {label!r}")


def entered(journeys: Journeys, execution: dict[str, Any], label: str) -> None:
    journeys.until(lambda: label in journeys.path(execution), 10, f"never entered {label!r}")


def test_every_other_customer_gets_15_percent_then_a_reminder_ten_days_later(
    journeys: Journeys,
) -> None:
    # GIVEN two customers since 4 November 2023: Alex reads mail best at 11:00, Ines also
    # uses the mobile app
    journeys.at(WEDNESDAY_MORNING, speed=SETTING_UP)
    alex = journeys.contact("alex", **customer("Alex", "2023-11-04", attributes={"best_hour": 11}))
    ines = journeys.contact(
        "ines",
        **customer(
            "Ines",
            "2023-11-04",
            channels={
                "email": {"address": "ines@example.com", "status": "subscribed"},
                "in_app": {"address": "ines-app-user", "status": "subscribed"},
            },
        ),
    )
    # WHEN the morning sweep runs on their anniversary
    sweep(journeys)
    alex_execution = first_run(journeys, "anniversary-outreach", alex)
    ines_execution = first_run(journeys, "anniversary-outreach", ines)
    journeys.until(lambda: "Wait for a weekday morning" in journeys.path(alex_execution), 10)
    journeys.speed(3600)
    # THEN each gets the 15 % thank-you, Alex at his best hour
    thanks = journeys.messages(alex, 1, timeout=20)[0]
    assert (thanks.channel, thanks.to, thanks.step_label) == (
        "email",
        "alex@example.com",
        "Email: thank-you + 15 % deal",
    )
    assert thanks.subject == "Happy anniversary, Alex - thank you for another year"
    assert "15 % off your next order with the code ANNIV15" in thanks.body
    assert waited_until(journeys, alex_execution, "Wait for a weekday morning") == (
        "2026-11-04T11:00:00Z"
    )
    assert journeys.messages(ines, 1)[0].step_label == "Email: thank-you + 15 % deal"
    assert contact_record(journeys, alex)["attributes"]["anniversary_code"] == "ANNIV15"
    for execution in (alex_execution, ines_execution):
        entered(journeys, execution, "Wait 10 days")
    # WHEN ten days pass without the deal being used
    journeys.stack.clock.advance(10 * DAY)
    # THEN Alex is reminded by email with his code, Ines in the app (in-app messages have
    # no delivery provider yet: the step runs, nothing reaches the outbox)
    reminder = journeys.messages(alex, 2)[1]
    assert (reminder.channel, reminder.step_label) == ("email", "Email: your deal ends in 4 days")
    assert reminder.subject == "Your anniversary deal ends in 4 days"
    assert "ANNIV15 at checkout" in reminder.body
    journeys.until(lambda: "Wait until the deal expires" in journeys.path(ines_execution), 10)
    assert after(journeys.path(alex_execution), "Customer for less than a year?") == [
        "Customer for less than a year?",
        "Check: Reachable by email?",
        "Reachable by email?",
        "Schedule: Wait for a weekday morning",
        "Wait for a weekday morning",
        "Check: VIP customer?",
        "VIP customer?",
        "Deal code: ANNIV15",
        "Email: thank-you + 15 % deal",
        "Wait 10 days",
        "Check: Uses the mobile app?",
        "Uses the mobile app?",
        "Email: your deal ends in 4 days",
        "Wait until the deal expires",
    ]
    assert after(journeys.path(ines_execution), "Uses the mobile app?") == [
        "Uses the mobile app?",
        "In-app: your deal ends in 4 days",
        "Wait until the deal expires",
    ]
    assert channels(journeys.sent(ines)) == ["email"]


def test_vip_customers_get_25_percent_and_their_account_manager_is_asked_for_a_note(
    journeys: Journeys,
) -> None:
    # GIVEN a customer tagged vip with an account manager, and one who spent over 1,000
    journeys.at(WEDNESDAY_MORNING, speed=SETTING_UP)
    vera = journeys.contact(
        "vera",
        **customer(
            "Vera",
            "2021-11-04",
            attributes={"account_manager_email": "sam@example.com", "account_manager_name": "Sam"},
            tags={"add": ["vip"]},
        ),
    )
    leo = journeys.contact(
        "leo", **customer("Leo", "2024-11-04", attributes={"lifetime_value": 2500})
    )
    # WHEN the morning sweep runs on their anniversary
    sweep(journeys)
    journeys.speed(3600)
    # THEN both get the VIP thank-you; Vera's account manager is asked for a note
    vip = journeys.messages(vera, 2)
    assert channels(vip) == ["email", "team"]
    assert (vip[0].to, vip[0].step_label) == (
        "vera@example.com",
        "Email: VIP thank-you + 25 % deal",
    )
    assert vip[0].subject == "Vera, you've made our year"
    assert "with the code ANNIV25VIP, valid for 14 days" in vip[0].body
    assert "Sam will also be in touch personally this week." in vip[0].body
    note = vip[1]
    assert (note.to, note.step_label) == (
        "sam@example.com",
        "Ask the account manager for a personal note",
    )
    assert note.body.startswith("Hi Sam,")
    assert contact_record(journeys, vera)["attributes"]["anniversary_code"] == "ANNIV25VIP"
    leo_execution = first_run(journeys, "anniversary-outreach", leo)
    journeys.until(lambda: "Wait 10 days" in journeys.path(leo_execution), 10)
    assert after(journeys.path(leo_execution), "VIP customer?") == [
        "VIP customer?",
        "Deal code: ANNIV25VIP",
        "Email: VIP thank-you + 25 % deal",
        "Ask the account manager for a personal note",
        "Wait 10 days",
    ]
    # Leo has no account manager on file: the note has nowhere to go
    assert channels(journeys.sent(leo)) == ["email"]


def test_new_customers_and_customers_without_email_get_nothing(journeys: Journeys) -> None:
    # GIVEN Nina, who became a customer today, and Omar, who has no email address
    journeys.at(WEDNESDAY_MORNING, speed=SETTING_UP)
    nina = journeys.contact("nina", **customer("Nina", "2026-11-04"))
    omar = journeys.contact(
        "omar",
        attributes={"first_name": "Omar", "customer_since": "2022-11-04"},
        channels={"sms": {"address": "+447700900456", "status": "subscribed"}},
        time_zone=LONDON,
    )
    # WHEN the morning sweep runs
    sweep(journeys)
    journeys.speed(3600)
    # THEN Nina's journey ends at once (no anniversary yet) and Omar's for want of email
    nina_execution = journeys.finished(first_run(journeys, "anniversary-outreach", nina))
    omar_execution = journeys.finished(first_run(journeys, "anniversary-outreach", omar))
    assert after(journeys.path(nina_execution), "Customer for less than a year?") == [
        "Customer for less than a year?",
        "Too soon for an anniversary",
        "Journey completed",
    ]
    assert after(journeys.path(omar_execution), "Reachable by email?") == [
        "Reachable by email?",
        "Cannot email this customer",
        "Journey completed",
    ]
    assert journeys.sent(nina) == [] and journeys.sent(omar) == []


def test_a_weekend_anniversary_is_celebrated_on_monday_and_using_the_deal_ends_it(
    journeys: Journeys,
) -> None:
    # GIVEN a customer whose anniversary falls on a Saturday
    journeys.at(SATURDAY_MORNING, speed=SETTING_UP)
    alex = journeys.contact("alex", **customer("Alex", "2019-11-07"))
    sweep(journeys)
    journeys.speed(3600)
    execution = first_run(journeys, "anniversary-outreach", alex)
    journeys.until(lambda: "Wait for a weekday morning" in journeys.path(execution), 10)
    assert journeys.sent(alex) == []
    # WHEN the weekend passes
    journeys.stack.clock.advance(2 * DAY)
    # THEN the thank-you goes out on Monday morning
    thanks = journeys.messages(alex, 1)[0]
    assert thanks.step_label == "Email: thank-you + 15 % deal"
    assert thanks.at.startswith("2026-11-09T")
    assert waited_until(journeys, execution, "Wait for a weekday morning") == (
        "2026-11-09T09:00:00Z"
    )
    journeys.until(lambda: "Wait 10 days" in journeys.path(execution), 10)
    # WHEN he orders with another coupon, then with the anniversary code
    journeys.event(alex, "order_completed", coupon="SUMMER10", total=40)
    journeys.event(alex, "order_completed", coupon="ANNIV15", total=80)
    # THEN the anniversary order is the goal: the journey ends, no reminder follows
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(execution), "Wait 10 days") == [
        "Wait 10 days",
        "Used the anniversary deal",
        "Goal reached",
    ]
    assert channels(journeys.sent(alex)) == ["email"]
