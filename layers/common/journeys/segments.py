"""Segment membership at run time: evaluate a contact's segments, store what changed, announce it.

Segments are defined in `workflows/segments/<id>.yaml` (`journeys.compiler.segments`) and
shipped in index.json. The router refreshes a contact's segments after every event and
contact change, the hourly sweep refreshes every contact (inactivity and time windows
change with nobody doing anything); both call `refresh`.

What a rule is evaluated on
---------------------------
- the contact item: attributes, tags, channels (`reachable`), time zone;
- its activity: ``last_active_at``, the time of its latest event of any name (the router
  keeps it, `ContactRecord.last_active_at`), or ``created_at`` for a contact who never did
  anything; a contact with neither is never inactive (nothing says since when);
- the events the rules count, queried from the events table only for the names the rules
  name and only as far back as the longest window needs (`SegmentSet.lookback_seconds`;
  an `event` rule without `within` looks at every stored event, a year);
- the other segments, evaluated first in the same pass (`SegmentSet.ordered`), so a
  segment built on another never reads a stale membership.

Rule kinds (times are compared with the `now` the caller passes in):

==================  ==========================================================================
attribute, tag,     as in workflow conditions (`journeys.conditions`), in the contact's zone
event, reachable    (UTC when it has none)
segment             the other segment's membership computed in this pass; a segment no
                    definition names falls back to the contact's stored map
inactive_for: d     now - (last_active_at, else created_at) >= d
activity_dropped    before = matching events in (now - 2p, now - p], recent = those in
                    (now - p, now]: before >= 1 and recent <= before * (100 - by) / 100
all / any / not     as in conditions
==================  ==========================================================================

Storing and announcing, exactly once
------------------------------------
The contact's ``segments`` map (segment -> ISO time entered) holds the memberships; only
defined segments are managed, so a key written by an import or left by a deleted
definition is never removed here. A change is written with one conditional UpdateItem
that, in the same write, parks its announcement (the ``contact_changed`` message for the
router, with its final ``event_id``) in the contact's ``segments_pending`` slot::

    SET segments.<entered> = :now  REMOVE segments.<exited>  SET segments_pending = :message
    IF contact exists AND segments_pending absent AND every entered key absent
       AND every exited key present

Then the message is sent to the events queue and the slot cleared (only while it still
holds that id). Whoever evaluates the contact next (a retry, another message, the sweep)
first sends any message it finds parked, then clears it. So a change is announced even if
the Lambda dies between the write and the send, and only once: the id is fixed when the
change is written and the router drops a second message with the same id. Two
evaluations racing: the loser's condition fails, it reads the contact again and finds the
winner's announcement (which it may send too: same id) or nothing left to change.

The map is written before the message is sent, so the router handling the announcement
(and a journey it starts, testing ``{segment: x}``) sees the new membership, and
evaluating the contact again finds nothing new: announcements cannot loop.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from journeys import conditions
from journeys.compiler import models as m
from journeys.compiler.segments import SegmentSet
from journeys.contacts import ContactView
from journeys.exceptions import TransientError
from journeys.settings import Settings
from journeys.store import ContactRecord, EventRecordModel, iso, parse_iso, plain

__all__ = [
    "EVENT_ID_MAX",
    "Announcement",
    "Changes",
    "SegmentFacts",
    "SegmentedContact",
    "activity_basis",
    "announcement_body",
    "bind",
    "changes",
    "load_events",
    "memberships",
    "message_announcement_id",
    "refresh",
    "sweep_announcement_id",
]

log = logging.getLogger(__name__)

#: The router's limit on event ids (`journeys.router.EventId`).
EVENT_ID_MAX = 512
#: Reads and conditional writes per refresh before giving up (a parked announcement to
#: send, then a race or two with another evaluation of the same contact).
ATTEMPTS = 4
_UTC = ZoneInfo("UTC")


class SegmentedContact(ContactRecord):
    """The contact item as segment refreshes read and write it: the contact, plus the
    announcement slot (see the module notes). Same table as `ContactRecord`."""

    class Meta:
        table_name = "unbound-contacts"

    # pynamodb's raw MapAttribute constructor carries no annotations (see store.py).
    segments_pending: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]


def bind(settings: Settings, force: bool = False) -> None:
    """Point `SegmentedContact` at this deployment's contacts table (`store.bind_tables`
    binds the other models); cheap when already bound."""
    model: type[Model] = SegmentedContact
    where = (settings.contacts_table, settings.region, settings.dynamodb_endpoint)
    if not force and (model.Meta.table_name, model.Meta.region, model.Meta.host) == where:
        return
    model.Meta.table_name, model.Meta.region, model.Meta.host = where
    model._connection = None


# --- Evaluation (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentFacts:
    """What one contact's memberships are decided on. `active_since` is the contact's
    last activity, or its creation when it never did anything (None: unknown)."""

    contact: ContactView
    events: Sequence[conditions.EventRecord]
    active_since: datetime | None
    now: datetime

    def condition_facts(self) -> conditions.Facts:
        return conditions.Facts(
            contact=self.contact,
            events=self.events,
            messages=(),
            trigger={},
            workflow_id="",
            now=self.now,
            zone=_zone(self.contact.time_zone),
        )


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def memberships(segment_set: SegmentSet, facts: SegmentFacts) -> frozenset[str]:
    """The defined segments the contact is in now."""
    members: set[str] = set()
    condition_facts = facts.condition_facts()
    for segment in segment_set.ordered:
        if _holds(segment.rule, facts, condition_facts, members):
            members.add(segment.id)
    return frozenset(members)


def _holds(
    rule: Any, facts: SegmentFacts, condition_facts: conditions.Facts, members: set[str]
) -> bool:
    if isinstance(rule, m.SegmentCondition):
        return rule.segment in members or rule.segment in facts.contact.segments
    if isinstance(rule, m.InactiveRule):
        if facts.active_since is None:
            return False
        idle = _aware(facts.now) - _aware(facts.active_since)
        return idle >= timedelta(seconds=rule.inactive_for.seconds)
    if isinstance(rule, m.ActivityDroppedRule):
        return _dropped(rule.activity_dropped, facts, condition_facts.zone)
    if isinstance(rule, m.SegmentAll):
        return all(_holds(inner, facts, condition_facts, members) for inner in rule.all)
    if isinstance(rule, m.SegmentAny):
        return any(_holds(inner, facts, condition_facts, members) for inner in rule.any)
    if isinstance(rule, m.SegmentNot):
        return not _holds(rule.not_, facts, condition_facts, members)
    if isinstance(
        rule, m.AttributeCondition | m.TagCondition | m.EventCondition | m.ReachableCondition
    ):
        return conditions.evaluate(rule, condition_facts)
    raise TypeError(f"not a segment rule: {rule!r}")


def _dropped(drop: m.ActivityDrop, facts: SegmentFacts, zone: ZoneInfo) -> bool:
    now = _aware(facts.now)
    period = timedelta(seconds=drop.period.seconds)
    recent = before = 0
    for event in facts.events:
        if event.name != drop.event:
            continue
        at = _aware(event.occurred_at)
        if not now - 2 * period < at <= now:
            continue
        if not conditions.where_matches(drop.where, event.properties, now, zone):
            continue
        if at > now - period:
            recent += 1
        else:
            before += 1
    return before >= 1 and recent * 100 <= before * (100 - drop.by)


@dataclass(frozen=True, slots=True)
class Changes:
    """Segments entered and left, each sorted."""

    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entered or self.exited)

    def describe(self) -> str:
        """ "+d-30,-engaged": readable, and different for every different change."""
        return ",".join([f"+{s}" for s in self.entered] + [f"-{s}" for s in self.exited])


def changes(segment_set: SegmentSet, stored: Mapping[str, Any], members: frozenset[str]) -> Changes:
    """What to write: defined segments the contact joined, and defined segments it left
    (keys of `stored` that no definition names are not touched)."""
    defined = segment_set.ids
    return Changes(
        entered=tuple(sorted(members - set(stored))),
        exited=tuple(sorted(s for s in stored if s in defined and s not in members)),
    )


def _bounded(readable: str, prefix: str) -> str:
    if len(readable) <= EVENT_ID_MAX:
        return readable
    return prefix + hashlib.sha256(readable.encode()).hexdigest()


def message_announcement_id(event_id: str, found: Changes) -> str:
    """The id of a change found while routing message `event_id`: ``seg:<event_id>:<change>``.
    The change is part of it, so a retry that finds a different change (time passed) is
    not taken for a duplicate of the first."""
    return _bounded(f"seg:{event_id}:{found.describe()}", "seg:")


def sweep_announcement_id(contact_id: str, now: datetime, found: Changes) -> str:
    """The id of a change the sweep found: ``seg-sweep:<contact>:<minute>:<change>``; a
    retried run (same scheduled time) computes the same id."""
    minute = _aware(now).astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return _bounded(f"seg-sweep:{contact_id}:{minute}:{found.describe()}", "seg-sweep:")


def announcement_body(contact_id: str, event_id: str, found: Changes, now: datetime) -> str:
    """The router's ``contact_changed`` message for a change, as JSON."""
    message = {
        "type": "contact_changed",
        "event_id": event_id,
        "contact_id": contact_id,
        "occurred_at": iso(now),
        "segments_entered": list(found.entered),
        "segments_exited": list(found.exited),
    }
    return json.dumps(message, separators=(",", ":"))


