"""The schedule Lambda on moto: waits computed in the contact's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from journeys import steps
from journeys.store import ContactRecord, load_contact
from tests.helpers.lambdas import invoke

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # a Friday


def request(**fields: Any) -> dict[str, Any]:
    return {
        "contact_id": "c-1",
        "workflow_id": "payments",
        "step_id": "s",
        "trigger": {
            "key": "event:webinar_registered",
            "properties": {"starts_at": "2026-12-03T18:00:00Z"},
        },
        **fields,
    }


@pytest.fixture
def contact(aws: dict[str, Any]) -> None:
    ContactRecord(
        "c-1", attributes={"due_date": "2026-12-01", "best_hour": 10}, time_zone="Europe/Paris"
    ).save()


def schedule(**fields: Any) -> dict[str, Any]:
    return steps.schedule(steps.ScheduleRequest.model_validate(request(**fields)), now=NOW)


def test_ten_days_before_the_due_date_at_nine_local(contact: None) -> None:
    until = schedule(action="date", attribute="due_date", offset_seconds=-10 * 86400, at="09:00")
    assert until == {"until": "2026-11-21T08:00:00Z"}  # 09:00 in Paris (UTC+1)


def test_an_hour_before_the_webinar_in_the_starting_event(contact: None) -> None:
    until = schedule(action="date", event_property="starts_at", offset_seconds=-3600)
    assert until == {"until": "2026-12-03T17:00:00Z"}


def test_next_sending_window_prefers_the_best_hour(contact: None) -> None:
    window = {
        "action": "window",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "18:00",
    }
    assert schedule(**window) == {"until": "2026-11-20T08:00:00Z"}  # Friday 09:00 Paris
    assert schedule(**window, best_time=True) == {"until": "2026-11-20T09:00:00Z"}  # 10:00


def test_a_past_date_continues_at_once(contact: None) -> None:
    until = schedule(action="date", attribute="due_date", offset_seconds=-60 * 86400)
    assert until == {"until": "2026-11-20T07:00:00Z"}


def test_shifting_the_due_date_by_a_calendar_month(contact: None) -> None:
    moved = schedule(
        action="shift_date", attribute="due_date", shift="1 month", shift_seconds=30 * 86400
    )
    assert moved == {"attribute": "due_date", "value": "2027-01-01"}
    assert load_contact("c-1").attributes["due_date"] == "2027-01-01"


def test_the_lambda_returns_the_wait_end(contact: None) -> None:
    result = invoke(
        "schedule", request(action="date", attribute="due_date", offset_seconds=0, at="09:00")
    )
    assert result == {"until": "2026-12-01T08:00:00Z"}
