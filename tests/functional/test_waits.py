"""The wait-for-event handshake against a real execution parked on a task token."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from journeys import waits
from journeys.store import EventRecordModel, iso
from tests.helpers.aws import REGION, history_state_names, park_on_token
from tests.helpers.lambdas import invoke

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def parked(aws: dict[str, Any]) -> dict[str, Any]:
    """An execution waiting up to 30 s on a task token, like a wait_for_event step."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    execution, token = park_on_token(sfn, sqs, "wait", "Checked out?", "Bought")
    return {"sfn": sfn, "execution": execution, "token": token}


def request(token: str, where: dict[str, Any] | None = None) -> waits.WaitRequest:
    return waits.WaitRequest(
        action="wait",
        task_token=token,
        contact_id="c-1",
        workflow_id="cart",
        execution_id="exec-1",
        step_id="checked-out",
        signal="event:checkout_completed",
        entered_at=NOW - timedelta(minutes=5),
        where=where,
    )


def store_event(name: str, at: datetime, **properties: Any) -> None:
    EventRecordModel(
        "c-1",
        f"{iso(at)}#{name}",
        name=name,
        event_id=name,
        occurred_at=iso(at),
        properties=properties,
    ).save()


def finished(parked: dict[str, Any]) -> list[str]:
    for _ in range(100):
        described = parked["sfn"].describe_execution(executionArn=parked["execution"])
        if described["status"] != "RUNNING":
            return history_state_names(parked["sfn"], parked["execution"])
        time.sleep(0.05)
    raise AssertionError("execution still waiting")


def test_event_that_arrived_before_the_wait_is_not_lost(parked: dict[str, Any]) -> None:
    # GIVEN the checkout was stored a minute before the wait step registered its token
    store_event("checkout_completed", NOW - timedelta(minutes=1), total=40)
    # WHEN the wait registers
    resolved = waits.register(request(parked["token"]), now=NOW)
    # THEN it is released at once and the journey takes the "yes" path
    assert resolved is True
    assert finished(parked)[-1] == "Bought"


def test_event_after_the_wait_releases_it(parked: dict[str, Any]) -> None:
    assert waits.register(request(parked["token"]), now=NOW) is False
    store_event("checkout_completed", NOW + timedelta(seconds=1))
    released = waits.resolve("c-1", "event:checkout_completed", {}, NOW + timedelta(seconds=1))
    assert released == 1
    assert finished(parked)[-1] == "Bought"


def test_filters_must_match(parked: dict[str, Any]) -> None:
    waits.register(request(parked["token"], where={"total": {"gt": 100}}), now=NOW)
    assert waits.resolve("c-1", "event:checkout_completed", {"total": 40}, NOW) == 0
    assert waits.resolve("c-1", "event:checkout_completed", {"total": 140}, NOW) == 1
    assert finished(parked)[-1] == "Bought"


def test_a_token_released_twice_is_harmless(parked: dict[str, Any]) -> None:
    # GIVEN both sides saw each other: the wait released itself on registering
    store_event("checkout_completed", NOW - timedelta(minutes=1))
    assert waits.register(request(parked["token"]), now=NOW) is True
    finished(parked)
    # WHEN the router also tries (it stored the same event) THEN nothing breaks
    assert waits.resolve("c-1", "event:checkout_completed", {}, NOW) == 0


def test_events_before_the_step_was_entered_do_not_count(parked: dict[str, Any]) -> None:
    store_event("checkout_completed", NOW - timedelta(hours=1))
    assert waits.register(request(parked["token"]), now=NOW) is False


def test_the_lambda_registers_the_token(parked: dict[str, Any]) -> None:
    store_event("checkout_completed", datetime.now(UTC) - timedelta(seconds=5))
    event = {
        **request(parked["token"]).model_dump(mode="json"),
        "entered_at": iso(datetime.now(UTC) - timedelta(minutes=1)),
    }
    assert invoke("wait_for_event", event) == {"resolved_at_once": True}
    assert finished(parked)[-1] == "Bought"