def activity_basis(last_active_at: str | None, created_at: str | None) -> datetime | None:
    """Since when a contact has been inactive: its last activity, else its creation."""
    for text in (last_active_at, created_at):
        if text:
            try:
                return _aware(parse_iso(text))
            except ValueError:
                continue
    return None


# --- Reading and writing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Announcement:
    """A change of memberships sent to the router."""

    event_id: str
    entered: tuple[str, ...]
    exited: tuple[str, ...]


def load_events(
    contact_id: str,
    segment_set: SegmentSet,
    now: datetime,
    consistent: bool = True,
    active_since: datetime | None = None,
    skip_when_idle: bool = False,
) -> list[conditions.EventRecord]:
    """The events the rules count, as far back as the longest window. With
    `skip_when_idle`, a contact whose last activity is older than that (or unknown) has
    none to count, and nothing is read: every stored event is at or before the contact's
    `last_active_at`."""
    names = segment_set.event_names
    if not names:
        return []
    since = _aware(now) - timedelta(seconds=segment_set.lookback_seconds)
    if skip_when_idle and (active_since is None or _aware(active_since) < since):
        return []
    return [
        conditions.EventRecord(
            name=record.name,
            occurred_at=_aware(parse_iso(record.occurred_at)),
            properties=plain(record.properties) or {},
        )
        for record in EventRecordModel.query(
            contact_id,
            EventRecordModel.sort_key >= iso(since),
            filter_condition=EventRecordModel.name.is_in(*sorted(names)),
            consistent_read=consistent,
        )
    ]


