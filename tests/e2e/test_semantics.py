"""Semantics every workflow relies on, on the local stack: a goal reached mid-wait, a
one-click unsubscribe mid-journey, an event that arrives before its wait step, and a
CSV import entering every row into a workflow.

Scenarios stand before the harness's workday morning (2026-11-24) so that advancing
journey time by days never makes the stack's hourly sweep schedule catch up hour by hour.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers.local import (
    Journeys,
    after,
    channels,
    contact_record,
    entered,
    first_run,
    routed,
    runs,
)

pytestmark = pytest.mark.e2e

#: Monday 16 November 2026, 10:00 in London.
MONDAY_MORNING = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
PUBLIC_BASE = "https://journeys.example.com"


def subscriber(name: str) -> dict[str, Any]:
    return {
        "attributes": {"first_name": name},
        "channels": {"email": {"address": f"{name.lower()}@example.com", "status": "subscribed"}},
        "lists": {"subscribe": ["Newsletter"]},
        "time_zone": "Europe/London",
    }


def state_input(journeys: Journeys, execution: dict[str, Any], label: str) -> dict[str, Any]:
    """The input of state `label` when the execution entered it."""
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    for event in events:
        details = event.get("stateEnteredEventDetails") or {}
        if details.get("name") == label:
            return dict(json.loads(details["input"]))
    raise AssertionError(f"{execution['name']} never entered {label!r}")


def post_form(url: str, body: str) -> tuple[int, str]:
    """POST a form as a mailbox does for RFC 8058 one-click unsubscribe: no API key."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# --- (a) A goal reached mid-wait -----------------------------------------------------------


def test_a_goal_reached_during_a_wait_ends_the_journey_there_and_nothing_more_is_sent(
    journeys: Journeys,
) -> None:
    # GIVEN a new subscriber who got welcome 1 and waits 2 days for welcome 2
    journeys.at(MONDAY_MORNING, speed=3600)
    gail = journeys.contact("gail", **subscriber("Gail"))
    execution = first_run(journeys, "welcome-series", gail)
    assert journeys.messages(gail, 1)[0].step_label == "Welcome 1: thanks for joining"
    entered(journeys, execution, "Wait 2 days after welcome 1")
    # WHEN she makes her first purchase (the goal) during that wait
    journeys.event(gail, "order_completed", total=42)
    # THEN the journey ends at the goal, right from the wait
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(execution), "Wait 2 days after welcome 1") == [
        "Wait 2 days after welcome 1",
        "Made a first purchase",
        "Goal reached",
    ]
    # AND nothing but welcome 1 went out: the ended journey sends no more
    assert channels(journeys.sent(gail)) == ["email"]


# --- (b) One-click unsubscribe mid-journey -------------------------------------------------


def test_a_one_click_unsubscribe_ends_the_journey_and_no_further_email_goes_out(
    journeys: Journeys,
) -> None:
    # GIVEN a new subscriber who got welcome 1 and waits 2 days for welcome 2
    journeys.at(MONDAY_MORNING, speed=3600)
    hugo = journeys.contact("hugo", **subscriber("Hugo"))
    execution = first_run(journeys, "welcome-series", hugo)
    welcome = journeys.messages(hugo, 1)[0]
    entered(journeys, execution, "Wait 2 days after welcome 1")
    # WHEN his mailbox posts the signed one-click link from the email (RFC 8058)
    link = re.search(r"^Unsubscribe: (\S+)$", welcome.body, re.MULTILINE)
    assert link is not None, welcome.body
    assert link.group(1).startswith(f"{PUBLIC_BASE}/v1/unsubscribe?action=unsubscribe&")
    url = journeys.stack.api_url + link.group(1).removeprefix(PUBLIC_BASE)
    status, page = post_form(url, "List-Unsubscribe=One-Click")
    # THEN he is unsubscribed and the journey stops (stop_on_unsubscribe, the default)
    assert status == 200, page
    assert "You are unsubscribed" in page
    assert contact_record(journeys, hugo)["channels"]["email"]["status"] == "unsubscribed"
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(execution), "Wait 2 days after welcome 1") == [
        "Wait 2 days after welcome 1",
        "Unsubscribed",
        "Left the journey",
    ]
    # AND nothing but welcome 1 went out: the ended journey sends no more
    assert channels(journeys.sent(hugo)) == ["email"]


