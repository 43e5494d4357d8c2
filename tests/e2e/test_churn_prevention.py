"""Churn prevention on the local stack: a user whose logins dropped by half over the last
15 days (segment about-to-churn) gets the latest update notes and a discount on the best
channel they can be reached on, then a welcome-back message if they log in within 24 h,
or a request for feedback if they do not.

Login history is reported with past `occurred_at` times, as an app sending its history
does, so the segment's two 15-day windows are filled without moving journey time by
weeks (which would make the stack's hourly sweep schedule catch up hour by hour, for
every contact of the session). The sweep is invoked as its EventBridge schedule invokes
it. Scenarios stand before the harness's workday morning (2026-11-24).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from tests.helpers.local import (
    Journeys,
    channels,
    contact_record,
    entered,
    name_prefixes,
    routed,
    sweep,
    trigger,
)

pytestmark = pytest.mark.e2e

#: Thursday 12 November 2026, 10:00 in London.
MORNING = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
WORKFLOW = "churn-prevention"
LONDON = "Europe/London"


def logins(journeys: Journeys, contact_id: str, *ago: timedelta) -> list[str]:
    """Logins that happened `ago` before now (journey time), reported now in one batch;
    their event ids."""
    now = journeys.stack.clock.now()
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{contact_id}-login-{uuid.uuid4().hex[:8]}",
            "contact_id": contact_id,
            "name": "logged_in",
            "occurred_at": (now - moment).isoformat(),
            "properties": {},
        }
        for moment in ago
    ]
    status, answer = journeys.request("POST", "/v1/events/batch", {"events": events})
    assert status == 202, answer
    return [str(event["event_id"]) for event in events]


def runs(journeys: Journeys, contact_id: str) -> list[dict[str, Any]]:
    """The contact's executions of churn-prevention, every page read (moto lists 100 a
    page, newest journey time first, and these scenarios stand before the harness's
    workday morning)."""
    arn = journeys.stack.state_machine_arn(WORKFLOW)
    prefixes = name_prefixes(WORKFLOW, contact_id)
    found = [
        execution
        for page in journeys.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
        for execution in page["executions"]
        if execution["name"].startswith(prefixes)
    ]
    return [
        execution
        for execution in found
        if json.loads(
            journeys.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
        )["contact_id"]
        == contact_id
    ]


def first_run(journeys: Journeys, contact_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = journeys.until(
        lambda: runs(journeys, contact_id), 20, f"{contact_id} never entered {WORKFLOW}"
    )
    return found[0]


def after(path: list[str], label: str) -> list[str]:
    """The path from `label` on, as if no send had been held for quiet hours or the
    frequency cap (at the speeds used here a send may fall in the night): without the
    holding states and the held send's first, deferred, attempt."""
    held = ("Quiet hours or cap: ", "Hold: ")
    steps: list[str] = []
    for state in path:
        if not state.startswith(held) and (not steps or steps[-1] != state):
            steps.append(state)
    return steps[steps.index(label) :]


def user(name: str, **channel: dict[str, str]) -> dict[str, Any]:
    return {
        "attributes": {"first_name": name},
        "channels": channel
        or {"email": {"address": f"{name.lower()}@example.com", "status": "subscribed"}},
        "time_zone": LONDON,
    }


def test_logins_halving_bring_update_notes_and_logging_in_brings_a_welcome_back(
    journeys: Journeys,
) -> None:
    # GIVEN a user who logged in 25 days ago and again 15 days ago less an hour: one login
    # in each 15-day window, no drop yet (journey time runs at a minute a second: routing
    # cannot take the hour)
    journeys.at(MORNING, speed=60)
    carla = journeys.contact("carla", **user("Carla"))
    # (the later login first: routed alone, the older one would put her in the segment
    # for as long as the later one takes to arrive, and that is enough to start a journey)
    for ago in (timedelta(days=15, hours=-1), timedelta(days=25)):
        [login] = logins(journeys, carla, ago)
        journeys.until(partial(routed, carla, login), 10, "the login was not routed")
    assert "about-to-churn" not in contact_record(journeys, carla)["segments"]
    # WHEN the hour passes (the later login leaves the recent window) and the sweep runs
    journeys.stack.clock.advance(3660)
    sweep(journeys)
    # THEN she is about to churn: the latest update notes and a discount go by email
    execution = first_run(journeys, carla)
    assert "about-to-churn" in contact_record(journeys, carla)["segments"]
    assert trigger(journeys, execution)["key"] == "segment_entered:about-to-churn"
    assert trigger(journeys, execution)["event_id"].startswith(f"seg-sweep:{carla}:")
    offer = journeys.messages(carla, 1)[0]
    assert (offer.channel, offer.to, offer.step_label) == (
        "email",
        "carla@example.com",
        "Email update notes and discount",
    )
    assert offer.subject == "Carla, see what's new, plus 20% off on us"
    assert "- Faster dashboards: Reports now load in under a second." in offer.body
    assert "20% off your next renewal with code\r\nCOMEBACK20" in offer.body
    assert [c.to for c in journeys.calls(carla)] == [
        "POST https://app.example.com/api/release-notes/latest"
    ]
    entered(journeys, execution, "Logged in within 24 h of email?")
    # WHEN she logs in a few hours later
    journeys.event(carla, "logged_in")
    # THEN she is welcomed back and the journey ends
    sent = journeys.messages(carla, 2)
    assert (sent[1].step_label, sent[1].subject) == (
        "Welcome-back email",
        "Welcome back, Carla!",
    )
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(execution), "Best reachable channel?") == [
        "Best reachable channel?",
        "Email update notes and discount",
        "Logged in within 24 h of email?",
        "Welcome-back email",
        "Came back after email",
        "Journey completed",
    ]


