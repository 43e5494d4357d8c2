"""The hourly sweep: date triggers, inactivity triggers and segments that change with time.

Some journeys start with nobody doing anything: a birthday comes round, a contact has been
quiet for 30 days, a 30-day window of product views runs out. No message says so, so a
scheduled sweep looks at every contact once an hour (one paginated Scan) and, for each:

1. enqueues an ``enter_workflow`` message for each date-trigger occurrence
   (``trigger: {date: <attribute>, recurs, offset, at}``) in the coming window;
2. enqueues an ``enter_workflow`` message for each ``inactive_for`` trigger whose period
   of inactivity was reached in the past window;
3. refreshes the contact's segments (`journeys.segments.refresh`), which writes and
   announces memberships that changed, as the router does after an event.

The router then applies each workflow's re-entry rule and starts the journeys exactly as
for any other entry; the message's ``source.trigger`` is the trigger key the journey sees
(``date:birthday``, ``inactive_for:30 days``).

Timing
------
The sweep runs hourly with a one-hour window. Date triggers look ahead, [now, now + 1 h):
a contact whose occurrence (the date moved by the offset, at the local time `at` in the
contact's zone, else the workflow's ``settings.time_zone``, else UTC; see
`journeys.scheduling.next_occurrence`) falls in that window is enqueued at once, so a
journey starts **up to an hour before** its `at` time, never after it: a birthday offer
"at 09:00" starts between 08:00 and 09:00 local. Workflows that must not send early should
begin with a `wait_until` or a sending window.

Inactivity looks back, (now - 1 h, now]: a contact inactive since `last_active_at` (the
time of its latest event, kept by the router; ``created_at`` for a contact who never did
anything) enters when ``last_active_at + inactive_for`` falls in that window, so within
the hour after the period is reached and never before (the contact could still come
back). Segments are evaluated at `now`: an ``inactive_for`` segment is entered by the
same run that fires the trigger of the same length.

Idempotence
-----------
Every message's ``event_id`` is deterministic, so running the sweep twice, overlapping
windows, or a retried invocation (which reuses the scheduled time) produce the same ids,
and the router deduplicates on them:

- a date occurrence: ``date:<workflow id>:<trigger key>:<local occurrence date>`` (for
  example ``date:birthday-offer:date:birthday:2026-11-22``); the local date (not the
  instant) keeps the id stable when the contact's time zone changes between two sweeps;
- a period of inactivity: ``inactive:<workflow id>:<trigger key>:<last_active_at>`` (for
  example ``inactive:win-back:inactive_for:30 days:2026-10-23T11:40:00.000000Z``): once
  per period, and a new activity starts a new period with a new id;
- a segment change: ``seg-sweep:<contact>:<run time to the minute>:<+entered,-exited>``,
  parked on the contact before it is sent (see `journeys.segments`), so a run that dies
  after writing a membership still announces it, once, with the next evaluation.

A contact whose segments cannot be refreshed (it kept changing under the sweep) is
logged and skipped; its next evaluation catches up.

Cost
----
`sweep` reads the whole contacts table with one paginated Scan per run (every item is read
and billed, 24 times a day; projected to what the run needs). With segments defined it
also evaluates every contact: segments whose rules count events read the contact's events
with one eventually consistent Query, only for contacts active within the rules' longest
window (30 days for the reference segments); contacts quiet for longer, or never active,
have no events to count and cost nothing more. Only a change of membership writes (one
UpdateItem, one SendMessageBatch, one UpdateItem). That is fine for tens of thousands of
contacts. Large lists want indexes instead of the Scan: a DynamoDB stream on the contacts
table keeping a "next occurrence hour" item per contact and trigger (partition = the UTC
hour; inactivity is last_active_at + period), which the sweep Queries for one hour, and
segment re-evaluation driven by the same due times. When no workflow has a date or
inactivity trigger and no segment is defined, nothing is scanned.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from journeys import aws, clock, events_queue, segments
from journeys.compiler import models as m
from journeys.compiler.segments import SegmentSet
from journeys.contacts import ContactView
from journeys.exceptions import TransientError
from journeys.router import WorkflowIndex, WorkflowSpec, load_index
from journeys.scheduling import next_occurrence, resolve_zone
from journeys.segments import SegmentedContact
from journeys.settings import Settings

__all__ = [
    "EVENT_ID_MAX",
    "Activity",
    "date_triggers",
    "due_entries",
    "inactive_entries",
    "inactivity_event_id",
    "inactivity_triggers",
    "occurrence_event_id",
    "sweep",
]

log = logging.getLogger(__name__)

#: The router's limit on event ids (`journeys.router.EventId`).
EVENT_ID_MAX = 512
#: What each part of the sweep reads of a contact (the Scan is projected to these).
_FOR_DATES = ("contact_id", "attributes", "time_zone")
_FOR_INACTIVITY = ("contact_id", "last_active_at", "created_at")
_FOR_SEGMENTS = (
    "contact_id",
    "attributes",
    "tags",
    "lists",
    "segments",
    "channels",
    "time_zone",
    "last_active_at",
    "created_at",
    "segments_pending",
)


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


# --- Inactivity triggers ----------------------------------------------------------------


def inactivity_triggers(index: WorkflowIndex) -> list[tuple[WorkflowSpec, m.InactivityTrigger]]:
    """Every (workflow, inactive_for trigger) of the index, in index order."""
    return [
        (spec, trigger)
        for spec in index.workflows.values()
        for trigger in spec.triggers
        if isinstance(trigger, m.InactivityTrigger)
    ]


def inactivity_event_id(workflow_id: str, trigger_key: str, active_since: str) -> str:
    """The event id of one inactivity period: ``inactive:<workflow>:<trigger key>:<the
    last_active_at (or created_at) it counts from>``, as stored; a digest past 512
    characters. A new activity starts a new period, hence a new id."""
    readable = f"inactive:{workflow_id}:{trigger_key}:{active_since}"
    if len(readable) <= EVENT_ID_MAX:
        return readable
    return "inactive:" + hashlib.sha256(readable.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Activity:
    """When a contact last did anything (`last_active_at`) and when it was created, as
    stored (ISO text)."""

    contact_id: str
    last_active_at: str | None = None
    created_at: str | None = None

    def since(self) -> tuple[str, datetime] | None:
        """The stored text and time inactivity counts from: the last activity, else the
        creation; None when the contact has neither."""
        for text in (self.last_active_at, self.created_at):
            moment = segments.activity_basis(text, None)
            if text and moment is not None:
                return text, moment
        return None


def _inactive(
    triggers: Sequence[tuple[WorkflowSpec, m.InactivityTrigger]],
    contacts: Iterable[Activity],
    now: datetime,
    window: timedelta,
) -> Iterator[dict[str, Any]]:
    for contact in contacts:
        since = contact.since()
        if since is None:
            continue
        text, moment = since
        for spec, trigger in triggers:
            due = moment + timedelta(seconds=trigger.inactive_for.seconds)
            if not now - window < due <= now:
                continue
            key = trigger.key()
            yield {
                "type": "enter_workflow",
                "workflow_id": spec.id,
                "contact_id": contact.contact_id,
                "event_id": inactivity_event_id(spec.id, key, text),
                "occurred_at": _iso(due),
                "source": {"trigger": key, "occurrence": _iso(due)},
            }


def inactive_entries(
    index: WorkflowIndex,
    contacts: Iterable[Activity],
    now: datetime,
    window: timedelta,
) -> list[dict[str, Any]]:
    """The ``enter_workflow`` messages of every inactive_for trigger for every contact
    whose inactivity reached the trigger's period in (now - window, now]: once per period
    of inactivity, when it is reached (never early: the contact could still come back).
    Pure: no clock, no AWS. A contact with neither `last_active_at` nor `created_at` is
    skipped."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    return list(_inactive(inactivity_triggers(index), contacts, now, window))


