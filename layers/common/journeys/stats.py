"""Workflow statistics: counters per workflow and per step, in the stats table.

One item per (workflow_id, metric), its `count` (`StatRecord.total`) bumped by an atomic
UpdateItem ADD, so concurrent writers never lose a count. Metric names:

=========================  =========================================================
entered                    the router started an execution (not an already-started one)
active                     +1 when entered, -1 when the execution ends (any way)
completed                  the execution reached an end of the journey
goal_reached               the goal race ended it (`Journeys.GoalReached`)
exited                     an exit criterion ended it (`Journeys.Exited`)
failed                     the execution FAILED, TIMED_OUT or was ABORTED
step:<step_id>:sent        the send step sent a message (team alerts are not counted)
step:<step_id>:skipped     ... or decided not to (consent, channel, ...)
step:<step_id>:opened      first open of a message of the step (SES feedback)
step:<step_id>:clicked     first click of each link of a message of the step
step:<step_id>:bounced     hard bounce of a message of the step
step:<step_id>:complained  complaint about a message of the step
step:<step_id>:unsubscribed  the complaint unsubscribed the contact
=========================  =========================================================

Statistics never break a journey: services call `record`, which logs and swallows any
failure (an undercount is better than a failed send or a redelivered event).

Executions end on EventBridge "Step Functions Execution Status Change" events (the stats
Lambda, `on_execution_end`). EventBridge delivers at least once, so each execution's end
is counted in one DynamoDB transaction with a marker item (hash key
``#execution:<executionArn>``, kept a while through TTL): a redelivery finds the marker
and counts nothing. Markers live outside the workflows' partitions, so reading a
workflow's statistics stays one small Query.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from journeys.exceptions import EXITED, GOAL_REACHED

log = logging.getLogger(__name__)

ENTERED = "entered"
ACTIVE = "active"
COMPLETED = "completed"
GOAL = "goal_reached"
EXITED_METRIC = "exited"
FAILED = "failed"
TOTALS = (ENTERED, ACTIVE, COMPLETED, GOAL, EXITED_METRIC, FAILED)

StepMetric = Literal[
    "sent", "skipped", "opened", "clicked", "bounced", "complained", "unsubscribed"
]
STEP_METRICS: tuple[StepMetric, ...] = (
    "sent",
    "skipped",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
)
STEP_PREFIX = "step:"
#: Hash keys of the execution-end markers (workflow ids never start with "#").
MARKER_PREFIX = "#execution:"
MARKER_TTL = timedelta(days=30)


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


# --- Reading -----------------------------------------------------------------------------------


class StepStats(BaseModel):
    sent: int = 0
    skipped: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    #: opened / sent, clicked / sent, bounced / sent (None before anything was sent).
    open_rate: float | None = None
    click_rate: float | None = None
    bounce_rate: float | None = None


class Totals(BaseModel):
    entered: int = 0
    active: int = 0
    completed: int = 0
    goal_reached: int = 0
    exited: int = 0
    failed: int = 0


class WorkflowStats(BaseModel):
    workflow_id: str
    totals: Totals
    #: goal_reached / entered (None before anyone entered).
    conversion_rate: float | None = None
    steps: dict[str, StepStats] = {}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(workflow_id: str, counts: Mapping[str, int]) -> WorkflowStats:
    """Counters (metric -> count) as statistics with rates; unknown metrics are ignored."""
    totals = Totals(**{name: int(counts.get(name, 0)) for name in TOTALS})
    per_step: dict[str, dict[str, int]] = {}
    for metric, count in counts.items():
        if not metric.startswith(STEP_PREFIX):
            continue
        step_id, _, name = metric[len(STEP_PREFIX) :].rpartition(":")
        if step_id and name in STEP_METRICS:
            per_step.setdefault(step_id, {})[name] = int(count)
    steps = {}
    for step_id, values in sorted(per_step.items()):
        sent = values.get("sent", 0)
        steps[step_id] = StepStats(
            **values,
            open_rate=_rate(values.get("opened", 0), sent),
            click_rate=_rate(values.get("clicked", 0), sent),
            bounce_rate=_rate(values.get("bounced", 0), sent),
        )
    return WorkflowStats(
        workflow_id=workflow_id,
        totals=totals,
        conversion_rate=_rate(totals.goal_reached, totals.entered),
        steps=steps,
    )


def read(workflow_id: str) -> WorkflowStats:
    counts = {
        item.metric: int(item.total or 0)
        for item in StatRecord.query(workflow_id, consistent_read=True)
    }
    return summarize(workflow_id, counts)


# --- Execution ends (EventBridge) ---------------------------------------------------------------

ENDED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _json(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return None
    return text


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


def workflow_of(detail: Mapping[str, Any], machine_arn_prefix: str = "") -> str | None:
    """The execution input's workflow_id, else the state machine's name after the prefix
    (EventBridge leaves input out when it is too large)."""
    parsed = _json(detail.get("input"))
    if isinstance(parsed, dict) and isinstance(parsed.get("workflow_id"), str):
        return str(parsed["workflow_id"])
    machine = str(detail.get("stateMachineArn") or "")
    if machine_arn_prefix and machine.startswith(machine_arn_prefix):
        return machine[len(machine_arn_prefix) :] or None
    return None


class EndResult(BaseModel):
    status: Literal["counted", "duplicate", "ignored"]
    workflow_id: str | None = None
    metric: str | None = None


def on_execution_end(
    event: Mapping[str, Any], machine_arn_prefix: str = "", now: datetime | None = None
) -> EndResult:
    """Count one "Step Functions Execution Status Change" event: active -1 and the ending
    metric, together with the execution's marker in one transaction (at most once)."""
    detail = event.get("detail") or {}
    metric = ending_metric(str(detail.get("status", "")), detail.get("output"))
    workflow_id = workflow_of(detail, machine_arn_prefix)
    execution_arn = str(detail.get("executionArn") or "")
    if metric is None or workflow_id is None or not execution_arn:
        return EndResult(status="ignored", workflow_id=workflow_id, metric=metric)
    now = now or datetime.now(UTC)
    marker = StatRecord(
        MARKER_PREFIX + execution_arn,
        "done",
        total=1,
        expires_at=int((now + MARKER_TTL).timestamp()),
    )
    meta: Any = StatRecord.Meta
    connection = Connection(region=getattr(meta, "region", None), host=getattr(meta, "host", None))
    try:
        with TransactWrite(connection=connection) as transaction:
            transaction.save(marker, condition=StatRecord.workflow_id.does_not_exist())
            transaction.update(StatRecord(workflow_id, ACTIVE), actions=[StatRecord.total.add(-1)])
            transaction.update(StatRecord(workflow_id, metric), actions=[StatRecord.total.add(1)])
    except TransactWriteError as error:
        reasons = getattr(error, "cancellation_reasons", None) or []
        if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
            return EndResult(status="duplicate", workflow_id=workflow_id, metric=metric)
        raise
    return EndResult(status="counted", workflow_id=workflow_id, metric=metric)
