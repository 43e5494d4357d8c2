"""Lead nurture on the local stack: joining the Leads list starts three emails over two weeks
with the lead in the Facebook audience "Nurture leads"; clicks raise the score; leads who
do not book a call move on: silent ones to reactivation, warm ones (score 20 or more) to
the sales-assisted cycle, the rest are tagged. Booking a call is the goal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_welcome_series import contact_record, in_order, path_of, skip_wait
from tests.helpers.local import Journeys, ses_event

pytestmark = pytest.mark.e2e

#: Monday 20:00 in London: the first email waits for Tuesday's 08:30-11:30 window.
MONDAY_EVENING = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
LEAD = {
    "attributes": {"first_name": "Lee", "company": "Fernwood"},
    "channels": {"email": {"address": "lee@example.com", "status": "subscribed"}},
    "lists": {"subscribe": ["Leads"]},
    "time_zone": "Europe/London",
}
ADD = 'Add to Facebook audience "Nurture leads"'
REMOVE = 'Remove from Facebook audience "Nurture leads"'
EMAILS = ["Email 1: the problem we solve", "Email 2: customer story", "Email 3: book a call"]


def enter(journeys: Journeys) -> tuple[str, dict[str, Any]]:
    journeys.at(MONDAY_EVENING)
    lee = journeys.contact("lee", **LEAD)
    execution = journeys.execution("lead-nurture", lee)
    skip_wait(journeys, execution, "Wait for a weekday morning")
    return lee, execution


def two_weeks(
    journeys: Journeys,
    lee: str,
    execution: dict[str, Any],
    *,
    after_email_1: str = "",
    after_email_2: str = "",
) -> None:
    """Run the three emails and their waits; the lead clicks `after_email_n` (a link) or,
    given "open", only opens the email."""
    for number, (action, wait) in enumerate(
        [
            (after_email_1, "Wait 3 days after email 1"),
            (after_email_2, "Wait 4 days after email 2"),
            ("", "Give 7 days to book a call"),
        ]
    ):
        email = journeys.messages(lee, number + 1)[number]
        if action == "open":
            ses_event(journeys, email, "Open")
        elif action:
            ses_event(journeys, email, "Click", action)
        skip_wait(journeys, execution, wait)


def test_a_lead_who_looked_at_pricing_moves_to_the_sales_assisted_cycle(
    journeys: Journeys,
) -> None:
    # GIVEN a new lead, added on a Monday evening
    lee, execution = enter(journeys)
    # WHEN the lead clicks in email 1, then through to pricing in email 2, and books no call
    two_weeks(
        journeys,
        lee,
        execution,
        after_email_1="https://www.example.com/blog/triggered-emails?utm_source=journeys",
        after_email_2="https://www.example.com/pricing?utm_source=journeys",
    )
    # THEN the score rose twice, both tags were set, and the warm lead moved on
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        ADD,
        "Wait for a weekday morning",
        EMAILS[0],
        "Clicked in email 1?",
        "Score +10: clicked email 1",
        "Tag: engaged with nurture",
        EMAILS[1],
        "Clicked through to pricing in email 2?",
        "Score +20: looked at pricing",
        "Tag: interested in pricing",
        EMAILS[2],
        REMOVE,
        "Missed the goal - where next?",
        "Move to the sales-assisted nurture cycle",
        "Moved to sales-assisted cycle",
    )
    contact = contact_record(journeys, lee)
    assert {"nurture-engaged", "pricing-interest"} <= set(contact["tags"])
    # +30 here; engagement-scoring adds +10 for every email_clicked as well
    assert contact["attributes"]["score"] >= 30
    cycle = journeys.execution("salesmanago-nurturing", lee)
    trigger = json.loads(
        journeys.sfn.describe_execution(executionArn=cycle["executionArn"])["input"]
    )
    assert trigger["trigger"]["properties"]["workflow_id"] == "lead-nurture"
    # AND the outbox holds the three emails, sent on weekdays from Tuesday 08:30 on
    sent = journeys.sent(lee)
    assert [m.step_label for m in sent[:3]] == EMAILS
    assert "2026-11-24T08:30" <= sent[0].at < "2026-11-24T11:30"
    assert sent[1].subject == "How Fernwood Coffee tripled repeat orders in 90 days"
    assert "Fernwood together" in sent[2].body  # contact.company
    assert [(c.step_label, c.subject) for c in journeys.calls(lee)] == [
        (ADD, "add_to_audience"),
        (REMOVE, "remove_from_audience"),
    ]


def test_a_lead_who_opened_nothing_is_tagged_and_moved_to_reactivation(
    journeys: Journeys,
) -> None:
    # GIVEN a new lead who never opens an email
    lee, execution = enter(journeys)
    # WHEN the two weeks pass without a call booked
    two_weeks(journeys, lee, execution)
    # THEN the lead leaves the audience, is tagged and moved to cold-user reactivation
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        *EMAILS,
        REMOVE,
        "Missed the goal - where next?",
        "Tag: opened nothing",
        "Move to cold-user reactivation",
        "Moved to reactivation",
    )
    assert "Score +10: clicked email 1" not in path
    assert "Score +20: looked at pricing" not in path
    assert "nurture-opened-nothing" in contact_record(journeys, lee)["tags"]
    assert [m.step_label for m in journeys.sent(lee)[:3]] == EMAILS
    reactivation = journeys.execution("cold-user-reactivation", lee)
    assert reactivation["status"] in ("RUNNING", "SUCCEEDED")


def test_a_lead_who_read_but_never_clicked_finishes_the_nurture(journeys: Journeys) -> None:
    # GIVEN a new lead who opens email 1 but clicks nothing
    lee, execution = enter(journeys)
    two_weeks(journeys, lee, execution, after_email_1="open")
    # THEN the lead is neither silent nor warm: tagged "nurture-finished", moved nowhere
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path, *EMAILS, REMOVE, "Missed the goal - where next?", "Tag: finished nurture, no call"
    )
    assert path[-2:] == ["Nurture finished", "Journey completed"]
    assert "nurture-finished" in contact_record(journeys, lee)["tags"]
    assert journeys.executions("salesmanago-nurturing", lee) == []
    assert journeys.executions("cold-user-reactivation", lee) == []


def test_booking_a_call_ends_the_nurture(journeys: Journeys) -> None:
    # GIVEN a lead who got email 1
    lee, execution = enter(journeys)
    journeys.messages(lee, 1)
    journeys.until(lambda: "Wait 3 days after email 1" in path_of(journeys, execution))
    # WHEN the lead books a call
    journeys.event(lee, "meeting_booked")
    # THEN the goal ends the journey: no more emails
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert path[-1] == "Goal reached"
    assert EMAILS[1] not in path
    assert [m.step_label for m in journeys.sent(lee)] == EMAILS[:1]


def test_a_lead_who_booked_a_call_leaves_the_nurture_audience(journeys: Journeys) -> None:
    lee, execution = enter(journeys)
    journeys.messages(lee, 1)
    journeys.until(lambda: "Wait 3 days after email 1" in path_of(journeys, execution))
    journeys.event(lee, "meeting_booked")
    journeys.finished(execution)
    assert [c.subject for c in journeys.calls(lee)] == ["add_to_audience", "remove_from_audience"]
