"""Cart abandonment on the local stack: the examples of the local-stack issue, end to end."""

from __future__ import annotations

import pytest

from tests.helpers.local import Journeys, channels

pytestmark = pytest.mark.e2e

SHOPPER = {
    "attributes": {"first_name": "Ana", "cart_items": 2},
    "channels": {"email": {"address": "ana@example.com", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
PUSH = {"push": {"address": "ana-phone-token", "status": "subscribed"}}


def test_a_shopper_who_checks_out_within_two_hours_gets_nothing(journeys: Journeys) -> None:
    # GIVEN a shopper with a cart
    ana = journeys.contact("ana", **SHOPPER)
    # WHEN she adds to her cart and checks out half an hour later (0.5 s at 1 h/s)
    journeys.event(ana, "added_to_cart", cart_items=2)
    execution = journeys.execution("cart-abandonment", ana)
    journeys.until(lambda: "Checked out within 2 h?" in journeys.path(execution), 10)
    journeys.event(ana, "checkout_completed")
    # THEN the journey ends (the goal or the wait, whichever saw it first) and sends nothing
    journeys.finished(execution)
    path = journeys.path(execution)
    assert "Push cart reminder" not in path and "Email cart reminder" not in path
    assert journeys.sent(ana) == []


def test_with_a_push_token_and_items_left_a_push_then_an_email(journeys: Journeys) -> None:
    ana = journeys.contact("ana", **{**SHOPPER, "channels": {**SHOPPER["channels"], **PUSH}})
    journeys.event(ana, "added_to_cart", cart_items=2)
    execution = journeys.finished(journeys.execution("cart-abandonment", ana), timeout=40)
    sent = journeys.messages(ana, 2)
    assert channels(sent) == ["push", "email"]
    assert [m.step_label for m in sent] == ["Push cart reminder", "Email cart reminder"]
    assert sent[1].to == "ana@example.com"
    assert "Trail running shoes, wide fit" in sent[1].body  # fetched from the sandbox
    assert [c.to for c in journeys.calls(ana)] == [
        "POST https://recommendations.example.com/similar"
    ]
    path = journeys.path(execution)
    assert path.index("Fetch similar products") < path.index("Push cart reminder")
    assert path[-1] in ("Reminded", "Journey completed")


def test_without_a_push_token_only_the_email(journeys: Journeys) -> None:
    ana = journeys.contact("ana", **SHOPPER)
    journeys.event(ana, "added_to_cart", cart_items=2)
    execution = journeys.finished(journeys.execution("cart-abandonment", ana), timeout=40)
    assert channels(journeys.messages(ana, 1)) == ["email"]
    assert "Push cart reminder" not in journeys.path(execution)


def test_a_duplicate_event_starts_one_journey_and_sends_once(journeys: Journeys) -> None:
    ana = journeys.contact("ana", **SHOPPER)
    journeys.event(ana, "added_to_cart", event_id=f"{ana}-cart", cart_items=2)
    journeys.event(ana, "added_to_cart", event_id=f"{ana}-cart", cart_items=2)
    execution = journeys.finished(journeys.execution("cart-abandonment", ana), timeout=40)
    assert execution["status"] == "SUCCEEDED"
    assert len(journeys.executions("cart-abandonment", ana)) == 1
    assert channels(journeys.messages(ana, 1)) == ["email"]
