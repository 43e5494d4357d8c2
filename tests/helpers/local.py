"""Drive the local stack the way a web app and a marketer would: over its HTTP API, then
read execution histories and the outbox.

One stack serves the whole e2e session (starting it deploys 20 state machines). Each
scenario gets fresh contact ids (`Journeys.contact_id`), starts at a known moment of
journey time (`Journeys.at`), and stops its leftover executions when it ends.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from journeys import router
from journeys.local.outbox import OutboxEntry
from journeys.local.stack import LocalStack

PATIENCE = 3  # every timeout below is multiplied by this
HTTP_CALLS = frozenset({"webhook", "fetch", "audience"})
#: A Tuesday, 10:00 in London: inside every reference workflow's sending hours.
WORKDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class Journeys:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.prefix = f"t{uuid.uuid4().hex[:6]}"
        self._contacts: list[str] = []

    # --- time ----------------------------------------------------------------------------

    def at(self, moment: datetime = WORKDAY_MORNING, speed: float = 3600) -> None:
        """Journey time restarts at `moment`, running `speed` times real time."""
        self.stack.clock.reset(moment, speed)

    def speed(self, scale: float) -> None:
        self.stack.clock.set_scale(scale)

    # --- the API -------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.stack.api_url + path,
            data=data,
            method=method,
            headers={"x-api-key": self.stack.api_key, "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode() or "null")

    def contact_id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def contact(self, name: str, **body: Any) -> str:
        """PUT a contact (`name` gets this scenario's prefix); returns its id."""
        contact_id = self.contact_id(name)
        status, answer = self.request("PUT", f"/v1/contacts/{contact_id}", body)
        assert status in (200, 201), answer
        self._contacts.append(contact_id)
        return contact_id

    def event(
        self, contact_id: str, name: str, event_id: str | None = None, **properties: Any
    ) -> str:
        event_id = event_id or f"{contact_id}-{name}-{uuid.uuid4().hex[:8]}"
        body = {
            "event_id": event_id,
            "contact_id": contact_id,
            "name": name,
            "properties": properties,
        }
        status, answer = self.request("POST", "/v1/events", body)
        assert status == 202, answer
        return event_id

    # --- what happened -------------------------------------------------------------------

    def executions(self, workflow_id: str, contact_id: str) -> list[dict[str, Any]]:
        arn = self.stack.state_machine_arn(workflow_id)
        found = self.sfn.list_executions(stateMachineArn=arn)["executions"]
        return [e for e in found if named_for(e["name"], workflow_id, contact_id)]

    def execution(self, workflow_id: str, contact_id: str, timeout: float = 60) -> dict[str, Any]:
        """The contact's (only) execution of the workflow, once it exists."""
        return self._until(
            lambda: (found := self.executions(workflow_id, contact_id)) and found[0],
            timeout,
            f"{contact_id} never entered {workflow_id}",
        )

    def finished(self, execution: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
        arn = execution["executionArn"]
        return self._until(
            lambda: (
                (d := self.sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d
            ),
            timeout,
            f"{execution['name']} is still running",
        )

    def path(self, execution: dict[str, Any]) -> list[str]:
        """The states the execution entered, in order (the marketer's labels)."""
        events = self.sfn.get_execution_history(
            executionArn=execution["executionArn"], maxResults=1000
        )["events"]
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in sorted(events, key=lambda e: e["id"])
            if "stateEnteredEventDetails" in e
        ]

    def outbox(self, contact_id: str) -> list[OutboxEntry]:
        assert self.stack.outbox is not None
        return self.stack.outbox.entries(contact_id=contact_id)

    def messages(self, contact_id: str, count: int, timeout: float = 90) -> list[OutboxEntry]:
        """Wait until `count` messages (email, SMS, push, team alerts; not HTTP calls) went
        to the contact; return them."""
        self._until(
            lambda: len(self.sent(contact_id)) >= count,
            timeout,
            f"{contact_id} got {channels(self.sent(contact_id))}, not {count} messages",
        )
        return self.sent(contact_id)

    def sent(self, contact_id: str) -> list[OutboxEntry]:
        return [e for e in self.outbox(contact_id) if e.channel not in HTTP_CALLS]

    def calls(self, contact_id: str) -> list[OutboxEntry]:
        """The webhooks, fetches and audience changes made for the contact."""
        return [e for e in self.outbox(contact_id) if e.channel in HTTP_CALLS]

    def until(self, check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        return self._until(check, timeout, what or "the condition never held")

    @staticmethod
    def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
        # Waiting ends as soon as the check holds, so a generous limit costs nothing when
        # all is well and spares a loaded CI machine false failures.
        deadline = time.monotonic() + timeout * PATIENCE
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(what)
            time.sleep(0.1)

    # --- clean-up ------------------------------------------------------------------------

    def stop_all(self) -> None:
        """Stop this scenario's executions so they do not run on into the next one."""
        assert self.stack.deployment is not None
        for arn in self.stack.deployment.state_machines.values():
            for execution in self.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")[
                "executions"
            ]:
                workflow_id = arn.rsplit(":", 1)[-1].removeprefix("journeys-local-")
                if any(named_for(execution["name"], workflow_id, c) for c in self._contacts):
                    try:
                        self.sfn.stop_execution(executionArn=execution["executionArn"])
                    except Exception:
                        continue


def name_prefixes(workflow_id: str, contact_id: str) -> tuple[str, str]:
    """How every execution name of the contact's journeys in the workflow starts, in the
    two forms `journeys.router.execution_name` gives: readable, and hashed (whose start
    does not depend on the event: an event id with a NUL is never readable)."""
    hashed = router.execution_name(contact_id, workflow_id, "\x00")
    return f"{workflow_id}_{contact_id}_", hashed[: hashed.rindex("__") + 2]


def named_for(name: str, workflow_id: str, contact_id: str) -> bool:
    """Whether an execution name is this contact's journey in this workflow (a contact
    cut short in a hashed name may match another contact sharing its start)."""
    return name.startswith(name_prefixes(workflow_id, contact_id))


def ses_event(journeys: Journeys, email: OutboxEntry, kind: str, link: str = "") -> None:
    """What SES publishes about `email` ("Delivery", "Open", "Click", "Bounce",
    "Complaint") on the configuration set's SNS topic, at the journey clock's now: the
    feedback function gets it as on AWS (the record is the demo's simulated recipients')."""
    from journeys.local.demo import ses_record

    stack = journeys.stack
    assert stack.deployment is not None and email.message_id, email
    record = ses_record(kind, email.as_dict(), stack.clock.now(), link=link)
    stack.client("sns").publish(
        TopicArn=stack.deployment.refs["FeedbackTopic"], Message=json.dumps(record)
    )


def channels(entries: Iterable[OutboxEntry]) -> list[str]:
    return [entry.channel for entry in entries]


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# --- Scenario helpers shared by the e2e files ------------------------------------------


def sweep(journeys: Journeys) -> int:
    """One run of the hourly sweep at the current journey time, as EventBridge sends it."""
    now = journeys.stack.clock.now()
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/e2e-sweep"],
        "detail": {},
    }
    return int(journeys.stack.invoke("SweepFunction", event)["enqueued"])


def runs(journeys: Journeys, workflow_id: str, contact_id: str) -> list[dict[str, Any]]:
    """The contact's executions of the workflow, oldest first, every page read.

    `Journeys.executions` reads moto's first page only (100 executions, newest journey
    time first: these scenarios stand before the harness's workday morning) and misses
    names the router hashes (`name_prefixes`)."""
    arn = journeys.stack.state_machine_arn(workflow_id)
    prefixes = name_prefixes(workflow_id, contact_id)
    found = [
        execution
        for page in journeys.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
        for execution in page["executions"]
        if execution["name"].startswith(prefixes)
    ]
    mine = [
        execution
        for execution in found
        if json.loads(
            journeys.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
        )["contact_id"]
        == contact_id
    ]
    return sorted(mine, key=lambda execution: execution["startDate"])


def first_run(journeys: Journeys, workflow_id: str, contact_id: str) -> dict[str, Any]:
    """The contact's first execution of the workflow, once it exists."""
    found: list[dict[str, Any]] = journeys.until(
        lambda: runs(journeys, workflow_id, contact_id),
        20,
        f"{contact_id} never entered {workflow_id}",
    )
    return found[0]


def contact_record(journeys: Journeys, contact_id: str) -> dict[str, Any]:
    status, body = journeys.request("GET", f"/v1/contacts/{contact_id}")
    assert status == 200, body
    return dict(body)


def entered(journeys: Journeys, execution: dict[str, Any], label: str) -> None:
    journeys.until(lambda: label in journeys.path(execution), 15, f"never entered {label!r}")


def after(path: list[str], label: str) -> list[str]:
    return path[path.index(label) :]


def in_order(path: list[str], *labels: str) -> bool:
    """Whether `labels` were entered in this order (other states may come between)."""
    remaining = iter(path)
    return all(label in remaining for label in labels)


def step_results(journeys: Journeys, execution: dict[str, Any], label: str) -> list[Any]:
    """What the Task state `label` answered each time it ran (the Lambda's payload)."""
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    results: list[Any] = []
    current = ""
    for event in sorted(events, key=lambda e: e["id"]):
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "TaskSucceeded" and current == label:
            output = json.loads(event["taskSucceededEventDetails"]["output"])
            results.append(output.get("Payload", output))
    return results


def routed(contact_id: str, event_id: str) -> bool:
    """Whether the router has finished with the event (its routing marker says so)."""
    from journeys.router import MARKER_PREFIX, RoutingMarker, bind
    from journeys.settings import get_settings

    bind(get_settings())
    try:
        marker = RoutingMarker.get(contact_id, MARKER_PREFIX + event_id, consistent_read=True)
    except RoutingMarker.DoesNotExist:
        return False
    return marker.routed_at is not None


def trigger(journeys: Journeys, execution: dict[str, Any]) -> dict[str, Any]:
    """What started the execution (its input's `trigger`)."""
    described = journeys.sfn.describe_execution(executionArn=execution["executionArn"])
    return dict(json.loads(described["input"])["trigger"])


#: The contact as the API returns it (the name some scenarios read better with).
stored = contact_record
