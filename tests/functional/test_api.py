"""The public API on moto, through the Lambda handler: intake, contacts, workflows,
journeys, unsubscribe links; bad input is refused with the reason and writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest

from journeys import api as journeys_api
from journeys import aws as journeys_aws
from journeys import contact_updates
from journeys.messaging import sign_link
from journeys.settings import get_settings
from journeys.store import ContactRecord, EntryRecord, parse_iso, plain
from tests.functional.conftest import ROOT
from tests.helpers.aws import REGION, ROLE_ARN
from tests.helpers.lambdas import invoke

SECRET = b"test-secret"  # LINK_SECRET of the aws fixture


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as Powertools' APIGatewayRestResolver reads it."""
    if body is not None and not raw:
        body = json.dumps(body)
    headers = {"Content-Type": "application/json", "x-api-key": "key", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": (
            {name: [value] for name, value in query.items()} if query else None
        ),
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1",
            "httpMethod": method,
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "request-1",
            "requestTimeEpoch": 1_700_000_000_000,
            "resourcePath": path,
            "stage": "prod",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "pytest"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class Reply:
    status: int
    headers: dict[str, list[str]]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def header(self, name: str) -> str:
        return self.headers[name][0]


def call(method: str, path: str, body: Any = None, **options: Any) -> Reply:
    response = invoke("api", api_event(method, path, body, **options))
    return Reply(response["statusCode"], dict(response["multiValueHeaders"]), response["body"])


@dataclass
class Queue:
    client: Any
    url: str

    def drain(self) -> list[dict[str, Any]]:
        """Every message now in the queue (received once), oldest first."""
        messages: list[dict[str, Any]] = []
        while True:
            batch = self.client.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return messages
            messages += [json.loads(message["Body"]) for message in batch]

    def empty(self) -> bool:
        return self.drain() == []


@pytest.fixture
def queue(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    """The intake queue and the compiled workflow index, on top of the aws fixture."""
    client = boto3.client("sqs", region_name=REGION)
    url = client.create_queue(QueueName="journeys-events-test")["QueueUrl"]
    monkeypatch.setenv("EVENTS_QUEUE_URL", url)
    monkeypatch.setenv("WORKFLOW_INDEX", str(ROOT / "state_machines" / "index.json"))
    get_settings.cache_clear()
    journeys_aws.clear_clients()
    yield Queue(client, url)
    journeys_aws.clear_clients()


@pytest.fixture
def ada(queue: Queue) -> None:
    ContactRecord(
        "ada",
        attributes={"first_name": "Ada", "plan": "free", "cart_items": 2},
        tags={"newsletter": "2026-01-01T00:00:00.000000Z"},
        lists={"promotions": "subscribed"},
        segments={},
        channels={"email": {"address": "ada@example.com", "status": "subscribed"}},
        time_zone="Europe/London",
        created_at="2026-01-01T00:00:00.000000Z",
        updated_at="2026-01-01T00:00:00.000000Z",
    ).save()


def raw_contact(aws: dict[str, Any], contact_id: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=aws["tables"]["ContactsTable"], Key={"contact_id": {"S": contact_id}}
    )
    return item.get("Item")


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "evt-1", "contact_id": "ada", "name": "added_to_cart", **fields}


# --- POST /v1/events ------------------------------------------------------------------------


def test_an_event_is_accepted_and_queued_for_the_router(ada: None, queue: Queue) -> None:
    # WHEN the app tracks an event without a time
    before = datetime.now(UTC)
    reply = call("POST", "/v1/events", event(properties={"product_name": "Red shoes"}))
    # THEN it is accepted, and the router's message is queued with the receipt time
    assert reply.status == 202
    assert reply.json == {"accepted": ["evt-1"]}
    [message] = queue.drain()
    occurred_at = message.pop("occurred_at")
    assert message == {
        "type": "event",
        "event_id": "evt-1",
        "contact_id": "ada",
        "name": "added_to_cart",
        "properties": {"product_name": "Red shoes"},
    }
    assert before <= parse_iso(occurred_at) <= datetime.now(UTC)
    assert occurred_at.endswith("Z")