def _read(contact_id: str) -> SegmentedContact | None:
    try:
        return SegmentedContact.get(contact_id, consistent_read=True)
    except SegmentedContact.DoesNotExist:
        return None


def _parked(record: SegmentedContact) -> Announcement | None:
    slot = plain(record.segments_pending) if record.segments_pending is not None else None
    if not isinstance(slot, Mapping) or not slot.get("event_id"):
        return None
    try:
        body = json.loads(str(slot.get("body") or "{}"))
    except ValueError:
        body = {}
    return Announcement(
        str(slot["event_id"]),
        tuple(body.get("segments_entered") or ()),
        tuple(body.get("segments_exited") or ()),
    )


def _conditional_failed(error: UpdateError) -> bool:
    return error.cause_response_code == "ConditionalCheckFailedException"


def _send_parked(record: SegmentedContact, send: Callable[[str], None]) -> Announcement | None:
    """Send the announcement parked on the contact, then clear the slot (if it still
    holds that one)."""
    parked = _parked(record)
    if parked is None:
        return None
    send(str(plain(record.segments_pending).get("body")))
    _clear(record.contact_id, parked.event_id)
    return parked


def _write(contact_id: str, found: Changes, event_id: str, body: str, now: datetime) -> bool:
    """Store the change and park its announcement in one conditional write; False when
    the contact changed meanwhile (read it again)."""
    stamp = iso(now)
    model = SegmentedContact
    parked = model.segments_pending.set({"event_id": event_id, "body": body})
    condition = model.contact_id.exists() & model.segments_pending.does_not_exist()
    actions: list[Any] = []
    for segment in found.entered:
        actions.append(model.segments[segment].set(stamp))
        condition &= model.segments[segment].does_not_exist()
    for segment in found.exited:
        actions.append(model.segments[segment].remove())
        condition &= model.segments[segment].exists()
    try:
        model(contact_id).update(actions=[*actions, parked], condition=condition)
    except UpdateError as error:
        if _conditional_failed(error):
            return False
        if error.cause_response_code != "ValidationException" or found.exited:
            raise
        # An item written without the map (an import): nested paths cannot be set.
        try:
            model(contact_id).update(
                actions=[model.segments.set(dict.fromkeys(found.entered, stamp)), parked],
                condition=model.contact_id.exists()
                & model.segments_pending.does_not_exist()
                & model.segments.does_not_exist(),
            )
        except UpdateError as second:
            if _conditional_failed(second):
                return False
            raise
    return True


