"""Workflow statistics on moto: counters, the send hook, the stats Lambda and the API."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from journeys import stats, steps
from journeys.exceptions import GOAL_REACHED, TransientError
from journeys.settings import get_settings
from journeys.store import ContactRecord, EntryRecord, iso
from tests.functional.conftest import ROOT, SENDER
from tests.functional.test_api import api_event
from tests.helpers.aws import REGION, ROLE_ARN, park_on_token
from tests.helpers.lambdas import invoke
from tests.unit.test_stats import status_change

SEND = {
    "contact_id": "c-1",
    "workflow_id": "cart-abandonment",
    "step_id": "cart-email",
    "step_label": "Email cart reminder",
    "execution_id": "arn:exec:1",
    "trigger": {"key": "event:added_to_cart", "properties": {"product_name": "Shoes"}},
    "data": {},
    "channel": "email",
    "template": "cart-reminder-email",
    "state_entered_at": "2026-11-22T10:00:00.000Z",
}


@pytest.fixture
def ada(aws: dict[str, Any]) -> None:
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    ContactRecord(
        "c-1",
        attributes={"first_name": "Ada", "cart_items": 2},
        channels={"email": {"address": "ada@example.com", "status": "subscribed"}},
        time_zone="Europe/London",
    ).save()


def test_increments_add_up_and_read_back(aws: dict[str, Any]) -> None:
    # WHEN many writers count at once, and one takes a count back
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: stats.increment("onboarding", "entered"), range(20)))
    stats.increment("onboarding", "active", 3)
    stats.increment("onboarding", "active", -1)
    stats.increment("onboarding", stats.step_metric("welcome", "sent"), 4)
    stats.increment("onboarding", stats.step_metric("welcome", "opened"))
    stats.increment("other", "entered")
    # THEN every count is there, per workflow
    read = stats.read("onboarding")
    assert read.totals.entered == 20
    assert read.totals.active == 2
    assert read.steps["welcome"].sent == 4 and read.steps["welcome"].open_rate == 0.25


def test_a_send_counts_as_sent(ada: None) -> None:
    result = steps.send(steps.SendStepRequest.model_validate(SEND), get_settings())
    assert result["status"] == "sent"
    assert stats.read("cart-abandonment").steps["cart-email"].sent == 1


def test_a_send_succeeds_when_statistics_cannot_be_written(
    ada: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats.StatRecord.Meta, "table_name", "no-such-table")
    stats.StatRecord._connection = None
    result = steps.send(steps.SendStepRequest.model_validate(SEND), get_settings())
    assert result["status"] == "sent"


def test_the_stats_lambda_counts_a_goal_once(aws: dict[str, Any]) -> None:
    # GIVEN a contact in the journey
    stats.record("onboarding", "entered", "active")
    event = status_change("SUCCEEDED", {"outcome": {"Error": GOAL_REACHED, "Cause": "goal"}})
    # WHEN its execution ends with the goal, and EventBridge delivers the event twice
    first = invoke("stats", event)
    second = invoke("stats", event)
    # THEN the goal counts once and the contact is no longer active
    assert first["status"] == "counted" and first["metric"] == "goal_reached"
    assert second["status"] == "duplicate"
    read = stats.read("onboarding")
    assert (read.totals.entered, read.totals.active, read.totals.goal_reached) == (1, 0, 1)
    assert read.conversion_rate == 1.0


def test_a_failed_execution_counts_as_failed(aws: dict[str, Any]) -> None:
    stats.record("onboarding", "entered", "active")
    assert invoke("stats", status_change("TIMED_OUT"))["metric"] == "failed"
    assert stats.read("onboarding").totals.failed == 1


def test_the_api_returns_a_workflows_statistics(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_INDEX", str(ROOT / "state_machines" / "index.json"))
    get_settings.cache_clear()
    stats.increment("cart-abandonment", "entered", 4)
    stats.increment("cart-abandonment", "goal_reached", 1)
    stats.increment("cart-abandonment", stats.step_metric("cart-email", "sent"), 2)
    stats.increment("cart-abandonment", stats.step_metric("cart-email", "clicked"), 1)

    response = invoke("api", api_event("GET", "/v1/workflows/cart-abandonment/stats"))
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["workflow_id"] == "cart-abandonment"
    assert body["totals"]["entered"] == 4
    assert body["conversion_rate"] == 0.25
    assert body["steps"]["cart-email"]["click_rate"] == 0.5

    missing = invoke("api", api_event("GET", "/v1/workflows/no-such-workflow/stats"))
    assert missing["statusCode"] == 404


def test_unsubscribes_count_for_the_workflow_and_the_step_when_known(aws: dict[str, Any]) -> None:
    stats.count_unsubscribe("cart-abandonment")  # the signed link names no step
    stats.count_unsubscribe("cart-abandonment", "cart-email")  # a complaint names its message
    read = stats.read("cart-abandonment")
    assert read.totals.unsubscribed == 2
    assert read.steps["cart-email"].unsubscribed == 1


# --- Execution ends on a real (moto) execution --------------------------------------------------

#: A journey with a loop (three rounds of "Add a point") and a decision.
JOURNEY = {
    "StartAt": "Start",
    "States": {
        "Start": {
            "Type": "Pass",
            "Result": {"n": 0},
            "ResultPath": "$.loop",
            "Next": "Add a point",
        },
        "Add a point": {
            "Type": "Pass",
            "Parameters": {"n.$": "States.MathAdd($.loop.n, 1)"},
            "ResultPath": "$.loop",
            "Next": "Again?",
        },
        "Again?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.loop.n", "NumericLessThan": 3, "Next": "Add a point"}],
            "Default": "Is VIP?",
        },
        "Is VIP?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.vip", "BooleanEquals": True, "Next": "VIP offer"}],
            "Default": "Regular offer",
        },
        "VIP offer": {"Type": "Pass", "Next": "Done"},
        "Regular offer": {"Type": "Pass", "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}


def create_machine(name: str, definition: dict[str, Any]) -> tuple[Any, str]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name=f"journeys-test-{name}", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    return sfn, str(arn)


def run(sfn: Any, machine_arn: str, entry_id: str, **extra: Any) -> dict[str, Any]:
    """Start an execution as the router does (execution name = entry id) and wait for
    its end; its description."""
    execution_input = {
        "contact_id": "c-1",
        "workflow_id": "onboarding",
        "entry_id": entry_id,
        "iteration": 0,
        "trigger": {"key": "event:signed_up"},
        "data": {},
        **extra,
    }
    arn = sfn.start_execution(
        stateMachineArn=machine_arn, name=entry_id, input=json.dumps(execution_input)
    )["executionArn"]
    return wait_for_end(sfn, arn)


def wait_for_end(sfn: Any, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} still running after {timeout}s")


def end_event(described: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "Step Functions Execution Status Change" event of an ended execution."""

    def millis(moment: datetime) -> int:
        return int(moment.timestamp() * 1000)

    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": described["stopDate"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [described["executionArn"]],
        "detail": {
            "executionArn": described["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": described["status"],
            "startDate": millis(described["startDate"]),
            "stopDate": millis(described["stopDate"]),
            "input": described["input"],
            "output": described.get("output"),
            "inputDetails": {"included": True},
            "outputDetails": {"included": True},
        },
    }