def test_occurred_at_is_kept_and_normalised_to_utc(ada: None, queue: Queue) -> None:
    reply = call("POST", "/v1/events", event(occurred_at="2026-05-04T12:15:00+02:00"))
    assert reply.status == 202
    [message] = queue.drain()
    assert message["occurred_at"] == "2026-05-04T10:15:00.000000Z"
    assert message["properties"] == {}


def test_a_batch_is_sent_in_chunks_of_ten(
    ada: None, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a spy on SendMessageBatch
    calls: list[int] = []
    real = boto3.client("sqs", region_name=REGION)

    class Spy:
        def send_message_batch(self, **arguments: Any) -> Any:
            calls.append(len(arguments["Entries"]))
            return real.send_message_batch(**arguments)

    monkeypatch.setattr(journeys_api, "aws_client", lambda service, region: Spy())
    # WHEN 25 events arrive in one batch
    events = [event(event_id=f"evt-{n}", properties={"n": n}) for n in range(25)]
    reply = call("POST", "/v1/events/batch", {"events": events})
    # THEN all are accepted in order, in three SendMessageBatch calls
    assert reply.status == 202
    assert reply.json["accepted"] == [f"evt-{n}" for n in range(25)]
    assert calls == [10, 10, 5]
    queued = queue.drain()
    assert sorted(m["event_id"] for m in queued) == sorted(f"evt-{n}" for n in range(25))
    assert {m["type"] for m in queued} == {"event"}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        pytest.param('{"event_id": "evt-1", ', 400, "malformed JSON", id="malformed-json"),
        pytest.param(None, 400, "a JSON body is required", id="no-body"),
        pytest.param({"contact_id": "ada", "name": "x"}, 422, "event_id: required", id="missing"),
        pytest.param(
            event(name="added to cart"), 422, "name: event names start with a letter", id="bad-name"
        ),
        pytest.param(
            event(event_id="x" * 129), 422, "event_id: event ids are 1 to 128", id="long-id"
        ),
        pytest.param(
            event(occured_at="2026-01-01T00:00:00Z"), 422, "occured_at: unknown field", id="typo"
        ),
        pytest.param(
            event(occurred_at="2026-01-01T00:00:00"),
            422,
            "occurred_at: Input should have timezone info",
            id="naive-time",
        ),
        pytest.param(
            event(properties=[1, 2]),
            422,
            "properties: Input should be a valid dictionary",
            id="properties-list",
        ),
        pytest.param(
            '{"event_id": "e", "contact_id": "ada", "name": "x", "properties": {"v": NaN}}',
            422,
            "properties must be JSON",
            id="nan",
        ),
        pytest.param(
            event(contact_id="nobody"), 404, "contact 'nobody' does not exist", id="unknown-contact"
        ),
    ],
)
def test_bad_events_are_refused_with_the_reason_and_nothing_queued(
    ada: None, queue: Queue, body: Any, status: int, says: str
) -> None:
    raw = isinstance(body, str)
    reply = call("POST", "/v1/events", body, raw=raw)
    assert reply.status == status
    assert says in reply.json["message"]
    assert reply.json["statusCode"] == status
    assert reply.json["detail"]
    assert queue.empty()


def test_an_event_in_the_future_is_refused(ada: None, queue: Queue) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    reply = call("POST", "/v1/events", event(occurred_at=tomorrow))
    assert reply.status == 422
    assert reply.json["detail"][0]["loc"] == ["body", "occurred_at"]
    assert "in the future" in reply.json["message"]
    assert queue.empty()


def test_an_oversized_body_is_refused_before_parsing(ada: None, queue: Queue) -> None:
    reply = call("POST", "/v1/events", event(properties={"blob": "x" * (256 * 1024)}))
    assert reply.status == 413
    assert "the limit is 262144 (256 KiB)" in reply.json["message"]
    assert queue.empty()


def test_oversized_properties_are_refused(ada: None, queue: Queue) -> None:
    # 210 KiB of properties fits the body limit but not the message
    reply = call("POST", "/v1/events", event(properties={"blob": "x" * (210 * 1024)}))
    assert reply.status == 413
    assert reply.json["detail"][0]["loc"] == ["body", "properties"]
    assert "the limit is 204800 (200 KiB)" in reply.json["message"]
    assert queue.empty()


