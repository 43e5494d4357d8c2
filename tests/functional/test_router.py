"""The router on moto: events stored once, waits released, journeys started exactly once."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from journeys import router, stats, waits
from journeys.exceptions import TransientError
from journeys.settings import Settings, get_settings
from journeys.store import EntryRecord, EventRecordModel, iso
from tests.helpers.aws import ACCOUNT, REGION, ROLE_ARN, history_state_names, park_on_token
from tests.helpers.lambdas import invoke

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MACHINE_PREFIX = "journeys-test-"
ARN_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE_PREFIX}"
#: Every test workflow is a single 60 s Wait: executions stay RUNNING while we look.
WAIT_A_MINUTE = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}},
}

INDEX: dict[str, Any] = {
    "workflows": {
        "welcome": {
            "name": "Welcome",
            "triggers": [{"key": "event:signed_up", "event": "signed_up"}],
            "settings": {"re_entry": "never"},
            "goal": None,
            "exits": ["event:unsubscribed"],
        },
        "cart": {
            "name": "Cart",
            "triggers": [
                {
                    "key": "event:added_to_cart",
                    "event": "added_to_cart",
                    "where": {"total": {"gt": 10}},
                }
            ],
            "settings": {"re_entry": {"after": "1 day"}},
            "goal": "event:checkout_completed",
            "exits": ["event:unsubscribed"],
        },
        "webinar": {
            "name": "Webinar",
            "triggers": [{"key": "event:webinar_registered", "event": "webinar_registered"}],
            "settings": {"re_entry": "always"},
        },
        "vip": {
            "name": "VIP",
            "triggers": [{"key": "tag_added:vip", "tag_added": "vip"}],
            "settings": {"re_entry": "never"},
        },
        "onboarding": {
            "name": "Onboarding",
            "triggers": [{"key": "list:Leads", "list": "Leads"}],
            "settings": {"re_entry": "never"},
        },
        "ghost": {
            "name": "Not deployed",
            "triggers": [{"key": "event:haunted", "event": "haunted"}],
            "settings": {"re_entry": "never"},
        },
    }
}
DEPLOYED = [workflow for workflow in INDEX["workflows"] if workflow != "ghost"]


@dataclass
class Routing:
    settings: Settings
    index: router.WorkflowIndex
    sfn: Any

    def route(
        self, message: dict[str, Any], now: datetime = NOW, sfn: Any = None
    ) -> router.Outcome:
        return router.route(message, self.index, self.settings, now=now, sfn=sfn or self.sfn)

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        found = self.sfn.list_executions(stateMachineArn=ARN_PREFIX + workflow_id)
        return list(found["executions"])


@pytest.fixture
def routing(aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Routing:
    path = tmp_path / "index.json"
    path.write_text(json.dumps(INDEX), encoding="utf-8")
    monkeypatch.setenv("WORKFLOW_INDEX", str(path))
    monkeypatch.setenv("STATE_MACHINE_ARN_PREFIX", ARN_PREFIX)
    get_settings.cache_clear()
    settings = get_settings()
    router.bind(settings)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for workflow_id in DEPLOYED:
        sfn.create_state_machine(
            name=MACHINE_PREFIX + workflow_id,
            definition=json.dumps(WAIT_A_MINUTE),
            roleArn=ROLE_ARN,
        )
    return Routing(settings, router.load_index(path), sfn)


def event(
    name: str, event_id: str = "e-1", at: datetime = NOW, **properties: Any
) -> dict[str, Any]:
    return {
        "type": "event",
        "event_id": event_id,
        "contact_id": "c-1",
        "name": name,
        "properties": properties,
        "occurred_at": iso(at),
    }


# --- Parked executions (a wait_for_event step or a goal/exit watch) -------------------------

_machines = itertools.count()


@dataclass
class Parked:
    sfn: Any
    execution: str
    token: str

    def status(self) -> str:
        return str(self.sfn.describe_execution(executionArn=self.execution)["status"])

    def finished(self) -> list[str]:
        for _ in range(100):
            if self.status() != "RUNNING":
                return history_state_names(self.sfn, self.execution)
            time.sleep(0.05)
        raise AssertionError("execution still waiting")


@pytest.fixture
def park(routing: Routing) -> Callable[..., Parked]:
    """Start an execution parked on a task token and register it like the wait Lambda."""
    sqs = boto3.client("sqs", region_name=REGION)

    def park_one(
        signal: str, entered_at: datetime, action: str = "wait", purpose: str = "wait"
    ) -> Parked:
        number = next(_machines)
        execution, token = park_on_token(
            routing.sfn, sqs, f"parked-{number}", "Happened?", "Released"
        )
        request = waits.WaitRequest(
            action=action,  # type: ignore[arg-type]
            task_token=token,
            contact_id="c-1",
            workflow_id="other",
            execution_id=execution,
            step_id=f"step-{number}",
            signal=signal,
            entered_at=entered_at,
            purpose=purpose,  # type: ignore[arg-type]
        )
        assert waits.register(request, now=entered_at) is False
        return Parked(routing.sfn, execution, token)

    return park_one


class ThrottledOnce:
    """A Step Functions client whose first StartExecution is throttled."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.throttled = False

    def start_execution(self, **arguments: Any) -> Any:
        if not self.throttled:
            self.throttled = True
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "StartExecution",
            )
        return self.real.start_execution(**arguments)

    def send_task_success(self, **arguments: Any) -> Any:
        return self.real.send_task_success(**arguments)


