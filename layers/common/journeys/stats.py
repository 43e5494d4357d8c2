"""Workflow statistics: counters per workflow, per send step and per state, in the stats
table; and where the running journeys are now.

One item per (workflow_id, metric), its `count` (`StatRecord.total`) bumped by an atomic
UpdateItem ADD, so concurrent writers never lose a count. Metric names:

============================  ==================================================================
entered                       the router started an execution (not an already-started one)
active                        +1 when entered, -1 when the journey ends (any way)
completed                     the execution reached an end of the journey
goal_reached                  the goal race ended it (`Journeys.GoalReached`)
exited                        an exit criterion ended it (`Journeys.Exited`)
failed                        the execution FAILED, TIMED_OUT or was ABORTED
unsubscribed                  a contact unsubscribed from email through the signed link of one
                              of the workflow's emails (`count_unsubscribe`, called by the API),
                              or by a complaint about one (feedback)
step:<step_id>:sent           the send step sent a message (team alerts are not counted)
step:<step_id>:skipped        ... or decided not to (consent, channel, ...)
step:<step_id>:delivered      SES delivered a message of the step (first Delivery event)
step:<step_id>:opened         first open of a message of the step (SES feedback)
step:<step_id>:clicked        first click of a message of the step (messages clicked, not links)
step:<step_id>:bounced        hard bounce of a message of the step
step:<step_id>:complained     complaint about a message of the step
step:<step_id>:unsubscribed   the complaint unsubscribed the contact (link unsubscribes name
                              no step: they count in the workflow's `unsubscribed` only)
state:<state name>:passed     executions that entered the state (console name), counted
                              when the execution ends
============================  ==================================================================

Rates (`read`): delivery and bounce rates are over messages sent; open, click and
complaint rates over messages delivered (mail that never arrived cannot be opened), or
over sent while no delivery was counted for the step (counters from before deliveries were
counted, or a configuration set that does not publish Delivery events);
`engagement_denominator` says which. The conversion rate is goal_reached / entered.

Statistics never break a journey: services call `record`, which logs and swallows any
failure (an undercount is better than a failed send or a redelivered event).

Executions end on EventBridge "Step Functions Execution Status Change" events (the stats
Lambda, `on_execution_end`). EventBridge delivers at least once and Lambda retries, so
every count there happens in a DynamoDB transaction with a marker item (hash key
``#execution:<executionArn>``, kept a while through TTL): a redelivery finds the marker
and counts nothing. The work, in an order that lets a retry finish what a failure left:

1. Read the execution's history (GetExecutionHistory, every page) before writing
   anything: a throttled read raises, nothing is written, the retry starts over.
2. The end: active -1 and the ending metric, with marker ``done``.
3. The states: ``state:<name>:passed`` +1 for every distinct state the execution entered,
   in transactions of at most 99 counters plus their own marker (``states:<n>``;
   DynamoDB allows 100 items a transaction). The history of an ended execution never
   changes, so a retry builds the same chunks and counts only those not yet marked.
   Distinct, not every entry: a state counts contacts that passed it, so it compares with
   `entered` and a Choice's branches add up to the Choice; a loop (`goto`) or a deferred
   send's retries do not count a contact twice. Each run of a repeated journey is an
   execution of its own and counts again.
4. The contact's `EntryRecord` gets the ending and `ended_at`, if it still holds this
   entry (conditional on `entry_id`, else on the execution ARN): a newer entry is never
   overwritten. Idempotent by itself, so it runs on redeliveries too.

A repeat step continues a journey as a new execution (``<entry_id>-r<n>``, started by the
machine itself through ``states:startExecution``): a run that succeeded after starting
the next counts its states but is not an end (active, the endings and the entry wait for
the last run). A history that cannot be read for good (access denied, gone after 90 days)
still counts the end, without states and without telling a continued run apart.

"Where are they now" (`current_positions`) is read from Step Functions, not counted: it
lists a state machine's running executions and finds each one's current state from the
newest page of its history, so it costs 1 + N calls for N executions (bounded by
`limit`). GetExecutionHistory is throttled per account and Region, together with the
API's journey view and this module's history reads: callers should cache the answer.

Markers live outside the workflows' partitions, so reading a workflow's statistics stays
one small Query.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from journeys import aws, clock
from journeys.exceptions import EXITED, GOAL_REACHED, TransientError

log = logging.getLogger(__name__)

ENTERED = "entered"
ACTIVE = "active"
COMPLETED = "completed"
GOAL = "goal_reached"
EXITED_METRIC = "exited"
FAILED = "failed"
UNSUBSCRIBED = "unsubscribed"
TOTALS = (ENTERED, ACTIVE, COMPLETED, GOAL, EXITED_METRIC, FAILED, UNSUBSCRIBED)

StepMetric = Literal[
    "sent",
    "skipped",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
]
STEP_METRICS: tuple[StepMetric, ...] = (
    "sent",
    "skipped",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
)
STEP_PREFIX = "step:"
STATE_PREFIX = "state:"
PASSED = "passed"
#: Hash keys of the execution-end markers (workflow ids never start with "#").
MARKER_PREFIX = "#execution:"
MARKER_TTL = timedelta(days=30)
#: Range keys of an execution's markers: its end, and each chunk of its state counters.
END_MARKER = "done"
STATES_MARKER = "states:"
#: DynamoDB's 100 items per transaction, one of them the chunk's marker.
COUNTERS_PER_TRANSACTION = 99
#: Transactions touching a hot counter (every ending of a busy workflow adds to `active`)
#: are cancelled with TransactionConflict while another one holds it: retry a few times.
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_SECONDS = 0.05


class StatRecord(Model):
    """One counter: (workflow_id, metric) -> count. Also the execution-end markers."""

    class Meta:
        table_name = ""  # unbound: `record` does nothing until `store.bind_tables`

    workflow_id = UnicodeAttribute(hash_key=True)
    metric = UnicodeAttribute(range_key=True)
    #: Stored as "count" (`Model.count` is taken by pynamodb).
    total = NumberAttribute(attr_name="count", default=0)
    expires_at = NumberAttribute(null=True)  # TTL of markers, epoch seconds


def step_metric(step_id: str, metric: StepMetric) -> str:
    return f"{STEP_PREFIX}{step_id}:{metric}"


def state_metric(state_name: str) -> str:
    """The counter of executions that passed a state (named as in the console)."""
    return f"{STATE_PREFIX}{state_name}:{PASSED}"


def increment(workflow_id: str, metric: str, by: int = 1) -> None:
    """Atomically add `by` (may be negative) to the counter; creates it at 0 first."""
    StatRecord(workflow_id, metric).update(actions=[StatRecord.total.add(by)])


def record(workflow_id: str | None, *metrics: str, by: int = 1) -> None:
    """`increment` each metric, never raising: statistics must not break a journey."""
    if not workflow_id or not StatRecord.Meta.table_name:
        return
    for metric in metrics:
        try:
            increment(workflow_id, metric, by)
        except Exception:
            log.warning("statistic %s of %s not recorded", metric, workflow_id, exc_info=True)


def count_unsubscribe(workflow_id: str | None, step_id: str | None = None) -> None:
    """A contact unsubscribed because of the workflow's email: the workflow's
    `unsubscribed`, and the step's when known (a complaint names the message; the signed
    link names only contact and workflow). Call once per change of the channel."""
    metrics = [UNSUBSCRIBED]
    if step_id:
        metrics.append(step_metric(step_id, "unsubscribed"))
    record(workflow_id, *metrics)


# --- Reading -----------------------------------------------------------------------------------


class StepStats(BaseModel):
    sent: int = 0
    skipped: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    #: delivered / sent and bounced / sent (None before anything was sent).
    delivery_rate: float | None = None
    bounce_rate: float | None = None
    #: opened, clicked (messages, not links) and complained over `engagement_denominator`.
    open_rate: float | None = None
    click_rate: float | None = None
    complaint_rate: float | None = None
    #: Unsubscribes that named the step (complaints) over the same denominator.
    unsubscribe_rate: float | None = None
    #: "delivered" once a delivery was counted, else "sent" (None: nothing sent yet).
    engagement_denominator: Literal["delivered", "sent"] | None = None


class StateStats(BaseModel):
    #: Executions that entered the state, counted when they ended (each once).
    passed: int = 0


class Totals(BaseModel):
    entered: int = 0
    active: int = 0
    completed: int = 0
    goal_reached: int = 0
    exited: int = 0
    failed: int = 0
    #: Unsubscribes from the workflow's emails (signed links and complaints).
    unsubscribed: int = 0


class WorkflowStats(BaseModel):
    workflow_id: str
    totals: Totals
    #: goal_reached / entered (None before anyone entered).
    conversion_rate: float | None = None
    steps: dict[str, StepStats] = {}
    #: By state name, as in the Step Functions console and the workflow's graph.
    states: dict[str, StateStats] = {}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def step_stats(values: Mapping[str, int]) -> StepStats:
    """A step's counters with their rates (see the module notes for the denominators)."""
    sent, delivered = values.get("sent", 0), values.get("delivered", 0)
    basis: Literal["delivered", "sent"] | None = (
        "delivered" if delivered else "sent" if sent else None
    )
    engaged = delivered or sent
    return StepStats(
        **values,
        delivery_rate=_rate(delivered, sent),
        bounce_rate=_rate(values.get("bounced", 0), sent),
        open_rate=_rate(values.get("opened", 0), engaged),
        click_rate=_rate(values.get("clicked", 0), engaged),
        complaint_rate=_rate(values.get("complained", 0), engaged),
        unsubscribe_rate=_rate(values.get("unsubscribed", 0), engaged),
        engagement_denominator=basis,
    )