def enter(entry_id: str, execution_arn: str) -> None:
    """What the router does before starting a journey: the entry, and the counts."""
    EntryRecord(
        "c-1",
        "onboarding",
        entry_id=entry_id,
        execution_arn=execution_arn,
        entered_at="2026-11-22T10:00:00.000000Z",
        status="running",
    ).save()
    stats.record("onboarding", stats.ENTERED, stats.ACTIVE)


def passed(workflow_id: str = "onboarding") -> dict[str, int]:
    return {name: state.passed for name, state in stats.read(workflow_id).states.items()}


def test_an_end_counts_each_state_passed_once_and_ends_the_entry(aws: dict[str, Any]) -> None:
    # GIVEN a contact who entered the journey and went through it (a loop, then VIP)
    sfn, machine = create_machine("onboarding", JOURNEY)
    execution_arn = machine.replace(":stateMachine:", ":execution:") + ":c-1-onboarding-e1"
    enter("c-1-onboarding-e1", execution_arn)
    described = run(sfn, machine, "c-1-onboarding-e1", vip=True)
    assert described["status"] == "SUCCEEDED"
    # WHEN EventBridge delivers the end to the stats Lambda
    result = invoke("stats", end_event(described))
    # THEN the end counts, every state entered counts once (the loop's too)
    assert result == {
        "status": "counted",
        "workflow_id": "onboarding",
        "metric": "completed",
        "history": "read",
        "states_counted": 6,
        "entry": "updated",
    }
    assert passed() == {
        "Add a point": 1,
        "Again?": 1,
        "Done": 1,
        "Is VIP?": 1,
        "Start": 1,
        "VIP offer": 1,
    }
    totals = stats.read("onboarding").totals
    assert (totals.entered, totals.active, totals.completed) == (1, 0, 1)
    # AND the contact's entry says how and when it ended
    entry = EntryRecord.get("c-1", "onboarding", consistent_read=True)
    assert (entry.status, entry.execution_arn) == ("completed", execution_arn)
    assert entry.ended_at == iso(described["stopDate"])

    # WHEN a second contact-run takes the other branch, and the first end is redelivered
    other = run(sfn, machine, "c-1-onboarding-e2", vip=False)
    invoke("stats", end_event(other))
    again = invoke("stats", end_event(described))
    # THEN the redelivery counts nothing; the branches add up to the decision
    assert (again["status"], again["states_counted"]) == ("duplicate", 0)
    counts = passed()
    assert counts["Is VIP?"] == counts["VIP offer"] + counts["Regular offer"] == 2
    assert stats.read("onboarding").totals.completed == 2


