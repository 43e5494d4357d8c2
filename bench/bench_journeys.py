"""What one contact-journey of each reference workflow costs, measured on the local stack.

For each of the 20 workflows in workflows/, one or more scripted contacts go through a
representative path on the local stack (`journeys.local.stack.LocalStack`), driven over
its HTTP API like a web app would (contacts, events) and by what AWS would do between
resources (the hourly sweep for date triggers, SES open/click notifications on the
feedback topic). Each journey runs to its end; then the execution history and what the
benchmark observed are turned into the figures Step Functions, Lambda, DynamoDB and SES
bill for, and a price per 1,000 journeys. Nothing is asserted: the figures are printed.

What is counted, per journey (the root execution, plus what its contact caused)
-------------------------------------------------------------------------------
- state transitions: every state the execution entered (`*StateEntered` history events:
  Pass, Choice, Wait, Parallel and the states of its branches included), as Standard
  workflows bill. A `repeat` step's continuation (a new execution, the next run) is not
  driven: it is stopped when the measured run ends and is not counted.
- Lambda invocations and handler milliseconds (`LocalStack.observe`): the state machine's
  Task functions (payload `execution_id` = the execution), the statistics function on the
  execution's end (`detail.executionArn`), and the API, router and feedback invocations
  whose event names the journey's contact, from the action that triggers the journey to
  its end (contact creation before it is not counted). A router batch holding several
  measured contacts is shared between them. Other journeys the contact starts on the way
  (an event that also triggers another workflow, a `start_workflow` hand-off) are not
  counted: they are stopped and their executions excluded.
- DynamoDB requests: every botocore call in the process is seen (a wrapper on
  `BaseClient._make_api_call`, installed by this benchmark only); a call is attributed to
  the Lambda invocation it runs in (its frame), or to the execution whose direct service
  integration makes it (moto's interpreter frame). Request units are estimated from item
  sizes: a write is ceil(KB) WRU (1 for UpdateItem/DeleteItem, whose size is not known),
  2x in a transaction; a read is ceil(size/4 KB) RRU, halved when eventually consistent,
  2x in a transaction. Requests are exact; units are an estimate.
- messages: what the send function reports as sent, by channel (team alerts are emails).

Prices (us-east-1, on demand): Step Functions Standard $0.025 per 1,000 transitions;
Lambda $0.20 per 1M requests + $0.0000166667 per GB-second at 256 MB (measured handler
time on this machine, in process, against moto: not what AWS would measure); DynamoDB
$1.25 per million WRU, $0.25 per million RRU; SES $0.10 per 1,000 emails. SMS and mobile
push (SNS) are counted but not priced: their price depends on the destination country.

How time is crossed
-------------------
Journey time runs at `--speed` (600x: ten minutes a second) so that the time the code
takes barely moves the journey clock. Every `Wait` state (delays, sending windows,
`wait_until`, quiet-hour holds) is crossed by moving the clock to its end
(`clock.advance`). A `wait_for_event` timeout is converted to real seconds when its
task starts, so the script says, per wait, whether the contact answers (the event is
posted while the wait runs) or lets it time out: then the benchmark caps that timeout to
one real second and advances journey time by the full timeout, so the journey carries on
at the moment it would have on AWS. The stack's hourly sweep schedule is kept silent (the
stack starts in 2035 and journey time is then set back to 2026): catching up every skipped
hour after each jump would cost minutes, and the sweep is a fixed hourly cost, not a
per-journey one. The date-triggered workflows invoke the sweep function themselves, as the
schedule does; its cost is printed apart.

Run: `make bench` or `.venv/bin/python bench/bench_journeys.py [--only cart-abandonment]
[--paths]` (`--paths` prints every state each journey entered).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import botocore.client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journeys.compiler.pipeline import compile_paths  # noqa: E402
from journeys.local.functions import FunctionHost, Invocation  # noqa: E402
from journeys.local.stack import LocalStack  # noqa: E402
from tests.helpers.local import Journeys  # noqa: E402

LONDON = ZoneInfo("Europe/London")
#: The hourly sweep schedule is armed at this journey time, then the clock goes back to
#: `FIRST_DAY`: the schedule stays silent for the whole run (see the module notes).
ARMED_AT = datetime(2035, 1, 1, tzinfo=UTC)
FIRST_DAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 in London
DAY = 86400
TIMEOUT_CAP = 1.0  # real seconds a wait_for_event timeout lasts when the script lets it
#: The goal and exit watches wait a year; their timeout must never be capped.
UNCAPPED_FROM = 300 * DAY
POLL = 0.05
JOURNEY_DEADLINE = 60.0  # real seconds before a journey is reported as not finished

# Prices, us-east-1 on demand.
SFN_PER_TRANSITION = 0.025 / 1000
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_GB = 256 / 1024
DDB_PER_WRU = 1.25 / 1_000_000
DDB_PER_RRU = 0.25 / 1_000_000
SES_PER_EMAIL = 0.10 / 1000
EMAIL_CHANNELS = ("email", "team")

REPEAT_RUN = re.compile(r"-r\d+$")  # a repeat step's continuation (journeys.router)
END_EVENTS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
Key = tuple[str, ...]

# --- Counting ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one attribution key (an execution, a contact, the sweep) cost."""

    invocations: Counter[str] = field(default_factory=Counter)  # by function, weighted
    milliseconds: float = 0.0
    ddb_requests: Counter[str] = field(default_factory=Counter)  # by operation, weighted
    rru: float = 0.0
    wru: float = 0.0
    other_requests: Counter[str] = field(default_factory=Counter)  # service:operation
    ddb_by_source: Counter[str] = field(default_factory=Counter)  # requests by caller
    rru_by_source: Counter[str] = field(default_factory=Counter)
    wru_by_source: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)  # by channel
    skipped: Counter[str] = field(default_factory=Counter)
    http_calls: int = 0

    def add(self, other: Tally) -> None:
        self.invocations.update(other.invocations)
        self.milliseconds += other.milliseconds
        self.ddb_requests.update(other.ddb_requests)
        self.rru += other.rru
        self.wru += other.wru
        self.other_requests.update(other.other_requests)
        self.ddb_by_source.update(other.ddb_by_source)
        self.rru_by_source.update(other.rru_by_source)
        self.wru_by_source.update(other.wru_by_source)
        self.sent.update(other.sent)
        self.skipped.update(other.skipped)
        self.http_calls += other.http_calls


