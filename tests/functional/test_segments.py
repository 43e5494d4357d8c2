"""Segments and inactivity on moto: the router and the sweep keep memberships, announce
changes once on the events queue, and the announcements start segment journeys.

The index is the compiled one (state_machines/index.json: the reference workflows and the
segments of workflows/segments/) plus three test workflows; every workflow is deployed as
a 60 s Wait, so started executions stay visible while a test looks at them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from journeys import router, segments, sweeps
from journeys.settings import Settings, get_settings
from journeys.store import ContactRecord, iso
from tests.helpers.aws import ACCOUNT, REGION, ROLE_ARN, drain

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MACHINE_PREFIX = "journeys-test-"
ARN_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE_PREFIX}"
WAIT_A_MINUTE = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}},
}
TEST_WORKFLOWS: dict[str, Any] = {
    "browse-nudge": {
        "name": "Browse nudge",
        "triggers": [
            {"key": "segment_entered:repeat-browser", "segment_entered": "repeat-browser"}
        ],
        "settings": {"re_entry": "always"},
    },
    "lapsed-browser": {
        "name": "Lapsed browser",
        "triggers": [{"key": "segment_exited:repeat-browser", "segment_exited": "repeat-browser"}],
        "settings": {"re_entry": "always"},
    },
    "win-back": {
        "name": "Win back",
        "triggers": [{"key": "inactive_for:30 days", "inactive_for": "30 days"}],
        "settings": {"re_entry": "always"},
    },
}


@dataclass
class World:
    settings: Settings
    index: router.WorkflowIndex
    sfn: Any
    sqs: Any
    queue_url: str

    def route(
        self, message: dict[str, Any], now: datetime = NOW, sqs: Any = None
    ) -> router.Outcome:
        return router.route(
            message, self.index, self.settings, now=now, sfn=self.sfn, sqs=sqs or self.sqs
        )

    def drain(self) -> list[dict[str, Any]]:
        """Every message on the events queue, each accepted by the router's parser."""
        bodies = drain(self.sqs, self.queue_url)
        for body in bodies:
            router.parse_message(body)
        return bodies

    def route_all(self, now: datetime = NOW) -> list[router.Outcome]:
        """Route what is on the queue, as the router Lambda would."""
        return [self.route(body, now=now) for body in self.drain()]

    def sweep(self, now: datetime) -> int:
        return sweeps.sweep(self.settings, now=now, sqs=self.sqs)

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        found = self.sfn.list_executions(stateMachineArn=ARN_PREFIX + workflow_id)
        return list(found["executions"])

    def trigger_of(self, workflow_id: str) -> dict[str, Any]:
        (execution,) = self.executions(workflow_id)
        described = self.sfn.describe_execution(executionArn=execution["executionArn"])
        return dict(json.loads(described["input"])["trigger"])

    def memberships(self, contact_id: str = "c-1") -> set[str]:
        return set(segments.SegmentedContact.get(contact_id, consistent_read=True).segments)


@pytest.fixture
def world(aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    compiled = json.loads((ROOT / "state_machines" / "index.json").read_text(encoding="utf-8"))
    compiled["workflows"].update(TEST_WORKFLOWS)
    path = tmp_path / "index.json"
    path.write_text(json.dumps(compiled), encoding="utf-8")
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="journeys-events-test")["QueueUrl"]
    monkeypatch.setenv("WORKFLOW_INDEX", str(path))
    monkeypatch.setenv("STATE_MACHINE_ARN_PREFIX", ARN_PREFIX)
    monkeypatch.setenv("EVENTS_QUEUE_URL", url)
    get_settings.cache_clear()
    settings = get_settings()
    router.bind(settings)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    for workflow_id in compiled["workflows"]:
        sfn.create_state_machine(
            name=MACHINE_PREFIX + workflow_id,
            definition=json.dumps(WAIT_A_MINUTE),
            roleArn=ROLE_ARN,
        )
    return World(settings, router.load_index(path), sfn, sqs, url)


def contact(contact_id: str = "c-1", **fields: Any) -> None:
    fields.setdefault("created_at", iso(NOW - DAY))
    ContactRecord(contact_id, **fields).save()


def event(name: str, event_id: str, at: datetime = NOW, contact_id: str = "c-1") -> dict[str, Any]:
    return {
        "type": "event",
        "event_id": event_id,
        "contact_id": contact_id,
        "name": name,
        "properties": {},
        "occurred_at": iso(at),
    }


def refusing_sqs(real: Any) -> Any:
    """The events queue client, failing every send (a dead connection)."""
    client = boto3.client("sqs", region_name=REGION)

    def fail(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=real.meta.endpoint_url)

    client.meta.events.register("before-call.sqs.SendMessageBatch", fail)
    return client