def test_a_wrong_content_type_is_refused(ada: None, queue: Queue) -> None:
    reply = call("POST", "/v1/events", "name=x", raw=True, headers={"Content-Type": "text/plain"})
    assert reply.status == 415
    assert "application/json" in reply.json["message"]
    assert queue.empty()


def test_one_bad_event_refuses_the_whole_batch(ada: None, queue: Queue) -> None:
    events = [event(event_id="a"), event(event_id="b", name="9lives"), event(event_id="c")]
    reply = call("POST", "/v1/events/batch", {"events": events})
    assert reply.status == 422
    assert reply.json["detail"][0]["loc"] == ["body", "events", 1, "name"]
    assert reply.json["message"].startswith("invalid request: events[1].name: event names")
    assert queue.empty()


def test_an_unknown_contact_in_a_batch_is_named(ada: None, queue: Queue) -> None:
    events = [event(event_id="a"), event(event_id="b", contact_id="ghost")]
    reply = call("POST", "/v1/events/batch", {"events": events})
    assert reply.status == 404
    assert reply.json["detail"] == [
        {
            "loc": ["body", "events", 1, "contact_id"],
            "msg": "contact 'ghost' does not exist; create it with PUT "
            "/v1/contacts/{contact_id} first",
            "type": "unknown_contact",
        }
    ]
    assert queue.empty()


@pytest.mark.parametrize(
    ("events", "says"),
    [
        pytest.param([], "events: List should have at least 1 item", id="empty"),
        pytest.param([event(event_id=f"e{n}") for n in range(101)], "at most 100 items", id="101"),
        pytest.param(
            [event(), event()], "event_id 'evt-1' of events[1] repeats events[0]", id="dupe"
        ),
    ],
)
def test_batch_limits(ada: None, queue: Queue, events: list[Any], says: str) -> None:
    reply = call("POST", "/v1/events/batch", {"events": events})
    assert reply.status == 422
    assert says in reply.json["message"]
    assert queue.empty()


