"""Content offer on the local stack: joining the "Email Automation Playbook" list delivers
the playbook, non-openers get it again with a new subject, readers who click through are
tagged engaged and scored, and every lead moves on to lead-nurture; booking a demo is the
goal."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from journeys.local.functions import Invocation
from journeys.local.outbox import OutboxEntry
from journeys.messaging import encode_tag_value
from tests.helpers.local import Journeys, in_order, stored

pytestmark = pytest.mark.e2e

WORKFLOW = "content-offer"
PLAYBOOK = "Email Automation Playbook"
PLAYBOOK_LINK = (
    "https://www.example.com/guides/email-automation-playbook.pdf"
    "?utm_source=journeys&utm_campaign=content-offer"
)
LEAD: dict[str, Any] = {
    "attributes": {"first_name": "Ana", "score": 0},
    "channels": {"email": {"address": "ana@example.com", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
OPTS_IN: dict[str, Any] = {**LEAD, "lists": {"subscribe": [PLAYBOOK]}}
TWO_DAYS = 2 * 86400


# --- helpers this file needs (see the report: candidates for tests/helpers/local.py) ------


def after_step(journeys: Journeys, contact_id: str, label: str, do: Callable[[], Any]) -> None:
    """Run `do` once, in the engine's thread, as soon as the step `label` of the contact's
    journey has run successfully, before the next state starts."""
    done = False

    def observer(invocation: Invocation) -> None:
        nonlocal done
        event = invocation.event if isinstance(invocation.event, dict) else {}
        if (
            not done
            and not invocation.errored
            and event.get("contact_id") == contact_id
            and event.get("step_label") == label
        ):
            done = True
            do()

    journeys.stack.observe(observer)


def ses_event(journeys: Journeys, message: OutboxEntry, kind: str, **detail: Any) -> None:
    """SES publishes an engagement event (Open, Click) of `message` to the feedback topic,
    as the configuration set does on AWS."""
    assert journeys.stack.deployment is not None
    record = {
        "eventType": kind,
        "mail": {
            "messageId": message.message_id,
            "timestamp": message.at,
            "destination": [message.to],
            "tags": {
                "contact_id": [encode_tag_value(message.contact_id)],
                "workflow_id": [message.workflow_id],
                "step_id": [message.step_id],
            },
        },
        kind.lower(): {"timestamp": message.at, "userAgent": "Mozilla/5.0", **detail},
    }
    journeys.stack.client("sns").publish(
        TopicArn=journeys.stack.deployment.refs["FeedbackTopic"], Message=json.dumps(record)
    )


def from_workflow(journeys: Journeys, contact_id: str, count: int = 0) -> list[OutboxEntry]:
    """The messages this workflow sent the contact (lead-nurture sends its own), once
    there are `count` of them."""

    def mine() -> list[OutboxEntry]:
        return [m for m in journeys.sent(contact_id) if m.workflow_id == WORKFLOW]

    journeys.until(lambda: len(mine()) >= count, 30, f"{contact_id} got {mine()}")
    return mine()


def handed_to_lead_nurture(journeys: Journeys, contact_id: str) -> bool:
    return bool(journeys.until(lambda: journeys.executions("lead-nurture", contact_id), 20))


def skip_wait(journeys: Journeys, execution: dict[str, Any], label: str, seconds: float) -> None:
    """Once the journey is in the Wait state `label`, jump journey time over it. (Jumping,
    not speeding up: at a large scale the clock runs on while a step works, and SES event
    times taken from the outbox would drift a day or more from the real send times.)"""
    journeys.until(lambda: label in journeys.path(execution), 20, f"never reached {label!r}")
    journeys.stack.clock.advance(seconds)


def click_the_playbook_link(journeys: Journeys, contact_id: str) -> Callable[[], None]:
    """The reader opens the email just sent and clicks the playbook link in it (a click
    proves the open even when images are blocked)."""

    def click() -> None:
        message = from_workflow(journeys, contact_id)[-1]
        ses_event(journeys, message, "Click", link=PLAYBOOK_LINK, ipAddress="192.0.2.1")

    return click


# --- scenarios ------------------------------------------------------------------------------


def test_a_reader_who_clicks_the_playbook_is_tagged_engaged_and_nurtured(
    journeys: Journeys,
) -> None:
    # GIVEN a lead who will click the playbook link as soon as it arrives
    ana = journeys.contact_id("ana")
    after_step(journeys, ana, "Email the promised playbook", click_the_playbook_link(journeys, ana))
    # WHEN she opts in for the playbook, and two days pass
    journeys.contact("ana", **OPTS_IN)
    execution = journeys.execution(WORKFLOW, ana)
    skip_wait(journeys, execution, "Give 2 days to open the playbook", TWO_DAYS)
    journeys.finished(execution)
    # THEN she got the playbook once, was tagged and scored, and moved to lead nurture
    [delivery] = from_workflow(journeys, ana, 1)
    assert (delivery.channel, delivery.to, delivery.step_label) == (
        "email",
        "ana@example.com",
        "Email the promised playbook",
    )
    assert delivery.subject == "Your Email Automation Playbook is here"
    assert PLAYBOOK_LINK in delivery.body
    path = journeys.path(execution)
    assert in_order(
        path,
        "Email the promised playbook",
        "Tag: downloaded the playbook",
        "Give 2 days to open the playbook",
        "Opened the playbook email?",
        "Clicked through to the playbook?",
        "Tag: engaged",
        "Lead score +10 for the click",
        "Start the lead nurture workflow",
        "Handed to lead nurture",
        "Journey completed",
    )
    assert "Resend the playbook (new subject)" not in path
    assert handed_to_lead_nurture(journeys, ana)
    # the click also scores +10 in engagement-scoring (email_clicked): 0 + 10 + 10
    scoring = journeys.finished(journeys.execution("engagement-scoring", ana))
    assert "Score +10 for a positive action" in journeys.path(scoring)
    contact = stored(journeys, ana)
    assert {"lead-magnet-playbook", "engaged"} <= set(contact["tags"])
    assert contact["attributes"]["score"] == 20


def test_a_non_opener_gets_the_resend_and_clicking_it_counts(journeys: Journeys) -> None:
    # GIVEN a lead who ignores the first email and clicks the link in the resend
    ana = journeys.contact_id("ana")
    after_step(
        journeys,
        ana,
        "Resend the playbook (new subject)",
        click_the_playbook_link(journeys, ana),
    )
    # WHEN she opts in, and four days pass
    journeys.contact("ana", **OPTS_IN)
    execution = journeys.execution(WORKFLOW, ana)
    skip_wait(journeys, execution, "Give 2 days to open the playbook", TWO_DAYS)
    skip_wait(journeys, execution, "Give 2 days to open the resend", TWO_DAYS)
    journeys.finished(execution)
    # THEN two days in the playbook came again with a new subject, and her click on it
    # made her engaged
    delivery, resend = from_workflow(journeys, ana, 2)
    assert [m.step_label for m in (delivery, resend)] == [
        "Email the promised playbook",
        "Resend the playbook (new subject)",
    ]
    assert resend.subject == "Ana, did the playbook get lost in your inbox?"
    assert "utm_campaign=content-offer-resend" in resend.body
    assert in_order(
        journeys.path(execution),
        "Opened the playbook email?",
        "Resend the playbook (new subject)",
        "Give 2 days to open the resend",
        "Clicked through to the playbook?",
        "Tag: engaged",
        "Lead score +10 for the click",
        "Start the lead nurture workflow",
        "Handed to lead nurture",
    )
    assert handed_to_lead_nurture(journeys, ana)
    assert "engaged" in stored(journeys, ana)["tags"]


def test_a_lead_who_never_opens_is_nurtured_without_the_engaged_tag(journeys: Journeys) -> None:
    # GIVEN a lead who opts in and never opens anything
    ana = journeys.contact("ana", **OPTS_IN)
    execution = journeys.execution(WORKFLOW, ana)
    # WHEN four days pass
    skip_wait(journeys, execution, "Give 2 days to open the playbook", TWO_DAYS)
    skip_wait(journeys, execution, "Give 2 days to open the resend", TWO_DAYS)
    journeys.finished(execution)
    # THEN she got the playbook twice, was not tagged engaged, and still moved on
    assert [m.step_label for m in from_workflow(journeys, ana, 2)] == [
        "Email the promised playbook",
        "Resend the playbook (new subject)",
    ]
    path = journeys.path(execution)
    assert in_order(
        path,
        "Resend the playbook (new subject)",
        "Clicked through to the playbook?",
        "Start the lead nurture workflow",
        "Handed to lead nurture",
    )
    assert "Tag: engaged" not in path
    assert handed_to_lead_nurture(journeys, ana)
    contact = stored(journeys, ana)
    assert "lead-magnet-playbook" in contact["tags"] and "engaged" not in contact["tags"]
    assert contact["attributes"]["score"] == 0


def test_booking_a_demo_reaches_the_goal_wherever_the_lead_is(journeys: Journeys) -> None:
    # GIVEN a lead who opted in and got the playbook
    ana = journeys.contact("ana", **OPTS_IN)
    execution = journeys.execution(WORKFLOW, ana)
    [delivery] = from_workflow(journeys, ana, 1)
    assert delivery.step_label == "Email the promised playbook"
    # WHEN she books a demo while the journey gives her 2 days to read
    journeys.until(lambda: "Give 2 days to open the playbook" in journeys.path(execution), 10)
    journeys.event(ana, "demo_booked")
    # THEN the goal ends the journey there: no resend, no hand-over to lead nurture
    finished = journeys.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    path = journeys.path(execution)
    assert in_order(path, "Give 2 days to open the playbook", "Booked a demo", "Goal reached")
    assert "Opened the playbook email?" not in path
    assert "Start the lead nurture workflow" not in path
    assert len(from_workflow(journeys, ana)) == 1
    assert journeys.executions("lead-nurture", ana) == []
