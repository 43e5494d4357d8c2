"""Sales-assisted nurturing cycle on the local stack: tagging a lead "nurture-cycle" starts
three messages days apart, an SMS nudge when message 1 went unread, progress tags, and for
leads who engaged the "Prospect" funnel stage, a CRM sync and an alert to the lead's
owner. Booking a meeting is the goal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_welcome_series import contact_record, in_order, path_of, skip_wait
from tests.helpers.local import Journeys, channels, ses_event

pytestmark = pytest.mark.e2e

#: 09:00 in Warsaw on a Tuesday: the quiet hours (19:00-08:00) are far on either side.
WARSAW_MORNING = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
LEAD: dict[str, Any] = {
    "attributes": {
        "first_name": "Ola",
        "last_name": "Nowak",
        "company": "Brightline",
        "owner_name": "Piotr",
        "owner_email": "piotr@sales.example.com",
    },
    "channels": {
        "email": {"address": "ola@example.com", "status": "subscribed"},
        "sms": {"address": "+48600100200", "status": "subscribed"},
    },
    "tags": {"add": ["nurture-cycle"]},
    "time_zone": "Europe/Warsaw",
}
MESSAGES = [
    "Message 1: introduction",
    "Message 2: case study",
    "Message 3: consultation offer",
]


def start_cycle(journeys: Journeys, **changes: Any) -> tuple[str, dict[str, Any]]:
    """A salesperson tags the lead "nurture-cycle" (the trigger)."""
    journeys.at(WARSAW_MORNING)
    ola = journeys.contact("ola", **{**LEAD, **changes})
    return ola, journeys.execution("salesmanago-nurturing", ola)


def messages_2_and_3(journeys: Journeys, ola: str, execution: dict[str, Any], before: int) -> None:
    """Cross the waits after message 2 and message 3; `before` messages (message 1, and
    the SMS nudge if one went) came before message 2."""
    journeys.messages(ola, before + 1)
    skip_wait(journeys, execution, "Wait box: 4 days")
    journeys.messages(ola, before + 2)
    skip_wait(journeys, execution, "Wait box: 3 days for a reaction")


def test_an_unread_lead_gets_an_sms_nudge_and_finishes_the_cycle_cold(
    journeys: Journeys,
) -> None:
    # GIVEN a lead with a phone, tagged for the cycle
    ola, execution = start_cycle(journeys)
    journeys.messages(ola, 1)
    # WHEN message 1 stays unread for 3 days, and nothing is ever clicked
    skip_wait(journeys, execution, "Wait box: 3 days")
    journeys.messages(ola, 2)
    skip_wait(journeys, execution, "Wait box: 1 day after the SMS")
    messages_2_and_3(journeys, ola, execution, before=2)
    # THEN the lead got the SMS nudge between messages 1 and 2, and finished cold
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        MESSAGES[0],
        "Progress tag: message 1 sent",
        "Did the lead read message 1?",
        "Can we text the lead?",
        "SMS reminder: message 1 unread",
        "Wait box: 1 day after the SMS",
        MESSAGES[1],
        "Progress tag: message 2 sent",
        MESSAGES[2],
        "Progress tag: cycle completed",
        'Remove the "nurture-cycle" tag',
        "Engaged with the cycle?",
        "Progress tag: cycle finished cold",
        "End",
    )
    assert "Progress tag: message 1 read" not in path
    sent = journeys.sent(ola)
    assert channels(sent) == ["email", "sms", "email", "email"]
    assert [m.step_label for m in sent] == [
        MESSAGES[0],
        "SMS reminder: message 1 unread",
        *MESSAGES[1:],
    ]
    assert sent[0].subject == "Ola, a quick introduction"
    assert "I'm Piotr at Example" in sent[0].body
    assert sent[1].to == "+48600100200"
    assert sent[1].body.startswith("Hi Ola, Piotr here")
    assert sent[3].subject == "Shall we look at Brightline together?"
    tags = contact_record(journeys, ola)["tags"]
    assert {"nurture-1-sent", "nurture-2-sent", "nurture-3-sent", "nurture-cycle-cold"} <= set(tags)
    assert "nurture-cycle" not in tags  # a salesperson may start the cycle again
    assert journeys.calls(ola) == []


def test_a_lead_who_read_and_clicked_becomes_a_prospect_and_the_owner_hears(
    journeys: Journeys,
) -> None:
    # GIVEN a lead tagged for the cycle
    ola, execution = start_cycle(journeys)
    # WHEN the lead opens message 1 and clicks its link
    [intro] = journeys.messages(ola, 1)
    ses_event(journeys, intro, "Open")
    ses_event(journeys, intro, "Click", "https://www.example.com/solutions?utm_source=journeys")
    skip_wait(journeys, execution, "Wait box: 3 days")
    messages_2_and_3(journeys, ola, execution, before=1)
    # THEN no SMS nudge; the lead became a Prospect, synced to the CRM, owner alerted
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        MESSAGES[0],
        "Did the lead read message 1?",
        "Progress tag: message 1 read",
        MESSAGES[1],
        MESSAGES[2],
        "Engaged with the cycle?",
        "Funnel stage: New contact -> Prospect",
        "Sync the stage to the CRM",
        "Alert the lead's owner",
        "End: handed to the owner",
    )
    assert "SMS reminder: message 1 unread" not in path
    sent = journeys.sent(ola)
    assert channels(sent) == ["email", "email", "email", "team"]
    alert = sent[3]
    assert alert.to == "piotr@sales.example.com"
    assert alert.step_label == "Alert the lead's owner"
    assert alert.subject == "New prospect: Ola Nowak (Brightline)"
    assert "Email:    ola@example.com" in alert.body
    [crm] = journeys.calls(ola)
    assert (crm.channel, crm.to, crm.status) == (
        "webhook",
        "POST https://crm.example.com/api/v2/leads/stage",
        "sent",
    )
    contact = contact_record(journeys, ola)
    assert contact["attributes"]["funnel_stage"] == "Prospect"
    assert "nurture-1-read" in contact["tags"]


def test_without_a_phone_no_nudge_and_a_booked_meeting_ends_the_cycle(
    journeys: Journeys,
) -> None:
    # GIVEN a lead without a phone number, tagged for the cycle
    ola, execution = start_cycle(
        journeys, channels={"email": {"address": "ola@example.com", "status": "subscribed"}}
    )
    journeys.messages(ola, 1)
    # WHEN message 1 stays unread for 3 days
    skip_wait(journeys, execution, "Wait box: 3 days")
    # THEN message 2 follows at once, without an SMS
    assert channels(journeys.messages(ola, 2)) == ["email", "email"]
    journeys.until(lambda: "Wait box: 4 days" in path_of(journeys, execution))
    # WHEN the lead books a meeting
    journeys.event(ola, "meeting_booked")
    # THEN the goal ends the cycle
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(path, "Can we text the lead?", MESSAGES[1], "Wait box: 4 days")
    assert "SMS reminder: message 1 unread" not in path
    assert path[-1] == "Goal reached"
    assert [m.step_label for m in journeys.sent(ola)] == MESSAGES[:2]
