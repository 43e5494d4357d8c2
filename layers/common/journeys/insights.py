"""The marketer's view: every workflow's totals, one workflow's funnel over its graph, and
one contact's timeline. The dashboard, `journeys stats` and the API all read these.

Counts come from the statistics (`journeys.stats`: counters kept as journeys end) and from
the running executions (`stats.current_positions`: where they wait, and what they passed on
the way). Boxes of the graph become states as the compiler's view says
(`journeys.compiler.view`, `<workflow>.view.json` beside the workflow index).

A box's "passed" is the ended executions that entered its counted state plus the running
ones that did; "waiting" is the running executions in any of its states now. The trigger
box counts `entered`, the goal boxes `goal_reached`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from journeys import aws, clock, stats
from journeys.contact_updates import find_contact
from journeys.exceptions import ContactNotFound, WorkflowNotDeployed
from journeys.settings import Settings
from journeys.store import EntryRecord

log = logging.getLogger(__name__)

VIEW_SUFFIX = ".view.json"  # journeys.compiler.view writes them; not imported: cold starts
#: Running executions inspected per workflow report (one history read each).
POSITIONS_LIMIT = 100


# --- Views ---------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _view(path: str, modified: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def load_view(settings: Settings, workflow_id: str) -> dict[str, Any]:
    """The compiled view of a deployed workflow (read once per version of the file)."""
    index = load_index(settings)
    if workflow_id not in (index.get("workflows") or {}):
        raise WorkflowNotDeployed(workflow_id, sorted(index.get("workflows") or {}))
    path = Path(settings.workflow_index).parent / f"{workflow_id}{VIEW_SUFFIX}"
    try:
        modified = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise RuntimeError(
            f"the view of workflow {workflow_id!r} is not deployed ({path}): run "
            "`journeys compile` and deploy again"
        ) from None
    return _view(str(path), modified)


@lru_cache(maxsize=4)
def _index(path: str, modified: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def load_index(settings: Settings) -> dict[str, Any]:
    """The compiled workflow index (`journeys compile` writes it), read once per version."""
    path = settings.workflow_index
    try:
        modified = Path(path).stat().st_mtime_ns
    except FileNotFoundError:
        raise RuntimeError(f"the workflow index {path} is not deployed") from None
    return _index(path, modified)


# --- Every workflow --------------------------------------------------------------------------


class WorkflowSummary(BaseModel):
    workflow_id: str
    name: str
    has_goal: bool
    totals: stats.Totals
    conversion_rate: float | None = Field(
        None, description="goal_reached / entered; None without a goal or before any entry."
    )


class Overview(BaseModel):
    generated_at: datetime = Field(description="When these counts were read (journey time).")
    workflows: list[WorkflowSummary]


def overview(settings: Settings) -> Overview:
    """Totals of every deployed workflow, by id (one query of the stats table each)."""
    workflows: Mapping[str, Any] = load_index(settings).get("workflows") or {}
    summaries = []
    for workflow_id, entry in sorted(workflows.items()):
        counts = stats.read(workflow_id)
        summaries.append(
            WorkflowSummary(
                workflow_id=workflow_id,
                name=str(entry.get("name") or workflow_id),
                has_goal=bool(entry.get("goal")),
                totals=counts.totals,
                conversion_rate=counts.conversion_rate if entry.get("goal") else None,
            )
        )
    return Overview(generated_at=clock.now(), workflows=summaries)


# --- One workflow ----------------------------------------------------------------------------


class FunnelBox(BaseModel):
    key: str = Field(description='The graph\'s box (data-key in its SVG); "__start__": trigger.')
    label: str
    kind: str
    shape: str
    passed: int = Field(description="Contacts that reached this step (ended and running).")
    waiting: int = Field(description="Contacts at this step now.")
    messages: stats.StepStats | None = Field(None, description="Send steps: message metrics.")


class ContactHere(BaseModel):
    contact_id: str | None
    step: str | None = Field(None, description="The box the contact is at (its key).")
    state: str
    since: datetime | None = None
    execution_arn: str


class PositionsOut(BaseModel):
    executions: int = Field(description="Running executions inspected.")
    unknown: int = Field(description="Of those, whose state could not be read.")
    truncated: bool = Field(description="More were running: the counts are a sample.")
    contacts: list[ContactHere]
    error: str | None = Field(
        None, description="Why the running executions could not be read (counts then exclude them)."
    )


class WorkflowReport(stats.WorkflowStats):
    name: str
    generated_at: datetime
    funnel: list[FunnelBox]
    positions: PositionsOut | None = Field(None, description="None when not asked for.")


class WorkflowGraph(BaseModel):
    workflow_id: str
    name: str
    svg: str = Field(description='The drawing; each box is <g class="node …" data-key="…">.')


def workflow_graph(settings: Settings, workflow_id: str) -> WorkflowGraph:
    view = load_view(settings, workflow_id)
    return WorkflowGraph(workflow_id=workflow_id, name=view["name"], svg=view["svg"])


def _box_of_state(view: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for box in view["boxes"]:
        for state in box["states"]:
            found.setdefault(state, box["key"])
    return found


def funnel(
    view: Mapping[str, Any], counts: stats.WorkflowStats, positions: stats.Positions | None
) -> list[FunnelBox]:
    """Every box of the graph with its passed / waiting counts and message metrics."""
    running_passed = positions.passed if positions else {}
    waiting = positions.waiting if positions else {}
    totals = counts.totals.model_dump()
    boxes = []
    for box in view["boxes"]:
        if box.get("total"):
            passed = int(totals.get(box["total"], 0))
        elif box.get("counted_state"):
            state = box["counted_state"]
            ended = counts.states.get(state)
            passed = (ended.passed if ended else 0) + running_passed.get(state, 0)
        else:
            passed = 0
        messages = None
        if box.get("sends"):
            messages = counts.steps.get(box["key"]) or stats.step_stats({})
        boxes.append(
            FunnelBox(
                key=box["key"],
                label=box["label"],
                kind=box["kind"],
                shape=box["shape"],
                passed=passed,
                waiting=sum(waiting.get(state, 0) for state in box["states"]),
                messages=messages,
            )
        )
    return boxes


_positions_read: dict[str, tuple[float, stats.Positions]] = {}
_positions_lock = threading.Lock()


def _positions(machine: str, client: Any, max_age: float) -> stats.Positions:
    """`stats.current_positions`, reused for `max_age` seconds by this process."""
    if max_age > 0:
        with _positions_lock:
            read = _positions_read.get(machine)
        if read is not None and time.monotonic() - read[0] < max_age:
            return read[1]
    where = stats.current_positions(machine, client, limit=POSITIONS_LIMIT)
    if max_age > 0:
        with _positions_lock:
            _positions_read[machine] = (time.monotonic(), where)
    return where


def workflow_report(
    settings: Settings, workflow_id: str, *, positions: bool = True, client: Any = None
) -> WorkflowReport:
    """A workflow's statistics with its funnel, and who is where now (`positions`)."""
    view = load_view(settings, workflow_id)
    counts = stats.read(workflow_id)
    where: stats.Positions | None = None
    unreadable: str | None = None
    if positions:
        client = client or aws.client("stepfunctions", settings.region)
        machine = settings.state_machine_arn_prefix + workflow_id
        try:
            where = _positions(machine, client, settings.positions_max_age)
        except ClientError as error:  # not deployed under that name, or not allowed
            log.warning("running executions of %s not read: %s", machine, error)
            unreadable = f"the running executions of {machine} could not be read: {error}"
    box_of = _box_of_state(view)
    if not (load_index(settings).get("workflows") or {})[workflow_id].get("goal"):
        counts.conversion_rate = None  # nothing to convert to
    return WorkflowReport(
        **counts.model_dump(),
        name=view["name"],
        generated_at=clock.now(),
        funnel=funnel(view, counts, where),
        positions=(
            PositionsOut(executions=0, unknown=0, truncated=False, contacts=[], error=unreadable)
            if unreadable
            else None
        )
        if where is None
        else PositionsOut(
            executions=where.executions,
            unknown=where.unknown,
            truncated=where.truncated,
            contacts=[
                ContactHere(
                    contact_id=p.contact_id,
                    step=box_of.get(p.state),
                    state=p.state,
                    since=p.since,
                    execution_arn=p.execution_arn,
                )
                for p in where.contacts
            ],
        ),
    )


