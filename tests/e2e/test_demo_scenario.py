"""The demo scenario of `journeys up` on the local stack: the shipped `demo/scenario.yaml`
(a smaller, faster cast) moves contacts into the reference journeys, and its simulated
recipients' SES events reach the statistics through the real feedback path."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from journeys.local.demo import (
    DEFAULT_SCENARIO,
    DemoRunner,
    Mailbox,
    Scenario,
    load_scenario,
)
from tests.helpers.local import Journeys, named_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENGAGEMENT = ("delivered", "opened", "clicked")


def quick_cast(prefix: str) -> Scenario:
    """The shipped scenario with eight contacts arriving within seconds and recipients
    who always open and click, so one short run shows every effect."""
    shipped = load_scenario(ROOT / DEFAULT_SCENARIO)
    cast = shipped.cast.model_copy(
        update={
            "size": 8,
            "id_prefix": prefix,
            "seconds_between_arrivals": (0.2, 0.6),
            "cohorts": 1,
        }
    )
    recipients = shipped.recipients.model_copy(
        update={
            "bounce": 0.0,
            "complaint": 0.0,
            "delivered_after": (60.0, 300.0),
            "opened_after": (300.0, 1800.0),
            "clicked_after": (60.0, 300.0),
            "mailboxes": [Mailbox(kind="keen", share=1, open=1.0, click=1.0)],
        }
    )
    return shipped.model_copy(update={"cast": cast, "recipients": recipients})


def totals(journeys: Journeys) -> dict[str, int]:
    """Contacts entered and email engagement, summed over every workflow's statistics."""
    status, listed = journeys.request("GET", "/v1/workflows")
    assert status == 200, listed
    summed = dict.fromkeys(("entered", *ENGAGEMENT), 0)
    for workflow in listed["workflows"]:
        status, stats = journeys.request("GET", f"/v1/workflows/{workflow['id']}/stats")
        assert status == 200, stats
        summed["entered"] += stats["totals"]["entered"]
        for step in stats["steps"].values():
            for metric in ENGAGEMENT:
                summed[metric] += step.get(metric) or 0
    return summed


@pytest.fixture
def demo(journeys: Journeys) -> Iterator[tuple[DemoRunner, list[str]]]:
    """A runner of the quick cast (fresh contact ids) and the terminal lines it printed."""
    lines: list[str] = []
    prefix = f"demo-{uuid.uuid4().hex[:6]}-"
    runner = DemoRunner.for_stack(quick_cast(prefix), journeys.stack, progress=lines.append)
    yield runner, lines
    runner.stop()
    stop_cast(journeys, runner.cast)


def stop_cast(journeys: Journeys, cast: dict[str, Any]) -> None:
    """Stop the cast's journeys still running, so they do not run on into other tests."""
    assert journeys.stack.deployment is not None
    for arn in journeys.stack.deployment.state_machines.values():
        workflow_id = arn.rsplit(":", 1)[-1].removeprefix("journeys-local-")
        running = journeys.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")
        for execution in running["executions"]:
            if any(named_for(execution["name"], workflow_id, c) for c in cast):
                try:
                    journeys.sfn.stop_execution(executionArn=execution["executionArn"])
                except Exception:
                    continue


def test_the_demo_moves_its_cast_into_journeys_and_counts_their_engagement(
    journeys: Journeys, demo: tuple[DemoRunner, list[str]]
) -> None:
    # GIVEN the statistics before the demo (the stack is shared with other scenarios)
    runner, lines = demo
    before = totals(journeys)
    # WHEN the demo plays its cast for a few seconds
    runner.start()
    deadline = time.monotonic() + 40
    now = before
    while time.monotonic() < deadline:
        time.sleep(1)
        now = totals(journeys)
        if (
            runner.tally().get("arrivals") == 8
            and now["entered"] - before["entered"] >= 6
            and now["opened"] > before["opened"]
            and now["clicked"] > before["clicked"]
        ):
            break
    tally = runner.tally()
    # THEN every contact arrived, with one terminal line each
    assert tally.get("arrivals") == 8, tally
    assert len(lines) == 8 and all(" demo    " in line for line in lines), lines
    assert tally.get("failed", 0) == 0, tally
    # AND the contacts entered journeys (some stories only join a list: fewer than events)
    assert now["entered"] - before["entered"] >= 6, (before, now, tally)
    arrived = sorted(runner.cast)
    with_journeys = [
        contact_id
        for contact_id in arrived
        if journeys.request("GET", f"/v1/contacts/{contact_id}/journeys")[1]["journeys"]
    ]
    assert len(with_journeys) >= 6, with_journeys
    # AND the recipients' SES events were counted on the steps that sent the email
    assert tally.get("delivered", 0) >= 1 and tally.get("opened", 0) >= 1, tally
    assert now["delivered"] > before["delivered"], (before, now)
    assert now["opened"] > before["opened"], (before, now)
    assert now["clicked"] > before["clicked"], (before, now)
