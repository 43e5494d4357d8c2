"""The local API Gateway over real HTTP, in front of the real API handler on moto: what a
client of the local stack sees is what a client of the deployed API sees."""

from __future__ import annotations

import base64
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import boto3
import pytest

from journeys import aws as journeys_aws
from journeys.local.gateway import (
    MAX_PAYLOAD_BYTES,
    LocalApi,
    LocalRequest,
    LocalResponse,
    routes_from_template,
)
from journeys.messaging import sign_link
from journeys.settings import get_settings
from journeys.store import ContactRecord
from tests.functional.conftest import ROOT
from tests.helpers.aws import REGION, drain, load_template
from tests.helpers.lambdas import FakeLambdaContext, load_handler

KEY = "local-api-key"
STAGE = "local"
FORBIDDEN = {"message": "Forbidden"}
NO_ROUTE = {"message": "Missing Authentication Token"}


@dataclass
class Reply:
    status: int
    headers: Any  # http.client.HTTPMessage: case-insensitive, repeats kept
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Gateway:
    api: LocalApi
    events: list[dict[str, Any]]
    queue_url: str
    functions: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = KEY,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One HTTP request to the local API; errors are replies, not exceptions."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api.url + path, data=data, method=method)
        if data is not None and raw is None:
            request.add_header("Content-Type", "application/json")
        if key is not None:
            request.add_header("x-api-key", key)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read())


@pytest.fixture
def gateway(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """The template's API on 127.0.0.1, invoking functions/api/app.py in process."""
    # GIVEN the intake queue and the compiled workflow index the API function needs
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="journeys-events-test")["QueueUrl"]
    monkeypatch.setenv("EVENTS_QUEUE_URL", queue_url)
    monkeypatch.setenv("WORKFLOW_INDEX", str(ROOT / "state_machines" / "index.json"))
    get_settings.cache_clear()
    journeys_aws.clear_clients()
    handler = load_handler("api").handler
    events: list[dict[str, Any]] = []
    functions: list[str] = []

    def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        # ApiFunction and ImportApiFunction both deploy functions/api/ (template.yaml)
        assert function in ("ApiFunction", "ImportApiFunction")
        functions.append(function)
        events.append(event)
        return dict(handler(event, FakeLambdaContext("api")))

    with LocalApi.from_template(load_template(), invoke, api_keys=[KEY], stage=STAGE) as api:
        yield Gateway(api, events, queue_url, functions)
    journeys_aws.clear_clients()


def contact(email: str = "ada@example.com") -> dict[str, Any]:
    return {"attributes": {"first_name": "Ada"}, "channels": {"email": {"address": email}}}


# --- The API through the front door ---------------------------------------------------------


def test_a_contact_is_created_read_and_tracked_over_http(gateway: Gateway) -> None:
    # WHEN the app creates a contact
    created = gateway.call("PUT", "/v1/contacts/ada", contact())
    # THEN the function answered through API Gateway's framing
    assert created.status == 201
    assert created.headers["Content-Type"] == "application/json"
    assert created.json["contact_id"] == "ada"
    assert created.headers["x-amzn-RequestId"] == gateway.events[0]["requestContext"]["requestId"]
    assert created.headers["x-amz-apigw-id"]
    assert gateway.events[0]["resource"] == "/v1/{proxy+}"
    assert gateway.events[0]["pathParameters"] == {"proxy": "contacts/ada"}
    # AND the contact reads back, with the stage in the URL as on AWS
    read = gateway.call("GET", f"/{STAGE}/v1/contacts/ada")
    assert (read.status, read.json["attributes"]) == (200, {"first_name": "Ada"})
    assert gateway.events[-1]["path"] == "/v1/contacts/ada"
    assert gateway.events[-1]["requestContext"]["path"] == f"/{STAGE}/v1/contacts/ada"
    drain(boto3.client("sqs", region_name=REGION), gateway.queue_url)
    # WHEN it tracks an event
    accepted = gateway.call(
        "POST", "/v1/events", {"event_id": "evt-1", "contact_id": "ada", "name": "signed_up"}
    )
    # THEN it is accepted and queued for the router
    assert (accepted.status, accepted.json) == (202, {"accepted": ["evt-1"]})
    [message] = drain(boto3.client("sqs", region_name=REGION), gateway.queue_url)
    assert (message["type"], message["event_id"], message["name"]) == (
        "event",
        "evt-1",
        "signed_up",
    )
    # AND the contact's journeys can be read
    journeys = gateway.call("GET", "/v1/contacts/ada/journeys")
    assert (journeys.status, journeys.json) == (200, {"contact_id": "ada", "journeys": []})