# --- Starting journeys ---------------------------------------------------------------------


def test_an_event_starts_exactly_one_journey_with_the_contract_input(routing: Routing) -> None:
    outcome = routing.route(event("added_to_cart", sku="A1", total=40))
    assert outcome.started == ["cart"]
    (execution,) = routing.executions("cart")
    name = router.execution_name("c-1", "cart", "e-1")
    assert execution["name"] == name == "cart_c-1_e-1"
    described = routing.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "contact_id": "c-1",
        "workflow_id": "cart",
        "entry_id": name,
        "iteration": 0,
        "trigger": {
            "key": "event:added_to_cart",
            "name": "added_to_cart",
            "event_id": "e-1",
            "occurred_at": iso(NOW),
            "properties": {"sku": "A1", "total": 40},
        },
        "data": {},
    }
    entry = EntryRecord.get("c-1", "cart", consistent_read=True)
    assert (entry.entry_id, entry.execution_arn, entry.status) == (
        name,
        execution["executionArn"],
        "running",
    )
    # Stored where decisions and the wait handshake read events.
    (stored,) = EventRecordModel.query("c-1", EventRecordModel.sort_key >= iso(NOW))
    assert (stored.sort_key, stored.name) == (f"{iso(NOW)}#e-1", "added_to_cart")


def test_other_events_and_unmatched_filters_start_nothing(routing: Routing) -> None:
    assert routing.route(event("added_to_cart", total=5)).starts == ()
    assert routing.route(event("page_viewed", event_id="e-2")).starts == ()
    assert routing.executions("cart") == []


def test_the_same_event_twice_starts_one_journey(routing: Routing) -> None:
    first = routing.route(event("webinar_registered"))
    again = routing.route(event("webinar_registered"), now=NOW + timedelta(seconds=5))
    # The intake stamping its own receive time on a client retry changes nothing either.
    restamped = routing.route(event("webinar_registered", at=NOW + timedelta(seconds=9)))
    assert first.started == ["webinar"]
    assert again.duplicate and restamped.duplicate
    assert again.starts == restamped.starts == ()
    assert len(routing.executions("webinar")) == 1
    # ...counted once in the workflow's statistics...
    totals = stats.read("webinar").totals
    assert (totals.entered, totals.active) == (1, 1)
    # ...and the event is stored once.
    assert len(list(EventRecordModel.query("c-1", EventRecordModel.sort_key >= iso(NOW)))) == 1


