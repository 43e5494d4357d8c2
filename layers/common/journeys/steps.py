"""The services behind the Lambda Task states of compiled workflows.

Each takes the payload the compiler emits for its step kind (see compiler/emit.py), loads
what it needs from DynamoDB through `journeys.store`, and hands plain data to the pure
modules (`conditions`, `scheduling`, `messaging`). Handlers in functions/ only parse the
event into the request model and call one function here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict

from journeys import clock, conditions, messaging, scheduling, stats, store
from journeys.compiler.models import EventCondition
from journeys.settings import Settings
from journeys.templates import TEMPLATE_ADAPTER

#: How far back `performed X` looks when a condition gives no `within`.
EVENT_LOOKBACK = timedelta(days=400)


class StepRequest(BaseModel):
    """What every Task payload carries (compiler/emit.py `base_payload`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    contact_id: str
    workflow_id: str
    step_id: str
    step_label: str = ""
    execution_id: str = ""
    trigger: dict[str, Any] = {}
    data: dict[str, Any] = {}


class EvaluateRequest(StepRequest):
    entered_at: datetime
    paths: list[dict[str, Any]]
    default_time_zone: str | None = None


def zone_of(*names: str | None) -> ZoneInfo:
    """The first valid IANA zone among `names`, else UTC."""
    for name in names:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def evaluate(request: EvaluateRequest, now: datetime | None = None) -> dict[str, str]:
    """Which path a decision or split takes, on fresh contact data."""
    now = now or clock.now()
    contact = store.load_contact(request.contact_id)
    names = conditions.event_names_needed(request.paths)
    events = []
    if names:
        since = now - _lookback(request.paths)
        events = [
            conditions.EventRecord(
                r.name, store.parse_iso(r.occurred_at), store.plain(r.properties)
            )
            for r in store.events_since(request.contact_id, since, names)
        ]
    messages = []
    if conditions.needs_messages(request.paths):
        messages = [
            conditions.MessageRecord(
                r.workflow_id,
                r.step_id,
                r.channel,
                store.parse_iso(r.sent_at),
                store.parse_iso(r.opened_at) if r.opened_at else None,
                tuple(str(link) for link in r.clicked_links),
            )
            for r in store.messages_since(request.contact_id, request.entered_at)
        ]
    facts = conditions.Facts(
        contact=contact,
        events=events,
        messages=messages,
        trigger=request.trigger,
        workflow_id=request.workflow_id,
        now=now,
        zone=zone_of(contact.time_zone, request.default_time_zone),
        entered_at=request.entered_at,
    )
    return {"branch": conditions.choose_branch(request.paths, facts)}


def _lookback(paths: Sequence[Mapping[str, Any]]) -> timedelta:
    windows = [
        c.within.seconds if c.within else None
        for path in paths
        for c in conditions.walk(conditions.parse_condition(path["condition"]))
        if isinstance(c, EventCondition)
    ]
    if not windows or None in windows:
        return EVENT_LOOKBACK
    return timedelta(seconds=max(w for w in windows if w is not None))


# --- Schedule: time-zone and calendar maths for waits and date shifts ------------------

#: A Wait may not outlast the execution (one year); leave a day for the rest of the journey.
LONGEST_WAIT = timedelta(days=364)


class ScheduleRequest(StepRequest):
    action: Literal["date", "window", "shift_date"]
    time_zone: str | None = None
    # date
    attribute: str | None = None
    event_property: str | None = None
    offset_seconds: int = 0
    at: str | None = None
    # window
    days: list[str] = []
    start: str = "00:00"
    end: str = "00:00"
    best_time: bool = False
    # shift_date
    shift: str = ""
    shift_seconds: int = 0


def schedule(request: ScheduleRequest, now: datetime | None = None) -> dict[str, Any]:
    """When a wait ends ({"until": ISO UTC}), or move a date attribute ({"attribute": ...})."""
    now = now or clock.now()
    contact = store.load_contact(request.contact_id)
    zone = scheduling.resolve_zone(contact.time_zone, request.time_zone)
    if request.action == "shift_date":
        assert request.attribute, "shift_date needs an attribute"
        moved = scheduling.shift_date(
            contact.attributes.get(request.attribute), request.shift, request.shift_seconds, zone
        )
        if moved is not None:
            store.set_attribute(request.contact_id, request.attribute, moved)
        return {"attribute": request.attribute, "value": moved}
    if request.action == "date":
        if request.event_property:
            value = (request.trigger.get("properties") or {}).get(request.event_property)
        else:
            value = contact.attributes.get(request.attribute or "")
        until = scheduling.wait_until_moment(value, request.offset_seconds, request.at, zone, now)
    else:
        best_hour = contact.attributes.get("best_hour") if request.best_time else None
        until = scheduling.next_window(
            now, zone, request.days, request.start, request.end, best_hour
        )
    return {"until": scheduling.to_iso_utc(min(max(until, now), now + LONGEST_WAIT))}


# --- Send: every message a journey sends -------------------------------------------------

#: Messages are kept this long: the frequency cap and opened/clicked decisions read them.
MESSAGE_TTL = timedelta(days=400)
UNSUBSCRIBE_PATH = "/v1/unsubscribe"


class SendStepRequest(messaging.SendRequest):
    #: With execution and step, names one attempt (see compiler/emit.py `emit_send`).
    state_entered_at: str = ""


def load_template(directory: str | Path, name: str) -> Any:
    path = Path(directory) / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"template {name!r} is not deployed at {path}") from None
    return TEMPLATE_ADAPTER.validate_python(data)