def test_the_openapi_document_is_served(gateway: Gateway) -> None:
    reply = gateway.call("GET", "/v1/openapi.json")
    assert reply.status == 200
    assert reply.json["info"]["title"] == "Journeys API"
    assert "/v1/events" in reply.json["paths"]


def test_the_unsubscribe_page_needs_no_key(gateway: Gateway) -> None:
    # GIVEN a contact and the signed link of an email sent to her
    assert gateway.call("PUT", "/v1/contacts/ada", contact()).status == 201
    link = sign_link(
        "https://journeys.example.com/v1/unsubscribe",
        "unsubscribe",
        "ada",
        "welcome",
        b"test-secret",
    )
    query = urlsplit(link).query
    # WHEN her mail client opens it, without any API key
    page = gateway.call("GET", f"/v1/unsubscribe?{query}", key=None)
    # THEN she sees the page, and the query string reached the function decoded
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Unsubscribe</button>" in page.text
    assert gateway.events[-1]["queryStringParameters"] == dict(parse_qsl(query))
    assert "apiKey" not in gateway.events[-1]["requestContext"]["identity"]
    # AND the one-click POST from her mailbox unsubscribes her, still without a key
    confirmed = gateway.call(
        "POST",
        f"/v1/unsubscribe?{query}",
        raw=b"List-Unsubscribe=One-Click",
        key=None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert confirmed.status == 200
    assert "You are unsubscribed" in confirmed.text
    # AND a forged link is the function's own refusal, not the gateway's
    forged = gateway.call("GET", "/v1/unsubscribe?" + urlencode({"contact": "ada"}), key=None)
    assert forged.status == 403
    assert "This link does not work" in forged.text


# --- What API Gateway answers itself ----------------------------------------------------------


def test_key_protected_routes_refuse_a_missing_or_wrong_key(gateway: Gateway) -> None:
    for key in (None, "", "not-the-key", KEY.upper()):
        reply = gateway.call("GET", "/v1/workflows", key=key)
        assert (reply.status, reply.json) == (403, FORBIDDEN), key
        assert reply.headers["x-amzn-ErrorType"] == "ForbiddenException"
        assert reply.headers["x-amzn-RequestId"]
    assert gateway.events == []


def test_the_key_header_name_is_case_insensitive(gateway: Gateway) -> None:
    for name in ("X-API-KEY", "X-Api-Key", "x-api-key"):
        reply = gateway.call("GET", "/v1/workflows", key=None, headers={name: KEY})
        assert reply.status == 200, name
        assert "workflows" in reply.json


def test_a_path_or_method_without_a_route_is_missing_authentication_token(
    gateway: Gateway,
) -> None:
    for method, path in [
        ("GET", "/"),
        ("POST", "/"),
        ("GET", "/v1"),
        ("GET", "/v2/events"),
        ("GET", "/prod/v1/events"),  # another stage
    ]:
        for key in (KEY, None):
            reply = gateway.call(method, path, key=key)
            assert (reply.status, reply.json) == (403, NO_ROUTE), (method, path, key)
            assert reply.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert gateway.events == []


def test_a_method_the_public_resource_lacks_falls_through_to_the_keyed_proxy(
    gateway: Gateway,
) -> None:
    # /v1/unsubscribe declares GET and POST only: other methods go to ANY /v1/{proxy+}
    assert gateway.call("DELETE", "/v1/unsubscribe", key=None).json == FORBIDDEN
    reply = gateway.call("DELETE", "/v1/unsubscribe")
    assert gateway.events[-1]["resource"] == "/v1/{proxy+}"
    assert gateway.events[-1]["pathParameters"] == {"proxy": "unsubscribe"}
    # the function has no DELETE route and says so itself
    assert reply.status == 404
    assert reply.json["message"] == "no route DELETE /v1/unsubscribe"


def test_preflights_are_answered_without_a_key_and_head_reaches_the_function(
    gateway: Gateway,
) -> None:
    # GIVEN the template's Cors: OPTIONS is the gateway's mock preflight, any path, no key
    for path in ("/v1/unsubscribe", "/v1/stats", "/"):
        preflight = gateway.call("OPTIONS", path, key=None)
        assert preflight.status == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "X-Api-Key" in preflight.headers["Access-Control-Allow-Headers"]
    # THEN no function saw them
    assert all(event["httpMethod"] != "OPTIONS" for event in gateway.events)
    assert gateway.call("HEAD", "/", key=None).status == 403
    head = gateway.call("HEAD", "/v1/workflows")
    assert head.status == 404
    assert head.body == b""
    assert int(head.headers["Content-Length"]) > 0  # what a GET-like answer would carry


def test_imports_go_to_the_import_function_with_the_csv_byte_for_byte(gateway: Gateway) -> None:
    # GIVEN a contact file that is not even UTF-8 (Latin-1, as Excel may save it)
    csv = "contact_id,first_name\nada,Zoë\n".encode("latin-1")
    # WHEN it is uploaded as text/csv, a binary media type of the API
    gateway.call("POST", "/v1/imports", raw=csv, headers={"Content-Type": "text/csv"})
    # THEN the import function gets the bytes base64-encoded, as from API Gateway
    assert gateway.functions[-1] == "ImportApiFunction"
    event = gateway.events[-1]
    assert (event["resource"], event["pathParameters"]) == ("/v1/imports", None)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == csv
    # AND an import's status is the import function's too, with its parameter
    gateway.call("GET", "/v1/imports/imp-1")
    assert gateway.functions[-1] == "ImportApiFunction"
    assert gateway.events[-1]["pathParameters"] == {"import_id": "imp-1"}
    # AND a JSON body stays text
    gateway.call("GET", "/v1/workflows")
    assert gateway.functions[-1] == "ApiFunction"
    assert gateway.events[-1]["isBase64Encoded"] is False


def test_a_body_over_10_mib_is_refused_before_the_function(gateway: Gateway) -> None:
    # WHEN a client posts more than API Gateway's 10 MiB
    reply = gateway.call("POST", "/v1/events", raw=b"x" * (MAX_PAYLOAD_BYTES + 1))
    # THEN the gateway refuses it and the function never runs
    assert (reply.status, reply.json) == (413, {"message": "Request Entity Too Large"})
    assert gateway.events == []
    # AND exactly 10 MiB passes the gateway, for the function's own 256 KiB limit to refuse
    at_limit = gateway.call(
        "POST",
        "/v1/events",
        raw=b"x" * MAX_PAYLOAD_BYTES,
        headers={"Content-Type": "application/json"},
    )
    assert at_limit.status == 413
    assert at_limit.json["message"].startswith(f"request body is {MAX_PAYLOAD_BYTES} bytes")


def test_a_client_waiting_for_100_continue_is_refused_before_it_sends(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.api.port), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode() + b"\r\n"
            b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (MAX_PAYLOAD_BYTES + 1)
        )
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b'{"message": "Request Entity Too Large"}')
    assert gateway.events == []


