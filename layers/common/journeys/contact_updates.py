"""Changing a contact: the request model, the plan of what changes, and the write.

Shared by the API (`PUT /v1/contacts/{id}`, unsubscribe links) and the CSV import
(`journeys.imports`), so a contact imported from a file changes exactly as one sent to the
API does, and the import function needs no HTTP resolver. Writes merge into the contact
item the state machines also update: only the nested keys the request names change, and
one `contact_changed` message is enqueued for the router when a trigger could fire (tags,
lists, attributes). Refusals are named errors (`ContactTooLarge`, `ContactWriteConflict`;
`TransientError` when the queue cannot be reached); callers map them to their own answers.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pynamodb.exceptions import PutError, UpdateError

from journeys import aws, events_queue, stats
from journeys.compiler.models import AttributeName, Channel, Name
from journeys.contacts import BOUNCED, SUBSCRIBED, UNSUBSCRIBED
from journeys.exceptions import ContactTooLarge, ContactWriteConflict
from journeys.messaging import normalize_address
from journeys.settings import Settings
from journeys.store import ContactRecord, iso, plain

#: The event an unsubscribe enqueues; `stop_on_unsubscribe` exits journeys on it.
UNSUBSCRIBED_EVENT = "unsubscribed"
#: Attempts at a contact write that lost a race with another API write.
WRITE_ATTEMPTS = 4
#: The contact's top-level maps the state machines update by nested key.
CONTACT_MAPS = ("attributes", "tags", "lists", "segments", "channels")

CONTACT_ID_PATTERN = r"^[^\s/\x00-\x1f\x7f]{1,256}$"
CONTACT_ID_HELP = "contact ids are 1 to 256 characters without spaces, control characters or /"

ContactId = Annotated[
    str,
    Field(
        pattern=CONTACT_ID_PATTERN,
        description="Your id for the contact (no spaces or /), e.g. a user id.",
        examples=["user-42"],
    ),
]


# --- The request ---------------------------------------------------------------------------


class RequestModel(BaseModel):
    # Unknown fields are errors: a typo ("occured_at") must not be silently dropped.
    model_config = ConfigDict(extra="forbid")


def finite_json(value: Any, what: str) -> Any:
    """Reject NaN and Infinity (Python's JSON parser accepts them, DynamoDB does not)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise ValueError(f"{what} must be JSON: NaN and Infinity are not numbers") from None
    return value


class ChannelIn(RequestModel):
    address: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="Email address, E.164 phone number (sms, whatsapp), device token or "
        "SNS endpoint ARN (push), subscription or user id (web_push, in_app, on_site).",
    )
    status: Literal["subscribed", "unsubscribed"] | None = Field(
        None,
        description="Consent. Left out: unchanged (new channels start subscribed).",
    )


class TagChanges(RequestModel):
    add: list[Name] = Field(default_factory=list, max_length=100)
    remove: list[Name] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _disjoint(self) -> TagChanges:
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"tags both added and removed: {', '.join(both)}")
        return self


class ListChanges(RequestModel):
    subscribe: list[Name] = Field(default_factory=list, max_length=100)
    unsubscribe: list[Name] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _disjoint(self) -> ListChanges:
        both = sorted(set(self.subscribe) & set(self.unsubscribe))
        if both:
            raise ValueError(f"lists both subscribed and unsubscribed: {', '.join(both)}")
        return self


@cache
def time_zones() -> frozenset[str]:
    """IANA zone names, without the host's aliases ("localtime") and placeholders."""
    return frozenset(available_timezones()) - {"localtime", "Factory", "posixrules"}


