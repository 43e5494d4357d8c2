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
    assert (welcome.open_rate, welcome.click_rate, welcome.bounce_rate) == (0.5, 0.25, 0.125)
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