def test_a_newer_entry_is_never_overwritten(aws: dict[str, Any]) -> None:
    # GIVEN the contact entered again (a new entry claimed) before the old run's end arrived
    sfn, machine = create_machine("onboarding", JOURNEY)
    described = run(sfn, machine, "c-1-onboarding-old", vip=False)
    newer = machine.replace(":stateMachine:", ":execution:") + ":c-1-onboarding-new"
    enter("c-1-onboarding-new", newer)
    # WHEN the old run's end is counted
    result = invoke("stats", end_event(described))
    # THEN its states and end count, and the newer entry stays as it is
    assert (result["status"], result["entry"]) == ("counted", "superseded")
    entry = EntryRecord.get("c-1", "onboarding", consistent_read=True)
    assert (entry.entry_id, entry.status, entry.ended_at) == ("c-1-onboarding-new", "running", None)
    assert entry.execution_arn == newer


def test_a_failed_execution_ends_its_entry_without_freeing_it_for_re_entry(
    aws: dict[str, Any],
) -> None:
    failing = {"StartAt": "Break", "States": {"Break": {"Type": "Fail", "Error": "Boom"}}}
    sfn, machine = create_machine("onboarding", failing)
    execution_arn = machine.replace(":stateMachine:", ":execution:") + ":c-1-onboarding-f"
    enter("c-1-onboarding-f", execution_arn)
    described = run(sfn, machine, "c-1-onboarding-f")
    assert described["status"] == "FAILED"
    result = invoke("stats", end_event(described))
    assert (result["metric"], result["entry"]) == ("failed", "updated")
    assert passed() == {"Break": 1}
    # "failed" would tell the router the start failed (the entry would not count).
    entry = EntryRecord.get("c-1", "onboarding", consistent_read=True)
    assert entry.status == "execution_failed"


def test_a_throttled_history_read_writes_nothing_and_the_retry_completes(
    aws: dict[str, Any],
) -> None:
    sfn, machine = create_machine("onboarding", JOURNEY)
    execution_arn = machine.replace(":stateMachine:", ":execution:") + ":c-1-onboarding-t"
    enter("c-1-onboarding-t", execution_arn)
    event = end_event(run(sfn, machine, "c-1-onboarding-t", vip=True))

    # GIVEN Step Functions throttles the history read
    def throttle(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "GetExecutionHistory",
        )

    throttled = boto3.client("stepfunctions", region_name=REGION)
    throttled.meta.events.register("before-call.sfn.GetExecutionHistory", throttle)
    # WHEN the end arrives: the invocation fails before writing anything
    with pytest.raises(TransientError, match="ThrottlingException"):
        stats.on_execution_end(event, client=throttled)
    assert stats.read("onboarding").totals.completed == 0 and passed() == {}
    assert EntryRecord.get("c-1", "onboarding", consistent_read=True).status == "running"
    # THEN Lambda's retry counts it all
    result = stats.on_execution_end(event, client=sfn)
    assert (result.status, result.states_counted, result.entry) == ("counted", 6, "updated")


