"""Recurring payment reminders on the local stack: a borrower's due date starts the
journey; unpaid installments get a reminder 10 days before and an email + SMS 5 days
before; a paid installment moves the due date one cycle and the journey repeats.

Scenarios stand in the weeks before the harness's workday morning (2026-11-24), in
London's winter time (local time is UTC), so advancing journey time by days never makes
the stack's hourly sweep schedule catch up hour by hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.helpers.local import (
    Journeys,
    after,
    channels,
    contact_record,
    entered,
    first_run,
    runs,
)

pytestmark = pytest.mark.e2e

#: Wednesday 4 November 2026, 09:45 in London: 10 days before a 14 November due date,
#: a quarter of an hour before the 10:00 reminder.
TEN_DAYS_BEFORE = datetime(2026, 11, 4, 9, 45, tzinfo=UTC)
DUE = "2026-11-14"
#: Journey time while journeys take their first steps (a quarter of an hour is 1.5 s).
SETTING_UP = 600
DAY = 86400
WORKFLOW = "recurring-payment-reminders"


def borrower(name: str, **attributes: Any) -> dict[str, Any]:
    return {
        "attributes": {
            "first_name": name,
            "loan_id": f"L-{name.upper()}",
            "amount_due": "£120.00",
            "due_date": DUE,
            "installment_status": "due",
            **attributes,
        },
        "channels": {
            "email": {"address": f"{name.lower()}@example.com", "status": "subscribed"},
            "sms": {"address": "+447700900" + str(100 + len(name)), "status": "subscribed"},
        },
        "time_zone": "Europe/London",
    }


def test_an_unpaid_installment_is_reminded_10_days_then_5_days_before_it_is_due(
    journeys: Journeys,
) -> None:
    # GIVEN a borrower whose due date billing has just set (the attribute change enters her)
    journeys.at(TEN_DAYS_BEFORE, speed=SETTING_UP)
    paula = journeys.contact("paula", **borrower("Paula"))
    paula_execution = first_run(journeys, WORKFLOW, paula)
    # WHEN 10:00 comes, 10 days before the due date, and she has not paid
    first = journeys.messages(paula, 1)[0]
    # THEN she gets the first reminder by email, with her amount, loan and due date
    assert (first.channel, first.to, first.step_label) == (
        "email",
        "paula@example.com",
        "Email reminder (10 days)",
    )
    assert first.subject == f"Your installment of £120.00 is due on {DUE}"
    assert "for loan L-PAULA is" in first.body
    assert "Unsubscribe" not in first.body  # a service message
    entered(journeys, paula_execution, "Wait until 5 days before due")
    # WHEN five more days pass unpaid
    journeys.stack.clock.advance(5 * DAY)
    # THEN the final reminder goes by email and SMS, and the journey ends
    sent = journeys.messages(paula, 3)
    assert [(m.channel, m.step_label) for m in sent[1:]] == [
        ("email", "Email final reminder (5 days)"),
        ("sms", "SMS final reminder (5 days)"),
    ]
    assert sent[1].subject == f"5 days left: your installment is due on {DUE}"
    assert sent[2].body == (
        f"Reminder: your loan installment of £120.00 is due on {DUE}. "
        "Pay at https://pay.example.com/loans"
    )
    assert sent[1].at.startswith("2026-11-09T")
    assert journeys.finished(paula_execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(paula_execution), "Wait until 10 days before due") == [
        "Wait until 10 days before due",
        "Check: Paid 10 days before due?",
        "Paid 10 days before due?",
        "Email reminder (10 days)",
        "Schedule: Wait until 5 days before due",
        "Wait until 5 days before due",
        "Check: Paid 5 days before due?",
        "Paid 5 days before due?",
        "Email final reminder (5 days)",
        "SMS final reminder (5 days)",
        "Final reminders sent",
        "Journey completed",
    ]


def test_an_installment_paid_early_moves_the_due_date_and_the_next_cycle_begins(
    journeys: Journeys,
) -> None:
    # GIVEN a borrower who paid this installment as it was set (loan_paid enters him)
    journeys.at(TEN_DAYS_BEFORE, speed=SETTING_UP)
    pedro = journeys.contact("pedro", **borrower("Pedro", installment_status="paid"))
    journeys.event(pedro, "loan_paid", amount="£120.00")
    first_cycle = first_run(journeys, WORKFLOW, pedro)
    # WHEN 10:00 comes, 10 days before the due date
    # THEN nothing is sent: the due date moves one month, the next installment is due, and
    # the journey continues as a fresh execution for the next cycle
    assert journeys.finished(first_cycle)["status"] == "SUCCEEDED"
    assert after(journeys.path(first_cycle), "Paid 10 days before due?") == [
        "Paid 10 days before due?",
        "Move due date one cycle",
        "Mark next installment due",
        "Next cycle (paid early)",
        "Done: Next cycle (paid early)",
        "Journey completed",
    ]
    attributes = contact_record(journeys, pedro)["attributes"]
    assert (attributes["due_date"][:10], attributes["installment_status"]) == ("2026-12-14", "due")
    next_cycle = journeys.until(
        lambda: [e for e in runs(journeys, WORKFLOW, pedro) if e["name"].endswith("-r1")],
        10,
        "the next cycle never started",
    )[0]
    entered(journeys, next_cycle, "Wait until 10 days before due")
    # The repeat is the only new journey: the due-date change it made does not enter him
    # again (re-entry after 20 days), so he is not reminded twice next month
    assert len(runs(journeys, WORKFLOW, pedro)) == 2
    assert journeys.sent(pedro) == []


def test_paying_after_the_first_reminder_skips_the_final_one_and_closing_the_loan_ends_it(
    journeys: Journeys,
) -> None:
    # GIVEN two borrowers reminded 10 days before their due date
    journeys.at(TEN_DAYS_BEFORE, speed=SETTING_UP)
    quinn = journeys.contact("quinn", **borrower("Quinn"))
    rita = journeys.contact("rita", **borrower("Rita"))
    quinn_execution = first_run(journeys, WORKFLOW, quinn)
    rita_execution = first_run(journeys, WORKFLOW, rita)
    for contact, execution in ((quinn, quinn_execution), (rita, rita_execution)):
        journeys.messages(contact, 1)
        entered(journeys, execution, "Wait until 5 days before due")
    # WHEN Quinn pays, Rita closes her loan, and five days pass
    status, answer = journeys.request(
        "PUT", f"/v1/contacts/{quinn}", {"attributes": {"installment_status": "paid"}}
    )
    assert status == 200, answer
    journeys.event(rita, "loan_closed")
    assert journeys.finished(rita_execution)["status"] == "SUCCEEDED"
    journeys.stack.clock.advance(5 * DAY)
    # THEN Quinn gets no final reminder: his due date moves on and his next cycle begins
    assert journeys.finished(quinn_execution)["status"] == "SUCCEEDED"
    assert after(journeys.path(quinn_execution), "Paid 5 days before due?") == [
        "Paid 5 days before due?",
        "Move due date one cycle (after reminder)",
        "Mark next installment due (after reminder)",
        "Next cycle (paid after reminder)",
        "Done: Next cycle (paid after reminder)",
        "Journey completed",
    ]
    assert contact_record(journeys, quinn)["attributes"]["due_date"][:10] == "2026-12-14"
    # AND Rita's journey ended at the exit, before any final reminder
    assert after(journeys.path(rita_execution), "Wait until 5 days before due") == [
        "Wait until 5 days before due",
        "Loan closed",
        "Left the journey",
    ]
    assert channels(journeys.sent(quinn)) == ["email"]
    assert channels(journeys.sent(rita)) == ["email"]


@pytest.mark.xfail(
    strict=True,
    reason="Transactional email is skipped for a contact unsubscribed from marketing email: "
    "messaging.recipient() applies contacts.is_reachable (status must be subscribed) to "
    "every email, whatever the template's `transactional: true`.",
)
def test_a_borrower_who_left_marketing_email_still_gets_the_service_reminder(
    journeys: Journeys,
) -> None:
    # GIVEN a borrower who unsubscribed from marketing email (the workflow keeps such
    # contacts: `stop_on_unsubscribe: false`, "service messages: leaving marketing mail
    # does not stop them"; the reminder templates are `transactional: true`)
    journeys.at(TEN_DAYS_BEFORE, speed=SETTING_UP)
    body = borrower("Ursula")
    body["channels"]["email"]["status"] = "unsubscribed"
    ursula = journeys.contact("ursula", **body)
    ursula_execution = first_run(journeys, WORKFLOW, ursula)
    # WHEN 10:00 comes, 10 days before the due date
    entered(journeys, ursula_execution, "Wait until 5 days before due")
    # THEN the payment reminder still reaches her mailbox
    assert channels(journeys.sent(ursula)) == ["email"]