def check_time_zone(value: str) -> str:
    """`value` if it names an IANA zone; ValueError says which it may have meant."""
    if value not in time_zones():
        close = difflib.get_close_matches(value, sorted(time_zones()), n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Paris.{hint}")
    return value


class ContactUpsert(RequestModel):
    """Changes to a contact; everything left out stays as it is."""

    attributes: dict[AttributeName, Any] = Field(
        default_factory=dict,
        description="Merged into the contact's attributes; null removes one.",
        examples=[{"first_name": "Ada", "plan": "pro", "cart_items": 2}],
    )
    tags: TagChanges = Field(default_factory=TagChanges)
    lists: ListChanges = Field(default_factory=ListChanges)
    channels: dict[Channel, ChannelIn] = Field(
        default_factory=dict,
        description="Addresses and consent per channel.",
        examples=[{"email": {"address": "ada@example.com", "status": "subscribed"}}],
    )
    time_zone: str | None = Field(
        None,
        description="IANA time zone (quiet hours, sending windows, dates); null clears it.",
        examples=["Europe/London"],
    )

    _check_attributes = field_validator("attributes")(
        classmethod(lambda cls, value: finite_json(value, "attributes"))
    )

    @field_validator("channels")
    @classmethod
    def _addresses(cls, channels: dict[Channel, ChannelIn]) -> dict[Channel, ChannelIn]:
        checked: dict[Channel, ChannelIn] = {}
        for name, change in channels.items():
            if change.address is not None:
                address = normalize_address(name, change.address)
                if address is None:
                    expected = (
                        "local@domain.tld"
                        if name == "email"
                        else "an E.164 phone number like +447700900123"
                        if name in ("sms", "whatsapp")
                        else "a non-blank address"
                    )
                    raise ValueError(f"{name} address {change.address!r} is not {expected}")
                change = change.model_copy(update={"address": address})
            checked[name] = change
        return checked

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)