def summarize(workflow_id: str, counts: Mapping[str, int]) -> WorkflowStats:
    """Counters (metric -> count) as statistics with rates; unknown metrics are ignored."""
    totals = Totals(**{name: int(counts.get(name, 0)) for name in TOTALS})
    per_step: dict[str, dict[str, int]] = {}
    states: dict[str, StateStats] = {}
    for metric, count in counts.items():
        if metric.startswith(STEP_PREFIX):
            step_id, _, name = metric[len(STEP_PREFIX) :].rpartition(":")
            if step_id and name in STEP_METRICS:
                per_step.setdefault(step_id, {})[name] = int(count)
        elif metric.startswith(STATE_PREFIX):
            state, _, name = metric[len(STATE_PREFIX) :].rpartition(":")
            if state and name == PASSED:
                states[state] = StateStats(passed=int(count))
    return WorkflowStats(
        workflow_id=workflow_id,
        totals=totals,
        conversion_rate=_rate(totals.goal_reached, totals.entered),
        steps={step_id: step_stats(values) for step_id, values in sorted(per_step.items())},
        states=dict(sorted(states.items())),
    )


def read(workflow_id: str) -> WorkflowStats:
    counts = {
        item.metric: int(item.total or 0)
        for item in StatRecord.query(workflow_id, consistent_read=True)
    }
    return summarize(workflow_id, counts)


