"""The date-trigger sweep: start birthday, anniversary and due-date journeys on time.

Workflows with ``trigger: {date: <attribute>, recurs, offset, at}`` are not started by
messages (the router ignores date triggers): a scheduled sweep looks at every contact and
enqueues an ``enter_workflow`` message on the events queue for each occurrence that falls
in the coming window. The router then applies the workflow's re-entry rule and starts the
journey exactly as for any other entry.

Timing
------
The sweep runs hourly with a one-hour window [now, now + 1 h). A contact whose occurrence
(the date moved by the offset, at the local time `at` in the contact's zone, else the
workflow's ``settings.time_zone``, else UTC; see `journeys.scheduling.next_occurrence`)
falls in that window is enqueued at once, so a journey starts **up to an hour before** its
`at` time, never after it: a birthday offer "at 09:00" starts between 08:00 and 09:00
local. Workflows that must not send early should begin with a `wait_until` or a sending
window.

Idempotence
-----------
Each message's ``event_id`` is deterministic per occurrence:
``date:<workflow id>:<trigger key>:<local occurrence date>`` (for example
``date:birthday-offer:date:birthday:2026-11-22``). Running the sweep twice, overlapping
windows, or a retried invocation produce the same ids, and the router deduplicates on
them. The local date (not the instant) keeps the id stable when the contact's time zone
changes between two sweeps.

Cost
----
`sweep` reads the whole contacts table with one paginated Scan per run (every item is read
and billed, 24 times a day), projected to the id, attributes and time zone. That is fine
for tens of thousands of contacts. Large lists want an index of upcoming occurrences
instead: a DynamoDB stream on the contacts table keeping a "next occurrence hour" item per
contact and trigger (partition = the UTC hour), which the sweep Queries for one hour.
When no workflow has a date trigger, nothing is scanned.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from journeys import events_queue
from journeys.compiler import models as m
from journeys.contacts import ContactView
from journeys.router import WorkflowIndex, WorkflowSpec, load_index
from journeys.scheduling import next_occurrence, resolve_zone
from journeys.settings import Settings
from journeys.store import ContactRecord

__all__ = [
    "EVENT_ID_MAX",
    "date_triggers",
    "due_entries",
    "occurrence_event_id",
    "sweep",
]

log = logging.getLogger(__name__)

#: The router's limit on event ids (`journeys.router.EventId`).
EVENT_ID_MAX = 512
_SCANNED = ["contact_id", "attributes", "time_zone"]


def date_triggers(index: WorkflowIndex) -> list[tuple[WorkflowSpec, m.DateTrigger]]:
    """Every (workflow, date trigger) of the index, in index order."""
    return [
        (spec, trigger)
        for spec in index.workflows.values()
        for trigger in spec.triggers
        if isinstance(trigger, m.DateTrigger)
    ]


def occurrence_event_id(workflow_id: str, trigger_key: str, local_day: str) -> str:
    """The event id of one occurrence: readable, or a digest if it would exceed the
    router's 512 characters."""
    readable = f"date:{workflow_id}:{trigger_key}:{local_day}"
    if len(readable) <= EVENT_ID_MAX:
        return readable
    digest = hashlib.sha256(readable.encode()).hexdigest()
    return f"date:{digest}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _due(
    triggers: Sequence[tuple[WorkflowSpec, m.DateTrigger]],
    contacts: Iterable[ContactView],
    now: datetime,
    window: timedelta,
) -> Iterator[dict[str, Any]]:
    end = now + window
    for contact in contacts:
        for spec, trigger in triggers:
            value = contact.attributes.get(trigger.date)
            if value is None:
                continue
            zone = resolve_zone(contact.time_zone, spec.settings.time_zone)
            offset = trigger.offset.seconds if trigger.offset is not None else 0
            entry = next_occurrence(value, trigger.recurs, offset, trigger.at, zone, now)
            if entry is None or entry >= end:
                continue
            key = trigger.key()
            occurrence = _iso(entry)
            local_day = entry.astimezone(zone).date().isoformat()
            yield {
                "type": "enter_workflow",
                "workflow_id": spec.id,
                "contact_id": contact.contact_id,
                "event_id": occurrence_event_id(spec.id, key, local_day),
                "occurred_at": occurrence,
                "source": {"trigger": key, "occurrence": occurrence},
            }


def due_entries(
    index: WorkflowIndex,
    contacts: Iterable[ContactView],
    now: datetime,
    window: timedelta,
) -> list[dict[str, Any]]:
    """The ``enter_workflow`` messages for every date trigger of every workflow and every
    contact holding the trigger's attribute whose next occurrence falls in
    [now, now + window). Pure: no clock, no AWS.

    A contact without the attribute, or with a date that cannot be read, is skipped; a
    ``recurs: once`` date whose entry (date + offset) is past never fires. One occurrence
    per contact and trigger at most: `window` must be shorter than the shortest period
    (a month) for none to be missed, and is meant to be the sweep's interval.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    triggers = date_triggers(index)
    if not triggers:
        return []
    return list(_due(triggers, contacts, now, window))


def _contacts() -> Iterator[ContactView]:
    """Every contact, by one paginated Scan projected to what date triggers read."""
    for record in ContactRecord.scan(attributes_to_get=_SCANNED):
        yield record.view()


def sweep(
    settings: Settings,
    now: datetime | None = None,
    window: timedelta = timedelta(hours=1),
    sqs: Any = None,
) -> int:
    """Enqueue an ``enter_workflow`` message for every date-trigger occurrence in
    [now, now + window); how many were enqueued.

    Run hourly with the default window: a journey starts within the hour before its
    `at` time. Tables must be bound (`store.bind_tables`) by the caller. Contacts are
    streamed from the Scan and sent in batches of 10, so memory stays flat.
    """
    now = now or datetime.now(UTC)
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    triggers = date_triggers(load_index(settings.workflow_index))
    if not triggers:
        log.info("no workflow has a date trigger; nothing to sweep")
        return 0
    client = sqs or boto3.client("sqs", region_name=settings.region)
    bodies = (
        json.dumps(message, separators=(",", ":"))
        for message in _due(triggers, _contacts(), now, window)
    )
    sent = events_queue.enqueue(client, settings.events_queue_url, bodies)
    log.info("date-trigger sweep", extra={"enqueued": sent, "window_start": _iso(now)})
    return sent
