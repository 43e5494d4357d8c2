from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.e2e.test_welcome_series import feedback, labels, skip
from tests.helpers.local import Journeys

pytestmark = pytest.mark.e2e

LEAD = {
    "attributes": {"first_name": "Lee", "company": "Fernwood"},
    "channels": {"email": {"address": "lee@example.com", "status": "subscribed"}},
    "lists": {"subscribe": ["Leads"]},
    "time_zone": "Europe/London",
}


def test_explore(journeys: Journeys) -> None:
    journeys.at(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    lee = journeys.contact("lee", **LEAD)
    execution = journeys.execution("lead-nurture", lee)
    [email1] = journeys.messages(lee, 1)
    feedback(journeys, email1, "Click", "https://www.example.com/blog/triggered-emails?utm_source=journeys")
    skip(journeys, execution, "Wait 3 days after email 1")
    email2 = journeys.messages(lee, 2)[1]
    feedback(journeys, email2, "Click", "https://www.example.com/pricing?utm_source=journeys")
    skip(journeys, execution, "Wait 4 days after email 2")
    journeys.messages(lee, 3)
    skip(journeys, execution, "Give 7 days to book a call")
    journeys.finished(execution)
    print(labels(journeys, execution))
    for m in journeys.outbox(lee):
        print(m.at, m.channel, m.step_label, m.subject, m.status)
    print(journeys.request("GET", f"/v1/contacts/{lee}"))
    print(journeys.executions("salesmanago-nurturing", lee))
    arn = journeys.stack.state_machine_arn("salesmanago-nurturing")
    print([e["name"] for e in journeys.sfn.list_executions(stateMachineArn=arn)["executions"]])
