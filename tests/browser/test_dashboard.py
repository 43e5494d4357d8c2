"""The dashboard in headless Chromium, after the scripted scenario (tests/browser/scenario.py)
on the local stack: the workflows list, a workflow's graph with its counts, a contact's
timeline reached by clicking, the outbox, and the refresh while journeys move.

The pictures of the README (docs/screenshots/) are taken here, from the same pages.
The last test moves a journey on: it stays last in this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from journeys.local.stack import LocalStack
from tests.browser import scenario
from tests.browser.page import Dashboard, normal
from tests.browser.scenario import (
    EXPECTED_CONVERSION,
    EXPECTED_FUNNEL,
    EXPECTED_MESSAGES,
    EXPECTED_OTHERS,
    EXPECTED_TOTALS,
    WELCOME,
    Story,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_ROW = 'table[data-testid=workflows] tr[data-workflow="{}"]'
BADGE = '[data-testid=graph] svg [data-testid=step-count][data-key="{}"]'
JOURNEY = 'section[data-testid=journey][data-workflow="{}"]'
STEP = 'li[data-testid=timeline-step][data-state="{}"]'


def view(workflow_id: str) -> dict[str, Any]:
    """The compiled view of the workflow: its boxes, as the graph draws them."""
    path = ROOT / "state_machines" / f"{workflow_id}.view.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def deployed_workflows() -> list[str]:
    index = json.loads((ROOT / "state_machines" / "index.json").read_text(encoding="utf-8"))
    return sorted(index["workflows"])


def contact_ids(page: Dashboard, css: str) -> list[str]:
    return sorted(a.get_attribute("data-contact") or "" for a in page.all(css))


def steps_of(page: Dashboard, workflow_id: str) -> list[str]:
    journey = page.find(JOURNEY.format(workflow_id))
    return [
        li.get_attribute("data-state") or ""
        for li in page.all("li[data-testid=timeline-step]", journey)
    ]


# --- the workflows list ---------------------------------------------------------------------


def test_the_workflows_list_shows_every_workflow_with_its_totals(
    dashboard: Dashboard, story: Story
) -> None:
    # GIVEN the scenario's journeys (six subscribers, one shopper, one scored click)
    # WHEN the marketer opens the dashboard
    # THEN the welcome series shows who entered, is still in it, finished and converted
    row = WORKFLOW_ROW.format(WELCOME)
    for metric in ("entered", "active", "completed", "goal_reached"):
        dashboard.text_of(f"{row} td[data-metric={metric}]", str(EXPECTED_TOTALS[metric]))
    dashboard.text_of(f"{row} td[data-metric=conversion_rate]", EXPECTED_CONVERSION)
    # AND so do the other workflows the scenario touched
    for workflow_id, counts in EXPECTED_OTHERS.items():
        other = WORKFLOW_ROW.format(workflow_id)
        metrics = ("entered", "active", "completed", "goal_reached")
        for metric, value in zip(metrics, counts, strict=True):
            dashboard.text_of(f"{other} td[data-metric={metric}]", str(value))
    # AND every deployed workflow has its row, the untouched ones at zero
    rows = dashboard.all("table[data-testid=workflows] tr[data-workflow]")
    assert sorted(r.get_attribute("data-workflow") or "" for r in rows) == deployed_workflows()
    dashboard.text_of(f"{WORKFLOW_ROW.format('lead-nurture')} td[data-metric=entered]", "0")
    # AND the last refresh is dated in journey time (the scenario's Monday), not this
    # computer's
    updated = normal(dashboard.find("[data-testid=updated]").text)
    assert updated.startswith("Updated 7 Dec 2026, 08:00:0"), updated
    assert dashboard.js_errors() == []
    dashboard.screenshot("workflows")


# --- one workflow's graph -------------------------------------------------------------------


def test_a_workflow_graph_shows_its_steps_with_who_passed_and_who_waits(
    dashboard: Dashboard, story: Story
) -> None:
    # GIVEN the workflows list
    # WHEN the marketer clicks the welcome series
    dashboard.click(f"{WORKFLOW_ROW.format(WELCOME)} a[href='#/workflows/{WELCOME}']")
    dashboard.wait(
        lambda d: d.current_url.endswith(f"#/workflows/{WELCOME}"), "the welcome series' route"
    )
    # THEN the graph draws every step with its label
    dashboard.find("[data-testid=graph] svg g.node")
    boxes = view(WELCOME)["boxes"]
    expected_labels = {box["key"]: normal(box["label"]) for box in boxes}
    labels = dashboard.wait(
        lambda d: (found := dashboard.node_labels()) and len(found) == len(boxes) and found,
        "the welcome series' graph",
    )
    assert labels == expected_labels
    assert labels["opened-any-welcome-email"] == "Opened any welcome email?"
    # AND next to every step the contacts that passed it and wait there now
    for box in boxes:
        passed, waiting = EXPECTED_FUNNEL.get(box["key"], (0, 0))
        dashboard.attributes_of(
            BADGE.format(box["key"]), {"data-passed": str(passed), "data-waiting": str(waiting)}
        )
    badge = normal(dashboard.find(BADGE.format("wait-2-days-after-welcome-1")).text)
    assert "6 passed" in badge and "2 waiting" in badge, badge
    # AND the totals, the message metrics of every email, and who is in the journey now
    totals = "[data-testid=totals] [data-metric={}]"
    for metric in ("entered", "active", "completed", "goal_reached", "exited"):
        dashboard.text_of(totals.format(metric), str(EXPECTED_TOTALS[metric]))
    dashboard.text_of(totals.format("conversion_rate"), EXPECTED_CONVERSION)
    for step, metrics in EXPECTED_MESSAGES.items():
        for metric, value in metrics.items():
            dashboard.text_of(
                f'table[data-testid=steps] tr[data-step="{step}"] td[data-metric={metric}]', value
            )
    here = "[data-testid=contacts-here] a[data-contact]"
    expected_here = sorted([story.shopper, story.later, story.newest])
    dashboard.wait(
        lambda d: contact_ids(dashboard, here) == expected_here,
        f"the contacts in the journey {expected_here}",
    )
    assert dashboard.js_errors() == []
    dashboard.screenshot("workflow")


def test_a_contact_in_the_graph_links_to_every_journey_of_that_contact(
    dashboard: Dashboard, story: Story
) -> None:
    # GIVEN the welcome series' graph
    dashboard.go(f"#/workflows/{WELCOME}")
    # WHEN the marketer clicks ben, one of the contacts waiting in it
    dashboard.click(f'[data-testid=contacts-here] a[data-contact="{story.shopper}"]')
    dashboard.wait(lambda d: d.current_url.endswith(f"#/contacts/{story.shopper}"), "ben's route")
    # THEN his timeline shows his three journeys, the newest first
    dashboard.find("[data-testid=timeline]")
    expected = [scenario.CART, scenario.SCORING, WELCOME]
    dashboard.wait(
        lambda d: (
            [
                s.get_attribute("data-workflow")
                for s in dashboard.all("[data-testid=timeline] section[data-testid=journey]")
            ]
            == expected
        ),
        f"ben's journeys {expected}",
    )
    # AND the welcome series step by step, up to the wait he is in
    assert steps_of(dashboard, WELCOME) == [
        "Welcome 1: thanks for joining",
        "Wait 2 days after welcome 1",
        "Schedule: Sending hours before welcome 2",
        "Welcome 2: our best resources",
        "Wait 3 days after welcome 2",
    ]
    welcome_2 = dashboard.find(STEP.format("Welcome 2: our best resources"))
    assert "sent" in normal(welcome_2.text), welcome_2.text
    # AND the scoring journey with the branch his click took
    scoring = dashboard.find(JOURNEY.format(scenario.SCORING))
    which = dashboard.find(STEP.format("Check: Which action?"), scoring)
    assert "Positive action" in normal(which.text), which.text
    assert dashboard.js_errors() == []


# --- the outbox and a contact's timeline ------------------------------------------------------


def test_the_outbox_links_each_message_to_its_contacts_timeline(
    dashboard: Dashboard, story: Story
) -> None:
    # GIVEN the scenario's nine welcome emails
    # WHEN the marketer opens the outbox
    dashboard.click("[data-testid=nav-outbox]")
    rows = "table[data-testid=outbox] tr[data-seq]"
    dashboard.wait(lambda d: len(dashboard.all(rows)) == 9, "nine messages in the outbox")
    assert dashboard.js_errors() == []
    dashboard.screenshot("outbox")
    # AND clicks cara, who never opened one
    dashboard.click(f"{rows} a[href='#/contacts/{story.unopened}']")
    # THEN her timeline shows the eleven days of the welcome series, in order
    dashboard.wait(lambda d: d.current_url.endswith(f"#/contacts/{story.unopened}"), "cara's route")
    dashboard.wait(
        lambda d: steps_of(dashboard, WELCOME)[-1:] == ["Journey completed"],
        "the end of cara's welcome series",
    )
    assert steps_of(dashboard, WELCOME) == [
        "Welcome 1: thanks for joining",
        "Wait 2 days after welcome 1",
        "Schedule: Sending hours before welcome 2",
        "Welcome 2: our best resources",
        "Wait 3 days after welcome 2",
        "Schedule: Sending hours before welcome 3",
        "Welcome 3: choose your topics",
        "Wait 5 days after welcome 3",
        "Check: Opened any welcome email?",
        "Tag: welcome series unopened",
        "Never opened - no offer",
        "Journey completed",
    ]
    # AND the decision taken, and what each email step did
    decision = dashboard.find(STEP.format("Check: Opened any welcome email?"))
    assert "No" in normal(decision.text).split(), decision.text
    for email in ("Welcome 1: thanks for joining", "Welcome 3: choose your topics"):
        assert "sent" in normal(dashboard.find(STEP.format(email)).text)
    assert dashboard.js_errors() == []
    dashboard.screenshot("contact")


def test_the_contact_search_finds_a_contact_who_left(dashboard: Dashboard, story: Story) -> None:
    # WHEN the marketer looks up dan, who unsubscribed from welcome 1
    search = dashboard.find("[data-testid=contact-search]")
    field = search.find_element(By.CSS_SELECTOR, "input")
    field.clear()
    field.send_keys(story.unsubscribed)
    search.find_element(By.CSS_SELECTOR, "[type=submit]").click()
    # THEN his timeline ends where he left the journey
    dashboard.wait(
        lambda d: d.current_url.endswith(f"#/contacts/{story.unsubscribed}"), "dan's route"
    )
    dashboard.wait(
        lambda d: (
            steps_of(dashboard, WELCOME)
            == [
                "Welcome 1: thanks for joining",
                "Wait 2 days after welcome 1",
                "Unsubscribed",
                "Left the journey",
            ]
        ),
        "dan's welcome series up to leaving it",
    )
    # AND the Workflows link leads back to the list
    dashboard.click("[data-testid=nav-workflows]")
    dashboard.find(WORKFLOW_ROW.format(WELCOME))
    assert dashboard.js_errors() == []


# --- refreshing while journeys run (moves the scenario on: keep it last) ---------------------


def test_the_graph_follows_a_journey_as_it_moves_without_a_reload(
    dashboard: Dashboard, story: Story, local_stack: LocalStack
) -> None:
    # GIVEN the welcome series' graph, with eve and fiona waiting 2 days after welcome 1
    dashboard.go(f"#/workflows/{WELCOME}")
    wait_1 = BADGE.format("wait-2-days-after-welcome-1")
    dashboard.attributes_of(wait_1, {"data-passed": "6", "data-waiting": "2"})
    dashboard.driver.execute_script("window.__not_reloaded = true")
    # WHEN she makes her first purchase (the welcome series' goal)
    journeys = scenario.NamedJourneys(local_stack)
    journeys.event(story.newest, "order_completed", event_id="fiona-first-order", total=30)
    journeys.finished(scenario.execution(journeys, WELCOME, story.newest))
    # THEN the page, left alone, shows her gone from the wait and the goal reached twice
    dashboard.attributes_of(wait_1, {"data-passed": "6", "data-waiting": "1"})
    dashboard.text_of("[data-testid=totals] [data-metric=goal_reached]", "2")
    dashboard.text_of("[data-testid=totals] [data-metric=conversion_rate]", "33.3 %")
    assert dashboard.driver.execute_script("return window.__not_reloaded") is True
    assert dashboard.js_errors() == []
