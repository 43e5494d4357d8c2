"""The compiled reference workflows do what REQUIREMENTS section 3 describes.

Each test walks the compiled state machine the way a contact would (tests/helpers/asl.py)
and checks the steps met, in order, against the description quoted in the docstring.
"""

from __future__ import annotations

from typing import Any

import pytest

from journeys.compiler.pipeline import CompileResult
from tests.helpers.asl import EVENT, journey_states, resource, steps_only, walk

DIRECT_LAMBDA = "arn:aws:states:::lambda:invoke"
TOKEN_WAIT = "arn:aws:states:::lambda:invoke.waitForTaskToken"


@pytest.fixture(scope="module")
def machines(library: dict[str, CompileResult]) -> dict[str, dict[str, Any]]:
    assert all(result.ok for result in library.values()), {
        name: [d.format() for d in r.diagnostics] for name, r in library.items() if not r.ok
    }
    return {name: result.machine for name, result in library.items() if result.machine}


def state(machine: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(journey_states(machine)["States"][name])


def test_library_has_all_twenty_reference_workflows(machines: dict[str, Any]) -> None:
    assert sorted(machines) == sorted(
        [
            # Gist
            "content-offer",
            "chat-follow-up",
            "lead-nurture",
            "facebook-audience",
            "interest-tags",
            "birthday-offer",
            "anniversary-outreach",
            # WebEngage
            "app-downloads",
            "cart-abandonment",
            "window-shoppers",
            "engagement-scoring",
            "cold-user-reactivation",
            "free-trial-to-paid",
            "recurring-payment-reminders",
            "course-progress-reports",
            "course-recommendations",
            "churn-prevention",
            # SALESmanago, Sender
            "salesmanago-nurturing",
            "welcome-series",
            "webinar-reminders",
        ]
    )


def test_cart_abandonment(machines: dict[str, Any]) -> None:
    """On added_to_cart -> wait up to 2 h for checkout -> if bought end; if cart still has
    items: push if reachable; then email if reachable, with similar products."""
    cart = machines["cart-abandonment"]
    wait = state(cart, "Checked out within 2 h?")
    assert (wait["Resource"], wait["TimeoutSeconds"]) == (TOKEN_WAIT, 7200)
    assert wait["Parameters"]["Payload"]["signal"] == "event:checkout_completed"
    assert walk(cart, {"Checked out within 2 h?": EVENT}) == ["Checked out within 2 h?", "Bought"]
    everything = {
        "Cart still has items?": "Yes",
        "Reachable by push?": "Yes",
        "Reachable by email?": "Yes",
    }
    assert steps_only(walk(cart, everything)) == [
        "Checked out within 2 h?",
        "Cart still has items?",
        "Fetch similar products",
        "Reachable by push?",
        "Push cart reminder",
        "Reachable by email?",
        "Email cart reminder",
        "Reminded",
    ]
    no_push = steps_only(walk(cart, {**everything, "Reachable by push?": "Default"}))
    assert "Push cart reminder" not in no_push and "Email cart reminder" in no_push
    assert steps_only(walk(cart))[-1] == "Cart emptied"
    checks = state(cart, "Check: Cart still has items?")["Parameters"]["Payload"]["paths"]
    assert checks[0]["condition"] == {"attribute": "cart_items", "gt": 0}
    # Reaching the goal ends the journey wherever the contact is.
    assert cart["States"]["Cart abandonment"]["Type"] == "Parallel"


def test_app_downloads(machines: dict[str, Any]) -> None:
    """On checkout -> reachable by push? end : wait 24 h -> SMS -> wait up to 1 h for
    app_downloaded -> else email -> wait up to 24 h -> else final SMS -> end."""
    app = machines["app-downloads"]
    assert steps_only(walk(app, {"Reachable by push?": "Yes"})) == [
        "Reachable by push?",
        "Already has the app",
    ]
    assert steps_only(walk(app)) == [
        "Reachable by push?",
        "Wait 24 h after checkout",
        "SMS app download link",
        "Downloaded within 1 h of SMS?",
        "Email app benefits",
        "Downloaded within 24 h of email?",
        "Final SMS reminder",
        "Invited three times",
    ]
    assert state(app, "Wait 24 h after checkout")["Seconds"] == 86400
    assert state(app, "Downloaded within 1 h of SMS?")["TimeoutSeconds"] == 3600
    assert state(app, "Downloaded within 24 h of email?")["TimeoutSeconds"] == 86400
    assert walk(app, {"Downloaded within 1 h of SMS?": EVENT})[-1] == "Downloaded after SMS"


def test_window_shoppers(machines: dict[str, Any]) -> None:
    """Viewed a product and no checkout within 60 min -> in segment "repeat browser"? ->
    fetch browsing history -> push if reachable else on-site notification -> wait up to
    30 min for checkout -> thank-you email, or email with recommendations -> wait up to
    12 h -> else SMS with discount."""
    shop = machines["window-shoppers"]
    assert state(shop, "Checked out within 60 min?")["TimeoutSeconds"] == 3600
    segment = state(shop, "Check: In segment repeat-browser?")["Parameters"]["Payload"]
    assert segment["paths"][0]["condition"] == {"segment": "repeat-browser"}
    base = {"In segment repeat-browser?": "Yes"}
    assert steps_only(walk(shop, {**base, "Reachable by push?": "Yes"})) == [
        "Checked out within 60 min?",
        "In segment repeat-browser?",
        "Fetch browsing history",
        "Reachable by push?",
        "Push viewed products",
        "Checked out within 30 min?",
        "Email recommendations",
        "Checked out within 12 h?",
        "SMS discount code",
        "Discount sent",
    ]
    on_site = steps_only(walk(shop, {**base, "Checked out within 30 min?": EVENT}))
    assert on_site[4:7] == [
        "On-site note on viewed products",
        "Checked out within 30 min?",
        "Thank-you email",
    ]
    assert state(shop, "Checked out within 12 h?")["TimeoutSeconds"] == 12 * 3600


def test_engagement_scoring(machines: dict[str, Any]) -> None:
    """+10 on positive actions, -10 on negative, -50 on entering D-30/D-60/D-90."""
    scoring = machines["engagement-scoring"]
    by_path = {}
    for path in ("Positive action", "Negative action", "Became inactive"):
        visited = steps_only(walk(scoring, {"Which action?": path}))
        update = state(scoring, visited[1])
        assert update["Resource"] == "arn:aws:states:::dynamodb:updateItem"
        by_path[path] = int(update["Parameters"]["ExpressionAttributeValues"][":by"]["N"])
    assert by_path == {"Positive action": 10, "Negative action": -10, "Became inactive": -50}


def test_cold_user_reactivation(machines: dict[str, Any]) -> None:
    """Enters D-30 or score < -100 -> web push if reachable else email -> wait up to 2 days
    for login -> +10 score, or email with latest content; widen to 10/30/45 days."""
    cold = machines["cold-user-reactivation"]
    assert steps_only(
        walk(cold, {"Reachable by web push?": "Yes", "Logged in within 2 days?": EVENT})
    ) == [
        "Reachable by web push?",
        "Web push we miss you",
        "Logged in within 2 days?",
        "Score +10 (back within 2 days)",
        "Reactivated within 2 days",
    ]
    never = steps_only(walk(cold))
    assert never[:2] == ["Reachable by web push?", "Email we miss you"]
    timeouts = [
        state(cold, n)["TimeoutSeconds"] // 86400 for n in never if n.startswith("Logged in within")
    ]
    assert timeouts == [2, 10, 30, 45]


def test_free_trial_to_paid(machines: dict[str, Any]) -> None:
    """Trial starts -> wait up to 7 days for subscription -> engaged segment? -> web push or
    email -> wait up to 48 h for payment -> +10, or: course in cart? email -> wait up to
    24 h -> +10."""
    trial = machines["free-trial-to-paid"]
    assert state(trial, "Subscribed within 7 days?")["TimeoutSeconds"] == 7 * 86400
    assert steps_only(
        walk(trial, {"Engaged and reachable by web push?": "Yes", "Paid within 48 h?": EVENT})
    ) == [
        "Subscribed within 7 days?",
        "Engaged and reachable by web push?",
        "Web push upgrade offer",
        "Paid within 48 h?",
        "Score +10 (paid after the offer)",
        "Paid after the offer",
    ]
    assert steps_only(walk(trial, {"Course in cart?": "Yes", "Paid within 24 h?": EVENT})) == [
        "Subscribed within 7 days?",
        "Engaged and reachable by web push?",
        "Email upgrade offer",
        "Paid within 48 h?",
        "Course in cart?",
        "Email course in cart",
        "Paid within 24 h?",
        "Score +10 (paid after the cart email)",
        "Paid after the cart email",
    ]


def test_recurring_payment_reminders(machines: dict[str, Any]) -> None:
    """Loan paid or due date updated -> wait until 10 days before due -> paid? move due
    date one cycle : reminder email -> wait until 5 days before -> paid? : email + SMS."""
    loans = machines["recurring-payment-reminders"]
    schedule = state(loans, "Schedule: Wait until 10 days before due")["Parameters"]["Payload"]
    assert (schedule["attribute"], schedule["offset_seconds"]) == ("due_date", -10 * 86400)
    paid_early = steps_only(walk(loans, {"Paid 10 days before due?": "Yes"}))
    assert paid_early[2] == "Move due date one cycle"
    shift = state(loans, "Move due date one cycle")["Parameters"]["Payload"]
    assert (shift["action"], shift["shift"]) == ("shift_date", "1 month")
    assert resource(loans, "Next cycle (paid early)") == "arn:aws:states:::states:startExecution"
    assert steps_only(walk(loans)) == [
        "Wait until 10 days before due",
        "Paid 10 days before due?",
        "Email reminder (10 days)",
        "Wait until 5 days before due",
        "Paid 5 days before due?",
        "Email final reminder (5 days)",
        "SMS final reminder (5 days)",
        "Final reminders sent",
    ]


def test_course_progress_reports(machines: dict[str, Any]) -> None:
    """Course started or last report sent -> wait 1 week -> active? -> fetch progress ->
    SMS and email to student and parent -> repeat after 7 days."""
    course = machines["course-progress-reports"]
    visited = steps_only(
        walk(
            course,
            {
                "Course still active?": "Yes",
                "Parent phone on file?": "Yes",
                "Parent email on file?": "Yes",
            },
        )
    )
    assert visited[:3] == ["Wait 1 week", "Course still active?", "Fetch weekly progress"]
    assert state(course, "Wait 1 week")["Seconds"] == 7 * 86400
    sends = [n for n in visited if n.startswith(("SMS", "Email"))]
    assert sends == [
        "SMS report to student",
        "Email report to student",
        "SMS report to parent",
        "Email report to parent",
    ]
    parent = state(course, "Email report to parent")["Parameters"]["Payload"]
    assert parent["to_attribute"] == "parent_email"
    assert resource(course, "Repeat for next week") == "arn:aws:states:::states:startExecution"


def test_course_recommendations(machines: dict[str, Any]) -> None:
    """Course completed -> fetch details and recommendations -> congratulation email ->
    wait 2 days -> feedback email -> wait up to 5 days for browsing -> else push if
    reachable else email -> wait up to 2 days and track conversion."""
    recs = machines["course-recommendations"]
    assert steps_only(walk(recs, {"Reachable by push?": "Yes"})) == [
        "Fetch course details",
        "Fetch course recommendations",
        "Congratulation email",
        "Wait 2 days",
        "Feedback email",
        "Browsed courses within 5 days?",
        "Reachable by push?",
        "Push next-course picks",
        "Track enrolment for 2 days",
        "No new enrolment",
    ]
    fetch = state(recs, "Fetch course recommendations")
    assert fetch["ResultPath"] == "$.data.recommendations"
    assert (
        recs["States"][recs["StartAt"]]["Branches"][1]["StartAt"]
        == "Watch for: Enrolled in another course"
    )


def test_churn_prevention(machines: dict[str, Any]) -> None:
    """Enters "about to churn" -> reachable by email? -> email with update notes and
    discount -> wait 24 h for login -> welcome-back email, or feedback email; not reachable
    by email -> push / SMS / WhatsApp with the same flow."""
    churn = machines["churn-prevention"]
    for channel, label in (
        ("email", "Email"),
        ("push", "Push"),
        ("SMS", "SMS"),
        ("WhatsApp", "WhatsApp"),
    ):
        path = f"Reachable by {channel}"
        back = steps_only(
            walk(
                churn,
                {"Best reachable channel?": path, f"Logged in within 24 h of {channel}?": EVENT},
            )
        )
        gone = steps_only(walk(churn, {"Best reachable channel?": path}))
        noun = label if label in ("SMS", "WhatsApp") else label.lower()
        assert f"Welcome-back {noun}" in back
        assert f"Feedback {noun}" in gone
        wait = state(churn, f"Logged in within 24 h of {channel}?")
        assert wait["TimeoutSeconds"] == 86400
    assert steps_only(walk(churn))[-1] == "No channel to reach"


def goal_follow_up(machine: dict[str, Any]) -> list[str]:
    """States a contact goes through after reaching the goal, up to "Goal reached"."""
    race = journey_race(machine)
    name = next(c["Next"] for c in race["Catch"] if c["ErrorEquals"] == ["Journeys.GoalReached"])
    visited = []
    while True:
        visited.append(name)
        state = machine["States"][name]
        if state["Type"] in ("Succeed", "Fail"):
            return visited
        name = state["Next"]


def journey_race(machine: dict[str, Any]) -> dict[str, Any]:
    top = machine["States"][machine["StartAt"]]
    return dict(machine["States"][top["Next"]] if top["Type"] == "Pass" else top)


def watched(machine: dict[str, Any]) -> list[str]:
    race = journey_race(machine)
    return [b["StartAt"] for b in race["Branches"][1:]]


def test_content_offer(machines: dict[str, Any]) -> None:
    """Opt-in for a lead magnet -> send the promised content -> start nurturing; extras:
    decision on whether it was opened, tag clickers as engaged, a goal."""
    offer = machines["content-offer"]
    visited = steps_only(walk(offer, {"Clicked through to the playbook?": "Yes"}))
    assert visited[0] == "Email the promised playbook"
    assert "Opened the playbook email?" in visited and "Tag: engaged" in visited
    assert visited[-2:] == ["Start the lead nurture workflow", "Handed to lead nurture"]
    hand_over = state(offer, "Start the lead nurture workflow")
    assert hand_over["Resource"] == "arn:aws:states:::sqs:sendMessage"
    assert hand_over["Parameters"]["MessageBody"]["workflow_id"] == "lead-nurture"
    assert watched(offer)[0].startswith("Watch for: ")


def test_chat_follow_up(machines: dict[str, Any]) -> None:
    """A live-chat conversation starts -> follow up by email; resend to non-openers, tag
    openers, thank responders."""
    chat = machines["chat-follow-up"]
    reachable = {"Do we have a valid email address?": "Yes"}
    answered = steps_only(walk(chat, {**reachable, "Rated the chat within 2 days?": EVENT}))
    assert answered[-3:] == [
        "Tag: answered the chat survey",
        "Thank the responder",
        "Responder thanked",
    ]
    opened = steps_only(walk(chat, {**reachable, "Opened the follow-up email?": "Yes"}))
    assert "Tag: opened the chat follow-up" in opened
    silent = steps_only(walk(chat, reachable))
    assert "Resend to non-openers (new subject)" in silent


def test_lead_nurture(machines: dict[str, Any]) -> None:
    """A series of emails with waits, behaviour tracking, ad-audience experience; move
    contacts who miss the goal to another workflow; tag contacts who opened nothing."""
    nurture = machines["lead-nurture"]
    visited = steps_only(walk(nurture, {"Missed the goal - where next?": "Opened none"}))
    emails = [n for n in visited if n.startswith("Email ")]
    assert emails == [
        "Email 1: the problem we solve",
        "Email 2: customer story",
        "Email 3: book a call",
    ]
    assert visited[0].startswith("Add to Facebook audience")
    assert visited[-3:] == [
        "Tag: opened nothing",
        "Move to cold-user reactivation",
        "Moved to reactivation",
    ]
    goal = nurture["States"][nurture["StartAt"]]["Branches"][1]
    assert goal["States"][goal["StartAt"]]["Parameters"]["Payload"]["signal"] == (
        "event:meeting_booked"
    )


def test_facebook_audience(machines: dict[str, Any]) -> None:
    """Add to a Facebook custom audience: pricing-page visitors, trial users who did not
    buy, readers of specific content; remove new customers (goal)."""
    fb = machines["facebook-audience"]
    for path in ("Visited the pricing page", "Trial ended without buying", "Read a buying guide"):
        visited = steps_only(walk(fb, {"Which audience?": path}))
        added = [n for n in visited if n.startswith("Add to")]
        assert len(added) == 1
        assert state(fb, added[0])["Parameters"]["Payload"]["network"] == "facebook"
    removals = goal_follow_up(fb)
    assert removals[-1] == "Goal reached"
    assert len([n for n in removals if n.startswith("Remove new customer")]) == 3


def test_interest_tags(machines: dict[str, Any]) -> None:
    """Tag by interest, add to an audience, move to an interest workflow, notify a team
    member for personal outreach."""
    interest = machines["interest-tags"]
    visited = steps_only(
        walk(
            interest,
            {
                "Which topic did they read?": "Email marketing",
                "Hot lead not yet flagged to sales?": "Yes",
            },
        )
    )
    assert visited[2:5] == [
        "Tag: interest email marketing",
        'Add to audience "Email marketing interest"',
        "Move to the lead nurture workflow",
    ]
    assert "Ask sales for personal outreach" in visited
    condition = state(interest, "Check: Which topic did they read?")["Parameters"]["Payload"]
    assert condition["paths"][0]["condition"]["started_by"] == "page_viewed"


def test_birthday_offer(machines: dict[str, Any]) -> None:
    """Every contact's birthday -> greeting with an offer; tag openers and redeemers; notify
    a team member."""
    birthday = machines["birthday-offer"]
    visited = steps_only(
        walk(birthday, {"Reachable by email?": "Yes", "Opened the birthday email?": "Yes"})
    )
    assert "Email: happy birthday + 20 % off" in visited
    assert "Tag: opened birthday email" in visited
    assert goal_follow_up(birthday) == [
        "Tag: redeemed birthday offer",
        "Tell customer care about the redemption",
        "Goal reached",
    ]


def test_anniversary_outreach(machines: dict[str, Any]) -> None:
    """Customer-since anniversary -> thank-you and special deal."""
    anniversary = machines["anniversary-outreach"]
    visited = steps_only(walk(anniversary, {"Reachable by email?": "Yes"}))
    assert "Email: thank-you + 15 % deal" in visited
    vip = steps_only(walk(anniversary, {"Reachable by email?": "Yes", "VIP customer?": "VIP"}))
    assert "Email: VIP thank-you + 25 % deal" in vip


def test_salesmanago_nurturing(machines: dict[str, Any]) -> None:
    """Lead-nurturing cycle of 3 messages started by a tag; wait boxes; condition on whether
    message 1 was read; SMS reminder for an unopened email; tags marking progress; moving
    the contact to a funnel stage with an alert to the lead's owner; an End box."""
    cycle = machines["salesmanago-nurturing"]
    unread = steps_only(
        walk(cycle, {"Can we text the lead?": "Yes", "Engaged with the cycle?": "Yes"})
    )
    messages = [n for n in unread if n.startswith("Message ")]
    assert len(messages) == 3
    assert "SMS reminder: message 1 unread" in unread
    assert "Funnel stage: New contact -> Prospect" in unread
    owner = state(cycle, "Alert the lead's owner")["Parameters"]["Payload"]
    assert owner["channel"] == "team" and owner["to_attribute"] == "owner_email"
    assert any(n.startswith("Progress tag") for n in unread)
    assert steps_only(walk(cycle))[-1] == "End"


def test_welcome_series(machines: dict[str, Any]) -> None:
    """Sender's welcome series."""
    welcome = machines["welcome-series"]
    visited = steps_only(
        walk(welcome, {"Opened any welcome email?": "Yes", "Which first-order offer?": "Offer A"})
    )
    emails = [n for n in visited if n.startswith("Welcome ")]
    assert emails[:3] == [
        "Welcome 1: thanks for joining",
        "Welcome 2: our best resources",
        "Welcome 3: choose your topics",
    ]
    assert emails[3].startswith("Welcome 4A")
    window = state(welcome, "Sending hours before welcome 2")
    assert window["TimestampPath"] == "$.schedule.until"


def test_webinar_reminders(machines: dict[str, Any]) -> None:
    """Webinar/event registration reminders and feedback."""
    webinar = machines["webinar-reminders"]
    visited = steps_only(walk(webinar, {"Attended the webinar?": "Yes"}))
    assert visited[0] == "Confirm the registration"
    assert "Reminder: the webinar is tomorrow" in visited
    assert "Email: thanks + feedback survey" in visited
    day_before = state(webinar, "Schedule: Wait until 1 day before")["Parameters"]["Payload"]
    assert (day_before["event_property"], day_before["offset_seconds"]) == ("starts_at", -86400)
    no_show = steps_only(walk(webinar))
    assert no_show[-2:] == ["Email: sorry we missed you + recording", "Recording sent"]
