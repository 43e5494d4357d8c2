"""DynamoDB tables as pynamodb models, and the reads and writes the services need.

Table names come from `Settings` through `bind_tables`, called by handlers inside an
invocation, never at import. The key schemas here and in template.yaml must agree; the
functional tests build their moto tables from template.yaml to keep them honest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.models import Model

from journeys.contacts import ContactView
from journeys.exceptions import ContactNotFound
from journeys.settings import Settings
from journeys.stats import StatRecord


def iso(moment: datetime) -> str:
    """Sortable UTC timestamps: the sort keys of events and messages start with one."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class ContactRecord(Model):
    """One contact; the state machines update its maps directly (see template.yaml)."""

    class Meta:
        table_name = "unbound-contacts"

    contact_id = UnicodeAttribute(hash_key=True)
    attributes: MapAttribute[str, Any] = MapAttribute(default=dict)
    tags: MapAttribute[str, Any] = MapAttribute(default=dict)
    lists: MapAttribute[str, Any] = MapAttribute(default=dict)
    segments: MapAttribute[str, Any] = MapAttribute(default=dict)
    channels: MapAttribute[str, Any] = MapAttribute(default=dict)
    time_zone = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    #: When the contact last did anything: the latest `occurred_at` of its events (never
    #: later than when the router stored it). Only the router writes it, never backwards;
    #: inactivity segments and `inactive_for` triggers count from it.
    last_active_at = UnicodeAttribute(null=True)

    def view(self) -> ContactView:
        return ContactView.from_item(
            {
                "contact_id": self.contact_id,
                "attributes": plain(self.attributes),
                "tags": plain(self.tags),
                "lists": plain(self.lists),
                "segments": plain(self.segments),
                "channels": plain(self.channels),
                "time_zone": self.time_zone,
            }
        )


class EventRecordModel(Model):
    """Every event a contact performed, newest last; kept for a while for conditions."""

    class Meta:
        table_name = "unbound-events"

    contact_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "<iso occurred_at>#<event_id>"
    name = UnicodeAttribute()
    event_id = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    properties: MapAttribute[str, Any] = MapAttribute(default=dict)
    expires_at = NumberAttribute(null=True)  # TTL, epoch seconds


class MessageRecordModel(Model):
    """Every message sent to a contact: the frequency cap counts them across workflows,
    opened/clicked conditions read them."""

    class Meta:
        table_name = "unbound-messages"

    contact_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "<iso sent_at>#<message_id>"
    message_id = UnicodeAttribute()
    workflow_id = UnicodeAttribute()
    step_id = UnicodeAttribute()
    channel = UnicodeAttribute()
    sent_at = UnicodeAttribute()
    opened_at = UnicodeAttribute(null=True)
    delivered_at = UnicodeAttribute(null=True)  # first SES Delivery event (feedback)
    clicked_links = ListAttribute(of=UnicodeAttribute, default=list)
    expires_at = NumberAttribute(null=True)


class WaitRecord(Model):
    """A task token waiting for a contact's event (wait_for_event, goal and exit watches)."""

    class Meta:
        table_name = "unbound-waits"

    contact_id = UnicodeAttribute(hash_key=True)
    sort_key = UnicodeAttribute(range_key=True)  # "<signal>#<execution_id>#<step_id>"
    signal = UnicodeAttribute()
    task_token = UnicodeAttribute()
    purpose = UnicodeAttribute()  # wait | goal | exit
    where: MapAttribute[str, Any] = MapAttribute(default=dict)
    registered_at = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)


class EntryRecord(Model):
    """A contact's latest entry into a workflow: re-entry rules and "where is she now"."""

    class Meta:
        table_name = "unbound-entries"

    contact_id = UnicodeAttribute(hash_key=True)
    workflow_id = UnicodeAttribute(range_key=True)
    entry_id = UnicodeAttribute()
    execution_arn = UnicodeAttribute(null=True)
    entered_at = UnicodeAttribute()
    status = UnicodeAttribute(default="running")
    ended_at = UnicodeAttribute(null=True)  # when the execution ended (stats function)


MODELS: tuple[tuple[type[Model], str], ...] = (
    (ContactRecord, "contacts_table"),
    (EventRecordModel, "events_table"),
    (MessageRecordModel, "messages_table"),
    (WaitRecord, "waits_table"),
    (EntryRecord, "entries_table"),
    (StatRecord, "stats_table"),
)


def bind_tables(settings: Settings) -> None:
    """Point every model at its table for this deployment (idempotent, cheap)."""
    for model, setting in MODELS:
        binding = (getattr(settings, setting), settings.region, settings.dynamodb_endpoint)
        if (model.Meta.table_name, model.Meta.region, model.Meta.host) == binding:
            continue  # keep the cached connection: making one loads botocore's model again
        model.Meta.table_name, model.Meta.region, model.Meta.host = binding
        model._connection = None  # pynamodb caches a connection per model class


def forget_connections() -> None:
    """Drop every model's cached connection: the endpoint it talks to is gone (a local
    stack stopped; the next one listens elsewhere under the same settings)."""
    models: list[type[Model]] = [Model]
    while models:  # every model, also those outside this module (routing markers, imports)
        model = models.pop()
        model._connection = None
        models.extend(model.__subclasses__())


def plain(value: Any) -> Any:
    """pynamodb raw maps to plain dicts and lists, recursively."""
    if isinstance(value, MapAttribute):
        return {key: plain(item) for key, item in value.attribute_values.items()}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def load_contact(contact_id: str) -> ContactView:
    try:
        return ContactRecord.get(contact_id, consistent_read=True).view()
    except ContactRecord.DoesNotExist:
        raise ContactNotFound(f"contact {contact_id!r} does not exist") from None


def events_since(
    contact_id: str, since: datetime, names: Iterable[str] | None = None
) -> list[EventRecordModel]:
    wanted = set(names) if names is not None else None
    return [
        record
        for record in EventRecordModel.query(
            contact_id, EventRecordModel.sort_key >= iso(since), consistent_read=True
        )
        if wanted is None or record.name in wanted
    ]


def messages_since(contact_id: str, since: datetime) -> list[MessageRecordModel]:
    return list(
        MessageRecordModel.query(
            contact_id, MessageRecordModel.sort_key >= iso(since), consistent_read=True
        )
    )


def set_attribute(contact_id: str, name: str, value: Any) -> None:
    """SET attributes.<name> on an existing contact (never creates one)."""
    ContactRecord(contact_id).update(
        actions=[ContactRecord.attributes[name].set(value)],
        condition=ContactRecord.contact_id.exists(),
    )
