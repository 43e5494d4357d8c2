from __future__ import annotations

import json
import pytest

from tests.helpers.local import Journeys

pytestmark = pytest.mark.e2e


def test_explore(journeys: Journeys) -> None:
    ana = journeys.contact("ana", attributes={"first_name": "Ana"}, channels={"email": {"address": "ana@example.com"}}, time_zone="Europe/London")
    journeys.event(ana, "page_viewed", event_id="pv1", url="https://www.example.com/pricing")
    execution = journeys.execution("facebook-audience", ana)
    print(execution["name"])
    journeys.until(lambda: "Retarget for 60 days" in journeys.path(execution), 10)
    events = journeys.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    for e in events:
        print(json.dumps(e, default=str)[:400])
    for c in journeys.outbox(ana):
        print(c)
    journeys.stack.clock.advance(60 * 86400)
    journeys.finished(execution)
    print(journeys.path(execution))
    for c in journeys.outbox(ana):
        print(c)