def test_no_login_within_24_hours_brings_a_request_for_feedback(journeys: Journeys) -> None:
    # GIVEN journey time at 8 hours a second (the 24 h wait lasts 3 s) and a user whose
    # only login was 20 days ago
    journeys.at(MORNING, speed=8 * 3600)
    fred = journeys.contact("fred", **user("Fred"))
    logins(journeys, fred, timedelta(days=20))
    # THEN the router puts him in about-to-churn at once and the offer goes out
    execution = first_run(journeys, fred)
    assert trigger(journeys, execution)["event_id"].startswith("seg:")
    # WHEN he does not log in within 24 h
    # THEN he is asked what we could do better
    sent = journeys.messages(fred, 2)
    assert [m.step_label for m in sent] == [
        "Email update notes and discount",
        "Feedback email",
    ]
    assert sent[1].subject == "Fred, can you tell us what we could do better?"
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(execution), "Logged in within 24 h of email?") == [
        "Logged in within 24 h of email?",
        "Feedback email",
        "Asked for feedback by email",
        "Journey completed",
    ]


def test_without_email_the_offer_goes_by_push_then_sms_then_whatsapp(journeys: Journeys) -> None:
    # GIVEN four users about to churn: one with a push token, one with a phone, one on
    # WhatsApp only and one with no channel at all
    journeys.at(MORNING, speed=600)
    pia = journeys.contact(
        "pia", **user("Pia", push={"address": "pia-phone", "status": "subscribed"})
    )
    sam = journeys.contact(
        "sam", **user("Sam", sms={"address": "+447700900789", "status": "subscribed"})
    )
    walt = journeys.contact(
        "walt", **user("Walt", whatsapp={"address": "+447700900790", "status": "subscribed"})
    )
    nora = journeys.contact("nora", attributes={"first_name": "Nora"}, time_zone=LONDON)
    # WHEN their login history arrives (last login 20 days ago)
    for contact in (pia, sam, walt, nora):
        logins(journeys, contact, timedelta(days=20))
    executions = {contact: first_run(journeys, contact) for contact in (pia, sam, walt, nora)}
    # THEN each gets the offer on the first channel they are reachable on
    push = journeys.messages(pia, 1)[0]
    assert (push.channel, push.step_label) == ("push", "Push update notes and discount")
    assert "Faster dashboards and more. Code COMEBACK20 takes 20% off your renewal" in push.body
    sms = journeys.messages(sam, 1)[0]
    assert (sms.channel, sms.to, sms.step_label) == (
        "sms",
        "+447700900789",
        "SMS update notes and discount",
    )
    assert sms.body.startswith("Sam, we've shipped new features! Use COMEBACK20 for 20% off")
    waits = {
        pia: "Logged in within 24 h of push?",
        sam: "Logged in within 24 h of SMS?",
        walt: "Logged in within 24 h of WhatsApp?",
    }
    for contact, label in waits.items():
        entered(journeys, executions[contact], label)
    assert after(journeys.path(executions[walt]), "Best reachable channel?") == [
        "Best reachable channel?",
        "WhatsApp update notes and discount",
        "Logged in within 24 h of WhatsApp?",
    ]
    # (WhatsApp has no delivery provider yet: the step runs, nothing reaches the outbox)
    assert journeys.sent(walt) == []
    # AND the user with no channel leaves at once
    assert journeys.finished(executions[nora])["status"] == "SUCCEEDED"
    assert after(journeys.path(executions[nora]), "Best reachable channel?") == [
        "Best reachable channel?",
        "No channel to reach",
        "Journey completed",
    ]
    assert journeys.sent(nora) == []
    assert [channels(journeys.sent(c)) for c in (pia, sam)] == [["push"], ["sms"]]
