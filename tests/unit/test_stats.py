"""journeys.stats without AWS: metric names, rates, and how executions end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from journeys import stats
from journeys.exceptions import COMPLETED, EXITED, GOAL_REACHED

PREFIX = "arn:aws:states:us-east-1:123456789012:stateMachine:journeys-dev-"


def status_change(status: str, output: Any = None, workflow_id: str | None = "onboarding") -> Any:
    """A "Step Functions Execution Status Change" event as EventBridge delivers it."""
    execution_input = {"contact_id": "c-1", "entry_id": "e-1", "trigger": {}, "data": {}}
    if workflow_id is not None:
        execution_input["workflow_id"] = workflow_id
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1",
        "resources": [f"{PREFIX.replace('stateMachine', 'execution')}onboarding:e-1"],
        "detail": {
            "executionArn": f"{PREFIX.replace('stateMachine', 'execution')}onboarding:e-1",
            "stateMachineArn": f"{PREFIX}onboarding",
            "name": "e-1",
            "status": status,
            "startDate": 1_700_000_000_000,
            "stopDate": 1_700_000_100_000,
            "input": json.dumps(execution_input),
            "output": None if output is None else json.dumps(output),
        },
    }


def test_step_metric_names() -> None:
    assert stats.step_metric("welcome-email", "sent") == "step:welcome-email:sent"
    assert stats.step_metric("a:b", "opened") == "step:a:b:opened"


def test_rates_and_conversion() -> None:
    summary = stats.summarize(
        "onboarding",
        {
            "entered": 10,
            "active": 3,
            "goal_reached": 4,
            "completed": 2,
            "exited": 1,
            "step:welcome:sent": 8,
            "step:welcome:opened": 4,
            "step:welcome:clicked": 2,
            "step:welcome:bounced": 1,
            "step:a:b:skipped": 2,
            "step:welcome:unknown": 9,
            "something-else": 5,
        },
    )
    assert summary.totals.entered == 10 and summary.totals.failed == 0
    assert summary.conversion_rate == 0.4
    welcome = summary.steps["welcome"]
    assert (welcome.sent, welcome.opened, welcome.clicked, welcome.bounced) == (8, 4, 2, 1)
    # No delivery counted for the step: engagement falls back to messages sent.
    assert (welcome.open_rate, welcome.click_rate, welcome.bounce_rate) == (0.5, 0.25, 0.125)
    assert welcome.engagement_denominator == "sent" and welcome.delivery_rate == 0.0
    skipped_only = summary.steps["a:b"]
    assert skipped_only.skipped == 2 and skipped_only.open_rate is None


def test_no_entries_means_no_rates() -> None:
    summary = stats.summarize("onboarding", {})
    assert summary.conversion_rate is None and summary.steps == {}


@pytest.mark.parametrize(
    ("status", "output", "metric"),
    [
        ("SUCCEEDED", {"outcome": {"Error": GOAL_REACHED, "Cause": "goal"}}, "goal_reached"),
        ("SUCCEEDED", {"outcome": {"Error": EXITED, "Cause": "exit"}}, "exited"),
        ("SUCCEEDED", {"outcome": {"Error": COMPLETED, "Cause": "End"}}, "completed"),
        ("SUCCEEDED", {"contact_id": "c-1"}, "completed"),
        ("SUCCEEDED", None, "completed"),
        ("FAILED", None, "failed"),
        ("TIMED_OUT", None, "failed"),
        ("ABORTED", None, "failed"),
        ("RUNNING", None, None),
    ],
)
def test_status_to_metric(status: str, output: Any, metric: str | None) -> None:
    detail = status_change(status, output)["detail"]
    assert stats.ending_metric(detail["status"], detail["output"]) == metric


def test_the_workflow_comes_from_the_input_else_the_state_machine() -> None:
    assert stats.workflow_of(status_change("FAILED")["detail"]) == "onboarding"
    without = status_change("FAILED", workflow_id=None)["detail"]
    assert stats.workflow_of(without) is None
    assert stats.workflow_of(without, PREFIX) == "onboarding"
    assert stats.workflow_of({**without, "input": None}, PREFIX) == "onboarding"


def test_events_that_are_not_ends_are_ignored() -> None:
    assert stats.on_execution_end(status_change("RUNNING")).status == "ignored"


def test_record_does_nothing_while_the_table_is_unbound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats.StatRecord.Meta, "table_name", "")

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no write expected")

    monkeypatch.setattr(stats, "increment", boom)
    stats.record("onboarding", "entered")


def test_record_swallows_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stats.StatRecord.Meta, "table_name", "stats")

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(stats, "increment", boom)
    stats.record("onboarding", "entered", "active")  # does not raise


def test_engagement_is_over_delivered_once_deliveries_are_counted() -> None:
    step = stats.step_stats(
        {"sent": 10, "delivered": 8, "opened": 4, "clicked": 2, "bounced": 2, "complained": 1}
    )
    assert (step.delivery_rate, step.bounce_rate) == (0.8, 0.2)  # over sent
    assert (step.open_rate, step.click_rate, step.complaint_rate) == (0.5, 0.25, 0.125)
    assert step.engagement_denominator == "delivered"
    nothing = stats.step_stats({"skipped": 3})
    assert nothing.engagement_denominator is None and nothing.delivery_rate is None


def test_states_passed_and_unsubscribes_are_read_back() -> None:
    assert stats.state_metric("Checked out within 2 h?") == "state:Checked out within 2 h?:passed"
    summary = stats.summarize(
        "onboarding",
        {
            stats.state_metric("Send cart reminder"): 12,
            stats.state_metric("Watch for: Purchased"): 20,  # colons in names are kept
            "state:Send cart reminder:waiting": 3,  # not a metric: ignored
            "unsubscribed": 2,
        },
    )
    assert {name: s.passed for name, s in summary.states.items()} == {
        "Send cart reminder": 12,
        "Watch for: Purchased": 20,
    }
    assert summary.totals.unsubscribed == 2


def entered(event_id: int, name: str, kind: str = "Pass") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": f"{kind}StateEntered",
        "stateEnteredEventDetails": {"name": name, "input": "{}"},
    }


def exited(event_id: int, name: str, kind: str = "Pass") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": f"{kind}StateExited",
        "stateExitedEventDetails": {"name": name, "output": "{}"},
    }


STARTED = {
    "id": 1,
    "type": "ExecutionStarted",
    "executionStartedEventDetails": {
        "input": json.dumps({"contact_id": "c-1", "workflow_id": "onboarding", "entry_id": "e-1"})
    },
}


def test_a_history_gives_each_state_entered_once_and_the_input() -> None:
    history = [
        STARTED,
        entered(2, "Add a point"),
        exited(3, "Add a point"),
        entered(4, "Again?", "Choice"),
        exited(5, "Again?", "Choice"),
        entered(6, "Add a point"),  # the loop, again
        exited(7, "Add a point"),
        entered(8, "Done", "Succeed"),
        {"id": 9, "type": "ExecutionSucceeded", "executionSucceededEventDetails": {}},
    ]
    summary = stats.summarize_history(history)
    assert summary.states == ("Add a point", "Again?", "Done")
    assert summary.execution_input == {
        "contact_id": "c-1",
        "workflow_id": "onboarding",
        "entry_id": "e-1",
    }
    assert summary.started_next_run is False


@pytest.mark.parametrize(
    ("outcome", "started"),
    [
        ({"type": "TaskSucceeded", "taskSucceededEventDetails": {"output": "{}"}}, True),
        (
            {
                "type": "TaskFailed",
                "taskFailedEventDetails": {
                    "error": "StepFunctions.ExecutionAlreadyExistsException",
                    "cause": "exists",
                },
            },
            True,
        ),
        (
            {
                "type": "TaskFailed",
                "taskFailedEventDetails": {"error": "StepFunctions.AWSStepFunctionsException"},
            },
            False,
        ),
    ],
)
def test_a_repeat_that_started_its_next_run_is_told_apart(
    outcome: dict[str, Any], started: bool
) -> None:
    task = {"resourceType": "states", "resource": "startExecution"}
    details = next(key for key in outcome if key.endswith("Details"))
    outcome = {"id": 4, **outcome, details: {**outcome[details], **task}}
    history = [
        STARTED,
        entered(2, "Next week", "Task"),
        {"id": 3, "type": "TaskScheduled", "taskScheduledEventDetails": task},
        outcome,
    ]
    assert stats.summarize_history(history).started_next_run is started
    # A Lambda task succeeding is not a new run.
    lambda_task = {
        "id": 4,
        "type": "TaskSucceeded",
        "taskSucceededEventDetails": {"resourceType": "lambda", "resource": "invoke"},
    }
    assert stats.summarize_history([*history[:3], lambda_task]).started_next_run is False


def test_the_open_state_is_the_newest_entered_and_not_exited() -> None:
    history = [
        STARTED,
        entered(2, "Welcome email", "Task"),
        exited(3, "Welcome email", "Task"),
        entered(4, "Wait 2 days", "Wait"),
    ]
    assert stats.open_state(history) == "Wait 2 days"
    # Order of the page does not matter (reverseOrder pages come newest first).
    assert stats.open_state(list(reversed(history))) == "Wait 2 days"
    # A page that no longer shows the entry of the open state says nothing.
    assert stats.open_state([exited(3, "Welcome email", "Task")]) is None
    # An execution that ended meanwhile is nowhere.
    ended = [*history, exited(5, "Wait 2 days", "Wait"), {"id": 6, "type": "ExecutionAborted"}]
    assert stats.open_state(ended) is None


def test_in_the_goal_race_the_journey_step_wins_over_the_watch() -> None:
    for journey_first in (True, False):
        branches = [entered(4, "Wait 2 days", "Wait"), entered(5, "Watch for: Purchased", "Task")]
        if not journey_first:
            branches = [
                entered(4, "Watch for: Purchased", "Task"),
                entered(5, "Wait 2 days", "Wait"),
            ]
        history = [
            STARTED,
            entered(2, "Onboarding", "Parallel"),
            {"id": 3, "type": "ParallelStateStarted"},
            *branches,
        ]
        assert stats.open_state(history, "Watch for: ") == "Wait 2 days"
    # Only the watch open (between two steps of the journey): the watch it is.
    only_watch = [
        STARTED,
        entered(2, "Onboarding", "Parallel"),
        entered(3, "Watch for: Purchased", "Task"),
    ]
    assert stats.open_state(only_watch, "Watch for: ") == "Watch for: Purchased"
    # After the race, the goal's follow-up is where the contact is; the journey's
    # cancelled wait (never exited) is older.
    after = [
        *history,
        {"id": 6, "type": "ParallelStateFailed"},
        exited(7, "Onboarding", "Parallel"),
        entered(8, "Send thank you", "Task"),
    ]
    assert stats.open_state(after, "Watch for: ") == "Send thank you"


def test_the_workflow_can_come_from_the_history_input() -> None:
    without = {**status_change("FAILED", workflow_id=None)["detail"], "input": None}
    assert stats.workflow_of(without, "", {"workflow_id": "from-history"}) == "from-history"


def test_entry_statuses_never_say_failed() -> None:
    # The router reads an entry "failed" as a start that failed (it does not count for
    # re-entry); an execution that ran and failed did enter.
    assert set(stats.ENTRY_STATUSES) == {"completed", "goal_reached", "exited", "failed"}
    assert "failed" not in stats.ENTRY_STATUSES.values()


def test_non_ends_are_ignored_without_reading_history() -> None:
    # No client and no moto: a history read would have to reach AWS.
    result = stats.on_execution_end(status_change("RUNNING"))
    assert (result.status, result.history) == ("ignored", "not_read")
