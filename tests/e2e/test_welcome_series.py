from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from journeys import messaging
from journeys.local.outbox import OutboxEntry
from tests.helpers.local import Journeys, channels

pytestmark = pytest.mark.e2e


def labels(journeys: Journeys, execution: dict[str, Any]) -> list[str]:
    return [name.replace('\\"', '"') for name in journeys.path(execution)]


def _history(journeys: Journeys, execution: dict[str, Any]) -> list[dict[str, Any]]:
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    return sorted(events, key=lambda e: e["id"])


def _find_state(states: dict[str, Any], label: str) -> dict[str, Any] | None:
    for name, state in states.items():
        if name == label:
            return dict(state)
        for branch in state.get("Branches", []):
            found = _find_state(branch["States"], label)
            if found is not None:
                return found
    return None


def _json_path(document: Any, path: str) -> Any:
    value = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


def skip(journeys: Journeys, execution: dict[str, Any], label: str, timeout: float = 20) -> None:
    journeys.until(
        lambda: label in labels(journeys, execution), timeout, f"{label!r} never entered"
    )
    entered = [
        e
        for e in _history(journeys, execution)
        if e.get("stateEnteredEventDetails", {}).get("name", "").replace('\\"', '"') == label
    ][-1]
    arn = execution["executionArn"].replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
    definition = json.loads(journeys.sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    state = _find_state(definition["States"], label)
    assert state is not None and state["Type"] == "Wait", label
    details = entered["stateEnteredEventDetails"]
    if "Seconds" in state:
        end = entered["timestamp"].astimezone(UTC) + timedelta(seconds=state["Seconds"])
    else:
        text = _json_path(json.loads(details["input"]), state["TimestampPath"])
        end = datetime.fromisoformat(text.replace("Z", "+00:00"))
    remaining = (end - journeys.stack.clock.now()).total_seconds()
    print("skip", label, end, remaining)
    if remaining > 0:
        journeys.stack.clock.advance(remaining)


def feedback(journeys: Journeys, entry: OutboxEntry, kind: str, link: str | None = None) -> None:
    sent = datetime.fromisoformat(entry.at.replace("Z", "+00:00"))
    at = journeys.stack.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    tags = {
        "contact_id": [messaging.encode_tag_value(entry.contact_id)],
        "workflow_id": [entry.workflow_id],
        "step_id": [entry.step_id],
    }
    record: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "timestamp": sent.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "messageId": entry.message_id,
            "destination": [entry.to],
            "tags": tags,
        },
    }
    if kind == "Open":
        record["open"] = {"timestamp": at, "userAgent": "Mail", "ipAddress": "192.0.2.1"}
    else:
        record["click"] = {"timestamp": at, "link": link, "ipAddress": "192.0.2.1"}
    assert journeys.stack.deployment is not None
    topic = journeys.stack.deployment.refs["FeedbackTopic"]
    journeys.stack.client("sns").publish(TopicArn=topic, Message=json.dumps(record))


SUBSCRIBER = {
    "attributes": {"first_name": "Wen"},
    "channels": {"email": {"address": "wen@example.com", "status": "subscribed"}},
    "lists": {"subscribe": ["Newsletter"]},
    "time_zone": "Europe/London",
}


def test_explore(journeys: Journeys) -> None:
    wen = journeys.contact("wen", **SUBSCRIBER)
    execution = journeys.execution("welcome-series", wen)
    print(execution["name"])
    [welcome] = journeys.messages(wen, 1)
    print(welcome)
    feedback(journeys, welcome, "Open")
    skip(journeys, execution, "Wait 2 days after welcome 1")
    skip(journeys, execution, "Sending hours before welcome 2")
    journeys.messages(wen, 2)
    skip(journeys, execution, "Wait 3 days after welcome 2")
    skip(journeys, execution, "Sending hours before welcome 3")
    journeys.messages(wen, 3)
    skip(journeys, execution, "Wait 5 days after welcome 3")
    skip(journeys, execution, "Sending hours before the offer")
    journeys.until(lambda: "Give the offer 7 days" in labels(journeys, execution) or "No offer (holdout): measure 7 days" in labels(journeys, execution))
    print(labels(journeys, execution))
    for m in journeys.sent(wen):
        print(m.at, m.step_label, m.subject)
    print(channels(journeys.sent(wen)))
    status, contact = journeys.request("GET", f"/v1/contacts/{wen}")
    print(contact)
