"""The views the compiler writes for the marketer's view, and what insights make of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from journeys import insights, stats

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "state_machines"
VIEWS = sorted(MACHINES.glob("*.view.json"))


def state_names(states: dict[str, Any]) -> set[str]:
    names = set(states)
    for state in states.values():
        for branch in state.get("Branches", []):
            names |= state_names(branch["States"])
        if "ItemProcessor" in state:
            names |= state_names(state["ItemProcessor"]["States"])
    return names


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_there_is_a_view_beside_every_machine() -> None:
    machines = {p.name.removesuffix(".asl.json") for p in MACHINES.glob("*.asl.json")}
    assert {p.name.removesuffix(".view.json") for p in VIEWS} == machines


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.name)
def test_every_state_a_view_names_is_in_its_machine(path: Path) -> None:
    view = load(path)
    machine = load(MACHINES / path.name.replace(".view.json", ".asl.json"))
    names = state_names(machine["States"])
    for box in view["boxes"]:
        assert set(box["states"]) <= names, box["key"]
        assert box["counted_state"] is None or box["counted_state"] in box["states"]
        assert box["states"] or box["total"] or box["shape"] in ("missing",), box["key"]
        for entered in box.get("branches", {}):
            assert entered in names, (box["key"], entered)
        assert f"data-key={quoteattr(box['key'])}" in view["svg"]


# --- timelines -----------------------------------------------------------------------------

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def history(*entries: tuple[str, str] | tuple[str, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Events: ("entered"|"exited"|"sent"|"end", state name[, task output])."""
    events: list[dict[str, Any]] = []
    for n, (kind, name, *rest) in enumerate(entries, start=1):
        at = START + timedelta(minutes=n)
        if kind == "entered":
            detail = {"stateEnteredEventDetails": {"name": name}}
            type_ = "ParallelStateEntered" if name == "Cart abandonment" else "TaskStateEntered"
            events.append({"id": n, "type": type_, "timestamp": at, **detail})
        elif kind == "sent":
            output = json.dumps({"Payload": rest[0]})
            events.append(
                {
                    "id": n,
                    "type": "TaskSucceeded",
                    "timestamp": at,
                    "taskSucceededEventDetails": {"output": output},
                }
            )
        elif kind == "end":
            events.append({"id": n, "type": "ExecutionSucceeded", "timestamp": at})
    return events


def test_a_timeline_merges_a_steps_states_and_names_the_branch_taken() -> None:
    view = load(MACHINES / "cart-abandonment.view.json")
    events = history(
        ("entered", "Cart abandonment"),
        ("entered", "Watch for: Checked out"),
        ("entered", "Checked out within 2 h?"),
        ("entered", "Check: Cart still has items?"),
        ("entered", "Cart still has items?"),
        ("entered", "Fetch similar products"),
        ("entered", "Check: Reachable by push?"),
        ("entered", "Reachable by push?"),
        ("entered", "Push cart reminder"),
        ("sent", "", {"status": "skipped", "reason": "no_consent"}),
        ("entered", "Check: Reachable by email?"),
        ("entered", "Reachable by email?"),
        ("entered", "Reminded"),
        ("entered", "Journey completed"),
        ("end", ""),
    )
    steps = insights.timeline_steps(events, view)
    assert [(s.label, s.outcome) for s in steps] == [
        ("Checked out within 2 h?", "No"),
        ("Cart still has items?", "Yes"),
        ("Fetch similar products", None),
        ("Reachable by push?", "Yes"),
        ("Push cart reminder", "skipped: no consent"),
        ("Reachable by email?", "No"),
        ("Reminded", None),
        ("Journey completed", None),
    ]
    # A step lasts from its first state until the next step starts.
    decision = steps[1]
    assert decision.state == "Check: Cart still has items?"
    assert decision.entered_at == START + timedelta(minutes=4)
    assert decision.left_at == START + timedelta(minutes=6)
    assert steps[-1].kind == "ending" and steps[-1].left_at == START + timedelta(minutes=15)


def test_a_state_the_view_does_not_know_still_shows() -> None:
    view = load(MACHINES / "cart-abandonment.view.json")
    steps = insights.timeline_steps(history(("entered", "Renamed step")), view)
    assert [(s.label, s.kind, s.key) for s in steps] == [("Renamed step", "state", None)]


# --- funnels ---------------------------------------------------------------------------------


def test_a_box_counts_ended_and_running_executions_and_waits_in_any_of_its_states() -> None:
    view = load(MACHINES / "cart-abandonment.view.json")
    counts = stats.summarize(
        "cart-abandonment",
        {
            "entered": 5,
            "goal_reached": 1,
            "state:Push cart reminder:passed": 2,
            "step:cart-push:sent": 2,
            "step:cart-push:opened": 1,
        },
    )
    positions = stats.Positions(
        state_machine_arn="arn",
        waiting={"Hold: Push cart reminder": 1, "Checked out within 2 h?": 2},
        passed={"Push cart reminder": 1, "Checked out within 2 h?": 3},
        executions=3,
    )
    boxes = {box.key: box for box in insights.funnel(view, counts, positions)}
    assert (boxes["__start__"].passed, boxes["__start__"].waiting) == (5, 0)
    assert (boxes["cart-push"].passed, boxes["cart-push"].waiting) == (3, 1)
    assert (boxes["checked-out-within-2-h"].passed, boxes["checked-out-within-2-h"].waiting) == (
        3,
        2,
    )
    messages = boxes["cart-push"].messages
    assert messages is not None and (messages.sent, messages.open_rate) == (2, 0.5)
    assert boxes["cart-email"].messages is not None and boxes["cart-email"].messages.sent == 0
    assert boxes["fetch-similar-products"].messages is None
    assert [box.key for box in insights.funnel(view, counts, None)] == [
        box["key"] for box in view["boxes"]
    ]