# --- The router ----------------------------------------------------------------------------


def test_the_fourth_product_view_enters_repeat_browser_and_starts_its_journey(
    world: World,
) -> None:
    # GIVEN a contact who viewed products three times this month
    contact(last_active_at=iso(NOW - 10 * DAY))
    for number, days_ago in enumerate((20, 10, 1), start=1):
        outcome = world.route(event("product_viewed", f"v-{number}", NOW - days_ago * DAY))
        assert outcome.segments_entered == ()
    world.drain()  # nothing about segments there, only what the events themselves did
    # WHEN the fourth view arrives
    outcome = world.route(event("product_viewed", "v-4"))
    # THEN the contact is in repeat-browser and one announcement is on the queue
    assert outcome.segments_entered == ("repeat-browser",)
    assert outcome.summary()["segments_entered"] == ["repeat-browser"]
    assert "repeat-browser" in world.memberships()
    (announcement,) = world.drain()
    assert announcement == {
        "type": "contact_changed",
        "event_id": "seg:v-4:+repeat-browser",
        "contact_id": "c-1",
        "occurred_at": iso(NOW),
        "segments_entered": ["repeat-browser"],
        "segments_exited": [],
    }
    # AND routing it starts the journey whose trigger is entering the segment
    started = world.route(announcement)
    assert started.started == ["browse-nudge"]
    trigger = world.trigger_of("browse-nudge")
    assert (trigger["key"], trigger["properties"]) == (
        "segment_entered:repeat-browser",
        {"segment": "repeat-browser"},
    )
    # AND the announcement announces nothing further: no loop; evaluating the contact
    # again (what the router skips for a bare announcement) finds nothing new either
    assert started.segments_entered == started.segments_exited == ()
    assert world.drain() == []
    again = segments.refresh("c-1", world.index.segments, NOW, lambda f: "seg:again", print)
    assert again == []


def test_a_duplicate_event_does_not_announce_twice(world: World) -> None:
    contact()
    for number in range(1, 5):
        world.route(event("product_viewed", f"v-{number}", NOW - number * HOUR))
    assert [m["event_id"] for m in world.drain() if m["type"] == "contact_changed"] == [
        "seg:v-4:+repeat-browser"
    ]
    # SQS delivers v-4 again, and a contact change arrives: nothing new to announce.
    assert world.route(event("product_viewed", "v-4", NOW - 4 * HOUR)).duplicate
    change = {
        "type": "contact_changed",
        "event_id": "chg-1",
        "contact_id": "c-1",
        "occurred_at": iso(NOW),
        "tags_added": ["vip"],
    }
    assert world.route(change).segments_entered == ()
    assert world.drain() == []


def test_a_change_written_but_not_sent_is_sent_once_by_the_retry(world: World) -> None:
    contact()
    for number in range(1, 4):
        world.route(event("product_viewed", f"v-{number}", NOW - number * HOUR))
    # WHEN the queue cannot be reached just after the membership was written
    with pytest.raises(EndpointConnectionError):
        world.route(event("product_viewed", "v-4"), sqs=refusing_sqs(world.sqs))
    assert "repeat-browser" in world.memberships()
    parked = segments.SegmentedContact.get("c-1", consistent_read=True).segments_pending
    assert parked is not None and parked["event_id"] == "seg:v-4:+repeat-browser"
    assert world.drain() == []
    # THEN the redelivered message sends the parked announcement, once, and clears it
    retried = world.route(event("product_viewed", "v-4"), now=NOW + timedelta(minutes=2))
    assert not retried.duplicate
    assert retried.segments_entered == ("repeat-browser",)
    assert [m["event_id"] for m in world.drain()] == ["seg:v-4:+repeat-browser"]
    assert segments.SegmentedContact.get("c-1", consistent_read=True).segments_pending is None
    assert world.route(event("product_viewed", "v-4")).duplicate
    assert world.drain() == []


def test_an_attribute_change_from_the_api_enters_engaged(world: World) -> None:
    contact(attributes={"score": 60})
    change = {
        "type": "contact_changed",
        "event_id": "chg-score",
        "contact_id": "c-1",
        "occurred_at": iso(NOW),
        "attributes_changed": {"score": {"old": 40, "new": 60}},
    }
    assert world.route(change).segments_entered == ("engaged",)
    (announcement,) = world.drain()
    assert announcement["event_id"] == "seg:chg-score:+engaged"


