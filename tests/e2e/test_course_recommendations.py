"""Course recommendations on the local stack: completing a course fetches its details and
the next picks, congratulates at once, asks for feedback two days later, and, unless the
graduate browses courses within 5 days, recommends the picks by push (or email without a
push token). Enrolling in another course is the goal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.test_welcome_series import in_order, path_of, skip_wait
from tests.helpers.local import Journeys, channels

pytestmark = pytest.mark.e2e

GRADUATE: dict[str, Any] = {
    "attributes": {"first_name": "Ivy"},
    "channels": {"email": {"address": "ivy@example.com", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
PUSH = {"push": {"address": "ivy-phone-token", "status": "subscribed"}}
#: The earliest sending hour: the timeout path runs at a day a second, so start early.
TUESDAY_EIGHT = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
COMPLETED = {"course_id": "python-data", "course_name": "Python for data analysis"}
FETCHES = [
    ("Fetch course details", "POST https://learn.example.com/api/course-details"),
    ("Fetch course recommendations", "POST https://recommendations.example.com/courses/next"),
]


def graduate(journeys: Journeys, name: str, **contact: Any) -> tuple[str, dict[str, Any]]:
    ivy = journeys.contact(name, **contact)
    journeys.event(ivy, "course_completed", **COMPLETED)
    return ivy, journeys.execution("course-recommendations", ivy)


def test_graduates_who_do_not_browse_get_the_picks_by_push_or_else_by_email(
    journeys: Journeys,
) -> None:
    # GIVEN two graduates of the same course on a Tuesday at 08:00, one with a push token
    journeys.at(TUESDAY_EIGHT)
    ivy, ivy_run = graduate(
        journeys, "ivy", **{**GRADUATE, "channels": {**GRADUATE["channels"], **PUSH}}
    )
    max_, max_run = graduate(journeys, "max", **{**GRADUATE, "attributes": {"first_name": "Max"}})
    journeys.messages(ivy, 1)
    journeys.messages(max_, 1)
    # WHEN neither browses courses within 5 days (two days of journey time a second from
    # the 2-day wait on, so the 5-day timeout lasts 2.5 real seconds)
    journeys.until(lambda: "Wait 2 days" in path_of(journeys, max_run))
    journeys.speed(2 * 86400)
    skip_wait(journeys, ivy_run, "Wait 2 days")
    for run in (ivy_run, max_run):
        skip_wait(journeys, run, "Track enrolment for 2 days")
    # THEN after the feedback email, Ivy gets the picks by push, Max by email
    for contact_id, run, nudge in ((ivy, ivy_run, "Push"), (max_, max_run, "Email")):
        assert journeys.finished(run, timeout=30)["status"] == "SUCCEEDED"
        path = path_of(journeys, run)
        assert in_order(
            path,
            *(label for label, _ in FETCHES),
            "Congratulation email",
            "Wait 2 days",
            "Feedback email",
            "Browsed courses within 5 days?",
            "Reachable by push?",
            f"{nudge} next-course picks",
            "Track enrolment for 2 days",
            "No new enrolment",
        )
        assert [(c.step_label, c.to, c.status) for c in journeys.calls(contact_id)] == [
            (label, to, "sent") for label, to in FETCHES
        ]
    congratulations, feedback, push = journeys.sent(ivy)
    assert congratulations.subject == "Congratulations, Ivy! You completed Python for data analysis"
    assert "https://learn.example.com/certificates/python-data" in congratulations.body
    assert "Data visualisation with Python: https://learn.example.com/c/dataviz" in (
        congratulations.body
    )
    assert feedback.subject == "How was Python for data analysis? One quick question"
    assert "course=python-data" in feedback.body
    assert push.channel == "push" and push.step_label == "Push next-course picks"
    assert "Graduates of your course loved Data visualisation with Python" in push.body
    sent = journeys.sent(max_)
    assert channels(sent) == ["email", "email", "email"]
    assert sent[2].step_label == "Email next-course picks"
    assert sent[2].subject == "Max, your next course is waiting"
    assert "SQL for analysts: https://learn.example.com/c/sql" in sent[2].body


def test_a_graduate_who_browses_courses_gets_no_nudge(journeys: Journeys) -> None:
    # GIVEN a graduate with a push token who got the feedback email
    ivy, run = graduate(
        journeys, "ivy", **{**GRADUATE, "channels": {**GRADUATE["channels"], **PUSH}}
    )
    journeys.messages(ivy, 1)
    skip_wait(journeys, run, "Wait 2 days")
    journeys.messages(ivy, 2)
    journeys.until(lambda: "Browsed courses within 5 days?" in path_of(journeys, run))
    # WHEN she browses a page about courses
    journeys.event(ivy, "page_viewed", url="https://learn.example.com/courses/sql")
    journeys.until(lambda: "Track enrolment for 2 days" in path_of(journeys, run))
    skip_wait(journeys, run, "Track enrolment for 2 days")
    # THEN no push and no email nudge: only the congratulations and the feedback request
    assert journeys.finished(run)["status"] == "SUCCEEDED"
    path = path_of(journeys, run)
    assert in_order(
        path,
        "Feedback email",
        "Browsed courses within 5 days?",
        "Track enrolment for 2 days",
        "No new enrolment",
    )
    assert "Reachable by push?" not in path
    assert [m.step_label for m in journeys.sent(ivy)] == ["Congratulation email", "Feedback email"]


def test_enrolling_in_another_course_ends_the_journey(journeys: Journeys) -> None:
    # GIVEN a graduate who got the congratulations
    ivy, run = graduate(journeys, "ivy", **GRADUATE)
    journeys.messages(ivy, 1)
    journeys.until(lambda: "Wait 2 days" in path_of(journeys, run))
    # WHEN she enrols in one of the picks
    journeys.event(ivy, "course_enrolled", course_id="dataviz")
    # THEN the goal is reached: no feedback request, no nudge
    assert journeys.finished(run)["status"] == "SUCCEEDED"
    path = path_of(journeys, run)
    assert path[-1] == "Goal reached"
    assert "Feedback email" not in path
    assert [m.step_label for m in journeys.sent(ivy)] == ["Congratulation email"]


@pytest.mark.xfail(
    strict=True,
    reason="journeys/local/outbox.py `_from_connector` records the step's body template "
    '({"course_id": "{{ event.course_id }}", ...}), not the body the connector rendered '
    "and sent, so the outbox cannot show what a webhook or fetch really posted",
)
def test_the_outbox_shows_the_body_each_fetch_posted(journeys: Journeys) -> None:
    ivy, _ = graduate(journeys, "ivy", **GRADUATE)
    journeys.until(lambda: len(journeys.calls(ivy)) == 2)
    details, _ = journeys.calls(ivy)
    assert json.loads(details.body) == {"course_id": "python-data", "contact_id": ivy}
