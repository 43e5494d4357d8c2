"""The date-trigger sweep on moto: contacts in DynamoDB, messages on the router's queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from journeys import router, sweeps
from journeys.exceptions import TransientError
from journeys.settings import Settings, get_settings
from journeys.store import ContactRecord
from tests.helpers.aws import REGION, drain
from tests.helpers.lambdas import invoke

NOW = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)  # 08:30 in Paris, 07:30 in London
INDEX = {
    "workflows": {
        "birthday-offer": {
            "name": "Birthday offer",
            "triggers": [
                {"key": "date:birthday", "date": "birthday", "recurs": "yearly", "at": "09:00"}
            ],
            "settings": {"time_zone": "Europe/London", "re_entry": {"after": "300 days"}},
        },
        "renewal-reminder": {
            "name": "Renewal reminder",
            "triggers": [
                {
                    "key": "date:renews_on",
                    "date": "renews_on",
                    "recurs": "once",
                    "offset": "-10 days",
                    "at": "09:00",
                }
            ],
        },
        "cart-abandonment": {
            "name": "Cart abandonment",
            "triggers": [{"key": "event:added_to_cart", "event": "added_to_cart"}],
        },
    }
}


@dataclass
class World:
    settings: Settings
    sqs: Any
    queue_url: str

    def drain(self) -> list[dict[str, Any]]:
        """Every message now on the router's queue, each checked by the router's parser."""
        bodies = drain(self.sqs, self.queue_url)
        for body in bodies:
            assert isinstance(router.parse_message(body), router.EnterWorkflowMessage)
        return bodies


def write_index(path: Path, data: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("WORKFLOW_INDEX", str(path))
    get_settings.cache_clear()


@pytest.fixture
def world(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="journeys-events-test")["QueueUrl"]
    monkeypatch.setenv("EVENTS_QUEUE_URL", url)
    write_index(tmp_path / "index.json", INDEX, monkeypatch)
    # Due now: birthdays today at 09:00 Paris (08:00Z), renewals 10 days on.
    ContactRecord("paris", attributes={"birthday": "1990-11-22"}, time_zone="Europe/Paris").save()
    ContactRecord("renews", attributes={"renews_on": "2026-12-02"}, time_zone="Europe/Paris").save()
    # Not due: London's 09:00 is 09:00Z (next hour), other days, no date at all.
    ContactRecord("london", attributes={"birthday": "1990-11-22"}).save()
    ContactRecord(
        "tomorrow", attributes={"birthday": "1990-11-23"}, time_zone="Europe/Paris"
    ).save()
    ContactRecord("later", attributes={"renews_on": "2026-12-03"}, time_zone="Europe/Paris").save()
    ContactRecord("nobody", attributes={"first_name": "Ada"}, time_zone="Europe/Paris").save()
    ContactRecord("bare").save()
    yield World(get_settings(), sqs, url)


def test_the_sweep_enqueues_exactly_the_due_contacts(world: World) -> None:
    sent = sweeps.sweep(world.settings, now=NOW, sqs=world.sqs)
    messages = world.drain()
    assert sent == len(messages) == 2
    assert sorted((m["contact_id"], m["workflow_id"], m["event_id"]) for m in messages) == [
        ("paris", "birthday-offer", "date:birthday-offer:date:birthday:2026-11-22"),
        ("renews", "renewal-reminder", "date:renewal-reminder:date:renews_on:2026-11-22"),
    ]
    for message in messages:
        assert message["type"] == "enter_workflow"
        assert message["occurred_at"] == "2026-11-22T08:00:00Z"
        assert message["source"]["occurrence"] == "2026-11-22T08:00:00Z"


def test_the_next_hour_finds_the_london_birthday(world: World) -> None:
    assert sweeps.sweep(world.settings, now=NOW + timedelta(hours=1), sqs=world.sqs) == 1
    (message,) = world.drain()
    assert message["contact_id"] == "london"
    assert message["occurred_at"] == "2026-11-22T09:00:00Z"


def test_running_twice_yields_identical_event_ids(world: World) -> None:
    assert sweeps.sweep(world.settings, now=NOW, sqs=world.sqs) == 2
    first = sorted((m["contact_id"], m["event_id"]) for m in world.drain())
    assert sweeps.sweep(world.settings, now=NOW + timedelta(minutes=20), sqs=world.sqs) == 2
    second = sorted((m["contact_id"], m["event_id"]) for m in world.drain())
    assert first == second


def test_batches_of_ten(world: World) -> None:
    for number in range(23):
        ContactRecord(
            f"fan-{number}", attributes={"birthday": "2001-11-22"}, time_zone="Europe/Paris"
        ).save()
    calls: list[int] = []

    class Counting:
        def send_message_batch(self, **kwargs: Any) -> Any:
            calls.append(len(kwargs["Entries"]))
            return world.sqs.send_message_batch(**kwargs)

    assert sweeps.sweep(world.settings, now=NOW, sqs=Counting()) == 25
    assert sorted(calls) == [5, 10, 10]
    assert len(world.drain()) == 25


def test_no_date_triggers_means_no_scan_and_nothing_sent(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events_only = {"workflows": {"cart-abandonment": INDEX["workflows"]["cart-abandonment"]}}
    write_index(tmp_path / "events-only.json", events_only, monkeypatch)

    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scanned without date triggers")

    monkeypatch.setattr(ContactRecord, "scan", no_scan)
    assert sweeps.sweep(get_settings(), now=NOW, sqs=world.sqs) == 0
    assert world.drain() == []


def test_refused_entries_are_retried_then_raise(world: World) -> None:
    class Refusing:
        def send_message_batch(self, **kwargs: Any) -> Any:
            return {"Failed": [{"Id": e["Id"], "SenderFault": False} for e in kwargs["Entries"]]}

    with pytest.raises(TransientError):
        sweeps.sweep(world.settings, now=NOW, sqs=Refusing())


def test_the_lambda_sweeps_the_scheduled_hour(world: World) -> None:
    event = {
        "version": "0",
        "id": "e-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-11-22T07:30:00Z",
        "region": REGION,
        "resources": [],
        "detail": {},
    }
    assert invoke("sweep", event) == {"enqueued": 2}
    assert sorted(m["contact_id"] for m in world.drain()) == ["paris", "renews"]


def test_the_router_gives_the_journey_its_date_trigger() -> None:
    from journeys.router import EnterWorkflowMessage, match, parse_index

    index = parse_index(
        {
            "workflows": {
                "birthday-offer": {
                    "name": "Birthday",
                    "triggers": [{"key": "date:birthday", "date": "birthday"}],
                    "settings": {},
                    "goal": None,
                    "exits": [],
                }
            }
        }
    )
    message = EnterWorkflowMessage.model_validate(
        {
            "type": "enter_workflow",
            "workflow_id": "birthday-offer",
            "contact_id": "c-1",
            "event_id": "date:birthday-offer:date:birthday:2026-11-22",
            "occurred_at": "2026-11-22T08:00:00Z",
            "source": {"trigger": "date:birthday", "occurrence": "2026-11-22T08:00:00Z"},
        }
    )
    [matched] = match(message, index)
    assert matched.trigger["key"] == "date:birthday"
