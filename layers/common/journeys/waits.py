"""The wait-for-event handshake: task tokens parked until a contact does something.

`wait_for_event` steps and the goal/exit watches call `register` with their task token.
The router calls `resolve` for every event it stores. Each side writes first and reads
second (strongly consistent), so whichever comes second always sees the other: an event
arriving just before its wait step is never lost. Both may see each other; the second
SendTaskSuccess then meets a closed token, which is harmless and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, TypeAdapter

from journeys import aws, clock, conditions
from journeys.compiler.models import Where
from journeys.store import WaitRecord, events_since, iso, plain

#: Step Functions' answers for a token that is already used, timed out or unknown.
CLOSED_TOKEN_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
#: Waits outlive the longest execution (one year) by a day, then DynamoDB drops them.
WAIT_TTL_SECONDS = 366 * 86400
_WHERE: TypeAdapter[Where] = TypeAdapter(Where)
_UTC = ZoneInfo("UTC")


def _matches(where: Mapping[str, Any] | None, properties: Mapping[str, Any], now: datetime) -> bool:
    """Filters are stored as the JSON the compiler wrote; parse them with the same model."""
    parsed = _WHERE.validate_python(where) if where else None
    return conditions.where_matches(parsed, properties, now, _UTC)


class WaitRequest(BaseModel):
    """The payload of `wait_for_event` steps and goal/exit watches (see compiler/emit.py)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["wait", "watch"]
    task_token: str
    contact_id: str
    workflow_id: str
    execution_id: str
    signal: str  # "event:<name>", "tag:<tag>" or "segment:<segment>"
    entered_at: datetime
    step_id: str = ""
    purpose: Literal["wait", "goal", "exit"] = "wait"
    where: dict[str, Any] | None = None


def _sort_key(signal: str, execution_id: str, step_id: str) -> str:
    return f"{signal}#{execution_id}#{step_id or 'watch'}"


def register(request: WaitRequest, now: datetime | None = None, client: Any = None) -> bool:
    """Park the token; resolve it at once if the event already happened. Returns whether
    it was resolved now."""
    now = now or clock.now()
    purpose = request.purpose if request.action == "watch" else "wait"
    record = WaitRecord(
        request.contact_id,
        _sort_key(request.signal, request.execution_id, request.step_id),
        signal=request.signal,
        task_token=request.task_token,
        purpose=purpose,
        where=request.where or {},
        registered_at=iso(now),
        expires_at=int(now.timestamp()) + WAIT_TTL_SECONDS,
    )
    record.save()
    kind, _, name = request.signal.partition(":")
    if kind != "event":
        return False  # tags and segments are resolved by the router when they change
    for event in events_since(request.contact_id, request.entered_at, names={name}):
        properties = plain(event.properties)
        if _matches(request.where, properties, now):
            return _complete(
                record, _event_output(event.name, properties, event.occurred_at), client
            )
    return False


def resolve(
    contact_id: str,
    signal: str,
    properties: Mapping[str, Any],
    occurred_at: datetime,
    client: Any = None,
) -> int:
    """Release every token waiting for `signal` whose filters match; return how many."""
    released = 0
    name = signal.partition(":")[2]
    for record in WaitRecord.query(
        contact_id, WaitRecord.sort_key.startswith(f"{signal}#"), consistent_read=True
    ):
        where = plain(record.where) or None
        if _matches(where, properties, occurred_at):
            released += _complete(record, _event_output(name, properties, iso(occurred_at)), client)
    return released


def _complete(record: WaitRecord, output: dict[str, Any], client: Any) -> bool:
    client = client or aws.client("stepfunctions")
    try:
        client.send_task_success(taskToken=record.task_token, output=json.dumps(output))
    except ClientError as error:
        if error.response["Error"]["Code"] not in CLOSED_TOKEN_ERRORS:
            raise
        record.delete()
        return False
    record.delete()
    return True


def _event_output(name: str, properties: Mapping[str, Any], occurred_at: str) -> dict[str, Any]:
    return {"event": name, "properties": dict(properties), "occurred_at": occurred_at}
