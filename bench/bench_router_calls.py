"""AWS calls the router makes per tracked event, counted on the local stack.

Runs the real router (SQS event source mapping included) on the local stack and counts
every AWS API call its handler makes while routing one event, by operation:

- an event no workflow listens to,
- an event that starts one journey,
- an event that releases a waiting step (the contact sits in chat-follow-up's
  "Wait for the chat to close"),
- the same event delivered twice (the duplicate).

Usage: .venv/bin/python bench/bench_router_calls.py
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journeys.local.functions import FunctionHost  # noqa: E402
from journeys.local.stack import LocalStack  # noqa: E402
from tests.helpers.local import Journeys  # noqa: E402

_current = threading.local()
_calls: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)


def _count_calls() -> None:
    make_api_call = botocore.client.BaseClient._make_api_call
    run = FunctionHost._run

    def counted(self: Any, operation: str, params: Any) -> Any:
        label = getattr(_current, "label", None)
        if label:
            service = self.meta.service_model.service_name
            _calls[label][f"{service}:{operation}"] += 1
        return make_api_call(self, operation, params)

    def labelled(self: FunctionHost, spec: Any, event: Any) -> Any:
        _current.label = None
        if spec.logical_id == "RouterFunction":
            bodies = [record["body"] for record in event.get("Records", [])]
            _current.label = next((LABELS[b] for b in LABELS if any(b in x for x in bodies)), None)
        try:
            return run(self, spec, event)
        finally:
            _current.label = None

    botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
    FunctionHost._run = labelled  # type: ignore[method-assign]


LABELS: dict[str, str] = {}


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    _count_calls()
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with LocalStack(ROOT, time_scale=60, start_time=start, quiet=True) as stack:
        journeys = Journeys(stack)
        ana = journeys.contact(
            "ana",
            channels={"email": {"address": "ana@example.com", "status": "subscribed"}},
            time_zone="Europe/London",
        )
        cases = [
            ("no workflow matches", "nothing_listens_to_this", {}),
            ("starts one journey", "chat_started", {}),
        ]
        for label, name, properties in cases:
            event_id = f"bench-{name}"
            LABELS[event_id] = label
            journeys.event(ana, name, event_id=event_id, **properties)
            time.sleep(3)
        execution = journeys.execution("chat-follow-up", ana)
        journeys.until(
            lambda: "Wait for the chat to close (max 4 h)" in journeys.path(execution), 30
        )
        time.sleep(1)  # the wait's token is stored
        LABELS["bench-chat_closed"] = "releases a waiting step"
        journeys.event(ana, "chat_closed", event_id="bench-chat_closed")
        time.sleep(3)
        LABELS["bench-chat_started"] = "duplicate of an event"
        journeys.event(ana, "chat_started", event_id="bench-chat_started")
        time.sleep(3)
        journeys.stop_all()

    print("AWS calls made by the router for one tracked event (local stack, moto)")
    for label in (
        "no workflow matches",
        "starts one journey",
        "releases a waiting step",
        "duplicate of an event",
    ):
        counter = _calls.get(label, collections.Counter())
        dynamodb = sum(v for k, v in counter.items() if k.startswith("dynamodb:"))
        others = {k: v for k, v in counter.items() if not k.startswith("dynamodb:")}
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))
        print(f"- {label}: {sum(counter.values())} calls, DynamoDB {dynamodb}, other {others}")
        print(f"    {detail}")


if __name__ == "__main__":
    main()