_DDB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
_DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _size(value: Any) -> int:
    """Bytes of a DynamoDB item, roughly (its wire JSON overstates names and types a bit)."""
    return len(json.dumps(value, default=str, separators=(",", ":"))) if value else 0


def request_units(operation: str, params: Mapping[str, Any], answer: Any) -> tuple[float, float]:
    """(RRU, WRU) of one DynamoDB request, estimated from the sizes involved."""
    answer = answer if isinstance(answer, Mapping) else {}
    consistent = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "PutItem":
        return 0.0, max(1, math.ceil(_size(params.get("Item")) / 1024))
    if operation in ("UpdateItem", "DeleteItem"):
        return 0.0, 1.0
    if operation == "BatchWriteItem":
        items = [r for requests in params.get("RequestItems", {}).values() for r in requests]
        return 0.0, float(sum(max(1, math.ceil(_size(i) / 1024)) for i in items))
    if operation == "TransactWriteItems":
        return 0.0, 2.0 * len(params.get("TransactItems", []))
    if operation == "GetItem":
        return consistent * max(1, math.ceil(_size(answer.get("Item")) / 4096)), 0.0
    if operation in ("Query", "Scan"):
        return consistent * max(1, math.ceil(_size(answer.get("Items")) / 4096)), 0.0
    if operation == "BatchGetItem":
        found = [i for items in answer.get("Responses", {}).values() for i in items]
        return float(sum(max(1, math.ceil(_size(i) / 4096)) for i in found) or 1), 0.0
    if operation == "TransactGetItems":
        return 2.0 * len(params.get("TransactItems", [])), 0.0
    return 0.0, 0.0


class Meter:
    """Attributes every Lambda invocation and AWS request of the process to a key:
    ("exec", arn), ("contact", id) while that contact is measured, ("sweep",), ("other",)."""

    _RUN_CODE = FunctionHost._run.__code__

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tallies: dict[Key, Tally] = {}
        self.measuring: set[str] = set()
        self.stats_done: set[str] = set()  # executions the statistics function has seen
        self.feedback_seen: Counter[str] = Counter()  # feedback invocations by contact
        self._original = botocore.client.BaseClient._make_api_call

    def tally(self, key: Key) -> Tally:
        return self.tallies.setdefault(key, Tally())

    def install(self, stack: LocalStack) -> None:
        meter, original = self, self._original

        def counted(client: Any, operation: str, params: Any) -> Any:
            answer: Any = None
            try:
                answer = original(client, operation, params)
                return answer
            finally:
                meter.count_request(
                    client.meta.service_model.service_name, operation, params, answer
                )

        botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
        stack.observe(self.observe)

    def uninstall(self) -> None:
        botocore.client.BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    # --- attribution ---------------------------------------------------------------------

    def keys_of(self, function: str, event: Any) -> list[tuple[Key, float]]:
        if isinstance(event, Mapping):
            if event.get("execution_id"):
                return [(("exec", str(event["execution_id"])), 1.0)]
            detail = event.get("detail")
            if function == "StatsFunction" and isinstance(detail, Mapping):
                return [(("exec", str(detail.get("executionArn"))), 1.0)]
        if function == "SweepFunction":
            return [(("sweep",), 1.0)]
        text = json.dumps(event, default=str)
        found = [c for c in list(self.measuring) if c in text]
        if found:
            return [(("contact", c), 1.0 / len(found)) for c in found]
        return [(("other",), 1.0)]

    def _caller(self) -> tuple[str, list[tuple[Key, float]]]:
        """Who makes the AWS request being counted: (source, keys). The source is the
        function whose invocation runs it, or "state machine" for a direct integration."""
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code is self._RUN_CODE:
                function = frame.f_locals["spec"].logical_id
                return function, self.keys_of(function, frame.f_locals["event"])
            if frame.f_code.co_name == "_eval_service_task" and "env" in frame.f_locals:
                data = frame.f_locals["env"].states.context_object.context_object_data
                return "state machine", [(("exec", str(data["Execution"]["Id"])), 1.0)]
            frame = frame.f_back  # type: ignore[assignment]
        return "none", [(("other",), 1.0)]

    def count_request(self, service: str, operation: str, params: Any, answer: Any) -> None:
        source, keys = self._caller()
        rru, wru = (0.0, 0.0)
        if service == "dynamodb":  # a refused (conditional) write costs what it would
            rru, wru = request_units(operation, params or {}, answer)
        with self.lock:
            for key, weight in keys:
                tally = self.tally(key)
                if service == "dynamodb":
                    tally.ddb_requests[operation] += weight
                    tally.rru += rru * weight
                    tally.wru += wru * weight
                    tally.ddb_by_source[source] += weight
                    tally.rru_by_source[source] += rru * weight
                    tally.wru_by_source[source] += wru * weight
                else:
                    tally.other_requests[f"{service}:{operation}"] += weight

    def observe(self, invocation: Invocation) -> None:
        function = invocation.function.logical_id
        event = invocation.event
        keys = self.keys_of(function, event)
        result = invocation.result if isinstance(invocation.result, Mapping) else {}
        with self.lock:
            for key, weight in keys:
                tally = self.tally(key)
                tally.invocations[function] += weight
                tally.milliseconds += invocation.milliseconds * weight
                if function == "SendFunction" and not invocation.errored:
                    channel = str(result.get("channel") or event.get("channel") or "?")
                    if result.get("status") == "sent":
                        tally.sent[channel] += weight
                    elif result.get("status") == "skipped":
                        tally.skipped[f"{channel}: {result.get('reason')}"] += weight
                if function == "ConnectorFunction":
                    tally.http_calls += 1
                if function == "FeedbackFunction" and key[0] == "contact":
                    self.feedback_seen[key[1]] += 1
            if function == "StatsFunction" and keys[0][0][0] == "exec":
                self.stats_done.add(keys[0][0][1])


