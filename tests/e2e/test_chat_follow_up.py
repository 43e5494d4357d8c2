"""How was your chat? on the local stack: after a live chat the contact is asked by email
(or on site, without an email address); answers are thanked, openers tagged, and the
survey goes once more, with a new subject, to those who did not open it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from journeys.local.functions import Invocation
from journeys.local.outbox import OutboxEntry
from journeys.messaging import encode_tag_value
from tests.helpers.local import Journeys, channels, in_order, quote, step_results

pytestmark = pytest.mark.e2e

WORKFLOW = "chat-follow-up"
CHAT = {"agent_name": "Sam", "conversation_id": "conv-77"}
VISITOR: dict[str, Any] = {
    "attributes": {"first_name": "Ana"},
    "channels": {"on_site": {"address": "visitor-ana", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
CUSTOMER: dict[str, Any] = {
    **VISITOR,
    "channels": {
        **VISITOR["channels"],
        "email": {"address": "ana@example.com", "status": "subscribed"},
    },
}


# --- helpers this file needs (see the report: candidates for tests/helpers/local.py) ------


def after_step(journeys: Journeys, contact_id: str, label: str, do: Callable[[], None]) -> None:
    """Run `do` once, in the engine's thread, as soon as the step `label` of the contact's
    journey has run successfully: before the next state starts, so a speed set here is the
    one its wait-for-event timeout is converted at."""
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


def open_email(journeys: Journeys, message: OutboxEntry) -> None:
    """The contact opens `message`: SES publishes an Open event to the feedback topic, as
    the configuration set does on AWS. Feedback finds the message within a day of the
    event's send time, taken from the outbox: open at a moderate speed (at 86400x the
    outbox time can be a day after the send function's)."""
    assert journeys.stack.deployment is not None
    record = {
        "eventType": "Open",
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
        "open": {"timestamp": message.at, "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"},
    }
    journeys.stack.client("sns").publish(
        TopicArn=journeys.stack.deployment.refs["FeedbackTopic"], Message=json.dumps(record)
    )


def tags(journeys: Journeys, contact_id: str) -> set[str]:
    status, contact = journeys.request("GET", f"/v1/contacts/{quote(contact_id)}")
    assert status == 200, contact
    return set(contact.get("tags") or {})


# --- scenarios ------------------------------------------------------------------------------


def test_a_visitor_without_an_email_address_is_asked_on_site(journeys: Journeys) -> None:
    # GIVEN a chat visitor we know only by their on-site id
    ana = journeys.contact("ana", **VISITOR)
    # WHEN the chat starts, then closes
    journeys.event(ana, "chat_started", **CHAT)
    execution = journeys.execution(WORKFLOW, ana)
    journeys.until(lambda: "Wait for the chat to close (max 4 h)" in journeys.path(execution), 10)
    journeys.event(ana, "chat_closed")
    # THEN an hour later the survey is asked on site instead of by email
    finished = journeys.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    path = journeys.path(execution)
    assert in_order(
        path,
        "Wait for the chat to close (max 4 h)",
        "Wait 1 hour after the chat",
        "Do we have a valid email address?",
        "On-site: how was your chat?",
        "Asked on site instead",
        "Journey completed",
    )
    assert "Email: how was your chat?" not in path
    # (on-site messages have no provider yet: the send step says so, nothing leaves)
    [on_site] = step_results(journeys, execution, "On-site: how was your chat?")
    assert on_site["status"] == "skipped" and on_site["reason"] == "channel-not-deliverable-yet"
    assert journeys.sent(ana) == []


def test_a_customer_who_rates_the_chat_is_tagged_and_thanked(journeys: Journeys) -> None:
    # GIVEN a customer with an email address
    ana = journeys.contact("ana", **CUSTOMER)
    # WHEN she chats with Sam and the chat closes
    journeys.event(ana, "chat_started", **CHAT)
    execution = journeys.execution(WORKFLOW, ana)
    journeys.until(lambda: "Wait for the chat to close (max 4 h)" in journeys.path(execution), 10)
    journeys.event(ana, "chat_closed")
    # THEN an hour later she is asked by email how the chat with Sam went
    [survey] = journeys.messages(ana, 1)
    assert (survey.channel, survey.to, survey.step_label) == (
        "email",
        "ana@example.com",
        "Email: how was your chat?",
    )
    assert survey.subject == "How was your chat with Sam?"
    assert "https://survey.example.com/chat?c=conv-77&score=4" in survey.body
    # WHEN she rates it (the 2-day window lasts 48 s at this speed)
    journeys.until(lambda: "Rated the chat within 2 days?" in journeys.path(execution), 10)
    journeys.event(ana, "survey_answered", survey="chat-csat", score=4)
    # THEN she is tagged as a responder and thanked, and nothing else is sent
    journeys.finished(execution)
    sent = journeys.messages(ana, 2)
    assert [m.step_label for m in sent] == ["Email: how was your chat?", "Thank the responder"]
    assert sent[1].subject == "Thanks for your feedback, Ana"
    assert in_order(
        journeys.path(execution),
        "Rated the chat within 2 days?",
        "Tag: answered the chat survey",
        "Thank the responder",
        "Responder thanked",
        "Journey completed",
    )
    assert "chat-survey-responder" in tags(journeys, ana)


