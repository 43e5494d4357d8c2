"""Webinar reminders on the local stack: a registration gets a confirmation, a reminder the
day before (unless the webinar is less than a day away), a last call an hour before on the
best channel, and the morning after a feedback survey for attendees or the recording for
no-shows. Every date comes from the registration's `starts_at`; cancelling exits."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_welcome_series import (
    contact_record,
    execution_named,
    in_order,
    path_of,
    skip_wait,
)
from tests.helpers.local import Journeys, channels

pytestmark = pytest.mark.e2e

GUEST: dict[str, Any] = {
    "attributes": {"first_name": "Bea"},
    "channels": {"email": {"address": "bea@example.com", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
PHONE = {"sms": {"address": "+447700900321", "status": "subscribed"}}
#: Registered on Tuesday 24 November (journey time starts at 10:00) for Friday 16:00.
FRIDAY = {
    "webinar_id": "w-42",
    "webinar_title": "Journeys as code",
    "starts_at": "2026-11-27T16:00:00Z",
    "join_url": "https://live.example.com/w-42",
}
#: The same Tuesday, 18:00: less than a day ahead.
TONIGHT = {
    "webinar_id": "w-43",
    "webinar_title": "Quiet hours done right",
    "starts_at": "2026-11-24T18:00:00Z",
    "join_url": "https://live.example.com/w-43",
    "recording_url": "https://www.example.com/webinars/w-43/recording",
}


def register(journeys: Journeys, contact_id: str, webinar: dict[str, str]) -> dict[str, Any]:
    """The contact registers (the event id is the webinar's, so the execution is
    webinar-reminders_<contact>_<webinar id>); returns the registration's execution."""
    journeys.event(contact_id, "webinar_registered", event_id=webinar["webinar_id"], **webinar)
    name = f"webinar-reminders_{contact_id}_{webinar['webinar_id']}"
    return execution_named(journeys, "webinar-reminders", contact_id, name)


def test_an_attendee_registered_days_ahead_gets_every_reminder_then_the_survey(
    journeys: Journeys,
) -> None:
    # GIVEN a contact reachable by email only, registered for Friday's webinar on Tuesday
    bea = journeys.contact("bea", **GUEST)
    execution = register(journeys, bea, FRIDAY)
    # WHEN the days pass, she attends, and answers the survey the morning after
    journeys.messages(bea, 1)
    skip_wait(journeys, execution, "Wait until 1 day before")
    journeys.messages(bea, 2)
    skip_wait(journeys, execution, "Wait until 1 hour before")
    journeys.messages(bea, 3)
    journeys.event(bea, "webinar_attended", webinar_id="w-42")
    skip_wait(journeys, execution, "Wait until the next morning")
    journeys.messages(bea, 4)
    journeys.until(lambda: "Answered the survey within 3 days?" in path_of(journeys, execution))
    journeys.event(bea, "survey_answered", survey="webinar-feedback", score=9)
    # THEN each message went out at its moment, and her feedback was recorded
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        "Confirm the registration",
        "Starts in less than a day?",
        "Wait until 1 day before",
        "Reminder: the webinar is tomorrow",
        "Wait until 1 hour before",
        "Best channel for the last call?",
        "Email: starting in 1 hour",
        "Wait until the next morning",
        "Attended the webinar?",
        "Tag: webinar attendee",
        "Email: thanks + feedback survey",
        "Answered the survey within 3 days?",
        "Tag: gave webinar feedback",
        "Feedback received",
    )
    sent = journeys.sent(bea)
    assert [m.step_label for m in sent] == [
        "Confirm the registration",
        "Reminder: the webinar is tomorrow",
        "Email: starting in 1 hour",
        "Email: thanks + feedback survey",
    ]
    assert {m.to for m in sent} == {"bea@example.com"}
    assert sent[0].subject == "You're in: Journeys as code"
    # (journey time runs on while a step works: an hour a second, so allow some slack)
    assert "2026-11-26T16:00" <= sent[1].at < "2026-11-26T18:00"  # a day before Friday 16:00
    assert "2026-11-27T15:00" <= sent[2].at < "2026-11-27T16:00"  # an hour before
    assert "https://live.example.com/w-42" in sent[2].body
    assert "2026-11-28T10:00" <= sent[3].at < "2026-11-28T12:00"  # the next morning
    assert {"webinar-attendee", "webinar-feedback-given"} <= set(
        contact_record(journeys, bea)["tags"]
    )


