"""The scripted scenario the browser tests look at: six newsletter subscribers through the
welcome series, one of them also on a cart-abandonment journey, on a frozen journey clock.

Why frozen: the dashboard's screenshots in docs/ must come out the same on every run, and
every time the dashboard shows (a step's entered time, a contact's "since", the outbox)
is journey time. The clock runs at a hundredth of real time, so a run moves it by a
fraction of a second; the days of the welcome series pass by advancing it just past the
end of each Wait state (which ends it at once; `skip_past`); and once every journey
waits, it stops (`STOPPED`). Nothing depends on how fast this machine is: every step
waits for the journeys to get where they must be first, and the contacts act one after
another so the outbox keeps one order.

Where everyone ends up (the counts the tests expect, `EXPECTED_*`):

=======  ==========================================================================
ana      welcome 1 (opened), buys during "Wait 2 days after welcome 1": goal reached
cara     welcome 1, 2, 3, never opens: "Opened any welcome email?" No, tagged, ends
dan      welcome 1, unsubscribes with the one-click link: left the journey
ben      (eleven days later) welcome 1 (opened and clicked: engagement scoring +10),
         welcome 2, waits 3 days; adds to his cart: waits for checkout
eve      (two days after ben) welcome 1, waits 2 days
fiona    (after eve) welcome 1, waits 2 days
=======  ==========================================================================
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from journeys.local.stack import LocalStack
from tests.helpers.local import Journeys, ses_event

#: Tuesday 24 November 2026, 10:00 in London: inside the welcome series' sending hours.
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
#: Journey time runs this many times real time: frozen, for all the scenario can tell (a
#: minute of real time is 0.6 s). No slower: the engine turns a watch's TimeoutSeconds
#: (a year) into real seconds, and past ~290 years Python's waits overflow.
FROZEN = 0.01
#: Once every journey waits, journey time all but stands still. Only then: a task that
#: started after would turn its TimeoutSeconds into centuries of real time and fail
#: (`waiting`); Wait states nap at most 0.2 s whatever the scale.
STOPPED = 1e-6
#: A skipped wait ends this far into the whole second after its end. Every time the
#: scenario makes is then a whole second, or half a second past one, plus the drift (10 ms
#: a real second), never near the next second: the page's minutes and seconds (and the
#: durations it computes from them) read the same on every run.
PAST_A_SECOND = timedelta(milliseconds=500)

WELCOME = "welcome-series"
CART = "cart-abandonment"
SCORING = "engagement-scoring"
WAIT_1 = "Wait 2 days after welcome 1"
WINDOW_2 = "Sending hours before welcome 2"
WAIT_2 = "Wait 3 days after welcome 2"
WINDOW_3 = "Sending hours before welcome 3"
WAIT_3 = "Wait 5 days after welcome 3"
CART_WAIT = "Checked out within 2 h?"
CLICKED_LINK = "https://shop.example.com/resources"

#: The welcome series' totals at the end (`totals` of its statistics).
EXPECTED_TOTALS = {
    "entered": 6,
    "active": 3,
    "completed": 1,
    "goal_reached": 1,
    "exited": 1,
    "failed": 0,
    "unsubscribed": 1,
}
#: Its conversion rate as the dashboard prints it (1 goal of 6 entered).
EXPECTED_CONVERSION = "16.7 %"
#: Every box of its graph with a count: key -> (passed, waiting). The others show 0 / 0.
EXPECTED_FUNNEL = {
    "__start__": (6, 0),
    "welcome-1": (6, 0),
    "wait-2-days-after-welcome-1": (6, 2),
    "sending-hours-before-welcome-2": (2, 0),
    "welcome-2": (2, 0),
    "wait-3-days-after-welcome-2": (2, 1),
    "sending-hours-before-welcome-3": (1, 0),
    "welcome-3": (1, 0),
    "wait-5-days-after-welcome-3": (1, 0),
    "opened-any-welcome-email": (1, 0),
    "tag-welcome-series-unopened": (1, 0),
    "never-opened-no-offer": (1, 0),
}
#: Message metrics of its send steps: every email was delivered; ana and ben opened
#: welcome 1 (2 of 6), ben clicked it (1 of 6).
EXPECTED_MESSAGES = {
    "welcome-1": {
        "sent": "6",
        "delivered": "6",
        "open_rate": "33.3 %",
        "click_rate": "16.7 %",
        "bounce_rate": "0.0 %",
        "unsubscribe_rate": "0.0 %",
    },
    "welcome-2": {"sent": "2", "delivered": "2", "open_rate": "0.0 %", "click_rate": "0.0 %"},
    "welcome-3": {"sent": "1", "delivered": "1", "open_rate": "0.0 %", "click_rate": "0.0 %"},
}
#: The other workflows with journeys: (entered, active, completed, goal_reached).
EXPECTED_OTHERS = {CART: (1, 1, 0, 0), SCORING: (1, 0, 1, 0)}


@dataclass(frozen=True)
class Story:
    """Who is who once the scenario ran (the contact ids are the names)."""

    goal: str = "ana"
    unopened: str = "cara"
    unsubscribed: str = "dan"
    shopper: str = "ben"
    later: str = "eve"
    newest: str = "fiona"


class NamedJourneys(Journeys):
    """The e2e harness with plain contact ids: the screenshots show them."""

    def contact_id(self, name: str) -> str:
        return name


def subscriber(name: str) -> dict[str, Any]:
    return {
        "attributes": {"first_name": name.capitalize()},
        "channels": {"email": {"address": f"{name}@example.com", "status": "subscribed"}},
        "lists": {"subscribe": ["Newsletter"]},
        "time_zone": "Europe/London",
    }


def run(stack: LocalStack) -> tuple[NamedJourneys, Story]:
    """Play the scenario on a fresh stack; returns once every journey stands still."""
    journeys = NamedJourneys(stack)
    story = Story()
    journeys.at(START, speed=FROZEN)

    # Tuesday: ana, cara and dan subscribe, one after another (the outbox keeps that order).
    for name in (story.goal, story.unopened, story.unsubscribed):
        welcome(journeys, name)
    open_email(journeys, story.goal, 1)
    journeys.event(story.goal, "order_completed", event_id="ana-first-order", total=42)
    unsubscribe(journeys, story.unsubscribed)
    for name in (story.goal, story.unsubscribed):
        journeys.finished(execution(journeys, WELCOME, name))

    # cara never opens a thing: eleven days of welcome emails, then no offer.
    cara = [story.unopened]
    skip_past(journeys, cara, WAIT_1)
    skip_past(journeys, cara, WINDOW_2)
    deliver(journeys, story.unopened, 2)
    skip_past(journeys, cara, WAIT_2)
    skip_past(journeys, cara, WINDOW_3)
    deliver(journeys, story.unopened, 3)
    skip_past(journeys, cara, WAIT_3)
    journeys.finished(execution(journeys, WELCOME, story.unopened))

    # The Saturday after: ben subscribes, opens and clicks welcome 1, and two days later
    # gets welcome 2.
    welcome(journeys, story.shopper)
    open_email(journeys, story.shopper, 1, click=True)
    journeys.finished(execution(journeys, SCORING, story.shopper))
    skip_past(journeys, [story.shopper], WAIT_1)
    skip_past(journeys, [story.shopper], WINDOW_2)
    entered_state(journeys, execution(journeys, WELCOME, story.shopper), WAIT_2)
    deliver(journeys, story.shopper, 2)

    # That Monday: eve and fiona subscribe; ben leaves items in his cart.
    for name in (story.later, story.newest):
        welcome(journeys, name)
    journeys.event(story.shopper, "added_to_cart", event_id="ben-cart", cart_items=2)
    entered_state(journeys, execution(journeys, CART, story.shopper), CART_WAIT)
    # Every journey is waiting: the clock can stop (see STOPPED), so however long the tests
    # look, the times on the page ("Updated", "for 0 s") stay what they are now.
    journeys.until(lambda: all(waiting(journeys, run) for run in running(journeys)), 20)
    journeys.speed(STOPPED)
    failed = [run["name"] for run in executions(journeys, "FAILED")]
    assert not failed, f"journeys failed: {failed}"
    return journeys, story


# --- steps of the scenario ------------------------------------------------------------------


def welcome(journeys: Journeys, name: str) -> None:
    """`name` subscribes to the newsletter, gets welcome 1 (delivered) and starts waiting."""
    journeys.contact(name, **subscriber(name))
    deliver(journeys, name, 1)
    entered_state(journeys, execution(journeys, WELCOME, name), WAIT_1)


def deliver(journeys: Journeys, contact_id: str, number: int) -> None:
    """Once the contact's `number`th email went out, SES reports it delivered."""
    email = journeys.messages(contact_id, number)[number - 1]
    ses_event(journeys, email, "Delivery")