class ServerErrors(logging.Filter):
    """Counts the moto server's "Error on request" logs (and keeps them off the output)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Error on request" not in message:
            return True
        self.count += 1
        self.last = message.strip().splitlines()[-1]
        return False


class TimeoutCap:
    """Caps the real duration of wait_for_event timeouts while `seconds` is set.

    The engine converts a Task's `TimeoutSeconds` with `clock.real_seconds` when the task
    starts; the benchmark sets the cap before a wait it lets time out and advances journey
    time by the full timeout once the wait has started. Waits of a year (goal and exit
    watches) are never capped; Wait states only nap for at most 0.2 s anyway."""

    def __init__(self, clock: Any) -> None:
        self.seconds: float | None = None
        plain = clock.real_seconds

        def real_seconds(seconds: float) -> float:
            real = float(plain(seconds))
            if self.seconds is None or seconds >= UNCAPPED_FROM:
                return real
            return min(real, self.seconds)

        clock.real_seconds = real_seconds


# --- Scenarios -----------------------------------------------------------------------------

Action = Callable[["Ctx"], None]


@dataclass
class Scenario:
    workflow: str
    path: str  # the path this contact takes, in words
    contact: Callable[[Ctx], dict[str, Any]] | dict[str, Any]
    trigger: Action
    #: The wait_for_event steps the contact meets, in order: an answer, or None to let the
    #: wait time out.
    waits: list[tuple[str, Action | None]] = field(default_factory=list)
    #: Done when the execution enters the state (before any Wait there is crossed).
    on_enter: dict[str, Action] = field(default_factory=dict)
    starts_at: tuple[int, int] = (10, 0)  # London time the scenario begins


class Ctx:
    """What a scenario's actions can do: the API, SES feedback, the sweep."""

    def __init__(self, bench: Bench, contact_id: str, workflow: str) -> None:
        self.bench = bench
        self.contact_id = contact_id
        self.workflow = workflow

    @property
    def now(self) -> datetime:
        return self.bench.stack.clock.now()

    @property
    def today(self) -> datetime:
        return self.now.astimezone(LONDON)

    def event(self, name: str, *, settle: bool = False, **properties: Any) -> None:
        occurred_at = properties.pop("occurred_at", None)
        body: dict[str, Any] = {
            "event_id": f"{self.contact_id}-{name}-{uuid.uuid4().hex[:8]}",
            "contact_id": self.contact_id,
            "name": name,
            "properties": properties,
        }
        if occurred_at is not None:
            body["occurred_at"] = occurred_at
        status, answer = self.bench.api.request("POST", "/v1/events", body)
        assert status == 202, answer
        if settle:
            self.bench.settle()

    def events(self, *names_and_properties: tuple[str, dict[str, Any]]) -> None:
        """Several events in one request (POST /v1/events/batch)."""
        batch = [
            {
                "event_id": f"{self.contact_id}-{name}-{uuid.uuid4().hex[:8]}",
                "contact_id": self.contact_id,
                "name": name,
                "properties": properties,
            }
            for name, properties in names_and_properties
        ]
        status, answer = self.bench.api.request("POST", "/v1/events/batch", {"events": batch})
        assert status == 202, answer

    def put(self, **body: Any) -> None:
        status, answer = self.bench.api.request("PUT", f"/v1/contacts/{self.contact_id}", body)
        assert status in (200, 201), answer

    def sweep(self) -> None:
        """One run of the hourly sweep now, as its EventBridge schedule invokes it."""
        self.bench.stack.invoke("SweepFunction", _scheduled_event(self.now))
        with self.bench.meter.lock:  # every contact made so far is in the table
            run = self.bench.meter.tallies.pop(("sweep",), Tally())
        self.bench.sweeps.append((self.bench.serial, run))

    def feedback(self, step_id: str, kind: str, link: str | None = None) -> None:
        """The contact opens (or clicks in) the email step `step_id` sent: SES publishes the
        event on the feedback topic, whose subscription invokes the feedback function."""
        outbox = self.bench.stack.outbox
        assert outbox is not None and self.bench.stack.deployment is not None
        entry = next(
            e
            for e in outbox.entries(contact_id=self.contact_id, workflow_id=self.workflow)
            if e.step_id == step_id and e.channel == "email"
        )
        at = self.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        record: dict[str, Any] = {
            "eventType": kind,
            "mail": {
                "timestamp": entry.at,
                "messageId": entry.message_id,
                "destination": [entry.to],
                "tags": {
                    "contact_id": [entry.contact_id],
                    "workflow_id": [entry.workflow_id],
                    "step_id": [entry.step_id],
                },
            },
        }
        if kind == "Open":
            record["open"] = {"timestamp": at, "userAgent": "Mail", "ipAddress": "192.0.2.1"}
        else:
            record["click"] = {"timestamp": at, "link": link, "ipAddress": "192.0.2.1"}
        seen = self.bench.meter.feedback_seen[self.contact_id]
        topic = self.bench.stack.deployment.refs["FeedbackTopic"]
        self.bench.stack.client("sns").publish(TopicArn=topic, Message=json.dumps(record))
        _until(lambda: self.bench.meter.feedback_seen[self.contact_id] > seen, 10, "feedback")
        self.bench.settle()  # the email_opened / email_clicked event reached the router


