"""Welcome series on the local stack: joining the Newsletter list starts four welcome emails
over ten days; who opened one gets a first-order offer, who opened none is tagged; a first
purchase (the goal) or an unsubscribe ends the series wherever the subscriber is.

This module also holds the small helpers the other reference-workflow e2e files share
(`skip_wait`, `path_of`, `in_order`, `execution_named`, `contact_record`):
they belong in `tests/helpers/local.py`, which these tests may not edit.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers.local import Journeys, channels, ses_event

pytestmark = pytest.mark.e2e


# --- helpers shared by the reference-workflow e2e files ---------------------------------------


def path_of(journeys: Journeys, execution: dict[str, Any]) -> list[str]:
    """`Journeys.path` with the marketer's labels as written: moto's ASL parser keeps the
    JSON escapes of quotes in state names (`Add to \\"Pricing-page visitors\\"`)."""
    return [name.replace('\\"', '"') for name in journeys.path(execution)]


def in_order(path: list[str], *labels: str) -> bool:
    """Whether `labels` appear in `path` in this order (other states may come between)."""
    states = iter(path)
    return all(label in states for label in labels)


def _history(journeys: Journeys, execution: dict[str, Any]) -> list[dict[str, Any]]:
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    return sorted(events, key=lambda event: event["id"])


def _state(states: dict[str, Any], label: str) -> dict[str, Any] | None:
    for name, state in states.items():
        if name == label:
            return dict(state)
        for branch in state.get("Branches", []):
            found = _state(branch["States"], label)
            if found is not None:
                return found
    return None


def _wait_end(state: dict[str, Any], entered: dict[str, Any]) -> datetime:
    if "Seconds" in state:
        moment: datetime = entered["timestamp"]
        return moment.astimezone(UTC) + timedelta(seconds=state["Seconds"])
    value: Any = json.loads(entered["stateEnteredEventDetails"]["input"])
    for part in state["TimestampPath"].removeprefix("$.").split("."):
        value = value[part]
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def skip_wait(
    journeys: Journeys, execution: dict[str, Any], label: str, timeout: float = 20
) -> None:
    """Once the execution is in the Wait state `label`, jump journey time to its end (and no
    further, so sending windows and quiet hours after it hold as they would)."""
    journeys.until(
        lambda: label in path_of(journeys, execution),
        timeout,
        f"{execution['name']} never reached {label!r}: {path_of(journeys, execution)}",
    )
    entered = [
        event
        for event in _history(journeys, execution)
        if event.get("stateEnteredEventDetails", {}).get("name", "").replace('\\"', '"') == label
    ][-1]
    machine = journeys.sfn.describe_execution(executionArn=execution["executionArn"])
    definition = json.loads(
        journeys.sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])[
            "definition"
        ]
    )
    state = _state(definition["States"], label)
    assert state is not None and state["Type"] == "Wait", f"{label!r} is not a Wait state"
    remaining = (_wait_end(state, entered) - journeys.stack.clock.now()).total_seconds()
    if remaining > 0:
        journeys.stack.clock.advance(remaining)


def execution_named(
    journeys: Journeys, workflow_id: str, contact_id: str, name: str, timeout: float = 20
) -> dict[str, Any]:
    """The contact's execution of the workflow called `name`, once it exists (the contact
    may have several: one per registration, one per round of a `repeat`)."""
    found: dict[str, Any] = journeys.until(
        lambda: next(
            (e for e in journeys.executions(workflow_id, contact_id) if e["name"] == name),
            None,
        ),
        timeout,
        f"{contact_id} has no execution {name} of {workflow_id}",
    )
    return found


def contact_record(journeys: Journeys, contact_id: str) -> dict[str, Any]:
    status, contact = journeys.request("GET", f"/v1/contacts/{urllib.parse.quote(contact_id)}")
    assert status == 200, contact
    return dict(contact)


# --- the welcome series -------------------------------------------------------------------

SUBSCRIBER = {
    "attributes": {"first_name": "Wen"},
    "channels": {"email": {"address": "wen@example.com", "status": "subscribed"}},
    "lists": {"subscribe": ["Newsletter"]},
    "time_zone": "Europe/London",
}
FIRST_THREE = [
    "Welcome 1: thanks for joining",
    "Welcome 2: our best resources",
    "Welcome 3: choose your topics",
]


def three_welcomes(journeys: Journeys, contact_id: str, execution: dict[str, Any]) -> None:
    """Cross the waits between welcome 1, 2 and 3, and the 5 days after welcome 3."""
    journeys.messages(contact_id, 1)
    skip_wait(journeys, execution, "Wait 2 days after welcome 1")
    skip_wait(journeys, execution, "Sending hours before welcome 2")
    journeys.messages(contact_id, 2)
    skip_wait(journeys, execution, "Wait 3 days after welcome 2")
    skip_wait(journeys, execution, "Sending hours before welcome 3")
    journeys.messages(contact_id, 3)
    skip_wait(journeys, execution, "Wait 5 days after welcome 3")


def test_a_subscriber_who_opened_a_welcome_gets_a_first_order_offer(journeys: Journeys) -> None:
    # GIVEN a new subscriber to the Newsletter list (the trigger), on a Tuesday morning
    wen = journeys.contact("wen", **SUBSCRIBER)
    execution = journeys.execution("welcome-series", wen)
    # WHEN she opens welcome 1 and the series runs its ten days
    [welcome] = journeys.messages(wen, 1)
    ses_event(journeys, welcome, "Open")
    three_welcomes(journeys, wen, execution)
    skip_wait(journeys, execution, "Sending hours before the offer")
    offer_paths = ("Give the offer 7 days", "No offer (holdout): measure 7 days")
    journeys.until(lambda: any(p in path_of(journeys, execution) for p in offer_paths), 20)

    # THEN she was tagged engaged and drawn into one of the offers (or the 10 % holdout)
    path = path_of(journeys, execution)
    assert in_order(
        path,
        *FIRST_THREE,
        "Opened any welcome email?",
        "Tag: welcomed and engaged",
        "Which first-order offer?",
    )
    assert "Never opened - no offer" not in path
    assert "welcome-engaged" in contact_record(journeys, wen)["tags"]
    sent = journeys.sent(wen)
    assert [m.step_label for m in sent[:3]] == FIRST_THREE
    assert {m.to for m in sent} == {"wen@example.com"}
    assert sent[0].subject == "Welcome to Example, Wen!"
    assert "cast-iron-care" in sent[1].body
    if "Welcome 4A: 10 % off your first order" in path:
        assert channels(journeys.messages(wen, 4)) == ["email"] * 4
        assert "WELCOME10" in journeys.sent(wen)[3].body
    elif "Welcome 4B: free shipping on your first order" in path:
        assert channels(journeys.messages(wen, 4)) == ["email"] * 4
        assert journeys.sent(wen)[3].subject == "Your first order ships free"
    else:
        assert "No offer (holdout): measure 7 days" in path
        assert len(journeys.sent(wen)) == 3
    # AND the three welcomes went out on sending days in sending hours, days apart
    times = [datetime.fromisoformat(m.at.replace("Z", "+00:00")) for m in sent[:3]]
    assert times[1] - times[0] >= timedelta(days=2)
    assert times[2] - times[1] >= timedelta(days=3)
    assert times[2].weekday() != 6 and 8 <= times[2].hour < 19  # Sunday moved to Monday


def test_a_subscriber_who_opened_nothing_is_tagged_and_gets_no_offer(journeys: Journeys) -> None:
    # GIVEN a new subscriber who never opens a welcome email
    wen = journeys.contact("wen", **SUBSCRIBER)
    execution = journeys.execution("welcome-series", wen)
    # WHEN the series has run its three welcomes and the 5 days after the third
    three_welcomes(journeys, wen, execution)
    # THEN the series ends tagged "welcome-unengaged", without an offer
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        *FIRST_THREE,
        "Opened any welcome email?",
        "Tag: welcome series unopened",
        "Never opened - no offer",
        "Journey completed",
    )
    assert "Which first-order offer?" not in path
    assert [m.step_label for m in journeys.sent(wen)] == FIRST_THREE
    assert "welcome-unengaged" in contact_record(journeys, wen)["tags"]


def test_a_night_time_subscriber_is_welcomed_at_seven_and_a_purchase_ends_it(
    journeys: Journeys,
) -> None:
    # GIVEN a subscriber who joins at 23:00, inside the quiet hours (21:00-07:00)
    journeys.at(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))
    wen = journeys.contact("wen", **SUBSCRIBER)
    execution = journeys.execution("welcome-series", wen)
    # WHEN the night passes
    skip_wait(journeys, execution, "Hold: Welcome 1: thanks for joining")
    # THEN welcome 1 goes out when they end, at 07:00 (plus the time the steps take)
    [welcome] = journeys.messages(wen, 1)
    assert "2026-11-25T07:00" <= welcome.at < "2026-11-25T09:00"
    # WHEN she completes her first order during the 2-day wait
    journeys.until(lambda: "Wait 2 days after welcome 1" in path_of(journeys, execution))
    journeys.event(wen, "order_completed", total=54)
    # THEN the goal ends the series at once, with nothing more sent
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert in_order(
        path,
        "Welcome 1: thanks for joining",
        "Quiet hours or cap: Welcome 1: thanks for joining",
        "Hold: Welcome 1: thanks for joining",
        "Welcome 1: thanks for joining",
        "Wait 2 days after welcome 1",
    )
    assert path[-1] == "Goal reached"
    assert "Welcome 2: our best resources" not in path
    assert len(journeys.sent(wen)) == 1


def test_the_one_click_unsubscribe_in_welcome_1_ends_the_series(journeys: Journeys) -> None:
    # GIVEN a subscriber who got welcome 1
    wen = journeys.contact("wen", **SUBSCRIBER)
    execution = journeys.execution("welcome-series", wen)
    [welcome] = journeys.messages(wen, 1)
    journeys.until(lambda: "Wait 2 days after welcome 1" in path_of(journeys, execution))
    # WHEN her mailbox posts the email's signed one-click unsubscribe link (RFC 8058)
    link = next(
        line.split(": ", 1)[1]
        for line in welcome.body.splitlines()
        if line.startswith("Unsubscribe: ")
    )
    query = urllib.parse.urlsplit(link).query
    request = urllib.request.Request(
        f"{journeys.stack.api_url}/v1/unsubscribe?{query}",
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    # THEN her email is unsubscribed and the series leaves her at once
    assert contact_record(journeys, wen)["channels"]["email"]["status"] == "unsubscribed"
    assert journeys.finished(execution)["status"] == "SUCCEEDED"
    path = path_of(journeys, execution)
    assert path[-1] == "Left the journey"
    assert "Welcome 2: our best resources" not in path
    assert len(journeys.sent(wen)) == 1
