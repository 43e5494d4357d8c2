"""The marketer's view on the local stack: a workflow's funnel over its graph, where contacts
wait now, and one contact's timeline, read through the statistics API."""

from __future__ import annotations

from typing import Any

import pytest

from journeys import insights
from tests.helpers.local import Journeys

pytestmark = pytest.mark.e2e

WORKFLOW = "cart-abandonment"
SHOPPER = {
    "attributes": {"first_name": "Ana", "cart_items": 2},
    "channels": {
        "email": {"address": "ana@example.com", "status": "subscribed"},
        "push": {"address": "ana-phone-token", "status": "subscribed"},
    },
    "time_zone": "Europe/London",
}


def report(journeys: Journeys) -> dict[str, Any]:
    status, body = journeys.request("GET", f"/v1/workflows/{WORKFLOW}/stats")
    assert status == 200, body
    return dict(body)


def funnel(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {box["key"]: box for box in body["funnel"]}


def test_a_finished_journey_moves_the_funnel_and_its_timeline_tells_each_decision(
    journeys: Journeys,
) -> None:
    # GIVEN the cart-abandonment funnel as it stands (the session's other scenarios add to it)
    journeys.at()
    before = funnel(report(journeys))
    # WHEN a shopper with a push token abandons her cart and the journey ends
    ana = journeys.contact("ana", **SHOPPER)
    journeys.event(ana, "added_to_cart", cart_items=2)
    journeys.finished(journeys.execution(WORKFLOW, ana), timeout=40)
    # THEN once the end is counted, every box she passed counts one more ...
    passed = ["__start__", "checked-out-within-2-h", "cart-push", "cart-email", "reminded"]

    def counted() -> dict[str, dict[str, Any]] | None:
        now = funnel(report(journeys))
        moved = all(now[key]["passed"] >= before[key]["passed"] + 1 for key in passed)
        return now if moved else None

    after = journeys.until(counted, 30, "the funnel to count the ended journey")
    assert after["bought"]["passed"] == before["bought"]["passed"]
    # ... and the send steps count the messages
    assert after["cart-push"]["messages"]["sent"] == before["cart-push"]["messages"]["sent"] + 1
    assert after["cart-email"]["shape"] == "send"
    assert after["reachable-by-email"]["messages"] is None
    # AND her timeline lists the steps in order with the branch each decision took
    status, timeline = journeys.request("GET", f"/v1/contacts/{ana}/timeline")
    assert status == 200, timeline
    [journey] = timeline["journeys"]
    assert (journey["workflow_id"], journey["status"]) == (WORKFLOW, "completed")
    steps = [(step["label"], step["outcome"]) for step in journey["steps"]]
    assert steps == [
        ("Checked out within 2 h?", "No"),
        ("Cart still has items?", "Yes"),
        ("Fetch similar products", None),
        ("Reachable by push?", "Yes"),
        ("Push cart reminder", "sent"),
        ("Reachable by email?", "Yes"),
        ("Email cart reminder", "sent"),
        ("Reminded", None),
        ("Journey completed", None),
    ]
    times = [step["entered_at"] for step in journey["steps"]]
    assert times == sorted(times)
    assert journey["console_url"] is None  # the local stack's executions are not in AWS
    assert insights.console_url(journey["execution_arn"]).startswith(
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/"
    )


def test_a_contact_waiting_shows_where_she_waits(journeys: Journeys) -> None:
    # GIVEN a shopper who just abandoned her cart, journey time nearly still
    journeys.at(speed=1)
    ben = journeys.contact("ben", **SHOPPER)
    journeys.event(ben, "added_to_cart", cart_items=1)
    execution = journeys.execution(WORKFLOW, ben)
    journeys.until(lambda: "Checked out within 2 h?" in journeys.path(execution), 20)
    # WHEN the marketer looks at the workflow
    body = report(journeys)
    # THEN she is one of the contacts waiting at the two-hour wait
    here = [c for c in body["positions"]["contacts"] if c["contact_id"] == ben]
    assert [(c["step"], c["state"]) for c in here] == [
        ("checked-out-within-2-h", "Checked out within 2 h?")
    ]
    assert funnel(body)["checked-out-within-2-h"]["waiting"] >= 1
    # AND her timeline shows the journey running at that step
    _, timeline = journeys.request("GET", f"/v1/contacts/{ben}/timeline")
    [journey] = timeline["journeys"]
    assert journey["status"] == "running"
    assert [step["label"] for step in journey["steps"]] == ["Checked out within 2 h?"]
    assert journey["steps"][0]["left_at"] is None
    journeys.stop_all()


def test_every_workflow_has_totals_and_a_graph_with_a_box_per_funnel_entry(
    journeys: Journeys,
) -> None:
    status, overview = journeys.request("GET", "/v1/stats")
    assert status == 200
    ids = [w["workflow_id"] for w in overview["workflows"]]
    assert ids == sorted(ids) and WORKFLOW in ids and len(ids) == 20
    status, graph = journeys.request("GET", f"/v1/workflows/{WORKFLOW}/graph")
    assert status == 200
    for box in report(journeys)["funnel"]:
        assert f'data-key="{box["key"]}"' in graph["svg"]
    assert journeys.request("GET", "/v1/workflows/nope/graph")[0] == 404
    assert journeys.request("GET", "/v1/contacts/nobody-at-all/timeline")[0] == 404
