"""How fast the local stack takes events, and how long an event takes to become a message.

1. Events accepted per second by the local API: `--clients` threads (1, 4, 8) each POST
   /v1/events over HTTP (the API key, one event per request) for `--seconds` each, once
   on one keep-alive connection per client and once with a new connection per request;
   accepted (202) per second and the p50/p95 request latency, beside the API handler's
   own median time. The events are named `bench_ping`, which no workflow listens to, so
   the router stores them and refreshes segments but starts nothing; after each level the
   benchmark waits for the router to drain the queue and prints how fast it did.
2. Milliseconds from an event to its first outbox message, with no waits in between:
   webinar-reminders' first step, "Confirm the registration", emails at once (no quiet
   hours, no frequency cap, nothing before it but the journey's Parallel). Each of
   `--runs` fresh contacts registers (a new connection per POST); the time from sending
   the POST to the send function returning "sent" (when the outbox records the email) is
   split into the API request, the queue (SQS accepting the message -> the router's long
   poll handing it over), the router until it calls StartExecution, Step Functions from
   StartExecution to the send Task, and the send handler (render, consent, SES); the
   router's time inside AWS requests is broken down by operation.

Time runs at 1x (real time) from a weekday morning, so nothing is deferred. The figures
are this machine's (everything in one process on moto; the API serves one request at a
time, as one Lambda execution environment would). Nothing is asserted.

Run: `make bench` or `.venv/bin/python bench/bench_local_api.py [--seconds 3] [--runs 20]
[--connection keep-alive|new|both]`.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import logging
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journeys.local.functions import FunctionHost, Invocation  # noqa: E402
from journeys.local.stack import LocalStack  # noqa: E402

#: A Tuesday, 10:00 in London: inside every sending window.
MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
WORKFLOW = "webinar-reminders"
FIRST_STEP = "Confirm the registration"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class Api:
    """An HTTP client of the local API (one per thread): one keep-alive connection, or a
    new connection for every request (`fresh`)."""

    def __init__(self, stack: LocalStack, fresh: bool = False) -> None:
        url = urllib.parse.urlsplit(stack.api_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port
        self.fresh = fresh
        self.connection = http.client.HTTPConnection(self.host, self.port)
        self.base = url.path.rstrip("/")
        self.headers = {"x-api-key": stack.api_key, "content-type": "application/json"}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()  # one segment with headers
        if self.fresh:
            self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, self.port)
        self.connection.request(method, self.base + path, body=data, headers=self.headers)
        response = self.connection.getresponse()
        text = response.read().decode()
        return response.status, json.loads(text) if text else None

    def close(self) -> None:
        self.connection.close()


class Timings:
    """When (perf_counter) router invocations and sends ended, from the stack's observer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.router: dict[str, tuple[float, float]] = {}  # event_id -> (start, end)
        #: event_id -> seconds from SQS accepting the message to the router starting
        self.pickup: dict[str, float] = {}
        self.sent: dict[str, tuple[float, float]] = {}  # contact_id -> first send (start, end)
        self.routed = 0  # router records handled
        self.api_ms: list[float] = []  # API handler times, in order
        self.changed = threading.Condition(self.lock)

    def observe(self, invocation: Invocation) -> None:
        end = time.perf_counter()
        start = end - invocation.milliseconds / 1000
        started_epoch = time.time() - invocation.milliseconds / 1000
        name = invocation.function.logical_id
        event = invocation.event if isinstance(invocation.event, Mapping) else {}
        with self.changed:
            if name == "RouterFunction":
                for record in event.get("Records", []):
                    self.routed += 1
                    try:
                        event_id = str(json.loads(record["body"]).get("event_id", ""))
                    except (ValueError, KeyError):
                        continue
                    self.router.setdefault(event_id, (start, end))
                    sent_ms = record.get("attributes", {}).get("SentTimestamp")
                    if sent_ms is not None:  # moto stamps it with the real clock
                        self.pickup.setdefault(event_id, started_epoch - int(sent_ms) / 1000)
            elif name == "ApiFunction":
                self.api_ms.append(invocation.milliseconds)
            elif name == "SendFunction":
                result = invocation.result if isinstance(invocation.result, Mapping) else {}
                if result.get("status") == "sent" and event.get("step_label") == FIRST_STEP:
                    self.sent.setdefault(str(event.get("contact_id")), (start, end))
            self.changed.notify_all()

    def wait(self, check: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(check, timeout)


class CallTimer:
    """Times every AWS request of the process by the function whose invocation makes it
    (a wrapper on botocore's `BaseClient._make_api_call`, for this benchmark only)."""

    _RUN_CODE = FunctionHost._run.__code__

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: (function, service:operation, perf_counter at start, at end)
        self.calls: list[tuple[str, str, float, float]] = []
        self.on = False
        self._original = botocore.client.BaseClient._make_api_call

    def install(self) -> None:
        timer, original = self, self._original

        def timed(client: Any, operation: str, params: Any) -> Any:
            if not timer.on:
                return original(client, operation, params)
            started = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                ended = time.perf_counter()
                name = f"{client.meta.service_model.service_name}:{operation}"
                with timer.lock:
                    timer.calls.append((timer.caller(), name, started, ended))

        botocore.client.BaseClient._make_api_call = timed  # type: ignore[method-assign]

    def uninstall(self) -> None:
        botocore.client.BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def caller(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code is self._RUN_CODE:
                return str(frame.f_locals["spec"].logical_id)
            if frame.f_code.co_name == "_eval_service_task":
                return "state machine"
            frame = frame.f_back  # type: ignore[assignment]
        return "benchmark"

    def take(self) -> list[tuple[str, str, float, float]]:
        with self.lock:
            calls, self.calls = self.calls, []
        return calls


def queue_depth(stack: LocalStack) -> int:
    assert stack.deployment is not None
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.deployment.refs["EventsQueue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def make_contacts(stack: LocalStack, prefix: str, count: int) -> list[str]:
    api = Api(stack)
    contacts = []
    for n in range(count):
        contact_id = f"{prefix}-{n:03d}"
        status, answer = api.request(
            "PUT",
            f"/v1/contacts/{contact_id}",
            {
                "attributes": {"first_name": f"Guest {n}"},
                "channels": {"email": {"address": f"guest{n}@example.com"}},
                "time_zone": "Europe/London",
            },
        )
        assert status in (200, 201), answer
        contacts.append(contact_id)
    api.close()
    return contacts


def drain(stack: LocalStack, timings: Timings, timeout: float = 120) -> float:
    """Seconds until the events queue is empty (the router has caught up)."""
    started = time.perf_counter()
    while queue_depth(stack) and time.perf_counter() - started < timeout:
        time.sleep(0.05)
    return time.perf_counter() - started


# --- 1. Events accepted per second ---------------------------------------------------------


def _post_events(
    stack: LocalStack,
    contact_id: str,
    index: int,
    start: threading.Barrier,
    stop_at: list[float],
    latencies: list[float],
    errors: list[int],
    fresh: bool,
) -> None:
    """One client: POST /v1/events until `stop_at[0]`, one event per request."""
    api = Api(stack, fresh)
    start.wait()
    while time.perf_counter() < stop_at[0]:
        body = {
            "event_id": uuid.uuid4().hex,
            "contact_id": contact_id,
            "name": "bench_ping",
            "properties": {"client": index},
        }
        sent = time.perf_counter()
        try:
            status, _ = api.request("POST", "/v1/events", body)
        except (OSError, http.client.HTTPException):
            errors[index] += 1
            api.close()
            api = Api(stack, fresh)
            continue
        if status == 202:
            latencies.append((time.perf_counter() - sent) * 1000)
        else:
            errors[index] += 1
    api.close()


def bench_throughput(
    stack: LocalStack, timings: Timings, levels: list[int], seconds: float, modes: list[str]
) -> None:
    contacts = make_contacts(stack, f"tp{uuid.uuid4().hex[:6]}", max(levels))
    drain(stack, timings)
    print(
        f"\n1. POST /v1/events, one event per request, {seconds:g} s per level "
        f"({len(contacts)} contacts, event bench_ping, which starts no journey)"
    )
    print(
        f"{'connection':10} {'clients':>7} {'accepted':>8} {'per s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'errors':>6} {'API fn ms':>9}  router afterwards"
    )
    for mode, clients in [(mode, clients) for mode in modes for clients in levels]:
        latencies: list[list[float]] = [[] for _ in range(clients)]
        errors = [0] * clients
        routed_before = timings.routed
        api_ms_before = len(timings.api_ms)
        start = threading.Barrier(clients + 1)
        stop_at = [0.0]
        threads = [
            threading.Thread(
                target=_post_events,
                args=(
                    stack,
                    contacts[i % len(contacts)],
                    i,
                    start,
                    stop_at,
                    latencies[i],
                    errors,
                    mode == "new",
                ),
            )
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        stop_at[0] = time.perf_counter() + seconds
        began = time.perf_counter()
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
        every = [ms for per_client in latencies for ms in per_client]
        api_ms = timings.api_ms[api_ms_before:]
        backlog = queue_depth(stack)
        drained = drain(stack, timings)
        routed = timings.routed - routed_before
        print(
            f"{mode:10} {clients:7d} {len(every):8d} {len(every) / elapsed:7.1f} "
            f"{percentile(every, 0.5):7.1f} {percentile(every, 0.95):7.1f} {sum(errors):6d} "
            f"{percentile(api_ms, 0.5):9.1f}  {backlog} queued at the end, drained in "
            f"{drained:.1f} s ({routed / (elapsed + drained):.1f} events/s routed)"
        )
    print(
        "   (API fn ms: the API handler's median time; the local API serves one request at a "
        "time, as one Lambda execution environment would, so more clients queue rather than "
        "add throughput; the router competes for the same CPU.)"
    )


# --- 2. Event -> first outbox message ------------------------------------------------------


def bench_first_message(stack: LocalStack, timings: Timings, timer: CallTimer, runs: int) -> None:
    contacts = make_contacts(stack, f"lt{uuid.uuid4().hex[:6]}", runs + 1)
    drain(stack, timings)
    # A new connection per event, as a one-off call from a web app makes it (a keep-alive
    # connection would add the gateway's 40 ms Nagle delay, see part 1).
    api = Api(stack, fresh=True)
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    router_calls: list[dict[str, float]] = []
    failures = 0
    sfn = stack.client("stepfunctions")
    for n, contact_id in enumerate(contacts):
        event_id = f"{contact_id}-registered"
        body = {
            "event_id": event_id,
            "contact_id": contact_id,
            "name": "webinar_registered",
            "properties": {
                "webinar_id": "w-42",
                "webinar_title": "Journeys as code",
                "starts_at": "2026-12-03T16:00:00Z",
                "join_url": "https://live.example.com/w-42",
            },
        }
        timer.take()
        timer.on = True
        posted = time.perf_counter()
        status, answer = api.request("POST", "/v1/events", body)
        accepted = time.perf_counter()
        assert status == 202, answer
        sent = timings.wait(lambda c=contact_id: c in timings.sent, 20)  # type: ignore[misc]
        timer.on = False
        if not sent:
            failures += 1
            continue
        router_start, router_end = timings.router[event_id]
        send_start, send_end = timings.sent[contact_id]
        calls = timer.take()
        starts = [
            (begun, ended)
            for function, operation, begun, ended in calls
            if function == "RouterFunction" and operation == "stepfunctions:StartExecution"
        ]
        if n > 0 and starts:  # the first run warms the functions' threads up
            start_sent, start_answered = starts[0]
            parts["API request (POST -> 202)"].append((accepted - posted) * 1000)
            parts["queue: SQS accepted -> router starts"].append(timings.pickup[event_id] * 1000)
            parts["router: starts -> calls StartExecution"].append(
                (start_sent - router_start) * 1000
            )
            parts["StartExecution -> send Task starts"].append((send_start - start_sent) * 1000)
            parts["send handler (render, SES)"].append((send_end - send_start) * 1000)
            parts["event -> first outbox message"].append((send_end - posted) * 1000)
            parts["(router handler, whole)"].append((router_end - router_start) * 1000)
            parts["(StartExecution request itself)"].append((start_answered - start_sent) * 1000)
            by_operation: dict[str, float] = collections.defaultdict(float)
            for function, operation, begun, ended in calls:
                if function == "RouterFunction" and begun >= router_start - 0.001:
                    by_operation[operation] += (ended - begun) * 1000
            router_calls.append(by_operation)
        # The journey now waits for the day before the webinar: stop it, the next run
        # should not share the machine with it.
        for execution in sfn.list_executions(
            stateMachineArn=stack.state_machine_arn(WORKFLOW), statusFilter="RUNNING"
        )["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])
        time.sleep(0.2)
    api.close()
    measured = len(parts["event -> first outbox message"])
    print(
        f"\n2. Event -> first outbox message: {WORKFLOW}, webinar_registered -> "
        f'"{FIRST_STEP}" (email, its first step), {measured} runs after one warm-up'
        + (f", {failures} runs sent nothing in 20 s" if failures else "")
    )
    print(f"{'':38} {'median ms':>9} {'p95 ms':>7} {'min ms':>7}")
    for name, values in parts.items():
        print(
            f"{name:38} {statistics.median(values) if values else float('nan'):9.1f} "
            f"{percentile(values, 0.95):7.1f} {min(values) if values else float('nan'):7.1f}"
        )
    operations = sorted({op for run in router_calls for op in run})
    print("   router handler time inside AWS requests, median ms per event:")
    print(
        "   "
        + ", ".join(
            f"{op} {statistics.median([run.get(op, 0.0) for run in router_calls]):.1f}"
            for op in operations
        )
    )


PARTS = (
    "API request (POST -> 202)",
    "queue: SQS accepted -> router starts",
    "router: starts -> calls StartExecution",
    "StartExecution -> send Task starts",
    "send handler (render, SES)",
    "event -> first outbox message",
    "(router handler, whole)",
    "(StartExecution request itself)",
)


def moto_round_trip(stack: LocalStack, count: int = 50) -> float:
    """Median ms of one DynamoDB GetItem to the stack's moto server, idle machine."""
    assert stack.deployment is not None
    dynamodb = stack.client("dynamodb")
    table = stack.deployment.refs["ContactsTable"]
    times = []
    for n in range(count):
        started = time.perf_counter()
        dynamodb.get_item(TableName=table, Key={"contact_id": {"S": f"nobody-{n}"}})
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[5:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--connection",
        choices=["keep-alive", "new", "both"],
        default="both",
        help="one keep-alive connection per client, or a new one per request",
    )
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # Stopping an execution while a Task runs makes moto log a bogus States.Runtime error
    # (see bench/README.md); the benchmark stops every journey after its first message.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=UserWarning, module="aws_lambda_powertools")
    started = time.perf_counter()
    timings = Timings()
    timer = CallTimer()
    stack = LocalStack(ROOT, time_scale=1.0, start_time=MORNING, quiet=True)
    stack.observe(timings.observe)
    with stack:
        print(f"local stack up in {time.perf_counter() - started:.1f} s")
        print(f"one DynamoDB GetItem to moto, idle: median {moto_round_trip(stack):.1f} ms")
        modes = ["keep-alive", "new"] if args.connection == "both" else [args.connection]
        bench_throughput(stack, timings, args.clients, args.seconds, modes)
        timer.install()
        try:
            bench_first_message(stack, timings, timer, args.runs)
        finally:
            timer.uninstall()
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