# --- The sweep -------------------------------------------------------------------------------


def _contacts(fields: Sequence[str]) -> Iterator[SegmentedContact]:
    """Every contact, by one paginated Scan projected to `fields`."""
    yield from SegmentedContact.scan(attributes_to_get=list(fields))


@dataclass
class _Sweep:
    """One run: what to look for, and what it found."""

    dates: list[tuple[WorkflowSpec, m.DateTrigger]]
    idle: list[tuple[WorkflowSpec, m.InactivityTrigger]]
    segment_set: SegmentSet
    now: datetime
    window: timedelta
    send: Callable[[str], None]
    announced: int = 0
    segment_failures: int = 0

    def fields(self) -> list[str]:
        wanted: dict[str, None] = {}
        for needed, names in (
            (self.dates, _FOR_DATES),
            (self.idle, _FOR_INACTIVITY),
            (self.segment_set, _FOR_SEGMENTS),
        ):
            if needed:
                wanted.update(dict.fromkeys(names))
        return list(wanted)

    def messages(self, records: Iterable[SegmentedContact]) -> Iterator[str]:
        for record in records:
            found = list(_due(self.dates, [record.view()], self.now, self.window))
            activity = Activity(record.contact_id, record.last_active_at, record.created_at)
            found += _inactive(self.idle, [activity], self.now, self.window)
            for message in found:
                yield json.dumps(message, separators=(",", ":"))
            if self.segment_set:
                self.refresh_segments(record)

    def refresh_segments(self, record: SegmentedContact) -> None:
        contact_id = record.contact_id
        try:
            sent = segments.refresh(
                contact_id,
                self.segment_set,
                self.now,
                lambda found: segments.sweep_announcement_id(contact_id, self.now, found),
                self.send,
                record=record,
                scanned=True,
            )
        except TransientError:
            # The change (if written) stays parked on the contact and goes out with the
            # next evaluation; one busy contact must not stop the sweep of the others.
            log.warning("segments of %s not refreshed", contact_id, exc_info=True)
            self.segment_failures += 1
            return
        self.announced += len(sent)


def sweep(
    settings: Settings,
    now: datetime | None = None,
    window: timedelta = timedelta(hours=1),
    sqs: Any = None,
) -> int:
    """One hourly run (see the module notes): enqueue an ``enter_workflow`` message for
    every date-trigger occurrence in [now, now + window) and every inactive_for period
    reached in (now - window, now], and refresh every contact's segments, announcing what
    changed; how many messages were enqueued in all.

    The contacts table is bound here (`store.bind_tables` binds the others for the
    events the segment rules count). Contacts are streamed from the Scan and entries sent
    in batches of 10, so memory stays flat.
    """
    now = now or clock.now()
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    index = load_index(settings.workflow_index)
    dates, idle = date_triggers(index), inactivity_triggers(index)
    if not (dates or idle or index.segments):
        log.info("no date or inactivity trigger and no segment; nothing to sweep")
        return 0
    client = sqs or aws.client("sqs", settings.region)
    segments.bind(settings)

    def send(body: str) -> None:
        events_queue.enqueue(client, settings.events_queue_url, [body])

    run = _Sweep(dates, idle, index.segments, now, window, send)
    sent = events_queue.enqueue(
        client, settings.events_queue_url, run.messages(_contacts(run.fields()))
    )
    log.info(
        "sweep",
        extra={
            "enqueued": sent,
            "segment_announcements": run.announced,
            "segment_failures": run.segment_failures,
            "window_start": _iso(now),
        },
    )
    return sent + run.announced
