"""The API's pure parts: request models, contact change plans, router messages, queue
chunking, error messages, pages, and the OpenAPI document checked in at docs/openapi.json."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from journeys import api, contact_updates
from journeys.api import ApiError, EventBatch, EventIn
from journeys.contact_updates import ChannelIn, ContactChanges, ContactPlan, ContactUpsert

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
NOW_ISO = "2026-05-04T10:00:00.000000Z"


# --- The OpenAPI document ------------------------------------------------------------------


def test_the_checked_in_openapi_document_is_what_the_app_generates() -> None:
    checked_in = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert checked_in == api.openapi_document(), (
        "docs/openapi.json is stale; regenerate it: "
        ".venv/bin/python -m journeys.api docs/openapi.json"
    )


def test_the_document_names_every_route_and_only_unsubscribe_is_public() -> None:
    document = json.loads(api.openapi_document())
    assert document["info"]["title"] == "Journeys API"
    assert document["components"]["securitySchemes"] == {
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}
    }
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == {
        ("POST", "/v1/events"),
        ("POST", "/v1/events/batch"),
        ("PUT", "/v1/contacts/{contact_id}"),
        ("GET", "/v1/contacts/{contact_id}"),
        ("GET", "/v1/contacts/{contact_id}/journeys"),
        ("GET", "/v1/workflows"),
        ("GET", "/v1/workflows/{workflow_id}/stats"),
        ("GET", "/v1/workflows/{workflow_id}/graph"),
        ("GET", "/v1/contacts/{contact_id}/timeline"),
        ("GET", "/v1/stats"),
        ("POST", "/v1/imports"),
        ("GET", "/v1/imports/{import_id}"),
        ("GET", "/v1/unsubscribe"),
        ("POST", "/v1/unsubscribe"),
    }
    for key, operation in operations.items():
        public = key[1] == "/v1/unsubscribe"
        assert ("security" not in operation) == public, key
    assert "202" in operations[("POST", "/v1/events")]["responses"]
    assert "413" in operations[("POST", "/v1/events/batch")]["responses"]


def test_main_writes_and_checks_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    said: list[str] = []
    assert api.main(["--check", str(target)], out=said.append) == 1
    assert api.main([str(target)], out=said.append) == 0
    assert target.read_text(encoding="utf-8") == api.openapi_document()
    assert api.main(["--check", str(target)], out=said.append) == 0
    assert api.main([], out=said.append) == 2
    assert said[0].endswith("is stale; run: python -m journeys.api " + str(target))


# --- Request models ------------------------------------------------------------------------


def test_an_event_needs_an_id_a_contact_and_a_name() -> None:
    event = EventIn.model_validate(
        {"event_id": "e-1", "contact_id": "ada@example.com", "name": "checkout_completed"}
    )
    assert event.properties == {}
    assert event.occurred_at is None


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": "has space"}, "event_id"),
        ({"contact_id": "a/b"}, "contact_id"),
        ({"contact_id": ""}, "contact_id"),
        ({"name": "1st"}, "name"),
        ({"name": "n" * 129}, "name"),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
        ({"properties": {"x": float("inf")}}, "properties"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_event_fields(fields: dict[str, Any], loc: str) -> None:
    base = {"event_id": "e-1", "contact_id": "ada", "name": "viewed"}
    with pytest.raises(ValidationError) as caught:
        EventIn.model_validate({**base, **fields})
    assert [error["loc"][0] for error in caught.value.errors()] == [loc]


def test_event_names_follow_the_compiler() -> None:
    for name in ("checkout_completed", "app:opened", "page.viewed", "A-1"):
        EventIn(event_id="e", contact_id="c", name=name)


def test_a_batch_holds_1_to_100_distinct_events() -> None:
    def events(n: int, same_id: bool = False) -> list[dict[str, str]]:
        return [
            {"event_id": "e" if same_id else f"e{i}", "contact_id": "c", "name": "x"}
            for i in range(n)
        ]

    assert len(EventBatch.model_validate({"events": events(100)}).events) == 100
    for bad in (events(0), events(101), events(2, same_id=True)):
        with pytest.raises(ValidationError):
            EventBatch.model_validate({"events": bad})


def test_addresses_are_checked_and_normalised() -> None:
    change = ContactUpsert.model_validate(
        {
            "channels": {
                "email": {"address": " ada@example.com"},
                "sms": {"address": "0044 7700-900123"},
                "push": {"address": "arn:aws:sns:us-east-1:1:endpoint/GCM/app/1"},
            }
        }
    )
    assert change.channels["email"].address == "ada@example.com"
    assert change.channels["sms"].address == "+447700900123"
    with pytest.raises(ValidationError, match=r"is not local@domain\.tld"):
        ContactUpsert.model_validate({"channels": {"email": {"address": "ada"}}})
    with pytest.raises(ValidationError, match=r"E\.164"):
        ContactUpsert.model_validate({"channels": {"whatsapp": {"address": "call me"}}})


def test_time_zones_are_iana_names_with_a_suggestion() -> None:
    assert ContactUpsert(time_zone="Asia/Tokyo").time_zone == "Asia/Tokyo"
    with pytest.raises(ValidationError, match='Did you mean "America/New_York"'):
        ContactUpsert(time_zone="America/NewYork")
    for bad in ("localtime", "../etc/passwd", "+02:00"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            ContactUpsert(time_zone=bad)


# --- Planning a contact change -------------------------------------------------------------


def state(**parts: Any) -> dict[str, Any]:
    return contact_updates.empty_state() | parts


def plan(current: dict[str, Any], **change: Any) -> ContactPlan:
    return contact_updates.plan_upsert(current, ContactUpsert.model_validate(change), NOW_ISO)


def test_attributes_merge_and_null_removes() -> None:
    current = state(attributes={"plan": "free", "score": 5, "old": 1, "flag": 1})
    result = plan(
        current,
        attributes={"plan": "pro", "score": 5.0, "old": None, "gone": None, "flag": True},
    )
    assert result.sets == ((("attributes", "plan"), "pro"), (("attributes", "flag"), True))
    assert result.removes == (("attributes", "old"),)
    assert result.changes.attributes_changed == {
        "plan": {"old": "free", "new": "pro"},
        "old": {"old": 1, "new": None},
        "flag": {"old": 1, "new": True},
    }


def test_only_new_tags_and_present_tags_count() -> None:
    current = state(tags={"vip": "2026-01-01T00:00:00Z", "trial": "2026-01-01T00:00:00Z"})
    result = plan(current, tags={"add": ["vip", "customer", "customer"], "remove": ["trial", "x"]})
    assert result.sets == ((("tags", "customer"), NOW_ISO),)
    assert result.removes == (("tags", "trial"),)
    assert result.changes.tags_added == ("customer",)
    assert result.changes.tags_removed == ("trial",)


def test_joining_a_list_counts_once() -> None:
    current = state(lists={"weekly": "subscribed", "offers": "unsubscribed"})
    result = plan(current, lists={"subscribe": ["weekly", "offers"], "unsubscribe": ["news"]})
    assert result.changes.lists_joined == ("offers",)
    assert (("lists", "news"), "unsubscribed") in result.sets
    assert result.changes.triggers


def test_channels_keep_consent_unless_told() -> None:
    current = state(
        channels={
            "email": {"address": "old@example.com", "status": "unsubscribed"},
            "sms": {"address": "+447700900123", "status": "bounced"},
        }
    )
    result = plan(
        current,
        channels={
            "email": {"address": "new@example.com"},
            "sms": {"address": "+447700900999"},
            "push": {"address": "token"},
        },
    )
    assert result.sets == (
        (("channels", "email", "address"), "new@example.com"),
        (("channels", "sms", "address"), "+447700900999"),
        (("channels", "sms", "status"), "subscribed"),  # the bounce was the old number's
        (("channels", "push"), {"status": "subscribed", "address": "token"}),
    )
    assert not result.changes.triggers
    assert not result.changes.email_unsubscribed


def test_unsubscribing_email_is_flagged_once() -> None:
    subscribed = state(channels={"email": {"address": "a@b.co", "status": "subscribed"}})
    assert plan(
        subscribed, channels={"email": {"status": "unsubscribed"}}
    ).changes.email_unsubscribed
    already = state(channels={"email": {"address": "a@b.co", "status": "unsubscribed"}})
    assert not plan(already, channels={"email": {"status": "unsubscribed"}}).writes
    assert not plan(
        state(), channels={"email": {"status": "unsubscribed"}}
    ).changes.email_unsubscribed


def test_time_zone_set_kept_and_cleared() -> None:
    current = state(time_zone="Europe/London")
    assert not plan(current).writes
    assert not plan(current, time_zone="Europe/London").writes
    assert plan(current, time_zone="Europe/Paris").sets == ((("time_zone",), "Europe/Paris"),)
    assert plan(current, time_zone=None).removes == (("time_zone",),)


def test_repeating_a_change_plans_nothing() -> None:
    change = {
        "attributes": {"plan": "pro"},
        "tags": {"add": ["vip"]},
        "lists": {"subscribe": ["w"]},
    }
    first = plan(state(), **change)
    after = contact_updates.apply_plan(state(), first)
    assert after["attributes"] == {"plan": "pro"}
    assert after["tags"] == {"vip": NOW_ISO}
    assert not plan(after, **change).writes


def test_apply_plan_builds_a_new_contact() -> None:
    result = plan(
        state(),
        attributes={"a": 1},
        channels={"email": {"address": "a@b.co"}},
        time_zone="UTC",
    )
    assert contact_updates.apply_plan(state(), result) == {
        "attributes": {"a": 1},
        "tags": {},
        "lists": {},
        "segments": {},
        "channels": {"email": {"status": "subscribed", "address": "a@b.co"}},
        "time_zone": "UTC",
    }


# --- Messages for the router ---------------------------------------------------------------


def test_contact_changed_has_the_router_contract() -> None:
    changes = ContactChanges(
        tags_added=("vip",),
        lists_joined=("weekly",),
        attributes_changed={"plan": {"old": "free", "new": "pro"}},
    )
    [message] = contact_updates.change_messages(
        "ada", changes, previous_version="v1", now_iso=NOW_ISO, source="api"
    )
    assert message == {
        "type": "contact_changed",
        "event_id": message["event_id"],
        "contact_id": "ada",
        "occurred_at": NOW_ISO,
        "tags_added": ["vip"],
        "tags_removed": [],
        "lists_joined": ["weekly"],
        "segments_entered": [],
        "segments_exited": [],
        "attributes_changed": {"plan": {"old": "free", "new": "pro"}},
    }


def test_event_ids_are_deterministic_per_change() -> None:
    changes = ContactChanges(tags_added=("vip",))

    def event_id(version: str | None, contact: str = "ada", at: str = NOW_ISO) -> str:
        [message] = contact_updates.change_messages(
            contact, changes, previous_version=version, now_iso=at, source="api"
        )
        return str(message["event_id"])

    assert event_id("v1") == event_id("v1", at="2030-01-01T00:00:00.000000Z")
    assert len({event_id("v1"), event_id("v2"), event_id(None), event_id("v1", "bob")}) == 4


def test_no_message_when_no_trigger_can_fire() -> None:
    assert (
        contact_updates.change_messages(
            "ada", ContactChanges(), previous_version=None, now_iso=NOW_ISO, source="api"
        )
        == []
    )


def test_an_email_unsubscribe_is_an_unsubscribed_event() -> None:
    [message] = contact_updates.change_messages(
        "ada",
        ContactChanges(email_unsubscribed=True),
        previous_version="v1",
        now_iso=NOW_ISO,
        source="one-click",
        workflow_id="cart-abandonment",
    )
    assert message["type"] == "event"
    assert message["name"] == "unsubscribed"
    assert message["properties"] == {
        "channel": "email",
        "source": "one-click",
        "workflow_id": "cart-abandonment",
    }
    assert set(message) == {"type", "event_id", "contact_id", "name", "properties", "occurred_at"}


def test_event_message_defaults_the_time_to_now_in_utc() -> None:
    event = EventIn(event_id="e", contact_id="c", name="viewed")
    assert api.event_message(event, NOW) == {
        "type": "event",
        "event_id": "e",
        "contact_id": "c",
        "name": "viewed",
        "properties": {},
        "occurred_at": NOW_ISO,
    }


def test_events_too_big_or_in_the_future() -> None:
    big = EventIn(event_id="a", contact_id="c", name="x", properties={"b": "x" * 205_000})
    later = EventIn(event_id="b", contact_id="c", name="x", occurred_at=NOW + timedelta(hours=1))
    soon = EventIn(event_id="c", contact_id="c", name="x", occurred_at=NOW + timedelta(minutes=5))
    api.check_events([soon], [["body"]], NOW)
    with pytest.raises(ApiError) as caught:
        api.check_events([soon, big], [["body", "events", 0], ["body", "events", 1]], NOW)
    assert caught.value.status == 413
    assert caught.value.detail[0]["loc"] == ["body", "events", 1, "properties"]
    with pytest.raises(ApiError) as caught:
        api.check_events([later], [["body"]], NOW)
    assert caught.value.status == 422
    assert "occurred_at: 2026-05-04T11:00:00+00:00 is in the future" in caught.value.message


# --- Error messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        (("body",), "body"),
        (("body", "name"), "name"),
        (("body", "events", 3, "name"), "events[3].name"),
        (("body", "attributes", "first name", "[key]"), "attributes.first name (key)"),
        (("query", "sig"), "query parameter sig"),
        (("path", "contact_id"), "path parameter contact_id"),
    ],
)
def test_where(loc: tuple[Any, ...], text: str) -> None:
    assert api.where(loc) == text


def test_explain_teaches_patterns_and_hides_pydantic_words() -> None:
    try:
        EventIn.model_validate({"event_id": "e", "contact_id": "c", "name": "9", "x": 1})
    except ValidationError as error:
        items = [api.explain(e) for e in error.errors()]
    assert items == [
        {
            "loc": ["name"],
            "msg": "event names start with a letter, then letters, digits and _ . : - "
            "(e.g. checkout_completed)",
            "type": "string_pattern_mismatch",
        },
        {"loc": ["x"], "msg": "unknown field", "type": "extra_forbidden"},
    ]
    value_error = {"loc": ("body", "tags"), "msg": "Value error, tags both", "type": "value_error"}
    assert api.explain(value_error)["msg"] == "tags both"


def test_summary_names_the_first_five() -> None:
    items = [{"loc": ["body", "events", i, "name"], "msg": "bad"} for i in range(7)]
    assert api.summary(items).endswith("events[4].name: bad (and 2 more)")


# --- The resolver without AWS --------------------------------------------------------------


def request(method: str, path: str, body: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"stage": "prod", "httpMethod": method, "path": path, "requestId": "r"},
        "body": body,
        "isBase64Encoded": False,
        **extra,
    }


def resolve(method: str, path: str, body: str | None, **extra: Any) -> tuple[int, Any]:
    response = api.app.resolve(request(method, path, body, **extra), None)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


def test_oversized_bodies_are_413_before_parsing() -> None:
    status, body = resolve("POST", "/v1/events", "{" * (256 * 1024 + 1))
    assert status == 413
    assert body["message"] == "request body is 262145 bytes; the limit is 262144 (256 KiB)"
    encoded = base64.b64encode(b"x" * (256 * 1024 + 1)).decode()
    status, _ = resolve("POST", "/v1/events", encoded, isBase64Encoded=True)
    assert status == 413


def test_body_size_counts_bytes() -> None:
    assert api.body_size({"body": "é"}) == 2
    assert api.body_size({"body": base64.b64encode(b"abc").decode(), "isBase64Encoded": True}) == 3
    assert api.body_size({"body": None}) == 0


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            "{",
            400,
            "malformed JSON: body: not valid JSON: Expecting property name enclosed in double "
            "quotes at character 1",
        ),
        (None, 400, "a JSON body is required"),
        ('{"contact_id": "c", "name": "x"}', 422, "invalid request: event_id: required"),
        ("[1]", 422, "invalid request: body: Input should be a valid dictionary"),
    ],
)
def test_validation_errors_say_what_and_where(body: str | None, status: int, message: str) -> None:
    got_status, got = resolve("POST", "/v1/events", body)
    assert (got_status, got["statusCode"]) == (status, status)
    assert got["message"].startswith(message)


# --- Journeys and pages --------------------------------------------------------------------


def test_position_reads_the_newest_state_entered() -> None:
    history = [
        {"id": 1, "type": "ExecutionStarted"},
        {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Email"}},
        {"id": 3, "type": "TaskStateExited"},
        {"id": 4, "type": "WaitStateEntered", "stateEnteredEventDetails": {"name": "Wait 2 h"}},
    ]
    assert api.position(history) == ("Wait 2 h", None)
    ended = [*history, {"id": 5, "type": "WaitStateExited"}, {"id": 6, "type": "ExecutionAborted"}]
    assert api.position(list(reversed(ended))) == ("Wait 2 h", "aborted")
    assert api.position([]) == (None, None)


def test_pages_escape_and_post_to_themselves() -> None:
    text = api.page("<Unsubscribe>", "a & b", button="Go <now>")
    assert "<title>&lt;Unsubscribe&gt;</title>" in text
    assert "<p>a &amp; b</p>" in text
    assert '<form method="post">' in text
    assert "action=" not in text  # posts back to the signed URL it was opened with
    assert "<form" not in api.page("Done", "ok")


def test_channel_in_allows_consent_without_an_address() -> None:
    assert ChannelIn(status="unsubscribed").address is None


def test_contact_ids_in_paths_are_decoded_then_checked() -> None:
    assert api.path_contact_id("ada%40example.com") == "ada@example.com"
    for bad in ("a%2Fb", "a%20b", "%00"):
        with pytest.raises(ApiError) as caught:
            api.path_contact_id(bad)
        assert caught.value.status == 422
        assert caught.value.detail[0]["loc"] == ["path", "contact_id"]