def encode(message: Mapping[str, Any]) -> str:
    """A queue message body: compact JSON, ASCII only (always a valid SQS body)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


# --- Contacts: planning a change (pure) ---------------------------------------------------

PathParts = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContactChanges:
    """What changed that the router or journeys care about."""

    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()
    lists_joined: tuple[str, ...] = ()
    attributes_changed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The email channel went from another status to unsubscribed.
    email_unsubscribed: bool = False

    @property
    def triggers(self) -> bool:
        """Whether a trigger could fire (tag, list or attribute triggers)."""
        return bool(
            self.tags_added or self.tags_removed or self.lists_joined or self.attributes_changed
        )


@dataclass(frozen=True, slots=True)
class ContactPlan:
    """The nested keys to set and remove, and what that changes."""

    sets: tuple[tuple[PathParts, Any], ...] = ()
    removes: tuple[PathParts, ...] = ()
    changes: ContactChanges = field(default_factory=ContactChanges)

    @property
    def writes(self) -> bool:
        return bool(self.sets or self.removes)


def _same(old: Any, new: Any) -> bool:
    """Equal as stored values: 1 == 1.0, but True is not 1."""
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, int | float) and isinstance(new, int | float):
        return old == new
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_same(old[k], new[k]) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    return type(old) is type(new) and bool(old == new)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def empty_state() -> dict[str, Any]:
    return {name: {} for name in CONTACT_MAPS} | {"time_zone": None}


def plan_upsert(state: Mapping[str, Any], request: ContactUpsert, now_iso: str) -> ContactPlan:
    """What `request` changes on a contact now in `state` (plain values, as
    `record_state` gives). Only what differs is written, so a repeated request is a no-op."""
    sets: list[tuple[PathParts, Any]] = []
    removes: list[PathParts] = []

    attributes: Mapping[str, Any] = state.get("attributes") or {}
    changed: dict[str, dict[str, Any]] = {}
    for name, value in request.attributes.items():
        old = attributes.get(name)
        if value is None:
            if name in attributes:
                removes.append(("attributes", name))
                if old is not None:
                    changed[name] = {"old": old, "new": None}
        elif name not in attributes or not _same(old, value):
            sets.append((("attributes", name), value))
            changed[name] = {"old": old, "new": value}

    tags: Mapping[str, Any] = state.get("tags") or {}
    added = [tag for tag in _unique(request.tags.add) if tag not in tags]
    removed = [tag for tag in _unique(request.tags.remove) if tag in tags]
    sets += [(("tags", tag), now_iso) for tag in added]
    removes += [("tags", tag) for tag in removed]

    lists: Mapping[str, Any] = state.get("lists") or {}
    joined = [name for name in _unique(request.lists.subscribe) if lists.get(name) != SUBSCRIBED]
    left = [name for name in _unique(request.lists.unsubscribe) if lists.get(name) != UNSUBSCRIBED]
    sets += [(("lists", name), SUBSCRIBED) for name in joined]
    sets += [(("lists", name), UNSUBSCRIBED) for name in left]

    channels: Mapping[str, Any] = state.get("channels") or {}
    email_unsubscribed = False
    for channel, change in request.channels.items():
        existing = channels.get(channel)
        if not isinstance(existing, Mapping):
            created: dict[str, Any] = {"status": change.status or SUBSCRIBED}
            if change.address is not None:
                created["address"] = change.address
            sets.append((("channels", channel), created))
            continue
        old_status = existing.get("status", SUBSCRIBED)
        status: str | None = change.status
        if change.address is not None and change.address != existing.get("address"):
            sets.append((("channels", channel, "address"), change.address))
            if status is None and old_status == BOUNCED:
                status = SUBSCRIBED  # the bounce was the old address's
        if status is not None and status != old_status:
            sets.append((("channels", channel, "status"), status))
            email_unsubscribed |= channel == "email" and status == UNSUBSCRIBED

    if "time_zone" in request.model_fields_set and request.time_zone != state.get("time_zone"):
        if request.time_zone is None:
            removes.append(("time_zone",))
        else:
            sets.append((("time_zone",), request.time_zone))

    return ContactPlan(
        sets=tuple(sets),
        removes=tuple(removes),
        changes=ContactChanges(
            tags_added=tuple(added),
            tags_removed=tuple(removed),
            lists_joined=tuple(joined),
            attributes_changed=changed,
            email_unsubscribed=email_unsubscribed,
        ),
    )


def apply_plan(state: Mapping[str, Any], plan: ContactPlan) -> dict[str, Any]:
    """`state` with the plan applied (how a new contact's item is built)."""
    result: dict[str, Any] = json.loads(json.dumps(state))
    for parts, value in plan.sets:
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    for parts in plan.removes:
        node = result
        for part in parts[:-1]:
            node = node.get(part, {})
        node.pop(parts[-1], None)
    return result


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def change_messages(
    contact_id: str,
    changes: ContactChanges,
    *,
    previous_version: str | None,
    now_iso: str,
    source: str,
    workflow_id: str | None = None,
) -> list[dict[str, Any]]:
    """The router's messages for a contact change. Event ids derive from the contact, the
    version it changed from and the change, so the same change is never counted twice."""
    messages: list[dict[str, Any]] = []
    if changes.triggers:
        body: dict[str, Any] = {
            "tags_added": list(changes.tags_added),
            "tags_removed": list(changes.tags_removed),
            "lists_joined": list(changes.lists_joined),
            "segments_entered": [],
            "segments_exited": [],
            "attributes_changed": {k: dict(v) for k, v in changes.attributes_changed.items()},
        }
        messages.append(
            {
                "type": "contact_changed",
                "event_id": "contact_changed-" + _digest(contact_id, previous_version, body),
                "contact_id": contact_id,
                "occurred_at": now_iso,
                **body,
            }
        )
    if changes.email_unsubscribed:
        properties: dict[str, Any] = {"channel": "email", "source": source}
        if workflow_id:
            properties["workflow_id"] = workflow_id
        messages.append(
            {
                "type": "event",
                "event_id": "unsubscribed-" + _digest(contact_id, previous_version, "email"),
                "contact_id": contact_id,
                "name": UNSUBSCRIBED_EVENT,
                "properties": properties,
                "occurred_at": now_iso,
            }
        )
    return messages


# --- Contacts: reading and writing ----------------------------------------------------------


def record_state(record: ContactRecord) -> dict[str, Any]:
    return {name: plain(getattr(record, name)) or {} for name in CONTACT_MAPS} | {
        "time_zone": record.time_zone
    }


def find_contact(contact_id: str) -> ContactRecord | None:
    try:
        return ContactRecord.get(contact_id, consistent_read=True)
    except ContactRecord.DoesNotExist:
        return None


def _action_path(parts: PathParts) -> Any:
    node: Any = getattr(ContactRecord, parts[0])
    for part in parts[1:]:
        node = node[part]
    return node


def _repair_maps(record: ContactRecord) -> None:
    """Give a contact written elsewhere the top-level maps nested updates need."""
    record.update(
        actions=[_action_path((name,)).set(_action_path((name,)) | {}) for name in CONTACT_MAPS]
    )


def _code(error: Exception) -> str:
    return str(getattr(error, "cause_response_code", "") or "")


def _write(
    contact_id: str,
    existing: ContactRecord | None,
    state: Mapping[str, Any],
    plan: ContactPlan,
    now_iso: str,
) -> ContactRecord:
    """Create the contact (if nobody did meanwhile), or change the planned nested keys (if
    no other API write came in since `existing` was read)."""
    if existing is None:
        item = apply_plan(state, plan)
        record = ContactRecord(
            contact_id,
            **{name: item[name] for name in CONTACT_MAPS},
            time_zone=item["time_zone"],
            created_at=now_iso,
            updated_at=now_iso,
        )
        record.save(condition=ContactRecord.contact_id.does_not_exist())
        return record
    actions = [_action_path(parts).set(value) for parts, value in plan.sets]
    actions += [_action_path(parts).remove() for parts in plan.removes]
    actions.append(ContactRecord.updated_at.set(now_iso))
    unchanged = (
        ContactRecord.updated_at == existing.updated_at
        if existing.updated_at is not None
        else ContactRecord.updated_at.does_not_exist()
    )
    existing.update(actions=actions, condition=ContactRecord.contact_id.exists() & unchanged)
    return existing


@dataclass(frozen=True, slots=True)
class UpsertResult:
    contact: ContactRecord | None
    created: bool
    messages: tuple[dict[str, Any], ...] = ()
    #: Whether anything was written (False: the contact already was as asked).
    written: bool = False


def upsert_contact(
    contact_id: str,
    request: ContactUpsert,
    settings: Settings,
    *,
    now: datetime,
    create: bool = True,
    source: str = "api",
    workflow_id: str | None = None,
    sqs: Any = None,
) -> UpsertResult:
    """Merge `request` into the contact (created if missing and `create`), then enqueue
    what changed. Writes touch only the nested keys that change, so concurrent updates by
    the state machines are kept; writes by the API are serialised on `updated_at`.

    Raises `ContactTooLarge`, `ContactWriteConflict` (other writes kept winning the race)
    and `TransientError` (the changes could not be enqueued; the contact is written)."""
    now_iso = iso(now)
    repaired = False
    for _ in range(WRITE_ATTEMPTS):
        existing = find_contact(contact_id)
        if existing is None and not create:
            return UpsertResult(contact=None, created=False)
        state = empty_state() if existing is None else record_state(existing)
        plan = plan_upsert(state, request, now_iso)
        previous = None if existing is None else existing.updated_at
        if existing is not None and not plan.writes:
            return UpsertResult(contact=existing, created=False)
        try:
            record = _write(contact_id, existing, state, plan, now_iso)
        except (PutError, UpdateError) as error:
            problem = f"{_code(error)}: {getattr(error, 'cause_response_message', '')}"
            if problem.startswith("ConditionalCheckFailedException"):
                continue  # another write got there first: plan again on what it wrote
            if "document path" in problem and existing is not None and not repaired:
                _repair_maps(existing)
                repaired = True
                continue
            if "size" in problem and problem.startswith("ValidationException"):
                raise ContactTooLarge(
                    f"contact {contact_id!r} would exceed DynamoDB's 400 KB item size"
                ) from error
            raise
        if plan.changes.email_unsubscribed and workflow_id:
            stats.count_unsubscribe(workflow_id)  # once: the write above was conditional
        messages = change_messages(
            contact_id,
            plan.changes,
            previous_version=previous,
            now_iso=now_iso,
            source=source,
            workflow_id=workflow_id,
        )
        if messages:
            bodies = [encode(message) for message in messages]
            client = sqs if sqs is not None else aws.client("sqs", settings.region)
            events_queue.enqueue(client, settings.events_queue_url, bodies)
        return UpsertResult(
            contact=record, created=existing is None, messages=tuple(messages), written=True
        )
    raise ContactWriteConflict(f"contact {contact_id!r} is being changed by another request")
