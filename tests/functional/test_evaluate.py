"""The evaluate Lambda on moto: fresh contact data decides the path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from journeys.exceptions import ContactNotFound
from journeys.store import ContactRecord, EventRecordModel, MessageRecordModel, iso
from tests.helpers.lambdas import invoke

NOW = datetime.now(UTC)


def payload(paths: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "contact_id": "c-1",
        "workflow_id": "cart-abandonment",
        "step_id": "cart-still-has-items",
        "step_label": "Cart still has items?",
        "execution_id": "exec-1",
        "trigger": {"key": "event:added_to_cart", "properties": {"sku": "A1"}},
        "data": {},
        "entered_at": iso(NOW - timedelta(hours=3)),
        "paths": paths,
        **extra,
    }


@pytest.fixture
def evaluate(aws: dict[str, Any]) -> Any:
    ContactRecord(
        "c-1",
        attributes={"cart_items": 2, "plan": "free"},
        tags={"vip": iso(NOW)},
        channels={
            "push": {
                "address": "arn:aws:sns:us-east-1:123456789012:endpoint/x",
                "status": "subscribed",
            }
        },
    ).save()
    return lambda event: invoke("evaluate", event)


def test_decision_reads_the_contact_now(evaluate: Any) -> None:
    yes = [{"branch": "yes", "condition": {"attribute": "cart_items", "gt": 0}}]
    assert evaluate(payload(yes)) == {"branch": "yes"}
    ContactRecord("c-1", attributes={"cart_items": 0}).save()  # the cart emptied meanwhile
    assert evaluate(payload(yes)) == {"branch": "default"}


def test_split_takes_the_first_matching_path(evaluate: Any) -> None:
    paths = [
        {"branch": "1", "condition": {"reachable": "email"}},
        {"branch": "2", "condition": {"all": [{"reachable": "push"}, {"tag": "vip"}]}},
    ]
    assert evaluate(payload(paths)) == {"branch": "2"}


def test_event_windows_and_messages(evaluate: Any) -> None:
    EventRecordModel(
        "c-1",
        f"{iso(NOW - timedelta(minutes=20))}#e1",
        name="page_viewed",
        event_id="e1",
        occurred_at=iso(NOW - timedelta(minutes=20)),
        properties={"url": "/pricing"},
    ).save()
    MessageRecordModel(
        "c-1",
        f"{iso(NOW - timedelta(hours=1))}#m1",
        message_id="m1",
        workflow_id="cart-abandonment",
        step_id="cart-email",
        channel="email",
        sent_at=iso(NOW - timedelta(hours=1)),
        opened_at=iso(NOW),
    ).save()
    viewed = {"event": "page_viewed", "within": "30 min", "where": {"url": {"contains": "pricing"}}}
    assert evaluate(payload([{"branch": "yes", "condition": viewed}])) == {"branch": "yes"}
    too_long_ago = {**viewed, "within": "10 min"}
    assert evaluate(payload([{"branch": "yes", "condition": too_long_ago}])) == {
        "branch": "default"
    }
    opened = {"opened": "cart-email"}
    assert evaluate(payload([{"branch": "yes", "condition": opened}])) == {"branch": "yes"}


def test_unknown_contact_raises_the_named_error(evaluate: Any) -> None:
    with pytest.raises(ContactNotFound):
        evaluate(
            {**payload([{"branch": "yes", "condition": {"tag": "vip"}}]), "contact_id": "gone"}
        )