def refresh(
    contact_id: str,
    segment_set: SegmentSet,
    now: datetime,
    announcement_id: Callable[[Changes], str],
    send: Callable[[str], None],
    record: SegmentedContact | None = None,
    scanned: bool = False,
) -> list[Announcement]:
    """Evaluate the contact's segments at `now`, store what changed and send its
    ``contact_changed`` message through `send` (see the module notes); the announcements
    sent, a parked one found first included. Nothing for a contact that does not exist.

    `record` may come from a Scan (`scanned`): its events are then read only if it was
    active within the rules' longest window, and with eventually consistent reads (the
    conditional write catches what a stale read got wrong). Raises TransientError when
    the contact keeps changing under it."""
    sent: list[Announcement] = []
    for _ in range(ATTEMPTS):
        if record is None:
            scanned = False
            record = _read(contact_id)
            if record is None:
                return sent
        parked = _send_parked(record, send)
        if parked is not None:
            sent.append(parked)
            record = None
            continue
        active_since = activity_basis(record.last_active_at, record.created_at)
        last_event = activity_basis(record.last_active_at, None)
        facts = SegmentFacts(
            contact=record.view(),
            events=load_events(
                contact_id,
                segment_set,
                now,
                consistent=not scanned,
                active_since=last_event,
                skip_when_idle=scanned,
            ),
            active_since=active_since,
            now=now,
        )
        found = changes(segment_set, facts.contact.segments, memberships(segment_set, facts))
        if not found:
            return sent
        event_id = announcement_id(found)
        body = announcement_body(contact_id, event_id, found, now)
        if not _write(contact_id, found, event_id, body, now):
            record = None
            continue
        send(body)
        _clear(contact_id, event_id)
        sent.append(Announcement(event_id, found.entered, found.exited))
        return sent
    raise TransientError(f"the segments of contact {contact_id!r} kept changing; try again")


def _clear(contact_id: str, event_id: str) -> None:
    """Empty the announcement slot if it still holds `event_id` (someone else may have
    sent and cleared it already, and parked another since)."""
    try:
        SegmentedContact(contact_id).update(
            actions=[SegmentedContact.segments_pending.remove()],
            condition=SegmentedContact.segments_pending["event_id"] == event_id,
        )
    except UpdateError as error:
        if not _conditional_failed(error):
            raise