def test_an_unreadable_history_still_counts_the_end(aws: dict[str, Any]) -> None:
    # The history of an execution is gone 90 days after it closed (or access is denied).
    stats.record("onboarding", stats.ENTERED, stats.ACTIVE)
    event = end_event(
        {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:"
            "journeys-test-onboarding:long-gone",
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:"
            "journeys-test-onboarding",
            "name": "long-gone",
            "status": "SUCCEEDED",
            "startDate": datetime(2026, 1, 1, tzinfo=UTC),
            "stopDate": datetime(2026, 1, 2, tzinfo=UTC),
            "input": json.dumps({"contact_id": "c-1", "workflow_id": "onboarding"}),
        }
    )
    result = invoke("stats", event)
    assert (result["status"], result["history"], result["states_counted"]) == (
        "counted",
        "unavailable",
        0,
    )
    assert result["entry"] == "superseded"  # the contact has no such entry
    assert stats.read("onboarding").totals.completed == 1


def test_states_beyond_one_transaction_are_counted_in_chunks_a_retry_finishes(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a journey of 121 states: more than one DynamoDB transaction holds
    names = [f"Step {i:03}" for i in range(120)]
    long_journey = {
        "StartAt": names[0],
        "States": {
            **{
                name: {"Type": "Pass", "Next": names[i + 1] if i + 1 < len(names) else "Done"}
                for i, name in enumerate(names)
            },
            "Done": {"Type": "Succeed"},
        },
    }
    sfn, machine = create_machine("long", long_journey)
    event = end_event(run(sfn, machine, "c-1-long-1"))
    # WHEN the first attempt dies after its first chunk of state counters
    real = stats._count_once

    def dies_on_the_second_chunk(connection: Any, marker: stats.StatRecord, *args: Any) -> bool:
        if marker.metric == "states:1":
            raise RuntimeError("the Lambda timed out")
        return real(connection, marker, *args)

    monkeypatch.setattr(stats, "_count_once", dies_on_the_second_chunk)
    with pytest.raises(RuntimeError):
        stats.on_execution_end(event, client=sfn)
    assert sum(passed().values()) == 99
    monkeypatch.setattr(stats, "_count_once", real)
    # THEN the retry counts what was left, and every state has passed exactly once
    retry = stats.on_execution_end(event, client=sfn)
    assert (retry.status, retry.states_counted) == ("duplicate", 22)
    counts = passed()
    assert len(counts) == 121 and set(counts.values()) == {1}


def test_a_run_that_continues_as_a_new_execution_is_not_an_end(aws: dict[str, Any]) -> None:
    # moto 5.2.5 cannot run `states:startExecution` (see tests/e2e, the repeat test), so
    # the real history of a run gets the two events AWS records when a repeat step starts
    # the next run.
    sfn, machine = create_machine("onboarding", JOURNEY)
    execution_arn = machine.replace(":stateMachine:", ":execution:") + ":c-1-onboarding-r"
    enter("c-1-onboarding-r", execution_arn)
    event = end_event(run(sfn, machine, "c-1-onboarding-r", vip=True))
    task = {"resourceType": "states", "resource": "startExecution"}

    def with_the_next_run_started(parsed: dict[str, Any], **_: Any) -> None:
        last = max(e["id"] for e in parsed["events"])
        parsed["events"] += [
            {"id": last + 1, "type": "TaskScheduled", "taskScheduledEventDetails": task},
            {"id": last + 2, "type": "TaskSucceeded", "taskSucceededEventDetails": task},
        ]

    sfn.meta.events.register("after-call.sfn.GetExecutionHistory", with_the_next_run_started)
    result = stats.on_execution_end(event, client=sfn)
    # The journey goes on in the next run: states count, the end and the entry wait for it.
    assert (result.status, result.states_counted, result.entry) == ("continued", 6, None)
    totals = stats.read("onboarding").totals
    assert (totals.active, totals.completed) == (1, 0)
    assert EntryRecord.get("c-1", "onboarding", consistent_read=True).status == "running"


# --- Where the running journeys are -------------------------------------------------------------


def test_current_positions_counts_running_executions_per_state(aws: dict[str, Any]) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    # GIVEN a contact parked on a wait-for-event step
    execution, token = park_on_token(
        sfn, sqs, "journeys-test-checkout", "Checked out within 2 h?", "Thank you"
    )
    machine = sfn.describe_execution(executionArn=execution)["stateMachineArn"]
    # THEN she is counted there
    positions = stats.current_positions(machine, client=sfn)
    assert positions.waiting == {"Checked out within 2 h?": 1}
    assert positions.passed == {"Checked out within 2 h?": 1}
    assert (positions.executions, positions.unknown, positions.truncated) == (1, 0, False)
    [here] = positions.contacts
    assert (here.state, here.execution_arn) == ("Checked out within 2 h?", execution)
    assert here.since is not None
    # WHEN the event arrives and the journey ends, nobody waits any more
    sfn.send_task_success(taskToken=token, output="{}")
    wait_for_end(sfn, execution)
    assert stats.current_positions(machine, client=sfn).model_dump() == {
        "state_machine_arn": machine,
        "waiting": {},
        "passed": {},
        "contacts": [],
        "executions": 0,
        "unknown": 0,
        "truncated": False,
    }


def test_inside_the_goal_race_the_journey_step_counts_not_the_watch(aws: dict[str, Any]) -> None:
    # GIVEN journeys racing their goal: the watch waits as long as the journey does
    race = {
        "StartAt": "Onboarding",
        "States": {
            "Onboarding": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Wait 2 days",
                        "States": {"Wait 2 days": {"Type": "Wait", "Seconds": 30, "End": True}},
                    },
                    {
                        "StartAt": "Watch for: Purchased",
                        "States": {
                            "Watch for: Purchased": {"Type": "Wait", "Seconds": 30, "End": True}
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    sfn, machine = create_machine("race", race)
    executions = [
        sfn.start_execution(stateMachineArn=machine, name=f"c-{i}", input="{}")["executionArn"]
        for i in range(3)
    ]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            positions = stats.current_positions(machine, client=sfn)
            if positions.waiting.get("Wait 2 days") == 3:
                break
            time.sleep(0.05)
        # THEN each contact is at the journey's step, whichever branch started first
        assert positions.waiting == {"Wait 2 days": 3}
        # AND a bounded read says it saw only some
        sample = stats.current_positions(machine, client=sfn, limit=2)
        assert (sample.executions, sample.truncated, sample.waiting) == (
            2,
            True,
            {"Wait 2 days": 2},
        )
    finally:
        for execution in executions:
            sfn.stop_execution(executionArn=execution)


def test_current_positions_refuses_an_unbounded_read() -> None:
    with pytest.raises(ValueError, match="limit must be between 1 and 1000, got 5000"):
        stats.current_positions("arn:aws:states:us-east-1:1:stateMachine:x", limit=5000)


def test_positions_are_reused_for_their_max_age_and_read_again_after(aws: dict[str, Any]) -> None:
    from journeys import insights

    sfn = boto3.client("stepfunctions", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    execution, token = park_on_token(
        sfn, sqs, "journeys-test-reuse", "Checked out within 2 h?", "Thank you"
    )
    machine = sfn.describe_execution(executionArn=execution)["stateMachineArn"]
    reads: list[str] = []
    sfn.meta.events.register("before-call.sfn.ListExecutions", lambda **_: reads.append("list"))
    # GIVEN a position read with a max age of 30 s
    first = insights._positions(machine, sfn, 30)
    # WHEN the journey ends and a dashboard asks again within the 30 s
    sfn.send_task_success(taskToken=token, output="{}")
    wait_for_end(sfn, execution)
    again = insights._positions(machine, sfn, 30)
    # THEN it gets the same answer without a read; without a max age it reads afresh
    assert again == first and first.waiting == {"Checked out within 2 h?": 1}
    assert reads == ["list"]
    assert insights._positions(machine, sfn, 0).waiting == {}
    assert reads == ["list", "list"]