# --- One contact -----------------------------------------------------------------------------


class TimelineStep(BaseModel):
    key: str | None = Field(None, description="The box of the workflow's graph, if any.")
    label: str
    kind: str
    state: str = Field(description="The state entered first (as in the console).")
    entered_at: datetime | None = None
    left_at: datetime | None = None
    outcome: str | None = Field(
        None, description='The branch taken ("Yes"), or what a send did ("sent").'
    )


class TimelineJourney(BaseModel):
    workflow_id: str
    workflow_name: str
    entry_id: str
    execution_arn: str | None = None
    console_url: str | None = Field(
        None, description="The execution in the AWS console (None on the local stack)."
    )
    status: str = Field(description="running, completed, goal_reached, exited, failed, ...")
    entered_at: str
    ended_at: str | None = None
    steps: list[TimelineStep]


class Timeline(BaseModel):
    contact_id: str
    generated_at: datetime = Field(description="When this was read (journey time).")
    journeys: list[TimelineJourney] = Field(description="Latest entry per workflow, newest first.")


#: How an execution's last history event names its end, when the entry does not say yet.
_ENDINGS = {
    "ExecutionSucceeded": "completed",
    "ExecutionFailed": "failed",
    "ExecutionAborted": "aborted",
    "ExecutionTimedOut": "timed_out",
}


