"""Engagement scoring on the local stack: +10 for positive actions, -10 for negative ones,
-50 each time the contact enters the d-30, d-60 or d-90 inactivity segment.

Inactivity is reached without moving journey time by weeks (which would make the
stack's hourly sweep schedule catch up hour by hour, for every contact of the session):
the contact's last activity is an event reported with an `occurred_at` in the past,
as an app sending its history does. The router then counts inactivity from it, and the
sweep, invoked as its EventBridge schedule invokes it, notices the moment a threshold is
crossed. Scenarios stand before the harness's workday morning (2026-11-24).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.helpers.local import Journeys, contact_record, runs, sweep, trigger

pytestmark = pytest.mark.e2e

#: Tuesday 10 November 2026, 10:00 in London.
MORNING = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
WORKFLOW = "engagement-scoring"


def past_event(journeys: Journeys, contact_id: str, name: str, ago: timedelta) -> None:
    """An event that happened `ago` before now (journey time), reported now."""
    occurred = journeys.stack.clock.now() - ago
    body = {
        "event_id": f"{contact_id}-{name}-{uuid.uuid4().hex[:8]}",
        "contact_id": contact_id,
        "name": name,
        "occurred_at": occurred.isoformat(),
        "properties": {},
    }
    status, answer = journeys.request("POST", "/v1/events", body)
    assert status == 202, answer


def finished_runs(journeys: Journeys, contact_id: str, count: int) -> list[dict[str, Any]]:
    """Wait for `count` finished executions of engagement-scoring; return them."""

    def done() -> list[dict[str, Any]]:
        found = [e for e in runs(journeys, WORKFLOW, contact_id) if e["status"] != "RUNNING"]
        return found if len(found) >= count else []

    return list(journeys.until(done, 20, f"{contact_id} was not scored {count} times"))


def scored(journeys: Journeys, execution: dict[str, Any]) -> list[str]:
    """The labels after the split: the change, then the end."""
    path = journeys.path(execution)
    return path[path.index("Which action?") + 1 :]


def test_each_positive_action_adds_ten_and_each_negative_one_takes_ten(
    journeys: Journeys,
) -> None:
    # GIVEN a contact with a score of 5
    journeys.at(MORNING, speed=3600)
    eve = journeys.contact("eve", attributes={"first_name": "Eve", "score": 5})
    # WHEN she submits a form, clicks an email and a push, then dismisses a push and an
    # in-app message, all within a moment (every action enters again: re_entry always)
    for name in ("form_submitted", "email_clicked", "push_clicked"):
        journeys.event(eve, name)
    for name in ("push_dismissed", "in_app_dismissed"):
        journeys.event(eve, name)
    # THEN five journeys score them, one change each, and none is lost to another
    executions = finished_runs(journeys, eve, 5)
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * 5
    positive = ["Score +10 for a positive action", "Scored positive action"]
    negative = ["Score -10 for a negative action", "Scored negative action"]
    assert sorted(scored(journeys, e) for e in executions) == [positive] * 3 + [negative] * 2
    assert contact_record(journeys, eve)["attributes"]["score"] == 15
    # AND nothing was sent: scoring is silent
    assert journeys.sent(eve) == []


def test_going_quiet_takes_fifty_points_at_30_days_and_fifty_more_at_60_days(
    journeys: Journeys,
) -> None:
    # GIVEN a contact with a score of 40 whose last activity was 60 days ago less an hour
    # (journey time runs at a minute a second: routing cannot take the hour)
    journeys.at(MORNING, speed=60)
    ivo = journeys.contact("ivo", attributes={"first_name": "Ivo", "score": 40})
    past_event(journeys, ivo, "page_viewed", timedelta(days=60, hours=-1))
    # THEN the router, counting inactivity from that activity, puts him in d-30 at once,
    # and the journey takes 50 points
    first = finished_runs(journeys, ivo, 1)[0]
    assert scored(journeys, first) == ["Score -50 for inactivity", "Scored inactivity"]
    record = contact_record(journeys, ivo)
    assert set(record["segments"]) == {"d-30"}
    assert record["attributes"]["score"] == -10
    # WHEN the hour passes (the 60th day of quiet is reached) and the hourly sweep runs
    journeys.stack.clock.advance(3660)
    sweep(journeys)
    # THEN he enters d-60 and loses 50 more
    second = finished_runs(journeys, ivo, 2)[1]
    assert scored(journeys, second) == ["Score -50 for inactivity", "Scored inactivity"]
    assert trigger(journeys, second)["event_id"].startswith(f"seg-sweep:{ivo}:")
    record = contact_record(journeys, ivo)
    assert set(record["segments"]) == {"d-30", "d-60"}
    assert record["attributes"]["score"] == -60
    assert journeys.sent(ivo) == []


@pytest.mark.xfail(
    strict=True,
    reason="The router enters a workflow at most once per message (router.py, 'What "
    "routing does' 4), so one contact_changed announcing d-30, d-60 and d-90 together "
    "starts one scoring journey: -50 instead of -50 per segment entered.",
)
def test_entering_three_inactivity_segments_at_once_takes_fifty_for_each(
    journeys: Journeys,
) -> None:
    # GIVEN a contact with a score of 0 whose last activity, reported now, was 95 days ago
    journeys.at(MORNING, speed=60)
    olaf = journeys.contact("olaf", attributes={"first_name": "Olaf", "score": 0})
    past_event(journeys, olaf, "page_viewed", timedelta(days=95))
    # THEN he enters d-30, d-60 and d-90 together
    journeys.until(
        lambda: set(contact_record(journeys, olaf)["segments"]) == {"d-30", "d-60", "d-90"},
        10,
        "the inactivity segments were not entered",
    )
    # AND loses 50 points for each, as a contact who crossed them one by one does
    finished_runs(journeys, olaf, 1)
    journeys.until(
        lambda: contact_record(journeys, olaf)["attributes"]["score"] == -150,
        4,
        f"score {contact_record(journeys, olaf)['attributes']['score']}, not -150",
    )
