"""Workflow statistics on moto: counters, the send hook, the stats Lambda and the API."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from journeys import stats, steps
from journeys.exceptions import GOAL_REACHED
from journeys.settings import get_settings
from journeys.store import ContactRecord
from tests.functional.conftest import ROOT, SENDER
from tests.functional.test_api import api_event
from tests.helpers.aws import REGION
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