def test_a_queue_that_is_not_configured_is_a_500_not_a_crash(
    ada: None, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENTS_QUEUE_URL", "")
    get_settings.cache_clear()
    reply = call("POST", "/v1/events", event())
    assert reply.status == 500
    assert reply.json["message"].startswith("internal error")


# --- PUT and GET /v1/contacts/{contact_id} -------------------------------------------------


def test_a_new_contact_is_created_with_every_map(aws: dict[str, Any], queue: Queue) -> None:
    # WHEN a contact is upserted for the first time
    reply = call(
        "PUT",
        "/v1/contacts/grace",
        {
            "attributes": {"first_name": "Grace", "plan": "trial"},
            "tags": {"add": ["vip"]},
            "lists": {"subscribe": ["weekly"]},
            "channels": {
                "email": {"address": " grace@example.com "},
                "sms": {"address": "+44 (0)7700 900123", "status": "unsubscribed"},
            },
            "time_zone": "America/New_York",
        },
    )
    # THEN it is created with normalised addresses and consent
    assert reply.status == 201
    body = reply.json
    assert body["contact_id"] == "grace"
    assert body["attributes"] == {"first_name": "Grace", "plan": "trial"}
    assert list(body["tags"]) == ["vip"]
    assert body["lists"] == {"weekly": "subscribed"}
    assert body["segments"] == {}
    assert body["channels"] == {
        "email": {"address": "grace@example.com", "status": "subscribed"},
        "sms": {"address": "+447700900123", "status": "unsubscribed"},
    }
    assert body["time_zone"] == "America/New_York"
    assert body["created_at"] == body["updated_at"]
    # AND the item has every top-level map the state machines update
    item = raw_contact(aws, "grace")
    assert item is not None
    for name in ("attributes", "tags", "lists", "segments", "channels"):
        assert "M" in item[name], name
    # AND one contact_changed tells the router what could trigger a workflow
    [message] = queue.drain()
    assert message["type"] == "contact_changed"
    assert message["event_id"].startswith("contact_changed-")
    assert message == {
        "type": "contact_changed",
        "event_id": message["event_id"],
        "contact_id": "grace",
        "occurred_at": body["created_at"],
        "tags_added": ["vip"],
        "tags_removed": [],
        "lists_joined": ["weekly"],
        "segments_entered": [],
        "segments_exited": [],
        "attributes_changed": {
            "first_name": {"old": None, "new": "Grace"},
            "plan": {"old": None, "new": "trial"},
        },
    }


def test_an_empty_upsert_creates_a_bare_contact_without_a_message(
    aws: dict[str, Any], queue: Queue
) -> None:
    reply = call("PUT", "/v1/contacts/bare", {})
    assert reply.status == 201
    item = raw_contact(aws, "bare")
    assert item is not None
    assert all(item[name] == {"M": {}} for name in ("attributes", "tags", "lists", "segments"))
    assert queue.empty()


def test_an_update_merges_and_reports_only_what_changed(ada: None, queue: Queue) -> None:
    # WHEN Ada upgrades, gets a tag, loses one, and her cart is cleared
    reply = call(
        "PUT",
        "/v1/contacts/ada",
        {
            "attributes": {"plan": "pro", "cart_items": None, "first_name": "Ada"},
            "tags": {"add": ["customer", "customer"], "remove": ["newsletter", "absent"]},
            "lists": {"subscribe": ["promotions", "vip-news"]},
        },
    )
    # THEN the rest of the contact is kept
    assert reply.status == 200
    body = reply.json
    assert body["attributes"] == {"first_name": "Ada", "plan": "pro"}
    assert list(body["tags"]) == ["customer"]
    assert body["lists"] == {"promotions": "subscribed", "vip-news": "subscribed"}
    assert body["channels"]["email"] == {"address": "ada@example.com", "status": "subscribed"}
    assert body["time_zone"] == "Europe/London"
    assert body["created_at"] == "2026-01-01T00:00:00.000000Z"
    assert body["updated_at"] > body["created_at"]
    # AND the message has only real changes (no re-added tag, no re-joined list)
    [message] = queue.drain()
    assert message["tags_added"] == ["customer"]
    assert message["tags_removed"] == ["newsletter"]
    assert message["lists_joined"] == ["vip-news"]
    assert message["attributes_changed"] == {
        "plan": {"old": "free", "new": "pro"},
        "cart_items": {"old": 2, "new": None},
    }


def test_changes_no_trigger_can_see_send_no_message(ada: None, queue: Queue) -> None:
    reply = call(
        "PUT",
        "/v1/contacts/ada",
        {
            "channels": {
                "sms": {"address": "+447700900123"},
                "email": {"address": "a@example.org"},
            },
            "time_zone": "Europe/Paris",
            "lists": {"unsubscribe": ["promotions"]},
        },
    )
    assert reply.status == 200
    assert reply.json["channels"]["email"] == {"address": "a@example.org", "status": "subscribed"}
    assert reply.json["lists"]["promotions"] == "unsubscribed"
    assert reply.json["time_zone"] == "Europe/Paris"
    assert queue.empty()


def test_repeating_an_upsert_writes_and_sends_nothing(ada: None, queue: Queue) -> None:
    change = {"attributes": {"plan": "pro"}, "tags": {"add": ["customer"]}}
    first = call("PUT", "/v1/contacts/ada", change)
    assert len(queue.drain()) == 1
    second = call("PUT", "/v1/contacts/ada", change)
    assert second.status == 200
    assert second.json["updated_at"] == first.json["updated_at"]
    assert queue.empty()


def test_unsubscribing_email_through_the_api_ends_journeys(ada: None, queue: Queue) -> None:
    reply = call("PUT", "/v1/contacts/ada", {"channels": {"email": {"status": "unsubscribed"}}})
    assert reply.status == 200
    assert reply.json["channels"]["email"]["status"] == "unsubscribed"
    [message] = queue.drain()
    assert message["type"] == "event"
    assert message["name"] == "unsubscribed"
    assert message["properties"] == {"channel": "email", "source": "api"}


def test_a_contact_without_maps_gets_them(aws: dict[str, Any], queue: Queue) -> None:
    # GIVEN a contact item written by something else, with no maps
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=aws["tables"]["ContactsTable"],
        Item={"contact_id": {"S": "legacy"}, "updated_at": {"S": "2026-01-01T00:00:00Z"}},
    )
    # WHEN it is updated
    reply = call("PUT", "/v1/contacts/legacy", {"tags": {"add": ["vip"]}})
    # THEN the maps are created and the change is applied
    assert reply.status == 200
    assert list(reply.json["tags"]) == ["vip"]
    item = raw_contact(aws, "legacy")
    assert item is not None
    assert all(
        "M" in item[name] for name in ("attributes", "tags", "lists", "segments", "channels")
    )