# --- Execution histories (pure) ----------------------------------------------------------------

ENDED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: History events that close an execution.
EXECUTION_ENDED_EVENTS = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)
#: States that only hold others: an execution inside one is where its branches are.
CONTAINER_ENTERED_EVENTS = frozenset({"ParallelStateEntered", "MapStateEntered"})


def _json(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return None
    return text


def _event_id(event: Mapping[str, Any]) -> int:
    try:
        return int(event.get("id", 0))
    except (TypeError, ValueError):
        return 0


def _state_name(event: Mapping[str, Any], details: str) -> str | None:
    name = (event.get(details) or {}).get("name")
    return str(name) if name else None


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What the stats need from an ended execution's history."""

    #: Every state entered, each once, sorted.
    states: tuple[str, ...] = ()
    #: The execution started its next run: a repeat step's `states:startExecution`
    #: succeeded, or found the run already started.
    started_next_run: bool = False
    #: The execution's input (from ExecutionStarted), when it is a JSON object.
    execution_input: Mapping[str, Any] | None = None


def summarize_history(events: Iterable[Mapping[str, Any]]) -> HistorySummary:
    states: set[str] = set()
    started_next_run = False
    execution_input: Mapping[str, Any] | None = None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            name = _state_name(event, "stateEnteredEventDetails")
            if name:
                states.add(name)
        elif kind in ("TaskSucceeded", "TaskFailed"):
            details = event.get("taskSucceededEventDetails") or event.get("taskFailedEventDetails")
            started_next_run |= _started_a_run(kind, details or {})
        elif kind == "ExecutionStarted":
            parsed = _json((event.get("executionStartedEventDetails") or {}).get("input"))
            execution_input = parsed if isinstance(parsed, dict) else None
    return HistorySummary(tuple(sorted(states)), started_next_run, execution_input)


#: The error a repeat step catches when its next run exists already (a retried start).
_RUN_EXISTS = "StepFunctions.ExecutionAlreadyExistsException"


def _started_a_run(kind: str, details: Mapping[str, Any]) -> bool:
    if details.get("resourceType") != "states":
        return False
    if not str(details.get("resource", "")).startswith("startExecution"):
        return False
    return kind == "TaskSucceeded" or details.get("error") == _RUN_EXISTS


def _race_watch_prefix() -> str:
    # The compiler names the goal and exit watches of the race (`emit.emit_watch`); imported
    # here, not at the top, to keep the compiler out of every function's cold start.
    from journeys.compiler.ir import watch_name

    return watch_name("")


def open_state(events: Iterable[Mapping[str, Any]], watch_prefix: str = "") -> str | None:
    """The state a running execution is in: the newest state entered and not yet exited.

    Parallel and Map states are skipped (their branches say where the contact is). Inside
    the goal race, the watches (`watch_prefix`) are open from the start to the end, so the
    journey's own open state wins over them whatever order the branches started in; a
    watch is the answer only when nothing else is open. None when the events show no open
    state, or the execution has ended."""
    entered = open_state_event(events, watch_prefix)
    return _state_name(entered, "stateEnteredEventDetails") if entered is not None else None


def open_state_event(
    events: Iterable[Mapping[str, Any]], watch_prefix: str = ""
) -> Mapping[str, Any] | None:
    """The StateEntered event of `open_state` (its time says since when, its input whose)."""
    newest_first = sorted(events, key=_event_id, reverse=True)
    if newest_first and str(newest_first[0].get("type")) in EXECUTION_ENDED_EVENTS:
        return None
    pending_exits: Counter[str] = Counter()
    watch: Mapping[str, Any] | None = None
    for event in newest_first:
        kind = str(event.get("type", ""))
        if kind.endswith("StateExited"):
            exited = _state_name(event, "stateExitedEventDetails")
            if exited:
                pending_exits[exited] += 1
        elif kind.endswith("StateEntered"):
            name = _state_name(event, "stateEnteredEventDetails")
            if not name:
                continue
            if pending_exits[name]:
                pending_exits[name] -= 1
            elif kind in CONTAINER_ENTERED_EVENTS:
                continue
            elif watch_prefix and name.startswith(watch_prefix):
                watch = watch or event
            else:
                return event
    return watch


def contact_of(events: Iterable[Mapping[str, Any]]) -> str | None:
    """The contact an execution is for, from any state's input (every state carries
    `contact_id`) or the execution's input, whichever the events read include."""
    for event in sorted(events, key=_event_id, reverse=True):
        details = event.get("stateEnteredEventDetails") or event.get("executionStartedEventDetails")
        parsed = _json((details or {}).get("input"))
        if isinstance(parsed, dict) and isinstance(parsed.get("contact_id"), str):
            return str(parsed["contact_id"])
    return None


# --- Execution ends (EventBridge) ---------------------------------------------------------------


def ending_metric(status: str, output: Any) -> str | None:
    """The counter an ended execution adds to; None for a status that is not an end."""
    if status not in ENDED_STATUSES:
        return None
    if status != "SUCCEEDED":
        return FAILED
    parsed = _json(output)
    outcome = parsed.get("outcome") if isinstance(parsed, dict) else None
    error = outcome.get("Error") if isinstance(outcome, dict) else None
    if error == GOAL_REACHED:
        return GOAL
    if error == EXITED:
        return EXITED_METRIC
    return COMPLETED


def workflow_of(
    detail: Mapping[str, Any],
    machine_arn_prefix: str = "",
    execution_input: Mapping[str, Any] | None = None,
) -> str | None:
    """The execution input's workflow_id (the event's, else `execution_input` read from
    the history: EventBridge leaves input out when it is too large), else the state
    machine's name after the prefix."""
    for candidate in (_json(detail.get("input")), execution_input):
        if isinstance(candidate, Mapping) and isinstance(candidate.get("workflow_id"), str):
            return str(candidate["workflow_id"])
    machine = str(detail.get("stateMachineArn") or "")
    if machine_arn_prefix and machine.startswith(machine_arn_prefix):
        return machine[len(machine_arn_prefix) :] or None
    return None


#: How the contact's entry reads once the journey ended. Not "failed" for a failed
#: execution: the router reads "failed" as "the start failed, the entry does not count for
#: re-entry", and a journey that ran and failed did enter.
ENTRY_STATUSES = {
    COMPLETED: "completed",
    GOAL: "goal_reached",
    EXITED_METRIC: "exited",
    FAILED: "execution_failed",
}

EntryOutcome = Literal["updated", "superseded", "unknown_contact"]


class EndResult(BaseModel):
    #: counted: the end was counted now; duplicate: an earlier delivery counted it;
    #: continued: the journey goes on in the execution's next run (nothing ended);
    #: ignored: not a journey's end.
    status: Literal["counted", "duplicate", "continued", "ignored"]
    workflow_id: str | None = None
    metric: str | None = None
    #: Whether the history was read ("unavailable": it cannot be, for good).
    history: Literal["read", "unavailable", "not_read"] = "not_read"
    #: State counters this delivery added (0 on a redelivery).
    states_counted: int = 0
    #: What happened to the contact's entry (None: not touched).
    entry: EntryOutcome | None = None


def on_execution_end(
    event: Mapping[str, Any],
    machine_arn_prefix: str = "",
    now: datetime | None = None,
    client: Any = None,
) -> EndResult:
    """Count one "Step Functions Execution Status Change" event, at most once however
    often it arrives (see the module notes for the order and why)."""
    detail: Mapping[str, Any] = event.get("detail") or {}
    status = str(detail.get("status", ""))
    metric = ending_metric(status, detail.get("output"))
    execution_arn = str(detail.get("executionArn") or "")
    if metric is None or not execution_arn:
        return EndResult(
            status="ignored", workflow_id=workflow_of(detail, machine_arn_prefix), metric=metric
        )
    events = _read_history(client, execution_arn)
    summary = summarize_history(events or ())
    execution_input = _json(detail.get("input"))
    if not isinstance(execution_input, Mapping):
        execution_input = summary.execution_input or {}
    workflow_id = workflow_of(detail, machine_arn_prefix, execution_input)
    history: Literal["read", "unavailable"] = "unavailable" if events is None else "read"
    if workflow_id is None:
        return EndResult(status="ignored", metric=metric, history=history)
    now = now or clock.now()
    expires_at = int((now + MARKER_TTL).timestamp())
    continued = status == "SUCCEEDED" and metric == COMPLETED and summary.started_next_run
    end_status: Literal["counted", "duplicate", "continued"] = "continued"
    meta: Any = StatRecord.Meta
    connection = Connection(region=getattr(meta, "region", None), host=getattr(meta, "host", None))
    if not continued:
        counted = _count_once(
            connection,
            StatRecord(MARKER_PREFIX + execution_arn, END_MARKER, total=1, expires_at=expires_at),
            workflow_id,
            [(ACTIVE, -1), (metric, 1)],
        )
        end_status = "counted" if counted else "duplicate"
    states_counted = 0
    metrics = [state_metric(name) for name in summary.states]
    for index, start in enumerate(range(0, len(metrics), COUNTERS_PER_TRANSACTION)):
        chunk = metrics[start : start + COUNTERS_PER_TRANSACTION]
        marker = StatRecord(
            MARKER_PREFIX + execution_arn,
            f"{STATES_MARKER}{index}",
            total=len(chunk),
            expires_at=expires_at,
        )
        if _count_once(connection, marker, workflow_id, [(name, 1) for name in chunk]):
            states_counted += len(chunk)
    entry: EntryOutcome | None = None
    if not continued:
        entry = _end_entry(
            contact_id=execution_input.get("contact_id"),
            workflow_id=workflow_id,
            entry_id=execution_input.get("entry_id"),
            execution_arn=execution_arn,
            status=ENTRY_STATUSES[metric],
            ended_at=_stopped_at(detail, now),
        )
    return EndResult(
        status=end_status,
        workflow_id=workflow_id,
        metric=metric,
        history=history,
        states_counted=states_counted,
        entry=entry,
    )


def _count_once(
    connection: Connection,
    marker: StatRecord,
    workflow_id: str,
    counters: Sequence[tuple[str, int]],
) -> bool:
    """Add `counters` to the workflow's items together with `marker`, unless the marker is
    there already (False: counted before)."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            with TransactWrite(connection=connection) as transaction:
                transaction.save(marker, condition=StatRecord.workflow_id.does_not_exist())
                for metric, by in counters:
                    transaction.update(
                        StatRecord(workflow_id, metric), actions=[StatRecord.total.add(by)]
                    )
        except TransactWriteError as error:
            codes = [getattr(r, "code", None) for r in error.cancellation_reasons or []]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False
            if "TransactionConflict" in codes and attempt + 1 < CONFLICT_ATTEMPTS:
                time.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2**attempt))
                continue
            raise
        return True
    raise AssertionError("unreachable: the last attempt returns or raises")


#: Error codes of a read worth retrying (with the 5xx statuses and connection errors).
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
    }
)


def _stepfunctions(arn: str) -> Any:
    """A Step Functions client in the Region of `arn` (arn:aws:states:<region>:...)."""
    parts = arn.split(":")
    return aws.client("stepfunctions", parts[3] if len(parts) > 3 else None)


def execution_history(client: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, oldest first (at most 25,000: 25 pages)."""
    events: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = client.get_execution_history(**arguments)
        events += page.get("events", [])
        if not page.get("nextToken"):
            return events
        arguments["nextToken"] = page["nextToken"]


def _read_history(client: Any, execution_arn: str) -> list[dict[str, Any]] | None:
    """The history, None when it cannot be read for good; raises `TransientError` when a
    retry may read it (nothing has been written yet, so the retry loses nothing)."""
    try:
        return execution_history(client or _stepfunctions(execution_arn), execution_arn)
    except BotoCoreError as error:
        raise TransientError(f"reading the history of {execution_arn}: {error}") from error
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        http = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _TRANSIENT_CODES or http >= 500:
            raise TransientError(f"reading the history of {execution_arn}: {error}") from error
        log.warning(
            "history of %s unreadable (%s): its end counts without its states",
            execution_arn,
            code,
        )
        return None


def _stopped_at(detail: Mapping[str, Any], now: datetime) -> datetime:
    """When the execution stopped (`stopDate`, epoch milliseconds), else now."""
    stop = detail.get("stopDate")
    if isinstance(stop, int | float) and not isinstance(stop, bool):
        return datetime.fromtimestamp(stop / 1000, UTC)
    return now


def _end_entry(
    *,
    contact_id: Any,
    workflow_id: str,
    entry_id: Any,
    execution_arn: str,
    status: str,
    ended_at: datetime,
) -> EntryOutcome:
    """Mark the contact's entry ended, if it is still this one (a newer entry, or the
    router's claim for one, is left alone). Names this execution as the entry's, so a
    repeated journey's entry names its last run."""
    # store imports this module (StatRecord is one of its tables): import it when called.
    from journeys.store import EntryRecord, iso

    if not isinstance(contact_id, str) or not contact_id:
        log.warning("no contact_id in the input of %s: its entry is not updated", execution_arn)
        return "unknown_contact"
    same_entry = (
        EntryRecord.entry_id == entry_id
        if isinstance(entry_id, str) and entry_id
        else EntryRecord.execution_arn == execution_arn
    )
    try:
        EntryRecord(contact_id, workflow_id).update(
            actions=[
                EntryRecord.status.set(status),
                EntryRecord.ended_at.set(iso(ended_at)),
                EntryRecord.execution_arn.set(execution_arn),
            ],
            condition=same_entry,
        )
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        return "superseded"
    return "updated"


# --- Where the running journeys are (Step Functions) --------------------------------------------

#: ListExecutions' largest page, and the most executions `current_positions` inspects.
MAX_POSITIONS = 1000


class Position(BaseModel):
    """One running execution: whose it is and the state it is in, since when."""

    contact_id: str | None = None
    state: str
    since: datetime | None = None
    execution_arn: str


class Positions(BaseModel):
    """How many running executions of a state machine are in each state now."""

    state_machine_arn: str
    #: State name -> running executions in it (of those inspected).
    waiting: dict[str, int] = {}
    #: State name -> running executions that entered it (within the history page read):
    #: added to the ended executions' `passed` so a journey under way counts where it went.
    passed: dict[str, int] = {}
    #: Each inspected execution whose state is known, newest first.
    contacts: list[Position] = []
    #: Running executions inspected (at most `limit`, newest first).
    executions: int = 0
    #: Inspected executions whose state was not found: history unreadable, the open state
    #: older than the history page read, or the execution ended meanwhile.
    unknown: int = 0
    #: More executions were running than `limit`: the counts are a sample of the newest.
    truncated: bool = False


def current_positions(
    workflow_arn: str, client: Any = None, limit: int = 100, history_page: int = 100
) -> Positions:
    """Where the running executions of state machine `workflow_arn` are: 1 ListExecutions
    call per 1,000 executions, then one GetExecutionHistory call (newest `history_page`
    events) per execution, at most `limit` of them, newest first (see the module notes on
    throttling). The answer is a snapshot: executions move on while it is read."""
    if not 1 <= limit <= MAX_POSITIONS:
        raise ValueError(
            f"current_positions: limit must be between 1 and {MAX_POSITIONS}, got {limit}; "
            "read fewer executions (each costs one GetExecutionHistory call)"
        )
    if not 1 <= history_page <= 1000:
        raise ValueError(
            f"current_positions: history_page must be between 1 and 1000, got {history_page}"
        )
    client = client or _stepfunctions(workflow_arn)
    running, truncated = _running_executions(client, workflow_arn, limit)
    watch_prefix = _race_watch_prefix()
    waiting: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    contacts: list[Position] = []
    unknown = 0
    for execution_arn in running:
        try:
            page = client.get_execution_history(
                executionArn=execution_arn, reverseOrder=True, maxResults=history_page
            )
        except ClientError as error:
            log.warning("no history for %s: %s", execution_arn, error)
            unknown += 1
            continue
        events = page.get("events", [])
        entered = open_state_event(events, watch_prefix)
        state = _state_name(entered, "stateEnteredEventDetails") if entered else None
        if entered is None or state is None:
            unknown += 1
            continue
        waiting[state] += 1
        passed.update(summarize_history(events).states)
        since = entered.get("timestamp")
        contacts.append(
            Position(
                contact_id=contact_of(events),
                state=state,
                since=since if isinstance(since, datetime) else None,
                execution_arn=execution_arn,
            )
        )
    return Positions(
        state_machine_arn=workflow_arn,
        waiting=dict(sorted(waiting.items())),
        passed=dict(sorted(passed.items())),
        contacts=contacts,
        executions=len(running),
        unknown=unknown,
        truncated=truncated,
    )


def _running_executions(client: Any, workflow_arn: str, limit: int) -> tuple[list[str], bool]:
    """Up to `limit` RUNNING executions (newest first), and whether there were more."""
    arns: list[str] = []
    arguments: dict[str, Any] = {
        "stateMachineArn": workflow_arn,
        "statusFilter": "RUNNING",
        "maxResults": min(limit, MAX_POSITIONS),
    }
    while True:
        page = client.list_executions(**arguments)
        arns += [str(e["executionArn"]) for e in page.get("executions", [])]
        token = page.get("nextToken")
        if len(arns) >= limit:
            return arns[:limit], bool(token) or len(arns) > limit
        if not token:
            return arns, False
        arguments["nextToken"] = token