def test_a_tampered_unsubscribe_link_is_refused_and_the_journey_goes_on(
    journeys: Journeys,
) -> None:
    # GIVEN a subscriber waiting for welcome 2
    journeys.at(MONDAY_MORNING, speed=3600)
    iris = journeys.contact("iris", **subscriber("Iris"))
    execution = first_run(journeys, "welcome-series", iris)
    welcome = journeys.messages(iris, 1)[0]
    entered(journeys, execution, "Wait 2 days after welcome 1")
    link = re.search(r"^Unsubscribe: (\S+)$", welcome.body, re.MULTILINE)
    assert link is not None
    # WHEN someone posts her link for another contact
    forged = link.group(1).replace(f"contact={iris}", f"contact={journeys.contact_id('x')}")
    status, _ = post_form(
        journeys.stack.api_url + forged.removeprefix(PUBLIC_BASE), "List-Unsubscribe=One-Click"
    )
    # THEN it is refused, and nobody is unsubscribed
    assert status == 403
    assert contact_record(journeys, iris)["channels"]["email"]["status"] == "subscribed"
    assert journeys.sfn.describe_execution(executionArn=execution["executionArn"])["status"] == (
        "RUNNING"
    )


# --- (c) An event that arrives before its wait step ----------------------------------------


def chat_event(
    journeys: Journeys, contact_id: str, name: str, occurred_at: datetime
) -> dict[str, Any]:
    """Report `name` as having happened at `occurred_at` (an app sending events late or
    out of order, as mobile SDKs do)."""
    body = {
        "event_id": f"{contact_id}-{name}",
        "contact_id": contact_id,
        "name": name,
        "occurred_at": occurred_at.isoformat(),
        "properties": {"chat_id": f"chat-{contact_id}"},
    }
    status, answer = journeys.request("POST", "/v1/events", body)
    assert status == 202, answer
    return body


def chatter(journeys: Journeys, name: str) -> str:
    return journeys.contact(
        name.lower(),
        attributes={"first_name": name},
        channels={"email": {"address": f"{name.lower()}@example.com", "status": "subscribed"}},
        time_zone="Europe/London",
    )


def entered_at(journeys: Journeys, execution: dict[str, Any], label: str) -> datetime:
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    for event in events:
        if (event.get("stateEnteredEventDetails") or {}).get("name") == label:
            return datetime.fromisoformat(str(event["timestamp"])).astimezone(UTC)
    raise AssertionError(f"{execution['name']} never entered {label!r}")


@pytest.mark.xfail(
    strict=True,
    reason="waits.register looks only for events since the wait state's EnteredTime "
    "(compiler/emit.py emit_wait_for_event: entered_at = $$.State.EnteredTime), so an "
    "awaited event routed before the wait step starts is ignored, while the same event "
    "routed a moment later releases the wait (waits.resolve never looks at when it "
    'happened); waits.py promises "an event arriving just before its wait step is '
    'never lost". Here chat_closed waits out the 4 h timeout.',
)
def test_an_awaited_event_that_happened_just_before_its_wait_step_is_not_lost(
    journeys: Journeys,
) -> None:
    # GIVEN a chat that started a minute ago and closed 30 seconds later, whose events
    # reach the API in the wrong order (chat_closed is routed before the journey exists);
    # journey time at 4 hours a second, so a lost event costs 1 s of timeout
    journeys.at(MONDAY_MORNING, speed=4 * 3600)
    jack = chatter(journeys, "Jack")
    now = journeys.stack.clock.now()
    closed = chat_event(journeys, jack, "chat_closed", now - timedelta(seconds=30))
    journeys.until(lambda: routed(jack, closed["event_id"]), 10, "chat_closed was not routed")
    chat_event(journeys, jack, "chat_started", now - timedelta(seconds=60))
    execution = first_run(journeys, "chat-follow-up", jack)
    # THEN "Wait for the chat to close" is released by that chat_closed at once, as it is
    # when the same event is routed after the wait began (next scenario), not by its
    # 4 h timeout
    entered(journeys, execution, "Wait 1 hour after the chat")
    assert "awaited" in state_input(journeys, execution, "Wait 1 hour after the chat")


def test_an_awaited_event_routed_after_its_wait_step_began_releases_it(
    journeys: Journeys,
) -> None:
    # GIVEN a chat that started a minute ago, and its follow-up waiting for it to close
    journeys.at(MONDAY_MORNING, speed=3600)
    kate = chatter(journeys, "Kate")
    now = journeys.stack.clock.now()
    chat_event(journeys, kate, "chat_started", now - timedelta(seconds=60))
    execution = first_run(journeys, "chat-follow-up", kate)
    entered(journeys, execution, "Wait for the chat to close (max 4 h)")
    waiting_since = entered_at(journeys, execution, "Wait for the chat to close (max 4 h)")
    # WHEN chat_closed arrives, saying the chat closed 30 seconds after it started,
    # before the wait step began
    chat_event(journeys, kate, "chat_closed", now - timedelta(seconds=30))
    # THEN the wait is released by it, and the survey follows an hour later
    entered(journeys, execution, "Wait 1 hour after the chat")
    awaited = state_input(journeys, execution, "Wait 1 hour after the chat")["awaited"]
    assert awaited["properties"] == {"chat_id": f"chat-{kate}"}
    assert datetime.fromisoformat(awaited["occurred_at"].replace("Z", "+00:00")) < waiting_since
    survey = journeys.messages(kate, 1)[0]
    assert (survey.to, survey.step_label) == ("kate@example.com", "Email: how was your chat?")