def open_email(journeys: Journeys, contact_id: str, number: int, click: bool = False) -> None:
    email = journeys.messages(contact_id, number)[number - 1]
    ses_event(journeys, email, "Open")
    if click:
        ses_event(journeys, email, "Click", CLICKED_LINK)


def unsubscribe(journeys: Journeys, contact_id: str) -> None:
    """The contact's mailbox posts the one-click unsubscribe link of welcome 1 (RFC 8058)."""
    [email] = journeys.messages(contact_id, 1)
    link = re.search(r"^Unsubscribe: (\S+)$", email.body, re.MULTILINE)
    assert link is not None, f"no unsubscribe link in {email.body!r}"
    parts = urllib.parse.urlsplit(link.group(1))
    request = urllib.request.Request(
        f"{journeys.stack.api_url}{parts.path}?{parts.query}",
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, response.read()


# --- where the journeys are -----------------------------------------------------------------


def execution(journeys: Journeys, workflow_id: str, contact_id: str) -> dict[str, Any]:
    return journeys.execution(workflow_id, contact_id, timeout=20)


def _history(journeys: Journeys, execution: dict[str, Any]) -> list[dict[str, Any]]:
    events = journeys.sfn.get_execution_history(
        executionArn=execution["executionArn"], maxResults=1000
    )["events"]
    return sorted(events, key=lambda event: event["id"])


def _entered(journeys: Journeys, execution: dict[str, Any], label: str) -> dict[str, Any] | None:
    found = [
        event
        for event in _history(journeys, execution)
        if event.get("stateEnteredEventDetails", {}).get("name") == label
    ]
    return found[-1] if found else None


def entered_state(journeys: Journeys, execution: dict[str, Any], label: str) -> dict[str, Any]:
    """The history event of the execution entering state `label`, once it has."""
    event: dict[str, Any] = journeys.until(
        lambda: _entered(journeys, execution, label),
        20,
        f"{execution['name']} never entered {label!r}: {journeys.path(execution)}",
    )
    return event


def _state(states: dict[str, Any], label: str) -> dict[str, Any] | None:
    for name, state in states.items():
        if name == label:
            return dict(state)
        for branch in state.get("Branches", []):
            found = _state(branch["States"], label)
            if found is not None:
                return found
    return None


def _wait_end(journeys: Journeys, execution: dict[str, Any], label: str) -> datetime:
    """When the Wait state `label` the execution is in ends (journey time)."""
    entered = entered_state(journeys, execution, label)
    machine = journeys.sfn.describe_execution(executionArn=execution["executionArn"])
    definition = json.loads(
        journeys.sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])[
            "definition"
        ]
    )
    state = _state(definition["States"], label)
    assert state is not None and state["Type"] == "Wait", f"{label!r} is not a Wait state"
    if "Seconds" in state:
        moment: datetime = entered["timestamp"]
        return moment.astimezone(UTC) + timedelta(seconds=state["Seconds"])
    value: Any = json.loads(entered["stateEnteredEventDetails"]["input"])
    for part in state["TimestampPath"].removeprefix("$.").split("."):
        value = value[part]
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def skip_past(journeys: Journeys, contact_ids: list[str], label: str) -> None:
    """Once the contacts' welcome journeys are all in the Wait state `label`, move journey
    time just past its latest end, then wait until every one of them has left it."""
    runs = [execution(journeys, WELCOME, contact_id) for contact_id in contact_ids]
    end = max(_wait_end(journeys, run, label) for run in runs)
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    remaining = (end + PAST_A_SECOND - journeys.stack.clock.now()).total_seconds()
    if remaining > 0:
        journeys.stack.clock.advance(remaining)
    for run in runs:
        journeys.until(
            lambda run=run: _left(journeys, run, label),
            20,
            f"{run['name']} is still in {label!r}",
        )


