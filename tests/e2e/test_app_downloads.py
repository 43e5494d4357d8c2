"""App downloads on the local stack: web shoppers are invited to install the app by SMS,
then email, then a last SMS, until they download it; app users are left alone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.local import Journeys, channels, in_order

pytestmark = pytest.mark.e2e

WORKFLOW = "app-downloads"
WEB_SHOPPER: dict[str, Any] = {
    "attributes": {"first_name": "Ana"},
    "channels": {
        "email": {"address": "ana@example.com", "status": "subscribed"},
        "sms": {"address": "+447700900123", "status": "subscribed"},
    },
    "time_zone": "Europe/London",
}
APP_USER: dict[str, Any] = {
    **WEB_SHOPPER,
    "channels": {
        **WEB_SHOPPER["channels"],
        "push": {"address": "ana-phone-token", "status": "subscribed"},
    },
}


def test_a_shopper_reachable_by_push_already_has_the_app(journeys: Journeys) -> None:
    # GIVEN a shopper whose phone has a push token (so the app is installed)
    ana = journeys.contact("ana", **APP_USER)
    # WHEN she checks out on the website
    journeys.event(ana, "checkout_completed", order_id="A-1001")
    # THEN the journey ends at once, inviting nobody
    execution = journeys.finished(journeys.execution(WORKFLOW, ana))
    path = journeys.path(execution)
    assert in_order(path, "Reachable by push?", "Already has the app", "Journey completed")
    assert "Wait 24 h after checkout" not in path
    assert journeys.sent(ana) == []


def test_downloading_before_the_sms_reaches_the_goal(journeys: Journeys) -> None:
    # GIVEN a web shopper who checked out (the 24 h wait lasts 24 s at this speed)
    ana = journeys.contact("ana", **WEB_SHOPPER)
    journeys.event(ana, "checkout_completed", order_id="A-1004")
    execution = journeys.execution(WORKFLOW, ana)
    # WHEN she installs the app on her own during the wait
    journeys.until(lambda: "Wait 24 h after checkout" in journeys.path(execution), 10)
    journeys.event(ana, "app_downloaded")
    # THEN the goal ends the journey there, before any invitation
    finished = journeys.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    path = journeys.path(execution)
    assert in_order(path, "Wait 24 h after checkout", "Downloaded the app", "Goal reached")
    assert "SMS app download link" not in path
    assert journeys.sent(ana) == []


def test_a_web_shopper_who_downloads_after_the_sms_gets_nothing_more(journeys: Journeys) -> None:
    # GIVEN a web shopper without the app
    ana = journeys.contact("ana", **WEB_SHOPPER)
    journeys.event(ana, "checkout_completed", order_id="A-1002")
    execution = journeys.execution(WORKFLOW, ana)
    # WHEN a day passes (jumped), slowly enough afterwards that the 1 h window lasts 60 s
    journeys.until(lambda: "Wait 24 h after checkout" in journeys.path(execution), 10)
    journeys.speed(60)
    journeys.stack.clock.advance(24 * 3600)
    # THEN the SMS with the download link goes to her phone
    [sms] = journeys.messages(ana, 1)
    assert (sms.channel, sms.to, sms.step_label) == (
        "sms",
        "+447700900123",
        "SMS app download link",
    )
    assert sms.body.startswith("Ana, track your order") and "app?c=sms1" in sms.body
    # WHEN she installs the app within the hour
    journeys.until(lambda: "Downloaded within 1 h of SMS?" in journeys.path(execution), 10)
    journeys.event(ana, "app_downloaded")
    # THEN the journey ends (by the wait or the goal, whichever saw the event first)
    finished = journeys.finished(execution)
    assert finished["status"] == "SUCCEEDED"
    path = journeys.path(execution)
    assert path[-1] in ("Journey completed", "Goal reached")
    assert "Downloaded after SMS" in path or "Downloaded the app" in path
    assert "Email app benefits" not in path
    assert channels(journeys.sent(ana)) == ["sms"]


def test_a_web_shopper_who_never_downloads_is_invited_three_times(journeys: Journeys) -> None:
    # GIVEN a web shopper without the app, and a day of journey time per real second
    ana = journeys.contact("ana", **WEB_SHOPPER)
    journeys.speed(86400)
    # WHEN she checks out and never installs the app
    journeys.event(ana, "checkout_completed", order_id="A-1003")
    execution = journeys.finished(journeys.execution(WORKFLOW, ana), timeout=30)
    # THEN she got the SMS, the email after the 1 h window, the final SMS after 24 h
    sent = journeys.messages(ana, 3)
    assert [(m.channel, m.step_label) for m in sent] == [
        ("sms", "SMS app download link"),
        ("email", "Email app benefits"),
        ("sms", "Final SMS reminder"),
    ]
    email = sent[1]
    assert email.to == "ana@example.com"
    assert email.subject == "Ana, your order is easier to follow in our app"
    assert "#A-1003" in email.body  # the order of the checkout that started the journey
    assert "code APP10" in sent[2].body
    assert in_order(
        journeys.path(execution),
        "Wait 24 h after checkout",
        "SMS app download link",
        "Downloaded within 1 h of SMS?",
        "Email app benefits",
        "Downloaded within 24 h of email?",
        "Final SMS reminder",
        "Invited three times",
        "Journey completed",
    )