def test_a_write_that_lost_a_race_is_planned_again(
    ada: None, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN another request changes Ada between our read and our write
    real = contact_updates.find_contact
    stale = real("ada")
    interleaved: list[str] = []

    def find(contact_id: str) -> ContactRecord | None:
        if not interleaved:
            interleaved.append(contact_id)
            ContactRecord("ada").update(
                actions=[
                    ContactRecord.tags["customer"].set("2026-02-01T00:00:00.000000Z"),
                    ContactRecord.updated_at.set("2026-02-01T00:00:00.000000Z"),
                ]
            )
            return stale
        return real(contact_id)

    monkeypatch.setattr(contact_updates, "find_contact", find)
    # WHEN we add the same tag
    reply = call("PUT", "/v1/contacts/ada", {"tags": {"add": ["customer"]}})
    # THEN the conditional write fails, the plan is redone, and nobody counts it twice
    assert reply.status == 200
    assert reply.json["tags"]["customer"] == "2026-02-01T00:00:00.000000Z"
    assert queue.empty()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(
            {"time_zone": "Europe/Londn"},
            "unknown time zone 'Europe/Londn'; use an IANA name like Europe/Paris. Did you mean \"Europe/London\"?",
            id="time-zone",
        ),
        pytest.param(
            {"channels": {"email": {"address": "not-an-email"}}},
            "channels: email address 'not-an-email' is not local@domain.tld",
            id="email",
        ),
        pytest.param(
            {"channels": {"sms": {"address": "12"}}}, "is not an E.164 phone number", id="phone"
        ),
        pytest.param(
            {"channels": {"fax": {"address": "1"}}},
            "channels.fax (key): Input should be",
            id="channel",
        ),
        pytest.param(
            {"channels": {"email": {"status": "bounced"}}},
            "channels.email.status: Input should be 'subscribed' or 'unsubscribed'",
            id="status",
        ),
        pytest.param(
            {"attributes": {"first name": "Ada"}},
            "attributes.first name (key): attribute names are",
            id="attribute",
        ),
        pytest.param(
            {"tags": {"add": ["vip"], "remove": ["vip"]}},
            "tags: tags both added and removed: vip",
            id="tags",
        ),
        pytest.param(
            {"tags": ["vip"]}, "tags: Input should be a valid dictionary", id="tags-shape"
        ),
        pytest.param({"segments": {}}, "segments: unknown field", id="segments-read-only"),
    ],
)
def test_bad_contact_input_is_refused_and_nothing_written(
    aws: dict[str, Any], queue: Queue, body: dict[str, Any], says: str
) -> None:
    reply = call("PUT", "/v1/contacts/newbie", body)
    assert reply.status == 422
    assert says in reply.json["message"]
    assert raw_contact(aws, "newbie") is None
    assert queue.empty()


def test_a_contact_id_that_decodes_to_a_slash_is_refused(aws: dict[str, Any], queue: Queue) -> None:
    reply = call("PUT", "/v1/contacts/a%2Fb", {})
    assert reply.status == 422
    assert reply.json["detail"][0]["loc"] == ["path", "contact_id"]
    assert "path parameter contact_id: contact ids are" in reply.json["message"]
    assert raw_contact(aws, "a/b") is None


def test_a_contact_that_would_outgrow_dynamodb_is_413(ada: None, queue: Queue) -> None:
    assert call("PUT", "/v1/contacts/ada", {"attributes": {"a": "x" * 200_000}}).status == 200
    queue.drain()
    reply = call("PUT", "/v1/contacts/ada", {"attributes": {"b": "y" * 220_000}})
    assert reply.status == 413
    assert reply.json["message"] == "the contact would exceed DynamoDB's 400 KB item size"
    # (DynamoDB refuses the whole update; moto applies it before checking the size, so the
    # item is not checked here.) Nothing reaches the router:
    assert queue.empty()


