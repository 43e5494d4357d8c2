"""The date-trigger sweep's pure part: which contacts enter which workflow, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from journeys import router
from journeys.contacts import ContactView
from journeys.sweeps import (
    EVENT_ID_MAX,
    Activity,
    due_entries,
    inactive_entries,
    inactivity_event_id,
    occurrence_event_id,
)

HOUR = timedelta(hours=1)


def index(*triggers: dict[str, Any], time_zone: str | None = "Europe/London") -> Any:
    workflows: dict[str, Any] = {
        "birthday-offer": {
            "name": "Birthday offer",
            "triggers": list(triggers) or [{"key": "event:signed_up", "event": "signed_up"}],
            "settings": {"time_zone": time_zone} if time_zone else {},
        },
        "cart-abandonment": {
            "name": "Cart abandonment",
            "triggers": [{"key": "event:added_to_cart", "event": "added_to_cart"}],
        },
    }
    return router.parse_index({"workflows": workflows})


BIRTHDAY = {"key": "date:birthday", "date": "birthday", "recurs": "yearly", "at": "09:00"}


def contact(contact_id: str, zone: str | None = "Europe/Paris", **attributes: Any) -> ContactView:
    return ContactView(contact_id=contact_id, attributes=attributes, time_zone=zone)


def test_birthday_today_at_nine_paris_is_due_in_the_hour_before() -> None:
    now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)  # 08:30 in Paris; 09:00 is 08:00Z
    entries = due_entries(index(BIRTHDAY), [contact("c-1", birthday="1990-11-22")], now, HOUR)
    assert entries == [
        {
            "type": "enter_workflow",
            "workflow_id": "birthday-offer",
            "contact_id": "c-1",
            "event_id": "date:birthday-offer:date:birthday:2026-11-22",
            "occurred_at": "2026-11-22T08:00:00Z",
            "source": {"trigger": "date:birthday", "occurrence": "2026-11-22T08:00:00Z"},
        }
    ]
    message = router.parse_message(entries[0])
    assert isinstance(message, router.EnterWorkflowMessage)
    assert message.workflow_id == "birthday-offer"
    assert message.occurred_at == datetime(2026, 11, 22, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 22, 6, 59, tzinfo=UTC),  # 09:00 Paris is 61 minutes away
        datetime(2026, 11, 22, 8, 0, 1, tzinfo=UTC),  # just past: next year's
        datetime(2026, 11, 21, 7, 30, tzinfo=UTC),  # the day before
    ],
)
def test_birthday_outside_the_window_is_not_due(now: datetime) -> None:
    assert due_entries(index(BIRTHDAY), [contact("c-1", birthday="1990-11-22")], now, HOUR) == []


def test_window_start_is_inclusive_and_end_exclusive() -> None:
    people = [contact("c-1", birthday="1990-11-22")]
    at_nine = datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert len(due_entries(index(BIRTHDAY), people, at_nine, HOUR)) == 1
    assert due_entries(index(BIRTHDAY), people, at_nine - HOUR, HOUR) == []


def test_a_wider_window_reaches_further() -> None:
    now = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    people = [contact("c-1", birthday="1990-11-22")]
    assert due_entries(index(BIRTHDAY), people, now, HOUR) == []
    assert len(due_entries(index(BIRTHDAY), people, now, timedelta(hours=9))) == 1


def test_contact_zone_falls_back_to_the_workflow_zone_then_utc() -> None:
    now = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)  # 09:00 London is 09:00Z
    people = [contact("c-1", zone=None, birthday="1990-11-22")]
    (entry,) = due_entries(index(BIRTHDAY), people, now, HOUR)
    assert entry["occurred_at"] == "2026-11-22T09:00:00Z"
    unknown = [contact("c-2", zone="Mars/Olympus", birthday="1990-11-22")]
    assert len(due_entries(index(BIRTHDAY), unknown, now, HOUR)) == 1
    (utc,) = due_entries(index(BIRTHDAY, time_zone=None), people, now, HOUR)
    assert utc["occurred_at"] == "2026-11-22T09:00:00Z"


def test_feb_29_birthday_fires_on_feb_28_in_common_years() -> None:
    people = [contact("leap", birthday="2000-02-29")]
    (entry,) = due_entries(index(BIRTHDAY), people, datetime(2027, 2, 28, 7, 30, tzinfo=UTC), HOUR)
    assert entry["event_id"] == "date:birthday-offer:date:birthday:2027-02-28"
    assert entry["occurred_at"] == "2027-02-28T08:00:00Z"
    # In a leap year it is the 29th, not the 28th.
    assert (
        due_entries(index(BIRTHDAY), people, datetime(2028, 2, 28, 7, 30, tzinfo=UTC), HOUR) == []
    )
    (leap,) = due_entries(index(BIRTHDAY), people, datetime(2028, 2, 29, 7, 30, tzinfo=UTC), HOUR)
    assert leap["event_id"].endswith(":2028-02-29")


DUE = {
    "key": "date:due_date",
    "date": "due_date",
    "recurs": "once",
    "offset": "-10 days",
    "at": "09:00",
}


def test_once_with_a_negative_offset_fires_ten_days_before() -> None:
    now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    people = [
        contact("due", due_date="2026-12-02"),
        contact("later", due_date="2026-12-03"),
        contact("past", due_date="2026-11-01"),
    ]
    (entry,) = due_entries(index(DUE), people, now, HOUR)
    assert entry["contact_id"] == "due"
    assert entry["event_id"] == "date:birthday-offer:date:due_date:2026-11-22"
    assert entry["occurred_at"] == "2026-11-22T08:00:00Z"
    assert entry["source"] == {"trigger": "date:due_date", "occurrence": "2026-11-22T08:00:00Z"}


def test_monthly_fires_on_the_day_of_the_month() -> None:
    monthly = {"key": "date:since", "date": "since", "recurs": "monthly", "at": "10:00"}
    now = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)  # 10:00 Paris is 09:00Z
    people = [contact("m", since="2025-01-15"), contact("n", since="2025-01-16")]
    assert [e["contact_id"] for e in due_entries(index(monthly), people, now, HOUR)] == ["m"]


def test_contacts_without_the_attribute_or_a_readable_date_are_skipped() -> None:
    now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    people = [
        contact("none"),
        contact("null", birthday=None),
        contact("junk", birthday="not a date"),
        contact("number", birthday=19901122),
        contact("yes", birthday="1990-11-22"),
    ]
    assert [e["contact_id"] for e in due_entries(index(BIRTHDAY), people, now, HOUR)] == ["yes"]


def test_workflows_without_date_triggers_yield_nothing() -> None:
    now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    people = [contact("c-1", birthday="1990-11-22")]
    assert due_entries(index(), people, now, HOUR) == []


def test_every_date_trigger_of_every_workflow_and_every_contact() -> None:
    both = index(BIRTHDAY, DUE)
    now = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    people = [
        contact("a", birthday="1990-11-22", due_date="2026-12-02"),
        contact("b", birthday="1985-11-22"),
    ]
    entries = due_entries(both, people, now, HOUR)
    assert [(e["contact_id"], e["source"]["trigger"]) for e in entries] == [
        ("a", "date:birthday"),
        ("a", "date:due_date"),
        ("b", "date:birthday"),
    ]
    assert len({(e["contact_id"], e["event_id"]) for e in entries}) == 3
    for entry in entries:
        router.parse_message(entry)


def test_the_same_occurrence_has_the_same_event_id_from_any_window() -> None:
    people = [contact("c-1", birthday="1990-11-22")]
    first = due_entries(index(BIRTHDAY), people, datetime(2026, 11, 22, 7, 5, tzinfo=UTC), HOUR)
    second = due_entries(index(BIRTHDAY), people, datetime(2026, 11, 22, 7, 55, tzinfo=UTC), HOUR)
    assert first == second


def test_event_ids_stay_within_the_routers_limit() -> None:
    assert occurrence_event_id("w", "date:x", "2026-11-22") == "date:w:date:x:2026-11-22"
    long = occurrence_event_id("w" * 300, "date:" + "x" * 300, "2026-11-22")
    assert len(long) <= EVENT_ID_MAX
    assert long != occurrence_event_id("w" * 300, "date:" + "y" * 300, "2026-11-22")


def test_now_must_be_aware_and_the_window_positive() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_entries(index(BIRTHDAY), [], datetime(2026, 11, 22), HOUR)
    with pytest.raises(ValueError, match="positive"):
        due_entries(index(BIRTHDAY), [], datetime(2026, 11, 22, tzinfo=UTC), timedelta(0))


# --- Inactivity triggers -------------------------------------------------------------------

IDLE_30 = {"key": "inactive_for:30 days", "inactive_for": "30 days"}
IDLE_WEEK = {"key": "inactive_for:1 week", "inactive_for": "1 week"}
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LAST_SEEN = "2026-10-23T11:40:00.000000Z"  # 30 days before 11:40


def idle_index(*triggers: dict[str, Any]) -> Any:
    workflows = {"win-back": {"name": "Win back", "triggers": list(triggers)}}
    return router.parse_index({"workflows": workflows})


def test_inactivity_fires_in_the_hour_it_is_reached() -> None:
    entries = inactive_entries(idle_index(IDLE_30), [Activity("c-1", LAST_SEEN)], NOON, HOUR)
    assert entries == [
        {
            "type": "enter_workflow",
            "workflow_id": "win-back",
            "contact_id": "c-1",
            "event_id": f"inactive:win-back:inactive_for:30 days:{LAST_SEEN}",
            "occurred_at": "2026-11-22T11:40:00Z",
            "source": {"trigger": "inactive_for:30 days", "occurrence": "2026-11-22T11:40:00Z"},
        }
    ]
    message = router.parse_message(entries[0])
    assert isinstance(message, router.EnterWorkflowMessage)
    [matched] = router.match(message, idle_index(IDLE_30), NOON)
    assert matched.key == "inactive_for:30 days"  # what started_by and the journey see


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        (datetime(2026, 11, 22, 11, 39, 59, tzinfo=UTC), False),  # not yet: never early
        (datetime(2026, 11, 22, 11, 40, tzinfo=UTC), True),  # the window's end is inclusive
        (datetime(2026, 11, 22, 12, 39, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 22, 12, 40, tzinfo=UTC), False),  # the last hour's run had it
    ],
)
def test_each_period_falls_in_exactly_one_hourly_window(now: datetime, fires: bool) -> None:
    entries = inactive_entries(idle_index(IDLE_30), [Activity("c-1", LAST_SEEN)], now, HOUR)
    assert len(entries) == int(fires)


def test_inactivity_counts_from_creation_for_contacts_who_never_did_anything() -> None:
    contacts = [
        Activity("never", created_at=LAST_SEEN),
        Activity("active", "2026-11-22T09:00:00Z", created_at=LAST_SEEN),
        Activity("unknown"),
        Activity("garbled", "yesterday"),
    ]
    entries = inactive_entries(idle_index(IDLE_30, IDLE_WEEK), contacts, NOON, HOUR)
    assert [(e["contact_id"], e["source"]["trigger"]) for e in entries] == [
        ("never", "inactive_for:30 days")
    ]


def test_inactivity_event_ids_stay_within_the_routers_limit() -> None:
    long = inactivity_event_id("w" * 300, "inactive_for:30 days", "x" * 300)
    assert long.startswith("inactive:") and len(long) <= EVENT_ID_MAX
    assert long != inactivity_event_id("w" * 300, "inactive_for:30 days", "y" * 300)
    with pytest.raises(ValueError, match="aware"):
        inactive_entries(idle_index(IDLE_30), [], datetime(2026, 11, 22), HOUR)
