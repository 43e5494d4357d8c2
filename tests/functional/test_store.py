"""The pynamodb models against tables built from template.yaml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from journeys.exceptions import ContactNotFound
from journeys.store import ContactRecord, EventRecordModel, events_since, iso, load_contact


def test_contact_round_trip_through_the_view(aws: dict[str, Any]) -> None:
    ContactRecord(
        "c-1",
        attributes={"first_name": "Ada", "cart_items": 3},
        tags={"vip": "2026-11-01T00:00:00Z"},
        channels={"email": {"address": "ada@example.com", "status": "subscribed"}},
        time_zone="Europe/Paris",
    ).save()
    contact = load_contact("c-1")
    assert contact.attributes["first_name"] == "Ada"
    assert contact.attributes["cart_items"] == 3
    assert set(contact.tags) == {"vip"}
    assert contact.channels["email"].address == "ada@example.com"
    assert contact.time_zone == "Europe/Paris"


def test_missing_contact_is_a_named_error(aws: dict[str, Any]) -> None:
    with pytest.raises(ContactNotFound, match="nobody"):
        load_contact("nobody")


def test_events_since_filters_by_time_and_name(aws: dict[str, Any]) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for minutes, name in ((90, "page_viewed"), (30, "page_viewed"), (10, "added_to_cart")):
        at = now - timedelta(minutes=minutes)
        EventRecordModel(
            "c-1",
            f"{iso(at)}#e{minutes}",
            name=name,
            event_id=f"e{minutes}",
            occurred_at=iso(at),
            properties={"url": "/pricing"},
        ).save()
    recent = events_since("c-1", now - timedelta(hours=1), names={"page_viewed"})
    assert [e.event_id for e in recent] == ["e30"]
    assert recent[0].properties.attribute_values == {"url": "/pricing"}