def test_re_entry_never(routing: Routing) -> None:
    assert routing.route(event("signed_up", "e-1")).started == ["welcome"]
    later = routing.route(event("signed_up", "e-2"), now=NOW + timedelta(days=400))
    assert [s.status for s in later.starts] == ["skipped_never"]
    assert len(routing.executions("welcome")) == 1


def test_re_entry_after_a_period(routing: Routing) -> None:
    def cart(event_id: str, hours: float) -> list[str]:
        at = NOW + timedelta(hours=hours)
        outcome = routing.route(event("added_to_cart", event_id, at=at, total=20), now=at)
        return [s.status for s in outcome.starts]

    assert cart("e-1", 0) == ["started"]
    assert cart("e-2", 23) == ["skipped_too_soon"]
    assert cart("e-3", 24) == ["started"]
    assert cart("e-4", 30) == ["skipped_too_soon"]  # the period counts from the latest entry
    assert len(routing.executions("cart")) == 2
    assert EntryRecord.get("c-1", "cart").entry_id == "cart_c-1_e-3"


def test_re_entry_always(routing: Routing) -> None:
    routing.route(event("webinar_registered", "e-1"))
    routing.route(event("webinar_registered", "e-2"))
    names = sorted(e["name"] for e in routing.executions("webinar"))
    assert names == ["webinar_c-1_e-1", "webinar_c-1_e-2"]


def test_enter_workflow_starts_the_target(routing: Routing) -> None:
    source = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:journeys-test-lead:abc"
    message = {
        "type": "enter_workflow",
        "workflow_id": "onboarding",
        "contact_id": "c-1",
        "event_id": f"{source}:go-onboarding",
        "source": {"workflow_id": "lead", "step_id": "go-onboarding", "execution_id": source},
    }
    outcome = routing.route(message)
    assert outcome.started == ["onboarding"]
    (execution,) = routing.executions("onboarding")
    assert execution["name"] == router.execution_name(
        "c-1", "onboarding", f"{source}:go-onboarding"
    )
    described = routing.sfn.describe_execution(executionArn=execution["executionArn"])
    trigger = json.loads(described["input"])["trigger"]
    assert (trigger["key"], trigger["name"]) == ("workflow:lead", "enter_workflow")
    assert routing.route(message).duplicate
    unknown = routing.route({**message, "workflow_id": "nowhere", "event_id": "x"})
    assert [s.status for s in unknown.starts] == ["unknown_workflow"]


def test_contact_changes_start_their_workflows(routing: Routing) -> None:
    message = {
        "type": "contact_changed",
        "event_id": "chg-1",
        "contact_id": "c-1",
        "occurred_at": iso(NOW),
        "tags_added": ["vip"],
        "lists_joined": ["Leads"],
    }
    assert sorted(routing.route(message).started) == ["onboarding", "vip"]
    (execution,) = routing.executions("vip")
    trigger = json.loads(
        routing.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
    )["trigger"]
    assert trigger["key"] == "tag_added:vip"
    assert trigger["properties"] == {"tag": "vip"}


# --- Releasing waits -----------------------------------------------------------------------


def test_a_matching_event_releases_a_parked_wait_once(
    routing: Routing, park: Callable[..., Parked]
) -> None:
    waiting = park("event:checkout_completed", NOW - timedelta(minutes=5))
    outcome = routing.route(event("checkout_completed", total=40))
    assert outcome.released == 1
    assert waiting.finished()[-1] == "Released"
    # A later wait for the same event, entered after it happened, must not be released by
    # a duplicate of the old event.
    later = park("event:checkout_completed", NOW + timedelta(minutes=1))
    again = routing.route(event("checkout_completed", total=40), now=NOW + timedelta(minutes=2))
    assert again.duplicate and again.released == 0
    assert later.status() == "RUNNING"


def test_unsubscribing_releases_exit_watches(routing: Routing, park: Callable[..., Parked]) -> None:
    watch = park("event:unsubscribed", NOW - timedelta(days=1), action="watch", purpose="exit")
    assert routing.route(event("unsubscribed", list="all")).released == 1
    assert watch.finished()[-1] == "Released"