def console_url(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 3 else "us-east-1"
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{quote(execution_arn, safe='')}"
    )


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _send_outcome(event: Mapping[str, Any]) -> str | None:
    """What a send task answered ("sent", "skipped: no consent") from TaskSucceeded."""
    details = event.get("taskSucceededEventDetails") or {}
    output = _parsed(details.get("output"))
    payload = output.get("Payload", output) if isinstance(output, dict) else None
    if not isinstance(payload, dict) or "status" not in payload:
        return None
    status = str(payload["status"])
    reason = payload.get("reason")
    return f"{status}: {str(reason).replace('_', ' ')}" if reason else status


def timeline_steps(
    history: Sequence[Mapping[str, Any]], view: Mapping[str, Any]
) -> list[TimelineStep]:
    """The boxes an execution went through, in order, from its history (oldest first).

    States of one box entered one after another are one step (a decision's check and
    choice); entering it again later (a loop) is a new step. The race's watches and the
    Parallel around the journey are left out; the ending state closes the timeline."""
    box_of = _box_of_state(view)
    boxes = {box["key"]: box for box in view["boxes"]}
    endings: Mapping[str, str] = view.get("endings") or {}
    watch_prefix = str(view.get("watch_prefix") or "\x00")
    steps: list[TimelineStep] = []
    open_key: str | None = None
    for event in sorted(history, key=lambda e: int(e.get("id", 0))):
        kind = str(event.get("type", ""))
        at = event.get("timestamp") if isinstance(event.get("timestamp"), datetime) else None
        if kind.endswith("StateEntered") and kind not in stats.CONTAINER_ENTERED_EVENTS:
            name = str((event.get("stateEnteredEventDetails") or {}).get("name") or "")
            if not name or name.startswith(watch_prefix):
                continue
            key = box_of.get(name)
            if key is not None and key == open_key:
                continue
            previous = steps[-1] if steps else None
            if previous is not None:
                previous.left_at = previous.left_at or at
                box = boxes.get(previous.key or "")
                if box and "branches" in box:
                    previous.outcome = box["branches"].get(name) or f"→ {name}"
            if key is not None:
                box = boxes[key]
                steps.append(
                    TimelineStep(
                        key=key, label=box["label"], kind=box["kind"], state=name, entered_at=at
                    )
                )
            elif name in endings:
                steps.append(TimelineStep(label=name, kind="ending", state=name, entered_at=at))
            else:  # a state the view does not know (an older version of the workflow)
                steps.append(TimelineStep(label=name, kind="state", state=name, entered_at=at))
            open_key = key
        elif kind == "TaskSucceeded" and steps and steps[-1].key:
            box = boxes.get(steps[-1].key or "")
            if box and box.get("sends"):
                steps[-1].outcome = _send_outcome(event) or steps[-1].outcome
        elif kind in _ENDINGS and steps:
            steps[-1].left_at = steps[-1].left_at or at
    return steps


def _history(client: Any, execution_arn: str) -> list[dict[str, Any]] | None:
    events: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    try:
        while True:
            page = client.get_execution_history(**arguments)
            events += page.get("events", [])
            if not page.get("nextToken"):
                return events
            arguments["nextToken"] = page["nextToken"]
    except ClientError as error:  # gone (90 days after it ended) or not allowed
        log.warning("no history for %s: %s", execution_arn, error)
        return None


def _status(entry: EntryRecord, history: Iterable[Mapping[str, Any]] | None) -> str:
    if entry.status != "running" or history is None:
        return str(entry.status)
    newest = max(history, key=lambda e: int(e.get("id", 0)), default=None)
    return _ENDINGS.get(str(newest.get("type")), "running") if newest else "running"


def contact_timeline(settings: Settings, contact_id: str, client: Any = None) -> Timeline:
    """Every workflow the contact entered (latest entry each) with the steps it took."""
    if find_contact(contact_id) is None:
        raise ContactNotFound(f"contact {contact_id!r} does not exist")
    index: Mapping[str, Any] = load_index(settings).get("workflows") or {}
    journeys: list[TimelineJourney] = []
    for entry in EntryRecord.query(contact_id, consistent_read=True):
        history: list[dict[str, Any]] | None = None
        steps: list[TimelineStep] = []
        if entry.execution_arn:
            client = client or aws.client("stepfunctions", settings.region)
            history = _history(client, entry.execution_arn)
            if history is not None and entry.workflow_id in index:
                steps = timeline_steps(history, load_view(settings, entry.workflow_id))
        journeys.append(
            TimelineJourney(
                workflow_id=entry.workflow_id,
                workflow_name=str(
                    (index.get(entry.workflow_id) or {}).get("name") or entry.workflow_id
                ),
                entry_id=entry.entry_id,
                execution_arn=entry.execution_arn,
                console_url=console_url(entry.execution_arn)
                if entry.execution_arn and not settings.aws_endpoint_url
                else None,
                status=_status(entry, history),
                entered_at=entry.entered_at,
                ended_at=entry.ended_at,
                steps=steps,
            )
        )
    journeys.sort(key=lambda journey: journey.entered_at, reverse=True)
    return Timeline(contact_id=contact_id, generated_at=clock.now(), journeys=journeys)