# --- (d) A CSV import entering every row ---------------------------------------------------


@pytest.fixture
def imported(journeys: Journeys) -> Iterator[list[str]]:
    """Contact ids an import creates; their journeys are stopped at the end (the harness
    only stops those of contacts made through `Journeys.contact`)."""
    created: list[str] = []
    yield created
    arn = journeys.stack.state_machine_arn("welcome-series")
    for page in journeys.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=arn, statusFilter="RUNNING"
    ):
        for execution in page["executions"]:
            if any(contact in execution["name"] for contact in created):
                journeys.sfn.stop_execution(executionArn=execution["executionArn"])


def post_csv(journeys: Journeys, path: str, text: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        journeys.stack.api_url + path,
        data=text.encode(),
        method="POST",
        headers={"x-api-key": journeys.stack.api_key, "content-type": "text/csv"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode() or "null")


def finished_import(journeys: Journeys, import_id: str) -> dict[str, Any] | None:
    """The import's report once it has stopped and counted every row.

    A stopped status alone is not enough: `imports.import_status` reads the counts before
    the execution's status, so a report read while the last batch finishes can say
    SUCCEEDED with that batch's rows still missing from the counts."""
    status, body = journeys.request("GET", f"/v1/imports/{import_id}")
    assert status == 200, body
    counting = body["status"] == "SUCCEEDED" and body["processed"] < body["rows"]
    if body["status"] == "RUNNING" or counting:
        return None
    return dict(body)


def test_a_csv_import_creates_the_contacts_and_every_row_enters_the_workflow(
    journeys: Journeys, imported: list[str]
) -> None:
    # GIVEN a file of three new subscribers (one phone number to normalise, a typed column)
    journeys.at(MONDAY_MORNING, speed=3600)
    lena, mark, nell = (journeys.contact_id(name) for name in ("lena", "mark", "nell"))
    imported.extend([lena, mark, nell])
    csv = (
        "contact_id,email,phone,first_name,orders:number,tags\n"
        f"{lena},lena@example.com,,Lena,2,vip;newsletter\n"
        f"{mark},mark@example.com,+44 7700 900321,Mark,0,\n"
        f"{nell},nell@example.com,,Nell,,\n"
    )
    # WHEN it is imported into the welcome series
    status, accepted = post_csv(journeys, "/v1/imports?workflow_id=welcome-series", csv)
    assert status == 202, accepted
    assert (accepted["rows"], accepted["workflow_id"]) == (3, "welcome-series")
    # THEN the import reports three contacts created and three journeys started
    import_id = accepted["import_id"]

    report = journeys.until(lambda: finished_import(journeys, import_id), 30, "still running")
    assert report["status"] == "SUCCEEDED", report
    assert {
        key: report[key]
        for key in (
            "rows",
            "processed",
            "contacts_created",
            "journeys_started",
            "journeys_skipped",
            "failed",
        )
    } == {
        "rows": 3,
        "processed": 3,
        "contacts_created": 3,
        "journeys_started": 3,
        "journeys_skipped": 0,
        "failed": 0,
    }
    # AND the contacts are as the file said
    lena_record = contact_record(journeys, lena)
    assert lena_record["attributes"] == {"first_name": "Lena", "orders": 2}
    assert set(lena_record["tags"]) == {"vip", "newsletter"}
    assert contact_record(journeys, mark)["channels"]["sms"]["address"] == "+447700900321"
    # AND every row entered the welcome series and got welcome 1
    for contact in (lena, mark, nell):
        execution = first_run(journeys, "welcome-series", contact)
        entered(journeys, execution, "Welcome 1: thanks for joining")
        welcome = journeys.messages(contact, 1)[0]
        assert welcome.to == f"{contact.split('-')[1]}@example.com"
        assert welcome.step_label == "Welcome 1: thanks for joining"
    # AND importing the same file again starts nobody twice (re-entry: never)
    status, again = post_csv(journeys, "/v1/imports?workflow_id=welcome-series", csv)
    assert status == 202, again
    second = journeys.until(
        lambda: finished_import(journeys, again["import_id"]), 30, "still running"
    )
    assert (second["contacts_unchanged"], second["journeys_skipped"]) == (3, 3), second
    for contact in (lena, mark, nell):
        assert len(runs(journeys, "welcome-series", contact)) == 1