def test_events_move_last_active_at_forward_only(world: World) -> None:
    contact()
    world.route(event("page_viewed", "p-1", NOW - DAY))
    assert ContactRecord.get("c-1").last_active_at == iso(NOW - DAY)
    world.route(event("page_viewed", "p-0", NOW - 3 * DAY))  # late, out of order
    assert ContactRecord.get("c-1").last_active_at == iso(NOW - DAY)
    world.route(event("page_viewed", "p-2", NOW + DAY))  # a client clock ahead
    assert ContactRecord.get("c-1").last_active_at == iso(NOW)
    # Events of unknown contacts are stored, but create no contact.
    world.route(event("page_viewed", "p-3", contact_id="ghost"))
    with pytest.raises(ContactRecord.DoesNotExist):
        ContactRecord.get("ghost")


def test_an_activity_drop_enters_about_to_churn_and_starts_churn_prevention(
    world: World,
) -> None:
    # GIVEN four logins between 29 and 17 days ago (each routed as it happened)
    contact(created_at=iso(NOW - 60 * DAY))
    for number, days_ago in enumerate((29, 25, 20, 17), start=1):
        at = NOW - days_ago * DAY
        assert world.route(event("logged_in", f"l-{number}", at), now=at).segments_entered == ()
    # WHEN the next login comes 15 days later: one in the last 15 days, four before
    outcome = world.route(event("logged_in", "l-5", NOW - 2 * DAY), now=NOW - 2 * DAY)
    # THEN logins dropped by 75%, at least the 50% of about-to-churn
    assert outcome.segments_entered == ("about-to-churn",)
    announcements = [m for m in world.drain() if m["type"] == "contact_changed"]
    assert [m["event_id"] for m in announcements] == ["seg:l-5:+about-to-churn"]
    world.route(announcements[0])
    assert world.trigger_of("churn-prevention")["key"] == "segment_entered:about-to-churn"


# --- The sweep -----------------------------------------------------------------------------


def test_the_sweep_moves_a_quiet_contact_into_d_30_and_starts_cold_user_reactivation(
    world: World,
) -> None:
    # GIVEN a contact last seen 30 days and 20 minutes ago, and one seen yesterday
    last_seen = NOW - 30 * DAY - timedelta(minutes=20)
    contact(last_active_at=iso(last_seen))
    contact("busy", last_active_at=iso(NOW - DAY))
    # WHEN the hourly sweep runs
    assert world.sweep(NOW) == 2
    messages = {m["type"]: m for m in world.drain()}
    # THEN the quiet contact enters d-30 (not d-60), announced with a sweep id...
    assert messages["contact_changed"] == {
        "type": "contact_changed",
        "event_id": "seg-sweep:c-1:2026-11-22T12:00Z:+d-30",
        "contact_id": "c-1",
        "occurred_at": iso(NOW),
        "segments_entered": ["d-30"],
        "segments_exited": [],
    }
    assert world.memberships() == {"d-30"}
    # ...and its 30 days of inactivity fire the inactive_for trigger, once
    entry = messages["enter_workflow"]
    assert entry == {
        "type": "enter_workflow",
        "workflow_id": "win-back",
        "contact_id": "c-1",
        "event_id": f"inactive:win-back:inactive_for:30 days:{iso(last_seen)}",
        "occurred_at": "2026-11-22T11:40:00Z",
        "source": {"trigger": "inactive_for:30 days", "occurrence": "2026-11-22T11:40:00Z"},
    }
    # AND routing them starts cold-user-reactivation, engagement scoring and win-back
    outcomes = [world.route(message) for message in messages.values()]
    assert sorted(w for outcome in outcomes for w in outcome.started) == [
        "cold-user-reactivation",
        "engagement-scoring",
        "win-back",
    ]
    assert world.trigger_of("cold-user-reactivation")["key"] == "segment_entered:d-30"
    assert world.trigger_of("win-back")["key"] == "inactive_for:30 days"
    # AND the next hour finds nothing new
    assert world.sweep(NOW + HOUR) == 0
    assert world.drain() == []


def test_inactive_for_fires_once_per_period_of_inactivity(world: World) -> None:
    contact(last_active_at=iso(NOW - 30 * DAY + timedelta(minutes=30)))
    assert world.sweep(NOW) == 0  # 29 days 23.5 hours: not yet
    assert world.sweep(NOW + HOUR) == 2  # d-30 and win-back
    first = [m["event_id"] for m in world.drain() if m["type"] == "enter_workflow"]
    assert world.sweep(NOW + 2 * HOUR) == 0
    # Running an hour twice (a retried invocation) gives the same id: the router drops it.
    assert world.sweep(NOW + HOUR) == 1
    assert [m["event_id"] for m in world.drain()] == first
    # WHEN the contact comes back, it leaves d-30...
    back = NOW + 3 * HOUR
    outcome = world.route(event("logged_in", "back", back), now=back)
    assert outcome.segments_exited == ("d-30",)
    (exited,) = [m for m in world.drain() if m["type"] == "contact_changed"]
    assert (exited["segments_entered"], exited["segments_exited"]) == ([], ["d-30"])
    assert world.memberships() == set()
    # ...and 30 quiet days later the trigger fires again, for the new period
    later = back + 30 * DAY + timedelta(minutes=10)
    assert world.sweep(later) == 2
    again = [m["event_id"] for m in world.drain() if m["type"] == "enter_workflow"]
    assert again == [f"inactive:win-back:inactive_for:30 days:{iso(back)}"] != first