def test_tags_added_and_segments_entered_release_watches(
    routing: Routing, park: Callable[..., Parked]
) -> None:
    tag = park("tag:vip", NOW - timedelta(days=1), action="watch", purpose="goal")
    segment = park("segment:d-30", NOW - timedelta(days=1), action="watch", purpose="exit")
    message = {
        "type": "contact_changed",
        "event_id": "chg-1",
        "contact_id": "c-1",
        "occurred_at": iso(NOW),
        "tags_added": ["vip"],
        "segments_entered": ["d-30"],
    }
    outcome = routing.route(message)
    assert outcome.released == 2
    assert outcome.started == ["vip"]
    assert tag.finished()[-1] == segment.finished()[-1] == "Released"


# --- Failures and retries ------------------------------------------------------------------


def test_a_throttled_start_is_retried_without_releasing_again(
    routing: Routing, park: Callable[..., Parked]
) -> None:
    waiting = park("event:added_to_cart", NOW - timedelta(minutes=5))
    with pytest.raises(TransientError):
        routing.route(event("added_to_cart", total=40), sfn=ThrottledOnce(routing.sfn))
    assert waiting.finished()[-1] == "Released"
    assert routing.executions("cart") == []
    # Meanwhile another wait for the same event starts (after the event happened).
    later = park("event:added_to_cart", NOW + timedelta(seconds=30))
    # SQS delivers the record again: the journey starts, the new wait stays parked.
    retried = routing.route(event("added_to_cart", total=40), now=NOW + timedelta(minutes=2))
    assert not retried.duplicate
    assert retried.started == ["cart"] and retried.released == 0
    assert len(routing.executions("cart")) == 1
    assert later.status() == "RUNNING"
    assert routing.route(event("added_to_cart", total=40)).duplicate


def test_a_message_held_by_another_consumer_is_retried_later(routing: Routing) -> None:
    stamp = int(NOW.timestamp())
    router.RoutingMarker(
        "c-1",
        router.MARKER_PREFIX + "e-1",
        message_type="event",
        claimed_at=iso(NOW),
        lease_until=stamp + 30,
    ).save()
    with pytest.raises(TransientError, match="another consumer"):
        routing.route(event("signed_up"))
    # Once the lease has run out (that consumer died), the message is taken over.
    outcome = routing.route(event("signed_up"), now=NOW + timedelta(seconds=31))
    assert outcome.started == ["welcome"]


def test_a_missing_state_machine_fails_the_message_without_blocking_entry(routing: Routing) -> None:
    with pytest.raises(router.StartFailed, match="StateMachineDoesNotExist"):
        routing.route(event("haunted"))
    assert EntryRecord.get("c-1", "ghost").status == "failed"
    # Deployed at last: the redelivered message starts the journey.
    routing.sfn.create_state_machine(
        name=MACHINE_PREFIX + "ghost", definition=json.dumps(WAIT_A_MINUTE), roleArn=ROLE_ARN
    )
    assert routing.route(event("haunted")).started == ["ghost"]
    assert EntryRecord.get("c-1", "ghost").status == "running"


# --- The Lambda ----------------------------------------------------------------------------


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000000",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:events",
        "awsRegion": REGION,
    }


def test_the_lambda_reports_only_the_failing_record(routing: Routing) -> None:
    now = datetime.now(UTC)
    records = [
        sqs_record("m-1", json.dumps(event("signed_up", "e-1", at=now))),
        sqs_record("m-2", json.dumps({"type": "event", "contact_id": "c-1"})),
        sqs_record("m-3", "not json"),
        sqs_record("m-4", json.dumps(event("webinar_registered", "e-2", at=now))),
    ]
    response = invoke("router", {"Records": records})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]}
    assert len(routing.executions("welcome")) == 1
    assert len(routing.executions("webinar")) == 1


def test_the_lambda_reports_a_batch_that_failed_entirely(routing: Routing) -> None:
    response = invoke("router", {"Records": [sqs_record("m-1", "{}")]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