def _scheduled_event(moment: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/bench-sweep"],
        "detail": {},
    }


def event(name: str, **properties: Any) -> Action:
    return lambda ctx: ctx.event(name, **properties)


def put(**body: Any) -> Action:
    return lambda ctx: ctx.put(**body)


def opened(step_id: str) -> Action:
    return lambda ctx: ctx.feedback(step_id, "Open")


def clicked(step_id: str, link: str) -> Action:
    return lambda ctx: ctx.feedback(step_id, "Click", link)


def person(name: str, *channels: str, **attributes: Any) -> dict[str, Any]:
    addresses = {
        "email": f"{name.lower()}@example.com",
        "sms": "+447700900123",
        "push": f"{name.lower()}-phone-token",
    }
    return {
        "attributes": {"first_name": name, "last_name": "Doe", **attributes},
        "channels": {c: {"address": addresses[c], "status": "subscribed"} for c in channels},
        "time_zone": "Europe/London",
    }


def _day(ctx: Ctx, days: int = 0) -> str:
    return (ctx.today + timedelta(days=days)).date().isoformat()


def scenarios() -> list[Scenario]:
    """One representative path per workflow (two where a short one is cheap to add).
    The date-triggered workflows come first: the sweep they need reads every contact."""
    webinar = {
        "webinar_id": "w-42",
        "webinar_title": "Journeys as code",
        "join_url": "https://live.example.com/w-42",
        "recording_url": "https://live.example.com/w-42/recording",
        "slides_url": "https://live.example.com/w-42/slides",
    }
    course = {"course_id": "python-data", "course_name": "Python for data"}
    return [
        Scenario(
            "birthday-offer",
            "coupon by email, opened, expired unused",
            lambda ctx: person("Ana", "email", birthday=f"1990-{ctx.today:%m-%d}"),
            lambda ctx: ctx.sweep(),
            on_enter={"Give them 3 days to open": opened("birthday-email")},
            starts_at=(8, 30),
        ),
        Scenario(
            "anniversary-outreach",
            "regular customer: deal by email, email reminder, expired",
            lambda ctx: person(
                "Ben",
                "email",
                customer_since=f"{ctx.today.year - 3}-{ctx.today:%m-%d}",
                lifetime_value=200,
            ),
            lambda ctx: ctx.sweep(),
            starts_at=(9, 30),
        ),
        Scenario(
            "app-downloads",
            "never downloads: SMS, email, final SMS",
            person("Cid", "email", "sms"),
            event("checkout_completed", order_id="A-1001"),
            waits=[
                ("Downloaded within 1 h of SMS?", None),
                ("Downloaded within 24 h of email?", None),
            ],
        ),
        Scenario(
            "cart-abandonment",
            "no checkout in 2 h: similar products by email",
            person("Dee", "email", cart_items=2),
            event("added_to_cart", cart_items=2),
            waits=[("Checked out within 2 h?", None)],
        ),
        Scenario(
            "cart-abandonment",
            "checks out within 2 h: nothing sent",
            person("Eve", "email", cart_items=2),
            event("added_to_cart", cart_items=2),
            waits=[("Checked out within 2 h?", event("checkout_completed", order_id="A-1002"))],
        ),
        Scenario(
            "chat-follow-up",
            "chat closed, survey email answered, thanked",
            person("Fay", "email"),
            event("chat_started", conversation_id="c-77", agent_name="Sam"),
            waits=[
                (
                    "Wait for the chat to close (max 4 h)",
                    event("chat_closed", conversation_id="c-77"),
                ),
                (
                    "Rated the chat within 2 days?",
                    event("survey_answered", survey="chat-csat", score=5),
                ),
            ],
        ),
        Scenario(
            "churn-prevention",
            "logins dropped: email offer, back within 24 h, welcome-back email",
            person("Gus", "email"),
            lambda ctx: ctx.event(
                "logged_in", occurred_at=(ctx.now - timedelta(days=20)).isoformat()
            ),
            waits=[("Logged in within 24 h of email?", event("logged_in"))],
        ),
        Scenario(
            "cold-user-reactivation",
            "score fell below -100: two emails, back within 10 days",
            person("Hal", "email", score=0),
            put(attributes={"score": -150}),
            waits=[
                ("Logged in within 2 days?", None),
                ("Logged in within 10 days?", event("logged_in")),
            ],
        ),
        Scenario(
            "content-offer",
            "playbook not opened: resend, handed to lead nurture",
            person("Ida", "email"),
            put(lists={"subscribe": ["Email Automation Playbook"]}),
        ),
        Scenario(
            "course-progress-reports",
            "one weekly report (run 1 of up to 52): SMS+email to student and parent",
            person(
                "Kai",
                "email",
                "sms",
                course_status="active",
                parent_name="Mrs Lee",
                parent_phone="+447700900456",
                parent_email="parent@example.com",
            ),
            event("course_started", **course),
        ),
        Scenario(
            "course-recommendations",
            "did not browse courses: congrats, feedback, picks by email",
            person("Lin", "email"),
            event("course_completed", **course),
            waits=[("Browsed courses within 5 days?", None)],
        ),
        Scenario(
            "engagement-scoring",
            "form submitted: score +10",
            person("Max", "email"),
            event("form_submitted", form="contact-us"),
        ),
        Scenario(
            "facebook-audience",
            "pricing-page visitor: in the audience for 60 days",
            person("Ned", "email"),
            event("page_viewed", url="https://www.example.com/pricing"),
        ),
        Scenario(
            "free-trial-to-paid",
            "no upgrade in the trial: offer, cart email, pays within 24 h",
            person("Oli", "email", courses_in_cart=1),
            event("trial_started", plan="monthly"),
            waits=[
                ("Subscribed within 7 days?", None),
                ("Paid within 48 h?", None),
                ("Paid within 24 h?", event("payment_completed", amount=29)),
            ],
        ),
        Scenario(
            "interest-tags",
            "email-marketing reader, hot lead: tagged, audience, nurture, sales alerted",
            person("Pam", "email", score=60),
            event("page_viewed", url="https://www.example.com/blog/email-marketing/subject-lines"),
        ),
        Scenario(
            "lead-nurture",
            "three emails, opened the first, no call: nurture finished",
            person("Quy", "email"),
            put(lists={"subscribe": ["Leads"]}),
            on_enter={"Wait 3 days after email 1": opened("nurture-1")},
        ),
        Scenario(
            "recurring-payment-reminders",
            "due date set, unpaid: reminders 10 and 5 days before (email, email+SMS)",
            person("Rui", "email", "sms", installment_status="due", amount_due=120, loan_id="L-9"),
            lambda ctx: ctx.put(attributes={"due_date": _day(ctx, 20)}),
        ),
        Scenario(
            "salesmanago-nurturing",
            "tagged for the cycle: three emails, read and clicked, handed to the owner",
            person("Sue", "email", "sms", company="Acme", owner_email="owner@example.com"),
            put(tags={"add": ["nurture-cycle"]}),
            on_enter={
                "Wait box: 3 days": opened("message-1"),
                "Wait box: 4 days": clicked("message-2", "https://www.example.com/case-study"),
            },
        ),
        Scenario(
            "webinar-reminders",
            "registered 3 days ahead, attended, answered the survey",
            person("Tom", "email"),
            lambda ctx: ctx.event(
                "webinar_registered",
                starts_at=f"{_day(ctx, 3)}T16:00:00Z",
                **webinar,
            ),
            waits=[
                (
                    "Answered the survey within 3 days?",
                    event("survey_answered", survey="webinar-feedback", score=9),
                )
            ],
            on_enter={
                "Wait until the next morning": lambda ctx: ctx.event(
                    "webinar_attended", settle=True, webinar_id="w-42"
                )
            },
        ),
        Scenario(
            "welcome-series",
            "opened welcome 1: four emails (A/B offer or holdout)",
            person("Uma", "email"),
            put(lists={"subscribe": ["Newsletter"]}),
            on_enter={"Wait 2 days after welcome 1": opened("welcome-1")},
        ),
        Scenario(
            "window-shoppers",
            "repeat browser (4 views), never buys: on-site note, email, SMS code",
            person("Vic", "email", "sms"),
            lambda ctx: ctx.events(
                *[("product_viewed", {"product_name": "Trail shoes", "n": n}) for n in range(4)]
            ),
            waits=[
                ("Checked out within 60 min?", None),
                ("Checked out within 30 min?", None),
                ("Checked out within 12 h?", None),
            ],
        ),
    ]