def test_a_chunked_body_reaches_the_function(gateway: Gateway) -> None:
    assert gateway.call("PUT", "/v1/contacts/ada", contact()).status == 201
    body = json.dumps({"event_id": "evt-9", "contact_id": "ada", "name": "visited"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    request = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nx-api-key: " + KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.api.port), timeout=10) as connection:
        connection.sendall(request)
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 202 "), answer[:200]
    assert gateway.events[-1]["body"] == body.decode()


def test_an_encoded_slash_in_a_contact_id_arrives_as_api_gateway_passes_it(
    gateway: Gateway,
) -> None:
    # WHEN a client puts a contact whose id has a slash, URL-encoded
    reply = gateway.call("PUT", "/v1/contacts/user%2F42", contact())
    # THEN the function got the path and the greedy parameter still percent-encoded
    event = gateway.events[-1]
    assert event["path"] == "/v1/contacts/user%2F42"
    assert event["pathParameters"] == {"proxy": "contacts/user%2F42"}
    # AND decoded it itself, refusing the slash with the reason
    assert reply.status == 422
    assert "without spaces, control characters or /" in reply.json["message"]
    # WHEN another encoded character is allowed in ids
    created = gateway.call("PUT", "/v1/contacts/user%4042", contact())
    # THEN the contact exists under the decoded id
    assert created.status == 201
    assert gateway.events[-1]["pathParameters"] == {"proxy": "contacts/user%4042"}
    assert ContactRecord.get("user@42").attributes is not None


def test_a_failing_or_malformed_function_is_a_502(caplog: pytest.LogCaptureFixture) -> None:
    routes = routes_from_template(load_template())

    def broken(function: str, event: dict[str, Any]) -> dict[str, Any]:
        if event["path"] == "/v1/raises":
            raise RuntimeError("the handler blew up")
        return {"status": 200, "body": "not a proxy response"}

    with (
        LocalApi(routes, broken, api_keys=[KEY]) as api,
        caplog.at_level(logging.INFO, "journeys.local.api"),
    ):
        gateway = Gateway(api, [], "")
        for path, logged in [
            ("/v1/raises", "the handler blew up"),
            ("/v1/malformed", "statusCode must be an HTTP status number"),
        ]:
            reply = gateway.call("GET", path)
            assert (reply.status, reply.json) == (502, {"message": "Internal server error"})
            assert reply.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
            assert logged in caplog.text
    assert any(record.exc_info for record in caplog.records)


def test_every_request_logs_one_access_line_without_body_or_query(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="journeys.local.api"):
        gateway.call("PUT", "/v1/contacts/ada?secret=s3cr3t", contact("private@example.com"))
        gateway.call("GET", "/v2/nothing")
    lines = [r.getMessage() for r in caplog.records if r.name == "journeys.local.api"]
    assert len(lines) == 2
    assert lines[0].startswith("PUT /v1/contacts/ada 201 ")
    assert lines[0].endswith("ms")
    assert lines[1].startswith("GET /v2/nothing 403 ")
    assert "s3cr3t" not in caplog.text
    assert "private@example.com" not in caplog.text


def test_local_only_routes_need_the_key_too() -> None:
    def outbox(request: LocalRequest) -> LocalResponse:
        return LocalResponse.json(200, {"messages": [], "request_id": request.request_id})

    with LocalApi(
        routes_from_template(load_template()),
        lambda function, event: {"statusCode": 200},
        api_keys=[KEY],
        stage=STAGE,
        extra_routes={("GET", "/local/outbox"): outbox},
    ) as api:
        gateway = Gateway(api, [], "")
        assert gateway.call("GET", "/local/outbox", key=None).json == FORBIDDEN
        reply = gateway.call("GET", "/local/outbox")
        assert reply.status == 200
        assert reply.json["request_id"] == reply.headers["x-amzn-RequestId"]


def test_stopping_frees_the_port() -> None:
    api = LocalApi(routes_from_template(load_template()), lambda f, e: {}, api_keys=[KEY]).start()
    port = api.port
    api.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