def test_malformed_contact_json_writes_nothing(aws: dict[str, Any], queue: Queue) -> None:
    reply = call("PUT", "/v1/contacts/newbie", "{'tags': 1}", raw=True)
    assert reply.status == 400
    assert reply.json["message"].startswith("malformed JSON")
    assert raw_contact(aws, "newbie") is None
    assert queue.empty()


def test_get_a_contact(ada: None) -> None:
    reply = call("GET", "/v1/contacts/ada")
    assert reply.status == 200
    assert reply.json["attributes"] == {"first_name": "Ada", "plan": "free", "cart_items": 2}
    assert reply.json["channels"]["email"]["address"] == "ada@example.com"


def test_contact_ids_are_url_decoded(queue: Queue) -> None:
    reply = call("PUT", "/v1/contacts/ada%40example.com", {})
    assert reply.status == 201
    assert reply.json["contact_id"] == "ada@example.com"
    assert call("GET", "/v1/contacts/ada%40example.com").json["contact_id"] == "ada@example.com"


def test_an_unknown_contact_is_404(queue: Queue) -> None:
    reply = call("GET", "/v1/contacts/nobody")
    assert reply.status == 404
    assert reply.json["message"] == "contact 'nobody' does not exist"
    assert call("GET", "/v1/contacts/nobody/journeys").status == 404


# --- GET /v1/workflows and /v1/contacts/{id}/journeys --------------------------------------


def test_workflows_come_from_the_compiled_index(queue: Queue) -> None:
    reply = call("GET", "/v1/workflows")
    assert reply.status == 200
    workflows = {w["id"]: w for w in reply.json["workflows"]}
    index = json.loads((ROOT / "state_machines" / "index.json").read_text())["workflows"]
    assert list(workflows) == sorted(index)
    assert workflows["cart-abandonment"] == {
        "id": "cart-abandonment",
        "name": "Cart abandonment",
        "triggers": [{"event": "added_to_cart", "key": "event:added_to_cart"}],
    }


def test_journeys_show_where_the_contact_is(ada: None) -> None:
    # GIVEN one finished execution and one entry whose execution is unknown
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="journeys-test-welcome",
        roleArn=ROLE_ARN,
        definition=json.dumps(
            {
                "StartAt": "Say hello",
                "States": {
                    "Say hello": {"Type": "Pass", "Next": "Welcomed"},
                    "Welcomed": {"Type": "Succeed"},
                },
            }
        ),
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="ada-1")
    arn = execution["executionArn"]
    for _ in range(100):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
        time.sleep(0.05)
    EntryRecord(
        "ada", "welcome", entry_id="e-1", execution_arn=arn, entered_at="2026-03-01T00:00:00Z"
    ).save()
    EntryRecord(
        "ada",
        "cart-abandonment",
        entry_id="e-2",
        execution_arn=f"{arn}-gone",
        entered_at="2026-04-01T00:00:00Z",
    ).save()
    # WHEN the journeys are asked for
    reply = call("GET", "/v1/contacts/ada/journeys")
    # THEN the newest comes first, with the step it is at and the live status
    assert reply.status == 200
    assert reply.json == {
        "contact_id": "ada",
        "journeys": [
            {
                "workflow_id": "cart-abandonment",
                "entry_id": "e-2",
                "entered_at": "2026-04-01T00:00:00Z",
                "status": "running",
                "execution_arn": f"{arn}-gone",
                "current_step": None,
            },
            {
                "workflow_id": "welcome",
                "entry_id": "e-1",
                "entered_at": "2026-03-01T00:00:00Z",
                "status": "succeeded",
                "execution_arn": arn,
                "current_step": "Welcomed",
            },
        ],
    }


def test_a_contact_with_no_journeys(ada: None) -> None:
    reply = call("GET", "/v1/contacts/ada/journeys")
    assert reply.json == {"contact_id": "ada", "journeys": []}


# --- /v1/unsubscribe ------------------------------------------------------------------------


def link_query(
    contact: str = "ada", workflow: str = "cart-abandonment", action: str = "unsubscribe"
) -> dict[str, str]:
    """The query string of a signed link, as the send function signs it."""
    url = sign_link(
        "https://journeys.example.com/v1/unsubscribe", action, contact, workflow, SECRET
    )
    return dict(parse_qsl(urlsplit(url).query))


