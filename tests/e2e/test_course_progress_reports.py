"""Course progress reports on the local stack: a week after a course starts, while it is
active, the student and the parents on file get the week's progress by SMS and email; the
`repeat` step then continues the journey as a new execution (`<entry_id>-r<n>`, started by
the machine itself through `states:startExecution`) for the next week. Completing the
course exits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.test_welcome_series import execution_named, in_order, path_of, skip_wait
from tests.helpers.local import Journeys, channels

pytestmark = pytest.mark.e2e

STUDENT: dict[str, Any] = {
    "attributes": {
        "first_name": "Kai",
        "course_status": "active",
        "parent_name": "Mrs Lee",
        "parent_phone": "+447700900456",
        "parent_email": "parent@example.com",
    },
    "channels": {
        "email": {"address": "kai@example.com", "status": "subscribed"},
        "sms": {"address": "+447700900123", "status": "subscribed"},
    },
    "time_zone": "Europe/London",
}
REPORT = [
    "Check: Course still active?",
    "Course still active?",
    "Fetch weekly progress",
    "SMS report to student",
    "Email report to student",
    "Parent phone on file?",
]
REPEAT = ["Runs left? Repeat for next week", "Repeat for next week", "Done: Repeat for next week"]
#: An event id the execution name keeps readable: course-progress-reports_<contact>_c1.
STARTED = "c1"


def start_course(journeys: Journeys, **attributes: Any) -> tuple[str, dict[str, Any]]:
    kai = journeys.contact(
        "kai", **{**STUDENT, "attributes": {**STUDENT["attributes"], **attributes}}
    )
    journeys.event(kai, "course_started", event_id=STARTED, course_id="python-data")
    return kai, journeys.execution("course-progress-reports", kai)


def run(journeys: Journeys, contact_id: str, iteration: int) -> dict[str, Any]:
    """The contact's execution for the `iteration`-th round (0: the one the event started)."""
    entry = f"course-progress-reports_{contact_id}_{STARTED}"
    name = entry if iteration == 0 else f"{entry}-r{iteration}"
    return execution_named(journeys, "course-progress-reports", contact_id, name)


def execution_input(journeys: Journeys, execution: dict[str, Any]) -> dict[str, Any]:
    described = journeys.sfn.describe_execution(executionArn=execution["executionArn"])
    return dict(json.loads(described["input"]))


def test_the_weekly_report_reaches_student_and_parents_and_the_next_round_starts(
    journeys: Journeys,
) -> None:
    # GIVEN an active student with a parent's phone and email on file, starting a course
    kai, first = start_course(journeys)
    assert first["name"] == f"course-progress-reports_{kai}_{STARTED}"
    # WHEN a week passes
    skip_wait(journeys, first, "Wait 1 week")
    # THEN progress is fetched and four reports go out: SMS and email, student and parent
    sent = journeys.messages(kai, 4)
    assert journeys.finished(first)["status"] == "SUCCEEDED"
    assert in_order(
        path_of(journeys, first),
        "Wait 1 week",
        *REPORT,
        "SMS report to parent",
        "Parent email on file?",
        "Email report to parent",
        *REPEAT,
        "Journey completed",
    )
    assert [(m.channel, m.to) for m in sent] == [
        ("sms", "+447700900123"),
        ("email", "kai@example.com"),
        ("sms", "+447700900456"),
        ("email", "parent@example.com"),
    ]
    assert sent[0].body == (
        "Kai, this week in Python for data analysis: 58% done, next: Grouping and aggregation."
        " Keep going!"
    )
    assert sent[1].subject == "Your week in Python for data analysis"
    assert "Lessons: 7 of 12" in sent[1].body
    assert sent[2].body.startswith("Kai's week in Python for data analysis: 58% done")
    assert sent[3].subject == "Kai's weekly progress report"
    assert "Dear Mrs Lee" in sent[3].body
    [fetch] = journeys.calls(kai)
    assert (fetch.channel, fetch.to, fetch.status) == (
        "fetch",
        "POST https://learn.example.com/api/progress",
        "sent",
    )
    # AND the repeat started the next round: <entry_id>-r1, iteration 1, the same trigger
    second = run(journeys, kai, 1)
    handed_on = execution_input(journeys, second)
    assert handed_on["iteration"] == 1
    assert handed_on["entry_id"] == first["name"]
    assert handed_on["trigger"] == execution_input(journeys, first)["trigger"]
    assert handed_on["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == first["executionArn"]
    # WHEN another week passes, THEN round 2 reports again and starts round 3 (-r2)
    skip_wait(journeys, second, "Wait 1 week")
    assert [m.step_label for m in journeys.messages(kai, 8)[4:]] == [
        "SMS report to student",
        "Email report to student",
        "SMS report to parent",
        "Email report to parent",
    ]
    assert journeys.finished(second)["status"] == "SUCCEEDED"
    assert in_order(path_of(journeys, second), "Wait 1 week", *REPORT, *REPEAT)
    assert execution_input(journeys, run(journeys, kai, 2))["iteration"] == 2


def test_a_course_no_longer_active_gets_no_report_and_no_next_round(
    journeys: Journeys,
) -> None:
    # GIVEN a student whose course was paused during the first week
    kai, first = start_course(journeys, course_status="paused")
    # WHEN the week passes
    skip_wait(journeys, first, "Wait 1 week")
    # THEN the journey ends without fetching, sending or repeating
    assert journeys.finished(first)["status"] == "SUCCEEDED"
    path = path_of(journeys, first)
    assert in_order(path, "Wait 1 week", "Course still active?", "Course no longer active")
    assert "Fetch weekly progress" not in path and "Repeat for next week" not in path
    assert journeys.outbox(kai) == []
    assert [e["name"] for e in journeys.executions("course-progress-reports", kai)] == [
        first["name"]
    ]


def test_without_parents_only_the_student_is_told_and_completing_ends_the_next_round(
    journeys: Journeys,
) -> None:
    # GIVEN an active student without a parent's phone or email on file
    kai, first = start_course(journeys, parent_phone=None, parent_email=None)
    skip_wait(journeys, first, "Wait 1 week")
    # THEN only the student gets the report
    assert channels(journeys.messages(kai, 2)) == ["sms", "email"]
    assert journeys.finished(first)["status"] == "SUCCEEDED"
    path = path_of(journeys, first)
    assert in_order(path, *REPORT, "Parent email on file?", *REPEAT)
    assert "SMS report to parent" not in path and "Email report to parent" not in path
    # WHEN the student completes the course during the next round's week
    second = run(journeys, kai, 1)
    journeys.until(lambda: "Watch for: Course completed" in path_of(journeys, second))
    journeys.event(kai, "course_completed", course_id="python-data")
    # THEN the next round leaves at once: no report, no round after it
    assert journeys.finished(second)["status"] == "SUCCEEDED"
    assert path_of(journeys, second)[-1] == "Left the journey"
    assert "Fetch weekly progress" not in path_of(journeys, second)
    # (course_completed also starts course-recommendations: its congratulations are not ours)
    reports = [m for m in journeys.sent(kai) if m.workflow_id == "course-progress-reports"]
    assert len(reports) == 2
    assert len(journeys.executions("course-progress-reports", kai)) == 2
