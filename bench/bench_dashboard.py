"""What the dashboard's refreshes cost: the statistics API's answers on the local stack,
in milliseconds and in AWS requests, as the number of running journeys grows.

The dashboard asks every 2 s while a tab is open: `GET /v1/stats` on the workflows page,
`GET /v1/workflows/{id}/stats` (with positions: who is where) on a workflow's page,
`GET /v1/contacts/{id}/timeline` on a contact's. Positions read one execution history per
running execution (at most 100), so that answer grows with the journeys under way: this
measures it with `--contacts` contacts (10, 50, 100 by default) parked in cart-abandonment's
two-hour wait (journey time stopped, so nobody moves while measuring). Each request is
repeated `--repeat` times; the figures are medians and the SDK calls the API handler made
per request (counted on the handler's boto3/pynamodb clients). Nothing is asserted.

Run: `make bench` or `.venv/bin/python bench/bench_dashboard.py [--contacts 10 50 100]`.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import statistics
import sys
import threading
import time
import urllib.request
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journeys.local.stack import LocalStack  # noqa: E402

MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
WORKFLOW = "cart-abandonment"
WAIT_STATE = "Checked out within 2 h?"

_calls: collections.Counter[str] = collections.Counter()
_counting = threading.local()
_original_make_api_call = botocore.client.BaseClient._make_api_call


def _counted(self: Any, operation: str, params: Any) -> Any:
    if getattr(_counting, "on", False):
        _calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
    return _original_make_api_call(self, operation, params)


def request(stack: LocalStack, path: str, body: Any = None, method: str = "GET") -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        stack.api_url + path,
        data=data,
        method=method,
        headers={"x-api-key": stack.api_key, "content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as answer:
        return json.loads(answer.read() or b"null")


def park(stack: LocalStack, count: int, start: int) -> None:
    """`count` more contacts waiting at the two-hour wait of cart abandonment."""
    for n in range(start, start + count):
        contact = f"bench-{n:04d}"
        request(
            stack,
            f"/v1/contacts/{contact}",
            {"channels": {"email": {"address": f"{contact}@example.com"}}},
            "PUT",
        )
        request(
            stack,
            "/v1/events",
            {"event_id": f"cart-{contact}", "contact_id": contact, "name": "added_to_cart"},
            "POST",
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        report = request(stack, f"/v1/workflows/{WORKFLOW}/stats")
        waiting = sum(1 for c in report["positions"]["contacts"] if c["state"] == WAIT_STATE)
        if waiting >= start + count - 1:
            return
        time.sleep(0.5)
    raise SystemExit(f"only {waiting} of {start + count - 1} contacts reached the wait")


def measure(stack: LocalStack, path: str, repeat: int) -> tuple[float, dict[str, float]]:
    times = []
    _calls.clear()
    for _ in range(repeat):
        started = time.perf_counter()
        request(stack, path)
        times.append((time.perf_counter() - started) * 1000)
    per_request = {name: count / repeat for name, count in sorted(_calls.items())}
    return statistics.median(times), per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    botocore.client.BaseClient._make_api_call = _counted  # type: ignore[method-assign]

    with LocalStack(ROOT, quiet=True, schedules=False, start_time=MORNING) as stack:
        # Count only what the API handler does, on the pool thread that runs it.
        assert stack.host is not None
        original_run = stack.host._run

        def run(spec: Any, event: Any) -> Any:
            _counting.on = spec.logical_id == "ApiFunction"
            try:
                return original_run(spec, event)
            finally:
                _counting.on = False

        stack.host._run = run  # type: ignore[method-assign]
        stack.clock.set_scale(60)  # contacts reach the wait; the wait lasts 2 min real
        parked = 1
        print(f"{'running':>8} {'request':<40} {'median ms':>10}  AWS requests per request")
        for target in args.contacts:
            park(stack, target - parked + 1, parked)
            parked = target + 1
            stack.clock.set_scale(1e-6)  # nobody moves while measuring
            paths = [
                "/v1/stats",
                f"/v1/workflows/{WORKFLOW}/stats",
                f"/v1/workflows/{WORKFLOW}/stats?positions=false",
                "/v1/contacts/bench-0001/timeline",
            ]
            for path in paths:
                median, calls = measure(stack, path, args.repeat)
                summary = ", ".join(f"{n} {c:g}" for n, c in calls.items())
                print(f"{target:>8} {path:<40} {median:>10.0f}  {summary}")
            stack.clock.set_scale(60)


if __name__ == "__main__":
    main()