def email_status(contact_id: str = "ada") -> str:
    return str(plain(ContactRecord.get(contact_id).channels)["email"]["status"])


def test_opening_the_link_shows_a_page_and_unsubscribes_nobody(ada: None, queue: Queue) -> None:
    reply = call("GET", "/v1/unsubscribe", query=link_query(), headers={"x-api-key": ""})
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/html; charset=utf-8"
    assert '<form method="post">' in reply.text
    assert "Unsubscribe</button>" in reply.text
    assert reply.header("Cache-Control") == "no-store"
    assert reply.header("Referrer-Policy") == "no-referrer"
    assert email_status() == "subscribed"
    assert queue.empty()


def test_confirming_on_the_page_unsubscribes_and_ends_journeys(ada: None, queue: Queue) -> None:
    reply = call(
        "POST",
        "/v1/unsubscribe",
        "confirm=yes",
        raw=True,
        query=link_query(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 200
    assert "You are unsubscribed" in reply.text
    assert email_status() == "unsubscribed"
    [message] = queue.drain()
    assert message["type"] == "event"
    assert message["event_id"].startswith("unsubscribed-")
    assert message["contact_id"] == "ada"
    assert message["name"] == "unsubscribed"
    assert message["properties"] == {
        "channel": "email",
        "source": "link",
        "workflow_id": "cart-abandonment",
    }
    # AND a second click changes nothing and queues nothing
    again = call("POST", "/v1/unsubscribe", "confirm=yes", raw=True, query=link_query())
    assert again.status == 200
    assert queue.empty()


def test_one_click_unsubscribe_from_the_mailbox(ada: None, queue: Queue) -> None:
    # RFC 8058: the mailbox POSTs this body to the List-Unsubscribe URL
    reply = call(
        "POST",
        "/v1/unsubscribe",
        "List-Unsubscribe=One-Click",
        raw=True,
        query=link_query(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 200
    assert email_status() == "unsubscribed"
    [message] = queue.drain()
    assert message["properties"]["source"] == "one-click"


def test_one_click_as_multipart_form_data(ada: None, queue: Queue) -> None:
    body = (
        '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n--b--\r\n"
    )
    reply = call(
        "POST",
        "/v1/unsubscribe",
        body,
        raw=True,
        query=link_query(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert reply.status == 200
    assert email_status() == "unsubscribed"
    assert len(queue.drain()) == 1


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({**link_query(), "sig": "AAAA"}, id="bad-signature"),
        pytest.param({**link_query(), "contact": "grace"}, id="other-contact"),
        pytest.param({**link_query(), "workflow": "other"}, id="other-workflow"),
        pytest.param({**link_query(), "action": "preferences"}, id="other-action"),
        pytest.param({"contact": "ada"}, id="missing"),
        pytest.param({}, id="nothing"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_link_is_403_and_changes_nothing(
    ada: None, queue: Queue, method: str, query: dict[str, str]
) -> None:
    reply = call(method, "/v1/unsubscribe", query=query or None)
    assert reply.status == 403
    assert "This link does not work" in reply.text
    assert email_status() == "subscribed"
    assert queue.empty()


def test_a_signed_link_for_a_deleted_contact_creates_nobody(
    aws: dict[str, Any], queue: Queue
) -> None:
    reply = call("POST", "/v1/unsubscribe", query=link_query(contact="gone"))
    assert reply.status == 200
    assert raw_contact(aws, "gone") is None
    assert queue.empty()


# --- Documents and unknown routes -----------------------------------------------------------


def test_the_openapi_document_is_served_as_checked_in(queue: Queue) -> None:
    reply = call("GET", "/v1/openapi.json")
    assert reply.status == 200
    assert reply.text == (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    docs = call("GET", "/v1/docs")
    assert docs.status == 200
    assert "swagger" in docs.text.lower()


def test_an_unknown_route_is_a_json_404(queue: Queue) -> None:
    reply = call("GET", "/v1/nothing-here")
    assert reply.status == 404
    assert reply.json["message"] == "no route GET /v1/nothing-here"