def test_a_no_show_registered_hours_ahead_gets_an_sms_last_call_then_the_recording(
    journeys: Journeys,
) -> None:
    # GIVEN a contact with a phone, registered on Tuesday morning for Tuesday 18:00
    bea = journeys.contact("bea", **{**GUEST, "channels": {**GUEST["channels"], **PHONE}})
    execution = register(journeys, bea, TONIGHT)
    # WHEN the webinar passes without her
    journeys.messages(bea, 1)
    skip_wait(journeys, execution, "Wait until 1 hour before")
    journeys.messages(bea, 2)
    skip_wait(journeys, execution, "Wait until the next morning")
    # THEN no day-before reminder, an SMS last call, and the recording the next morning
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        "Confirm the registration",
        "Starts in less than a day?",
        "Wait until 1 hour before",
        "Best channel for the last call?",
        "SMS: starting in 1 hour",
        "Wait until the next morning",
        "Attended the webinar?",
        "Tag: registered, did not attend",
        "Email: sorry we missed you + recording",
        "Recording sent",
    )
    assert "Reminder: the webinar is tomorrow" not in path
    sent = journeys.messages(bea, 3)
    assert channels(sent) == ["email", "sms", "email"]
    assert sent[1].to == "+447700900321"
    assert "2026-11-24T17:00" <= sent[1].at < "2026-11-24T18:00"
    assert "https://live.example.com/w-43" in sent[1].body
    assert sent[2].subject == "Sorry we missed you - here's the recording"
    assert "2026-11-25T10:00" <= sent[2].at < "2026-11-25T12:00"
    assert "https://www.example.com/webinars/w-43/recording" in sent[2].body
    assert "webinar-no-show" in contact_record(journeys, bea)["tags"]


def test_cancelling_the_registration_stops_the_reminders(journeys: Journeys) -> None:
    # GIVEN a contact registered for Friday's webinar
    bea = journeys.contact("bea", **GUEST)
    execution = register(journeys, bea, FRIDAY)
    journeys.messages(bea, 1)
    journeys.until(lambda: "Wait until 1 day before" in path_of(journeys, execution))
    # WHEN she cancels
    journeys.event(bea, "webinar_cancelled", webinar_id="w-42")
    # THEN she leaves the journey before the day-before reminder
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert path[-1] == "Left the journey"
    assert "Reminder: the webinar is tomorrow" not in path
    assert [m.step_label for m in journeys.sent(bea)] == ["Confirm the registration"]


@pytest.mark.xfail(
    strict=True,
    reason="an exit cannot be tied to the event that started the journey: "
    "webinar_cancelled for w-42 also ends the journey of another webinar (the workflow "
    "promises each registration its own reminders); the language has no way to say "
    "`where: webinar_id is the trigger's webinar_id` on an exit",
)
def test_cancelling_one_webinar_keeps_the_reminders_of_another(journeys: Journeys) -> None:
    bea = journeys.contact("bea", **GUEST)
    friday = register(journeys, bea, FRIDAY)
    tonight = register(journeys, bea, TONIGHT)
    journeys.messages(bea, 2)
    journeys.until(lambda: "Wait until 1 hour before" in path_of(journeys, tonight))
    journeys.until(lambda: "Wait until 1 day before" in path_of(journeys, friday))
    journeys.event(bea, "webinar_cancelled", webinar_id="w-42")
    assert path_of(journeys, journeys.finished(friday))[-1] == "Left the journey"
    with pytest.raises(AssertionError, match="still running"):
        journeys.finished(tonight, timeout=3)
    skip_wait(journeys, tonight, "Wait until 1 hour before")
    journeys.until(lambda: len(journeys.sent(bea)) == 3, 10, "no last call for w-43")
    assert journeys.sent(bea)[2].step_label == "Email: starting in 1 hour"


@pytest.mark.xfail(
    strict=True,
    reason="the split sends contacts reachable on WhatsApp to `send_whatsapp`, which the "
    "send function skips (channel-not-deliverable-yet, journeys/steps.py `send`): they get "
    "no last call at all though SMS or email would reach them",
)
def test_a_contact_on_whatsapp_gets_a_last_call(journeys: Journeys) -> None:
    whatsapp = {"whatsapp": {"address": "+447700900999", "status": "subscribed"}}
    bea = journeys.contact("bea", **{**GUEST, "channels": {**GUEST["channels"], **whatsapp}})
    execution = register(journeys, bea, TONIGHT)
    journeys.messages(bea, 1)
    skip_wait(journeys, execution, "Wait until 1 hour before")
    journeys.until(lambda: "Wait until the next morning" in path_of(journeys, execution))
    assert "WhatsApp: starting in 1 hour" in path_of(journeys, execution)
    assert len(journeys.sent(bea)) == 2