# --- Driving a journey ---------------------------------------------------------------------


@dataclass
class Result:
    scenario: Scenario
    contact_id: str
    execution_arn: str
    status: str
    end_state: str
    transitions: int
    tally: Tally
    real_seconds: float
    journey_days: float
    path: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def emails(self) -> float:
        return sum(self.tally.sent[c] for c in EMAIL_CHANNELS)

    @property
    def lambda_requests(self) -> float:
        return sum(self.tally.invocations.values())

    @property
    def gb_seconds(self) -> float:
        return self.tally.milliseconds / 1000 * LAMBDA_GB

    def costs(self) -> dict[str, float]:
        """Dollars per 1,000 journeys like this one, by service."""
        return {
            "sfn": 1000 * self.transitions * SFN_PER_TRANSITION,
            "lambda": 1000
            * (self.lambda_requests * LAMBDA_PER_REQUEST + self.gb_seconds * LAMBDA_PER_GB_SECOND),
            "dynamodb": 1000 * (self.tally.wru * DDB_PER_WRU + self.tally.rru * DDB_PER_RRU),
            "ses": 1000 * self.emails * SES_PER_EMAIL,
        }


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def _flatten(states: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _flatten(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _flatten(processor["States"])


def _json_path(document: Any, path: str) -> Any:
    value = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


class Bench:
    def __init__(self, stack: LocalStack, meter: Meter) -> None:
        self.stack = stack
        self.meter = meter
        self.api = Journeys(stack)
        self.sfn = stack.client("stepfunctions")
        self.sqs = stack.client("sqs")
        self.cap = TimeoutCap(stack.clock)
        assert stack.deployment is not None
        self.queue_url = stack.deployment.refs["EventsQueue"]
        self.run_id = uuid.uuid4().hex[:6]
        self.serial = 0
        self.definitions: dict[str, dict[str, dict[str, Any]]] = {}
        self.sweeps: list[tuple[int, Tally]] = []  # (contacts in the table, one run)

    # --- helpers -----------------------------------------------------------------------

    def new_contact_id(self) -> str:
        # Same length for all, so no id is a substring of another (attribution searches).
        self.serial += 1
        return f"bj{self.run_id}-{self.serial:03d}"

    def settle(self, timeout: float = 20) -> None:
        """Until the events queue is empty and nothing in it is being processed."""

        def empty() -> bool:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            return all(int(v) == 0 for v in attributes.values())

        _until(empty, timeout, "the events queue never emptied")

    def move_to_next_morning(self, hour: int, minute: int) -> None:
        """Journey time forward to the next weekday at hour:minute in London."""
        now = self.stack.clock.now()
        local = now.astimezone(LONDON)
        target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        while target <= local + timedelta(minutes=5) or target.weekday() >= 5:
            target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
        self.stack.clock.advance((target.astimezone(UTC) - now).total_seconds())

    def states_of(self, workflow: str) -> dict[str, dict[str, Any]]:
        if workflow not in self.definitions:
            arn = self.stack.state_machine_arn(workflow)
            definition = json.loads(
                self.sfn.describe_state_machine(stateMachineArn=arn)["definition"]
            )
            self.definitions[workflow] = dict(_flatten(definition["States"]))
        return self.definitions[workflow]

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.sfn.get_execution_history(
                executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
            )
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return sorted(events, key=lambda e: e["id"])

    def executions_of(self, contact_id: str) -> list[dict[str, Any]]:
        assert self.stack.deployment is not None
        found = []
        for arn in self.stack.deployment.state_machines.values():
            for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                found += [e for e in page["executions"] if f"_{contact_id}_" in e["name"]]
        return found

    # --- one journey ---------------------------------------------------------------------

    def run(self, scenario: Scenario) -> Result:
        contact_id = self.new_contact_id()
        ctx = Ctx(self, contact_id, scenario.workflow)
        self.cap.seconds = None
        self.move_to_next_morning(*scenario.starts_at)
        body = scenario.contact(ctx) if callable(scenario.contact) else scenario.contact
        ctx.put(**body)
        self.settle()
        started_real = time.perf_counter()
        started = self.stack.clock.now()
        with self.meter.lock:
            self.meter.measuring.add(contact_id)
        waits = list(scenario.waits)
        self._cap_for(waits)
        scenario.trigger(ctx)
        # `<workflow>_<contact>_<event>`, or `<workflow[:24]>_<contact, cleaned and cut>__<digest>`
        # (journeys.router.execution_name); contact ids here are 12 characters long.
        marker = f"_{contact_id}_"
        machine = self.stack.state_machine_arn(scenario.workflow)
        execution = _until(
            lambda: next(
                (
                    e
                    for e in self.sfn.list_executions(stateMachineArn=machine)["executions"]
                    if marker in e["name"] and not REPEAT_RUN.search(e["name"])
                ),
                None,
            ),
            20,
            f"{contact_id} never entered {scenario.workflow}",
        )
        arn = execution["executionArn"]
        note = self._drive(scenario, ctx, arn, waits)
        history = self.history(arn)
        ended = history[-1]["type"] in END_EVENTS
        if ended:
            try:
                _until(lambda: arn in self.meter.stats_done, 10, "no statistics for the end")
            except TimeoutError:
                note = (note + "; " if note else "") + "the statistics function never ran"
        self.settle()
        with self.meter.lock:
            self.meter.measuring.discard(contact_id)
        for other in self.executions_of(contact_id):
            if other["status"] == "RUNNING":
                self.sfn.stop_execution(executionArn=other["executionArn"])
        self.cap.seconds = None
        entered = [e for e in history if e["type"].endswith("StateEntered")]
        tally = Tally()
        with self.meter.lock:
            tally.add(self.meter.tally(("exec", arn)))
            tally.add(self.meter.tally(("contact", contact_id)))
        return Result(
            scenario=scenario,
            contact_id=contact_id,
            execution_arn=arn,
            status=history[-1]["type"].removeprefix("Execution") if ended else "RUNNING",
            end_state=_name(entered[-1]) if entered else "",
            transitions=len(entered),
            tally=tally,
            real_seconds=time.perf_counter() - started_real,
            journey_days=(self.stack.clock.now() - started).total_seconds() / DAY,
            path=[_name(e) for e in entered],
            note=note,
        )

    def _cap_for(self, waits: list[tuple[str, Action | None]]) -> None:
        """Cap the next wait_for_event's timeout if the script lets it time out."""
        self.cap.seconds = TIMEOUT_CAP if not waits or waits[0][1] is None else None

    def _drive(
        self, scenario: Scenario, ctx: Ctx, arn: str, waits: list[tuple[str, Action | None]]
    ) -> str:
        states = self.states_of(scenario.workflow)
        handled: set[int] = set()
        deadline = time.monotonic() + JOURNEY_DEADLINE
        while True:
            history = self.history(arn)
            for entry in history:
                if entry["id"] in handled or "stateEnteredEventDetails" not in entry:
                    continue
                handled.add(entry["id"])
                name = _name(entry)
                action = scenario.on_enter.get(name)
                if action is not None:
                    action(ctx)
                state = states.get(name, {})
                if state.get("Type") == "Wait":
                    self._cross_wait(state, entry)
                elif _waits_for_event(name, state):
                    self._meet_wait(ctx, name, state, waits)
            if history and history[-1]["type"] in END_EVENTS:
                return ""
            if time.monotonic() > deadline:
                self.sfn.stop_execution(executionArn=arn)
                entered = [_name(e) for e in history if "stateEnteredEventDetails" in e]
                return f"stopped after {JOURNEY_DEADLINE:.0f} s at {entered[-1]!r}"
            time.sleep(POLL)

    def _cross_wait(self, state: Mapping[str, Any], entry: Mapping[str, Any]) -> None:
        details = entry["stateEnteredEventDetails"]
        if "Seconds" in state:
            end = entry["timestamp"].astimezone(UTC) + timedelta(seconds=state["Seconds"])
        elif "TimestampPath" in state:
            text = _json_path(json.loads(details["input"]), state["TimestampPath"])
            end = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        elif "Timestamp" in state:
            end = datetime.fromisoformat(str(state["Timestamp"]).replace("Z", "+00:00"))
        else:  # SecondsPath
            seconds = _json_path(json.loads(details["input"]), state["SecondsPath"])
            end = entry["timestamp"].astimezone(UTC) + timedelta(seconds=float(seconds))
        remaining = (end - self.stack.clock.now()).total_seconds()
        if remaining > 0:
            self.stack.clock.advance(remaining + 1)

    def _meet_wait(
        self, ctx: Ctx, name: str, state: Mapping[str, Any], waits: list[tuple[str, Action | None]]
    ) -> None:
        labels = [label for label, _ in waits]
        answer: Action | None = None
        if name in labels:
            position = labels.index(name)
            answer = waits[position][1]
            del waits[: position + 1]
        else:
            print(f"  note: {name!r} is not in the script; it times out", file=sys.stderr)
        if answer is None:
            self.stack.clock.advance(float(state["TimeoutSeconds"]))
            self._cap_for(waits)
        else:
            answer(ctx)
            self._cap_for(waits)


def _name(entry: Mapping[str, Any]) -> str:
    return str(entry["stateEnteredEventDetails"]["name"]).replace('\\"', '"')


def _waits_for_event(name: str, state: Mapping[str, Any]) -> bool:
    """A wait_for_event step of the journey (not a goal or exit watch)."""
    return (
        state.get("Type") == "Task"
        and str(state.get("Resource", "")).endswith(".waitForTaskToken")
        and isinstance(state.get("TimeoutSeconds"), int)
        and state["TimeoutSeconds"] < UNCAPPED_FROM
    )


# --- Report --------------------------------------------------------------------------------


def authored_steps() -> dict[str, int]:
    """Steps the marketer wrote, counted as bench_compiler.py does: every node of the
    compiled IR (goal `then:` steps included) but plain `goto` jumps."""
    counts = {}
    for result in compile_paths([ROOT / "workflows"]):
        if result.workflow is None or result.journey is None:
            continue
        counts[result.workflow.id] = sum(
            1
            for node in result.journey.nodes.values()
            if not (node.kind == "goto" and not node.step.max_times)
        )
    return counts


def _money(value: float) -> str:
    return f"{value:.4f}" if value < 1 else f"{value:.3f}"


def report(results: list[Result], sweeps: list[tuple[int, Tally]]) -> None:
    steps = authored_steps()
    print("\nPer contact-journey (the root execution; see the module notes for what is counted)")
    header = (
        f"{'workflow':28} {'steps':>5} {'trans':>5} {'λ inv':>6} {'λ ms':>7} "
        f"{'DDB r/w req':>11} {'RRU':>5} {'WRU':>5} {'email':>5} {'sms':>3} {'push':>4} "
        f"{'http':>4} {'days':>5} {'real s':>6}  end"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        t = r.tally
        reads = sum(v for k, v in t.ddb_requests.items() if k in _DDB_READS)
        writes = sum(v for k, v in t.ddb_requests.items() if k in _DDB_WRITES)
        print(
            f"{r.scenario.workflow:28} {steps.get(r.scenario.workflow, 0):5d} "
            f"{r.transitions:5d} {r.lambda_requests:6.1f} {t.milliseconds:7.0f} "
            f"{reads:5.0f}/{writes:<5.0f} {t.rru:5.1f} {t.wru:5.1f} {r.emails:5.0f} "
            f"{t.sent['sms']:3.0f} {t.sent['push']:4.0f} {t.http_calls:4d} "
            f"{r.journey_days:5.1f} {r.real_seconds:6.1f}  {r.status}: {r.end_state}"
        )
    _totals_line(results)

    print("\nCost per 1,000 journeys like each one, US$ (SMS and push not priced)")
    header = (
        f"{'workflow':28} {'SFN':>7} {'Lambda':>7} {'DynamoDB':>8} {'SES':>6} {'total':>7}"
        f"  {'SMS':>4} {'push':>4}  path"
    )
    print(header)
    print("-" * (len(header) + 40))
    sums: Counter[str] = Counter()
    for r in results:
        costs = r.costs()
        sums.update(costs)
        print(
            f"{r.scenario.workflow:28} {_money(costs['sfn']):>7} {_money(costs['lambda']):>7} "
            f"{_money(costs['dynamodb']):>8} {_money(costs['ses']):>6} "
            f"{_money(sum(costs.values())):>7}  {r.tally.sent['sms'] * 1000:4.0f} "
            f"{r.tally.sent['push'] * 1000:4.0f}  {r.scenario.path}"
        )
    n = len(results) or 1
    print(
        f"{'mean of the journeys above':28} {_money(sums['sfn'] / n):>7} "
        f"{_money(sums['lambda'] / n):>7} {_money(sums['dynamodb'] / n):>8} "
        f"{_money(sums['ses'] / n):>6} {_money(sum(sums.values()) / n):>7}"
    )
    shares = {k: 100 * v / (sum(sums.values()) or 1) for k, v in sums.items()}
    print(
        "share of the total: "
        + ", ".join(f"{k} {shares.get(k, 0):.0f} %" for k in ("sfn", "lambda", "dynamodb", "ses"))
    )

    print("\nPer journey, mean over the journeys above")
    total = Tally()
    for r in results:
        total.add(r.tally)
    ms = Counter({k: v for k, v in total.invocations.items()})
    print("  Lambda invocations by function:")
    print("    " + ", ".join(f"{k} {v / n:.1f}" for k, v in ms.most_common()))
    print("  DynamoDB requests by operation:")
    print("    " + ", ".join(f"{k} {v / n:.1f}" for k, v in total.ddb_requests.most_common()))
    print("  DynamoDB requests / RRU / WRU by caller:")
    print(
        "    "
        + ", ".join(
            f"{k} {v / n:.1f}/{total.rru_by_source[k] / n:.1f}/{total.wru_by_source[k] / n:.1f}"
            for k, v in total.ddb_by_source.most_common()
        )
    )
    print("  Other AWS requests (not priced here):")
    print("    " + ", ".join(f"{k} {v / n:.1f}" for k, v in total.other_requests.most_common(12)))
    if total.skipped:
        print(
            "Sends skipped (all journeys): "
            + ", ".join(f"{k} x{v:.0f}" for k, v in total.skipped.most_common())
        )
    for r in results:
        if r.note or r.status != "Succeeded":
            print(f"note: {r.scenario.workflow}: {r.status} {r.note}")
    for contacts, run in sweeps:
        runs = sum(run.invocations.values()) or 1
        print(
            f"\nThe hourly sweep (a fixed cost, 24 runs a day, not per journey): a run over "
            f"{contacts} contacts took {run.milliseconds / runs:.0f} ms, "
            f"{sum(run.ddb_requests.values()) / runs:.0f} DynamoDB requests, "
            f"{run.rru / runs:.1f} RRU, {run.wru / runs:.1f} WRU."
        )


def _totals_line(results: list[Result]) -> None:
    n = len(results) or 1
    transitions = sum(r.transitions for r in results)
    invocations = sum(r.lambda_requests for r in results)
    milliseconds = sum(r.tally.milliseconds for r in results)
    rru = sum(r.tally.rru for r in results)
    wru = sum(r.tally.wru for r in results)
    emails = sum(r.emails for r in results)
    sms = sum(r.tally.sent["sms"] for r in results)
    requests = sum(sum(r.tally.ddb_requests.values()) for r in results)
    print(
        f"{'total (' + str(len(results)) + ' journeys)':28} {'':5} {transitions:5d} "
        f"{invocations:6.1f} {milliseconds:7.0f} {requests:11.0f} {rru:5.1f} {wru:5.1f} "
        f"{emails:5.0f} {sms:3.0f}"
    )
    print(
        f"{'mean per journey':28} {'':5} {transitions / n:5.1f} {invocations / n:6.1f} "
        f"{milliseconds / n:7.0f} {requests / n:11.1f} {rru / n:5.1f} {wru / n:5.1f} "
        f"{emails / n:5.1f} {sms / n:3.1f}"
    )


# --- Main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="workflow id (repeatable)")
    parser.add_argument("--speed", type=float, default=600.0, help="journey seconds per second")
    parser.add_argument("--no-warm-up", action="store_true", help="measure cold functions too")
    parser.add_argument("--paths", action="store_true", help="print the states each entered")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("journeys.local").setLevel(logging.ERROR)
    # Stopping an execution while a Task runs makes moto log a bogus States.Runtime error
    # (see bench/README.md); the benchmark stops the journeys a scenario starts on the side.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    server_errors = ServerErrors()
    logging.getLogger("werkzeug").addFilter(server_errors)
    warnings.filterwarnings("ignore", category=UserWarning, module="aws_lambda_powertools")
    chosen = [s for s in scenarios() if not args.only or s.workflow in args.only]
    meter = Meter()
    started = time.perf_counter()
    stack = LocalStack(ROOT, time_scale=args.speed, start_time=ARMED_AT, quiet=True)
    with stack:
        stack.clock.reset(FIRST_DAY)  # the sweep schedule, armed in 2035, stays silent
        meter.install(stack)
        bench = Bench(stack, meter)
        print(f"local stack up in {time.perf_counter() - started:.1f} s; speed {args.speed:g}x")
        if not args.no_warm_up:  # load every function once: cold starts are not journeys
            warm = time.perf_counter()
            for scenario in scenarios():
                if scenario.workflow in ("webinar-reminders", "salesmanago-nurturing"):
                    bench.run(scenario)
            print(f"warm-up journeys: {time.perf_counter() - warm:.1f} s")
        results = []
        for scenario in chosen:
            result = bench.run(scenario)
            results.append(result)
            print(
                f"  {scenario.workflow:28} {result.status:9} {result.transitions:3d} transitions "
                f"in {result.real_seconds:4.1f} s real, {result.journey_days:5.1f} days",
                flush=True,
            )
        meter.uninstall()
    if args.paths:
        for result in results:
            print(f"\n{result.scenario.workflow} ({result.scenario.path}):")
            print("  " + " > ".join(result.path))
    report(results, bench.sweeps)
    if server_errors.count:
        print(
            f"moto server errors during the run: {server_errors.count} (last: "
            f"{server_errors.last}); the SDK retried them, the retries are counted"
        )
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