def test_a_contact_that_never_did_anything_counts_from_its_creation(world: World) -> None:
    contact(created_at=iso(NOW - 60 * DAY - timedelta(minutes=5)))
    assert world.sweep(NOW) == 1
    (announcement,) = world.drain()
    assert announcement["segments_entered"] == ["d-30", "d-60"]


def test_a_window_running_out_makes_the_contact_leave(world: World) -> None:
    contact()
    for number in range(1, 5):
        world.route(event("product_viewed", f"v-{number}", NOW - (29 - number) * DAY), now=NOW)
    world.drain()
    assert "repeat-browser" in world.memberships()
    # Three days on, the first view is more than 30 days old: three views are left.
    later = NOW + 3 * DAY
    assert world.sweep(later) == 1
    (announcement,) = world.drain()
    assert announcement["segments_exited"] == ["repeat-browser"]
    assert world.route(announcement, now=later).started == ["lapsed-browser"]


def test_an_announcement_parked_by_a_failed_run_goes_out_with_the_next_one(
    world: World,
) -> None:
    contact(last_active_at=iso(NOW - 31 * DAY))
    with pytest.raises(EndpointConnectionError):
        sweeps.sweep(world.settings, now=NOW, sqs=refusing_sqs(world.sqs))
    assert world.memberships() == {"d-30"}
    assert world.drain() == []
    # The retried invocation (same scheduled time) sends it, and nothing else.
    assert world.sweep(NOW) == 1
    assert [m["event_id"] for m in world.drain()] == ["seg-sweep:c-1:2026-11-22T12:00Z:+d-30"]


def test_without_triggers_or_segments_nothing_is_scanned(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "plain.json"
    path.write_text(json.dumps({"workflows": {"win-back": TEST_WORKFLOWS["browse-nudge"]}}))
    monkeypatch.setenv("WORKFLOW_INDEX", str(path))
    get_settings.cache_clear()

    def no_scan(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("scanned for nothing")

    monkeypatch.setattr(segments.SegmentedContact, "scan", no_scan)
    assert sweeps.sweep(get_settings(), now=NOW, sqs=world.sqs) == 0


def test_the_sweep_reads_no_events_for_contacts_quiet_for_longer_than_any_window(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact("quiet", last_active_at=iso(NOW - 400 * DAY))
    contact("never")
    contact("recent", last_active_at=iso(NOW - DAY))
    queried: list[str] = []
    real_query: Callable[..., Any] = segments.EventRecordModel.query

    def counting(contact_id: str, *args: Any, **kwargs: Any) -> Any:
        queried.append(contact_id)
        return real_query(contact_id, *args, **kwargs)

    monkeypatch.setattr(segments.EventRecordModel, "query", counting)
    world.sweep(NOW)
    assert queried == ["recent"]


def test_a_contact_item_without_a_segments_map_gets_one(world: World) -> None:
    # Written by something other than the API (an import): no top-level maps at all.
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=world.settings.contacts_table,
        Item={
            "contact_id": {"S": "c-1"},
            "attributes": {"M": {"score": {"N": "75"}}},
            "created_at": {"S": iso(NOW - DAY)},
        },
    )
    sent: list[str] = []
    announced = segments.refresh(
        "c-1", world.index.segments, NOW, lambda found: "seg:import", sent.append
    )
    assert [(a.event_id, a.entered) for a in announced] == [("seg:import", ("engaged",))]
    assert world.memberships() == {"engaged"}
    assert [json.loads(body)["segments_entered"] for body in sent] == [["engaged"]]


def test_two_evaluations_racing_announce_once(world: World) -> None:
    contact(attributes={"score": 75})
    stale = segments.SegmentedContact.get("c-1", consistent_read=True)  # read by the sweep
    sent: list[str] = []
    first = segments.refresh("c-1", world.index.segments, NOW, lambda f: "seg:a", sent.append)
    # The second evaluation decided on the stale read: its conditional write fails, it
    # reads again and finds the change already made.
    second = segments.refresh(
        "c-1", world.index.segments, NOW, lambda f: "seg:b", sent.append, record=stale, scanned=True
    )
    assert [a.event_id for a in first] == ["seg:a"]
    assert second == []
    assert [json.loads(body)["event_id"] for body in sent] == ["seg:a"]
