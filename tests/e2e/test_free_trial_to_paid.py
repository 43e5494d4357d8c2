"""Free trial to paid on the local stack: learners who have not subscribed after their
7-day trial get an upgrade offer (web push when engaged and reachable there, else email),
then a reminder of the course in their cart; paying after either scores +10."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from journeys.local.functions import Invocation
from tests.helpers.local import Journeys, channels, in_order, step_results, stored

pytestmark = pytest.mark.e2e

WORKFLOW = "free-trial-to-paid"
#: A week of journey time per real second: the 7-day trial passes in one.
TRIAL_WEEK_PER_SECOND = 7 * 86400
LEARNER: dict[str, Any] = {
    "attributes": {"first_name": "Ana", "score": 20},
    "channels": {"email": {"address": "ana@example.com", "status": "subscribed"}},
    "time_zone": "Europe/London",
}
ENGAGED_LEARNER: dict[str, Any] = {
    "attributes": {"first_name": "Ana", "score": 60},
    "channels": {
        **LEARNER["channels"],
        "web_push": {"address": "ana-browser-subscription", "status": "subscribed"},
    },
    "time_zone": "Europe/London",
}


# --- helpers this file needs (see the report: candidates for tests/helpers/local.py) ------


def after_step(journeys: Journeys, contact_id: str, label: str, do: Callable[[], Any]) -> None:
    """Run `do` once, in the engine's thread, as soon as the step `label` of the contact's
    journey has run successfully: before the next state starts, so a speed set here is the
    one its wait-for-event timeout is converted at."""
    done = False

    def observer(invocation: Invocation) -> None:
        nonlocal done
        event = invocation.event if isinstance(invocation.event, dict) else {}
        if (
            not done
            and not invocation.errored
            and event.get("contact_id") == contact_id
            and event.get("step_label") == label
        ):
            done = True
            do()

    journeys.stack.observe(observer)


def learner(journeys: Journeys, body: dict[str, Any]) -> str:
    """A learner whose segments the router has already worked out."""
    contact_id = journeys.contact("ana", **body)
    engaged = body["attributes"]["score"] >= 50
    journeys.until(lambda: ("engaged" in stored(journeys, contact_id)["segments"]) == engaged, 10)
    return contact_id


# --- scenarios ------------------------------------------------------------------------------


def test_a_learner_who_subscribes_during_the_trial_gets_nothing(journeys: Journeys) -> None:
    # GIVEN a learner starting a free trial
    ana = learner(journeys, LEARNER)
    journeys.event(ana, "trial_started", plan="Pro")
    execution = journeys.execution(WORKFLOW, ana)
    # WHEN she subscribes on day 1
    journeys.until(lambda: "Subscribed within 7 days?" in journeys.path(execution), 10)
    journeys.event(ana, "subscription_started", plan="Pro")
    # THEN the journey ends without an offer and without scoring
    journeys.finished(execution)
    path = journeys.path(execution)
    assert in_order(
        path, "Subscribed within 7 days?", "Subscribed during the trial", "Journey completed"
    )
    assert "Email upgrade offer" not in path and "Web push upgrade offer" not in path
    assert journeys.sent(ana) == []
    assert stored(journeys, ana)["attributes"]["score"] == 20
    # WHEN she starts another trial later (then views a product: the router handles her
    # events in order, so once window-shoppers has her, the second trial was routed)
    journeys.event(ana, "trial_started", plan="Team")
    journeys.event(ana, "product_viewed", product_id="p-1")
    journeys.execution("window-shoppers", ana)
    # THEN there is still one free trial journey: re-entry is "never"
    assert len(journeys.executions(WORKFLOW, ana)) == 1


def test_an_engaged_learner_gets_the_web_push_and_scores_for_paying(journeys: Journeys) -> None:
    # GIVEN an engaged learner (score 60) who accepts web push; after the offer the 48 h
    # to pay last 48 s
    ana = learner(journeys, ENGAGED_LEARNER)
    journeys.speed(TRIAL_WEEK_PER_SECOND)
    after_step(journeys, ana, "Web push upgrade offer", lambda: journeys.speed(3600))
    # WHEN her trial runs out without a subscription
    journeys.event(ana, "trial_started", plan="Pro")
    execution = journeys.execution(WORKFLOW, ana)
    # THEN she is offered the upgrade by web push, not by email
    journeys.until(lambda: "Paid within 48 h?" in journeys.path(execution), 10)
    path = journeys.path(execution)
    assert in_order(path, "Engaged and reachable by web push?", "Web push upgrade offer")
    assert "Email upgrade offer" not in path
    # (web push has no provider yet: the send step says so, nothing leaves)
    [web_push] = step_results(journeys, execution, "Web push upgrade offer")
    assert web_push["status"] == "skipped" and web_push["reason"] == "channel-not-deliverable-yet"
    # WHEN she pays within 48 h
    journeys.event(ana, "payment_completed", amount=29)
    # THEN her score goes up by 10 and the journey ends
    journeys.finished(execution)
    assert in_order(
        journeys.path(execution),
        "Paid within 48 h?",
        "Score +10 (paid after the offer)",
        "Paid after the offer",
        "Journey completed",
    )
    assert stored(journeys, ana)["attributes"]["score"] == 70
    assert journeys.sent(ana) == []


def test_a_learner_with_a_course_in_the_cart_gets_the_cart_email_and_pays(
    journeys: Journeys,
) -> None:
    # GIVEN a learner who is not engaged and has two courses in her cart; the 48 h after
    # the offer pass in a blink, the 24 h after the cart email last 24 s
    ana = learner(
        journeys, {**LEARNER, "attributes": {**LEARNER["attributes"], "courses_in_cart": 2}}
    )
    journeys.speed(TRIAL_WEEK_PER_SECOND)
    after_step(journeys, ana, "Email course in cart", lambda: journeys.speed(3600))
    # WHEN her trial runs out and she does not pay after the offer
    journeys.event(ana, "trial_started", plan="Pro plan")
    execution = journeys.execution(WORKFLOW, ana)
    # THEN she gets the upgrade offer, then the reminder of her two courses
    offer, cart = journeys.messages(ana, 2)
    assert [(m.channel, m.to, m.step_label) for m in (offer, cart)] == [
        ("email", "ana@example.com", "Email upgrade offer"),
        ("email", "ana@example.com", "Email course in cart"),
    ]
    assert offer.subject == "Ana, your free trial ends soon: keep learning"
    assert "Your free Pro plan ends soon" in offer.body  # from the trial_started event
    assert cart.subject == "Your course is still in your cart, Ana"
    assert "You left 2 courses in your cart" in cart.body
    # WHEN she pays within 24 h of the cart email
    journeys.until(lambda: "Paid within 24 h?" in journeys.path(execution), 10)
    journeys.event(ana, "payment_completed", amount=58)
    # THEN her score goes up by 10
    journeys.finished(execution)
    assert in_order(
        journeys.path(execution),
        "Engaged and reachable by web push?",
        "Email upgrade offer",
        "Paid within 48 h?",
        "Course in cart?",
        "Email course in cart",
        "Paid within 24 h?",
        "Score +10 (paid after the cart email)",
        "Paid after the cart email",
        "Journey completed",
    )
    assert stored(journeys, ana)["attributes"]["score"] == 30


def test_a_learner_with_an_empty_cart_only_gets_the_offer(journeys: Journeys) -> None:
    # GIVEN a learner who is not engaged and has nothing in her cart
    ana = learner(journeys, LEARNER)
    journeys.speed(TRIAL_WEEK_PER_SECOND)
    # WHEN her trial runs out and she never pays
    journeys.event(ana, "trial_started", plan="Pro")
    execution = journeys.finished(journeys.execution(WORKFLOW, ana))
    # THEN the upgrade offer was all she got, and her score did not change
    path = journeys.path(execution)
    assert in_order(
        path,
        "Email upgrade offer",
        "Paid within 48 h?",
        "Course in cart?",
        "No course in cart",
        "Journey completed",
    )
    assert "Email course in cart" not in path
    assert channels(journeys.sent(ana)) == ["email"]
    assert stored(journeys, ana)["attributes"]["score"] == 20
