"""The functions' CloudWatch metrics on moto: what each handler prints in the Embedded
Metric Format, one metric set per workflow, counted where the statistics count (never for
a duplicate), never a handler's failure, and nothing at all while metrics are disabled."""

from __future__ import annotations

import json
import warnings
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from journeys import stats
from journeys.exceptions import EXITED, GOAL_REACHED
from tests.functional.test_feedback import (
    World,
    clicked,
    complained,
    delivered,
    opened,
    send,
    ses_record,
    sns_event,
    world,  # noqa: F401  (fixture)
)
from tests.functional.test_imports import (
    FILE,
    Importing,
    ada,  # noqa: F401  (fixture)
    importing,  # noqa: F401  (fixture)
    post_csv,
    waiting_machine,  # noqa: F401  (fixture)
)
from tests.functional.test_router import (
    event,
    routing,  # noqa: F401  (fixture)
    sqs_record,
)
from tests.functional.test_stats import SEND
from tests.functional.test_stats import ada as ada_with_email  # noqa: F401  (fixture)
from tests.helpers.lambdas import invoke
from tests.unit.test_stats import status_change

Totals = dict[str, Counter[str]]


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics as a deployed function emits them: enabled, with the service dimension
    (POWERTOOLS_SERVICE_NAME comes from the template's Globals)."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "journeys")


def metric_sets(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents printed since the last call (log lines are skipped)."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            found.append(document)
    return found


def per_workflow(documents: list[dict[str, Any]]) -> Totals:
    """Metric totals per workflow, checking each document is one Journeys metric set
    with the dimensions the dashboard searches ({Journeys,service,workflow})."""
    totals: Totals = defaultdict(Counter)
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Journeys"
        if "workflow" not in document:
            continue  # a function's own metric (FeedbackSkipped)
        assert [sorted(dimensions) for dimensions in directive["Dimensions"]] == [
            ["service", "workflow"]
        ]
        assert document["service"] == "journeys"
        for metric in directive["Metrics"]:
            totals[document["workflow"]][metric["Name"]] += int(sum(document[metric["Name"]]))
    return dict(totals)


# --- send ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("ada_with_email")
def test_a_send_counts_once_per_attempt_in_its_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the send Lambda sends the cart reminder, Lambda retries the same attempt, and
    # another workflow's step sends to the same contact
    assert invoke("send", SEND)["status"] == "sent"
    assert invoke("send", SEND)["status"] == "sent"  # the idempotent replay
    invoke("send", {**SEND, "workflow_id": "onboarding", "execution_id": "arn:exec:2"})
    # THEN each workflow has its own metric set and the replay counted nothing
    assert per_workflow(metric_sets(capsys)) == {
        "cart-abandonment": Counter(MessagesSent=1),
        "onboarding": Counter(MessagesSent=1),
    }


@pytest.mark.usefixtures("ada_with_email")
def test_skipped_sends_and_team_alerts(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN a step sends on a channel that cannot deliver yet, and another alerts the team
    invoke("send", {**SEND, "channel": "whatsapp", "execution_id": "arn:exec:3"})
    alert = {
        **SEND,
        "step_id": "alert-sales",
        "channel": "team",
        "template": "interest-tags-sales-alert",
        "to": "sales@example.com",
        "execution_id": "arn:exec:4",
    }
    assert invoke("send", alert)["status"] == "sent"
    # THEN the skip counts as the step's statistic does; the alert is nobody's message
    assert per_workflow(metric_sets(capsys)) == {"cart-abandonment": Counter(MessagesSkipped=1)}
    steps = stats.read("cart-abandonment").steps
    assert steps["cart-email"].skipped == 1 and "alert-sales" not in steps


@pytest.mark.usefixtures("ada_with_email")
def test_no_dimension_warning_and_no_output_while_metrics_are_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN metrics switched off, as the local stack does
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # WHEN warm invocations send for two workflows
        for number, workflow_id in enumerate(("cart-abandonment", "onboarding", "cart")):
            result = invoke(
                "send", {**SEND, "workflow_id": workflow_id, "execution_id": f"arn:{number}"}
            )
            assert result["status"] == "sent"
    # THEN nothing is printed and Powertools warns about nothing
    assert metric_sets(capsys) == []
    assert [str(w.message) for w in caught if "imension" in str(w.message)] == []
    assert [str(w.message) for w in caught if "metrics" in str(w.message).lower()] == []


@pytest.mark.usefixtures("ada_with_email")
def test_metrics_never_fail_a_send(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("stdout is gone")

    monkeypatch.setattr(AmazonCloudWatchEMFProvider, "flush_metrics", broken)
    assert invoke("send", SEND)["status"] == "sent"
    assert stats.read("cart-abandonment").steps["cart-email"].sent == 1


# --- stats -----------------------------------------------------------------------------------


def test_each_ending_counts_once_under_its_name(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def ended(status: str, output: Any, execution: str) -> dict[str, Any]:
        change = status_change(status, output)
        detail = change["detail"]
        for key in ("executionArn", "name"):
            detail[key] = detail[key].replace("e-1", execution)
        return change

    goal = {"outcome": {"Error": GOAL_REACHED, "Cause": "goal"}}
    exited = {"outcome": {"Error": EXITED, "Cause": "unsubscribed"}}
    endings = [
        ended("SUCCEEDED", {}, "e-1"),
        ended("SUCCEEDED", goal, "e-2"),
        ended("SUCCEEDED", exited, "e-3"),
        ended("TIMED_OUT", None, "e-4"),
    ]
    # WHEN every ending arrives, and EventBridge delivers each a second time
    for change in endings + endings:
        invoke("stats", change)
    # THEN each counts once, as the statistics do
    assert per_workflow(metric_sets(capsys)) == {
        "onboarding": Counter(JourneyCompleted=1, GoalReached=1, JourneyExited=1, JourneyFailed=1)
    }
    totals = stats.read("onboarding").totals
    assert (totals.completed, totals.goal_reached, totals.exited, totals.failed) == (1, 1, 1, 1)


# --- router ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("routing")
def test_the_router_counts_journeys_started_per_workflow(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    records = [
        sqs_record("m-1", json.dumps(event("signed_up", "e-1", at=now))),
        sqs_record("m-2", json.dumps(event("webinar_registered", "e-2", at=now))),
        sqs_record("m-3", json.dumps(event("webinar_registered", "e-3", at=now))),
        sqs_record("m-4", json.dumps(event("signed_up", "e-1", at=now))),  # a duplicate
        sqs_record("m-5", "not json"),
    ]
    # WHEN one batch starts journeys in two workflows (one message fails)
    response = invoke("router", {"Records": records})
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-5"}]}
    # THEN each workflow counts the executions it started, as `entered` does
    assert per_workflow(metric_sets(capsys)) == {
        "welcome": Counter(WorkflowEntered=1),
        "webinar": Counter(WorkflowEntered=2),
    }
    assert stats.read("webinar").totals.entered == 2
    # AND the batch delivered again counts nothing
    invoke("router", {"Records": records})
    assert per_workflow(metric_sets(capsys)) == {}


# --- import ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("ada")
def test_an_import_batch_counts_the_journeys_it_started_once(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    machine: Importing = request.getfixturevalue("waiting_machine")
    import_id = post_csv(FILE, "onboarding").json["import_id"]
    [batch] = machine.batches(import_id)
    capsys.readouterr()
    # WHEN the batch is imported (Ada is in onboarding already), then run again
    assert invoke("import_contacts", batch)["journeys_started"] == 2
    assert invoke("import_contacts", batch)["duplicate"] is True
    # THEN Bob and Cy entered onboarding, counted once
    assert per_workflow(metric_sets(capsys)) == {"onboarding": Counter(WorkflowEntered=2)}


# --- feedback --------------------------------------------------------------------------------


def test_email_events_count_in_their_workflow_once(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    given: World = request.getfixturevalue("world")
    # GIVEN the cart reminder sent to Ada
    to_ada = send(given)
    at = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    notifications = [
        ses_record("Delivery", to_ada, **delivered()),
        ses_record("Open", to_ada, **opened(at)),
        ses_record("Open", to_ada, **opened(at)),  # opened again: not a second open
        ses_record("Click", to_ada, **clicked("https://shop.example.com/cart", at)),
        ses_record("Complaint", to_ada, **complained()),
    ]
    capsys.readouterr()
    # WHEN SES publishes them, and SNS delivers them all a second time
    invoke("feedback", sns_event(*notifications))
    first = per_workflow(metric_sets(capsys))
    invoke("feedback", sns_event(*notifications))
    # THEN the workflow counts each once, with the unsubscribe the complaint made
    assert first == {
        "cart-abandonment": Counter(Delivered=1, Opened=1, Clicked=1, Complained=1, Unsubscribed=1)
    }
    assert per_workflow(metric_sets(capsys)) == {}
    step = stats.read("cart-abandonment").steps["cart-email"]
    assert (step.delivered, step.opened, step.clicked, step.complained) == (1, 1, 1, 1)


@pytest.mark.usefixtures("world")
def test_events_of_messages_we_did_not_send_count_as_skipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    invoke("feedback", sns_event(ses_record("Delivery", "not-ours", **delivered())))
    [document] = metric_sets(capsys)
    assert document["FeedbackSkipped"] == [1.0]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