def test_an_opener_who_does_not_answer_is_tagged_and_not_asked_again(journeys: Journeys) -> None:
    # GIVEN a customer who opens the survey email as soon as it arrives; the 2-day window
    # after it then passes in 2 s
    ana = journeys.contact("ana", **CUSTOMER)

    def opened_at_once() -> None:
        open_email(journeys, journeys.sent(ana)[-1])
        journeys.speed(86400)

    after_step(journeys, ana, "Email: how was your chat?", opened_at_once)
    # WHEN she chats, the chat closes, and she answers another survey, not the chat's
    journeys.event(ana, "chat_started", **CHAT)
    execution = journeys.execution(WORKFLOW, ana)
    journeys.until(lambda: "Wait for the chat to close (max 4 h)" in journeys.path(execution), 10)
    journeys.event(ana, "chat_closed")
    journeys.until(lambda: "Rated the chat within 2 days?" in journeys.path(execution), 10)
    journeys.event(ana, "survey_answered", survey="nps", score=9)
    # THEN after 2 days she is tagged as an opener, and gets no resend
    journeys.finished(execution)
    path = journeys.path(execution)
    assert in_order(
        path,
        "Email: how was your chat?",
        "Rated the chat within 2 days?",
        "Opened the follow-up email?",
        "Tag: opened the chat follow-up",
        "Opened, did not answer",
        "Journey completed",
    )
    assert "Tag: answered the chat survey" not in path
    assert channels(journeys.sent(ana)) == ["email"]
    assert "chat-follow-up-opened" in tags(journeys, ana)


def test_a_non_opener_gets_the_resend_and_is_thanked_for_answering_it(journeys: Journeys) -> None:
    # GIVEN a customer who chats and does not open the survey email: the 2-day window
    # passes in 2 s, then the 3-day window after the resend lasts 72 s
    ana = journeys.contact("ana", **CUSTOMER)
    after_step(journeys, ana, "Email: how was your chat?", lambda: journeys.speed(86400))
    after_step(journeys, ana, "Resend to non-openers (new subject)", lambda: journeys.speed(3600))
    journeys.event(ana, "chat_started", **CHAT)
    execution = journeys.execution(WORKFLOW, ana)
    journeys.until(lambda: "Wait for the chat to close (max 4 h)" in journeys.path(execution), 10)
    journeys.event(ana, "chat_closed")
    # THEN two days later the survey comes again with a new subject
    sent = journeys.messages(ana, 2)
    assert [m.step_label for m in sent] == [
        "Email: how was your chat?",
        "Resend to non-openers (new subject)",
    ]
    assert sent[1].subject == "Ana, did we solve your problem?"
    assert sent[1].to == "ana@example.com"
    # WHEN she answers it
    journeys.until(lambda: "Rated the chat after the resend?" in journeys.path(execution), 10)
    journeys.event(ana, "survey_answered", survey="chat-csat", score=1)
    # THEN the journey goes back to tag and thank her
    journeys.finished(execution)
    assert [m.step_label for m in journeys.messages(ana, 3)][2] == "Thank the responder"
    assert in_order(
        journeys.path(execution),
        "Opened the follow-up email?",
        "Resend to non-openers (new subject)",
        "Rated the chat after the resend?",
        "Tag: answered the chat survey",
        "Thank the responder",
        "Responder thanked",
    )
    assert "chat-survey-responder" in tags(journeys, ana)


def test_a_contact_who_never_opens_nor_answers_finishes_after_the_resend(
    journeys: Journeys,
) -> None:
    # GIVEN a customer who ignores everything, three days of journey time per real second
    ana = journeys.contact("ana", **CUSTOMER)
    journeys.speed(3 * 86400)
    journeys.event(ana, "chat_started", **CHAT)
    # THEN she gets the survey and the resend, is not tagged, and the follow-up finishes
    execution = journeys.finished(journeys.execution(WORKFLOW, ana), timeout=30)
    path = journeys.path(execution)
    assert in_order(
        path,
        "Email: how was your chat?",
        "Opened the follow-up email?",
        "Resend to non-openers (new subject)",
        "Rated the chat after the resend?",
        "Opened the resend?",
        "Follow-up finished",
        "Journey completed",
    )
    assert "Tag: opened the chat follow-up resend" not in path
    assert [m.step_label for m in journeys.sent(ana)] == [
        "Email: how was your chat?",
        "Resend to non-openers (new subject)",
    ]
    assert not {"chat-survey-responder", "chat-follow-up-opened"} & tags(journeys, ana)
