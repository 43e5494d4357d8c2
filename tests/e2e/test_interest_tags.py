"""Apply interest tags on the local stack: a blog reader scores +2 and is tagged, added to
the ad audience and moved on (lead-nurture, or a newsletter) by the topic they read; hot
leads are flagged to sales once."""

from __future__ import annotations

from typing import Any

import pytest

from journeys.local.outbox import OutboxEntry
from tests.helpers.local import Journeys, stored

pytestmark = pytest.mark.e2e

WORKFLOW = "interest-tags"
BLOG = "https://www.example.com/blog"
READER: dict[str, Any] = {
    "attributes": {"first_name": "Ana", "last_name": "Silva", "company": "Acme", "score": 10},
    "channels": {"email": {"address": "ana@example.com", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
HOT_LEAD: dict[str, Any] = {**READER, "attributes": {**READER["attributes"], "score": 49}}
DAY = 86400


# --- helpers this file needs (see the report: candidates for tests/helpers/local.py) ------


def in_order(entered: list[str], *labels: str) -> bool:
    """Whether `labels` were entered in this order (other states may come between)."""
    remaining = iter(entered)
    return all(label in remaining for label in labels)


def path(journeys: Journeys, execution: dict[str, Any]) -> list[str]:
    """The states entered, as the marketer labelled them. moto 5.2.5 keeps the JSON escape
    of a double quote in the state names of the history (`Subscribe to \\"Live chat
    tips\\"`); AWS does not."""
    return [label.replace('\\"', '"') for label in journeys.path(execution)]


def from_workflow(journeys: Journeys, contact_id: str) -> list[OutboxEntry]:
    """What this workflow sent or called for the contact (lead-nurture has its own)."""
    return [m for m in journeys.outbox(contact_id) if m.workflow_id == WORKFLOW]


def read(journeys: Journeys, contact_id: str, url: str) -> dict[str, Any]:
    """The contact reads `url`; the interest-tags journey it starts, once it finished."""
    before = {e["executionArn"] for e in journeys.executions(WORKFLOW, contact_id)}
    journeys.event(contact_id, "page_viewed", url=url)
    execution = journeys.until(
        lambda: next(
            (
                e
                for e in journeys.executions(WORKFLOW, contact_id)
                if e["executionArn"] not in before
            ),
            None,
        ),
        20,
        f"{contact_id} reading {url} never entered {WORKFLOW}",
    )
    return dict(journeys.finished(execution))


# --- scenarios ------------------------------------------------------------------------------


def test_an_email_marketing_reader_is_tagged_and_moved_to_lead_nurture(
    journeys: Journeys,
) -> None:
    # GIVEN a reader with a modest score
    ana = journeys.contact("ana", **READER)
    # WHEN she reads an email-marketing article
    execution = read(journeys, ana, f"{BLOG}/email-marketing/subject-lines")
    # THEN she scores +2, is tagged, added to the Facebook audience and nurtured
    entered = path(journeys, execution)
    assert in_order(
        entered,
        "Score +2: read a blog article",
        "Which topic did they read?",
        "Tag: interest email marketing",
        'Add to audience "Email marketing interest"',
        "Move to the lead nurture workflow",
        "Hot lead not yet flagged to sales?",
        "Interest tagged",
        "Journey completed",
    )
    assert "Tag: interest live chat" not in entered
    assert "Ask sales for personal outreach" not in entered
    assert journeys.until(lambda: journeys.executions("lead-nurture", ana), 20)
    contact = stored(journeys, ana)
    assert "interest-email-marketing" in contact["tags"]
    assert contact["attributes"]["score"] == 12
    [audience] = [m for m in from_workflow(journeys, ana) if m.channel == "audience"]
    assert (audience.subject, audience.step_label) == (
        "add_to_audience",
        'Add to audience "Email marketing interest"',
    )
    assert [m for m in from_workflow(journeys, ana) if m.channel == "team"] == []


def test_a_hot_lead_is_flagged_to_sales_once(journeys: Journeys) -> None:
    # GIVEN a lead one article away from a score of 50
    ana = journeys.contact("ana", **HOT_LEAD)
    # WHEN she reads a live-chat article
    url = f"{BLOG}/live-chat/response-times"
    first = read(journeys, ana, url)
    # THEN she is tagged, subscribed to the live-chat tips, and sales hear about her
    assert in_order(
        path(journeys, first),
        "Score +2: read a blog article",
        "Tag: interest live chat",
        'Add to audience "Live chat interest"',
        'Subscribe to "Live chat tips"',
        "Hot lead not yet flagged to sales?",
        "Ask sales for personal outreach",
        "Tag: sales alerted",
        "Interest tagged",
    )
    [alert] = journeys.messages(ana, 1)
    assert (alert.channel, alert.to, alert.step_label) == (
        "team",
        "sales@example.com",
        "Ask sales for personal outreach",
    )
    assert alert.subject == "Hot lead reading the blog: Ana Silva (Acme)"
    assert "score of 51" in alert.body and url in alert.body
    assert "Email:    ana@example.com" in alert.body
    contact = stored(journeys, ana)
    assert {"interest-live-chat", "sales-alerted"} <= set(contact["tags"])
    assert "Live chat tips" in contact["lists"]
    # WHEN she comes back the next day (re-entry after 1 day) to read about e-commerce
    journeys.stack.clock.advance(DAY)
    second = read(journeys, ana, f"{BLOG}/ecommerce/checkout-tips")
    # THEN she gets the e-commerce interest, but sales are not asked a second time
    entered = path(journeys, second)
    assert in_order(
        entered,
        "Tag: interest e-commerce",
        'Add to audience "E-commerce interest"',
        'Subscribe to "E-commerce growth"',
        "Hot lead not yet flagged to sales?",
        "Interest tagged",
    )
    assert "Ask sales for personal outreach" not in entered
    assert [m.channel for m in journeys.sent(ana)] == ["team"]
    contact = stored(journeys, ana)
    assert "interest-ecommerce" in contact["tags"] and "Ecommerce growth" in contact["lists"]
    assert contact["attributes"]["score"] == 53


def test_a_reader_of_another_topic_only_scores(journeys: Journeys) -> None:
    # GIVEN a reader
    ana = journeys.contact("ana", **READER)
    # WHEN she views a page outside the blog, then a blog article on another topic
    journeys.event(ana, "page_viewed", url="https://www.example.com/about")
    execution = read(journeys, ana, f"{BLOG}/company-news/we-are-hiring")
    # THEN only the blog article started the journey: +2, and no interest to tag
    assert len(journeys.executions(WORKFLOW, ana)) == 1
    entered = path(journeys, execution)
    assert in_order(
        entered,
        "Score +2: read a blog article",
        "Which topic did they read?",
        "No interest to tag",
        "Journey completed",
    )
    assert not any(label.startswith(("Tag: interest", "Add to audience")) for label in entered)
    assert from_workflow(journeys, ana) == []
    contact = stored(journeys, ana)
    assert not [tag for tag in contact["tags"] if tag.startswith("interest-")]
    assert contact["attributes"]["score"] == 12


def test_the_audience_change_reaches_the_audience_connector(journeys: Journeys) -> None:
    # GIVEN a reader
    ana = journeys.contact("ana", **READER)
    # WHEN she reads a live-chat article
    read(journeys, ana, f"{BLOG}/live-chat/response-times")
    # THEN the audience change is posted to the (sandboxed) audience connector
    [audience] = [m for m in from_workflow(journeys, ana) if m.channel == "audience"]
    assert audience.status == "sent", audience.status


def sales_alert_for_a_hot_lead(journeys: Journeys) -> OutboxEntry:
    ana = journeys.contact("ana", **HOT_LEAD)
    read(journeys, ana, f"{BLOG}/live-chat/response-times")
    [alert] = journeys.messages(ana, 1)
    assert alert.step_label == "Ask sales for personal outreach"
    return alert


def test_the_sales_alert_is_signed_with_the_workflow_name(journeys: Journeys) -> None:
    alert = sales_alert_for_a_hot_lead(journeys)
    assert 'by the workflow "Apply interest tags"' in alert.body, alert.body


def test_the_sales_alert_lists_the_interest_tags(journeys: Journeys) -> None:
    alert = sales_alert_for_a_hot_lead(journeys)
    [tags_line] = [line for line in alert.body.splitlines() if line.startswith("Tags:")]
    assert "interest-live-chat" in tags_line, alert.body
