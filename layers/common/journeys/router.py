"""The router: every message on the events queue becomes waits released and journeys started.

Messages
--------
The events queue carries JSON objects; `type` says which. The intake API produces the
first and third, `start_workflow` steps and the hourly sweep the second
(`compiler.emit.emit_start_workflow`, `journeys.sweeps`); the router itself and the sweep
announce segment changes with the third (`journeys.segments`). Unknown fields are
ignored; a body that is not one of these raises `InvalidMessage`.

1. An event the contact performed (a page view, a purchase, `unsubscribed`)::

       {"type": "event", "event_id": "evt-123", "contact_id": "c-1",
        "name": "added_to_cart", "properties": {"sku": "A1", "total": 40},
        "occurred_at": "2026-11-22T12:00:00Z"}

2. Moving a contact into a workflow (its re-entry rules apply)::

       {"type": "enter_workflow", "workflow_id": "onboarding", "contact_id": "c-1",
        "event_id": "<source execution ARN>:<step id>",
        "source": {"workflow_id": "lead-nurture", "step_id": "go", "execution_id": "..."},
        "occurred_at": "2026-11-22T12:00:00Z"}          (occurred_at optional)

3. Changes already written to the contact record (by the API, an import, a sweep)::

       {"type": "contact_changed", "event_id": "chg-9", "contact_id": "c-1",
        "occurred_at": "2026-11-22T12:00:00Z",
        "tags_added": ["vip"], "tags_removed": [], "lists_joined": ["Newsletter"],
        "segments_entered": ["d-30"], "segments_exited": [],
        "attributes_changed": {"score": {"old": 10, "new": -120}}}

`event_id` is unique per contact and stable across retries of the same happening: it is
what makes a duplicate harmless, so the intake must take it from the client when given and
otherwise generate it once, before enqueueing. Contact ids have 1 to 256 characters,
event ids 1 to 512. Times are ISO 8601; a time without an offset is UTC.

What a journey receives
-----------------------
The execution input of `compiler.emit`: ``{"contact_id", "workflow_id", "entry_id",
"iteration": 0, "trigger", "data": {}}`` where ``entry_id`` is the execution name and
``trigger`` is ``{"key", "name", "event_id", "occurred_at", "properties"}``:

=====================  ======================  ===========================================
message                key / name              properties
=====================  ======================  ===========================================
event                  event:<name> / <name>   the event's properties
tag added / removed    tag_added:<t> /         {"tag": t}
                       tag_added (tag_removed)
list joined            list:<l> / list         {"list": l}
segment entered / left segment_entered:<s> /   {"segment": s}
                       segment_entered (...)
attribute changed      attribute_changed:<a> / {"attribute": a, "old": v, "new": v}
                       attribute_changed
enter_workflow         workflow:<source id> /  the source: {"workflow_id", "step_id",
                       enter_workflow          "execution_id"} or, from the sweep,
                       (date:<a> or            {"trigger", "occurrence"}; key
                       inactive_for:<d> from   "enter_workflow" when there is no source
                       the sweep)
=====================  ======================  ===========================================

What routing does
-----------------
1. Claim the message: a conditional put of a marker item in the events table, in the
   contact's partition, sort key ``!routed#<event_id>`` (``!`` sorts before every
   timestamp, so `store.events_since` and any query bounded below by a time never see
   markers). The marker records how far routing got (`released_at`, `routed_at`) and
   holds a short lease against a concurrent consumer of the same message. A routed
   marker makes a duplicate a no-op; an unfinished one (the previous attempt failed or
   the Lambda died) is taken over, skipping what is recorded as done. Keyed by the id
   alone, the dedupe holds even when a duplicate carries a different `occurred_at`.
2. Events are stored (`EventRecordModel`, sort key ``<iso occurred_at>#<event_id>``) so
   that decisions can count them and a wait registered just after sees it, and the
   contact's ``last_active_at`` moves forward to the event (never back, never past now;
   a contact that does not exist is not created): inactivity counts from it.
2b. Segments: after an event, or a contact_changed message that changed tags, lists or
   attributes, the contact's segments are evaluated again (`segments.refresh`). A change
   is written to the contact's ``segments`` map and announced as ONE ``contact_changed``
   message with ``segments_entered``/``segments_exited`` and the id
   ``seg:<event_id>:<+entered,-exited>``, sent to the events queue. The announcement is
   parked on the contact item in the same write as the map and cleared once sent, so a
   retry (or any later evaluation) sends a parked one first, under the same id: the
   router drops the copy, and nothing is lost or announced twice. No marker field is
   needed for this: the contact item is the record of progress. A contact_changed message
   carrying only segment changes (an announcement) is not evaluated again: the map
   already holds them and nothing a rule reads has changed, so announcements cannot
   loop.
3. Waits are released (`waits.resolve`): ``event:<name>`` for events (``unsubscribed``
   included: the exit of `stop_on_unsubscribe`), ``tag:<tag>`` for tags added and
   ``segment:<segment>`` for segments entered. This happens before any journey starts,
   so a journey started by this very message cannot be released by it.
4. Every workflow with a matching trigger is entered, at most once per message: events
   by name and `where` filters, tags added/removed, lists joined, segments
   entered/exited, attribute changes (old differs from new, and `to` holds for the new
   value). Date and inactivity triggers are started by the sweep's enter_workflow
   messages, which carry the trigger key in ``source.trigger``.
5. Entering applies the re-entry rule to the contact's `EntryRecord` (never: not if
   there was an entry; after: not within the period; always), claims the record with a
   conditional write (two messages racing cannot both enter a "never" workflow), then
   calls StartExecution on ``state_machine_arn_prefix + workflow_id`` with a name made
   from contact, workflow and event (`execution_name`), so a duplicate can never start a
   second journey; ExecutionAlreadyExists is success. The entry is written before the
   start (status "running", the execution's ARN); an entry naming this very execution
   means a retry, which starts again; a start refused for good marks it "failed", and
   a failed entry does not count for re-entry.

Throttling and other transient AWS errors raise `TransientError` so the SQS record is
retried; the marker makes the retry skip what was done and finish the rest. Messages
that can never be routed raise `InvalidMessage` or `StartFailed`; they too fail the
record, and the queue's redrive policy moves them to the dead-letter queue.

Cost
----
Per message: the marker (one conditional put, one update), and for an event one put and
one conditional UpdateItem of ``last_active_at``. With segments defined, an event or a
contact change also reads the contact (one strongly consistent GetItem) and, when a rule
counts events, one Query of the contact's events over the longest window (filtered to
the names the rules count; billed by what is read). Only a change of membership writes
more: one UpdateItem with the announcement, one SendMessageBatch, one UpdateItem clearing
it, and the announcement is itself routed like any message. Deployments without segment
definitions pay none of the segment reads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, PynamoDBException, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from journeys import aws, clock, conditions, events_queue, segments, stats, waits
from journeys.compiler import models as m
from journeys.compiler.segments import SegmentSet, segment_set_from_index
from journeys.exceptions import JourneysError, TransientError
from journeys.settings import MissingSetting, Settings
from journeys.store import (
    ContactRecord,
    EntryRecord,
    EventRecordModel,
    bind_tables,
    iso,
    parse_iso,
)

__all__ = [
    "ENTRY_ID_MAX",
    "EXECUTION_NAME_MAX",
    "AttributeChange",
    "ContactChangedMessage",
    "EnterSource",
    "EnterWorkflowMessage",
    "EventMessage",
    "InvalidMessage",
    "Match",
    "Message",
    "Outcome",
    "PreviousEntry",
    "RoutingMarker",
    "Start",
    "StartFailed",
    "WorkflowIndex",
    "WorkflowIndexError",
    "WorkflowSpec",
    "bind",
    "decide_entry",
    "execution_input",
    "execution_name",
    "load_index",
    "match",
    "parse_index",
    "parse_message",
    "route",
    "signals",
    "start_execution",
    "stepfunctions_client",
]

log = logging.getLogger(__name__)

#: Step Functions allows 80 characters; `repeat` steps name the next run
#: "<entry_id>-r<iteration>", so entry ids keep 8 characters free for that suffix.
EXECUTION_NAME_MAX = 80
ENTRY_ID_MAX = 72
#: Routing markers outlive SQS retention plus a DLQ redrive, and match the 90 days
#: Step Functions keeps a closed execution's name reserved.
MARKER_TTL_SECONDS = 90 * 86400
#: Events outlive the longest execution (a year): waits and `within` conditions read them.
EVENT_TTL_SECONDS = 366 * 86400
#: How long a consumer holds a message before another may take it over (less than the
#: queue's visibility timeout, so a retry after a crash finds the lease expired).
LEASE_SECONDS = 60
MARKER_PREFIX = "!routed#"
_ENTRY_ATTEMPTS = 3
_UTC = ZoneInfo("UTC")

#: AWS error codes worth retrying (throttling, limits that clear, server-side trouble).
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "ExecutionLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerErrorException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
    }
)


class InvalidMessage(JourneysError, ValueError):
    """A queue message that is not one of the documented messages (retrying cannot help)."""


class WorkflowIndexError(JourneysError, ValueError):
    """The workflow index is not what `journeys compile` writes."""


class StartFailed(JourneysError):
    """StartExecution refused for a reason retrying will not change (a missing state
    machine, input too large); the message fails and ends in the dead-letter queue."""


# --- Messages ------------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    """Times without an offset are UTC (machine timestamps)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
#: Room for `start_workflow` ids: "<execution ARN (up to ~210)>:<step id>".
EventId = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Moment = Annotated[datetime, AfterValidator(_aware)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: EventId
    contact_id: Id


class EventMessage(_Message):
    """Something the contact did."""

    type: Literal["event"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    properties: dict[str, Any] = Field(default_factory=dict)
    occurred_at: Moment


class EnterSource(BaseModel):
    """Where an `enter_workflow` message comes from: a `start_workflow` step, or the
    hourly sweep of date triggers (`trigger` "date:<attribute>" and its `occurrence`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    workflow_id: str = ""
    step_id: str = ""
    execution_id: str = ""
    trigger: str = ""
    occurrence: str = ""


class EnterWorkflowMessage(_Message):
    """Move the contact into `workflow_id` (the target's re-entry rules apply)."""

    type: Literal["enter_workflow"]
    workflow_id: Id
    source: EnterSource | None = None
    occurred_at: Moment | None = None


class AttributeChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    old: Any = None
    new: Any = None


class ContactChangedMessage(_Message):
    """Changes already written to the contact record."""

    type: Literal["contact_changed"]
    occurred_at: Moment
    tags_added: list[str] = Field(default_factory=list)
    tags_removed: list[str] = Field(default_factory=list)
    lists_joined: list[str] = Field(default_factory=list)
    segments_entered: list[str] = Field(default_factory=list)
    segments_exited: list[str] = Field(default_factory=list)
    attributes_changed: dict[str, AttributeChange] = Field(default_factory=dict)


Message = Annotated[
    EventMessage | EnterWorkflowMessage | ContactChangedMessage, Field(discriminator="type")
]
AnyMessage = EventMessage | EnterWorkflowMessage | ContactChangedMessage
_MESSAGE: TypeAdapter[AnyMessage] = TypeAdapter(Message)


def parse_message(body: str | bytes | Mapping[str, Any]) -> AnyMessage:
    """A queue message from its JSON body (or the decoded mapping)."""
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else body
    except ValueError as error:
        raise InvalidMessage(f"message body is not JSON: {error}") from None
    if not isinstance(data, Mapping):
        raise InvalidMessage(f"message body must be a JSON object, got {type(data).__name__}")
    try:
        return _MESSAGE.validate_python(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidMessage(
            f"invalid {data.get('type', 'untyped')!s} message: {problems}"
        ) from None


# --- The workflow index --------------------------------------------------------------------

AnyTrigger = (
    m.EventTrigger
    | m.TagAddedTrigger
    | m.TagRemovedTrigger
    | m.SegmentEnteredTrigger
    | m.SegmentExitedTrigger
    | m.AttributeChangedTrigger
    | m.DateTrigger
    | m.ListTrigger
    | m.InactivityTrigger
)
ReEntry = Literal["never", "always"] | m.ReEntryAfter


class WorkflowSpec(BaseModel):
    """What the router knows of one workflow (an entry of state_machines/index.json)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str = ""
    triggers: list[m.Trigger] = Field(min_length=1)
    settings: m.Settings = m.Settings()
    goal: str | None = None
    exits: list[str] = Field(default_factory=list)

    @field_validator("triggers", mode="before")
    @classmethod
    def _without_keys(cls, value: Any) -> Any:
        """The index writes each trigger's key beside its fields; the models compute it."""
        if not isinstance(value, list):
            return value
        return [
            {k: v for k, v in item.items() if k != "key"} if isinstance(item, dict) else item
            for item in value
        ]

    def zone(self) -> ZoneInfo:
        """The zone `where` filters and `to` comparisons read dates in."""
        return ZoneInfo(self.settings.time_zone) if self.settings.time_zone else _UTC


Candidate = tuple[WorkflowSpec, AnyTrigger]


@dataclass(frozen=True)
class WorkflowIndex:
    """Every workflow by id, the triggers by key ("event:added_to_cart", "list:Leads"),
    and the segment definitions."""

    workflows: Mapping[str, WorkflowSpec]
    by_key: Mapping[str, tuple[Candidate, ...]]
    segments: SegmentSet = field(default_factory=SegmentSet)

    def candidates(self, key: str) -> tuple[Candidate, ...]:
        return self.by_key.get(key, ())


def parse_index(data: Mapping[str, Any]) -> WorkflowIndex:
    """The index from the JSON `journeys compile` writes:
    {"workflows": {id: {...}}, "segments": {id: {"rule": ...}}} (segments optional)."""
    raw = data.get("workflows") if isinstance(data, Mapping) else None
    if not isinstance(raw, Mapping):
        raise WorkflowIndexError('the workflow index needs a "workflows" object')
    try:
        segment_set = segment_set_from_index(data.get("segments"))
    except ValueError as error:
        raise WorkflowIndexError(f"{error}; recompile the workflows") from None
    workflows: dict[str, WorkflowSpec] = {}
    by_key: dict[str, list[Candidate]] = {}
    for workflow_id, entry in raw.items():
        try:
            spec = WorkflowSpec.model_validate({**entry, "id": workflow_id})
        except (ValidationError, TypeError) as error:
            raise WorkflowIndexError(f"workflow {workflow_id!r} in the index: {error}") from None
        for stated, trigger in zip(entry["triggers"], spec.triggers, strict=True):
            if isinstance(stated, Mapping) and stated.get("key", trigger.key()) != trigger.key():
                raise WorkflowIndexError(
                    f"workflow {workflow_id!r}: trigger key {stated['key']!r} does not match "
                    f"its fields ({trigger.key()!r}); recompile the workflows"
                )
            by_key.setdefault(trigger.key(), []).append((spec, trigger))
        workflows[workflow_id] = spec
    return WorkflowIndex(
        workflows, {key: tuple(found) for key, found in by_key.items()}, segment_set
    )


def load_index(path: str | os.PathLike[str]) -> WorkflowIndex:
    """The index at `path`, parsed once per file version (cached on path, size and mtime)."""
    file = Path(path)
    try:
        stat = file.stat()
    except OSError as error:
        raise WorkflowIndexError(f"cannot read the workflow index {str(file)!r}: {error}") from None
    return _load_index(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load_index(path: str, mtime_ns: int, size: int) -> WorkflowIndex:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:
        raise WorkflowIndexError(f"the workflow index {path!r} is not JSON: {error}") from None
    return parse_index(data)


# --- Matching (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """A workflow to enter, and the `trigger` its execution input carries."""

    workflow_id: str
    trigger: dict[str, Any]

    @property
    def key(self) -> str:
        return str(self.trigger["key"])


def _trigger(
    key: str, name: str, message: AnyMessage, occurred_at: datetime, properties: dict[str, Any]
) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "event_id": message.event_id,
        "occurred_at": iso(occurred_at),
        "properties": properties,
    }


def _changes(message: ContactChangedMessage) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(trigger key, kind, properties) for every change, in a fixed order."""
    for tag in message.tags_added:
        yield f"tag_added:{tag}", "tag_added", {"tag": tag}
    for tag in message.tags_removed:
        yield f"tag_removed:{tag}", "tag_removed", {"tag": tag}
    for name in message.lists_joined:
        yield f"list:{name}", "list", {"list": name}
    for segment in message.segments_entered:
        yield f"segment_entered:{segment}", "segment_entered", {"segment": segment}
    for segment in message.segments_exited:
        yield f"segment_exited:{segment}", "segment_exited", {"segment": segment}
    for attribute, change in message.attributes_changed.items():
        yield (
            f"attribute_changed:{attribute}",
            "attribute_changed",
            {"attribute": attribute, "old": change.old, "new": change.new},
        )


def _holds(
    trigger: AnyTrigger, properties: Mapping[str, Any], spec: WorkflowSpec, now: datetime
) -> bool:
    if isinstance(trigger, m.EventTrigger):
        return conditions.where_matches(trigger.where, properties, now, spec.zone())
    if isinstance(trigger, m.AttributeChangedTrigger):
        old, new = properties.get("old"), properties.get("new")
        if old == new:
            return False  # not a change
        return trigger.to is None or conditions.compare(trigger.to, new, now, spec.zone())
    return True


def match(message: AnyMessage, index: WorkflowIndex, now: datetime | None = None) -> list[Match]:
    """The workflows the message enters, each once, with the first trigger that matched."""
    now = now or clock.now()
    if isinstance(message, EnterWorkflowMessage):
        if message.workflow_id not in index.workflows:
            return []
        source = message.source or EnterSource()
        if source.trigger:
            key = source.trigger  # the date trigger the sweep found due
        elif source.workflow_id:
            key = f"workflow:{source.workflow_id}"
        else:
            key = "enter_workflow"
        properties = source.model_dump(exclude_defaults=True)
        at = message.occurred_at or now
        return [
            Match(message.workflow_id, _trigger(key, "enter_workflow", message, at, properties))
        ]
    if isinstance(message, EventMessage):
        changes: list[tuple[str, str, dict[str, Any]]] = [
            (f"event:{message.name}", message.name, dict(message.properties))
        ]
    else:
        changes = list(_changes(message))
    found: dict[str, Match] = {}
    for key, name, properties in changes:
        for spec, trigger in index.candidates(key):
            if spec.id in found or not _holds(trigger, properties, spec, now):
                continue
            found[spec.id] = Match(
                spec.id, _trigger(key, name, message, message.occurred_at, properties)
            )
    return list(found.values())


def signals(message: AnyMessage) -> list[tuple[str, dict[str, Any]]]:
    """(signal, properties) the message releases waits with: events, tags added and
    segments entered (the signals goal and exit watches and wait_for_event steps use)."""
    if isinstance(message, EventMessage):
        return [(f"event:{message.name}", dict(message.properties))]
    if isinstance(message, ContactChangedMessage):
        return [(f"tag:{tag}", {"tag": tag}) for tag in message.tags_added] + [
            (f"segment:{segment}", {"segment": segment}) for segment in message.segments_entered
        ]
    return []


# --- Re-entry (pure) -----------------------------------------------------------------------

EntryDecision = Literal["enter", "retry", "never", "too_soon"]


@dataclass(frozen=True, slots=True)
class PreviousEntry:
    """The contact's latest entry into the workflow (from `EntryRecord`)."""

    entry_id: str
    entered_at: datetime
    status: str = "running"


def decide_entry(
    rule: ReEntry, previous: PreviousEntry | None, entry_id: str, now: datetime
) -> EntryDecision:
    """Whether a contact may enter: "enter"; "retry" when the latest entry is this very one
    (a retried message: start again, the execution name makes it idempotent); "never" or
    "too_soon" when the re-entry rule refuses. An entry whose start failed does not count."""
    if previous is not None and previous.entry_id == entry_id:
        return "retry"
    if previous is None or previous.status == "failed" or rule == "always":
        return "enter"
    if rule == "never":
        return "never"
    assert isinstance(rule, m.ReEntryAfter)
    elapsed = (_aware(now) - _aware(previous.entered_at)).total_seconds()
    return "enter" if elapsed >= rule.after.seconds else "too_soon"


# --- Execution names and input (pure) ------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_REPEAT_SUFFIX = re.compile(r"-r\d+$")


def execution_name(contact_id: str, workflow_id: str, event_id: str) -> str:
    """The execution (and entry id) for this contact, workflow and triggering event.

    Readable when it can be, ``<workflow>_<contact>_<event>``: only when every part is
    letters, digits and ``-`` (so the two ``_`` separate them unambiguously) and it fits
    in `ENTRY_ID_MAX`. Otherwise ``<workflow[:24]>_<contact>__<sha256[:32]>``: the contact
    with every run of other characters made one ``-`` (``ana@example.com`` becomes
    ``ana-example-com``), cut only where the name would pass `ENTRY_ID_MAX` (at least 13
    characters are kept); the double ``_`` keeps the two forms apart, the digest over all
    three parts keeps names unique. Only ``A-Z a-z 0-9 - _`` are used, so CloudWatch and
    X-Ray take them too.

    As much of the contact as fits stays in the name because the Step Functions console
    filters a state machine's executions by name only (ListExecutions itself has no name
    filter): searching ``<workflow>_<contact>`` there finds both forms of a contact's
    journeys, whether the console matches the start of a name or any part of it (for
    workflow ids up to 24 characters, which the hashed form keeps whole).
    """
    parts = (workflow_id, contact_id, event_id)
    readable = "_".join(parts)
    if (
        all(_SAFE.fullmatch(part) for part in parts)
        and len(readable) <= ENTRY_ID_MAX
        and not _REPEAT_SUFFIX.search(event_id)  # would collide with a repeat's run name
    ):
        return readable
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    workflow = _UNSAFE.sub("-", workflow_id)[:24]
    room = ENTRY_ID_MAX - len(workflow) - len(digest) - 3  # "_" and "__"
    contact = _UNSAFE.sub("-", contact_id)[:room]
    return f"{workflow}_{contact}__{digest}"


def execution_input(
    contact_id: str, workflow_id: str, entry_id: str, trigger: Mapping[str, Any]
) -> str:
    """The execution input contract of `compiler.emit`, as deterministic JSON (the same
    message always gives the same input, which StartExecution needs to be idempotent)."""
    payload = {
        "contact_id": contact_id,
        "workflow_id": workflow_id,
        "entry_id": entry_id,
        "iteration": 0,
        "trigger": dict(trigger),
        "data": {},
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _execution_arn(machine_arn: str, name: str) -> str | None:
    if ":stateMachine:" not in machine_arn:
        return None
    return machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


# --- AWS -----------------------------------------------------------------------------------


def stepfunctions_client(settings: Settings) -> Any:
    """A Step Functions client that already retries throttling a few times itself."""
    return aws.client("stepfunctions", settings.region, attempts=5)


def _is_transient(error: Exception) -> bool:
    if isinstance(error, BotoCoreError):
        return True  # connection trouble, timeouts
    if isinstance(error, PynamoDBException):
        cause = error.cause
        return isinstance(cause, Exception) and _is_transient(cause)
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or status >= 500
    return False


def _conditional_failed(error: PynamoDBException) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


StartResult = Literal["started", "already_started"]


def start_execution(sfn: Any, machine_arn: str, name: str, payload: str) -> StartResult:
    """StartExecution; a name already used is our own execution (deterministic names)."""
    try:
        sfn.start_execution(stateMachineArn=machine_arn, name=name, input=payload)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ExecutionAlreadyExists":
            return "already_started"
        if _is_transient(error):
            raise TransientError(f"StartExecution {name}: {code}") from error
        raise StartFailed(f"StartExecution {name} on {machine_arn}: {code}: {error}") from error
    except BotoCoreError as error:
        raise TransientError(f"StartExecution {name}: {error}") from error
    return "started"


class RoutingMarker(Model):
    """How far routing of one message got; lives in the events table (see module notes)."""

    class Meta:
        table_name = "unbound-events"

    contact_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "!routed#<event_id>"
    message_type = UnicodeAttribute()
    claimed_at = UnicodeAttribute()
    lease_until = NumberAttribute(default=0)  # epoch seconds
    released_at = UnicodeAttribute(null=True)
    routed_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # TTL


def bind(settings: Settings) -> None:
    """Point the store's models, the routing marker and the segments' view of contacts at
    this deployment's tables (`store.bind_tables` and more); call once per invocation."""
    bind_tables(settings)
    _bind_marker(settings, force=True)
    segments.bind(settings)


def _bind_marker(settings: Settings, force: bool = False) -> None:
    model: type[Model] = RoutingMarker
    where = (settings.events_table, settings.region, settings.dynamodb_endpoint)
    if not force and (model.Meta.table_name, model.Meta.region, model.Meta.host) == where:
        return
    model.Meta.table_name, model.Meta.region, model.Meta.host = where
    model._connection = None


# --- Routing -------------------------------------------------------------------------------

StartStatus = Literal[
    "started", "already_started", "skipped_never", "skipped_too_soon", "unknown_workflow"
]


@dataclass(frozen=True, slots=True)
class Start:
    """What happened to one workflow the message matched."""

    workflow_id: str
    trigger_key: str
    execution_name: str
    status: StartStatus


@dataclass(frozen=True, slots=True)
class Outcome:
    """What routing one message did."""

    message_type: str
    contact_id: str
    event_id: str
    duplicate: bool = False
    released: int = 0
    starts: tuple[Start, ...] = ()
    #: Segment changes this message caused, announced as `contact_changed` messages.
    segments_entered: tuple[str, ...] = ()
    segments_exited: tuple[str, ...] = ()

    @property
    def started(self) -> list[str]:
        """Workflows the contact is in because of this message."""
        return [s.workflow_id for s in self.starts if s.status in ("started", "already_started")]

    def summary(self) -> dict[str, Any]:
        return {
            "message_type": self.message_type,
            "contact_id": self.contact_id,
            "event_id": self.event_id,
            "duplicate": self.duplicate,
            "released": self.released,
            "starts": {s.workflow_id: s.status for s in self.starts},
            "segments_entered": list(self.segments_entered),
            "segments_exited": list(self.segments_exited),
        }


def route(
    message: AnyMessage | Mapping[str, Any],
    index: WorkflowIndex,
    settings: Settings,
    now: datetime | None = None,
    sfn: Any = None,
    sqs: Any = None,
) -> Outcome:
    """Route one queue message (see the module notes). Safe to call again with the same
    message: a finished message is a no-op, an unfinished one is completed. `sqs` sends
    segment announcements to the events queue (created when one is first needed)."""
    if not isinstance(message, EventMessage | EnterWorkflowMessage | ContactChangedMessage):
        message = parse_message(message)
    now = _aware(now or clock.now())
    _bind_marker(settings)
    segments.bind(settings)
    try:
        claim = _claim(message, now)
        if claim is None:
            return Outcome(message.type, message.contact_id, message.event_id, duplicate=True)
        try:
            return _route_claimed(message, claim, index, settings, now, sfn, sqs)
        except BaseException:
            _drop_lease(claim)
            raise
    except PynamoDBException as error:
        if _is_transient(error):
            raise TransientError(f"DynamoDB: {error.cause_response_code}: {error}") from error
        raise


def _route_claimed(
    message: AnyMessage,
    claim: RoutingMarker,
    index: WorkflowIndex,
    settings: Settings,
    now: datetime,
    sfn: Any,
    sqs: Any,
) -> Outcome:
    if isinstance(message, EventMessage):
        _store_event(message, now)
        _mark_active(message, now)
    announced = _refresh_segments(message, index.segments, settings, now, sqs)
    matches = match(message, index, now)
    if matches and not settings.state_machine_arn_prefix:
        raise MissingSetting("STATE_MACHINE_ARN_PREFIX is not set")
    sfn = sfn if sfn is not None else stepfunctions_client(settings)
    released = 0
    if claim.released_at is None:
        released = _release(message, sfn)
        if matches:  # record it: a retry after a failed start must not release again
            claim.update(actions=[RoutingMarker.released_at.set(iso(now))])
    starts: list[Start] = []
    errors: list[Exception] = []
    for found in matches:
        try:
            starts.append(
                _enter(message, found, index.workflows[found.workflow_id], settings, now, sfn)
            )
        except (TransientError, StartFailed, PynamoDBException) as error:
            errors.append(error)
    if isinstance(message, EnterWorkflowMessage) and message.workflow_id not in index.workflows:
        log.warning("enter_workflow: unknown workflow %r", message.workflow_id)
        name = execution_name(message.contact_id, message.workflow_id, message.event_id)
        starts.append(Start(message.workflow_id, "enter_workflow", name, "unknown_workflow"))
    if errors:
        _raise_first(errors)
    actions: list[Action] = [
        RoutingMarker.routed_at.set(iso(now)),
        RoutingMarker.lease_until.set(0),
    ]
    if claim.released_at is None:
        actions.append(RoutingMarker.released_at.set(iso(now)))
    claim.update(actions=actions)
    return Outcome(
        message.type,
        message.contact_id,
        message.event_id,
        False,
        released,
        tuple(starts),
        segments_entered=tuple(s for a in announced for s in a.entered),
        segments_exited=tuple(s for a in announced for s in a.exited),
    )


def _raise_first(errors: Sequence[Exception]) -> None:
    """Permanent failures win (the message must reach the dead-letter queue eventually)."""
    permanent = [e for e in errors if not isinstance(e, TransientError) and not _is_transient(e)]
    raise (permanent or list(errors))[0]


def _claim(message: AnyMessage, now: datetime) -> RoutingMarker | None:
    """Take the message: a new marker, or an unfinished one whose lease ran out. None for a
    duplicate of a routed message; TransientError while another consumer holds it."""
    stamp = int(now.timestamp())
    key = MARKER_PREFIX + message.event_id
    marker = RoutingMarker(
        message.contact_id,
        key,
        message_type=message.type,
        claimed_at=iso(now),
        lease_until=stamp + LEASE_SECONDS,
        expires_at=stamp + MARKER_TTL_SECONDS,
    )
    try:
        marker.save(condition=RoutingMarker.sort_key.does_not_exist())
        return marker
    except PutError as error:
        if not _conditional_failed(error):
            raise
    try:
        existing = RoutingMarker.get(message.contact_id, key, consistent_read=True)
    except RoutingMarker.DoesNotExist:
        raise TransientError(f"routing marker of {message.event_id!r} vanished") from None
    if existing.routed_at is not None:
        return None
    held_until = existing.lease_until
    if held_until > stamp:
        raise TransientError(f"message {message.event_id!r} is being routed by another consumer")
    try:
        existing.update(
            actions=[RoutingMarker.lease_until.set(stamp + LEASE_SECONDS)],
            condition=(RoutingMarker.lease_until == held_until)
            & RoutingMarker.routed_at.does_not_exist(),
        )
    except UpdateError as error:
        if _conditional_failed(error):
            raise TransientError(f"message {message.event_id!r} was taken over") from error
        raise
    return existing


def _drop_lease(claim: RoutingMarker) -> None:
    """After a failure, let the retry in at once (best effort: the lease expires anyway)."""
    try:
        claim.update(
            actions=[RoutingMarker.lease_until.set(0)],
            condition=RoutingMarker.routed_at.does_not_exist(),
        )
    except Exception:  # the original error matters more
        log.warning("could not drop the routing lease of %s", claim.sort_key, exc_info=True)


def _store_event(message: EventMessage, now: datetime) -> None:
    """Keep the event for conditions and the wait handshake (write before reading waits)."""
    occurred = iso(message.occurred_at)
    EventRecordModel(
        message.contact_id,
        f"{occurred}#{message.event_id}",
        name=message.name,
        event_id=message.event_id,
        occurred_at=occurred,
        properties=dict(message.properties),
        expires_at=int(now.timestamp()) + EVENT_TTL_SECONDS,
    ).save()


def _mark_active(message: EventMessage, now: datetime) -> None:
    """Move the contact's `last_active_at` forward to this event (never back: events
    arrive out of order; never past now: a client clock ahead must not keep a contact
    active). A contact that does not exist is not created."""
    moment = iso(min(message.occurred_at, now))
    try:
        ContactRecord(message.contact_id).update(
            actions=[ContactRecord.last_active_at.set(moment)],
            condition=ContactRecord.contact_id.exists()
            & (
                ContactRecord.last_active_at.does_not_exist()
                | (ContactRecord.last_active_at < moment)
            ),
        )
    except UpdateError as error:
        if not _conditional_failed(error):
            raise


def _only_segment_changes(message: ContactChangedMessage) -> bool:
    """An announcement of segment changes (ours): nothing a rule reads has changed."""
    return not (
        message.tags_added
        or message.tags_removed
        or message.lists_joined
        or message.attributes_changed
    )


def _refresh_segments(
    message: AnyMessage, segment_set: SegmentSet, settings: Settings, now: datetime, sqs: Any
) -> list[segments.Announcement]:
    """Re-evaluate the contact's segments after an event or a change of its record, and
    announce what changed as one `contact_changed` message (see `journeys.segments`)."""
    if not segment_set or isinstance(message, EnterWorkflowMessage):
        return []
    if isinstance(message, ContactChangedMessage) and _only_segment_changes(message):
        return []  # the map already holds these changes: evaluating again finds nothing
    client = sqs

    def send(body: str) -> None:
        nonlocal client
        if client is None:
            client = aws.client("sqs", settings.region)
        events_queue.enqueue(client, settings.events_queue_url, [body])

    return segments.refresh(
        message.contact_id,
        segment_set,
        now,
        lambda found: segments.message_announcement_id(message.event_id, found),
        send,
    )


def _release(message: AnyMessage, sfn: Any) -> int:
    occurred_at = message.occurred_at or clock.now()
    released = 0
    for signal, properties in signals(message):
        try:
            released += waits.resolve(
                message.contact_id, signal, properties, occurred_at, client=sfn
            )
        except (ClientError, BotoCoreError) as error:
            if _is_transient(error):
                raise TransientError(f"releasing waits for {signal}: {error}") from error
            raise
    return released


def _previous(contact_id: str, workflow_id: str) -> tuple[EntryRecord | None, PreviousEntry | None]:
    try:
        record = EntryRecord.get(contact_id, workflow_id, consistent_read=True)
    except EntryRecord.DoesNotExist:
        return None, None
    return record, PreviousEntry(record.entry_id, parse_iso(record.entered_at), record.status)


def _enter(
    message: AnyMessage,
    found: Match,
    spec: WorkflowSpec,
    settings: Settings,
    now: datetime,
    sfn: Any,
) -> Start:
    name = execution_name(message.contact_id, spec.id, message.event_id)
    machine_arn = settings.state_machine_arn_prefix + spec.id
    for _ in range(_ENTRY_ATTEMPTS):
        record, previous = _previous(message.contact_id, spec.id)
        decision = decide_entry(spec.settings.re_entry, previous, name, now)
        if decision in ("never", "too_soon"):
            status: StartStatus = "skipped_never" if decision == "never" else "skipped_too_soon"
            return Start(spec.id, found.key, name, status)
        if decision == "retry":
            break
        claim = EntryRecord(
            message.contact_id,
            spec.id,
            entry_id=name,
            execution_arn=_execution_arn(machine_arn, name),
            entered_at=iso(now),
            status="running",
        )
        condition = (
            EntryRecord.entry_id == record.entry_id
            if record is not None
            else EntryRecord.workflow_id.does_not_exist()
        )
        try:
            claim.save(condition=condition)
            break
        except PutError as error:
            if not _conditional_failed(error):
                raise
            # Another message entered the contact meanwhile: decide again on its entry.
    else:
        raise TransientError(f"entry of {message.contact_id!r} into {spec.id!r} kept changing")
    payload = execution_input(message.contact_id, spec.id, name, found.trigger)
    try:
        result = start_execution(sfn, machine_arn, name, payload)
    except StartFailed:
        _set_status(message.contact_id, spec.id, name, "failed")
        raise
    if previous is not None and previous.entry_id == name and previous.status == "failed":
        _set_status(message.contact_id, spec.id, name, "running")  # a retry that worked
    if result == "started":  # an already-started execution was counted when it started
        stats.record(spec.id, stats.ENTERED, stats.ACTIVE)
    return Start(spec.id, found.key, name, result)


def _set_status(contact_id: str, workflow_id: str, entry_id: str, status: str) -> None:
    """An entry whose execution could not start is "failed" and does not count for
    re-entry rules; a retry that starts it makes it "running" again."""
    try:
        EntryRecord(contact_id, workflow_id).update(
            actions=[EntryRecord.status.set(status)],
            condition=EntryRecord.entry_id == entry_id,
        )
    except UpdateError:
        log.warning("could not mark entry %s of %s %s", entry_id, contact_id, status, exc_info=True)