def send(
    request: SendStepRequest,
    settings: Settings,
    now: datetime | None = None,
    clients: messaging.Clients | None = None,
) -> dict[str, Any]:
    """Send one message on fresh contact data, or say why not. Raises SendDeferred (the
    state machine waits and comes back) during quiet hours or over the frequency cap."""
    now = now or clock.now()
    contact = store.load_contact(request.contact_id)
    template = load_template(settings.templates_dir, request.template)
    if request.channel not in messaging.DELIVERABLE_CHANNELS:
        _count(request, "skipped")
        return {
            "status": "skipped",
            "reason": "channel-not-deliverable-yet",
            "channel": request.channel,
        }
    recent: list[datetime] = []
    cap = request.policy.frequency_cap if request.policy else None
    if cap is not None and request.channel != "team":
        since = now - timedelta(seconds=cap.per_seconds)
        recent = [
            store.parse_iso(m.sent_at) for m in store.messages_since(contact.contact_id, since)
        ]
    signer = (
        messaging.LinkSigner(settings.public_base_url + UNSUBSCRIBE_PATH, settings.link_secret)
        if settings.link_secret
        else None
    )
    decision = messaging.decide(
        request,
        contact,
        template,
        recent,
        now,
        signer=signer,
        workflow_name=workflow_name(settings, request.workflow_id),
    )
    if isinstance(decision, messaging.Defer):
        raise decision.error()
    if isinstance(decision, messaging.Skip):
        _count(request, "skipped")
        return {"status": "skipped", "reason": decision.reason, "detail": decision.detail}
    options = messaging.DeliveryOptions(
        sender=settings.sender,
        configuration_set=settings.configuration_set,
        push_application_arn=settings.push_application_arn,
    )
    message_id = messaging.deliver(
        decision, options, clients, now=now, tags=messaging.message_tags(request)
    )
    if request.channel != "team":  # team alerts do not count against the contact's cap
        store.MessageRecordModel(
            contact.contact_id,
            f"{store.iso(now)}#{message_id}",
            message_id=message_id,
            workflow_id=request.workflow_id,
            step_id=request.step_id,
            channel=request.channel,
            sent_at=store.iso(now),
            expires_at=int((now + MESSAGE_TTL).timestamp()),
        ).save()
    _count(request, "sent")
    return {"status": "sent", "message_id": message_id, "channel": request.channel}


def workflow_name(settings: Settings, workflow_id: str) -> str | None:
    """The workflow's name for templates (`{{ workflow.name }}`), from the deployed index;
    None (templates then show the id) when the index cannot say."""
    from journeys.router import WorkflowIndexError, load_index

    try:
        spec = load_index(settings.workflow_index).workflows.get(workflow_id)
    except WorkflowIndexError:
        return None
    return spec.name or None if spec is not None else None


def _count(request: SendStepRequest, metric: stats.StepMetric) -> None:
    """The step's sent/skipped statistic (team alerts are not the contact's messages)."""
    if request.channel != "team":
        stats.record(request.workflow_id, stats.step_metric(request.step_id, metric))