def _left(journeys: Journeys, execution: dict[str, Any], label: str) -> bool:
    events = _history(journeys, execution)
    entered = [
        i
        for i, event in enumerate(events)
        if event.get("stateEnteredEventDetails", {}).get("name") == label
    ]
    return bool(entered) and any(
        event.get("stateExitedEventDetails", {}).get("name") == label
        for event in events[entered[-1] :]
    )


def executions(journeys: Journeys, status: str) -> list[dict[str, Any]]:
    """The stack's executions in `status`, every workflow."""
    assert journeys.stack.deployment is not None
    return [
        run
        for arn in journeys.stack.deployment.state_machines.values()
        for run in journeys.sfn.list_executions(stateMachineArn=arn, statusFilter=status)[
            "executions"
        ]
    ]


def running(journeys: Journeys) -> list[dict[str, Any]]:
    return executions(journeys, "RUNNING")


def waiting(journeys: Journeys, execution: dict[str, Any]) -> bool:
    """Whether every callback task the execution started (a goal or exit watch, a wait
    for an event) has been handed its token: the engine has then read its timeout."""
    events = _history(journeys, execution)
    callbacks = sum(
        1
        for event in events
        if event["type"] == "TaskScheduled"
        and event["taskScheduledEventDetails"]["resource"].endswith(".waitForTaskToken")
    )
    return callbacks == sum(1 for event in events if event["type"] == "TaskSubmitted")
